//! async-std (one executor thread): one task runs `race`, a
//! `futures::select_biased!` of `loser` (polled first; it would need 100
//! polls) and `winner` (parks once). In the second poll the loser parks again,
//! the winner is Ready (its `Fuse` drops it at once), and when `race` returns
//! it drops the loser while it is parked: one cancelled instance of `loser`.
//! Ground truth: `targets::scenarios::select`; await points are marked `// @tag`.

use futures::FutureExt;
use targets::scenarios::{self, LOSER_YIELDS};
use targets::{Args, YieldNow};

const PROGRAM: &str = "select_async_std";

/// The task's future. It parks inside `select_biased!` (futures-util's
/// async_await/select_mod.rs).
#[inline(never)]
async fn race() {
    let loser = loser().fuse();
    let winner = winner().fuse();
    futures::pin_mut!(loser, winner);
    let won = futures::select_biased! { _ = loser => false, _ = winner => true }; // @select
    assert!(won, "the loser won");
} // the loser, parked, is dropped here

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
        "async-std",
        include_str!("select_async_std.rs"),
        "futures::select_biased!",
    );
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    targets::async_std_one_thread();
    // block_on's own future is not in the ground truth (racy, see join_async_std).
    async_std::task::block_on(async_std::task::spawn(race())); // @spawn-race
    print!("{}", gt.stdout());
}
