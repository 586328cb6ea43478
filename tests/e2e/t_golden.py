"""Golden outputs and exporter placement (issue 14, items 3 and 5).

Synthetic traces (build/make-fixtures, tests/golden/make_fixtures.c) whose
numbers are known by construction: every text and JSON output compared
exactly with tests/golden/expected/. Recorded targets: report, report
--tasks and tree with timings normalized, under both backends. Chrome and
Perfetto exports: every slice on the right thread and task track, nested,
wake arrows from the waker to the woken task's next poll.

GOLDEN_UPDATE=1 rewrites the golden files instead of comparing
(tests/golden/README.md: check every number by hand before committing)."""
import collections
import difflib
import re

import perfetto_decode
from harness import *  # noqa: F401,F403
from perfetto_decode import one

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden")
EXPECTED = os.path.join(GOLDEN, "expected")
REPO = os.path.realpath(os.path.join(GOLDEN, "..", ".."))
UPDATE = os.environ.get("GOLDEN_UPDATE") == "1"
TASK_PID_OFFSET = 1000000000

# What each golden file holds: its suffix and the tracer's arguments.
OUTPUTS = [
    ("report.txt", ("report",)),
    ("report.json", ("report", "--json")),
    ("report-tasks.txt", ("report", "--tasks")),
    ("report-tasks.json", ("report", "--tasks", "--json")),
    ("tree.txt", ("tree",)),
    ("tree.json", ("tree", "--json")),
    ("chrome.json", ("export", "--format", "chrome")),
]


def compare_golden(path, got, what):
    """Exact comparison with a golden file (GOLDEN_UPDATE=1 writes it)."""
    if UPDATE:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(got)
        return
    check(os.path.exists(path), f"{what}: no golden file {path} (GOLDEN_UPDATE=1 writes it)")
    with open(path) as f:
        want = f.read()
    if got != want:
        diff = "".join(list(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                                 "golden", "got"))[:40])
        raise Failure(f"{what} differs from {os.path.relpath(path, REPO)}:\n{diff}")


def fixtures():
    """The synthetic traces, written once per run: {name: path}."""
    out = tmpfile("golden")
    if not os.path.isdir(out):
        os.makedirs(out)
        binary = os.path.join(BUILD, "make-fixtures")
        check(os.path.exists(binary), f"{binary} missing: run `make all`")
        proc = run([binary, out])
        check_eq(proc.returncode, 0, f"make-fixtures ({proc.stderr.strip()})")
    return {name: os.path.join(out, f"{name}.trace") for name in ("stats", "tasks")}


def tracer_ok(*args):
    proc = tracer(*args)
    check_eq(proc.returncode, 0, f"asynctrace {' '.join(args[:-1])} exit status ({proc.stderr.strip()})")
    return proc.stdout


def golden_fixture(name):
    trace = fixtures()[name]
    for suffix, args in OUTPUTS:
        compare_golden(os.path.join(EXPECTED, f"{name}.{suffix}"), tracer_ok(*args, trace),
                       f"{name}: {' '.join(args)}")


@test_once
def golden_stats_fixture():
    """Durations (mean, p50, p99, max, total all different), thread busy
    time, long polls at and around the threshold, runtime shells left out,
    lost events."""
    golden_fixture("stats")


@test_once
def golden_tasks_fixture():
    """Spawns, a cross-thread wake, a self-wake, a wake after completion,
    a completed, a cancelled and a pending task, a join of two children."""
    golden_fixture("tasks")


# --- the goldens' key numbers, stated independently of the files --------

