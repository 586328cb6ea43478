"""An HTTP server under load: http_load (release), a hyper 0.14 server and
client in one process on tokio's multi-thread runtime. Wall time of the
whole run, untraced and under each tracer with asynctrace's default probes
(uftrace: -P on exactly the functions asynctrace probes), and the added
cost per request from a big minus a small run. The ground truth of a
release build knows only the handler's polls (one per request)."""

import os

from harness import ground_truth, median, must_succeed, say, spread, timed
from tables import Section, fmt, pct
from tracers import AsyncTrace, Untraced, Uftrace, describe, known_functions, symbols

FULL = 10000
SMALL = 1000
LIMIT_S = 20   # a tracer slower than this at FULL requests runs fewer, and is scaled
FAST_RUN_S = 1.0
FAST_REPS = 3


def args(n):
    return ["--requests", str(n), "--connections", "4"]


class Series:
    def __init__(self, key, tracer):
        self.key, self.tracer = key, tracer
        self.big, self.runs = FULL, {"big": [], "small": []}
        self.good, self.events, self.trace_bytes, self.capture, self.patched = True, 0, 0, None, None


def one_run(bench, binary, s, n, expect_for, size):
    out = bench.path("http.out")
    cmd = s.tracer.command([binary] + args(n), out)
    r = timed(cmd)
    must_succeed(cmd, r)
    gt = ground_truth(binary, args(n))
    label = "%s http_load %s" % (s.tracer.name, " ".join(args(n)))
    if isinstance(s.tracer, Untraced):
        res = s.tracer.result(bench, label, r, out, gt)
    else:
        res = s.tracer.result(bench, label, r, out, gt, expect=expect_for(gt))
    s.good = s.good and res.good
    if not isinstance(s.tracer, Untraced) and size == "big":
        s.events, s.trace_bytes = res.events, res.trace_bytes
        bench.add_size("http_load" if isinstance(s.tracer, AsyncTrace) else "peer: uftrace", res.trace_bytes, res.events)
    if isinstance(s.tracer, AsyncTrace):
        s.capture, s.patched = res.capture, res.patched
        os.unlink(out)
    if size in s.runs:
        s.runs[size].append(r)
    return r


def http(bench, have_uftrace):
    binary = bench.target("http/release/http_load")
    every = symbols(bench, binary, every_role=True)
    expect_for = lambda gt: known_functions(gt, every)
    full = 2000 if bench.quick else FULL
    series = [Series("untraced", Untraced()), Series("inproc", AsyncTrace(bench, "inproc", label="asynctrace inproc")),
              Series("bpf", AsyncTrace(bench, "bpf", label="asynctrace bpf"))]
    if have_uftrace:
        series.append(Series("uftrace", Uftrace(bench, binary, every)))
    for s in series:
        # one small run first: a warm-up, and the size of the big one
        r = one_run(bench, binary, s, SMALL, expect_for, "cal")
        s.big = full if r.wall * full / SMALL < LIMIT_S else max(SMALL * 2, int(LIMIT_S / r.wall * SMALL / 2))
        if s.big != full:
            say("  %s: %d requests (scaled to %d)" % (s.tracer.name, s.big, full))
        # fast runs are repeated more: a tenth of a second is within the VM's noise
        s.reps = bench.reps * (FAST_REPS if r.wall * s.big / SMALL < FAST_RUN_S else 1)
    for i in range(max(s.reps for s in series)):
        for s in series:
            if i < s.reps:
                one_run(bench, binary, s, s.big, expect_for, "big")
                one_run(bench, binary, s, SMALL, expect_for, "small")
    for s in series:
        if isinstance(s.tracer, Uftrace):
            done, asked, missing = s.tracer.coverage([binary] + args(100))
            s.patched = {"patched": done, "functions": asked, "missing": missing}
    return series, full, len(every)


def wall_at_full(s, full):
    """Median wall of the big runs, scaled to `full` requests when the tracer
    ran fewer (its small run's fixed part kept as it is)."""
    big, small = median([r.wall for r in s.runs["big"]]), median([r.wall for r in s.runs["small"]])
    if s.big == full:
        return big
    per = (big - small) / (s.big - SMALL)
    return small + per * (full - SMALL)


def http_section(series, full, nfns):
    s = Section("3. HTTP server: http_load (release) `--requests %d --connections 4`" % full,
                ("tracer", "requests run", "runs", "wall s (spread)", "ratio to untraced", "added µs/request",
                 "fixed cost s", "events", "bytes/event", "checks"),
                "Added µs/request: (big − small %d-request run) − the same untraced, per request; fixed cost: "
                "small run minus untraced small run (start-up, symbols, attach, detach)." % SMALL)
    base = series[0]
    ub, us = median([r.wall for r in base.runs["big"]]), median([r.wall for r in base.runs["small"]])
    for x in series:
        w = wall_at_full(x, full)
        big, small = median([r.wall for r in x.runs["big"]]), median([r.wall for r in x.runs["small"]])
        per = ((big - small) - (ub - us) * (x.big - SMALL) / (full - SMALL)) / (x.big - SMALL) * 1e6
        s.row(x.tracer.name, "%d%s" % (x.big, "" if x.big == full else " (scaled)"), x.reps,
              "%.3f (%s)" % (w, pct(spread([r.wall for r in x.runs["big"]]))), "%.2fx" % (w / ub),
              fmt(per) if x is not base else "", "%.3f" % (small - us) if x is not base else "",
              "{:,}".format(x.events) if x.events else "", "%.1f" % (x.trace_bytes / x.events) if x.events else "",
              "ok" if x.good else "CHECK FAILED")
    for x in series:
        if x.patched:
            s.note("%s: %s" % (x.tracer.name, describe(x.patched, x.capture)))
    s.note("asynctrace probes %d functions here (poll functions, runtime hooks, drop glue); the ground truth "
           "checked is the handler's polls (one per request)" % nfns)
    return s


def http_ratio(series, full):
    return wall_at_full(series[1], full) / median([r.wall for r in series[0].runs["big"]])
