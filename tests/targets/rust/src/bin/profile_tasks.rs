//! CPU profiling and blocking polls: tokio current-thread runtime (one thread,
//! so whoever is on the CPU is the task being polled), five kinds of task,
//! all spawned from `main`'s `block_on` future and awaited there:
//!
//! * `burner`: `--burn-polls N` polls (5), each calling `burn_cpu(M)`, which
//!   spins `--burn-ms M` ms (40) on pure integer work (xorshift, reading the
//!   clock once per 1024 rounds, so samples land in `burn_cpu` itself, not in
//!   `clock_gettime`; no calls inside its loop, in debug builds too), parking
//!   on `YieldNow(1)` between polls. `burn_cpu` is `#[inline(never)]`.
//! * `idler` x `--idlers K` (3): awaits `tokio::time::sleep(IDLE_MS)`
//!   IDLE_SLEEPS times, next to no CPU.
//! * `sleeper`: `--sleeps S` polls (2), each calling
//!   `std::thread::sleep(--sleep-ms, 30 ms)` inside the async fn: the poll
//!   blocks the executor thread in `clock_nanosleep` (std calls glibc's
//!   `nanosleep`, which is that syscall on Linux), `YieldNow(1)` between.
//! * `reader`: `--reads R` polls (2), each one blocking `read()` of a pipe,
//!   `YieldNow(1)` between. Before each read it sends its thread id to the
//!   thread `pipe-writer`, which waits until that thread is asleep (state `S`
//!   in `/proc/self/task/TID/stat`: nothing else between the send and the
//!   read sleeps), then sleeps `--read-ms` (30 ms) and writes 4 bytes. So each
//!   read blocks at least read-ms inside the syscall.
//! * `ticker`: `tokio::time::interval_at(now + 5 ms, 5 ms)`
//!   (MissedTickBehavior::Delay), `--ticks T` (10) ticks, tiny CPU each.
//!
//! Why the counts are exact: one thread, FIFO, and a task is polled once per
//! wake. burner, sleeper and reader wake only themselves (YieldNow, by ref):
//! max(X,1) polls for X blocking/burning polls. Each tokio Sleep parks exactly
//! once: its deadline, taken after the driver last processed timers, lies in a
//! later ms tick than the driver's `elapsed`, so it is never fired on
//! registration, and the driver (in block_on's park, on the main thread,
//! outside any task poll) wakes it once, by value. The interval's first
//! deadline is in the future; after a tick its next one is `timeout + 5 ms`
//! (when at most 5 ms late: not before the clock reading in that poll) or
//! `now + 5 ms` (later, Delay): again after the driver's last processing, so
//! each tick parks once, however long sleeper and reader hold the thread.
//! idler: IDLE_SLEEPS+1 polls, ticker: T+1. Await points are marked `// @tag`.
//!
//! `min_offcpu_ns` (the `profile` object) is what the syscall itself waits:
//! the nanosleep request, or pipe-writer's sleep that starts only once the
//! reader sleeps in `read`. A sched_switch measurement of the poll can fall
//! short of it only by the few hundred ns between the syscall's entry and the
//! switch (the wake latency usually more than makes up for it).

use std::os::unix::io::RawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use targets::truth::{async_fn, marked_line, Truth, WakeFrom, WakeKind};
use targets::{json_str, Counts, YieldNow, YIELD_NOW_POLL};
use tokio::time::MissedTickBehavior;

const PROGRAM: &str = "profile_tasks";
const BURN_FN: &str = "profile_tasks::burn_cpu";
const SLEEP_POLL: &str = "<tokio::time::sleep::Sleep as core::future::future::Future>::poll";
/// Each idler awaits `sleep(IDLE_MS)` this many times.
const IDLE_SLEEPS: u64 = 4;
const IDLE_MS: u64 = 3;
const TICK_MS: u64 = 5;
/// Bytes pipe-writer writes per read (atomic: below PIPE_BUF).
const CHUNK: usize = 4;

#[derive(Clone, Copy, Debug)]
struct Config {
    burn_polls: u64,
    burn_ms: u64,
    idlers: u64,
    sleeps: u64,
    sleep_ms: u64,
    reads: u64,
    read_ms: u64,
    ticks: u64,
    ground_truth: bool,
}