@test_once
def golden_numbers_by_construction():
    """The numbers the fixtures were built to show, asserted directly (a
    golden rewritten with wrong numbers still fails here)."""
    traces = fixtures()
    stats = json.loads(tracer_ok("report", "--json", traces["stats"]))
    rows = {f["name"]: f for f in stats["functions"]}
    compute = rows["demo::compute::{{closure}}"]
    want = dict(polls=100, ready=1, pending=99, total_ns=79500000, mean_ns=795000, p50_ns=500000,
                p99_ns=990000, max_ns=30000000)
    check_eq({k: compute[k] for k in want}, want, "compute's row")
    io = rows["demo::blocking_io::{{closure}}"]
    check_eq((io["polls"], io["total_ns"], io["p50_ns"], io["max_ns"]), (3, 31000000, 10000000, 12000000),
             "blocking_io's row")
    raw = rows["tokio::runtime::task::raw::RawTask::poll"]
    check_eq((raw["polls"], raw["ready"], raw["pending"], raw["result_unknown"], raw["total_ns"]),
             (3, 0, 0, 3, 67000500), "RawTask::poll's row (shells' time counted in their row)")
    threads = {t["tid"]: (t["polls"], t["busy_ns"]) for t in stats["threads"]}
    check_eq(threads, {201: (103, 110500000), 202: (2, 17000400)}, "threads (shells left out)")
    check_eq(stats["warnings"]["long_polls"], 3, "long polls (30ms, 15ms, 12ms; not 10ms, not the shells)")
    check_eq(stats["lost"], 7, "lost events")
    tasks = json.loads(tracer_ok("report", "--json", traces["tasks"]))
    got = [(t["id"], t["parent"], t["state"], t["polls"], t["wakes"], t["busy_ns"], t["wait_ns"], t["lifetime_ns"])
           for t in tasks["tasks"]]
    check_eq(got, [(1, 0, "completed", 3, 3, 1330, 1750, 7150), (2, 1, "completed", 1, 0, 510, 0, 1350),
                   (3, 1, "cancelled", 1, 0, 310, 0, 2140), (4, 0, "pending", 1, 0, 210, 0, 3260)], "tasks")
    check_eq(tasks["warnings"], {"long_polls": 0, "self_wakes": 1, "woken_not_polled": 0, "never_woken": 1,
                                 "wakes_after_end": 1}, "task warnings")
    tree = json.loads(tracer_ok("tree", "--json", traces["tasks"]))["trees"]
    parent = tree[0]
    check_eq([(n["name"], n["polls"], n["ready"], n["pending"]) for n in [parent] + parent["children"]],
             [("demo::parent::{{closure}}", 3, 1, 2), ("demo::left::{{closure}}", 2, 1, 1),
              ("demo::right::{{closure}}", 3, 1, 2)], "parent's tree")
    worker = tree[1]
    check_eq((worker["tasks"], worker["polls"], worker["ready"], worker["pending"], worker["instances"],
              worker["cancelled"]), (3, 3, 1, 2, 3, 1), "worker's merged tree")


# --- Chrome export placement ----------------------------------------------

FORWARDING = ("<&mut F as core::future::future::Future>::poll",
              "<core::pin::Pin<P> as core::future::future::Future>::poll",
              "<alloc::boxed::Box<F,A> as core::future::future::Future>::poll",
              "<alloc::boxed::Box<F> as core::future::future::Future>::poll",
              "<core::panic::unwind_safe::AssertUnwindSafe<F> as core::future::future::Future>::poll")

Slice = collections.namedtuple("Slice", "name cat start end depth future track")


def ns(us):
    return round(us * 1000)


def chrome_export(trace):
    return json.loads(tracer_ok("export", "--format", "chrome", trace))


def chrome_slices(doc):
    by_track = collections.defaultdict(list)
    for e in doc["traceEvents"]:
        if e["ph"] == "X":
            start = ns(e["ts"])
            track = (e["pid"], e["tid"])
            by_track[track].append(Slice(e["name"], e["cat"], start, start + ns(e["dur"]), e["args"]["depth"],
                                         e["args"]["future"], track))
    for slices in by_track.values():
        slices.sort(key=lambda s: (s.start, -s.end, s.depth))
    return by_track


def enclosing(slices, what):
    """Checks that a track's slices nest (no partial overlap, the deeper of
    two equal ones inside) and returns {slice: its parent or None}."""
    parent, stack = {}, []
    for s in slices:
        while stack and not (stack[-1].start <= s.start and s.end <= stack[-1].end and stack[-1].depth < s.depth):
            check(stack[-1].end <= s.start,
                  f"{what}: {s.name} at {s.start} overlaps {stack[-1].name} ({stack[-1].start}..{stack[-1].end})")
            stack.pop()
        parent[s] = stack[-1] if stack else None
        stack.append(s)
    return parent


def task_key(s, parent):
    """Whose poll a thread-track slice is: the pointer of the task poll
    that starts its chain (the outermost of the task polls directly above
    it), or the thread (block_on) when it runs under no task poll."""
    p = s if s.cat == "task" else parent[s]
    while p is not None and p.cat != "task":
        p = parent[p]
    if p is None:
        return ("thread", s.track[1])
    while parent[p] is not None and parent[p].cat == "task":
        p = parent[p]
    return p.future


