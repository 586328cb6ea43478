//! futures::executor::LocalPool: one task runs `waiter`, which awaits a
//! `RemoteWake` (targets::remote) that a plain thread named `waker-thread`
//! wakes `--wakes M` times (default 3), by value, each time only after the
//! task has parked again: M wakes from a non-runtime thread, M + 1 polls.
//! Ground truth: `targets::scenarios::wake`; await points are marked `// @tag`.

use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use targets::remote::{remote_wakes, RemoteWake};
use targets::scenarios;
use targets::Args;

const PROGRAM: &str = "wake_futures";

#[inline(never)]
async fn waiter(remote: RemoteWake, wakes: u64) {
    let woken = remote.await; // @remote
    assert_eq!(woken, wakes);
}

fn main() {
    let args = Args::parse(1);
    let gt = scenarios::wake(PROGRAM, "futures", include_str!("wake_futures.rs"), args.wakes);
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let (remote, thread) = remote_wakes(args.wakes);
    let mut pool = LocalPool::new();
    pool.spawner()
        .spawn_local(waiter(remote, args.wakes)) // @spawn-waiter
        .expect("spawn_local");
    pool.run();
    thread.join().expect("waker thread panicked");
    print!("{}", gt.stdout());
}
