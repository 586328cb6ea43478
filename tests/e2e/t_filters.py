"""export --from/--to/--task/--thread, in both formats.

A filtered export must hold exactly the polls of the unfiltered one that
the filter keeps: those inside the time range (since the first poll, as
report counts), of the task (on its thread and on its task's track, no
other task track), on the thread; wake arrows only with both ends kept.
Known structure first: the synthetic stats trace (tests/golden/README.md)
and the timing target (timing.rs: few's polls spin 12, 2 and 4 ms, then
many's begin), then the rule itself against the unfiltered export, and
the Perfetto export (decoded with protoc) against the Chrome one."""
import collections
import os

from harness import *  # noqa: F401,F403
import perfetto_decode
from t_golden import TASK_PID_OFFSET, fixtures, ns, one

TIMING = os.path.join(RUST, "timing")
FEW = "timing::few::{{closure}}"
MANY = "timing::many::{{closure}}"
NAPPER = "timing::napper::{{closure}}"

Slice = collections.namedtuple("Slice", "pid tid name start end")


def chrome(trace, *filters):
    proc = tracer("export", "--format", "chrome", *filters, trace)
    check_eq(proc.returncode, 0, f"export {' '.join(filters)} exit status ({proc.stderr.strip()})")
    return json.loads(proc.stdout)


def slices(doc):
    return collections.Counter(Slice(e["pid"], e["tid"], e["name"], ns(e["ts"]), ns(e["ts"]) + ns(e["dur"]))
                               for e in doc["traceEvents"] if e["ph"] == "X")


def flows(doc):
    """{id: (start event, end event)}."""
    ends = collections.defaultdict(dict)
    for e in doc["traceEvents"]:
        if e["ph"] in "sf":
            ends[e["id"]][e["ph"]] = e
    return {fid: (d.get("s"), d.get("f")) for fid, d in ends.items()}


def named_threads(doc, pid):
    return {e["tid"] for e in doc["traceEvents"]
            if e["ph"] == "M" and e["name"] == "thread_name" and e["pid"] == pid}


def counts(found, pid, tid=None):
    return collections.Counter(s.name for s, n in found.items() for _ in range(n)
                               if s.pid == pid and (tid is None or s.tid == tid))


def first_poll_ns(doc, pid):
    """Where the filters' times count from: the first poll's start."""
    return min(s.start for s in slices(doc) if s.pid == pid)


def check_flows_inside(doc, keep_start, keep_end, what):
    for fid, (s, f) in flows(doc).items():
        check(s is not None and f is not None, f"{what}: flow {fid} has one end only")
        check(keep_start(s) and keep_end(f), f"{what}: flow {fid} ({s}, {f}) has an end the filter drops")


def perfetto_slices(trace, *filters):
    """The Perfetto export's slices as (pid-like, tid, name, start, end) in
    Chrome's terms: thread tracks under the target's pid, task tracks under
    the tasks' pid with the task id. Decoded (bundles inflated, interning
    and clocks resolved) by perfetto_decode."""
    out = tmpfile("filtered.pftrace")
    proc = tracer("export", "--format", "perfetto", "-o", out, *filters, trace)
    check_eq(proc.returncode, 0, f"perfetto export {' '.join(filters)} ({proc.stderr.strip()})")
    decoded = perfetto_decode.decode(out)
    check_eq(decoded.problems, [], "Perfetto sequences, interning and clocks")
    tracks, pid = {}, None
    for d in decoded.descriptors:
        if one(d, "thread"):
            pid = one(one(d, "thread"), "pid")
            tracks[one(d, "uuid")] = ("thread", one(one(d, "thread"), "tid"))
        elif one(d, "parent_uuid") == 2:
            tracks[one(d, "uuid")] = ("task", int(one(d, "name").split(":")[0].split()[1]))
    found, stacks = collections.Counter(), collections.defaultdict(list)
    # in time order (stable: file order at equal times); a worker loop's
    # BEGIN is written after what it contains
    for e in sorted(decoded.events, key=lambda e: e["ts"]):
        track = tracks.get(e["track"])
        if e["type"] not in ("TYPE_SLICE_BEGIN", "TYPE_SLICE_END"):
            continue
        check(track is not None, f"perfetto: a slice on an undeclared track {e['track']}")
        if e["type"] == "TYPE_SLICE_BEGIN":
            stacks[track].append((e["name"], e["ts"]))
        else:
            name, start = stacks[track].pop()
            found[(track, name, start, e["ts"])] += 1
    return found, {t for t in tracks.values()}, pid


