//! Polls nested by a signal handler on the same thread: a SIGUSR1 handler
//! (installed with `sigaction`) polls a fresh `in_handler` future, which
//! awaits `YieldNow(--yields H)` (default 3), to completion with a no-op
//! waker. On a tokio current-thread runtime, one task runs `interrupted`,
//! which in each of its first `--raises R` polls (default 5) calls
//! `raise(SIGUSR1)` and then parks once on a `YieldNow(1)`.
//!
//! Why the counts are exact: `raise` is synchronous (the handler has run when
//! it returns), so each raise nests H+1 polls of `in_handler` and of its
//! `YieldNow` inside one poll of `interrupted`, on the same thread, and they
//! all return before it does. `interrupted`: R+1 polls (its task is polled
//! once per self-wake); `in_handler`: R(H+1); `YieldNow::poll`: R(H+1) in the
//! handler plus 2R in `interrupted`.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Context;
use targets::{Args, Counts, GroundTruth, YieldNow, YIELD_NOW_POLL};

const PROGRAM: &str = "signal_poll";

/// The handler's `--yields`, set before the handler is installed.
static HANDLER_YIELDS: AtomicU64 = AtomicU64::new(0);
/// Handler runs, each having polled `in_handler` to completion.
static HANDLED: AtomicU64 = AtomicU64::new(0);

#[inline(never)]
async fn interrupted(raises: u64) {
    for _ in 0..raises {
        // SAFETY: raise only sends a signal to this thread.
        assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0, "raise failed");
        YieldNow::new(1).await;
    }
}

#[inline(never)]
async fn in_handler(yields: u64) {
    YieldNow::new(yields).await;
}

/// Polls `in_handler` until Ready: no allocation, no lock, no I/O, which is
/// safe in a handler that interrupts only `raise`.
extern "C" fn on_sigusr1(_signal: libc::c_int) {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(in_handler(HANDLER_YIELDS.load(Ordering::Relaxed)));
    while fut.as_mut().poll(&mut cx).is_pending() {}
    HANDLED.fetch_add(1, Ordering::Relaxed);
}

fn install_handler() -> std::io::Result<()> {
    // SAFETY: a zeroed sigaction is valid; the handler has the C signature
    // `void (*)(int)` that sa_sigaction (without SA_SIGINFO) holds.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn ground_truth(args: &Args) -> GroundTruth {
    let (r, h) = (args.raises, args.yields);
    let mut gt = GroundTruth::new(PROGRAM);
    gt.param("raises", r).param("yields", h);
    gt.function(
        &format!("{PROGRAM}::interrupted::{{{{closure}}}}"),
        Counts::yielding(1, r),
    )
    .function(
        &format!("{PROGRAM}::in_handler::{{{{closure}}}}"),
        Counts::yielding(r, h),
    )
    .function(YIELD_NOW_POLL, Counts::yielding(r, h) + Counts::yielding(r, 1));
    gt.line(&format!("{PROGRAM}: {r} signals handled, {} polls each", h + 1));
    gt
}

fn main() {
    let args = Args::parse_with(Args {
        yields: 3,
        raises: 5,
        ..Args::default()
    });
    let gt = ground_truth(&args);
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    HANDLER_YIELDS.store(args.yields, Ordering::Relaxed);
    if let Err(e) = install_handler() {
        eprintln!("{PROGRAM}: sigaction(SIGUSR1): {e}");
        std::process::exit(1);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        tokio::spawn(interrupted(args.raises))
            .await
            .expect("interrupted failed")
    });
    assert_eq!(HANDLED.load(Ordering::Relaxed), args.raises);
    print!("{}", gt.stdout());
}
