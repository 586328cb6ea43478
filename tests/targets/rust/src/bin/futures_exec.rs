//! futures::executor::LocalPool (single thread, `spawn_local` + `run`): `--tasks N` tasks, each running
//! outer -> middle -> leaf -> YieldNow(`--yields K`).
//!
//! Ground truth: a task is polled once per wake, and every poll of the task
//! polls outer, middle, leaf and YieldNow once each (nothing else in the chain
//! can return Pending). YieldNow(K) needs K+1 polls, so each function is polled
//! N*(K+1) times: N Ready and N*K Pending.

use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use targets::{chain_truth, Args, Big, YieldNow};

const PROGRAM: &str = "futures_exec";

/// The task's outermost future. Poll fn: `futures_exec::outer::{{closure}}`, returns `Poll<()>`.
#[inline(never)]
async fn outer(id: u64, yields: u64) {
    let big = middle(id, yields).await;
    std::hint::black_box(big);
}

/// Poll fn `futures_exec::middle::{{closure}}` returns a 24-byte `Poll<Big>`.
#[inline(never)]
async fn middle(id: u64, yields: u64) -> Big {
    let v = leaf(yields).await;
    Big {
        a: id,
        b: v,
        c: id ^ v,
    }
}

/// Poll fn `futures_exec::leaf::{{closure}}` returns `Poll<u64>`.
#[inline(never)]
async fn leaf(yields: u64) -> u64 {
    YieldNow::new(yields).await;
    yields * 2
}

fn main() {
    let args = Args::parse(4);
    let gt = chain_truth(PROGRAM, args.tasks, args.yields);
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    // LocalPool keeps tasks in a FuturesUnordered, which polls a task only when
    // its waker fired, once per wake; `run` returns when all tasks completed.
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    for id in 0..args.tasks {
        spawner.spawn_local(outer(id, args.yields)).expect("spawn_local");
    }
    pool.run();
    print!("{}", gt.stdout());
}
