"""Event rate: the rate target polls a tiny future (`Tick`) as fast as it
can on T threads for S seconds and writes the exact number of polls it made
(`--counts FILE`). Traced in process (`-m` on Tick's poll, `--polls-only`),
each poll is 2 events; the target produces far more than any recorder
drains, so what this measures is how fast record drains a full-speed
producer and that every event is accounted for: recorded + lost = 2 x the
program's polls. The recorder's
own CPU time (its process, not the target's) is sampled from /proc.

A clean "N events/s for S seconds with 0 lost" needs a target held to a
given rate: rate's `--polls-per-second N` paces each thread to N polls a
second (busy-waiting, so the target keeps both cores as busy as a real
service would at that rate). The rates in STEPS are run up to the first that
loses events or that the target cannot reach, and the highest lossless one
is reported."""

import json
import os
import subprocess

from harness import ground_truth, median, must_succeed, timed
from tables import Section, fmt
from tracers import AsyncTrace, Untraced

TICK = "<rate::Tick as core::future::future::Future>::poll"
STEPS = (5e6, 10e6, 20e6, 40e6, 80e6)   # events/s asked of a throttled target (2 per poll)
THROTTLE = "--polls-per-second"   # per thread


def args(threads, seconds, counts, polls_per_sec=0):
    """polls_per_sec: the total over the threads (0: as fast as they can)."""
    a = ["--threads", str(threads), "--seconds", str(seconds), "--counts", counts]
    return a + [THROTTLE, str(int(polls_per_sec / threads))] if polls_per_sec else a


class Series:
    def __init__(self, threads, seconds, tracer, events_per_sec=0):
        self.threads, self.seconds, self.tracer = threads, seconds, tracer
        self.asked = events_per_sec
        self.rows = []   # per run: dict


def can_throttle(binary):
    r = subprocess.run([binary, THROTTLE, "1", "--ground-truth"], capture_output=True, text=True)
    return r.returncode == 0


def one_run(bench, s):
    counts = bench.path("rate-counts.json")
    out = bench.path("rate.trace")
    argv = [bench.target("rust/release/rate")] + args(s.threads, s.seconds, counts, s.asked / 2)
    cmd = s.tracer.command(argv, out)
    r = timed(cmd, own_cpu=True)
    must_succeed(cmd, r)
    with open(counts) as f:
        polls = json.load(f)["functions"][TICK]["polls"]
    row = {"polls": polls, "wall": r.wall, "cpu": r.cpu, "own_cpu": r.own_cpu, "good": True}
    if isinstance(s.tracer, AsyncTrace):
        gt = ground_truth(argv[0], [a for a in argv[1:] if a != "--counts" and a != counts])
        label = "%s rate %d threads %d s" % (s.tracer.name, s.threads, s.seconds)
        # the trace holds only the polls whose records were kept: check the accounting instead
        res = s.tracer.result(bench, label, r, out, gt, expect={}, lost_ok=True)
        traced = sum(f["polls"] for f in res.report["functions"] if f["name"] == TICK)
        row.update(events=res.events, lost=res.lost, traced=traced, trace_bytes=res.trace_bytes,
                   capture=res.capture, good=res.good)
        if res.events + res.lost != 2 * polls:
            row["good"] = False
            bench.warn("%s: %d recorded + %d lost events, %d polls in the trace; the program made %d polls"
                       % (label, res.events, res.lost, traced, polls))
        if res.events:
            bench.add_size("rate", res.trace_bytes, res.events)
        os.unlink(out)
    s.rows.append(row)


def rate(bench):
    seconds = 3 if bench.quick else 10
    reps = 1 if bench.quick else bench.reps
    tick = AsyncTrace(bench, "inproc", [TICK], label="asynctrace inproc -m Tick")
    series = [Series(2, 1, Untraced()), Series(2, seconds, tick)]
    if not bench.quick:
        # one producer thread leaves the second core to the recorder
        series.append(Series(1, seconds, tick))
    for _ in range(reps):
        for s in series:
            one_run(bench, s)
    if can_throttle(bench.target("rust/release/rate")):
        for asked in STEPS:
            s = Series(2, seconds, tick, asked)
            one_run(bench, s)
            series.append(s)
            row = s.rows[0]
            if row["lost"] or 2 * row["polls"] < 0.95 * asked * seconds:
                break
    else:
        bench.note("rate has no %s option: no throttled runs, so no lossless rate was measured" % THROTTLE)
    return series


def m(rows, key):
    return median([r[key] for r in rows])


def rate_section(series):
    s = Section("4. Event rate: rate (release), a 13-byte Tick poll in a loop",
                ("tracer", "threads x s", "program's polls/s", "events produced/s", "recorded events/s",
                 "lost events/s", "lost share", "MB/s written", "recorder CPU (of one core)", "bytes/event",
                 "accounting"),
                "Produced = 2 x the polls the program counted; recorded = events in the trace; "
                "recorded + lost must equal produced exactly. Medians of the runs.")
    for x in series:
        sec = x.seconds
        polls = m(x.rows, "polls")
        if isinstance(x.tracer, Untraced):
            s.row("untraced", "%d x %d" % (x.threads, sec), fmt(polls / sec))
            continue
        ev, lost = m(x.rows, "events"), m(x.rows, "lost")
        own, wall = m(x.rows, "own_cpu"), m(x.rows, "wall")
        name = x.tracer.name + (", %s %s" % (THROTTLE, fmt(x.asked / 2)) if x.asked else "")
        s.row(name, "%d x %d" % (x.threads, sec), fmt(polls / sec), fmt(2 * polls / sec), fmt(ev / sec),
              fmt(lost / sec), "%.1f%%" % (100 * lost / (ev + lost)) if ev + lost else "",
              "%.0f" % (m(x.rows, "trace_bytes") / sec / 1e6),
              "%.2f s = %.0f%%" % (own, 100 * own / wall) if own is not None else "n/a",
              "%.1f" % (m(x.rows, "trace_bytes") / ev) if ev else "",
              "exact" if all(r["good"] for r in x.rows) else "MISMATCH")
    return s


def drained(series, threads=2):
    """Unthrottled: recorded events/s, lost events and seconds of the run."""
    for x in series:
        if not isinstance(x.tracer, Untraced) and x.threads == threads and not x.asked:
            return m(x.rows, "events") / x.seconds, m(x.rows, "lost"), x.seconds
    return None, None, None


def lossless(series):
    """The highest throttled rate recorded with 0 lost: (events/s, seconds),
    or None when no throttled run was made (the target cannot be throttled)."""
    runs = [x for x in series if x.asked]
    if not runs:
        return None
    good = [x for x in runs if not x.rows[0]["lost"] and x.rows[0]["good"]]
    best = max(good, key=lambda x: x.rows[0]["events"], default=None)
    return (best.rows[0]["events"] / best.seconds, best.seconds) if best else (0, runs[0].seconds)
