"""Analyses of a large synthetic trace (build/gen-trace,
tests/tools/gen_trace.c) against what it holds by construction: polls,
results, total and longest time per function, busy time per thread, tasks,
spawns and wakes, exactly. The generator states its truth (--truth), counted
as it makes the events; the shape's closed forms are checked here too, so a
generator bug does not pass as the truth. Two shapes: each thread a
current-thread runtime, and (--shell) task polls inside a worker loop's
poll, a runtime shell, as tokio's multi-thread workers run them. No
recording: no root needed."""
import collections
import hashlib

from harness import *  # noqa: F401,F403

GEN = os.path.join(BUILD, "gen-trace")
CHAIN = ("tokio::runtime::task::raw::RawTask::poll", "tokio::runtime::task::harness::Harness<T,S>::poll",
         "synthetic::outer::{{closure}}", "synthetic::middle::{{closure}}", "synthetic::leaf::{{closure}}",
         "<synthetic::YieldNow as core::future::future::Future>::poll")
TASK_POLLS = CHAIN[:2]   # runtime task polls: result not decoded
MAIN = "synthetic::main::{{closure}}"
SHELL = "<tokio::runtime::blocking::task::BlockingTask<T> as core::future::future::Future>::poll"
# More events than PASS_THREADED_MIN_EVENTS (trace/polls.h): report reads it on two threads.
SHAPE = dict(events=250000, polls=9, threads=3, concurrent=50, seed=7)


def generate(name, **shape):
    check(os.path.exists(GEN), f"{GEN} missing: run `make all`")
    out = tmpfile(name)
    args = [a for k, v in shape.items() if v is not False for a in ((f"--{k}",) if v is True else (f"--{k}", str(v)))]
    proc = run([GEN, "-o", out, "--truth", *args])
    check_eq(proc.returncode, 0, f"gen-trace {' '.join(args)} ({proc.stderr.strip()})")
    return out, json.loads(proc.stdout)


