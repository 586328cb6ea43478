"""End states: tasks that are aborted, dropped at runtime shutdown, or that
complete after a select! or a timeout dropped one of their futures
(tests/targets/rust/src/bin/end_states.rs). Each task's final state in
`report --json` and `report --tasks`, each dropped future counted as
cancelled, and the .await each future was parked at."""
import json
import os

from harness import *  # noqa: F401,F403

BINARY = os.path.join(RUST, "end_states")
TASK_KEYS = ("root", "count", "polls_each", "state", "spawned_by", "spawn_line")


def check_task_states(report, truth):
    """Every task the truth lists, with its polls, final state and spawn site."""
    check(truth["tasks"], "the ground truth lists no tasks")
    by_id = {t["id"]: t for t in report["tasks"]}
    for want in truth["tasks"]:
        missing = [k for k in TASK_KEYS if k not in want]
        check(not missing, f"ground truth of task {want.get('root')} lacks {missing}")
        mine = [t for t in report["tasks"] if t["root"] == want["root"] and t["kind"] == "task"]
        check_eq(len(mine), want["count"], f"tasks running {want['root']}")
        for t in mine:
            what = f"task {t['id']} ({want['root']})"
            check_eq(t["state"], want["state"], f"state of {what}")
            check_eq(t["polls"], want["polls_each"], f"polls of {what}")
            parent = by_id.get(t["parent"])
            check_eq(parent["root"] if parent and parent["kind"] == "task" else None, want["spawned_by"],
                     f"the task that spawned {what}")
            check_eq(t["spawn_site"], f"{SOURCES}/{truth['program']}.rs:{want['spawn_line']}", f"spawn site of {what}")


def check_text_states(trace, report):
    """`report --tasks` shows the same state for each task as the JSON."""
    proc = tracer("report", "--tasks", trace)
    check_eq(proc.returncode, 0, f"report --tasks ({proc.stderr.strip()})")
    rows = {}
    table = proc.stdout.split("\nTasks: ", 1)[-1].split("\n\n", 1)[0]  # up to the next section
    for line in table.splitlines()[2:]:  # after the count and the header
        fields = line.split()
        rows[int(fields[0])] = fields[2]
    for t in report["tasks"]:
        check_eq(rows.get(t["id"]), t["state"], f"report --tasks state of task {t['id']} ({t['root']})")


def check_cancelled_futures(report, truth):
    rows = {f["name"]: f for f in report["functions"]}
    for name, want in truth["functions"].items():
        if "instances" not in want:
            continue
        check(name in rows, f"{name} not in the report")
        check_eq(rows[name]["instances"], want["instances"], f"{name} instances")
        check_eq(rows[name]["cancelled"], want["cancelled"], f"{name} cancelled (dropped before Ready)")


def check_parked_lines(report, truth):
    """Where each future returned Pending: its own source's .await lines,
    and for racer the select! it parks in (DWARF names tokio's macro file)."""
    rows = {f["name"]: f for f in report["functions"]}
    check(truth["await_lines"], "the ground truth lists no await lines")
    for name, lines in truth["await_lines"].items():
        want = {}
        for line in lines:
            want[line] = want.get(line, 0) + 1
        got = {p["line"]: p["count"] for p in rows[name]["parked_at"]
               if p["file"] is None or not p["file"].startswith(REGISTRY)}
        check_eq(got, want, f"await lines where {name} returned Pending")
    for name, want in truth["macro_awaits"].items():
        in_macro = [p for p in rows[name]["parked_at"] if p["file"] and p["file"].startswith(REGISTRY + "tokio-")]
        check_eq(sum(p["count"] for p in in_macro), want["pending"], f"{name}: Pending returns inside {want['macro']}")


def check_task_parked_at(report, truth):
    """A cancelled task says where it was parked when it was cancelled: its
    root's last .await (an async fn's; a hand-written future has none), and
    a completed one says nothing."""
    for t in report["tasks"]:
        if t["kind"] != "task":
            continue
        lines = truth["await_lines"].get(t["root"])
        if t["state"] == "cancelled" and lines:
            check(t["parked_at"] is not None, f"task {t['id']} ({t['root']}) cancelled without where it was parked")
            check_eq((t["parked_at"]["function"], t["parked_at"]["line"]), (t["root"], lines[-1]),
                     f"where task {t['id']} ({t['root']}) was parked when cancelled")
        elif t["state"] == "completed":
            check_eq(t["parked_at"], None, f"parked_at of completed task {t['id']} ({t['root']})")


def check_wake_groups(report, truth):
    """Every wake of the truth's tasks, and no other (an abort is not a wake)."""
    roots = {t["root"] for t in truth["tasks"]}
    got = {(g["target"], g["from"], g["kind"]): g["count"] for g in report["wakes"] if g["target"] in roots}
    want = {(w["target"], w["from"], w["kind"]): w["count"] for w in truth["wakes"]}
    check_eq(got, want, "wakes of the tasks (target, from, kind): count")


@test
def end_states_of_tasks_and_futures():
    truth = ground_truth(BINARY)
    trace, proc = record(BINARY)
    check_eq(proc.returncode, truth["exit_status"], f"exit status ({proc.stderr.strip()})")
    check_eq(proc.stdout, truth["stdout"], "stdout")
    report = report_json(trace)
    compare_with_truth(report, truth)
    check_task_states(report, truth)
    check_text_states(trace, report)
    check_cancelled_futures(report, truth)
    check_parked_lines(report, truth)
    check_task_parked_at(report, truth)
    check_wake_groups(report, truth)


def tree_nodes(tree):
    """Every node of `tree --json`, by name (counts summed over merged trees)."""
    nodes = {}

    def walk(n):
        row = nodes.setdefault(n["name"], {k: 0 for k in ("polls", "ready", "pending", "unwound")})
        for k in row:
            row[k] += n[k]
        for child in n["children"]:
            walk(child)
    for root in tree["trees"]:
        walk(root)
    return nodes


@test
def tree_counts_polls_a_panic_unwound():
    """panic_task: outer > middle > leaf unwind once each (the task's panic
    is caught by tokio); the call tree counts that poll as unwound, not as
    ready or pending, at every level."""
    binary = os.path.join(RUST, "panic_task")
    truth = ground_truth(binary)
    trace, proc = record(binary)
    check_eq(proc.returncode, 0, f"record ({proc.stderr.strip()})")
    out = tracer("tree", "--json", trace)
    check_eq(out.returncode, 0, f"tree --json ({out.stderr.strip()})")
    nodes = tree_nodes(json.loads(out.stdout))
    for name in ("panic_task::outer::{{closure}}", "panic_task::middle::{{closure}}",
                 "panic_task::leaf::{{closure}}"):
        want = truth["functions"][name]
        check(name in nodes, f"{name} not in the tree")
        for key in ("polls", "ready", "pending", "unwound"):
            check_eq(nodes[name][key], want[key], f"tree: {name} {key}")
    text = tracer("tree", trace).stdout
    check("polls 2 (0 ready, 1 pending, 1 unwound)" in text, f"tree text shows the unwound poll: {text[:400]!r}")
