//! Event-rate benchmark: `--threads T` threads (default 2), named `rate-<i>`,
//! each run `futures::executor::block_on(run(S))`: `run` awaits a fresh
//! `Tick` (Ready on its first poll) as fast as it can until `--seconds S`
//! (default 10) have passed, reading the clock every 1024 polls, and counts
//! the polls. At the end the program prints the counts to stderr and, with
//! `--counts FILE`, writes them there, as a ground-truth object whose
//! `functions` has `Tick::poll` (the total over all threads) and `run`.
//! A traced run makes 2 events (entry, exit) per poll. `--polls-per-second N`
//! paces each thread to N polls a second (busy-waiting between batches of
//! 1024), for measuring a tracer at a known event rate; 0 (default): no pace.
//!
//! Why the counts are exact: every `Tick` is polled exactly once (it is Ready
//! at once), and `run` counts each one; `run` itself never parks, so it is
//! polled once per thread. How many ticks fit in S seconds is not known in
//! advance, so `--ground-truth` has `run` only; `--counts` has both.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use targets::{write_file, Args, Counts, GroundTruth};

const PROGRAM: &str = "rate";
const TICK_POLL: &str = "<rate::Tick as core::future::future::Future>::poll";

struct Tick;

impl Future for Tick {
    type Output = ();

    // Not inlined, and not a pure function (black_box), so release builds
    // keep one call per poll.
    #[inline(never)]
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        std::hint::black_box(self);
        Poll::Ready(())
    }
}

#[inline(never)]
async fn run(limit: Duration, per_second: u64) -> u64 {
    let start = Instant::now();
    let mut polls = 0u64;
    loop {
        Tick.await;
        polls += 1;
        if polls & 1023 == 0 {
            if start.elapsed() >= limit {
                return polls;
            }
            pace(start, polls, per_second);
        }
    }
}

/// Waits until `polls` are due at `per_second` polls a second since `start`.
fn pace(start: Instant, polls: u64, per_second: u64) {
    if per_second == 0 {
        return;
    }
    let due = Duration::from_nanos(polls.saturating_mul(1_000_000_000) / per_second);
    while start.elapsed() < due {
        std::hint::spin_loop();
    }
}

/// The known part; `ticks` (when known, after the run) adds `Tick::poll`.
fn ground_truth(args: &Args, ticks: Option<u64>) -> GroundTruth {
    let (t, s) = (args.threads, args.seconds);
    let mut gt = GroundTruth::new(PROGRAM);
    gt.param("threads", t).param("seconds", s);
    if let Some(n) = ticks {
        gt.function(TICK_POLL, Counts::yielding(n, 0));
    }
    gt.function(
        &format!("{PROGRAM}::run::{{{{closure}}}}"),
        Counts::yielding(t, 0),
    );
    gt.line(&format!("{PROGRAM}: {t} threads x {s} s done"));
    gt
}

fn main() {
    let args = Args::parse_with(Args {
        threads: 2,
        seconds: 10,
        ..Args::default()
    });
    if args.ground_truth {
        println!("{}", ground_truth(&args, None).to_json());
        return;
    }
    let limit = Duration::from_secs(args.seconds);
    let per_second = args.polls_per_second;
    let threads: Vec<_> = (0..args.threads)
        .map(|i| {
            std::thread::Builder::new()
                .name(format!("rate-{i}"))
                .spawn(move || futures::executor::block_on(run(limit, per_second)))
                .expect("spawn thread")
        })
        .collect();
    let ticks = threads
        .into_iter()
        .map(|t| t.join().expect("rate thread panicked"))
        .sum();
    let gt = ground_truth(&args, Some(ticks));
    let counts = gt.to_json() + "\n";
    eprint!("{counts}");
    if let Some(path) = &args.counts {
        write_file(path, &counts);
    }
    print!("{}", gt.stdout());
}
