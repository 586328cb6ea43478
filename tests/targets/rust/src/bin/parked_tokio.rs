//! tokio current-thread runtime: a task (`stuck`) awaits a oneshot that is
//! never sent, while `main` keeps the sender and sleeps `--seconds S`
//! (default 2). Traced with `record --duration`, the trace ends with that
//! task pending, parked at the `.await` marked `// @stuck`; the ground truth
//! names it. Run to the end, the program drops the sender and exits 0.

use targets::truth::{async_fn, marked_line};

const PROGRAM: &str = "parked_tokio";

#[inline(never)]
async fn stuck(rx: tokio::sync::oneshot::Receiver<u64>) -> u64 {
    rx.await.unwrap_or(0) // @stuck
}

fn seconds() -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

fn main() {
    if std::env::args().any(|a| a == "--ground-truth") {
        println!(
            "{{\"program\":\"{PROGRAM}\",\"parked\":{{\"function\":\"{}\",\"line\":{}}}}}",
            async_fn(PROGRAM, "stuck"),
            marked_line(include_str!("parked_tokio.rs"), "stuck")
        );
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<u64>();
        let task = tokio::spawn(stuck(rx));
        tokio::time::sleep(std::time::Duration::from_secs(seconds())).await;
        drop(tx);
        task.await.expect("stuck failed");
    });
    println!("{PROGRAM}: done");
}
