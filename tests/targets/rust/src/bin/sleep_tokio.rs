//! tokio current-thread runtime with the timer: one task runs `sleeper`,
//! which awaits `tokio::time::sleep(1 ms)` 5 times. Each sleep parks once and
//! is woken once, by value, by the time driver, which runs in block_on's
//! park on the main thread (outside any task poll): 5 wakes, 6 polls.
//! Ground truth: `targets::scenarios::sleep`; await points are marked `// @tag`.

use std::time::Duration;
use targets::scenarios::{self, SLEEPS};
use targets::Args;

const PROGRAM: &str = "sleep_tokio";

#[inline(never)]
async fn sleeper() {
    for _ in 0..SLEEPS {
        tokio::time::sleep(Duration::from_millis(1)).await; // @sleep
    }
}

fn main() {
    let args = Args::parse(1);
    let gt = scenarios::sleep(PROGRAM, include_str!("sleep_tokio.rs"));
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    rt.block_on(async { tokio::spawn(sleeper()).await.expect("sleeper failed") }); // @spawn-sleeper
    print!("{}", gt.stdout());
}
