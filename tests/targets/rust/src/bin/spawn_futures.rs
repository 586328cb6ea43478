//! futures::executor::LocalPool: a task running `parent` spawns 3 tasks
//! running `child` (each parks twice, waking itself by ref) with
//! `spawn_local_with_handle` and awaits their RemoteHandles in order. The
//! pool's ready queue is FIFO: the children interleave, the first to finish
//! wakes the parent (its oneshot wakes the receiver by value, from the
//! child's poll), the other two finish before the parent runs again.
//! Ground truth: `targets::scenarios::spawn`; await points are marked `// @tag`.

use futures::executor::{LocalPool, LocalSpawner};
use futures::task::LocalSpawnExt;
use targets::scenarios::{self, CHILDREN, CHILD_YIELDS};
use targets::truth::WakeKind;
use targets::{Args, YieldNow};

const PROGRAM: &str = "spawn_futures";

/// Spawned from main (outside any task); spawns the children.
#[inline(never)]
async fn parent(spawner: LocalSpawner) {
    let spawn = |_| spawner.spawn_local_with_handle(child()).expect("spawn_local"); // @spawn-child
    let handles: Vec<_> = (0..CHILDREN).map(spawn).collect();
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
    let src = include_str!("spawn_futures.rs");
    let gt = scenarios::spawn(PROGRAM, "futures", src, WakeKind::ByVal);
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    spawner.spawn_local(parent(spawner.clone())).expect("spawn_local"); // @spawn-parent
    pool.run();
    print!("{}", gt.stdout());
}