def check_chrome_placement(doc, pid, expected_threads=None, expected_tasks=None):
    """Every poll on its thread's track, once; every future's poll once
    more on its task's track and on no other; each track nested; wake
    arrows from the waking thread (inside the waking task's poll for a
    self-wake) to the woken task's next poll. Returns the task tracks'
    keys: {task id: task pointer or ("thread", tid)}."""
    tracks = chrome_slices(doc)
    threads = {k: v for k, v in tracks.items() if k[0] == pid}
    tasks = {k: v for k, v in tracks.items() if k[0] == pid + TASK_PID_OFFSET}
    check_eq(set(tracks), set(threads) | set(tasks), "tracks outside the target's and the tasks' processes")
    parents = {}
    for track, slices in threads.items():
        parents.update(enclosing(slices, f"thread {track[1]}"))
    for s, p in parents.items():
        check_eq(s.depth, p.depth + 1 if p else 0, f"depth of {s.name} at {s.start} on thread {s.track[1]}")
    if expected_threads is not None:
        got = {tid: collections.Counter(s.name for s in threads.get((pid, tid), [])) for tid in expected_threads}
        check_eq(got, {tid: collections.Counter(c) for tid, c in expected_threads.items()}, "polls per thread")
    on_threads = collections.Counter((s.name, s.start, s.end, s.future) for s in parents)
    check_eq(max(on_threads.values(), default=1), 1, "a poll drawn twice on thread tracks")
    # Each future poll's twin on a task track: the one of its task.
    want = collections.defaultdict(set)
    for s, p in parents.items():
        if s.cat not in ("task", "function") and s.name not in FORWARDING:
            want[(s.name, s.start, s.end, s.future)].add(task_key(s, parents))
    keys, seen = {}, set()
    for track, slices in tasks.items():
        enclosing(slices, f"task {track[1]}")
        for s in slices:
            twin = (s.name, s.start, s.end, s.future)
            check(twin in want, f"{s.name} at {s.start} on task {track[1]}'s track is no future poll on a thread")
            check(twin not in seen, f"{s.name} at {s.start} on two task tracks")
            seen.add(twin)
            keys.setdefault(track[1], set()).update(want[twin])
    check_eq(set(want) - seen, set(), "future polls missing from the task tracks")
    for task, owners in keys.items():
        check_eq(len(owners), 1, f"task {task}'s track holds polls of several tasks ({owners})")
    keys = {task: owners.pop() for task, owners in keys.items()}
    if expected_tasks is not None:
        check_eq(keys, expected_tasks, "whose polls each task track holds")
    check_chrome_flows(doc, pid, threads, parents, tasks, keys)
    return keys


def check_chrome_flows(doc, pid, threads, parents, tasks, keys):
    starts = {e["id"]: e for e in doc["traceEvents"] if e["ph"] == "s"}
    ends = {e["id"]: e for e in doc["traceEvents"] if e["ph"] == "f"}
    check_eq(set(starts), set(ends), "wake flows with both ends")
    task_polls = {(s.track[1], s.start): s for s in parents if s.cat == "task" and
                  (parents[s] is None or parents[s].cat != "task")}
    for fid, s in starts.items():
        f = ends[fid]
        check_eq((s["pid"], f["pid"]), (pid, pid + TASK_PID_OFFSET), f"flow {fid}: processes of its ends")
        check(f["tid"] in keys, f"flow {fid} ends on task {f['tid']}, which has no track with polls")
        target = keys[f["tid"]]
        # The woken task's next poll starts where the arrow ends.
        answering = [p for (tid, start), p in task_polls.items() if start == ns(f["ts"])]
        check(any(task_key(p, parents) == target for p in answering),
              f"flow {fid}: no poll of task {f['tid']} starts at its end ({f['ts']}us)")
        track = tasks[(pid + TASK_PID_OFFSET, f["tid"])]
        at = ns(f["ts"])
        if f.get("bp") == "e":
            bound = [x for x in track if x.start <= at <= x.end]
        else:
            bound = [x for x in track if x.start >= at][:1]
        check(bound, f"flow {fid}: no slice on task {f['tid']}'s track to bind its end to ({f['ts']}us)")
        poll = next(p for p in answering if task_key(p, parents) == target)
        check(poll.start <= bound[0].start <= poll.end, f"flow {fid} binds to a poll after the woken one")
        # Its start: on the waking thread, inside the waker's poll if any.
        at = ns(s["ts"])
        inside = [x for x in threads.get((pid, s["tid"]), []) if x.start <= at <= x.end]
        if s["name"] == "self-wake":
            check(inside and task_key(inside[-1], parents) == target, f"flow {fid}: self-wake outside its task")
        elif inside:
            check(task_key(inside[-1], parents) != target, f"flow {fid}: a wake from its own task not called self")


