//! Shared parts of the asynctrace test targets: command-line parsing, the
//! hand-written `YieldNow` future, and a tiny JSON writer for `--ground-truth`.
//!
//! The async fns under test live in each binary's own file (so their symbols
//! read `tokio_mt::outer::{{closure}}` and so on); only `YieldNow` lives here, so
//! its poll fn is `<targets::YieldNow as core::future::future::Future>::poll`
//! in every binary.
//!
//! `truth` builds the richer ground truth of the task-level targets (tasks,
//! wakes, call trees, await lines), `scenarios` computes it for each
//! scenario, and `remote` is their cross-thread waker.

pub mod remote;
pub mod scenarios;
pub mod truth;

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Demangled name of `YieldNow::poll`, as `nm --demangle` prints it.
pub const YIELD_NOW_POLL: &str = "<targets::YieldNow as core::future::future::Future>::poll";

/// A future that returns `Pending` `remaining` times, waking itself each time,
/// then `Ready(())`. So it is polled exactly `remaining + 1` times, as long as
/// the executor polls a task only after a wake (tokio, async-std and
/// futures::executor all do): each self-wake causes exactly one more poll.
pub struct YieldNow {
    remaining: u64,
}

impl YieldNow {
    pub fn new(remaining: u64) -> Self {
        YieldNow { remaining }
    }
}

impl Future for YieldNow {
    type Output = ();

    // Never inlined, in release builds too, so it keeps its own symbol.
    #[inline(never)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.remaining == 0 {
            return Poll::Ready(());
        }
        self.remaining -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Makes async-std run spawned tasks on one executor thread; call it before
/// anything touches async-std. With a single runner, async-executor's queues
/// are FIFO, so the schedule (and with it the ground truth of the async-std
/// task-level targets) is deterministic.
pub fn async_std_one_thread() {
    std::env::set_var("ASYNC_STD_THREAD_COUNT", "1");
}

/// Command-line options shared by all binaries (each uses what it needs).
#[derive(Clone, Debug)]
pub struct Args {
    /// `--tasks N`: number of tasks spawned.
    pub tasks: u64,
    /// `--yields K`: how many times each task's `YieldNow` returns Pending.
    pub yields: u64,
    /// `--spin-ms MS`: busy_poll's busy-spin per first poll.
    pub spin_ms: u64,
    /// `--spin-us US`: fidelity's busy-spin per leaf poll.
    pub spin_us: u64,
    /// `--healthy M`: panic_task's extra tasks that do not panic.
    pub healthy: u64,
    /// `--wakes M`: the wake_* targets' wakes from a plain thread.
    pub wakes: u64,
    /// `--threads N`: threads started (threads_churn, rate).
    pub threads: u64,
    /// `--parallel P`: threads_churn's threads alive at once (one wave).
    pub parallel: u64,
    /// `--child-yields C`: fork_tokio's yields in its child processes.
    pub child_yields: u64,
    /// `--raises R`: signal_poll's `raise(SIGUSR1)` calls.
    pub raises: u64,
    /// `--seconds S`: how long rate runs.
    pub seconds: u64,
    /// `--polls-per-second N`: rate's pace per thread (0: as fast as it can).
    pub polls_per_second: u64,
    /// `--timings FILE`: where fidelity writes its own poll timings.
    pub timings: Option<String>,
    /// `--counts FILE`: where rate writes the polls it made.
    pub counts: Option<String>,
    /// `--child`: fork_tokio's mode for the child it runs with `Command`.
    pub child: bool,
    /// `--ground-truth`: print the expected counts as JSON, do not run.
    pub ground_truth: bool,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            tasks: 1,
            yields: 3,
            spin_ms: 3,
            spin_us: 4,
            healthy: 0,
            wakes: 3,
            threads: 2,
            parallel: 8,
            child_yields: 5,
            raises: 5,
            seconds: 10,
            polls_per_second: 0,
            timings: None,
            counts: None,
            child: false,
            ground_truth: false,
        }
    }
}

impl Args {
    /// Parses `std::env::args()`; `default_tasks` is the binary's `--tasks` default.
    /// Exits with status 2 and a usage line on a bad argument.
    pub fn parse(default_tasks: u64) -> Args {
        Args::parse_with(Args {
            tasks: default_tasks,
            ..Args::default()
        })
    }

    /// Parses `std::env::args()` over the binary's own defaults.
    pub fn parse_with(defaults: Args) -> Args {
        let mut args = defaults;
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let slot = match flag.as_str() {
                "--ground-truth" => {
                    args.ground_truth = true;
                    continue;
                }
                "--child" => {
                    args.child = true;
                    continue;
                }
                "--timings" => {
                    args.timings = Some(file_arg(&flag, it.next()));
                    continue;
                }
                "--counts" => {
                    args.counts = Some(file_arg(&flag, it.next()));
                    continue;
                }
                "--tasks" => &mut args.tasks,
                "--yields" => &mut args.yields,
                "--spin-ms" => &mut args.spin_ms,
                "--spin-us" => &mut args.spin_us,
                "--healthy" => &mut args.healthy,
                "--wakes" => &mut args.wakes,
                "--threads" => &mut args.threads,
                "--parallel" => &mut args.parallel,
                "--child-yields" => &mut args.child_yields,
                "--raises" => &mut args.raises,
                "--seconds" => &mut args.seconds,
                "--polls-per-second" => &mut args.polls_per_second,
                _ => usage(&format!("unknown argument '{flag}'")),
            };
            *slot = match it.next().map(|v| v.parse::<u64>()) {
                Some(Ok(v)) => v,
                _ => usage(&format!("{flag} needs a non-negative integer")),
            };
        }
        args
    }
}

