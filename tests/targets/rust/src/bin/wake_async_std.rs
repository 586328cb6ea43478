//! async-std (one executor thread): one task runs `waiter`, which awaits a
//! `RemoteWake` (targets::remote) that a plain thread named `waker-thread`
//! wakes `--wakes M` times (default 3), by value, each time only after the
//! task has parked again: M wakes from a non-runtime thread, M + 1 polls.
//! Ground truth: `targets::scenarios::wake`; await points are marked `// @tag`.

use targets::remote::{remote_wakes, RemoteWake};
use targets::scenarios;
use targets::Args;

const PROGRAM: &str = "wake_async_std";

#[inline(never)]
async fn waiter(remote: RemoteWake, wakes: u64) {
    let woken = remote.await; // @remote
    assert_eq!(woken, wakes);
}

fn main() {
    let args = Args::parse(1);
    let gt = scenarios::wake(
        PROGRAM,
        "async-std",
        include_str!("wake_async_std.rs"),
        args.wakes,
    );
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    targets::async_std_one_thread();
    let (remote, thread) = remote_wakes(args.wakes);
    // block_on's own future is not in the ground truth (racy, see join_async_std).
    async_std::task::block_on(async_std::task::spawn(waiter(remote, args.wakes))); // @spawn-waiter
    thread.join().expect("waker thread panicked");
    print!("{}", gt.stdout());
}
