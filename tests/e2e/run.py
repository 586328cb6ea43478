#!/usr/bin/env python3
"""End-to-end tests: record real targets as root and compare with the ground
truth each target prints about itself. Run by tests/run.sh; closing line
"N passed, N failed". `run.py NAME...` runs only tests whose name contains NAME,
`run.py -NAME` all but those.
Tests live here and in tests/e2e/t_*.py; the harness is harness.py.

Tests that need BPF fail (never skip) when not run as root: CI runs as root.
"""
import glob
import importlib
import sys

import harness
import perfetto_decode
from harness import *  # noqa: F401,F403 (the tests below use the harness's helpers)


@test
def tokio_multi_thread_exact_counts():
    exact_counts("tokio_mt", "--tasks", "4", "--yields", "3")


@test
def tokio_multi_thread_other_shape():
    exact_counts("tokio_mt", "--tasks", "7", "--yields", "11")


@test
def tokio_current_thread_exact_counts():
    exact_counts("tokio_ct", "--tasks", "5", "--yields", "4")


@test
def async_std_exact_counts():
    exact_counts("async_std_tasks", "--tasks", "4", "--yields", "3")


@test
def futures_executor_exact_counts():
    exact_counts("futures_exec", "--tasks", "4", "--yields", "3")


@test
def release_build_counts_what_survives_inlining():
    """Release (debug = 1): inner async fns are inlined into outer's poll;
    the poll functions that keep a symbol are still counted exactly."""
    binary = os.path.join(RUST_RELEASE, "tokio_mt")
    args = ("--tasks", "5", "--yields", "4")
    truth = ground_truth(binary, *args)
    listed = tracer("symbols", "--format", "sym", binary)
    check_eq(listed.returncode, 0, "symbols on the release build")
    present = {line.split(" ", 1)[1] for line in listed.stdout.splitlines()}
    trace, proc = record(binary, *args)
    check_eq(proc.returncode, 0, "exit status")
    rows = functions_by_name(report_json(trace))
    surviving = [name for name in truth["functions"] if name in present]
    check(len(surviving) >= 2, f"expected outer and YieldNow to survive, got {surviving}")
    for name in surviving:
        check(name in rows, f"{name} has a symbol but no polls in the report")
        check_eq(rows[name]["polls"], truth["functions"][name]["polls"], f"{name} polls (release)")


@test
def busy_poll_duration_lower_bound():
    binary = os.path.join(RUST, "busy_poll")
    truth = ground_truth(binary)
    trace, proc = record(binary)
    check_eq(proc.returncode, 0, "exit status")
    rows = functions_by_name(report_json(trace))
    compare_with_truth(report_json(trace), truth)
    for name, want in truth["functions"].items():
        if "min_poll_ns" in want:
            check(rows[name]["max_ns"] >= want["min_poll_ns"],
                  f"{name}: longest poll {rows[name]['max_ns']} ns < known spin {want['min_poll_ns']} ns")


@test
def panic_is_caught_and_unwound_polls_counted():
    binary = os.path.join(RUST, "panic_task")
    truth = ground_truth(binary)
    untraced = run([binary])
    check_eq(untraced.returncode, 0, "untraced exit status")
    trace, proc = record(binary)
    check_eq(proc.returncode, untraced.returncode, "traced exit status")
    check_eq(proc.stdout, untraced.stdout, "traced stdout")
    check("fatal runtime error" not in proc.stderr, "the traced program aborted: " + proc.stderr)
    report = report_json(trace)
    compare_with_truth(report, truth)


@test
def chrome_export_has_one_event_per_poll():
    binary = os.path.join(RUST, "tokio_mt")
    trace, proc = record(binary, "--tasks", "3", "--yields", "2")
    check_eq(proc.returncode, 0, "exit status")
    out = tmpfile("timeline.json")
    exp = tracer("export", "--format", "chrome", "-o", out, trace)
    check_eq(exp.returncode, 0, f"export exit status ({exp.stderr})")
    with open(out) as f:
        doc = json.load(f)
    report = report_json(trace)
    # Thread tracks hold every poll once; task tracks repeat the futures' polls.
    polls = [e for e in doc["traceEvents"] if e["ph"] == "X" and e["pid"] == report["pid"]]
    check_eq(len(polls), report["polls"], "complete events on thread tracks vs polls")
    # Colors: the viewers pick them from the name (the same in every trace);
    # only polls unlike the others (unwound, unfinished, long) name one.
    named = {e.get("cname") for e in doc["traceEvents"] if e["ph"] == "X"}
    check(named <= {None, "bad", "terrible", "grey"}, f"colors named: {named}")
    check(any(e["ph"] == "M" and e["name"] == "thread_name" for e in doc["traceEvents"]), "thread names")
    locations = dict(doc["otherData"]["locations"])
    check(all(e["name"] in locations for e in polls if e["cat"] != "function"), "a location for every function")


C_FUNCTIONS = ("--function", "^(multi_ret|tail_caller|tail_target|plain|recurse|many_args)$")