fn file_arg(flag: &str, value: Option<String>) -> String {
    value.unwrap_or_else(|| usage(&format!("{flag} needs a file name")))
}

fn usage(msg: &str) -> ! {
    let prog = std::env::args().next().unwrap_or_default();
    eprintln!("{prog}: {msg}");
    eprintln!(
        "usage: {prog} [--tasks N] [--yields K] [--spin-ms MS] [--spin-us US] [--healthy M] [--wakes M] \
         [--threads N] [--parallel P] [--child-yields C] [--raises R] [--seconds S] [--polls-per-second N] \
         [--timings FILE] [--counts FILE] [--child] [--ground-truth]"
    );
    std::process::exit(2)
}

/// Writes `text` to `path` (a `--timings`/`--counts` file); exits 1 with a
/// message on failure, so a full disk is a failing run, not a missing file.
pub fn write_file(path: &str, text: &str) {
    if let Err(e) = std::fs::write(path, text) {
        let prog = std::env::args().next().unwrap_or_default();
        eprintln!("{prog}: cannot write {path}: {e}");
        std::process::exit(1)
    }
}

/// Expected counts for one poll function. Invariant: polls = ready + pending + unwound.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub polls: u64,
    pub ready: u64,
    pub pending: u64,
    /// Polls whose frame was unwound by a panic (neither Ready nor Pending).
    pub unwound: u64,
}

impl Counts {
    /// `n` futures each returning Pending `k` times, then Ready: n*(k+1) polls.
    pub fn yielding(n: u64, k: u64) -> Counts {
        Counts {
            polls: n * (k + 1),
            ready: n,
            pending: n * k,
            unwound: 0,
        }
    }
}

impl std::ops::Add for Counts {
    type Output = Counts;

    fn add(self, o: Counts) -> Counts {
        Counts {
            polls: self.polls + o.polls,
            ready: self.ready + o.ready,
            pending: self.pending + o.pending,
            unwound: self.unwound + o.unwound,
        }
    }
}

/// One entry of `"functions"`: demangled name, counts, extra integer fields.
type FnTruth = (String, Counts, Vec<(String, u64)>);

/// Builder for the `--ground-truth` JSON object. Key order is insertion order.
pub struct GroundTruth {
    params: Vec<(String, String)>,
    functions: Vec<FnTruth>,
    stdout: String,
}

impl GroundTruth {
    pub fn new(program: &str) -> Self {
        GroundTruth {
            params: vec![("program".into(), json_str(program))],
            functions: vec![],
            stdout: String::new(),
        }
    }

    /// A top-level integer parameter, e.g. `"tasks":4`.
    pub fn param(&mut self, key: &str, value: u64) -> &mut Self {
        self.params.push((key.into(), value.to_string()));
        self
    }

    /// A poll function (its exact demangled name) with its expected counts.
    pub fn function(&mut self, name: &str, counts: Counts) -> &mut Self {
        self.functions.push((name.into(), counts, vec![]));
        self
    }

    /// An extra integer field on the last function added (e.g. `first_poll_min_ns`).
    pub fn extra(&mut self, key: &str, value: u64) -> &mut Self {
        self.functions
            .last_mut()
            .expect("no function yet")
            .2
            .push((key.into(), value));
        self
    }

    /// One line of the program's expected stdout (the same text `main` prints).
    pub fn line(&mut self, line: &str) -> &mut Self {
        self.stdout.push_str(line);
        self.stdout.push('\n');
        self
    }

    pub fn stdout(&self) -> &str {
        &self.stdout
    }

    pub fn to_json(&self) -> String {
        let mut s = String::from("{");
        for (k, v) in &self.params {
            write!(s, "{}:{},", json_str(k), v).unwrap();
        }
        s.push_str("\"functions\":{");
        for (i, (name, c, extra)) in self.functions.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(
                s,
                "{sep}{}:{{\"polls\":{},\"ready\":{},\"pending\":{},\"unwound\":{}",
                json_str(name),
                c.polls,
                c.ready,
                c.pending,
                c.unwound
            )
            .unwrap();
            for (k, v) in extra {
                write!(s, ",{}:{}", json_str(k), v).unwrap();
            }
            s.push('}');
        }
        write!(s, "}},\"exit_status\":0,\"stdout\":{}}}", json_str(&self.stdout)).unwrap();
        s
    }
}

/// Ground truth of the outer -> middle -> leaf -> YieldNow(k) chain that
/// tokio_mt, tokio_ct, async_std_tasks and futures_exec all run: every level is
/// polled once per poll of the task, so all four get `Counts::yielding(n, k)`.
pub fn chain_truth(program: &str, tasks: u64, yields: u64) -> GroundTruth {
    let mut gt = GroundTruth::new(program);
    gt.param("tasks", tasks).param("yields", yields);
    let c = Counts::yielding(tasks, yields);
    for f in ["outer", "middle", "leaf"] {
        gt.function(&format!("{program}::{f}::{{{{closure}}}}"), c);
    }
    gt.function(YIELD_NOW_POLL, c);
    gt.line(&format!("{program}: {tasks} tasks x {yields} yields done"));
    gt
}

/// A 24-byte value, so that `middle`'s poll fn returns a `Poll<Big>` larger
/// than two registers (returned through a hidden pointer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Big {
    pub a: u64,
    pub b: u64,
    pub c: u64,
}

/// Escapes a string as a JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).unwrap(),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
