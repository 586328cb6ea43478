//! futures::executor::LocalPool: a task running `driver` spawns `--tasks N`
//! (default 200) tasks running `tiny` one at a time with
//! `spawn_local_with_handle`, awaiting each before spawning the next, so the
//! allocator hands each task the memory (and the same task and future
//! addresses) of the one before. Each tiny task parks once (self-wake by ref)
//! and, finishing, wakes the driver (its oneshot: by value): N distinct task
//! instances of 2 polls each.
//! Ground truth: `targets::scenarios::reuse`; await points are marked `// @tag`.

use futures::executor::{LocalPool, LocalSpawner};
use futures::task::LocalSpawnExt;
use targets::scenarios;
use targets::truth::WakeKind;
use targets::{Args, YieldNow};

const PROGRAM: &str = "reuse_futures";

#[inline(never)]
async fn driver(spawner: LocalSpawner, tasks: u64) {
    for _ in 0..tasks {
        let handle = spawner.spawn_local_with_handle(tiny()).expect("spawn_local"); // @spawn-tiny
        handle.await; // @handle
    }
}

#[inline(never)]
async fn tiny() {
    YieldNow::new(1).await; // @tiny
}

fn main() {
    let args = Args::parse(200);
    let src = include_str!("reuse_futures.rs");
    let gt = scenarios::reuse(PROGRAM, "futures", src, args.tasks, WakeKind::ByVal);
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    spawner
        .spawn_local(driver(spawner.clone(), args.tasks)) // @spawn-driver
        .expect("spawn_local");
    pool.run();
    print!("{}", gt.stdout());
}
