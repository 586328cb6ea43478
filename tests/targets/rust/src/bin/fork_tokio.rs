//! Child processes of a traced program: the tracer must record only the
//! parent. On a fresh tokio current-thread runtime per phase, `--tasks N`
//! tasks (default 2) each run job -> step -> YieldNow:
//!
//! 1. the parent runs them with `--yields K` (default 3);
//! 2. it `fork()`s; the child runs them with `--child-yields C` (default 5),
//!    prints a line and `_exit(7)`s; the parent waits and checks the 7;
//! 3. the parent runs them with K yields again;
//! 4. it runs this binary with `--child` through `std::process::Command`
//!    (exec: a new image, same file), which runs them with C yields, prints a
//!    line and exits 0; the parent waits and checks the 0.
//!
//! Why the counts are exact: each task is polled once per self-wake, so each
//! function is polled N(K+1) times per parent phase, and the parent does not
//! fork while a runtime exists (a current-thread runtime starts no threads),
//! so the children start with a copy of an idle, single-threaded process. The
//! ground truth is the parent's alone: 2N(K+1) polls per function (with
//! `--child`, the child's: N(C+1)). The children's polls (N(C+1) each) must
//! not be in a trace of the parent. stdout is in a fixed order: the parent
//! waits for each child before printing again.

use std::io::Write as _;
use targets::{Args, Counts, GroundTruth, YieldNow, YIELD_NOW_POLL};

const PROGRAM: &str = "fork_tokio";
const FORK_EXIT: i32 = 7;

#[inline(never)]
async fn job(id: u64, yields: u64) -> u64 {
    step(yields).await + id
}

#[inline(never)]
async fn step(yields: u64) -> u64 {
    YieldNow::new(yields).await;
    1
}

/// `tasks` tasks running `job`, on a runtime that is gone when this returns.
fn run_jobs(tasks: u64, yields: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let sum: u64 = rt.block_on(async {
        let handles: Vec<_> = (0..tasks).map(|id| tokio::spawn(job(id, yields))).collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.expect("job failed");
        }
        sum
    });
    assert_eq!(sum, tasks * (tasks + 1) / 2); // the ids, plus 1 from each job
}

fn ran(who: &str, tasks: u64, yields: u64) -> String {
    format!("{PROGRAM}: {who} ran {tasks} tasks x {yields} yields")
}

fn exited(who: &str, code: i32) -> String {
    format!("{PROGRAM}: {who} exited {code}")
}

fn ground_truth(args: &Args) -> GroundTruth {
    let (n, k, c) = (args.tasks, args.yields, args.child_yields);
    let mut gt = GroundTruth::new(PROGRAM);
    gt.param("tasks", n).param("yields", k).param("child_yields", c);
    let counts = if args.child {
        Counts::yielding(n, c)
    } else {
        Counts::yielding(2 * n, k)
    };
    for f in ["job", "step"] {
        gt.function(&format!("{PROGRAM}::{f}::{{{{closure}}}}"), counts);
    }
    gt.function(YIELD_NOW_POLL, counts);
    if args.child {
        gt.line(&ran("spawned child", n, c));
        return gt;
    }
    gt.line(&ran("parent", n, k))
        .line(&ran("forked child", n, c))
        .line(&exited("forked child", FORK_EXIT))
        .line(&ran("parent", n, k))
        .line(&ran("spawned child", n, c))
        .line(&exited("spawned child", 0));
    gt
}

fn fail(msg: &str) -> ! {
    eprintln!("{PROGRAM}: {msg}");
    std::process::exit(1)
}

/// Forks; the child runs the jobs with C yields and `_exit`s with FORK_EXIT.
fn fork_child(args: &Args) {
    // Nothing may be left buffered, or both processes would print it.
    std::io::stdout().flush().expect("flush stdout");
    // SAFETY: the process is single-threaded here (no runtime alive), so the
    // child may run arbitrary code.
    match unsafe { libc::fork() } {
        -1 => fail(&format!("fork: {}", std::io::Error::last_os_error())),
        0 => {
            run_jobs(args.tasks, args.child_yields);
            println!("{}", ran("forked child", args.tasks, args.child_yields));
            let flushed = std::io::stdout().flush().is_ok();
            // SAFETY: _exit ends the child at once (no atexit handlers, no unwinding).
            unsafe { libc::_exit(if flushed { FORK_EXIT } else { 1 }) }
        }
        pid => {
            let mut status = 0;
            // SAFETY: plain waitpid on our own child.
            if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
                fail(&format!("waitpid: {}", std::io::Error::last_os_error()));
            }
            if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != FORK_EXIT {
                fail(&format!(
                    "forked child: wait status {status:#x}, want exit {FORK_EXIT}"
                ));
            }
            println!("{}", exited("forked child", FORK_EXIT));
        }
    }
}

/// Runs this binary with `--child`; its stdout is ours.
fn spawn_child(args: &Args) {
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(&format!("current_exe: {e}")));
    let status = std::process::Command::new(exe)
        .arg("--child")
        .args(["--tasks", &args.tasks.to_string()])
        .args(["--child-yields", &args.child_yields.to_string()])
        .status()
        .unwrap_or_else(|e| fail(&format!("cannot run --child: {e}")));
    if status.code() != Some(0) {
        fail(&format!("spawned child: {status}, want exit 0"));
    }
    println!("{}", exited("spawned child", 0));
}

fn main() {
    let args = Args::parse(2);
    let gt = ground_truth(&args);
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let (n, k, c) = (args.tasks, args.yields, args.child_yields);
    if args.child {
        run_jobs(n, c);
        println!("{}", ran("spawned child", n, c));
        return;
    }
    run_jobs(n, k);
    println!("{}", ran("parent", n, k));
    fork_child(&args);
    run_jobs(n, k);
    println!("{}", ran("parent", n, k));
    spawn_child(&args);
}
