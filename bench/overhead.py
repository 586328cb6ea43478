"""Added cost per traced call, differential so that fixed costs (tracer
start-up, symbol analysis, bpftrace's compile, probe detach) cancel out:

    ns/call = ((T_traced(big) - T_traced(small)) - (T_plain(big) - T_plain(small)))
              / (traced calls(big) - traced calls(small))

T is wall time, or CPU time (user + system of the tracer, its target and
everything they waited for). A traced call ("poll") is one entry and one
exit. Each tracer's big shape is measured, not assumed: a calibration run
estimates its cost per call, and the big run is sized to add about 2 s
(0.5 s with --quick), up to the largest shape (1 M polls for tokio_ct). So the
fast tracers run the full 1 M-poll shape and the uprobe-based ones a
smaller one, and the shapes follow the tracer when it gets faster.

Also here: attach cost (time to the target's first output) and analysis
speed (report and export of the largest trace recorded)."""

import os
import shutil

from harness import exact_regex, ground_truth, median, must_succeed, say, spread, timed
from tables import Section, fmt, ratio
from tracers import AsyncTrace, Bpftrace, Untraced, Uftrace, describe, patch_summary, symbols

TOKIO = "tokio_ct"                 # debug build: poll functions start with `sub $N,%rsp`
TOKIO_UNIT = 10000                 # polls per task of the shapes below (4 functions x 2500)
TOKIO_MAX_TASKS = 100              # --tasks 100 --yields 2499: exactly 1,000,000 polls
TOKIO_SMALL = ["--tasks", "1", "--yields", "1"]
C_UNIT = 9                         # probe_mech: traced calls per --calls
C_MAX_CALLS = 100000               # 900,000 calls of 6 functions
C_SMALL = ["--calls", "1"]
C_FUNCTIONS = ["multi_ret", "tail_caller", "tail_target", "plain", "recurse", "many_args"]
FAST_RUN_S = 1.0                   # a big run shorter than this is repeated FAST_REPS times as often
FAST_REPS = 5
CALIBRATION_SIGNAL_S = 0.3         # a calibration run must add this much over the small run to be believed
ATTACH_BIN = "demo"                # the debug target with the most poll functions
ATTACH_ARGS = ["--ground-truth"]   # prints one line and exits


def tokio_shape(tasks):
    return ["--tasks", str(tasks), "--yields", "2499"]


def c_shape(calls):
    return ["--calls", str(calls)]


class Config:
    """One tracer in a differential measurement, with its runs."""

    def __init__(self, key, tracer):
        self.key, self.tracer = key, tracer
        self.big = None
        self.runs = {"big": [], "small": []}
        self.spans = {"big": [], "small": []}
        self.calls = {}
        self.good = True
        self.lost = 0
        self.events = 0
        self.capture = None
        self.patched = None
        self.reps = 0


def run_once(bench, group, cfg, binary, args, gt, size):
    """One run of cfg's tracer on args, checked; returns (Run, Result)."""
    out = bench.path("%s-%s-%s.out" % (group, cfg.key, size))
    cmd = cfg.tracer.command([binary] + args, out)
    r = timed(cmd)
    must_succeed(cmd, r)
    label = "%s %s %s" % (cfg.tracer.name, os.path.basename(binary), " ".join(args))
    res = cfg.tracer.result(bench, label, r, out, gt)
    if isinstance(cfg.tracer, AsyncTrace):
        if size == "big":
            bench.add_size(group, res.trace_bytes, res.events)
            if res.events > bench.largest[0]:
                keep = bench.path("largest.trace")
                shutil.copyfile(out, keep)
                bench.largest = (res.events, keep)
        cfg.capture, cfg.patched = res.capture, res.patched or cfg.patched
        os.unlink(out)
    elif isinstance(cfg.tracer, Uftrace) and size == "big":
        bench.add_size("peer: uftrace", res.trace_bytes, res.events)
    return r, res


def calibrate(bench, group, cfg, binary, shape, unit, max_units, small_args, gts, unit_calls):
    """(wall seconds per traced call, wall of the small run): runs of 1, 10,
    100... units against a small run until the difference stands out of the
    start-up noise; (None, wall of the largest shape) when even that does
    not (a fast tracer)."""
    b, _ = run_once(bench, group, cfg, binary, small_args, gts(small_args), "cal")
    n = unit
    while True:
        a, _ = run_once(bench, group, cfg, binary, shape(n), gts(shape(n)), "cal")
        if a.wall - b.wall > CALIBRATION_SIGNAL_S:
            return (a.wall - b.wall) / (unit_calls * n / unit), b.wall
        if n >= max_units:
            return None, a.wall
        n = min(max_units, n * 10)


