//! tokio current-thread runtime: tasks whose poll durations, waits and
//! lifetimes are known by construction, run one after the other (each is
//! awaited before the next is spawned), so nothing else runs during a poll.
//!
//! * `few`: 3 polls that busy-spin 12, 2 and 4 ms (in that order; each but
//!   the last then parks on `YieldNow(1)`). Nearest-rank percentiles (the
//!   value at rank ceil(n·p/100) of the sorted durations, what
//!   src/trace/summary.c uses): mean 6, p50 4, p99 = max 12 ms; a mean of
//!   total/(n+1) would be 4.5 ms.
//! * `many`: 100 polls: 20 ms, 10 ms, then 70 of 2 ms and 28 of 4 ms
//!   interleaved; sorted, rank 50 is 2 ms, rank 99 is 10 ms, rank 100 is
//!   20 ms: mean 2.82, p50 2, p99 10, max 20 ms, all different.
//! * `napper`: 3 polls that spin 10 ms each, separated by two
//!   `tokio::time::sleep(20 ms)`: busy ≈ 30 ms, idle (waiting for the timer)
//!   ≈ 40 ms, lifetime ≈ 70 ms.
//! * `waiter` parks on a oneshot; `sender`, spawned after it, sends and then
//!   spins 8 ms in the same poll. On one thread the waiter cannot run until
//!   that poll ends: its scheduled time (wake -> poll) is ≈ 8 ms.
//!
//! Polls of 8 ms and more (the ground truth's `long_polls`, 7): few 1,
//! many 2, napper 3, sender 1; the others take 4 ms or less.
//!
//! The nominal figures are what the code asks for; what a run really took is
//! measured by the program's own clock: `Timed` times each poll of each
//! task's future from outside it (`Instant` before and after the call), and
//! napper's lifetime runs from just before its spawn to its last statement,
//! each of its sleeps from just before its `.await` to just after it.
//! `--timings FILE` writes those measurements as one JSON line (ns), each
//! list a task's poll durations in order, to compare a tracer's figures with:
//! `{"few":[...],"many":[...],"napper":[...],"napper_lifetime_ns":N,
//! "napper_slept_ns":N,"sender":[...],"sender_held_ns":N,"waiter":[...],"waiter_waited_ns":N}`
//! (the sender's time on the thread after its send, the waiter's send ->
//! resume: its scheduled time lies between them). Spins are wall-clock: a
//! preempted spin ends on time or late, and the measurement
//! shows it. stdout stays fixed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use targets::truth::{async_fn, marked_line, Truth};
use targets::{write_file, Args, Counts, YieldNow, YIELD_NOW_POLL};
use tokio::sync::oneshot;

const PROGRAM: &str = "timing";
const FEW_MS: [u64; 3] = [12, 2, 4];
const MANY: usize = 100;
const NAP_POLLS: u64 = 3;
const NAP_SPIN_MS: u64 = 10;
const NAP_SLEEP_MS: u64 = 20;
const HOLD_MS: u64 = 8;

/// many's spins in poll order: the two longest first (a summary that
/// forgot to sort would read them at the wrong ranks), then 2 and 4 ms.
fn many_ms() -> Vec<u64> {
    let rest = (0..MANY - 2).map(|i| if i % 7 < 5 { 2 } else { 4 });
    [20, 10].into_iter().chain(rest).collect()
}

/// Busy-waits `ms` milliseconds (wall clock).
fn spin(ms: u64) {
    let start = Instant::now();
    let limit = Duration::from_millis(ms);
    let mut n = 0u64;
    while start.elapsed() < limit {
        n = std::hint::black_box(n + 1);
    }
}

/// Times each poll of `inner` from outside it (so a poll's probes, the
/// YieldNow it polls and any preemption are inside the figure, as they are
/// inside a tracer's); yields the output and the durations (ns).
struct Timed<F> {
    inner: Pin<Box<F>>,
    polls: Vec<u64>,
}

fn timed<F: Future>(inner: F) -> Timed<F> {
    Timed {
        inner: Box::pin(inner),
        polls: Vec::new(),
    }
}

impl<F: Future> Future for Timed<F> {
    type Output = (F::Output, Vec<u64>);

    // Inlined even in debug builds (LLVM's always-inliner runs at -O0): no
    // poll fn of its own, so tokio polls the inner future as the task's root
    // and the task is named after it; nothing nests around the timed polls.
    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let start = Instant::now();
        let r = self.inner.as_mut().poll(cx);
        self.polls.push(start.elapsed().as_nanos() as u64);
        r.map(|v| (v, std::mem::take(&mut self.polls)))
    }
}

/// One spin per poll, `ms[i]` in poll i; parks between them.
#[inline(never)]
async fn few() {
    for (i, &ms) in FEW_MS.iter().enumerate() {
        if i > 0 {
            YieldNow::new(1).await;
        }
        spin(ms);
    }
}