STATS_THREADS = {
    201: {"demo::compute::{{closure}}": 100, "demo::step::{{closure}}": 3, "demo::blocking_io::{{closure}}": 3},
    202: {"tokio::runtime::task::raw::RawTask::poll": 3, "demo::job::{{closure}}": 2,
          "<tokio::runtime::blocking::task::BlockingTask<T> as core::future::future::Future>::poll": 1},
}
STATS_TASKS = {1: ("thread", 201), 2: "0xb10c", 3: "0x7a51", 4: ("thread", 201)}
TASKS_THREADS = {
    301: {"tokio::runtime::task::raw::RawTask::poll": 6, "demo::parent::{{closure}}": 3,
          "demo::left::{{closure}}": 2, "demo::right::{{closure}}": 3, "demo::worker::{{closure}}": 3},
    302: {},
}
TASKS_TASKS = {1: "0x1000", 2: "0x2000", 3: "0x3000", 4: "0x4000"}


@test_once
def chrome_placement_synthetic():
    traces = fixtures()
    check_chrome_placement(chrome_export(traces["stats"]), 100, STATS_THREADS, STATS_TASKS)
    doc = chrome_export(traces["tasks"])
    check_chrome_placement(doc, 100, TASKS_THREADS, TASKS_TASKS)
    flows = sorted((e["name"], e["tid"], e["ts"]) for e in doc["traceEvents"] if e["ph"] in "sf")
    check_eq(flows, [("self-wake", 1, 7.0), ("self-wake", 301, 6.25), ("wake", 1, 6.0), ("wake", 302, 5.0)],
             "wake flows: (name, thread or task, us)")
    cancels = [(e["name"], e["pid"], e["tid"], e["ts"]) for e in doc["traceEvents"] if e["ph"] == "i"]
    check_eq(cancels, [("cancelled: demo::worker::{{closure}}", 100 + TASK_PID_OFFSET, 3, 3.39)], "cancellations")


# --- Perfetto export placement ----------------------------------------------

def perfetto_export(trace):
    """The export of trace, inflated, decoded and resolved: no problem
    trace_processor would reject (undefined iids, missing flags)."""
    out = tmpfile("placement.perfetto")
    tracer_ok("export", "--format", "perfetto", "-o", out, trace)
    decoded = perfetto_decode.decode(out)
    check_eq(decoded.problems, [], "Perfetto sequences, interning and clocks")
    return decoded


def check_perfetto_matches_chrome(trace, pid):
    """The Perfetto export holds the same slices on the same threads and
    tasks as the Chrome export (checked above), nested as BEGIN/END, at
    the same nanoseconds once its incremental timestamps are summed, and
    its flows start and end where Chrome's do."""
    decoded = perfetto_export(trace)
    doc = chrome_export(trace)
    tracks = {}
    for d in decoded.descriptors:
        thread = one(d, "thread")
        if thread:
            check_eq(one(thread, "pid"), pid, "thread track's pid")
            tracks[one(d, "uuid")] = ("thread", one(thread, "tid"))
        elif one(d, "parent_uuid") == 2:
            tracks[one(d, "uuid")] = ("task", int(re.match(r"task (\d+):", one(d, "name")).group(1)))
    slices, stacks, flow_starts, flow_ends = collections.Counter(), collections.defaultdict(list), {}, {}
    for e in sorted(decoded.events, key=lambda e: e["ts"]):  # stable: each sequence keeps its order
        ts, track = e["ts"], tracks.get(e["track"])
        check(track is not None, f"an event on an undeclared track {e['track']}")
        if e["type"] == "TYPE_SLICE_BEGIN":
            stacks[track].append((e["name"], ts))
        elif e["type"] == "TYPE_SLICE_END":
            check(stacks[track], f"an END without BEGIN on {track}")
            name, start = stacks[track].pop()
            slices[(track, name, start, ts)] += 1
        for fid in e["flow_ids"]:
            flow_starts[fid] = (track, ts)
        for fid in e["terminating_flow_ids"]:
            flow_ends[fid] = (track, ts)
    check(all(not s for s in stacks.values()), "slices left open")
    want = collections.Counter()
    for (p, tid), items in chrome_slices(doc).items():
        for s in items:
            kind = "thread" if p == pid else "task"
            want[((kind, tid), s.name, s.start, s.end)] += 1
    # Chrome's microseconds since the first event, as nanoseconds (ns()).
    origin = min(s[2] for s in slices) if slices else 0
    shift = min(k[2] for k in want) if want else 0
    got = collections.Counter({(k[0], k[1], k[2] - origin + shift, k[3] - origin + shift): n
                               for k, n in slices.items()})
    check_eq(got - want, collections.Counter(), "Perfetto slices not in the Chrome export")
    check_eq(want - got, collections.Counter(), "Chrome slices not in the Perfetto export")
    chrome_flows = {}
    for e in doc["traceEvents"]:
        if e["ph"] in "sf":
            kind = "thread" if e["pid"] == pid else "task"
            chrome_flows.setdefault(e["id"], {})[e["ph"]] = ((kind, e["tid"]), ns(e["ts"]))
    got_flows = sorted((flow_starts[f], flow_ends.get(f)) for f in flow_starts)
    got_flows = sorted(((a[0], a[1] - origin + shift), (b[0], b[1] - origin + shift) if b else None)
                       for a, b in got_flows)
    check_eq(got_flows, sorted((f["s"], f["f"]) for f in chrome_flows.values()), "Perfetto flows vs Chrome's")
    return decoded


