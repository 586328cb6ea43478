//! tokio current-thread runtime: a task running `driver` spawns `--tasks N`
//! (default 200) tasks running `tiny` one at a time, awaiting each before
//! spawning the next, so the allocator hands each task the memory (and the
//! same task and future addresses) of the one before. Each tiny task parks
//! once (self-wake by ref) and, finishing, wakes the driver (tokio's join
//! waker: by ref): N distinct task instances of 2 polls each.
//! Ground truth: `targets::scenarios::reuse`; await points are marked `// @tag`.

use targets::scenarios;
use targets::truth::WakeKind;
use targets::{Args, YieldNow};

const PROGRAM: &str = "reuse_tokio";

#[inline(never)]
async fn driver(tasks: u64) {
    for _ in 0..tasks {
        tokio::spawn(tiny()).await.expect("tiny failed"); // @handle @spawn-tiny
    }
}

#[inline(never)]
async fn tiny() {
    YieldNow::new(1).await; // @tiny
}

fn main() {
    let args = Args::parse(200);
    let src = include_str!("reuse_tokio.rs");
    let gt = scenarios::reuse(PROGRAM, "tokio", src, args.tasks, WakeKind::ByRef);
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    rt.block_on(async { tokio::spawn(driver(args.tasks)).await.expect("driver failed") }); // @spawn-driver
    print!("{}", gt.stdout());
}
