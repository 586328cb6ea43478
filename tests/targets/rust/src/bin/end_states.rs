//! tokio current-thread runtime with the timer: four tasks that end in the
//! ways a task can end other than by finishing its own work.
//!
//! * `aborted` parks on a future that never wakes; `main` aborts it through
//!   its JoinHandle. tokio schedules the aborted task once more and that task
//!   poll drops the future (no future poll): 2 task polls, 1 future poll,
//!   cancelled.
//! * `orphan` parks the same way and is never woken or aborted: it is still
//!   pending when `main` drops the runtime, whose shutdown drops its future
//!   and frees the task. A task freed while Pending did not complete: cancelled.
//! * `Parked` is the same as a hand-written future (Pending, never wakes):
//!   a zero-sized type needs no drop glue, so a tracer sees no future
//!   dropped, only the task freed at shutdown while its last poll was Pending.
//! * `racer` awaits a biased `select!` of `slow` (polled first, parks forever)
//!   and `fast` (parks once on `YieldNow(1)`): in the second poll `fast` is
//!   Ready and select! drops `slow`, parked. The task completes; `slow` is a
//!   cancelled future (2 polls, both Pending).
//! * `timed_out` awaits `tokio::time::timeout(5 ms, never())`: Timeout polls
//!   `never` first on each poll, so `never` is polled twice (Pending both
//!   times) before the timer fires and Timeout returns Err(Elapsed), dropping
//!   it. The task completes; `never` is cancelled.
//!
//! Why exact: one thread, a FIFO run queue, and nothing wakes `aborted`,
//! `orphan`, `Parked`, `slow` or `never` (`std::future::pending`). `main`
//! yields once after spawning the first three, so each is polled exactly
//! once (and parks) before the abort. Await points are marked `// @tag`.

use std::future::{pending, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use targets::truth::{async_fn, marked_line, Truth, WakeFrom, WakeKind};
use targets::{Args, Counts, YieldNow, YIELD_NOW_POLL};

const PROGRAM: &str = "end_states";
const PARKED_POLL: &str = "<end_states::Parked as core::future::future::Future>::poll";
const TIMEOUT_MS: u64 = 5;

#[inline(never)]
async fn aborted() {
    pending::<()>().await; // @aborted
}

#[inline(never)]
async fn orphan() {
    pending::<()>().await; // @orphan
}

/// Pending forever, without keeping the waker: nothing to drop.
struct Parked;

impl Future for Parked {
    type Output = ();

    #[inline(never)]
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

#[inline(never)]
async fn racer() -> bool {
    tokio::select! { biased; _ = slow() => false, _ = fast() => true } // @select
}

#[inline(never)]
async fn slow() {
    pending::<()>().await; // @slow
}

#[inline(never)]
async fn fast() {
    YieldNow::new(1).await; // @fast
}

#[inline(never)]
async fn timed_out() -> bool {
    let limit = Duration::from_millis(TIMEOUT_MS);
    tokio::time::timeout(limit, never()).await.is_err() // @timeout
}

#[inline(never)]
async fn never() {
    pending::<()>().await; // @never
}

/// Polled and parked `pending` times, then dropped: one cancelled instance.
fn dropped_parked(pending: u64) -> Counts {
    Counts {
        polls: pending,
        pending,
        ..Counts::default()
    }
}

fn ground_truth(src: &str) -> Truth {
    let mut t = Truth::new(PROGRAM, "tokio");
    let f = |name| async_fn(PROGRAM, name);
    let line = |tag| marked_line(src, tag);
    t.future(&f("aborted"), dropped_parked(1), 1, 1)
        .future(&f("orphan"), dropped_parked(1), 1, 1)
        .future(&f("racer"), Counts::yielding(1, 1), 1, 0)
        .future(&f("slow"), dropped_parked(2), 1, 1)
        .future(&f("fast"), Counts::yielding(1, 1), 1, 0)
        .future(&f("timed_out"), Counts::yielding(1, 1), 1, 0)
        .future(&f("never"), dropped_parked(2), 1, 1)
        .function(PARKED_POLL, dropped_parked(1))
        // fast's YieldNow(1) and main's.
        .function(YIELD_NOW_POLL, Counts::yielding(2, 1))
        .task(&f("aborted"), 1, 2, None, line("spawn-aborted"))
        .ending("cancelled")
        .task(&f("orphan"), 1, 1, None, line("spawn-orphan"))
        .ending("cancelled")
        .task(PARKED_POLL, 1, 1, None, line("spawn-parked"))
        .ending("cancelled")
        .task(&f("racer"), 1, 2, None, line("spawn-racer"))
        .task(&f("timed_out"), 1, 2, None, line("spawn-timed_out"))
        .wake(&f("racer"), 1, WakeKind::ByRef, WakeFrom::SelfTask)
        .wake(&f("timed_out"), 1, WakeKind::ByVal, WakeFrom::Thread(PROGRAM.into()))
        .await_lines(&f("aborted"), vec![line("aborted")])
        .await_lines(&f("orphan"), vec![line("orphan")])
        .await_lines(&f("slow"), vec![line("slow"); 2])
        .await_lines(&f("fast"), vec![line("fast")])
        .await_lines(&f("timed_out"), vec![line("timeout")])
        .await_lines(&f("never"), vec![line("never"); 2])
        .macro_await(&f("racer"), "tokio::select!", line("select"), 1);
    t.line(&format!("{PROGRAM}: aborted, loser dropped, timed out, orphans left"));
    t
}

fn main() {
    let args = Args::parse(1);
    let gt = ground_truth(include_str!("end_states.rs"));
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let a = tokio::spawn(aborted()); // @spawn-aborted
        let o = tokio::spawn(orphan()); // @spawn-orphan
        let p = tokio::spawn(Parked); // @spawn-parked
        YieldNow::new(1).await; // all three run once and park
        a.abort();
        let err = a.await.expect_err("aborted task finished");
        assert!(err.is_cancelled());
        let won = tokio::spawn(racer()).await.expect("racer failed"); // @spawn-racer
        assert!(won, "the loser won");
        let late = tokio::spawn(timed_out()).await.expect("timed_out failed"); // @spawn-timed_out
        assert!(late, "never() finished");
        drop((o, p)); // detached: both stay in the runtime, parked
    });
    drop(rt); // shutdown drops the orphan's future and frees both tasks
    print!("{}", gt.stdout());
}
