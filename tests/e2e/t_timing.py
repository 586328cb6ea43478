"""Timing truth: `report --json`'s durations (per function, per task, per
thread, long polls) against what the `timing` target measured with its own
clock (tests/targets/rust/src/bin/timing.rs says why each figure is known).

Tolerance: ±15% of the program's figure + 0.3 ms (1 ms for task times,
lifetimes and idle times, which span task polls and timer sleeps). The
program times each poll of a task's future around the call, so a traced poll
is a little shorter (the tracer's own work at entry and exit is partly
outside it). A loaded 2-core machine stretches spins and sleeps; both clocks
see a stretch, except a preemption at a uprobe's trap (the kernel's return to
the program is where it reschedules): the trace's exit time is taken before
it. Hence each poll's two durations are paired and a tenth of them (at least
one) may differ, the statistics are checked exactly against the trace's own
per-poll durations (and total, mean and many's median against the program),
a task's busy time, which holds the runtime's work and 6 traps outside the
timed call, may reach 2.5x its future's polls (the tasks' sum must be their
thread's busy time, which may reach 1.75x), and the long-poll threshold is
chosen in a gap between the paired durations. The figures are far
enough apart that the likely bugs land outside: a mean of total/(n+1) (few:
4.5 vs 6 ms), p99 read as p50 or max (many: 2 or 20 vs 10 ms), p50 read as
the mean (2.82 vs 2 ms), unsorted ranks, nested or task polls counted again
in thread time or long polls, scheduled time counted as idle or lost."""
import json
import math
import os

from harness import *  # noqa: F401,F403

BINARY = os.path.join(RUST, "timing")
REL = 0.15
SLACK_NS = 300_000
LONG_SLACK_NS = 1_000_000
_recorded = {}  # backend -> (truth, timings, report, trace): one recording serves all three tests


def recorded():
    """Records timing once per backend; returns (truth, timings, report)."""
    if backend() in _recorded:
        return _recorded[backend()][:3]
    truth = ground_truth(BINARY)
    timings_path = tmpfile(f"timing-{backend()}.json")
    trace, proc = record(BINARY, "--timings", timings_path)
    check_eq(proc.returncode, truth["exit_status"], f"exit status ({proc.stderr.strip()})")
    check_eq(proc.stdout, truth["stdout"], "stdout")
    with open(timings_path) as f:
        timings = json.load(f)
    report = report_json(trace)
    compare_with_truth(report, truth)
    _recorded[backend()] = (truth, timings, report, trace)
    return _recorded[backend()][:3]


def near(got, want, what, slack=SLACK_NS):
    bound = REL * want + slack
    check(abs(got - want) <= bound, f"{what}: got {got / 1e6:.3f} ms, the program measured {want / 1e6:.3f} ms "
                                    f"(±{bound / 1e6:.3f} ms)")


def nearest_rank(ordered, pct):
    """summary.c's percentile: the value at rank ceil(n * pct / 100), 1-based."""
    return ordered[max(math.ceil(len(ordered) * pct / 100), 1) - 1]


def stats(durations):
    ordered = sorted(durations)
    return {"total_ns": sum(ordered), "mean_ns": sum(ordered) // len(ordered), "p50_ns": nearest_rank(ordered, 50),
            "p99_ns": nearest_rank(ordered, 99), "max_ns": ordered[-1]}


TASKS = ("few", "many", "napper", "waiter", "sender")


def all_polls(timings):
    """Every poll of every task's future, as the program timed it."""
    return [d for f in TASKS for d in timings[f]]


def fn_name(f):
    return f"timing::{f}::{{{{closure}}}}"


def task_of(report, f):
    mine = [t for t in report["tasks"] if t["root"] == fn_name(f) and t["kind"] == "task"]
    check_eq(len(mine), 1, f"tasks running {fn_name(f)}")
    return mine[0]