def check_perfetto_same(trace, doc, filters, pid, what):
    """Same slices as the filtered Chrome export (times shifted: Perfetto
    keeps the recording's clock, Chrome counts from the recording's start)."""
    got, tracks, _ = perfetto_slices(trace, *filters)
    want = collections.Counter()
    for s, n in slices(doc).items():
        kind = "thread" if s.pid == pid else "task"
        want[((kind, s.tid), s.name, s.start, s.end)] += n
    if got and want:
        shift = min(k[2] for k in got) - min(k[2] for k in want)
        got = collections.Counter({(k[0], k[1], k[2] - shift, k[3] - shift): n for k, n in got.items()})
    check_eq(got - want, collections.Counter(), f"{what}: Perfetto slices not in the Chrome export")
    check_eq(want - got, collections.Counter(), f"{what}: Chrome slices not in the Perfetto export")
    return tracks


def expect_subset(full, filtered, keep, what):
    """filtered == the slices of full that keep() accepts, exactly."""
    want = collections.Counter({s: n for s, n in full.items() if keep(s)})
    check_eq(filtered - want, collections.Counter(), f"{what}: slices the filter should have dropped")
    check_eq(want - filtered, collections.Counter(), f"{what}: slices the filter should have kept")


# --- the synthetic trace: numbers by construction ---------------------------

@test_once
def filters_time_synthetic():
    """stats.trace: compute's polls take 10, 20, 30, 40 us ... 1 us apart
    from T0, with step's 4, 5, 6 us inside the first three: by 100 us, 3 of
    each have ended (the fourth compute poll ends at 103 us); nothing of
    thread 202, which starts at 5 ms."""
    trace = fixtures()["stats"]
    doc = chrome(trace, "--to", "100us")
    found = slices(doc)
    check_eq(counts(found, 100, 201), {"demo::compute::{{closure}}": 3, "demo::step::{{closure}}": 3},
             "thread 201 by 100us")
    check_eq(counts(found, 100, 202), {}, "thread 202 by 100us")
    check_eq(counts(found, 100 + TASK_PID_OFFSET, 1), counts(found, 100, 201), "task 1's track by 100us")
    check_eq(named_threads(doc, 100 + TASK_PID_OFFSET), {1}, "task tracks named (only task 1 lived by 100us)")
    for s in found:
        check(s.end <= 100_000, f"{s} ends after 100us")
    # Poll i (from 1) starts at 5i^2 - 4i - 1 us and ends at 5i^2 + 6i - 1 us:
    # from just after the 4th's start (63 us) to 5 ms, polls 5 to 31 (4990 us).
    late = slices(chrome(trace, "--from", "63.001us", "--to", "5ms"))
    check_eq(counts(late, 100, 201)["demo::compute::{{closure}}"], 27, "compute polls from 63.001us to 5ms")
    check_eq(min(s.start for s in late), 104_000, "the first poll kept: the 5th, at 5*25 - 20 - 1 = 104us")
    check_perfetto_same(trace, doc, ("--to", "100us"), 100, "stats --to 100us")