const DEFAULTS: Config = Config {
    burn_polls: 5,
    burn_ms: 40,
    idlers: 3,
    sleeps: 2,
    sleep_ms: 30,
    reads: 2,
    read_ms: 30,
    ticks: 10,
    ground_truth: false,
};

fn usage(msg: &str) -> ! {
    let prog = std::env::args().next().unwrap_or_default();
    eprintln!("{prog}: {msg}");
    eprintln!(
        "usage: {prog} [--burn-polls N] [--burn-ms M] [--idlers K] [--sleeps S] [--sleep-ms MS] \
         [--reads R] [--read-ms MS] [--ticks T] [--ground-truth]"
    );
    std::process::exit(2)
}

fn parse_args() -> Config {
    let mut c = DEFAULTS;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let slot = match flag.as_str() {
            "--ground-truth" => {
                c.ground_truth = true;
                continue;
            }
            "--burn-polls" => &mut c.burn_polls,
            "--burn-ms" => &mut c.burn_ms,
            "--idlers" => &mut c.idlers,
            "--sleeps" => &mut c.sleeps,
            "--sleep-ms" => &mut c.sleep_ms,
            "--reads" => &mut c.reads,
            "--read-ms" => &mut c.read_ms,
            "--ticks" => &mut c.ticks,
            _ => usage(&format!("unknown argument '{flag}'")),
        };
        *slot = match it.next().map(|v| v.parse::<u64>()) {
            Some(Ok(v)) => v,
            _ => usage(&format!("{flag} needs a non-negative integer")),
        };
    }
    c
}

/// Spins `ms` ms (wall clock) on integer work; returns the hash so that
/// nothing is optimized away.
#[inline(never)]
fn burn_cpu(ms: u64) -> u64 {
    let start = Instant::now();
    let limit = Duration::from_millis(ms);
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    loop {
        // A `while`, not `for 0..1024`: a range's `next` is a call in debug builds.
        let mut k = 0;
        while k < 1024 {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            k += 1;
        }
        h = std::hint::black_box(h);
        if start.elapsed() >= limit {
            return h;
        }
    }
}

/// `polls` polls, each burning `ms` ms, parked on YieldNow(1) in between.
#[inline(never)]
async fn burner(polls: u64, ms: u64) -> u64 {
    let mut h = 0;
    for i in 0..polls {
        if i > 0 {
            YieldNow::new(1).await; // @burner-yield
        }
        h ^= burn_cpu(ms);
    }
    h
}

#[inline(never)]
async fn idler() -> u64 {
    let mut n = 0;
    for _ in 0..IDLE_SLEEPS {
        tokio::time::sleep(Duration::from_millis(IDLE_MS)).await; // @idle
        n += 1;
    }
    n
}

/// `sleeps` polls, each blocking the thread in `std::thread::sleep(ms)`.
#[inline(never)]
async fn sleeper(sleeps: u64, ms: u64) -> u64 {
    for i in 0..sleeps {
        if i > 0 {
            YieldNow::new(1).await; // @sleeper-yield
        }
        std::thread::sleep(Duration::from_millis(ms));
    }
    sleeps
}

/// `reads` polls, each blocking in `read()` of `fd` until pipe-writer,
/// told through `go`, writes CHUNK bytes. Returns the bytes read.
#[inline(never)]
async fn reader(reads: u64, fd: RawFd, go: mpsc::Sender<libc::pid_t>) -> u64 {
    let mut total = 0u64;
    for i in 0..reads {
        if i > 0 {
            YieldNow::new(1).await; // @reader-yield
        }
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::pid_t;
        go.send(tid).expect("pipe-writer gone");
        let mut buf = [0u8; CHUNK];
        let mut got = 0;
        while got < CHUNK {
            // SAFETY: buf[got..] is valid for CHUNK - got bytes.
            let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), CHUNK - got) };
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            assert!(n > 0, "pipe read failed: {}", std::io::Error::last_os_error());
            got += n as usize;
        }
        total += got as u64;
    }
    total
}

#[inline(never)]
async fn ticker(ticks: u64) -> u64 {
    let period = Duration::from_millis(TICK_MS);
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sum = 0u64;
    for i in 0..ticks {
        interval.tick().await; // @tick
        sum = std::hint::black_box(sum + i);
    }
    sum
}

