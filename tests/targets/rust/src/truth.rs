//! Ground truth of the task-level targets (join, select, spawn, wake, sleep,
//! reuse): per-function counts plus task instances, wakes, the principal
//! task's call tree and the await points, printed as one JSON object.
//!
//! Every number here is exact by construction; a fact that is not (timer
//! slack, cross-thread races) is left out rather than approximated.

use crate::{json_str, Counts};
use std::fmt::Write as _;

/// Demangled name of the poll fn of `async fn f` in binary `program` (debug build).
pub fn async_fn(program: &str, f: &str) -> String {
    format!("{program}::{f}::{{{{closure}}}}")
}

/// The line of `src` that carries the marker comment `// @tag` (1-based, as
/// `line!()` and DWARF count). Await points are marked this way in each
/// binary's source, read back through `include_str!` at build time, so the
/// ground truth follows the code when lines move. Panics unless exactly one
/// line carries the marker (a typo must not yield a silently wrong line).
pub fn marked_line(src: &str, tag: &str) -> u32 {
    let marker = format!("@{tag}");
    // A line's `// ` comment may carry several markers: `// @handle @spawn-tiny`.
    let carries = |l: &str| {
        l.split_once("// ")
            .map_or(false, |(_, c)| c.split_whitespace().any(|w| w == marker))
    };
    let hits: Vec<u32> = src
        .lines()
        .zip(1..)
        .filter(|(l, _)| carries(l))
        .map(|(_, n)| n)
        .collect();
    match hits[..] {
        [n] => n,
        _ => panic!("marker '{marker}' found on {} lines, want 1", hits.len()),
    }
}

/// One poll function's counts; `instances` (futures created and first
/// polled) and `cancelled` (of those, dropped before returning Ready) are
/// given for async fns whose drop glue the tracer watches.
#[derive(Clone, Debug)]
pub struct FnTruth {
    pub counts: Counts,
    pub instances: Option<u64>,
    pub cancelled: Option<u64>,
}

/// `count` tasks whose outermost program-defined future is `root`, each
/// polled `polls_each` times by the runtime, spawned from a poll of the task
/// rooted at `spawned_by` (None: from outside any task, e.g. `block_on`).
#[derive(Clone, Debug)]
pub struct TaskTruth {
    pub root: String,
    pub count: u64,
    pub polls_each: u64,
    pub spawned_by: Option<String>,
    /// The line of the spawn call (`// @spawn-<fn>` in the binary's source).
    pub spawn_line: u32,
    /// How each ended: `completed` (Ready), `cancelled` (dropped while
    /// Pending) or `pending` (neither, when the program ended).
    pub state: &'static str,
}

/// Which waker vtable entry a wake goes through.
#[derive(Clone, Copy, Debug)]
pub enum WakeKind {
    /// `Waker::wake_by_ref` (the waker stays).
    ByRef,
    /// `Waker::wake` (consumes the waker).
    ByVal,
}

/// Where a wake comes from.
#[derive(Clone, Debug)]
pub enum WakeFrom {
    /// From a poll of the woken task itself.
    SelfTask,
    /// From the runtime's poll of another task (root given), on any thread.
    Task(String),
    /// From a thread (comm name given) that is not polling any task then.
    Thread(String),
}

/// `count` wakes of tasks rooted at `target`.
#[derive(Clone, Debug)]
pub struct WakeTruth {
    pub target: String,
    pub count: u64,
    pub kind: WakeKind,
    pub from: WakeFrom,
}

/// A call-tree node: `polls` of `name` summed over all instances of the
/// task, at this position under its parent.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub polls: u64,
    pub children: Vec<Node>,
}

impl Node {
    pub fn new(name: &str, polls: u64, children: Vec<Node>) -> Node {
        Node {
            name: name.into(),
            polls,
            children,
        }
    }

    fn to_json(&self) -> String {
        let children = join(self.children.iter().map(Node::to_json));
        format!(
            "{{\"name\":{},\"polls\":{},\"children\":[{children}]}}",
            json_str(&self.name),
            self.polls
        )
    }
}

/// Builder for the JSON object; keys appear in this order:
/// program, runtime, params..., functions, tasks, wakes, tree, await_lines,
/// macro_awaits, exit_status, stdout.
pub struct Truth {
    program: String,
    runtime: String,
    params: Vec<(String, u64)>,
    pub functions: Vec<(String, FnTruth)>,
    pub tasks: Vec<TaskTruth>,
    pub wakes: Vec<WakeTruth>,
    pub tree: Option<Node>,
    pub await_lines: Vec<(String, Vec<u32>)>,
    pub macro_awaits: Vec<(String, MacroAwait)>,
    stdout: String,
}

/// A function parked `pending` times on an `.await` that a macro from
/// another crate (`join!`, `select!`) expands to: DWARF's decl_file/line of
/// that SuspendN is inside the macro's crate, not the invocation `line`.
#[derive(Clone, Debug)]
pub struct MacroAwait {
    pub macro_name: String,
    pub line: u32,
    pub pending: u64,
}

impl Truth {
    pub fn new(program: &str, runtime: &str) -> Truth {
        Truth {
            program: program.into(),
            runtime: runtime.into(),
            params: vec![],
            functions: vec![],
            tasks: vec![],
            wakes: vec![],
            tree: None,
            await_lines: vec![],
            macro_awaits: vec![],
            stdout: String::new(),
        }
    }

    /// `async_fn(program, f)` for this program.
    pub fn name(&self, f: &str) -> String {
        async_fn(&self.program, f)
    }

