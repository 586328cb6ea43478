//! tokio current-thread runtime: `--tasks N` tasks (default 4), one after the
//! other, each running `work()`: `--yields K` times (default 49) it computes a
//! fixed number of rounds of a xorshift hash (`crunch`, 2^20 rounds: about
//! 1-3 ms) and yields, then computes once more and returns. A fixed amount of
//! work, not of time: what a profiler's sampling adds shows as time (the
//! benchmark of `asynctrace profile`'s overhead), where a spin until a
//! deadline would absorb it.
//!
//! `--timings FILE` writes the program's own time for the work, one JSON line
//! `{"work_ns":N}` (from before the first task to after the last).
//!
//! Ground truth: `cpu_work::work::{{closure}}` is polled K+1 times per task
//! (Pending K times, then Ready); `YieldNow::poll` twice per yield.

use std::time::Instant;
use targets::{write_file, Args, Counts, GroundTruth, YieldNow, YIELD_NOW_POLL};

const PROGRAM: &str = "cpu_work";
const ROUNDS: u64 = 1 << 20;

/// The work of one poll: pure integer computation, nothing to wait for.
#[inline(never)]
fn crunch(seed: u64) -> u64 {
    let mut x = seed | 1;
    let mut i = 0;
    while i < ROUNDS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        i += 1;
    }
    std::hint::black_box(x)
}

#[inline(never)]
async fn work(task: u64, yields: u64) -> u64 {
    let mut acc = task;
    for _ in 0..yields {
        acc = crunch(acc);
        YieldNow::new(1).await;
    }
    crunch(acc)
}

fn main() {
    let args = Args::parse(4);
    let n = args.tasks;
    let k = args.yields;
    let mut gt = GroundTruth::new(PROGRAM);
    gt.param("tasks", n).param("yields", k);
    gt.function(&format!("{PROGRAM}::work::{{{{closure}}}}"), Counts::yielding(n, k));
    gt.function(YIELD_NOW_POLL, Counts::yielding(n * k, 1));
    gt.line(&format!("{PROGRAM}: {n} tasks x {} rounds of work done", k + 1));
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let start = Instant::now();
    let total = rt.block_on(async {
        let mut total = 0u64;
        for t in 0..n {
            total = total.wrapping_add(tokio::spawn(work(t, k)).await.expect("task failed"));
        }
        total
    });
    let work_ns = start.elapsed().as_nanos();
    std::hint::black_box(total);
    if let Some(path) = &args.timings {
        write_file(path, &format!("{{\"work_ns\":{work_ns}}}\n"));
    }
    print!("{}", gt.stdout());
}
