//! tokio current-thread runtime: one task runs `race`, a biased
//! `tokio::select!` of `loser` (polled first; it would need 100 polls) and
//! `winner` (parks once). In the second poll the loser parks again, the
//! winner is Ready, and select! drops the loser while it is parked: one
//! cancelled instance of `loser`, dropped through its drop glue.
//! Ground truth: `targets::scenarios::select`; await points are marked `// @tag`.

use targets::scenarios::{self, LOSER_YIELDS};
use targets::{Args, YieldNow};

const PROGRAM: &str = "select_tokio";

/// The task's future. It parks inside `select!` (tokio's macros/select.rs).
#[inline(never)]
async fn race() {
    let won = tokio::select! { biased; _ = loser() => false, _ = winner() => true }; // @select
    assert!(won, "the loser won");
}

#[inline(never)]
async fn loser() {
    for _ in 0..LOSER_YIELDS {
        YieldNow::new(1).await; // @loser
    }
}

#[inline(never)]
async fn winner() {
    YieldNow::new(1).await; // @winner
}

fn main() {
    let args = Args::parse(1);
    let gt = scenarios::select(
        PROGRAM,
        "tokio",
        include_str!("select_tokio.rs"),
        "tokio::select!",
    );
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    rt.block_on(async { tokio::spawn(race()).await.expect("race failed") }); // @spawn-race
    print!("{}", gt.stdout());
}
