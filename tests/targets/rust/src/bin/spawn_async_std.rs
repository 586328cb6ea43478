//! async-std (one executor thread): a task running `parent` spawns 3 tasks
//! running `child` (each parks twice, waking itself by ref) and awaits their
//! JoinHandles in order. With one executor thread the queues are FIFO: the
//! children interleave, the first to finish wakes the parent (async-task
//! notifies the awaiter by value, from the child's `RawTask::run`), the other
//! two finish before the parent runs again.
//! Ground truth: `targets::scenarios::spawn`; await points are marked `// @tag`.

use targets::scenarios::{self, CHILDREN, CHILD_YIELDS};
use targets::truth::WakeKind;
use targets::{Args, YieldNow};

const PROGRAM: &str = "spawn_async_std";

/// Spawned from block_on (outside any task); spawns the children.
#[inline(never)]
async fn parent() {
    let handles: Vec<_> = (0..CHILDREN).map(|_| async_std::task::spawn(child())).collect(); // @spawn-child
    let mut sum = 0;
    for h in handles {
        sum += h.await; // @handle
    }
    assert_eq!(sum, CHILDREN * CHILD_YIELDS);
}

#[inline(never)]
async fn child() -> u64 {
    for _ in 0..CHILD_YIELDS {
        YieldNow::new(1).await; // @child
    }
    CHILD_YIELDS
}

fn main() {
    let args = Args::parse(1);
    let src = include_str!("spawn_async_std.rs");
    let gt = scenarios::spawn(PROGRAM, "async-std", src, WakeKind::ByVal);
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    targets::async_std_one_thread();
    // block_on's own future is not in the ground truth (racy, see join_async_std).
    async_std::task::block_on(async_std::task::spawn(parent())); // @spawn-parent
    print!("{}", gt.stdout());
}
