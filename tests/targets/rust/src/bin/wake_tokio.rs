//! tokio current-thread runtime: one task runs `waiter`, which awaits a
//! `RemoteWake` (targets::remote) that a plain thread named `waker-thread`
//! wakes `--wakes M` times (default 3), by value, each time only after the
//! task has parked again: M wakes from a non-runtime thread, M + 1 polls.
//! Ground truth: `targets::scenarios::wake`; await points are marked `// @tag`.

use targets::remote::{remote_wakes, RemoteWake};
use targets::scenarios;
use targets::Args;

const PROGRAM: &str = "wake_tokio";

#[inline(never)]
async fn waiter(remote: RemoteWake, wakes: u64) {
    let woken = remote.await; // @remote
    assert_eq!(woken, wakes);
}

fn main() {
    let args = Args::parse(1);
    let gt = scenarios::wake(PROGRAM, "tokio", include_str!("wake_tokio.rs"), args.wakes);
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let (remote, thread) = remote_wakes(args.wakes);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        tokio::spawn(waiter(remote, args.wakes)) // @spawn-waiter
            .await
            .expect("waiter failed")
    });
    thread.join().expect("waker thread panicked");
    print!("{}", gt.stdout());
}
