//! `--threads N` short-lived std threads (default 2000), started in waves of
//! `--parallel P` (default 8): each wave's threads are joined before the next
//! wave starts. Thread `i` is named `churn-<i>` and runs
//! `futures::executor::block_on(work(i, K))`, where `work` awaits `step`,
//! which awaits `YieldNow(--yields K)` (default 2).
//!
//! Why the counts are exact: `block_on` polls its future once, then once more
//! per wake (`YieldNow` wakes itself by ref before each Pending), so each
//! thread polls work, step and YieldNow K+1 times each: N(K+1) in all, N Ready.

use targets::{Args, Counts, GroundTruth, YieldNow, YIELD_NOW_POLL};

const PROGRAM: &str = "threads_churn";

#[inline(never)]
async fn work(id: u64, yields: u64) -> u64 {
    step(yields).await + id
}

#[inline(never)]
async fn step(yields: u64) -> u64 {
    YieldNow::new(yields).await;
    1
}

fn ground_truth(args: &Args) -> GroundTruth {
    let (n, p, k) = (args.threads, args.parallel, args.yields);
    let mut gt = GroundTruth::new(PROGRAM);
    gt.param("threads", n).param("parallel", p).param("yields", k);
    for f in ["work", "step"] {
        gt.function(
            &format!("{PROGRAM}::{f}::{{{{closure}}}}"),
            Counts::yielding(n, k),
        );
    }
    gt.function(YIELD_NOW_POLL, Counts::yielding(n, k));
    gt.line(&format!("{PROGRAM}: {n} threads x {k} yields done"));
    gt
}

fn main() {
    let args = Args::parse_with(Args {
        threads: 2000,
        yields: 2,
        ..Args::default()
    });
    if args.parallel == 0 {
        eprintln!("{PROGRAM}: --parallel must be at least 1");
        std::process::exit(2);
    }
    let gt = ground_truth(&args);
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let (n, k) = (args.threads, args.yields);
    let mut sum = 0;
    for wave in (0..n).step_by(args.parallel as usize) {
        let threads: Vec<_> = (wave..n.min(wave + args.parallel))
            .map(|id| {
                std::thread::Builder::new()
                    .name(format!("churn-{id}"))
                    .spawn(move || futures::executor::block_on(work(id, k)))
                    .expect("spawn thread")
            })
            .collect();
        for t in threads {
            sum += t.join().expect("churn thread panicked");
        }
    }
    assert_eq!(sum, n * (n + 1) / 2); // the ids, plus 1 from each thread
    print!("{}", gt.stdout());
}