def two_digits(x):
    """x rounded down to 2 significant digits (a shape that reads well)."""
    x = int(x)
    scale = 10 ** max(0, len(str(x)) - 2)
    return x // scale * scale


def differential(bench, group, binary, configs, small, unit, max_units, shape, unit_calls):
    """Measure every config's added ns per call on binary. shape(n) gives the
    arguments of n units (unit_calls traced calls each)."""
    cache = {}

    def gts(args):
        k = tuple(args)
        if k not in cache:
            cache[k] = ground_truth(binary, list(args))
        return cache[k]

    budget = bench.target_seconds
    for cfg in configs:
        per_call, wall = calibrate(bench, group, cfg, binary, shape, unit, max_units, small, gts, unit_calls)
        n = max_units
        if per_call is not None:
            n = max(unit, min(max_units, two_digits(budget / (per_call * unit_calls) * unit)))
            wall += per_call * unit_calls * n / unit
        cfg.big = shape(n)
        # A fast tracer's added time is a tenth of a second, of the order of
        # the VM's noise: more runs of it, as cheap as one run of the others.
        cfg.reps = bench.reps * (FAST_REPS if wall < FAST_RUN_S else 1)
        say("  %-34s ~%s ns/call: big run %s, %d runs" % (cfg.tracer.name, fmt(per_call and per_call * 1e9),
                                                          " ".join(cfg.big), cfg.reps))
    plain = {}
    for b in {tuple(c.big) for c in configs}:
        plain[b] = Config("untraced", Untraced())
        plain[b].big = list(b)
        plain[b].reps = max(c.reps for c in configs if tuple(c.big) == b)
    for i in range(max(c.reps for c in configs)):
        for cfg in list(plain.values()) + configs:
            if i >= cfg.reps:
                continue
            for size, args in (("big", cfg.big), ("small", small)):
                r, res = run_once(bench, group, cfg, binary, args, gts(args), size)
                cfg.runs[size].append(r)
                cfg.spans[size].append(res.span)
                cfg.calls[size] = res.calls
                cfg.good = cfg.good and res.good
                cfg.lost = max(cfg.lost, res.lost)
                if size == "big":
                    cfg.events = res.events
    for cfg in configs:
        base = plain[tuple(cfg.big)]
        d = cfg.calls["big"] - cfg.calls["small"]
        cfg.untraced_wall = median([r.wall for r in base.runs["big"]])
        for what in ("wall", "cpu"):
            m = lambda c, s: median([getattr(r, what) for r in c.runs[s]])
            added = (m(cfg, "big") - m(cfg, "small")) - (m(base, "big") - m(base, "small"))
            setattr(cfg, "ns_" + what, added / d * 1e9 if d > 0 else None)
            # the same estimate from each repetition alone: how much it moves
            per_rep = []
            for i in range(min(len(cfg.runs["big"]), len(base.runs["big"]))) if d > 0 else ():
                g = lambda c, size: getattr(c.runs[size][i], what)
                per_rep.append(((g(cfg, "big") - g(cfg, "small")) - (g(base, "big") - g(base, "small"))) / d * 1e9)
            setattr(cfg, "spread_" + what, spread(per_rep))
        cfg.wall = median([r.wall for r in cfg.runs["big"]])
        cfg.ns_span = None
        if d > 0 and None not in cfg.spans["big"] + cfg.spans["small"]:
            # the program's own run under the tracer, against its untraced wall time
            added = ((median(cfg.spans["big"]) - median(cfg.spans["small"]))
                     - (median([r.wall for r in base.runs["big"]]) - median([r.wall for r in base.runs["small"]])))
            cfg.ns_span = added / d * 1e9
    return plain