@test_once
def perfetto_placement_synthetic():
    traces = fixtures()
    check_perfetto_matches_chrome(traces["stats"], 100)
    check_perfetto_matches_chrome(traces["tasks"], 100)


# --- recorded targets ---------------------------------------------------------

def recorded(binary_name, *args):
    binary = os.path.join(RUST, binary_name)
    trace, proc = record(binary, *args, out=tmpfile(f"golden-{binary_name}-{backend()}.trace"))
    check_eq(proc.returncode, 0, f"record {binary_name} ({proc.stderr.strip()})")
    return trace


@test
def export_placement_recorded():
    """spawn_tokio (children wake their parent from their own polls) and
    wake_tokio (a plain thread wakes the task): placement in both exports."""
    for name, want_flows in (("spawn_tokio", 1), ("wake_tokio", 3)):
        trace = recorded(name)
        report = report_json(trace)
        doc = chrome_export(trace)
        keys = check_chrome_placement(doc, report["pid"])
        flows = [e for e in doc["traceEvents"] if e["ph"] == "s"]
        check(len(flows) >= want_flows, f"{name}: {len(flows)} wake flows, want at least {want_flows}")
        check(len(keys) >= 2, f"{name}: task tracks {keys}")
        check_perfetto_matches_chrome(trace, report["pid"])


DURATION = re.compile(r"\b\d+(\.\d+)?(ns|us|ms|s)\b")


def normalize(text):
    """Timings, ids of the run and paths of the build replaced, as
    uftrace's tests do; the longest polls and the latency histogram (which
    rows they hold depends on timing) reduced to their headings."""
    out, skipping = [], False
    for line in text.splitlines():
        if line.startswith("Capture:") or " polls took longer than " in line:  # timing: a loaded machine
            continue
        if skipping and (not line.strip() or not line.startswith(" ") and not DURATION.match(line.strip())):
            skipping = False
        if skipping:
            continue
        if re.match(r"\s*DURATION\s+AT\s+RESULT", line) or line.startswith("Wake -> poll latency"):
            skipping = True
        for path, name in ((BUILD, "<build>"), (os.path.realpath(BUILD), "<build>"), (REPO, "<repo>")):
            line = line.replace(path, name)
        line = re.sub(r"\(pid \d+,", "(pid <PID>,", line)
        line = re.sub(r"Recorded: \d+ events", "Recorded: <N> events", line)
        line = re.sub(r"(\S)/\d+\b", r"\1/<TID>", line)
        line = DURATION.sub("<T>", line)
        out.append(re.match(r"\s*", line).group(0) + " ".join(line.split()))  # the tree's indentation kept
    return "\n".join(out) + "\n"


@test
def recorded_text_golden():
    """report (sorted by name), report --tasks and tree of deterministic
    targets, timings normalized: the same rows and counts under both
    backends."""
    for name in ("join_tokio", "spawn_tokio"):
        trace = recorded(name)
        for suffix, args in (("report.txt", ("report", "--sort", "name")),
                             ("report-tasks.txt", ("report", "--sort", "name", "--tasks")),
                             ("tree.txt", ("tree",))):
            compare_golden(os.path.join(EXPECTED, "recorded", f"{name}.{suffix}"), normalize(tracer_ok(*args, trace)),
                           f"{name} [{backend()}]: {' '.join(args)}")
