//! tokio current-thread runtime: one task runs `pair`, which awaits
//! `tokio::join!(a(), b())`. `a` parks once on each of two await points, `b`
//! parks 5 times on one; both wake themselves by ref (`YieldNow`). `a` and `b`
//! are siblings under `pair`, which is polled until `b` is done (6 polls).
//! Ground truth: `targets::scenarios::join`; await points are marked `// @tag`.

use targets::scenarios::{self, B_YIELDS};
use targets::{Args, YieldNow};

const PROGRAM: &str = "join_tokio";

/// The task's future. It parks inside `join!`, whose `.await` DWARF places
/// in tokio's macros/join.rs, not on the marked line.
#[inline(never)]
async fn pair() {
    let (x, y) = tokio::join!(a(), b()); // @join
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
    let gt = scenarios::join(PROGRAM, "tokio", include_str!("join_tokio.rs"), "tokio::join!");
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    rt.block_on(async { tokio::spawn(pair()).await.expect("pair failed") }); // @spawn-pair
    print!("{}", gt.stdout());
}
