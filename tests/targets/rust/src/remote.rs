//! A future woken only from a plain (non-runtime) thread, a known number of
//! times: the `wake_*` targets' cross-thread wakes.
//!
//! The future stores a clone of its waker and tells the thread (through an
//! mpsc channel) that it is parked; only then does the thread take the waker
//! and call `wake()` (by value) on it. The thread does this exactly `total`
//! times, so the future is polled exactly `total + 1` times: each wake makes
//! the executor poll the task once more, whether it arrives after the poll
//! returned Pending or while the task is still in that poll (tokio, async-task
//! and FuturesUnordered all repoll a task woken while running exactly once).

use std::future::Future;
use std::pin::Pin;
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;

/// Demangled name of `RemoteWake::poll`.
pub const REMOTE_WAKE_POLL: &str = "<targets::remote::RemoteWake as core::future::future::Future>::poll";

/// Name of the thread that wakes a `RemoteWake` (its comm in /proc and tracefs).
pub const WAKER_THREAD: &str = "waker-thread";

struct Slot {
    waker: Option<Waker>,
    /// Wakes sent so far; Ready once this reaches `total`.
    fired: u64,
}

pub struct RemoteWake {
    slot: Arc<Mutex<Slot>>,
    total: u64,
    parked: mpsc::Sender<()>,
}

impl Future for RemoteWake {
    /// How many wakes it took.
    type Output = u64;

    #[inline(never)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let mut slot = self.slot.lock().unwrap();
        if slot.fired == self.total {
            return Poll::Ready(slot.fired);
        }
        slot.waker = Some(cx.waker().clone());
        drop(slot);
        self.parked.send(()).expect("waker thread gone");
        Poll::Pending
    }
}

/// A `RemoteWake` and the thread (named `WAKER_THREAD`) that wakes it `total` times.
pub fn remote_wakes(total: u64) -> (RemoteWake, thread::JoinHandle<()>) {
    let slot = Arc::new(Mutex::new(Slot {
        waker: None,
        fired: 0,
    }));
    let (parked, parked_rx) = mpsc::channel();
    let shared = Arc::clone(&slot);
    let thread = thread::Builder::new()
        .name(WAKER_THREAD.into())
        .spawn(move || {
            for _ in 0..total {
                parked_rx.recv().expect("future dropped before its last wake");
                let waker = {
                    let mut slot = shared.lock().unwrap();
                    slot.fired += 1;
                    slot.waker.take().expect("parked without a waker")
                };
                waker.wake(); // by value, outside the lock
            }
        })
        .expect("spawn waker thread");
    (RemoteWake { slot, total, parked }, thread)
}