@test
def c_target_one_exit_per_entry():
    binary = os.path.join(C_TARGETS, "probe_mech")
    truth = ground_truth(binary)
    trace, proc = record(binary, extra=C_FUNCTIONS)
    check_eq(proc.returncode, 0, f"exit status ({proc.stderr})")
    report = report_json(trace)
    rows = functions_by_name(report)
    check_eq(report["lost"], 0, "lost")
    check_eq(report["orphan_exits"], 0, "exits without entry")
    check_eq(report["unfinished"], 0, "entries still open at the end")
    for name, want in truth["functions"].items():
        check(name in rows, f"{name} missing from the report")
        check_eq(rows[name]["polls"], want["entries"], f"{name} entries")
        check_eq(rows[name]["unwound"], 0, f"{name} entries without an exit")


@test
def output_and_exit_status_pass_through():
    """The command's exit status, output, environment and open files are its own."""
    binary = os.path.join(C_TARGETS, "probe_mech")
    args = ("--exit", "3", "--env", "LD_PRELOAD", "--fds")
    untraced = run([binary, *args])
    trace, proc = record(binary, *args, extra=C_FUNCTIONS)
    check_eq(untraced.returncode, 3, "untraced exit status")
    check_eq(proc.returncode, 3, "traced exit status")
    check_eq(proc.stdout, untraced.stdout, "stdout")
    # A user's own LD_PRELOAD comes back intact, and nothing of ours leaks.
    preload = "/lib/x86_64-linux-gnu/libz.so.1"
    env = dict(os.environ, LD_PRELOAD=preload)
    untraced = run([binary, "--env", "LD_PRELOAD", "--fds"], env=env)
    traced = run([TRACER, "record", "-q", "-o", tmpfile(f"env-{backend()}.trace"), *backend_args(), *C_FUNCTIONS,
                  "--", binary, "--env", "LD_PRELOAD", "--fds"], env=env)
    check_eq(traced.returncode, 0, f"record with LD_PRELOAD set ({traced.stderr.strip()})")
    check(f"LD_PRELOAD={preload}\n" in untraced.stdout, f"untraced sees its LD_PRELOAD: {untraced.stdout!r}")
    check_eq(traced.stdout, untraced.stdout, "stdout with the user's LD_PRELOAD")
    # Started with SIGCHLD ignored (children reaped by the kernel): the status still comes back.
    ignoring = run([TRACER, "record", "-q", "-o", tmpfile(f"sigchld-{backend()}.trace"), *backend_args(), *C_FUNCTIONS,
                    "--", binary, "--exit", "3"],
                   preexec_fn=lambda: signal.signal(signal.SIGCHLD, signal.SIG_IGN))
    check_eq(ignoring.returncode, 3, f"exit status when started with SIGCHLD ignored ({ignoring.stderr.strip()})")


