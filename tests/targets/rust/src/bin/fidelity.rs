//! tokio current-thread runtime: one task runs `parent`, which awaits
//! `tokio::join!` of 8 children, each outer -> middle -> inner -> leaf; every
//! poll of `leaf` busy-spins `--spin-us US` microseconds (default 4), and
//! `leaf` parks `--yields K` times (default 20) on a `YieldNow(1)`.
//! `Timed` wraps the parent's future and times each poll of its body
//! (`fidelity::parent::{{closure}}`) with `Instant`: `--timings FILE` gets one
//! JSON line with the count, total, mean, min and max, the figure a tracer's
//! mean poll duration of `parent` is compared with. stdout stays fixed.
//!
//! Why the counts are exact: the 8 leaves park together and wake the task by
//! ref in the same poll, which collapses into one more poll of the task; each
//! poll of `parent` polls all 8 unfinished children once (`join!`), and each
//! child's levels once each. So parent: K+1 polls; outer, middle, inner and
//! leaf: 8(K+1); each leaf's K `YieldNow(1)`s: 2 polls each, 16K in all. Each
//! poll of `leaf` spins once, so every poll of `parent` lasts at least 8 US.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use targets::{json_str, write_file, Args, Counts, GroundTruth, YieldNow, YIELD_NOW_POLL};

const PROGRAM: &str = "fidelity";
const CHILDREN: u64 = 8;

#[inline(never)]
async fn parent(spin_us: u64, yields: u64) -> u64 {
    let c = |i| outer(i, spin_us, yields);
    let r = tokio::join!(c(0), c(1), c(2), c(3), c(4), c(5), c(6), c(7));
    r.0 + r.1 + r.2 + r.3 + r.4 + r.5 + r.6 + r.7
}

#[inline(never)]
async fn outer(id: u64, spin_us: u64, yields: u64) -> u64 {
    middle(id, spin_us, yields).await
}

#[inline(never)]
async fn middle(id: u64, spin_us: u64, yields: u64) -> u64 {
    inner(id, spin_us, yields).await
}

#[inline(never)]
async fn inner(id: u64, spin_us: u64, yields: u64) -> u64 {
    leaf(spin_us, yields).await + id
}

/// Spins once in each of its K+1 polls: before each YieldNow, and after the last.
#[inline(never)]
async fn leaf(spin_us: u64, yields: u64) -> u64 {
    let mut spins = spin(spin_us);
    for _ in 0..yields {
        YieldNow::new(1).await;
        spins += spin(spin_us);
    }
    std::hint::black_box(spins);
    1
}

/// Busy-waits `us` microseconds; returns the loop count.
fn spin(us: u64) -> u64 {
    let start = Instant::now();
    let limit = Duration::from_micros(us);
    let mut n = 0u64;
    while start.elapsed() < limit {
        n = std::hint::black_box(n + 1);
    }
    n
}

/// Durations of the polls of one future, in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
struct PollStats {
    polls: u64,
    total_ns: u64,
    min_ns: u64,
    max_ns: u64,
}

impl PollStats {
    fn add(&mut self, ns: u64) {
        self.min_ns = if self.polls == 0 { ns } else { self.min_ns.min(ns) };
        self.max_ns = self.max_ns.max(ns);
        self.total_ns += ns;
        self.polls += 1;
    }

    fn to_json(self, function: &str) -> String {
        let mean = self.total_ns / self.polls.max(1);
        format!(
            "{{\"function\":{},\"polls\":{},\"total_ns\":{},\"mean_ns\":{mean},\"min_ns\":{},\"max_ns\":{}}}",
            json_str(function),
            self.polls,
            self.total_ns,
            self.min_ns,
            self.max_ns
        )
    }
}

/// Times each poll of `inner`; yields its output and the timings. The poll
/// goes through the vtable, so release builds keep the parent's poll fn out of
/// line (its children are inlined into it there).
struct Timed {
    inner: Pin<Box<dyn Future<Output = u64> + Send>>,
    stats: PollStats,
}

impl Future for Timed {
    type Output = (u64, PollStats);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let start = Instant::now();
        let r = self.inner.as_mut().poll(cx);
        let ns = start.elapsed().as_nanos() as u64;
        self.stats.add(ns);
        r.map(|v| (v, self.stats))
    }
}

fn ground_truth(args: &Args) -> GroundTruth {
    let (us, k) = (args.spin_us, args.yields);
    let mut gt = GroundTruth::new(PROGRAM);
    gt.param("spin_us", us).param("yields", k);
    gt.function(
        &format!("{PROGRAM}::parent::{{{{closure}}}}"),
        Counts::yielding(1, k),
    )
    .extra("first_poll_min_ns", CHILDREN * us * 1000);
    for f in ["outer", "middle", "inner", "leaf"] {
        gt.function(
            &format!("{PROGRAM}::{f}::{{{{closure}}}}"),
            Counts::yielding(CHILDREN, k),
        );
    }
    gt.extra("first_poll_min_ns", us * 1000); // on leaf (added last): each of its polls spins
    gt.function(YIELD_NOW_POLL, Counts::yielding(CHILDREN * k, 1));
    gt.line(&format!(
        "{PROGRAM}: {CHILDREN} children x {k} yields x {us} us spins done"
    ));
    gt
}

fn main() {
    let args = Args::parse_with(Args {
        yields: 20,
        ..Args::default()
    });
    let gt = ground_truth(&args);
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let timed = Timed {
        inner: Box::pin(parent(args.spin_us, args.yields)),
        stats: PollStats::default(),
    };
    let (sum, stats) = rt.block_on(async { tokio::spawn(timed).await.expect("parent failed") });
    assert_eq!(sum, (0..CHILDREN).sum::<u64>() + CHILDREN); // the ids, plus 1 from each leaf
    if let Some(path) = &args.timings {
        let function = format!("{PROGRAM}::parent::{{{{closure}}}}");
        write_file(path, &(stats.to_json(&function) + "\n"));
    }
    print!("{}", gt.stdout());
}