# ---- 1: tokio_ct, 1 M polls ----------------------------------------------------
def tokio_polls(bench, have_uftrace, have_bpftrace):
    binary = bench.target("rust/debug", TOKIO)
    names = list(ground_truth(binary, TOKIO_SMALL)["expect"])
    syms = symbols(bench, binary, exact_regex(names))
    configs = [Config("inproc", AsyncTrace(bench, "inproc", names, label="asynctrace inproc -m 4 fns")),
               Config("inproc-all", AsyncTrace(bench, "inproc", label="asynctrace inproc, default probes")),
               Config("bpf", AsyncTrace(bench, "bpf", names, label="asynctrace bpf -m 4 fns"))]
    if have_uftrace:
        configs.append(Config("uftrace", Uftrace(bench, binary, syms)))
    if have_bpftrace:
        configs.append(Config("bpftrace", Bpftrace.for_rust(bench, binary, names)))
        if not bench.quick:
            configs.append(Config("bpftrace-printf", Bpftrace.for_rust(bench, binary, names, printf=True)))
    plain = differential(bench, "tokio_ct", binary, configs, TOKIO_SMALL, 1, TOKIO_MAX_TASKS, tokio_shape, TOKIO_UNIT)
    uftrace_coverage(configs, [binary] + TOKIO_SMALL)
    return {c.key: c for c in configs}, plain


def uftrace_coverage(configs, argv):
    for c in configs:
        if isinstance(c.tracer, Uftrace):
            done, asked, missing = c.tracer.coverage(argv)
            c.patched = {"patched": done, "functions": asked, "missing": missing}


def untraced_rows(s, plain, ncols):
    for shape, c in sorted(plain.items(), key=lambda kv: -median([r.wall for r in kv[1].runs["big"]])):
        cells = ["untraced", " ".join(shape), c.reps] + [""] * (ncols - 3)
        cells[head_index(s, "whole big run")] = "%.3f s" % median([r.wall for r in c.runs["big"]])
        s.row(*cells)


def head_index(s, name):
    return s.head.index(name)


def coverage_notes(s, cf):
    for c in cf.values():
        if c.patched:
            s.note("%s: %s" % (c.tracer.name, describe(c.patched, c.capture)))


def polls_section(bench, cf, plain):
    head = ("tracer", "big run", "runs", "polls traced", "added wall ns/poll (±half range)", "added CPU ns/poll",
            "of which while the program runs", "wall ratio to uftrace", "whole big run", "checks")
    s = Section("1. Added cost per poll: tokio_ct (debug), 4 poll functions", head,
                "Differential: (big − small) − (the same untraced), over the traced polls; small run "
                "`--tasks 1 --yields 1`. Every tracer probes the same 4 functions (asynctrace: `-m` + "
                "`--polls-only`) except the default-probes row (every poll function + runtime hooks).")
    uf = cf.get("uftrace")
    for c in cf.values():
        s.row(c.tracer.name, " ".join(c.big), c.reps, "{:,}".format(c.calls["big"]),
              "%s (%s)" % (fmt(c.ns_wall), pct_spread(c.spread_wall)), fmt(c.ns_cpu), fmt(c.ns_span),
              ratio(c.ns_wall, uf.ns_wall if uf else None), "%.2f s" % c.wall, checks(c))
    untraced_rows(s, plain, len(head))
    s.note("'while the program runs': the same differential over the program's run as the tracer saw it "
           "(asynctrace: first to last event; uftrace: its elapsed_time, exec to exit), so the tracer's own "
           "work after the program exits (draining, writing, fsync) is left out")
    coverage_notes(s, cf)
    return s


def pct_spread(x):
    return "n/a" if x is None else "±%.0f%%" % (50 * x)


def checks(c):
    state = "counts = ground truth" if c.good else "COUNTS WRONG (see notes)"
    if isinstance(c.tracer, AsyncTrace):
        state += "; %s events, %d lost" % ("{:,}".format(c.events), c.lost)
    return state


# ---- probe_mech: C functions -----------------------------------------------------
def c_calls(bench, have_uftrace, have_bpftrace):
    binary = bench.target("c/probe_mech")
    configs = [Config("inproc", AsyncTrace(bench, "inproc", C_FUNCTIONS, c=True, label="asynctrace inproc -f 6 fns")),
               Config("bpf", AsyncTrace(bench, "bpf", C_FUNCTIONS, c=True, label="asynctrace bpf -f 6 fns"))]
    if have_uftrace:
        configs.append(Config("uftrace", Uftrace(bench, binary, C_FUNCTIONS)))
    if have_bpftrace:
        configs.append(Config("bpftrace", Bpftrace(bench, binary, C_FUNCTIONS, [[n] for n in C_FUNCTIONS])))
    plain = differential(bench, "probe_mech", binary, configs, C_SMALL, 1000, C_MAX_CALLS, c_shape, C_UNIT * 1000)
    uftrace_coverage(configs, [binary] + C_SMALL)
    return {c.key: c for c in configs}, plain


