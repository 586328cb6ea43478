//! async-std (global executor, `task::spawn` + `task::block_on`): `--tasks N` tasks, each running
//! outer -> middle -> leaf -> YieldNow(`--yields K`).
//!
//! Ground truth: a task is polled once per wake, and every poll of the task
//! polls outer, middle, leaf and YieldNow once each (nothing else in the chain
//! can return Pending). YieldNow(K) needs K+1 polls, so each function is polled
//! N*(K+1) times: N Ready and N*K Pending.

use targets::{chain_truth, Args, Big, YieldNow};

const PROGRAM: &str = "async_std_tasks";

/// The task's outermost future. Poll fn: `async_std_tasks::outer::{{closure}}`, returns `Poll<()>`.
#[inline(never)]
async fn outer(id: u64, yields: u64) {
    let big = middle(id, yields).await;
    std::hint::black_box(big);
}

/// Poll fn `async_std_tasks::middle::{{closure}}` returns a 24-byte `Poll<Big>`.
#[inline(never)]
async fn middle(id: u64, yields: u64) -> Big {
    let v = leaf(yields).await;
    Big {
        a: id,
        b: v,
        c: id ^ v,
    }
}

/// Poll fn `async_std_tasks::leaf::{{closure}}` returns `Poll<u64>`.
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
    // async-std wraps each task in `SupportTaskLocals`, whose poll polls `outer` once.
    async_std::task::block_on(async {
        let handles: Vec<_> = (0..args.tasks)
            .map(|id| async_std::task::spawn(outer(id, args.yields)))
            .collect();
        for h in handles {
            h.await;
        }
    });
    print!("{}", gt.stdout());
}