/// The same shape as `few`, over `many_ms()`.
#[inline(never)]
async fn many() {
    for (i, ms) in many_ms().into_iter().enumerate() {
        if i > 0 {
            YieldNow::new(1).await;
        }
        spin(ms);
    }
}

/// Returns when it ended and how long its sleeps took, each from just
/// before its `.await` to just after it (ns).
#[inline(never)]
async fn napper() -> (Instant, u64) {
    let mut slept = 0;
    for i in 0..NAP_POLLS {
        if i > 0 {
            let start = Instant::now();
            tokio::time::sleep(Duration::from_millis(NAP_SLEEP_MS)).await; // @nap
            slept += start.elapsed().as_nanos() as u64;
        }
        spin(NAP_SPIN_MS);
    }
    (Instant::now(), slept)
}

/// Returns the time from the send to its own resumption (ns).
#[inline(never)]
async fn waiter(rx: oneshot::Receiver<Instant>) -> u64 {
    let sent = rx.await.expect("sender dropped"); // @waiter
    sent.elapsed().as_nanos() as u64
}

/// Sends, then keeps the thread for HOLD_MS; returns how long it kept it
/// after the send (ns), to the end of its spin.
#[inline(never)]
async fn sender(tx: oneshot::Sender<Instant>) -> u64 {
    tx.send(Instant::now()).expect("waiter gone");
    let sent = Instant::now();
    spin(HOLD_MS);
    sent.elapsed().as_nanos() as u64
}

fn ground_truth(src: &str) -> Truth {
    let mut t = Truth::new(PROGRAM, "tokio");
    let f = |name| async_fn(PROGRAM, name);
    let line = |tag| marked_line(src, tag);
    let few_parks = FEW_MS.len() as u64 - 1;
    let many_parks = MANY as u64 - 1;
    t.param("long_polls", 1 + 2 + NAP_POLLS + 1)
        .future(&f("few"), Counts::yielding(1, few_parks), 1, 0)
        .future(&f("many"), Counts::yielding(1, many_parks), 1, 0)
        .future(&f("napper"), Counts::yielding(1, NAP_POLLS - 1), 1, 0)
        .future(&f("waiter"), Counts::yielding(1, 1), 1, 0)
        .future(&f("sender"), Counts::yielding(1, 0), 1, 0)
        .function(YIELD_NOW_POLL, Counts::yielding(few_parks + many_parks, 1))
        .task(&f("few"), 1, few_parks + 1, None, line("spawn-few"))
        .task(&f("many"), 1, many_parks + 1, None, line("spawn-many"))
        .task(&f("napper"), 1, NAP_POLLS, None, line("spawn-napper"))
        .task(&f("waiter"), 1, 2, None, line("spawn-waiter"))
        .task(&f("sender"), 1, 1, None, line("spawn-sender"));
    t.line(&format!("{PROGRAM}: done"));
    t
}

/// A JSON array of durations.
fn list(v: &[u64]) -> String {
    let items: Vec<String> = v.iter().map(u64::to_string).collect();
    format!("[{}]", items.join(","))
}

/// Runs the tasks one after the other; returns the measurements as one
/// JSON line: each task's poll durations, napper's lifetime (from just
/// before its spawn to its last statement), the sender's time on the thread
/// after its send and the waiter's send -> resume: the waiter's scheduled
/// time lies between the two.
async fn run_all() -> String {
    let (_, few) = tokio::spawn(timed(few())).await.expect("few failed"); // @spawn-few
    let (_, many) = tokio::spawn(timed(many())).await.expect("many failed"); // @spawn-many
    let born = Instant::now();
    let ((ended, slept), nap) = tokio::spawn(timed(napper())).await.expect("napper failed"); // @spawn-napper
    let life = ended.duration_since(born).as_nanos();
    let (tx, rx) = oneshot::channel();
    let waiting = tokio::spawn(timed(waiter(rx))); // @spawn-waiter
    let (held, send) = tokio::spawn(timed(sender(tx))).await.expect("sender failed"); // @spawn-sender
    let (waited, wait) = waiting.await.expect("waiter failed");
    format!(
        "{{\"few\":{},\"many\":{},\"napper\":{},\"napper_lifetime_ns\":{life},\"napper_slept_ns\":{slept},\"sender\":{},\
         \"sender_held_ns\":{held},\"waiter\":{},\"waiter_waited_ns\":{waited}}}\n",
        list(&few),
        list(&many),
        list(&nap),
        list(&send),
        list(&wait)
    )
}

fn main() {
    let args = Args::parse(1);
    let gt = ground_truth(include_str!("timing.rs"));
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let json = rt.block_on(run_all());
    if let Some(path) = &args.timings {
        write_file(path, &json);
    }
    print!("{}", gt.stdout());
}
