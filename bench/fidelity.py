"""Fidelity: does tracing change the durations it reports? The fidelity
target times each poll of its task `parent` itself (`--timings FILE`: the
program's own Instant around the direct call of parent's poll function,
which includes whatever a tracer adds to the parent's entry and exit and to
the ~47 nested polls below it). Its untraced mean is the truth. Compared with
it: the mean the tracer reports for that function (asynctrace), and the
program's own mean while traced (every tracer). Every tracer probes what
asynctrace probes by default (every poll function, runtime hooks, drop
glue); runs of all tracers are interleaved so that a noisy stretch of the
VM hits all of them alike."""

import json
import os

from harness import ground_truth, median, must_succeed, spread, timed
from tables import Section, fmt, pct
from tracers import AsyncTrace, Untraced, Uftrace, describe, known_functions, symbols

PARENT = "fidelity::parent::{{closure}}"
ARGS = []                        # the target's defaults: parent polled 21 times, ~34 us each
LONG = ["--yields", "100"]       # 101 polls: more records per run, so more buffer hand-overs


class Series:
    def __init__(self, key, tracer, runs, args=ARGS):
        self.key, self.tracer, self.wanted, self.args = key, tracer, runs, args
        self.own, self.own_min, self.reported, self.tail = [], [], [], []
        self.good, self.capture, self.patched = True, None, None


def reported(rep):
    """The tracer's mean poll time of PARENT (its copies summed), and its
    p99 / p50 (how far its slowest polls are from the typical one)."""
    rows = [f for f in rep["functions"] if f["name"] == PARENT]
    polls = sum(f["polls"] for f in rows)
    total = sum(f["total_ns"] for f in rows)
    if not polls:
        return None, None
    return total / polls, rows[0]["p99_ns"] / rows[0]["p50_ns"] if len(rows) == 1 and rows[0]["p50_ns"] else None


def run_series(bench, binary, series, every):
    timings = bench.path("timings.json")
    gts = {tuple(s.args): ground_truth(binary, s.args) for s in series}
    for i in range(max(s.wanted for s in series)):
        for s in series:
            if i >= s.wanted:
                continue
            out = bench.path("fidelity.out")
            gt = gts[tuple(s.args)]
            argv = [binary] + s.args + ["--timings", timings]
            cmd = s.tracer.command(argv, out)
            r = timed(cmd)
            must_succeed(cmd, r)
            label = "%s fidelity %s" % (s.tracer.name, " ".join(s.args))
            if isinstance(s.tracer, Untraced):
                res = s.tracer.result(bench, label, r, out, gt)
            else:
                res = s.tracer.result(bench, label, r, out, gt, expect=known_functions(gt, every))
            s.good = s.good and res.good
            if isinstance(s.tracer, AsyncTrace):
                mean, tail = reported(res.report)
                s.reported.append(mean)
                s.tail.append(tail)
                s.capture, s.patched = res.capture, res.patched
                bench.add_size("fidelity", res.trace_bytes, res.events)
                os.unlink(out)
            with open(timings) as f:
                own = json.load(f)
            s.own.append(own["mean_ns"])
            s.own_min.append(own["min_ns"])


def fidelity(bench, have_uftrace):
    many = 7 if bench.quick else max(15, 5 * bench.reps)
    few = 2 if bench.quick else max(3, bench.reps)   # uprobes: ~0.3-1 s a run
    results = {}
    for build in ("debug", "release"):
        binary = bench.target("rust", build, "fidelity")
        every = symbols(bench, binary, every_role=True)
        inproc = AsyncTrace(bench, "inproc", label="asynctrace inproc")
        series = [Series("untraced", Untraced(), many), Series("inproc", inproc, many),
                  Series("bpf", AsyncTrace(bench, "bpf", label="asynctrace bpf"), few)]
        if build == "release":  # what probing the inlined bodies costs (uprobes, mid-function)
            series.append(Series("inproc-inlined", AsyncTrace(bench, "inproc", label="asynctrace inproc --inlined",
                                                              extra=["--inlined"]), few))
        if have_uftrace:
            series.append(Series("uftrace", Uftrace(bench, binary, every), many))
        series += [Series("untraced-long", Untraced(), many, LONG), Series("inproc-long", inproc, many, LONG)]
        run_series(bench, binary, series, every)
        for s in series:
            if isinstance(s.tracer, Uftrace):
                done, asked, missing = s.tracer.coverage([binary] + s.args)
                s.patched = {"patched": done, "functions": asked, "missing": missing}
        results[build] = (series, len(every))
    return results


def fidelity_section(results):
    s = Section("2. Fidelity: fidelity::parent::{{closure}}, `fidelity` (defaults: `--spin-us 4 --yields 20`)",
                ("build", "args", "tracer", "runs", "program's own mean µs (spread)", "own ratio to untraced",
                 "tracer-reported mean µs (spread)", "reported ratio to untraced own", "reported p99/p50",
                 "own min µs", "checks"),
                "Spread: (max − min) / median of the per-run means. The untraced own mean at the same "
                "arguments is the truth; ratios are medians over medians. Every tracer probes what "
                "asynctrace probes by default (uftrace: the same functions by name).")
    for build, (series, nfns) in results.items():
        for x in series:
            base = median(next(b for b in series if isinstance(b.tracer, Untraced) and b.args == x.args).own)
            rep = median(x.reported)
            s.row(build, " ".join(x.args) or "defaults", x.tracer.name, len(x.own),
                  "%s (%s)" % (fmt(median(x.own) / 1e3), pct(spread(x.own))), near_one(median(x.own) / base),
                  "%s (%s)" % (fmt(rep / 1e3), pct(spread(x.reported))) if rep else "",
                  near_one(rep / base) if rep else "", "%.2f" % median(x.tail) if median(x.tail) else "",
                  fmt(median(x.own_min) / 1e3), "ok" if x.good else "CHECK FAILED")
        for x in series:
            if x.patched and x.args == ARGS:
                s.note("%s, %s: %s" % (build, x.tracer.name, describe(x.patched, x.capture)))
    return s


def near_one(r):
    return "%.3fx" % r if r < 10 else "%.1fx" % r


def fidelity_ratio(results, build, key="inproc"):
    """key's reported mean over the untraced own mean (both at ARGS)."""
    series, _ = results[build]
    base = median(series[0].own)
    x = next(x for x in series if x.key == key)
    rep = median(x.reported)
    return rep / base if rep else None