@test_once
def filters_task_and_thread_synthetic():
    """stats.trace's task 3 (0x7a51): job polled twice, inside the blocking
    task's shell on thread 202; thread 201 has compute, step and blocking_io."""
    trace = fixtures()["stats"]
    doc = chrome(trace, "--task", "3")
    found = slices(doc)
    check_eq(counts(found, 100, 201), {}, "task 3: nothing on thread 201")
    check_eq(counts(found, 100, 202), {"demo::job::{{closure}}": 2, "tokio::runtime::task::raw::RawTask::poll": 2},
             "task 3 on thread 202")
    check_eq(counts(found, 100 + TASK_PID_OFFSET), {"demo::job::{{closure}}": 2}, "task tracks")
    check_eq({s.tid for s in found if s.pid != 100}, {3}, "only task 3's track")
    check_eq(named_threads(doc, 100 + TASK_PID_OFFSET), {3}, "task tracks named")
    tracks = check_perfetto_same(trace, doc, ("--task", "3"), 100, "stats --task 3")
    check_eq({t for t in tracks if t[0] == "task"}, {("task", 3)}, "perfetto: task tracks")
    doc = chrome(trace, "--thread", "201")
    found = slices(doc)
    check_eq(counts(found, 100, 201), {"demo::compute::{{closure}}": 100, "demo::step::{{closure}}": 3,
                                       "demo::blocking_io::{{closure}}": 3}, "thread 201")
    check_eq({s.tid for s in found if s.pid == 100}, {201}, "only thread 201")
    check_eq(named_threads(doc, 100), {201}, "threads named")
    tracks = check_perfetto_same(trace, doc, ("--thread", "201"), 100, "stats --thread 201")
    check_eq({t for t in tracks if t[0] == "thread"}, {("thread", 201)}, "perfetto: thread tracks")


@test_once
def filters_bad_values():
    """Each bad value: one line `asynctrace: export: ...`, exit 2."""
    trace = fixtures()["stats"]
    for args in (("--from", "abc"), ("--to", "5"), ("--from", "1.5"), ("--to", "3m"), ("--from", "-1s"),
                 ("--task", "0"), ("--task", "x"), ("--thread", "-1"), ("--thread", ""),
                 ("--from", "2s", "--to", "1s"), ("--task", "999"), ("--task", "1", "--task", "5"),
                 ("--thread", "12345")):
        for fmt in ("chrome", "perfetto"):
            out = tmpfile("bad.out")
            proc = tracer("export", "--format", fmt, "-o", out, *args, trace)
            line = one_error_line(proc, f"export {fmt} {' '.join(args)}")
            check_eq(proc.returncode, 2, f"export {fmt} {' '.join(args)}: exit status")
            check(line.startswith("asynctrace: export: "), f"{' '.join(args)}: {line!r}")
    line = one_error_line(tracer("export", "--format", "chrome", "--task", "2", "--task", "999", trace),
                          "--task 999")
    check("--task 2, 999:" in line and "has no such task" in line, f"--task 999 says which and why: {line!r}")
    proc = tracer("export", "--format", "chrome", "-o", "/nonexistent-dir/out.json", trace)
    line = one_error_line(proc, "export to a directory that does not exist")
    check_eq(proc.returncode, 1, "export to a directory that does not exist: exit status")
    check(line.startswith("asynctrace: export: cannot create /nonexistent-dir/out.json"), repr(line))


# --- a recorded target -------------------------------------------------------

_timing = {}


def timing_trace():
    if backend() not in _timing:
        trace, proc = record(TIMING)
        check_eq(proc.returncode, 0, f"record timing ({proc.stderr.strip()})")
        _timing[backend()] = (trace, chrome(trace))
    return _timing[backend()]


def target_pid(doc):
    return next(e["pid"] for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == "process_name" and
                e["args"]["name"] != "tasks")


@test
def filters_time_recorded():
    """timing: by 30 ms after the first poll few's 3 polls (12 + 2 + 4 ms of
    spinning) have ended and many's first (20 ms, after them) has not; the
    filtered export is exactly the unfiltered one's polls inside the range."""
    trace, full = timing_trace()
    pid = target_pid(full)
    origin = first_poll_ns(full, pid)
    for frm, to, lo, hi in (("0", "30ms", 0, 30_000_000), ("25ms", None, 25_000_000, None),
                            ("100ms", "0.2s", 100_000_000, 200_000_000)):
        filters = ("--from", frm) + (("--to", to) if to else ())
        doc = chrome(trace, *filters)
        found = slices(doc)

        def inside(s, lo=lo, hi=hi):
            return s.start >= origin + lo and (hi is None or s.end <= origin + hi)
        expect_subset(slices(full), found, inside, f"timing {' '.join(filters)}")

        def at(e, lo=lo, hi=hi):
            return origin + lo <= ns(e["ts"]) and (hi is None or ns(e["ts"]) <= origin + hi)
        check_flows_inside(doc, at, at, f"timing {' '.join(filters)}")
        want_flows = {fid for fid, (s, f) in flows(full).items() if at(s) and at(f)}
        check_eq(set(flows(doc)), want_flows, f"timing {' '.join(filters)}: flows")
        check_perfetto_same(trace, doc, filters, pid, f"timing {' '.join(filters)}")
        if to == "30ms":
            got = counts(found, pid)
            check_eq((got[FEW], got[MANY]), (3, 0), "by 30ms: few's polls and many's")


