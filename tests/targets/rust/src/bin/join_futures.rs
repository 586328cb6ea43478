//! futures::executor::LocalPool: one task runs `pair`, which awaits
//! `futures::join!(a(), b())`. `a` parks once on each of two await points, `b`
//! parks 5 times on one; both wake themselves by ref (`YieldNow`). `a` and `b`
//! are siblings under `pair`, which is polled until `b` is done (6 polls).
//! Ground truth: `targets::scenarios::join`; await points are marked `// @tag`.

use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use targets::scenarios::{self, B_YIELDS};
use targets::{Args, YieldNow};

const PROGRAM: &str = "join_futures";

/// The task's future. It parks inside `join!`, whose `.await` DWARF places
/// in futures-util's async_await/join_mod.rs, not on the marked line.
#[inline(never)]
async fn pair() {
    let (x, y) = futures::join!(a(), b()); // @join
    assert_eq!(x + y, 3);
}

#[inline(never)]
async fn a() -> u64 {
    YieldNow::new(1).await; // @a1
    YieldNow::new(1).await; // @a2
    1
}

#[inline(never)]
async fn b() -> u64 {
    for _ in 0..B_YIELDS {
        YieldNow::new(1).await; // @b
    }
    2
}

fn main() {
    let args = Args::parse(1);
    let gt = scenarios::join(
        PROGRAM,
        "futures",
        include_str!("join_futures.rs"),
        "futures::join!",
    );
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let mut pool = LocalPool::new();
    pool.spawner().spawn_local(pair()).expect("spawn_local"); // @spawn-pair
    pool.run();
    print!("{}", gt.stdout());
}