    pub fn param(&mut self, key: &str, value: u64) -> &mut Self {
        self.params.push((key.into(), value));
        self
    }

    /// A poll function with counts only.
    pub fn function(&mut self, name: &str, counts: Counts) -> &mut Self {
        let f = FnTruth {
            counts,
            instances: None,
            cancelled: None,
        };
        self.functions.push((name.into(), f));
        self
    }

    /// An async fn with counts, instances and cancelled instances.
    pub fn future(&mut self, name: &str, counts: Counts, instances: u64, cancelled: u64) -> &mut Self {
        let f = FnTruth {
            counts,
            instances: Some(instances),
            cancelled: Some(cancelled),
        };
        self.functions.push((name.into(), f));
        self
    }

    pub fn task(
        &mut self,
        root: &str,
        count: u64,
        polls_each: u64,
        spawned_by: Option<&str>,
        spawn_line: u32,
    ) -> &mut Self {
        self.tasks.push(TaskTruth {
            root: root.into(),
            count,
            polls_each,
            spawned_by: spawned_by.map(String::from),
            spawn_line,
            state: "completed",
        });
        self
    }

    /// The last task added ends in `state` instead of `completed`.
    pub fn ending(&mut self, state: &'static str) -> &mut Self {
        self.tasks.last_mut().expect("no task yet").state = state;
        self
    }

    pub fn wake(&mut self, target: &str, count: u64, kind: WakeKind, from: WakeFrom) -> &mut Self {
        self.wakes.push(WakeTruth {
            target: target.into(),
            count,
            kind,
            from,
        });
        self
    }

    /// The await lines `name` is parked on, one per Pending return of one
    /// instance, in order (every instance of `name` follows the same sequence).
    pub fn await_lines(&mut self, name: &str, lines: Vec<u32>) -> &mut Self {
        self.await_lines.push((name.into(), lines));
        self
    }

    /// `name` parks `pending` times inside `macro_name` invoked on `line`.
    pub fn macro_await(&mut self, name: &str, macro_name: &str, line: u32, pending: u64) -> &mut Self {
        let m = MacroAwait {
            macro_name: macro_name.into(),
            line,
            pending,
        };
        self.macro_awaits.push((name.into(), m));
        self
    }

    pub fn line(&mut self, line: &str) -> &mut Self {
        self.stdout.push_str(line);
        self.stdout.push('\n');
        self
    }

    pub fn stdout(&self) -> &str {
        &self.stdout
    }

    pub fn to_json(&self) -> String {
        let functions = self.functions.iter().map(|(name, f)| {
            let c = f.counts;
            let mut v = format!(
                "\"polls\":{},\"ready\":{},\"pending\":{},\"unwound\":{}",
                c.polls, c.ready, c.pending, c.unwound
            );
            if let (Some(n), Some(c)) = (f.instances, f.cancelled) {
                write!(v, ",\"instances\":{n},\"cancelled\":{c}").unwrap();
            }
            format!("{}:{{{v}}}", json_str(name))
        });
        let tasks = self.tasks.iter().map(|t| {
            let by = t.spawned_by.as_deref().map_or("null".into(), json_str);
            let (root, n, each) = (json_str(&t.root), t.count, t.polls_each);
            let (line, state) = (t.spawn_line, t.state);
            format!("{{\"root\":{root},\"count\":{n},\"polls_each\":{each},\"state\":\"{state}\",\"spawned_by\":{by},\"spawn_line\":{line}}}")
        });
        let wakes = self.wakes.iter().map(|w| {
            let kind = match w.kind {
                WakeKind::ByRef => "by_ref",
                WakeKind::ByVal => "by_val",
            };
            let from = match &w.from {
                WakeFrom::SelfTask => "self".to_string(),
                WakeFrom::Task(root) => format!("task:{root}"),
                WakeFrom::Thread(name) => format!("thread:{name}"),
            };
            let (target, n, from) = (json_str(&w.target), w.count, json_str(&from));
            format!("{{\"target\":{target},\"count\":{n},\"kind\":\"{kind}\",\"from\":{from}}}")
        });
        let awaits = self.await_lines.iter().map(|(name, lines)| {
            let lines: Vec<String> = lines.iter().map(u32::to_string).collect();
            format!("{}:[{}]", json_str(name), lines.join(","))
        });
        let macro_awaits = self.macro_awaits.iter().map(|(name, m)| {
            let (mac, line, n) = (json_str(&m.macro_name), m.line, m.pending);
            format!(
                "{}:{{\"macro\":{mac},\"line\":{line},\"pending\":{n}}}",
                json_str(name)
            )
        });
        let mut s = format!(
            "{{\"program\":{},\"runtime\":{}",
            json_str(&self.program),
            json_str(&self.runtime)
        );
        for (k, v) in &self.params {
            write!(s, ",{}:{v}", json_str(k)).unwrap();
        }
        write!(s, ",\"functions\":{{{}}}", join(functions)).unwrap();
        write!(s, ",\"tasks\":[{}],\"wakes\":[{}]", join(tasks), join(wakes)).unwrap();
        if let Some(tree) = &self.tree {
            write!(s, ",\"tree\":{}", tree.to_json()).unwrap();
        }
        write!(s, ",\"await_lines\":{{{}}}", join(awaits)).unwrap();
        write!(s, ",\"macro_awaits\":{{{}}}", join(macro_awaits)).unwrap();
        write!(s, ",\"exit_status\":0,\"stdout\":{}}}", json_str(&self.stdout)).unwrap();
        s
    }
}

/// Comma-joins JSON fragments.
fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(",")
}