@test
def filters_task_recorded():
    """timing --task <few>: few's 3 polls and their YieldNows on the thread,
    nothing of many or napper; on the task tracks only few's, the same as
    in the unfiltered export. Two --task options keep both tasks."""
    trace, full = timing_trace()
    pid = target_pid(full)
    tasks = {t["root"]: t["id"] for t in json.loads(tracer("report", "--tasks", "--json", trace).stdout)["tasks"]}
    few, napper = tasks[FEW], tasks[NAPPER]
    doc = chrome(trace, "--task", str(few))
    found = slices(doc)
    got = counts(found, pid)
    check_eq((got[FEW], got[MANY], got[NAPPER]), (3, 0, 0), "few's task on the thread")
    check_eq({s.tid for s in found if s.pid != pid}, {few}, "task tracks with slices")
    expect_subset(slices(full), collections.Counter({s: n for s, n in found.items() if s.pid != pid}),
                  lambda s: s.pid != pid and s.tid == few, "few's task track")
    on_thread = collections.Counter({s: n for s, n in found.items() if s.pid == pid})
    check_eq(on_thread - slices(full), collections.Counter(), "thread slices not in the unfiltered export")
    few_polls = [s for s in on_thread if s.name == FEW]
    for s in on_thread:
        check(min(p.start for p in few_polls) - 1_000_000 <= s.start and s.end <= max(p.end for p in few_polls) +
              1_000_000, f"{s} is far from few's polls")
    check_eq(named_threads(doc, pid + TASK_PID_OFFSET), {few}, "task tracks named")
    for fid, (s, f) in flows(doc).items():
        check_eq(f["tid"], few, f"flow {fid} ends on few's track")
    tracks = check_perfetto_same(trace, doc, ("--task", str(few)), pid, "timing --task few")
    check_eq({t for t in tracks if t[0] == "task"}, {("task", few)}, "perfetto: task tracks")
    both = counts(slices(chrome(trace, "--task", str(few), "--task", str(napper))), pid)
    check_eq((both[FEW], both[NAPPER], both[MANY]), (3, 3, 0), "--task few --task napper")


@test
def filters_thread_recorded():
    """tokio_mt: --thread TID keeps that thread's polls, exactly, and their
    twins on the task tracks; no other thread's track, no arrow from or to
    another thread."""
    binary = os.path.join(RUST, "tokio_mt")
    trace, proc = record(binary, "--tasks", "4", "--yields", "3")
    check_eq(proc.returncode, 0, f"record tokio_mt ({proc.stderr.strip()})")
    full = chrome(trace)
    pid = target_pid(full)
    by_thread = collections.Counter(s.tid for s, n in slices(full).items() for _ in range(n) if s.pid == pid)
    tid = by_thread.most_common(1)[0][0]
    doc = chrome(trace, "--thread", str(tid))
    found = slices(doc)
    on_thread = {(s.name, s.start, s.end) for s in slices(full) if s.pid == pid and s.tid == tid}
    expect_subset(slices(full), found, lambda s: (s.pid == pid and s.tid == tid) or
                  (s.pid != pid and (s.name, s.start, s.end) in on_thread), f"tokio_mt --thread {tid}")
    check_eq(named_threads(doc, pid), {tid}, "threads named")
    for fid, (s, f) in flows(doc).items():
        check_eq(s["tid"], tid, f"flow {fid} starts on the thread")
    check_perfetto_same(trace, doc, ("--thread", str(tid)), pid, f"tokio_mt --thread {tid}")
