//! Ground truth of the task-level scenarios, shared by the per-runtime
//! binaries (`join_tokio`, `join_async_std`, `join_futures`, ...), which run
//! the same async fns on different executors. Each binary marks its await
//! points with `// @tag` comments and passes its own source (`include_str!`)
//! so the await lines are its own.
//!
//! Counting rules used throughout (see `YieldNow`): an executor polls a task
//! once per wake, and wakes that arrive while the task is queued or running
//! collapse into one more poll. A poll of a task polls every level of its
//! async call chain that is not finished, so a parent awaiting `join!` is
//! polled as often as its longest child.

use crate::remote::{REMOTE_WAKE_POLL, WAKER_THREAD};
use crate::truth::{marked_line, Node, Truth, WakeFrom, WakeKind};
use crate::{Counts, YIELD_NOW_POLL};

/// join: `a` parks on two await points once each; `b` parks B_YIELDS times.
pub const B_YIELDS: u64 = 5;
/// select: the loser would need this many polls; the winner parks once.
pub const LOSER_YIELDS: u64 = 100;
/// spawn: the parent spawns this many children, each parking CHILD_YIELDS times.
pub const CHILDREN: u64 = 3;
pub const CHILD_YIELDS: u64 = 2;
/// sleep: the task awaits a 1 ms tokio sleep this many times.
pub const SLEEPS: u64 = 5;

fn repeat(line: u32, n: u64) -> Vec<u32> {
    vec![line; n as usize]
}

/// `pair` awaits `join!(a(), b())`: a parks 2 times (two await points), b 5
/// times; both self-wake by ref. One task, spawned from outside any task.
/// `join_macro` names the macro `pair` parks in (see `MacroAwait`).
pub fn join(program: &str, runtime: &str, src: &str, join_macro: &str) -> Truth {
    let mut t = Truth::new(program, runtime);
    let (pair, a, b) = (t.name("pair"), t.name("a"), t.name("b"));
    let parent = Counts::yielding(1, B_YIELDS); // polled until its longest child is done
    t.future(&pair, parent, 1, 0)
        .future(&a, Counts::yielding(1, 2), 1, 0)
        .future(&b, Counts::yielding(1, B_YIELDS), 1, 0)
        .function(YIELD_NOW_POLL, Counts::yielding(2 + B_YIELDS, 1))
        .task(&pair, 1, parent.polls, None, marked_line(src, "spawn-pair"))
        .wake(&pair, 2 + B_YIELDS, WakeKind::ByRef, WakeFrom::SelfTask)
        .macro_await(&pair, join_macro, marked_line(src, "join"), B_YIELDS)
        .await_lines(&a, vec![marked_line(src, "a1"), marked_line(src, "a2")])
        .await_lines(&b, repeat(marked_line(src, "b"), B_YIELDS));
    t.tree = Some(Node::new(
        &pair,
        parent.polls,
        vec![
            Node::new(&a, 3, vec![Node::new(YIELD_NOW_POLL, 4, vec![])]),
            Node::new(
                &b,
                B_YIELDS + 1,
                vec![Node::new(YIELD_NOW_POLL, 2 * B_YIELDS, vec![])],
            ),
        ],
    ));
    t.line(&format!("{program}: a + b = 3"));
    t
}

/// `race` awaits a biased select of `loser` (polled first) and `winner`.
/// Poll 1: both park. Poll 2: loser parks again, winner is Ready, so the
/// select returns and drops the loser, parked, before it was Ready.
/// `select_macro` names the macro `race` parks in (see `MacroAwait`).
pub fn select(program: &str, runtime: &str, src: &str, select_macro: &str) -> Truth {
    let mut t = Truth::new(program, runtime);
    let (race, loser, winner) = (t.name("race"), t.name("loser"), t.name("winner"));
    let parked_twice = Counts {
        polls: 2,
        pending: 2,
        ..Counts::default()
    };
    // YieldNow: the loser's first is Ready in poll 2, its second is dropped
    // parked; the winner's one is Ready in poll 2.
    let yields = Counts::yielding(2, 1)
        + Counts {
            polls: 1,
            pending: 1,
            ..Counts::default()
        };
    t.future(&race, Counts::yielding(1, 1), 1, 0)
        .future(&loser, parked_twice, 1, 1)
        .future(&winner, Counts::yielding(1, 1), 1, 0)
        .function(YIELD_NOW_POLL, yields)
        .task(&race, 1, 2, None, marked_line(src, "spawn-race"))
        .wake(&race, 3, WakeKind::ByRef, WakeFrom::SelfTask)
        .macro_await(&race, select_macro, marked_line(src, "select"), 1)
        .await_lines(&loser, repeat(marked_line(src, "loser"), 2))
        .await_lines(&winner, vec![marked_line(src, "winner")]);
    t.tree = Some(Node::new(
        &race,
        2,
        vec![
            Node::new(&loser, 2, vec![Node::new(YIELD_NOW_POLL, 3, vec![])]),
            Node::new(&winner, 2, vec![Node::new(YIELD_NOW_POLL, 2, vec![])]),
        ],
    ));
    t.line(&format!("{program}: winner won"));
    t
}