/// Whether thread `tid` of this process is asleep (state S).
fn asleep(tid: libc::pid_t) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    // The state follows the comm, which is in parentheses and may hold spaces.
    stat.rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('S'))
}

/// pipe-writer: for each thread id received, waits until that thread sleeps
/// (in `read`), sleeps `ms`, writes CHUNK bytes to `fd`. Ends when the
/// channel closes.
fn pipe_writer(fd: RawFd, ms: u64, go: mpsc::Receiver<libc::pid_t>) {
    for tid in go {
        while !asleep(tid) {
            std::thread::sleep(Duration::from_micros(50));
        }
        std::thread::sleep(Duration::from_millis(ms));
        let bytes = [b'p'; CHUNK];
        // SAFETY: bytes is valid for CHUNK bytes.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), CHUNK) };
        assert_eq!(n, CHUNK as isize, "pipe write failed");
    }
    // SAFETY: fd is this thread's write end, used no more.
    unsafe { libc::close(fd) };
}

/// Polls of a task that runs `x` units, one per poll, YieldNow(1) between.
fn one_per_poll(x: u64) -> Counts {
    Counts::yielding(1, x.saturating_sub(1))
}

fn ground_truth(c: &Config, src: &str) -> (Truth, String) {
    let mut t = Truth::new(PROGRAM, "tokio");
    let f = |name| async_fn(PROGRAM, name);
    let line = |tag| marked_line(src, tag);
    let (burner, idler, sleeper, reader, ticker) =
        (f("burner"), f("idler"), f("sleeper"), f("reader"), f("ticker"));
    let burns = one_per_poll(c.burn_polls);
    let idles = Counts::yielding(c.idlers, IDLE_SLEEPS);
    let sleeps = one_per_poll(c.sleeps);
    let reads = one_per_poll(c.reads);
    let ticks = Counts::yielding(1, c.ticks);
    let yields = burns.pending + sleeps.pending + reads.pending;
    let me = || WakeFrom::Thread(PROGRAM.into());
    t.param("burn_polls", c.burn_polls)
        .param("burn_ms", c.burn_ms)
        .param("idlers", c.idlers)
        .param("sleeps", c.sleeps)
        .param("sleep_ms", c.sleep_ms)
        .param("reads", c.reads)
        .param("read_ms", c.read_ms)
        .param("ticks", c.ticks)
        .future(&burner, burns, 1, 0)
        .future(&idler, idles, c.idlers, 0)
        .future(&sleeper, sleeps, 1, 0)
        .future(&reader, reads, 1, 0)
        .future(&ticker, ticks, 1, 0)
        .function(YIELD_NOW_POLL, Counts::yielding(yields, 1))
        .function(SLEEP_POLL, Counts::yielding(idles.pending + ticks.pending, 1))
        .task(&burner, 1, burns.polls, None, line("spawn-burner"));
    // No idler task, no idler await lines with --idlers 0.
    if c.idlers > 0 {
        t.task(&idler, c.idlers, IDLE_SLEEPS + 1, None, line("spawn-idler"));
    }
    t.task(&sleeper, 1, sleeps.polls, None, line("spawn-sleeper"))
        .task(&reader, 1, reads.polls, None, line("spawn-reader"))
        .task(&ticker, 1, ticks.polls, None, line("spawn-ticker"));
    let wakes = [
        (&burner, burns.pending, WakeKind::ByRef, WakeFrom::SelfTask),
        (&idler, idles.pending, WakeKind::ByVal, me()),
        (&sleeper, sleeps.pending, WakeKind::ByRef, WakeFrom::SelfTask),
        (&reader, reads.pending, WakeKind::ByRef, WakeFrom::SelfTask),
        (&ticker, ticks.pending, WakeKind::ByVal, me()),
    ];
    for (target, n, kind, from) in wakes {
        if n > 0 {
            t.wake(target, n, kind, from);
        }
    }
    let repeat = |tag, n: u64| vec![line(tag); n as usize];
    t.await_lines(&burner, repeat("burner-yield", burns.pending));
    if c.idlers > 0 {
        t.await_lines(&idler, repeat("idle", IDLE_SLEEPS));
    }
    t.await_lines(&sleeper, repeat("sleeper-yield", sleeps.pending))
        .await_lines(&reader, repeat("reader-yield", reads.pending))
        .await_lines(&ticker, repeat("tick", c.ticks));
    for l in stdout_lines(c) {
        t.line(&l);
    }
    let blocking = |name: &str, polls: u64, ms: u64, syscall: &str| {
        format!(
            "{{\"function\":{},\"polls\":{polls},\"min_offcpu_ns\":{},\"syscall\":{}}}",
            json_str(name),
            ms * 1_000_000,
            json_str(syscall)
        )
    };
    let profile = format!(
        "\"profile\":{{\"burn_fn\":{},\"burn_task_fn\":{},\"burn_ms_total\":{},\
         \"blocking\":[{},{}],\"not_blocking\":[{},{},{}]}}",
        json_str(BURN_FN),
        json_str(&burner),
        c.burn_polls * c.burn_ms,
        blocking(&sleeper, c.sleeps, c.sleep_ms, "clock_nanosleep"),
        blocking(&reader, c.reads, c.read_ms, "read"),
        json_str(&ticker),
        json_str(&idler),
        json_str(&burner),
    );
    (t, profile)
}

