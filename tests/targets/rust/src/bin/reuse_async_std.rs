//! async-std (one executor thread): a task running `driver` spawns
//! `--tasks N` (default 200) tasks running `tiny` one at a time, awaiting each
//! before spawning the next, so the allocator hands each task the memory (and
//! the same task and future addresses) of the one before. Each tiny task
//! parks once (self-wake by ref) and, finishing, wakes the driver (async-task
//! notifies the awaiter by value): N distinct task instances of 2 polls each.
//! Ground truth: `targets::scenarios::reuse`; await points are marked `// @tag`.

use targets::scenarios;
use targets::truth::WakeKind;
use targets::{Args, YieldNow};

const PROGRAM: &str = "reuse_async_std";

#[inline(never)]
async fn driver(tasks: u64) {
    for _ in 0..tasks {
        async_std::task::spawn(tiny()).await; // @handle @spawn-tiny
    }
}

#[inline(never)]
async fn tiny() {
    YieldNow::new(1).await; // @tiny
}

fn main() {
    let args = Args::parse(200);
    let src = include_str!("reuse_async_std.rs");
    let gt = scenarios::reuse(PROGRAM, "async-std", src, args.tasks, WakeKind::ByVal);
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    targets::async_std_one_thread();
    // block_on's own future is not in the ground truth (racy, see join_async_std).
    async_std::task::block_on(async_std::task::spawn(driver(args.tasks))); // @spawn-driver
    print!("{}", gt.stdout());
}
