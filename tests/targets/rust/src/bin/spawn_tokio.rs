//! tokio current-thread runtime: a task running `parent` spawns 3 tasks
//! running `child` (each parks twice, waking itself by ref) and awaits their
//! JoinHandles in order. The run queue is FIFO: the children interleave, the
//! first to finish wakes the parent (tokio's join waker: by ref, from the
//! child's task poll), the other two finish before the parent runs again.
//! Ground truth: `targets::scenarios::spawn`; await points are marked `// @tag`.

use targets::scenarios::{self, CHILDREN, CHILD_YIELDS};
use targets::truth::WakeKind;
use targets::{Args, YieldNow};

const PROGRAM: &str = "spawn_tokio";

/// Spawned from block_on (outside any task); spawns the children.
#[inline(never)]
async fn parent() {
    let handles: Vec<_> = (0..CHILDREN).map(|_| tokio::spawn(child())).collect(); // @spawn-child
    let mut sum = 0;
    for h in handles {
        sum += h.await.expect("child failed"); // @handle
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
    let src = include_str!("spawn_tokio.rs");
    let gt = scenarios::spawn(PROGRAM, "tokio", src, WakeKind::ByRef);
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    rt.block_on(async { tokio::spawn(parent()).await.expect("parent failed") }); // @spawn-parent
    print!("{}", gt.stdout());
}