/// The program's stdout, one line per task kind, printed after all finished.
fn stdout_lines(c: &Config) -> Vec<String> {
    vec![
        format!("{PROGRAM}: burner {} polls x {} ms done", c.burn_polls, c.burn_ms),
        format!("{PROGRAM}: {} idlers x {IDLE_SLEEPS} sleeps done", c.idlers),
        format!("{PROGRAM}: sleeper {} x {} ms done", c.sleeps, c.sleep_ms),
        format!("{PROGRAM}: reader {} x {} ms done", c.reads, c.read_ms),
        format!("{PROGRAM}: ticker {} ticks done", c.ticks),
    ]
}

/// Truth's JSON with the `profile` object inserted before `exit_status`.
fn to_json(t: &Truth, profile: &str) -> String {
    let json = t.to_json();
    let at = json.rfind(",\"exit_status\":").expect("exit_status key");
    format!("{},{profile}{}", &json[..at], &json[at..])
}

/// Spawns every task, then awaits them in a fixed order; checks what each returns.
async fn run_all(c: Config, fd: RawFd, go: mpsc::Sender<libc::pid_t>) {
    let burning = tokio::spawn(burner(c.burn_polls, c.burn_ms)); // @spawn-burner
    let mut idling = Vec::new();
    for _ in 0..c.idlers {
        idling.push(tokio::spawn(idler())); // @spawn-idler
    }
    let sleeping = tokio::spawn(sleeper(c.sleeps, c.sleep_ms)); // @spawn-sleeper
    let reading = tokio::spawn(reader(c.reads, fd, go)); // @spawn-reader
    let ticking = tokio::spawn(ticker(c.ticks)); // @spawn-ticker
    burning.await.expect("burner failed");
    for h in idling {
        assert_eq!(h.await.expect("idler failed"), IDLE_SLEEPS);
    }
    assert_eq!(sleeping.await.expect("sleeper failed"), c.sleeps);
    assert_eq!(reading.await.expect("reader failed"), c.reads * CHUNK as u64);
    assert_eq!(ticking.await.expect("ticker failed"), (0..c.ticks).sum::<u64>());
}

fn main() {
    let c = parse_args();
    let (gt, profile) = ground_truth(&c, include_str!("profile_tasks.rs"));
    if c.ground_truth {
        println!("{}", to_json(&gt, &profile));
        return;
    }
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe failed");
    let (go, wait) = mpsc::channel();
    let read_ms = c.read_ms;
    let writer = std::thread::Builder::new()
        .name("pipe-writer".into())
        .spawn(move || pipe_writer(fds[1], read_ms, wait))
        .expect("spawn pipe-writer");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    rt.block_on(run_all(c, fds[0], go));
    drop(rt);
    writer.join().expect("pipe-writer failed");
    // SAFETY: the read end, used no more.
    unsafe { libc::close(fds[0]) };
    print!("{}", gt.stdout());
}
