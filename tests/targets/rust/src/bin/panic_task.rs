//! tokio current-thread runtime: `--tasks N` tasks (default 1) run
//! outer -> middle -> leaf, where `leaf` yields once, then panics ("boom") in
//! its second poll; plus `--healthy M` tasks (default 0) running `healthy()`,
//! which awaits YieldNow(`--yields K`). tokio catches each panic; main prints
//! one line per task and exits 0.
//!
//! Ground truth per panicking task: outer, middle and leaf are each polled
//! twice: once Pending (parked in YieldNow(1)), once unwound by the panic
//! (neither Ready nor Pending). YieldNow(1) is polled twice and returns
//! normally both times (Ready before leaf panics), so it is never unwound.

use targets::{Args, Counts, GroundTruth, YieldNow, YIELD_NOW_POLL};

const PROGRAM: &str = "panic_task";

#[inline(never)]
async fn outer(id: u64) {
    let v = middle(id).await;
    std::hint::black_box(v);
}

#[inline(never)]
async fn middle(id: u64) -> u64 {
    leaf(id).await + 1
}

/// Two async-fn levels below the task's outermost future.
#[inline(never)]
async fn leaf(id: u64) -> u64 {
    YieldNow::new(1).await;
    if std::hint::black_box(true) {
        panic!("boom");
    }
    id
}

#[inline(never)]
async fn healthy(yields: u64) -> u64 {
    YieldNow::new(yields).await;
    yields
}

fn ground_truth(args: &Args) -> GroundTruth {
    let (n, m, k) = (args.tasks, args.healthy, args.yields);
    let mut gt = GroundTruth::new(PROGRAM);
    gt.param("tasks", n).param("healthy", m).param("yields", k);
    let unwinding = Counts {
        polls: 2 * n,
        ready: 0,
        pending: n,
        unwound: n,
    };
    for f in ["outer", "middle", "leaf"] {
        gt.function(&format!("{PROGRAM}::{f}::{{{{closure}}}}"), unwinding);
    }
    gt.function(
        &format!("{PROGRAM}::healthy::{{{{closure}}}}"),
        Counts::yielding(m, k),
    );
    gt.function(YIELD_NOW_POLL, Counts::yielding(n, 1) + Counts::yielding(m, k));
    for i in 0..n {
        gt.line(&format!("task {i} panicked: boom"));
    }
    for i in 0..m {
        gt.line(&format!("healthy task {i} returned {k}"));
    }
    gt.line(&format!("{PROGRAM}: {n} tasks panicked, {m} healthy tasks done"));
    gt
}

fn main() {
    let args = Args::parse(1);
    let gt = ground_truth(&args);
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let panicking: Vec<_> = (0..args.tasks).map(|id| tokio::spawn(outer(id))).collect();
        let healthy: Vec<_> = (0..args.healthy)
            .map(|_| tokio::spawn(healthy(args.yields)))
            .collect();
        for (i, h) in panicking.into_iter().enumerate() {
            match h.await {
                Err(e) if e.is_panic() => {
                    let payload = e.into_panic();
                    let msg = payload
                        .downcast_ref::<&str>()
                        .copied()
                        .unwrap_or("<non-string payload>");
                    println!("task {i} panicked: {msg}");
                }
                other => println!("task {i} did not panic: {other:?}"),
            }
        }
        for (i, h) in healthy.into_iter().enumerate() {
            println!(
                "healthy task {i} returned {}",
                h.await.expect("healthy task failed")
            );
        }
    });
    println!(
        "{PROGRAM}: {} tasks panicked, {} healthy tasks done",
        args.tasks, args.healthy
    );
}