def check_truth_by_formula(truth, polls, threads, concurrent, shell=False):
    """The generator's own counts against the shape: a task is P polls of
    the chain (P - 1 Pending, each woken: by ref when even, by value when
    odd), a spawn, an allocation and a free; each wave a main poll and,
    with shells, one poll of its thread's worker loop (Ready the last time)."""
    tasks = truth["spawned"]
    per_thread = [t["tasks"] for t in truth["threads"]]
    waves = sum(-(-n // concurrent) for n in per_thread)
    shells = threads if shell else 0
    check_eq(sum(per_thread), tasks, "tasks over the threads")
    check_eq((truth["block_on"], truth["shells"], truth["tasks"], truth["freed"]),
             (threads, shells, tasks + threads + shells, tasks), "tasks")
    for name in CHAIN:
        f = truth["functions"][name]
        runs = waves if shell and name in TASK_POLLS else 0
        want = (tasks * polls + runs, 0, 0, tasks * polls + runs) if name in TASK_POLLS else \
            (tasks * polls, tasks, tasks * (polls - 1), 0)
        check_eq((f["polls"], f["ready"], f["pending"], f["result_unknown"]), want, f"truth of {name}")
    check_eq((truth["functions"][MAIN]["polls"], truth["functions"][MAIN]["ready"]), (waves + threads, threads),
             "truth of main")
    loop = truth["functions"].get(SHELL, {"polls": 0, "ready": 0})
    check_eq((loop["polls"], loop["ready"]), (waves, threads) if shell else (0, 0), "truth of the worker loops")
    check_eq((truth["wakes_by_ref"], truth["wakes_by_val"]), (tasks * (polls // 2), tasks * ((polls - 1) // 2)),
             "truth's wakes")
    check_eq(truth["events"], tasks * (13 * polls + 2) + 2 * (waves + threads) + (6 * waves + 2 * threads
                                                                                  if shell else 0), "truth's events")
    # Nesting: each level 20 ns longer than the one it polls (shells too).
    for outer, inner in zip(CHAIN, CHAIN[1:]):
        if shell and outer == CHAIN[1]:
            continue  # a shell's Harness::poll is around BlockingTask::poll, not outer
        got = truth["functions"][outer]["total_ns"] - truth["functions"][inner]["total_ns"]
        check_eq(got, 20 * truth["functions"][outer]["polls"], f"{outer} - {inner} total ns")


EXACT_PERCENTILES = 4096  # timed polls of a row up to which report's p50/p99 are exact (docs/cli.md)


def check_functions(report, truth):
    """Every number exact; past 4096 timed polls, p50 and p99 within the
    histogram's stated bound (1/128 of the true value)."""
    rows = {f["name"]: f for f in report["functions"]}
    check_eq(sorted(rows), sorted(truth["functions"]), "functions polled")
    for name, want in truth["functions"].items():
        got = {k: rows[name][k] for k in want}
        if want["polls"] - want.get("unfinished", 0) > EXACT_PERCENTILES:
            for k in ("p50_ns", "p99_ns"):
                if k in want:
                    check(abs(got[k] - want[k]) * 128 <= want[k], f"{name} {k}: {got[k]}, want {want[k]} ± 1/128")
                    got[k] = want[k]
        check_eq(got, want, f"{name}")
        check_eq(rows[name]["mean_ns"], want["total_ns"] // want["polls"], f"{name} mean")


def check_tasks(report, truth, polls):
    tasks = report["tasks"]
    check_eq(len(tasks), truth["tasks"], "tasks")
    kinds = collections.Counter(t["kind"] for t in tasks)
    check_eq(dict(kinds), {"task": truth["spawned"] + truth["shells"], "block_on": truth["block_on"]}, "task kinds")
    roots = {t["id"] for t in tasks if t["kind"] == "block_on"}
    spawned = [t for t in tasks if t["kind"] == "task" and t["root"] != SHELL]
    loops = collections.Counter((t["state"], t["parent"], t["wakes"], (t["spawn_site"] or "").endswith("main.rs:50"))
                                for t in tasks if t["root"] == SHELL)
    check_eq(dict(loops), {("completed", 0, 0, True): truth["shells"]} if truth["shells"] else {},
             "worker loop tasks: (state, parent, wakes, spawn site)")
    got = collections.Counter((t["polls"], t["wakes"], t["state"], t["root"], t["parent"] in roots,
                               (t["spawn_site"] or "").endswith("main.rs:50")) for t in spawned)
    want = {(polls, polls - 1, "completed", CHAIN[2], True, True): truth["spawned"]}
    check_eq(dict(got), want, "spawned tasks: (polls, wakes, state, root, parent is a block_on, site)")
    check_eq(sum(t["wakes_by_ref"] for t in tasks), truth["wakes_by_ref"], "wakes by ref")
    check_eq(sum(t["self_wakes"] for t in tasks), truth["wakes_by_ref"], "self-wakes")
    mains = collections.Counter((t["state"], t["root"]) for t in tasks if t["kind"] == "block_on")
    check_eq(dict(mains), {("completed", MAIN): truth["block_on"]}, "block_on tasks")
    times = {k: sum(t[k + "_ns"] for t in tasks) for k in ("busy", "wait", "lifetime", "idle")}
    want = {k: truth[f"task_{k}_ns"] for k in ("busy", "wait", "lifetime", "idle")}
    check_eq(times, want, "task times summed over the tasks (ns)")


def check_wakes(report, truth):
    """Self-wakes by ref; wakes by value from the thread outside any poll,
    or, under a worker loop, from the worker loop's task."""
    groups = collections.Counter()
    for g in report["wakes"]:
        check_eq(g["target"], CHAIN[2], "a wake's target")
        groups[(g["from"] if g["from"] == "self" else "other", g["kind"])] += g["count"]
    check_eq(dict(groups), {("self", "by_ref"): truth["wakes_by_ref"], ("other", "by_val"): truth["wakes_by_val"]},
             "wakes by origin and kind")
    by_val = sorted(g["from"] for g in report["wakes"] if g["kind"] == "by_val")
    want = [f"task:{SHELL}"] if truth["shells"] else sorted(f"thread:worker-{i}" for i in range(len(truth["threads"])))
    check_eq(by_val, want, "by-value wakers")
    answered = sum(b["count"] for b in truth["wake_latency"])
    check_eq(answered, truth["wakes_by_ref"] + truth["wakes_by_val"], "truth: every wake answered by a poll")
    check_eq(report["wake_latency"], truth["wake_latency"], "wake -> poll latency histogram")
    check_eq(report["warnings"], {"long_polls": 0, "self_wakes": truth["wakes_by_ref"], "woken_not_polled": 0,
                                  "never_woken": 0, "wakes_after_end": 0}, "warnings")


def report_matches_construction(shape):
    trace, truth = generate("scale.trace", **shape)
    check_truth_by_formula(truth, shape["polls"], shape["threads"], shape["concurrent"], shape.get("shell", False))
    check(truth["events"] >= shape["events"] * 0.99, f"{truth['events']} events for --events {shape['events']}")
    report = report_json(trace)
    check_eq((report["events"], report["lost"], report["cut_short"]), (truth["events"], 0, False), "events")
    check_eq((report["polls"], report["unwound"], report["unfinished"], report["orphan_exits"]),
             (truth["polls"], 0, 0, 0), "polls")
    check_functions(report, truth)
    check_eq([p["duration_ns"] for p in report["longest"]], truth["longest_ns"], "longest polls (ns)")
    threads = {t["tid"]: (t["polls"], t["busy_ns"]) for t in report["threads"]}
    check_eq(threads, {t["tid"]: (t["polls"], t["busy_ns"]) for t in truth["threads"]}, "threads: polls, busy ns")
    check_tasks(report, truth, shape["polls"])
    check_wakes(report, truth)


@test_once
def scale_report_matches_construction():
    report_matches_construction(SHAPE)


@test_once
def scale_report_matches_construction_under_worker_loops():
    report_matches_construction(dict(SHAPE, shell=True, concurrent=40))


def tree_matches_construction(shape):
    trace, truth = generate("tree.trace", **shape)
    proc = tracer("tree", "--json", trace)
    check_eq(proc.returncode, 0, f"tree ({proc.stderr.strip()})")
    trees = {t["name"]: t for t in json.loads(proc.stdout)["trees"]}
    check_eq(sorted(trees), sorted([MAIN, CHAIN[2]] + ([SHELL] if truth["shells"] else [])), "trees")
    if truth["shells"]:
        loop, f = trees[SHELL], truth["functions"][SHELL]
        check_eq((loop["tasks"], loop["polls"], loop["ready"], loop["children"]),
                 (truth["shells"], f["polls"], f["ready"], []), "the worker loops' tree")
    node = trees[CHAIN[2]]
    for depth, name in enumerate(CHAIN[2:]):
        check(node is not None, f"the tree ends above {name}")
        f = truth["functions"][name]
        check_eq((node["name"], node["tasks"], node["polls"], node["ready"], node["pending"], node["instances"],
                  node["busy_ns"]), (name, truth["spawned"], f["polls"], f["ready"], f["pending"],
                                     truth["spawned"], f["total_ns"]), f"tree level {depth}")
        check(len(node["children"]) <= 1, f"{name}: children {[c['name'] for c in node['children']]}")
        node = node["children"][0] if node["children"] else None
    check_eq(node, None, "the leaf future has no children")


@test_once
def scale_tree_matches_construction():
    tree_matches_construction(SHAPE)


@test_once
def scale_tree_matches_construction_under_worker_loops():
    tree_matches_construction(dict(SHAPE, shell=True))


@test_once
def scale_chrome_export_has_every_poll():
    for shell in (False, True):
        trace, truth = generate("chrome.trace", **dict(SHAPE, events=30000, shell=shell))
        out = tmpfile("scale.json")
        proc = tracer("export", "--format", "chrome", "-o", out, trace)
        check_eq(proc.returncode, 0, f"export ({proc.stderr.strip()})")
        with open(out) as f:
            doc = json.load(f)
        on_threads = collections.Counter(e["name"] for e in doc["traceEvents"] if e["ph"] == "X" and e["pid"] == 4242)
        check_eq(dict(on_threads), {n: f["polls"] for n, f in truth["functions"].items()},
                 f"slices on thread tracks (shell: {shell})")
        flows = sum(1 for e in doc["traceEvents"] if e["ph"] == "s")
        check_eq(flows, truth["wakes_by_ref"] + truth["wakes_by_val"], f"wake arrows (shell: {shell})")


@test_once
def scale_generator_is_deterministic():
    a, ta = generate("same.trace", **dict(SHAPE, events=20000))
    first = hashlib.sha256(open(a, "rb").read()).hexdigest()
    b, tb = generate("same.trace", **dict(SHAPE, events=20000))
    check_eq(hashlib.sha256(open(b, "rb").read()).hexdigest(), first, "same options, same bytes")
    _, tc = generate("other.trace", **dict(SHAPE, events=20000, seed=8))
    check_eq(tc["polls"], ta["polls"], "another seed: the same polls")
    check(tc["functions"][CHAIN[-1]]["total_ns"] != ta["functions"][CHAIN[-1]]["total_ns"],
          "another seed: other durations")


@test_once
def scale_perfetto_export_has_every_poll():
    from t_golden import one, perfetto_export  # decoded and resolved (run.py loads t_golden first)
    _, truth = generate("perfetto.trace", **dict(SHAPE, events=10000, shell=True))
    decoded = perfetto_export(tmpfile("perfetto.trace"))
    threads = {one(d, "uuid") for d in decoded.descriptors if d and one(d, "thread")}
    names, results = collections.Counter(), collections.Counter()
    open_slices = {}  # (track) -> stack of names: the result is on the END
    for e in decoded.events:
        if e["track"] not in threads:
            continue
        if e["type"] == "TYPE_SLICE_BEGIN":
            names[e["name"]] += 1
            open_slices.setdefault(e["track"], []).append(e["name"])
        elif e["type"] == "TYPE_SLICE_END" and open_slices.get(e["track"]):
            name = open_slices[e["track"]].pop()
            if "result" in e["args"]:
                results[(name, e["args"]["result"])] += 1
    check_eq(dict(names), {n: f["polls"] for n, f in truth["functions"].items()}, "slices on thread tracks")
    want = {(n, r): f[k] for n, f in truth["functions"].items()
            for r, k in (("Ready", "ready"), ("Pending", "pending"), ("?", "result_unknown")) if f[k]}
    check_eq(dict(results), want, "results on thread tracks")
