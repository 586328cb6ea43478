"""On-CPU profiles (asynctrace profile): samples joined with the polls of
the same run must name the task and the futures that were on the CPU.

busy_poll runs its N tasks one after the other, each spinning MS ms of CPU
inside its first poll of `busy` (tests/targets/rust/src/bin/busy_poll.rs):
by construction nearly all CPU time of the run is inside those polls, one
task at a time, so the samples whose innermost future is `busy` must all
belong to busy tasks (at least 90 %: a sample taken on the edge of a poll
is the only doubt), each of the N tasks getting a share. The counts of the
report, of the folded stacks and of their groupings must agree exactly:
they are the same samples."""
import collections
import json
import os
import re

from harness import *  # noqa: F401,F403

BUSY = os.path.join(RUST, "busy_poll")
BUSY_FN = "busy_poll::busy::{{closure}}"
TASKS, SPIN_MS, HZ = 3, 60, 999
_recorded = {}


def profiled():
    """busy_poll profiled once per backend: (trace, report --json)."""
    if backend() in _recorded:
        return _recorded[backend()]
    need_root()
    truth = ground_truth(BUSY, "--tasks", str(TASKS), "--spin-ms", str(SPIN_MS))
    trace = tmpfile(f"profile-busy-{backend()}.trace")
    proc = tracer("profile", "-q", "-F", str(HZ), "-o", trace, *backend_args(), "--", BUSY,
                  "--tasks", str(TASKS), "--spin-ms", str(SPIN_MS))
    check_eq(proc.returncode, 0, f"profile busy_poll ({proc.stderr.strip()})")
    check_eq(proc.stdout, truth["stdout"], "the target's stdout")
    report = report_json(trace)
    compare_with_truth(report, truth)
    _recorded[backend()] = (trace, report)
    return _recorded[backend()]


def folded(trace, *args):
    proc = tracer("export", "--format", "folded", *args, trace)
    check_eq(proc.returncode, 0, f"export folded {' '.join(args)} ({proc.stderr.strip()})")
    stacks = collections.Counter()
    for line in proc.stdout.splitlines():
        m = re.fullmatch(r"(.+) (\d+)", line)
        check(m is not None, f"a folded line without its count: {line!r}")
        check(m.group(1) not in stacks, f"a stack written twice: {m.group(1)!r}")
        stacks[m.group(1)] = int(m.group(2))
    return stacks


@test
def profile_samples_belong_to_the_busy_tasks():
    trace, report = profiled()
    prof = report.get("profile")
    check(prof is not None, "report --json of a profiled trace has no profile")
    check_eq(prof["hz"], HZ, "sampling frequency")
    # 3 x 60 ms of CPU at 999 Hz is ~180 samples; far fewer means sampling is broken.
    check(prof["samples"] >= 60, f"only {prof['samples']} samples of ~{TASKS * SPIN_MS} ms of CPU at {HZ} Hz")
    busy_tasks = {t["id"] for t in report["tasks"] if t["root"] == BUSY_FN}
    check_eq(len(busy_tasks), TASKS, "busy tasks in the report")
    in_busy = {f["function"]: f["samples"] for f in prof["functions"]}.get(BUSY_FN, 0)
    check(in_busy >= 0.9 * prof["samples"], f"{in_busy} of {prof['samples']} samples inside {BUSY_FN}")
    by_task = {t["task"]: t["samples"] for t in prof["tasks"]}
    attributed = sum(by_task.get(t, 0) for t in busy_tasks)
    check(attributed >= 0.9 * in_busy, f"{attributed} of the {in_busy} samples in {BUSY_FN} are the busy tasks'")
    for task in busy_tasks:
        check(by_task.get(task, 0) >= in_busy / TASKS / 3,
              f"task {task} got {by_task.get(task, 0)} of {in_busy} samples, though it spun as long as the others")
    check_eq(sum(by_task.values()) + prof["outside_polls"] + prof["outside_tasks"], prof["samples"],
             "samples by task + outside tasks + outside polls")


@test
def profile_folded_stacks_are_rooted_at_tasks():
    trace, report = profiled()
    prof = report["profile"]
    stacks = folded(trace)
    check_eq(sum(stacks.values()), prof["samples"], "folded samples vs report's")
    by_root = collections.Counter()
    for stack, n in stacks.items():
        frames = stack.split(";")
        by_root[frames[0]] += n
        if BUSY_FN in frames[1:]:
            check(re.fullmatch(r"task \d+: " + re.escape(BUSY_FN), frames[0]) is not None,
                  f"a stack through {BUSY_FN} not rooted at its task: {stack!r}")
            check_eq(frames[1], BUSY_FN, f"the future under the task root of {stack!r}")
    for t in prof["tasks"]:
        check_eq(by_root[f"task {t['task']}: {t['name']}"], t["samples"], f"folded samples of task {t['task']}")
    check_eq(by_root["[runtime]"], prof["outside_polls"], "samples outside polls")
    # The same samples grouped otherwise: by the outermost future, by thread.
    by_function = folded(trace, "--group-by", "function")
    check_eq(sum(by_function.values()), prof["samples"], "--group-by function: samples")
    check_eq(sum(n for s, n in by_function.items() if s.split(";")[0] == BUSY_FN),
             sum(n for s, n in stacks.items() if s.split(";")[1:2] == [BUSY_FN]), "--group-by function: busy's")
    by_thread = folded(trace, "--group-by", "thread")
    check_eq(sum(by_thread.values()), prof["samples"], "--group-by thread: samples")
    tids = {t["tid"] for t in report["threads"]}
    for s in by_thread:
        m = re.fullmatch(r".*/(\d+)", s.split(";")[0])
        check(m is not None and int(m.group(1)) in tids, f"--group-by thread: a root that is not a thread: {s!r}")


@test
def profile_folded_filters():
    trace, report = profiled()
    task = max(report["profile"]["tasks"], key=lambda t: t["samples"])
    only = folded(trace, "--task", str(task["task"]))
    check_eq(sum(only.values()), task["samples"], f"--task {task['task']}: samples")
    check(all(s.startswith(f"task {task['task']}: ") for s in only), "--task: stacks of another task")


@test_once
def profile_errors():
    one_error_line(tracer("profile", "-F", "0", "--", BUSY), "profile -F 0")
    one_error_line(tracer("profile", "-F", "many", "--", BUSY), "profile -F many")
    # A trace recorded without samples has no profile to export.
    need_root()
    trace = tmpfile("profile-none.trace")
    proc = tracer("record", "-q", "-o", trace, "--", BUSY, "--tasks", "1", "--spin-ms", "1")
    check_eq(proc.returncode, 0, f"record ({proc.stderr.strip()})")
    proc = tracer("export", "--format", "folded", trace)
    check_eq(proc.returncode, 1, "export folded of a trace without samples: exit status")
    check_eq(len(proc.stderr.strip().splitlines()), 1, f"one line: {proc.stderr!r}")
    check("no on-CPU samples" in proc.stderr, f"says why: {proc.stderr!r}")
    check("profile" not in report_json(trace), "report --json of a trace without samples has no profile")
    proc = tracer("export", "--format", "chrome", "--group-by", "task", trace)
    check_eq(proc.returncode, 2, "--group-by with chrome: exit status")