@test_once
def attach_to_running_process_with_duration():
    need_root()
    binary = os.path.join(C_TARGETS, "probe_mech")
    target = subprocess.Popen([binary, "--seconds", "3"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        trace = tmpfile("pid.trace")
        proc = tracer("record", "-q", "-o", trace, *C_FUNCTIONS, "--duration", "1", "-p", str(target.pid))
        check_eq(proc.returncode, 0, f"record -p exit status ({proc.stderr})")
        check(target.poll() is None, "the traced process must keep running after -p --duration")
        report = report_json(trace)
        check_eq(report["end_reason"], "duration elapsed", "end reason")
        check(report["polls"] > 0, "no calls recorded from the running process")
        # Exits are armed before entries and removed after them: calls cut
        # by attaching lack an entry (orphans, ignored), none lacks its exit.
        check_eq(report["unwound"], 0, "polls without an exit in a program that never panics")
    finally:
        target.wait(timeout=30)
    check_eq(target.returncode, 0, "the attached process's exit status")


@test
def ctrl_c_leaves_a_complete_trace():
    """Ctrl-C in a terminal signals the whole foreground process group."""
    need_root()
    binary = os.path.join(C_TARGETS, "probe_mech")
    trace = tmpfile(f"sigint-{backend()}.trace")
    # As from an interactive shell: a job run in the background (CI, a
    # mutation run) inherits SIGINT ignored, and so would the command.
    proc = subprocess.Popen([TRACER, "record", "-q", "-o", trace, *backend_args(), *C_FUNCTIONS, "--", binary,
                             "--seconds", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(1.5)
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=30)
    check_eq(proc.returncode, 128 + signal.SIGINT, "exit status: the command's death by SIGINT, as a shell reports it")
    report = report_json(trace)
    check_eq(report["end_reason"], "interrupted", "end reason")
    check(report["polls"] > 0, "events recorded before SIGINT")


@test
def sigterm_to_the_tracer_ends_the_command():
    need_root()
    binary = os.path.join(C_TARGETS, "probe_mech")
    trace = tmpfile(f"sigterm-{backend()}.trace")
    proc = subprocess.Popen([TRACER, "record", "-q", "-o", trace, *backend_args(), *C_FUNCTIONS, "--", binary,
                             "--seconds", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    check_eq(proc.returncode, 128 + signal.SIGTERM, "exit status")
    check(report_json(trace)["polls"] > 0, "events recorded before SIGTERM")


@test
def target_crash_leaves_a_complete_trace():
    binary = os.path.join(C_TARGETS, "probe_mech")
    trace, proc = record(binary, "--crash", extra=C_FUNCTIONS)
    check_eq(proc.returncode, 128 + signal.SIGSEGV, "exit status of a command killed by SIGSEGV")
    check_eq(proc.stdout, "probe_mech: 1000 calls done\n", "the command's output")
    report = report_json(trace)
    check_eq(report["end_reason"], "target exited", "end reason")
    check(os.WIFSIGNALED(report["exit_status"]) and os.WTERMSIG(report["exit_status"]) == signal.SIGSEGV,
          f"wait status in the trailer: {report['exit_status']}")
    rows = functions_by_name(report)
    check_eq(rows["plain"]["polls"], 1000, "calls recorded before the crash")


# --- async semantics: task instances, wakes, trees, await points ---------

STRUCTURED = [f"{scenario}_{runtime}" for scenario in ("join", "select", "spawn", "wake", "reuse")
              for runtime in ("tokio", "async_std", "futures")] + ["sleep_tokio"]


def tree_json(trace):
    proc = tracer("tree", "--json", trace)
    check(proc.returncode == 0, f"tree failed: {proc.stderr}")
    return json.loads(proc.stdout)["trees"]


def find_descendant(node, name):
    """The nearest node named `name` below `node` (frames the ground truth
    leaves out, like join!'s MaybeDone, may sit in between)."""
    queue = list(node["children"])
    while queue:
        n = queue.pop(0)
        if n["name"] == name:
            return n
        queue.extend(n["children"])
    return None


def check_tree(ours, want, where):
    check_eq(ours["polls"], want["polls"], f"tree {where}{want['name']} polls")
    for child in want.get("children", []):
        found = find_descendant(ours, child["name"])
        check(found is not None, f"tree: {child['name']} not under {where}{want['name']}")
        check_tree(found, child, f"{where}{want['name']} > ")


def check_tasks(report, truth):
    tasks = report["tasks"]
    by_id = {t["id"]: t for t in tasks}
    for want in truth.get("tasks", []):
        missing = [k for k in ("root", "count", "polls_each", "state", "spawned_by", "spawn_line") if k not in want]
        check(not missing, f"ground truth of tasks {want.get('root')} lacks {missing}")
        mine = [t for t in tasks if t["root"] == want["root"] and t["kind"] == "task"]
        check_eq(len(mine), want["count"], f"tasks running {want['root']}")
        for t in mine:
            check_eq(t["polls"], want["polls_each"], f"polls of task {t['id']} ({want['root']})")
            check_eq(t["state"], want["state"], f"state of task {t['id']} ({want['root']})")
            parent = by_id.get(t["parent"])
            got = parent["root"] if parent and parent["kind"] == "task" else None
            check_eq(got, want["spawned_by"], f"parent of task {t['id']} ({want['root']})")
            check_eq(t["spawn_site"], f"{SOURCES}/{truth['program']}.rs:{want['spawn_line']}",
                     f"spawn site of task {t['id']} ({want['root']})")


def check_wakes(report, truth):
    groups = {(g["target"], g["from"], g["kind"]): g["count"] for g in report["wakes"]}
    for want in truth.get("wakes", []):
        missing = [k for k in ("target", "from", "kind", "count") if k not in want]
        check(not missing, f"ground truth of a wake lacks {missing}")
        key = (want["target"], want["from"], want["kind"])
        check_eq(groups.get(key, 0), want["count"], f"wakes {key} (ours: {report['wakes']})")


def check_awaits(report, truth):
    """await_lines lists, per future instance, the .await of each Pending."""
    rows = {f["name"]: f for f in report["functions"]}
    for name, lines in truth.get("await_lines", {}).items():
        check(name in truth["functions"] and name in rows, f"await lines of {name}: not a polled truth function")
        instances = truth["functions"][name].get("instances", 1)
        want = {}
        for line in lines:
            want[line] = want.get(line, 0) + instances
        got = {p["line"]: p["count"] for p in rows[name]["parked_at"]
               if p["file"] is None or not p["file"].startswith(REGISTRY)}
        check_eq(got, want, f"await points where {name} returned Pending")
    # An .await inside join!/select!: DWARF names the macro's own file.
    macro_crates = {"tokio::join!": "tokio-", "tokio::select!": "tokio-",
                    "futures::join!": "futures-util-", "futures::select_biased!": "futures-util-"}
    for name, want in truth.get("macro_awaits", {}).items():
        check(want["macro"] in macro_crates, f"unknown macro in the ground truth: {want['macro']}")
        in_macro = [p for p in rows[name]["parked_at"]
                    if p["file"] and p["file"].startswith(REGISTRY + macro_crates[want["macro"]])]
        check_eq(sum(p["count"] for p in in_macro), want["pending"],
                 f"{name}: Pending returns parked inside {want['macro']} (parked_at {rows[name]['parked_at']})")


def check_structured(binary_name):
    binary = os.path.join(RUST, binary_name)
    truth = ground_truth(binary)
    trace, proc = record(binary)
    check("exit_status" in truth and "stdout" in truth, "ground truth lacks exit_status or stdout")
    check_eq(proc.returncode, truth["exit_status"], "exit status")
    check_eq(proc.stdout, truth["stdout"], "stdout")
    report = report_json(trace)
    compare_with_truth(report, truth)
    rows = {f["name"]: f for f in report["functions"]}
    for name, want in truth["functions"].items():
        check(("instances" in want) == ("cancelled" in want), f"ground truth of {name}: instances without cancelled")
        for key in ("instances", "cancelled"):
            if key in want and (want["polls"] or name in rows):
                check_eq(rows[name][key], want[key], f"{name} {key}")
    check_tasks(report, truth)
    check_wakes(report, truth)
    check_awaits(report, truth)
    check("tree" in truth, "ground truth lacks the call tree")
    if truth["tree"] is not None:
        trees = [t for t in tree_json(trace) if t["name"] == truth["tree"]["name"]]
        check_eq(len(trees), 1, f"trees rooted at {truth['tree']['name']}")
        check_tree(trees[0], truth["tree"], "")
    return trace, report


def structured_test(binary_name):
    def run_it():
        check_structured(binary_name)
    run_it.__name__ = f"structure_{binary_name}"
    return run_it


for _name in STRUCTURED:
    test(structured_test(_name))


@test
def chrome_export_has_one_flow_per_wake():
    trace, report = check_structured("spawn_tokio")
    exp = tracer("export", "--format", "chrome", trace)
    check_eq(exp.returncode, 0, f"export ({exp.stderr})")
    events = json.loads(exp.stdout)["traceEvents"]
    starts = [e for e in events if e["ph"] == "s"]
    ends = [e for e in events if e["ph"] == "f"]
    wakes = sum(g["count"] for g in report["wakes"])
    check_eq(len(starts), wakes, "flow starts vs wakes")
    check_eq(len(ends), wakes, "flow ends vs wakes")
    task_tracks = {e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"
                   and e["pid"] != report["pid"]}
    check(len(task_tracks) >= len([t for t in report["tasks"] if t["kind"] == "task"]), "a track per task")


@test
def perfetto_export_decodes():
    """The protobuf export decodes as perfetto.protos.Trace with protoc (our
    schema carries upstream's field numbers) once its bundles are inflated,
    every sequence's interned names and incremental clock resolve, and it
    holds what the Chrome export does: every poll on its thread, a track
    per task, wake flows, the poll's arguments on its slice's END."""
    trace, proc = record(os.path.join(RUST, "spawn_tokio"))
    check_eq(proc.returncode, 0, f"record ({proc.stderr})")
    report = report_json(trace)
    out = tmpfile("timeline.pftrace")
    exp = tracer("export", "--format", "perfetto", "-o", out, trace)
    check_eq(exp.returncode, 0, f"export exit status ({exp.stderr})")
    packets, bundles, _ = perfetto_decode.decode_packets(out)
    check(bundles >= 1, "the packets are in deflated bundles")
    decoded = perfetto_decode.Decoded(packets)
    check_eq(decoded.problems, [], "sequences, interning, clocks")
    tracks = decoded.descriptors
    events = decoded.events
    threads = {t["uuid"][0]: int(t["thread"][0]["tid"][0]) for t in tracks if "thread" in t}
    check(all(t["tid"] in threads.values() for t in report["threads"]), "a track per thread")
    tasks_process = [t["uuid"][0] for t in tracks if t.get("process", [{}])[0].get("process_name") == ["tasks"]]
    check_eq(len(tasks_process), 1, "the tasks process track")
    task_tracks = [t for t in tracks if t.get("parent_uuid") == tasks_process]
    check_eq(len(task_tracks), len(report["tasks"]), "task tracks vs tasks")
    begins = [e for e in events if e["type"] == "TYPE_SLICE_BEGIN"]
    check_eq(len([e for e in begins if e["track"] in threads]), report["polls"],
             "slice begins on thread tracks vs polls")
    check(all(e["name"] and e["categories"] for e in begins), "every slice has its name and category")
    ends = [e for e in events if e["type"] == "TYPE_SLICE_END"]
    check(all(e["args"].get("result") in ("Ready", "Pending", "?") and e["args"].get("end") in (None, "unwound", "unfinished")
              and "future" in e["args"] for e in ends), "result and future on every END, end when not returned")
    open_slices = {}
    for e in sorted(events, key=lambda e: e["ts"]):  # as viewers read it: slices must nest on each track
        n = open_slices.get(e["track"], 0) + {"TYPE_SLICE_BEGIN": 1, "TYPE_SLICE_END": -1}.get(e["type"], 0)
        check(n >= 0, f"a slice end without a begin on track {e['track']}")
        open_slices[e["track"]] = n
    check(not any(open_slices.values()), f"slices left open: {open_slices}")
    starts = sorted(i for e in events for i in e["flow_ids"])
    ends = sorted(i for e in events for i in e["terminating_flow_ids"])
    check(starts and starts == ends, f"flows: {len(starts)} start, {len(ends)} end")
    wakes = [e for e in events if e["type"] == "TYPE_INSTANT" and e["track"] in threads]
    check_eq(len(wakes), sum(g["count"] for g in report["wakes"]), "wake instants vs wakes")


@test
def perfetto_export_is_small():
    """At most 40 bytes per poll on a trace of many polls (~100 k task
    polls of a four-future chain, each on its thread and its task's
    track); the file is written as it is read, not held."""
    trace, proc = record(os.path.join(RUST, "tokio_ct"), "--tasks", "20", "--yields", "999")
    check_eq(proc.returncode, 0, f"record ({proc.stderr})")
    polls = report_json(trace)["polls"]
    out = tmpfile("big.pftrace")
    exp = tracer("export", "--format", "perfetto", "-o", out, trace)
    check_eq(exp.returncode, 0, f"export exit status ({exp.stderr})")
    size = os.path.getsize(out)
    check(polls > 100000, f"{polls} polls")
    check(size <= 40 * polls, f"{size} bytes for {polls} polls: {size / polls:.1f} bytes per poll")


@test
def select_loser_is_cancelled_in_the_timeline():
    trace, _ = check_structured("select_tokio")
    events = json.loads(tracer("export", "--format", "chrome", trace).stdout)["traceEvents"]
    cancels = [e for e in events if e["ph"] == "i" and e["name"].startswith("cancelled: ")]
    check_eq([e["name"] for e in cancels], ["cancelled: select_tokio::loser::{{closure}}"], "cancel markers")


@test
def pending_task_is_parked_at_its_await():
    binary = os.path.join(RUST, "parked_tokio")
    truth = ground_truth(binary)["parked"]
    trace, proc = record(binary, "--seconds", "5", extra=("--duration", "0.5"))
    check_eq(proc.returncode, 128 + signal.SIGTERM, "--duration ends the command with SIGTERM")
    report = report_json(trace)
    stuck = [t for t in report["tasks"] if t["root"] == truth["function"]]
    check_eq(len(stuck), 1, "the stuck task")
    check_eq(stuck[0]["state"], "pending", "its state at the end of the trace")
    check_eq(stuck[0]["parked_at"], truth, "where it is parked")
    text = tracer("report", "--tasks", trace).stdout
    check(f"parked at {truth['function']} line {truth['line']}" in text, "report --tasks says where it is parked")


@test
def address_reuse_counts_distinct_tasks():
    binary = os.path.join(RUST, "reuse_tokio")
    truth = ground_truth(binary, "--tasks", "300")
    trace, proc = record(binary, "--tasks", "300")
    check_eq(proc.returncode, 0, "exit status")
    check_tasks(report_json(trace), truth)


# --- what the in-process agent must survive ------------------------------

@test
def fork_child_is_not_traced():
    """A fork's child and a spawned process run the same functions; only
    the recorded process's polls are in the trace."""
    exact_counts("fork_tokio")


@test
def exec_keeps_what_came_before():
    """The traced process replaces itself with another program (same pid):
    its calls before exec are all there; the new program is not traced."""
    binary = os.path.join(C_TARGETS, "probe_mech")
    truth = ground_truth(binary)
    trace, proc = record(binary, "--exec", "/bin/true", extra=C_FUNCTIONS)
    check_eq(proc.returncode, 0, f"exit status of /bin/true ({proc.stderr.strip()})")
    check_eq(proc.stdout, truth["stdout"], "stdout")
    report = report_json(trace)
    rows = functions_by_name(report)
    for name, want in truth["functions"].items():
        check_eq(rows.get(name, {}).get("polls"), want["entries"], f"{name} entries before exec")
    check_eq(report["unfinished"], 0, "frames open at the end")


@test
def dlopen_after_patching():
    exact_counts("dlopen_tokio")


@test
def signal_handler_polls_inside_a_poll():
    """A signal handler that polls futures in the middle of a poll on the
    same thread: every record kept, nesting intact."""
    trace = exact_counts("signal_poll", "--raises", "7")
    report = report_json(trace)
    check_eq(report["unwound"], 0, "no poll closed as unwound")
    check_eq(report["orphan_exits"], 0, "no exit without its entry")


@test
def many_short_lived_threads():
    """Ten thousand threads, each gone after its two polls: every poll
    counted, every thread named, nothing lost."""
    binary = os.path.join(RUST, "threads_churn")
    args = ("--threads", "10000", "--parallel", "8")
    trace = exact_counts("threads_churn", *args)
    report = report_json(trace)
    named = [t for t in report["threads"] if t["name"].startswith("churn-")]
    check_eq(len(named), 10000, "threads named churn-N in the report")
    check_eq(report["lost"], 0, "events lost")
    check(os.path.exists(binary), binary)


@test
def http_server_under_load():
    binary = os.path.join(BUILD, "targets", "http", "release", "http_load")
    args = ("--requests", "2000", "--connections", "4")
    truth = ground_truth(binary, *args)
    trace, proc = record(binary, *args)
    check_eq(proc.returncode, 0, f"exit status ({proc.stderr.strip()})")
    check_eq(proc.stdout, truth["stdout"], "stdout")
    # A release build (debug = 1) has no DWARF types: Ready/Pending unknown.
    compare_with_truth(report_json(trace), truth, keys=("polls", "unwound"))


@test_once
def stack_arguments_go_to_uprobes():
    """A function that reads arguments from the stack cannot be called
    through: the in-process backend leaves it to uprobes in the same
    session, and every count stays exact."""
    binary = os.path.join(C_TARGETS, "probe_mech")
    truth = ground_truth(binary)
    trace = tmpfile("mixed.trace")
    proc = tracer("record", "-v", "-o", trace, "--backend", "inproc", *C_FUNCTIONS, "--", binary)
    check_eq(proc.returncode, 0, f"record ({proc.stderr.strip()})")
    refused = [l for l in proc.stderr.splitlines() if l.startswith("asynctrace: not patched: many_args ")]
    check_eq(len(refused), 1, f"-v lists many_args as not patched: {proc.stderr!r}")
    report = report_json(trace)
    check_eq(report["capture"], "inproc+ebpf-uprobe", "capture")
    rows = functions_by_name(report)
    for name, want in truth["functions"].items():
        check(name in rows, f"{name} missing")
        check_eq(rows[name]["polls"], want["entries"], f"{name} entries")
        check_eq(rows[name]["unwound"], 0, f"{name} unwound")


@test_once
def refusals_are_listed_with_reasons():
    """symbols --json says which functions the agent cannot patch and why;
    record -v names the same ones, and uprobes count them exactly."""
    binary = os.path.join(RUST_RELEASE, "tokio_mt")
    args = ("--tasks", "5", "--yields", "4")
    listed = tracer("symbols", "--all", "--format", "json", binary)
    check_eq(listed.returncode, 0, f"symbols --json ({listed.stderr.strip()})")
    fns = json.loads(listed.stdout)["functions"]
    check(all("inproc" in f for f in fns), "every function says whether it is patchable")
    refused = sorted(f["name"] for f in fns if not f["inproc"]["patchable"])
    check(all(f["inproc"].get("reason") for f in fns if not f["inproc"]["patchable"]), "a reason for each refusal")
    trace = tmpfile("refusals.trace")
    proc = tracer("record", "-v", "-o", trace, "--backend", "inproc", "--", binary, *args)
    check_eq(proc.returncode, 0, f"record ({proc.stderr.strip()})")
    named = sorted(re.match(r"asynctrace: not patched: (.*) \(\w+\): ", l).group(1)
                   for l in proc.stderr.splitlines() if l.startswith("asynctrace: not patched: "))
    check_eq(named, refused, "functions record -v says it did not patch")
    report = report_json(trace)
    check_eq(report["capture"], "inproc+ebpf-uprobe" if refused else "inproc", "capture")
    truth = ground_truth(binary, *args)
    rows = functions_by_name(report)
    for name, want in truth["functions"].items():
        # every one the agent can patch (inlined bodies too, when it can patch all their sites)
        if name in rows or any(f["name"] == name and f["inproc"]["patchable"] for f in fns):
            check_eq(rows.get(name, {}).get("polls"), want["polls"], f"{name} polls")


@test_once
def unprivileged_refusals_are_said():
    """Without privileges, what the agent cannot patch is not traced (no
    uprobes): record says how many, in one warning, and the rest is exact."""
    binary = os.path.join(C_TARGETS, "probe_mech")
    truth = ground_truth(binary)
    outdir = nobody_copies("nobody-c", binary)
    trace = os.path.join(outdir, "c.trace")
    proc = as_nobody(os.path.join(outdir, "asynctrace"), "record", "-o", trace, *C_FUNCTIONS, "--",
                     os.path.join(outdir, "probe_mech"))
    check_eq(proc.returncode, 0, f"record as nobody ({proc.stderr.strip()})")
    check_eq(proc.stdout, truth["stdout"], "stdout")
    warnings = [l for l in proc.stderr.splitlines() if "warning" in l]
    check_eq(warnings, ["asynctrace: warning: record: 2 functions cannot be patched in process and uprobes are "
                        "not available (they need root or CAP_BPF+CAP_PERFMON): they are not traced (-v lists them)"],
             "the warning")
    rows = functions_by_name(report_json(trace))
    for name in ("multi_ret", "tail_caller", "tail_target", "plain"):
        check_eq(rows.get(name, {}).get("polls"), truth["functions"][name]["entries"], f"{name} entries")
    check(not ({"recurse", "many_args"} & set(rows)), f"untraced functions have no rows: {sorted(rows)}")


@test_once
def analysis_cache_changes_nothing():
    """A second recording reuses the binary's analysis (~/.cache/asynctrace):
    the trace says the same as with a fresh analysis, and a changed binary
    is analysed again."""
    binary = os.path.join(RUST, "spawn_tokio")

    def summary(extra=()):
        trace, proc = record(binary, out=tmpfile("cache.trace"), extra=extra)
        check_eq(proc.returncode, 0, f"record {extra} ({proc.stderr.strip()})")
        report = report_json(trace)
        fns = sorted((f["name"], f["polls"], f["ready"], f["pending"], f["instances"], f["cancelled"],
                      json.dumps(f["parked_at"])) for f in report["functions"])
        tasks = sorted((t["root"], t["polls"], t["spawn_site"]) for t in report["tasks"])
        return fns, tasks

    fresh = summary(("--no-cache",))
    entries = lambda: sorted(f for f in os.listdir(os.environ["XDG_CACHE_HOME"] + "/asynctrace")
                             if f.endswith(".fns"))  # an analysis; its plan beside it
    summary()  # analyses and stores
    stored = entries()
    check(stored, "an analysis was stored")
    check_eq(summary(), fresh, "a recording from the cached analysis vs a fresh one")
    check_eq(entries(), stored, "the second recording reused the entry")
    copy = tmpfile("spawn_tokio")
    shutil.copy2(binary, copy)
    with open(copy, "ab") as f:
        f.write(b"\0")  # another file (size, times): another entry
    proc = tracer("record", "-q", "-o", tmpfile("copy.trace"), "--", copy)
    check_eq(proc.returncode, 0, f"record of the copy ({proc.stderr.strip()})")
    check_eq(len(entries()), len(stored) + 1, "a new entry for a different binary")


@test_once
def killed_tracer_leaves_the_target_running():
    """SIGKILL to the tracer: the command runs on (dropping its records)
    and ends as it would have; the trace holds what was written before."""
    need_root()
    binary = os.path.join(C_TARGETS, "probe_mech")
    proc = subprocess.Popen([TRACER, "record", "-q", "-o", tmpfile("killed.trace"), "--backend", "inproc",
                             *C_FUNCTIONS, "--", binary, "--seconds", "2", "--exit", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)  # past a second's boundary: record has checkpointed events (once a second)
    proc.kill()
    out, _ = proc.communicate(timeout=30)  # the pipe stays open while the target lives
    check_eq(out, "probe_mech: 1000 calls done\n", "the command's output, after the tracer died")
    # What it wrote before it died is read, with one warning.
    text = tracer("report", tmpfile("killed.trace"))
    check_eq(text.returncode, 0, f"report of a killed tracer's trace ({text.stderr.strip()})")
    check("trace ended abruptly" in text.stderr and len(text.stderr.strip().splitlines()) == 1,
          f"one warning line: {text.stderr!r}")
    check("loss unknown" in text.stdout and "cut short" in text.stdout, f"the report says so: {text.stdout[:400]!r}")
    report = report_json(tmpfile("killed.trace"))
    check(report["cut_short"] and report["events"] > 0 and report["polls"] > 0,
          f"events kept from a killed recording: {report['events']}, cut_short {report['cut_short']}")


# The ground truths themselves, checked by tests/targets/oracle.py with
# kernel uprobe events, independently of asynctrace.
ORACLE_TARGETS = [("tokio_mt",), ("async_std_tasks",), ("futures_exec",), ("panic_task",),
                  ("fork_tokio",), ("signal_poll",), ("threads_churn", "--threads", "40")] + \
                 [(f"{s}_{rt}",) for s in ("join", "select") for rt in ("tokio", "async_std", "futures")] + \
                 [("spawn_tokio",), ("wake_async_std",), ("reuse_futures",)]


@test_once
def oracle_confirms_the_ground_truths():
    need_root()
    oracle = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets", "oracle.py")
    for name, *args in ORACLE_TARGETS:
        proc = run([sys.executable, oracle, os.path.join(RUST, name), *args], timeout=300)
        check_eq(proc.returncode, 0, f"oracle.py {name} {' '.join(args)}: {(proc.stdout + proc.stderr)[-600:]}")


# --- errors: one clear line on stderr, non-zero exit ---------------------

@test_once
def error_missing_file():
    line = one_error_line(tracer("symbols", "/nonexistent/binary"), "symbols missing file")
    check("No such file" in line, line)
    one_error_line(tracer("report", "/nonexistent/trace"), "report missing file")


@test_once
def error_not_elf():
    path = tmpfile("not-elf")
    with open(path, "w") as f:
        f.write("just text\n")
    line = one_error_line(tracer("symbols", path), "symbols on text")
    check("not an ELF" in line, line)


@test_once
def error_elf_without_poll_functions():
    line = one_error_line(tracer("symbols", os.path.join(C_TARGETS, "probe_mech")), "symbols on C ELF")
    check("no poll functions" in line, line)


@test_once
def error_no_such_pid():
    need_root()
    line = one_error_line(tracer("record", "-o", tmpfile("x.trace"), "-p", "999999999"), "record -p bad")
    check_eq(line, "asynctrace: record: no such process: 999999999", "record -p of a pid beyond pid_max")
    pid = 4194303  # above any pid_max default; certainly unused
    line = one_error_line(tracer("record", "-o", tmpfile("x.trace"), "-p", str(pid)), "record -p unused")
    check("no such process" in line, line)


@test_once
def error_truncated_trace():
    binary = os.path.join(RUST, "tokio_ct")
    trace, proc = record(binary, "--tasks", "2", "--yields", "2")
    check_eq(proc.returncode, 0, "record")
    with open(trace, "rb") as f:
        data = f.read()
    whole = report_json(trace)
    # Cut before the function table: refused with one line.
    for cut in (40, 3):
        path = tmpfile(f"cut{cut}.trace")
        with open(path, "wb") as f:
            f.write(data[:cut])
        line = one_error_line(tracer("report", path), f"report of a trace cut at {cut}")
        want = "not an asynctrace trace file (too short)" if cut < 24 else "truncated trace file ("
        check(want in line, f"cut at {cut}: {line}")
    # Cut later (a tracer killed, a disk full): read up to the last whole
    # chunk, one warning, exit 0, never more events than were recorded.
    # Cuts: inside the trailer, and inside the last stream chunk.
    streams, at = [], 24  # the 3.x file header, then 16-byte chunk headers
    while at + 16 <= len(data):
        kind, size = int.from_bytes(data[at:at + 4], "little"), int.from_bytes(data[at + 8:at + 16], "little")
        if kind == 8:
            streams.append(at)
        at += 16 + size
    check(streams, "the recording has stream chunks")
    for cut in (len(data) - 1, streams[-1] + 20):
        path = tmpfile(f"cut{cut}.trace")
        with open(path, "wb") as f:
            f.write(data[:cut])
        for command in (("report",), ("report", "--tasks"), ("tree",), ("export", "--format", "chrome")):
            proc = tracer(*command, path)
            check_eq(proc.returncode, 0, f"{' '.join(command)} of a trace cut at {cut} ({proc.stderr.strip()})")
            lines = proc.stderr.strip().splitlines()
            check(len(lines) == 1 and "trace ended abruptly: " in lines[0] and "bytes discarded" in lines[0],
                  f"{' '.join(command)}, cut at {cut}: one warning line, got {proc.stderr!r}")
        cut_report = json.loads(tracer("report", "--json", path).stdout)
        check(cut_report["events"] <= whole["events"], f"cut at {cut}: {cut_report['events']} events")
        check_eq(cut_report["end_reason"], "cut short (no trailer)", f"cut at {cut}: end reason")
    check_eq(json.loads(tracer("report", "--json", tmpfile(f"cut{len(data) - 1}.trace")).stdout)["events"],
             whole["events"], "a trace cut inside its trailer keeps every event")


@test_once
def corrupt_traces_never_crash_the_readers():
    import random
    binary = os.path.join(RUST, "tokio_ct")
    trace, proc = record(binary, "--tasks", "2", "--yields", "2")
    check_eq(proc.returncode, 0, "record")
    with open(trace, "rb") as f:
        data = f.read()
    rng = random.Random(20261125)
    path = tmpfile("corrupt.trace")
    for i in range(150):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        with open(path, "wb") as f:
            f.write(mutated)
        for cmd in (("report",), ("report", "--json"), ("export", "--format", "chrome")):
            # Bytes: a corrupted name is printed as it is in the text report.
            p = subprocess.run([TRACER, *cmd, path], capture_output=True, timeout=60)
            check(p.returncode in (0, 1), f"{cmd} on mutation {i}: exit status {p.returncode}: {p.stderr[-200:]!r}")
            if p.returncode == 1:
                check(len(p.stderr.strip().splitlines()) == 1, f"{cmd} on mutation {i}: {p.stderr!r}")
            if p.returncode == 0 and ("--json" in cmd or "chrome" in cmd):
                json.loads(p.stdout)  # JSON output stays valid whatever the names hold


@test_once
def error_not_root():
    """Uprobes without the capabilities: one line naming them."""
    need_root()
    binary = os.path.join(RUST, "tokio_ct")
    proc = run(["capsh", "--drop=cap_sys_admin,cap_bpf,cap_perfmon", "--",
                "-c", f"exec {TRACER} record --backend bpf -o {tmpfile('noroot.trace')} -- {binary}"])
    line = one_error_line(proc, "record --backend bpf without capabilities")
    check("CAP_BPF" in line, line)


@test_once
def inproc_needs_no_privileges():
    """The in-process backend as an ordinary user: exact counts, the
    command's output and exit status its own."""
    args = ("--tasks", "5", "--yields", "4")
    truth = ground_truth(os.path.join(RUST, "tokio_mt"), *args)
    # Copies where nobody may read them, wherever the build directory is.
    outdir = nobody_copies("nobody", os.path.join(RUST, "tokio_mt"))
    binary = os.path.join(outdir, "tokio_mt")
    trace = os.path.join(outdir, "t.trace")
    proc = as_nobody(os.path.join(outdir, "asynctrace"), "record", "-o", trace, "--", binary, *args)
    check_eq(proc.returncode, 0, f"record as nobody ({proc.stderr.strip()})")
    check_eq(proc.stdout, truth["stdout"], "stdout")
    check("warning" not in proc.stderr, f"no warnings expected: {proc.stderr!r}")
    report = report_json(trace)
    check_eq(report["capture"], "inproc", "capture backend")
    compare_with_truth(report, truth)


@test_once
def error_usage():
    one_error_line(tracer("record"), "record without a target")
    one_error_line(tracer("frobnicate"), "unknown command")
    one_error_line(tracer("export", "--format", "nope", "x"), "unknown format")


if __name__ == "__main__":
    for path in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "t_*.py"))):
        importlib.import_module(os.path.basename(path)[:-3])
    sys.exit(harness.main())
