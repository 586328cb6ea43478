//! A small, realistic-looking tokio program for the README: CPU-bound workers
//! that yield between chunks, sleepers, a channel producer/consumer, and a
//! `join!` of two "requests". Runs in a few tens of milliseconds.
//!
//! Ground truth lists only the functions whose poll counts are exact whatever
//! the scheduling: `crunch` (Pending once per `yield_now`, `rounds` times) and
//! `nap` (one Pending for its sleep, then Ready: tokio wakes a sleeping task
//! once, when its timer fires). The producer/consumer and `join!` counts depend
//! on thread interleaving and timer granularity, so they are left out.

use std::time::Duration;
use targets::{Args, Counts, GroundTruth};
use tokio::sync::mpsc;
use tokio::time::sleep;

const PROGRAM: &str = "demo";
const WORKERS: u64 = 3;
const ROUNDS: u64 = 4;
const CHUNK: u64 = 2_000;
const NAPS: u64 = 4;
const ITEMS: u64 = 20;

/// Counts primes in `[lo, hi)` by trial division: deliberately CPU-bound.
fn count_primes(lo: u64, hi: u64) -> u64 {
    (lo.max(2)..hi)
        .filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .count() as u64
}

/// A CPU-bound worker that yields to the scheduler after every chunk.
#[inline(never)]
async fn crunch(id: u64) -> u64 {
    let mut found = 0;
    for round in 0..ROUNDS {
        let lo = (id * ROUNDS + round) * CHUNK;
        found += count_primes(lo, lo + CHUNK);
        tokio::task::yield_now().await;
    }
    found
}

/// Sleeps a little, like a task waiting for a timeout or a slow device.
#[inline(never)]
async fn nap(id: u64) -> u64 {
    sleep(Duration::from_millis(2 + 3 * id)).await;
    id
}

#[inline(never)]
async fn produce(tx: mpsc::Sender<u64>) {
    for item in 1..=ITEMS {
        tx.send(item).await.expect("consumer gone");
    }
}

#[inline(never)]
async fn consume(mut rx: mpsc::Receiver<u64>) -> u64 {
    let mut sum = 0;
    while let Some(item) = rx.recv().await {
        sum += item;
    }
    sum
}

#[inline(never)]
async fn fetch_user() -> &'static str {
    sleep(Duration::from_millis(5)).await;
    "alice"
}

#[inline(never)]
async fn fetch_orders() -> u64 {
    sleep(Duration::from_millis(8)).await;
    3
}

/// Two "requests" in flight at once in one task.
#[inline(never)]
async fn fetch_pair() -> String {
    let (user, orders) = tokio::join!(fetch_user(), fetch_orders());
    format!("{user} has {orders} orders")
}

fn ground_truth() -> GroundTruth {
    let mut gt = GroundTruth::new(PROGRAM);
    gt.param("workers", WORKERS)
        .param("rounds", ROUNDS)
        .param("naps", NAPS);
    gt.function("demo::crunch::{{closure}}", Counts::yielding(WORKERS, ROUNDS));
    gt.function("demo::nap::{{closure}}", Counts::yielding(NAPS, 1));
    let primes = count_primes(0, WORKERS * ROUNDS * CHUNK);
    gt.line(&format!(
        "demo: {WORKERS} workers found {primes} primes below {}",
        WORKERS * ROUNDS * CHUNK
    ));
    gt.line(&format!(
        "demo: {NAPS} naps done, ids sum {}",
        NAPS * (NAPS - 1) / 2
    ));
    gt.line(&format!(
        "demo: consumed {ITEMS} items, sum {}",
        ITEMS * (ITEMS + 1) / 2
    ));
    gt.line("demo: alice has 3 orders");
    gt
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if Args::parse(WORKERS).ground_truth {
        println!("{}", ground_truth().to_json());
        return;
    }
    let workers: Vec<_> = (0..WORKERS).map(|id| tokio::spawn(crunch(id))).collect();
    let naps: Vec<_> = (0..NAPS).map(|id| tokio::spawn(nap(id))).collect();
    let (tx, rx) = mpsc::channel(4);
    let producer = tokio::spawn(produce(tx));
    let consumer = tokio::spawn(consume(rx));
    let pair = tokio::spawn(fetch_pair());

    let mut primes = 0;
    for w in workers {
        primes += w.await.expect("worker panicked");
    }
    println!(
        "demo: {WORKERS} workers found {primes} primes below {}",
        WORKERS * ROUNDS * CHUNK
    );
    let mut ids = 0;
    for n in naps {
        ids += n.await.expect("nap panicked");
    }
    println!("demo: {NAPS} naps done, ids sum {ids}");
    producer.await.expect("producer panicked");
    println!(
        "demo: consumed {ITEMS} items, sum {}",
        consumer.await.expect("consumer panicked")
    );
    println!("demo: {}", pair.await.expect("fetch panicked"));
}
