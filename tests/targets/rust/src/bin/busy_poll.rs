//! tokio current-thread runtime: `--tasks N` tasks (default 1), run one after
//! the other; each runs `busy()`, which busy-spins `--spin-ms MS` milliseconds
//! (default 3) inside its first poll, then yields once.
//!
//! Ground truth: `busy::{{closure}}` is polled exactly twice per task (Pending,
//! then Ready) and its first poll lasts at least MS milliseconds, since the
//! spin loop (no sleep, no await) runs entirely inside that poll.

use std::time::{Duration, Instant};
use targets::{Args, Counts, GroundTruth, YieldNow, YIELD_NOW_POLL};

const PROGRAM: &str = "busy_poll";

/// Poll fn `busy_poll::busy::{{closure}}`: ~MS ms in poll 1, ~nothing in poll 2.
#[inline(never)]
async fn busy(spin_ms: u64) -> u64 {
    let start = Instant::now();
    let limit = Duration::from_millis(spin_ms);
    let mut spins = 0u64;
    while start.elapsed() < limit {
        spins = std::hint::black_box(spins + 1);
    }
    YieldNow::new(1).await;
    spins
}

fn main() {
    let args = Args::parse(1);
    let n = args.tasks;
    let mut gt = GroundTruth::new(PROGRAM);
    gt.param("tasks", n).param("spin_ms", args.spin_ms);
    gt.function(
        &format!("{PROGRAM}::busy::{{{{closure}}}}"),
        Counts::yielding(n, 1),
    )
    .extra("first_poll_min_ns", args.spin_ms * 1_000_000);
    gt.function(YIELD_NOW_POLL, Counts::yielding(n, 1));
    gt.line(&format!(
        "{PROGRAM}: {n} tasks x {} ms busy polls done",
        args.spin_ms
    ));
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        for _ in 0..n {
            // Await each task before spawning the next: one busy task at a time.
            tokio::spawn(busy(args.spin_ms)).await.expect("task failed");
        }
    });
    print!("{}", gt.stdout());
}