@test
def timing_poll_durations():
    """Per function, few (3 polls) and many (100): each poll's duration
    against the program's timing of it, and total, mean, p50, p99 and max
    against the same statistics (nearest rank) of those durations."""
    truth, timings, report = recorded()
    rows = {f["name"]: f for f in report["functions"]}
    listed = all_listed_polls()
    for f in ("few", "many"):
        row, measured = rows[fn_name(f)], timings[f]
        check_eq(row["polls"], len(measured), f"{f}: polls vs polls timed by the program")
        check_eq(row["unfinished"], 0, f"{f}: unfinished polls")
        traced = [p["duration_ns"] for p in sorted((p for p in listed if p["function"] == fn_name(f)),
                                                   key=lambda p: p["start_ns"])]
        check_eq(len(traced), len(measured), f"{f}'s polls in the longest-polls list")
        # A preemption at a uprobe's trap lands on the program's clock only: a few polls may differ.
        off = [(i, m, t) for i, (m, t) in enumerate(zip(measured, traced)) if abs(t - m) > REL * m + SLACK_NS]
        check(len(off) <= max(1, len(measured) // 10), f"{f}: polls (index, program ns, trace ns) off by more "
                                                      f"than ±{REL:.0%} + {SLACK_NS} ns: {off[:5]}")
        near(row["total_ns"], sum(measured), f"{f} total_ns", LONG_SLACK_NS)
        near(row["mean_ns"], stats(measured)["mean_ns"], f"{f} mean_ns")
        if len(measured) >= 100:  # a median of many polls is not moved by one preempted trap
            near(row["p50_ns"], stats(measured)["p50_ns"], f"{f} p50_ns")
        want = stats(traced)  # the figures themselves, exactly, from the durations the trace holds
        for key in ("total_ns", "mean_ns", "p50_ns", "p99_ns", "max_ns"):
            check_eq(row[key], want[key], f"{f} {key} vs nearest-rank statistics of its listed polls")
    # Nominally many's 20 ms; on a loaded machine whichever poll was stretched most.
    longest = report["longest"][0]
    check_eq(longest["duration_ns"], max(r["max_ns"] for r in rows.values() if r["context"] != "task"),
             "the longest poll vs the functions' max")


def all_listed_polls():
    """Every poll but task polls, from `report --top`'s longest-polls list."""
    if len(_recorded[backend()]) == 4:
        _recorded[backend()] += (longest_polls(_recorded[backend()][3], 1.0)["longest"],)
    return _recorded[backend()][4]


@test
def timing_task_times():
    """Per task: busy (its polls), scheduled (wake -> poll), idle and
    lifetime of napper (timer sleeps between its polls) and waiter (woken by
    a task that then keeps the thread 8 ms)."""
    truth, timings, report = recorded()
    # A task poll holds its future's poll and the runtime's work around it; under uprobes also 6 traps
    # outside the timed call, where a loaded kernel preempts: a wide upper bound. A task's polls are
    # its thread's, once: their sum is the thread's busy time (which the next test checks).
    for f in ("few", "many", "napper", "sender"):  # the waiter's ~0.1 ms is noise, not a figure
        busy, measured = task_of(report, f)["busy_ns"], sum(timings[f])
        low, high = (1 - REL) * measured - LONG_SLACK_NS, 2.5 * measured + LONG_SLACK_NS
        check(low <= busy <= high, f"{f} task busy {busy / 1e6:.3f} ms, want {low / 1e6:.3f}..{high / 1e6:.3f} ms "
                                   f"(its future's polls took {measured / 1e6:.3f} ms)")
    main = [t for t in report["threads"] if t["tid"] == report["pid"]]
    check_eq(len(main), 1, "the main thread in the report")
    tasks_busy = sum(t["busy_ns"] for t in report["tasks"])
    check(abs(tasks_busy - main[0]["busy_ns"]) <= 0.01 * main[0]["busy_ns"] + SLACK_NS,
          f"the tasks' busy time {tasks_busy} ns vs their thread's {main[0]['busy_ns']} ns")
    nap, life, spun = task_of(report, "napper"), timings["napper_lifetime_ns"], sum(timings["napper"])
    near(nap["lifetime_ns"], life, "napper lifetime", LONG_SLACK_NS)
    # Outside its polls it waits for the timer (idle), then for the thread (scheduled, ~0 on an idle one):
    # within its sleeps, which also hold the ends of its task polls (more than its timed polls).
    slept, around = timings["napper_slept_ns"], nap["busy_ns"] - spun
    low, high = (1 - REL) * (slept - max(around, 0)) - LONG_SLACK_NS, (1 + REL) * slept + LONG_SLACK_NS
    check(low <= nap["idle_ns"] + nap["wait_ns"] <= high,
          f"napper idle + scheduled {(nap['idle_ns'] + nap['wait_ns']) / 1e6:.3f} ms, want {low / 1e6:.3f}.."
          f"{high / 1e6:.3f} ms (it slept {slept / 1e6:.3f} ms; its task polls held {around / 1e6:.3f} ms "
          "more than its future's)")
    check(nap["wait_ns"] < nap["idle_ns"], f"napper scheduled {nap['wait_ns']} ns >= idle {nap['idle_ns']} ns: "
                                           "its 20 ms sleeps are idle time")
    # Woken in the send, polled once the sender's poll ends: between the two measurements.
    waiter, held, waited = task_of(report, "waiter"), timings["sender_held_ns"], timings["waiter_waited_ns"]
    low, high = (1 - REL) * held - SLACK_NS, (1 + REL) * waited + SLACK_NS
    check(low <= waiter["wait_ns"] <= high, f"waiter scheduled {waiter['wait_ns'] / 1e6:.3f} ms, want "
                                            f"{low / 1e6:.3f}..{high / 1e6:.3f} ms (the sender kept the thread "
                                            f"{held / 1e6:.3f} ms after its send)")
    # Its lifetime is busy + scheduled + idle (it ends with its future's Ready, a little before the end
    # of its last task poll): the 8 ms it was kept off the thread are not idle too.
    parts = waiter["busy_ns"] + waiter["wait_ns"] + waiter["idle_ns"]
    check(abs(parts - waiter["lifetime_ns"]) <= SLACK_NS,
          f"waiter busy + scheduled + idle {parts} ns vs lifetime {waiter['lifetime_ns']} ns")


def agree(pair):
    measured, traced = pair
    return abs(traced - measured) <= REL * measured + SLACK_NS


def clean_threshold(pairs, low_ms, high_ms):
    """A threshold between the short polls and the long ones, on a 50 us grid,
    as far as possible from each poll's duration by either clock (the
    program's and the trace's, paired in poll order) and never between the
    two, for the polls whose clocks agree; a preemption at a uprobe's trap
    counts on the program's clock only, and such a poll counts by the trace's."""
    def distance(t, pair):
        lo, hi = (min(pair), max(pair)) if agree(pair) else (pair[1], pair[1])
        return 0 if lo <= t <= hi else min(abs(t - lo), abs(t - hi))

    candidates = [low_ms * 1e6 + i * 50_000 for i in range(int((high_ms - low_ms) * 20) + 1)]
    best = max(candidates, key=lambda t: min(distance(t, p) for p in pairs))
    margin = min(distance(best, p) for p in pairs)
    # The trace's count is of the very durations paired here: any gap will do, the ms string rounds to 1 ns.
    check(margin >= 10_000, f"every threshold in {low_ms}..{high_ms} ms lies between or next to a poll's two "
                            "durations")
    return int(best)


def paired_polls(timings, traced):
    """(the program's duration, the trace's) of every poll of the tasks' futures, in order."""
    pairs = []
    for f in TASKS:
        mine = sorted((p for p in traced if p["function"] == fn_name(f)), key=lambda p: p["start_ns"])
        check_eq(len(mine), len(timings[f]), f"{f}'s polls in the longest-polls list")
        pairs.extend(zip(timings[f], (p["duration_ns"] for p in mine)))
    return pairs


@test
def timing_thread_busy_and_long_polls():
    """The main thread's busy time is the sum of its top-level polls (each
    spin once, not once per nesting level); polls over the threshold are
    counted exactly."""
    truth, timings, report = recorded()
    main = [t for t in report["threads"] if t["tid"] == report["pid"]]
    check_eq(len(main), 1, "the main thread in the report")
    polls = all_polls(timings)
    # Its top-level polls are the task polls: the timed polls and, under load, preemptions at traps
    # around them (see timing_task_times); nested polls counted again would make it 4x.
    busy, low, high = main[0]["busy_ns"], (1 - REL) * sum(polls) - LONG_SLACK_NS, 1.75 * sum(polls) + LONG_SLACK_NS
    check(low <= busy <= high, f"main thread busy {busy / 1e6:.3f} ms, want {low / 1e6:.3f}..{high / 1e6:.3f} ms "
                               f"(the tasks' futures' polls took {sum(polls) / 1e6:.3f} ms)")
    # --top: every poll (but task polls) in `longest`, with its function and duration.
    trace = _recorded[backend()][3]
    traced = [p for p in all_listed_polls() if p["function"] in {fn_name(f) for f in TASKS}]
    # Nominally 4 ms and shorter vs 8 ms and longer.
    pairs = paired_polls(timings, traced)
    off = [p for p in pairs if not agree(p)]
    check(len(off) <= len(pairs) // 10, f"polls whose two clocks differ (program ns, trace ns): {off[:5]}")
    threshold = clean_threshold(pairs, 4.2, 7.8)
    want = sum(1 for m, t in pairs if (m if agree((m, t)) else t) > threshold)
    check(want >= truth["long_polls"], f"{want} polls over {threshold} ns by the program's clock, fewer than the "
                                       f"{truth['long_polls']} it made long")
    long_report = longest_polls(trace, threshold / 1e6)
    over = [p for p in long_report["longest"] if p["duration_ns"] > threshold]
    check_eq(sum(1 for p in over if p in traced), want, f"the tasks' polls over {threshold / 1e6} ms")
    # Task polls (tokio's Harness::poll...) last as long as their futures' and are not counted again.
    task_polls = {f["name"] for f in long_report["functions"] if f["context"] == "task"}
    check(task_polls, "no task-poll functions in the report")
    check_eq([p for p in over if p["function"] in task_polls], [], "task polls among the longest polls")
    # A loaded machine can stretch any other poll (block_on's, a JoinHandle's) over it too.
    check_eq(long_report["warnings"]["long_polls"], len(over), f"long polls counted over {threshold / 1e6} ms")
    # Just below a poll's duration, that poll counts: the threshold is applied as given.
    for p in (over[-1], over[len(over) // 2]):
        just_below = p["duration_ns"] - 20_000
        got = longest_polls(trace, just_below / 1e6)["warnings"]["long_polls"]
        check_eq(got, sum(1 for q in long_report["longest"] if q["duration_ns"] > just_below),
                 f"long polls over {just_below / 1e6} ms")


def longest_polls(trace, long_poll_ms):
    proc = tracer("report", "--json", "--top", "100000", "--long-poll", str(long_poll_ms), trace)
    check_eq(proc.returncode, 0, f"report --top --long-poll ({proc.stderr.strip()})")
    return json.loads(proc.stdout)