def c_section(bench, cf, plain):
    head = ("tracer", "big run", "runs", "calls traced", "added wall ns/call (±half range)", "added CPU ns/call",
            "of which while the program runs", "wall ratio to bpftrace", "whole big run", "checks")
    s = Section("1b. Added cost per call: probe_mech (C, gcc -O2), 6 functions", head)
    bt = cf.get("bpftrace")
    for c in cf.values():
        s.row(c.tracer.name, " ".join(c.big), c.reps, "{:,}".format(c.calls["big"]),
              "%s (%s)" % (fmt(c.ns_wall), pct_spread(c.spread_wall)), fmt(c.ns_cpu), fmt(c.ns_span),
              ratio(c.ns_wall, bt.ns_wall if bt else None), "%.2f s" % c.wall, checks(c))
    untraced_rows(s, plain, len(head))
    coverage_notes(s, cf)
    return s


# ---- attach cost -----------------------------------------------------------------
def attach(bench, have_bpftrace):
    binary = bench.target("rust/debug", ATTACH_BIN)
    syms = symbols(bench, binary)
    addrs = sorted({f["address"] for f in syms}, key=lambda a: int(a, 16) if isinstance(a, str) else a)
    s = Section("Attach: %s (debug), %d poll functions; time until the target's first output" % (ATTACH_BIN, len(addrs)),
                ("tracer", "probes", "first output", "tracer's own figure", "whole run incl. detach"))
    plain = [timed([binary] + ATTACH_ARGS, first_line=True).first for _ in range(bench.reps)]
    s.row("untraced", "", "%.0f ms" % (median(plain) * 1e3), "", "")
    for backend in ("inproc", "bpf"):
        first, wall, own, probes = [], [], [], ""
        trace = bench.path("attach.trace")
        for _ in range(bench.reps):
            cmd = [bench.at, "record", "--backend", backend, "-o", trace, "--", binary] + ATTACH_ARGS
            r = timed(cmd, first_line=True)
            must_succeed(cmd, r)
            first.append(r.first)
            wall.append(r.wall)
            p = patch_summary(r.err)
            if p:
                own.append(p["ms"])
                probes = describe(p)
        os.unlink(trace)
        s.row("asynctrace " + backend + " (default probes)", probes, "%.0f ms" % (median(first) * 1e3),
              fmt(median(own), 3, " ms"), "%.0f ms" % (median(wall) * 1e3))
    if have_bpftrace and not bench.quick:
        # bpftrace 0.17 refuses probes inside a function, so it gets an entry
        # uprobe + uretprobe per poll function. One run: it detaches its
        # probes one by one, ~0.1 s each.
        hexes = [a if isinstance(a, str) else hex(a) for a in addrs]
        bt = Bpftrace(bench, binary, [str(i) for i in range(len(hexes))], [[a] for a in hexes])
        r = timed(bt.command([binary] + ATTACH_ARGS, None), first_line=True)
        if r.rc != 0 or not r.out.startswith("{"):
            bench.warn("bpftrace attach run failed: %s" % r.err.strip()[-500:])
        else:
            s.row("bpftrace (1 run)", "%d (entry + uretprobe)" % (2 * len(hexes)), "%.0f ms" % (r.first * 1e3),
                  "", "%.0f ms" % (r.wall * 1e3))
    s.note("the tracer's own figure: record's 'patched in process ... in N ms' (inproc, done by the agent "
           "in the target's constructor) or 'attached in N ms' (the uprobe_multi link); the rest of the time to "
           "first output is symbol, DWARF and disassembly work")
    return s


# ---- analysis speed ----------------------------------------------------------------
def analysis(bench):
    events, trace = bench.largest
    if not trace:
        return None
    out = bench.path("largest.json")
    rt, et = [], []
    for _ in range(bench.reps):
        for cmd, acc in (([bench.at, "report", trace], rt),
                         ([bench.at, "export", "--format", "chrome", "-o", out, trace], et)):
            r = timed(cmd)
            must_succeed(cmd, r)
            acc.append(r.wall)
    size, jsize = os.path.getsize(trace), os.path.getsize(out)
    os.unlink(out)
    s = Section("Analysis of the largest trace recorded above: %s events, %.1f MB" % ("{:,}".format(events), size / 1e6),
                ("command", "time", "events/s", "output bytes/event"))
    s.row("report (task model included)", "%.0f ms" % (median(rt) * 1e3), fmt(events / median(rt)), "")
    s.row("export --format chrome", "%.0f ms" % (median(et) * 1e3), fmt(events / median(et)),
          "%.0f (trace file: %.0f)" % (jsize / events, size / events))
    return s