/// `parent` (a task spawned from outside any task) spawns CHILDREN tasks
/// running `child`, then awaits their handles in order. With a FIFO
/// single-thread scheduler the children interleave round-robin, child 1
/// finishes first and wakes the parent (the only handle it awaited while
/// pending), children 2 and 3 finish before the parent runs again, so the
/// parent is polled twice. `join_wake` is how the runtime's join handle
/// wakes its awaiter (tokio: by ref; async-task, futures' oneshot: by value).
pub fn spawn(program: &str, runtime: &str, src: &str, join_wake: WakeKind) -> Truth {
    let mut t = Truth::new(program, runtime);
    let (parent, child) = (t.name("parent"), t.name("child"));
    let each = Counts::yielding(1, CHILD_YIELDS);
    t.param("children", CHILDREN).param("child_yields", CHILD_YIELDS);
    t.future(&parent, Counts::yielding(1, 1), 1, 0)
        .future(&child, Counts::yielding(CHILDREN, CHILD_YIELDS), CHILDREN, 0)
        .function(YIELD_NOW_POLL, Counts::yielding(CHILDREN * CHILD_YIELDS, 1))
        .task(&parent, 1, 2, None, marked_line(src, "spawn-parent"))
        .task(&child, CHILDREN, each.polls, Some(&parent), marked_line(src, "spawn-child"))
        .wake(
            &child,
            CHILDREN * CHILD_YIELDS,
            WakeKind::ByRef,
            WakeFrom::SelfTask,
        )
        .wake(&parent, 1, join_wake, WakeFrom::Task(child.clone()))
        .await_lines(&parent, vec![marked_line(src, "handle")])
        .await_lines(&child, repeat(marked_line(src, "child"), CHILD_YIELDS));
    t.tree = Some(Node::new(&parent, 2, vec![]));
    let sum = CHILDREN * CHILD_YIELDS;
    t.line(&format!("{program}: {CHILDREN} children done, sum {sum}"));
    t
}

/// `waiter` (one task) awaits a `RemoteWake` that a plain thread named
/// `waker-thread` wakes `wakes` times by value: wakes + 1 polls.
pub fn wake(program: &str, runtime: &str, src: &str, wakes: u64) -> Truth {
    let mut t = Truth::new(program, runtime);
    let waiter = t.name("waiter");
    let c = Counts::yielding(1, wakes);
    t.param("thread_wakes", wakes)
        .future(&waiter, c, 1, 0)
        .function(REMOTE_WAKE_POLL, c)
        .task(&waiter, 1, wakes + 1, None, marked_line(src, "spawn-waiter"))
        .wake(
            &waiter,
            wakes,
            WakeKind::ByVal,
            WakeFrom::Thread(WAKER_THREAD.into()),
        )
        .await_lines(&waiter, repeat(marked_line(src, "remote"), wakes));
    t.tree = Some(Node::new(
        &waiter,
        wakes + 1,
        vec![Node::new(REMOTE_WAKE_POLL, wakes + 1, vec![])],
    ));
    t.line(&format!("{program}: woken {wakes} times"));
    t
}

/// `driver` (a task spawned from outside any task) spawns `tasks` tasks
/// running `tiny` one at a time and awaits each before spawning the next,
/// so the allocator hands every task the memory of the one before. Each
/// tiny task parks once (self-wake) and, finishing, wakes the driver parked
/// on its handle: the driver is polled tasks + 1 times.
pub fn reuse(program: &str, runtime: &str, src: &str, tasks: u64, join_wake: WakeKind) -> Truth {
    let mut t = Truth::new(program, runtime);
    let (driver, tiny) = (t.name("driver"), t.name("tiny"));
    t.param("tiny_tasks", tasks)
        .future(&driver, Counts::yielding(1, tasks), 1, 0)
        .future(&tiny, Counts::yielding(tasks, 1), tasks, 0)
        .function(YIELD_NOW_POLL, Counts::yielding(tasks, 1))
        .task(&driver, 1, tasks + 1, None, marked_line(src, "spawn-driver"))
        .task(&tiny, tasks, 2, Some(&driver), marked_line(src, "spawn-tiny"))
        .wake(&tiny, tasks, WakeKind::ByRef, WakeFrom::SelfTask)
        .wake(&driver, tasks, join_wake, WakeFrom::Task(tiny.clone()))
        .await_lines(&driver, repeat(marked_line(src, "handle"), tasks))
        .await_lines(&tiny, vec![marked_line(src, "tiny")]);
    t.tree = Some(Node::new(&driver, tasks + 1, vec![]));
    t.line(&format!("{program}: {tasks} tasks done"));
    t
}

/// The `sleep_tokio` scenario: `sleeper` awaits `tokio::time::sleep(1 ms)`
/// SLEEPS times on a current-thread runtime. Each Sleep parks exactly once
/// (its deadline lies in the future when first polled, and nothing else wakes
/// the task) and the timer wakes it once, by value, from the runtime's driver,
/// which runs on the main thread (named like the program) outside any task poll.
pub fn sleep(program: &str, src: &str) -> Truth {
    let mut t = Truth::new(program, "tokio");
    let sleeper = t.name("sleeper");
    // Each Sleep: Pending when first polled, Ready when polled after its wake.
    let sleep_poll = "<tokio::time::sleep::Sleep as core::future::future::Future>::poll";
    t.param("sleeps", SLEEPS)
        .future(&sleeper, Counts::yielding(1, SLEEPS), 1, 0)
        .function(sleep_poll, Counts::yielding(SLEEPS, 1))
        .task(&sleeper, 1, SLEEPS + 1, None, marked_line(src, "spawn-sleeper"))
        .wake(
            &sleeper,
            SLEEPS,
            WakeKind::ByVal,
            WakeFrom::Thread(program.into()),
        )
        .await_lines(&sleeper, repeat(marked_line(src, "sleep"), SLEEPS));
    t.tree = Some(Node::new(
        &sleeper,
        SLEEPS + 1,
        vec![Node::new(sleep_poll, 2 * SLEEPS, vec![])],
    ));
    t.line(&format!("{program}: slept {SLEEPS} times"));
    t
}
