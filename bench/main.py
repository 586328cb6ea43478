#!/usr/bin/env python3
"""asynctrace benchmarks: every figure is a ratio against a peer measured in
the same run (the untraced program, uftrace, bpftrace, asynctrace's other
backend), with every tracer's counts checked against the target's ground
truth before its timings are used. Prints aligned tables, then the same as
a markdown block for docs/performance.md (`--doc FILE` rewrites that block
in place). Root, Python standard library only. See docs/performance.md."""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True   # no bench/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fidelity      # noqa: E402
import http_server   # noqa: E402
import overhead      # noqa: E402
import profiling     # noqa: E402
import rate          # noqa: E402
import scale         # noqa: E402
from harness import Bench, die, say  # noqa: E402
from tables import Bars, Section, render_markdown, render_text, update_doc  # noqa: E402
from tracers import AsyncTrace, unpatched_reasons  # noqa: E402

SECTIONS = ("polls", "c", "fidelity", "http", "rate", "attach", "analysis", "scale", "profile", "coverage")


def version(cmd):
    if not shutil.which(cmd[0]):
        return None
    r = subprocess.run(cmd, capture_output=True, text=True)
    return (r.stdout or r.stderr).strip().splitlines()[0] if r.returncode == 0 else None


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    u = platform.uname()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return "%s, %d CPUs, %.0f GiB, Linux %s %s" % (cpu, os.cpu_count(), mem, u.release, u.machine)


def commit():
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run(["git", "-C", here, "describe", "--always", "--dirty"], capture_output=True, text=True)
    return r.stdout.strip() or "?"


def coverage(bench):
    """What the in-process agent patched in each target, and why not the rest."""
    s = Section("Coverage: what `record --backend inproc` leaves to uprobes, and why",
                ("target (probes)", "not patched in process: role: reason (functions)"))
    for label, binary, argv, fns in (
            ("tokio_ct debug (default)", "rust/debug/tokio_ct", ["--tasks", "1", "--yields", "1"], None),
            ("fidelity debug (default)", "rust/debug/fidelity", ["--yields", "1"], None),
            ("fidelity release (default)", "rust/release/fidelity", ["--yields", "1"], None),
            ("http_load release (default)", "http/release/http_load", ["--requests", "10"], None),
            ("probe_mech (-f 6 C functions)", "c/probe_mech", ["--calls", "1"], overhead.C_FUNCTIONS)):
        tracer = AsyncTrace(bench, "inproc", fns, c=bool(fns))
        reasons = unpatched_reasons(bench, tracer, [bench.target(binary)] + argv)
        s.row(label, "; ".join("%s (%d)" % kv for kv in sorted(reasons.items())) or "none")
    return s


def size_section(bench):
    s = Section("5. Bytes per event on disk (trace file size / events)", ("recordings", "traces", "bytes/event"))
    for group in sorted(bench.sizes):
        b, n = bench.bytes_per_event(group)
        s.row(group, n, "%.1f" % b)
    return s


def asynctrace_bytes_per_event(bench):
    pairs = [p for g, ps in bench.sizes.items() if not g.startswith("peer") for p in ps]
    events = sum(e for _, e in pairs)
    return sum(b for b, _ in pairs) / events if events else None


def bars(bench, res):
    b = Bars()
    cf = res.get("polls")
    if cf:
        at, uf = cf[0].get("inproc"), cf[0].get("uftrace")
        if at and uf and at.ns_wall and uf.ns_wall:
            r = at.ns_wall / uf.ns_wall
            b.add("tokio_ct, 1 M polls: inproc added ns/poll <= 0.2x uftrace -P (same 4 functions), every record "
                  "on disk, 0 lost", "%.1f vs %.1f ns = %.2fx; %s" % (at.ns_wall, uf.ns_wall, r,
                                                                      overhead.checks(at)),
                  r <= 0.2 and at.good and at.lost == 0)
        else:
            b.add("tokio_ct: inproc <= 0.2x uftrace", "uftrace missing", None)
    fr = res.get("fidelity")
    if fr:
        d, r_ = fidelity.fidelity_ratio(fr, "debug"), fidelity.fidelity_ratio(fr, "release")
        b.add("fidelity: inproc's reported mean of parent within 5% of the untraced own mean",
              "debug %.3fx, release %.3fx" % (d, r_), abs(d - 1) <= 0.05 and abs(r_ - 1) <= 0.05)
    hs = res.get("http")
    if hs:
        r = http_server.http_ratio(hs[0], hs[1])
        b.add("http_load %d requests: inproc wall <= 1.2x untraced" % hs[1], "%.2fx" % r, r <= 1.2)
    rs = res.get("rate")
    if rs:
        ev_s, lost, sec = rate.drained(rs)
        unthrottled = "unthrottled, record drained %.1f M events/s for %d s and lost %s" % (
            ev_s / 1e6, sec, "{:,}".format(int(lost)))
        best = rate.lossless(rs)
        if best is None:
            b.add(">= 10 M events/s for 10 s with 0 lost",
                  "not measurable yet (rate has no %s); %s" % (rate.THROTTLE, unthrottled), None)
        else:
            b.add(">= 10 M events/s for 10 s with 0 lost", "highest lossless: %.1f M events/s for %d s; %s"
                  % (best[0] / 1e6, best[1], unthrottled), best[0] >= 10e6 * 0.95 and best[1] >= 10)
    if res.get("scale"):
        scale.bars(b, res["scale"])
    if res.get("profile"):
        profiling.bars(b, res["profile"])
    bpe = asynctrace_bytes_per_event(bench)
    if bpe:
        b.add("<= 16 bytes per event on disk", "%.1f (all asynctrace recordings above)" % bpe, bpe <= 16)
    return b


def sections_of(bench, res):
    """The tables, in the order of the issue's list."""
    sections = []
    if res.get("polls"):
        sections.append(overhead.polls_section(bench, *res["polls"]))
    if res.get("c"):
        sections.append(overhead.c_section(bench, *res["c"]))
    if res.get("fidelity"):
        sections.append(fidelity.fidelity_section(res["fidelity"]))
    if res.get("http"):
        sections.append(http_server.http_section(*res["http"]))
    if res.get("rate"):
        sections.append(rate.rate_section(res["rate"]))
    if bench.sizes:
        sections.append(size_section(bench))
    for key in ("attach", "analysis", "coverage"):
        if res.get(key):
            sections.append(res[key])
        if key == "analysis" and res.get("scale"):
            sections += scale.sections(res["scale"])
        if key == "analysis" and res.get("profile"):
            sections.append(profiling.section(res["profile"]))
    return sections


def parse_args():
    ap = argparse.ArgumentParser(description="asynctrace benchmarks (see docs/performance.md)")
    ap.add_argument("--build", default="build", help="build directory (default: build)")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_REPS", "3")),
                    help="runs of each measurement, median reported (default 3, or $BENCH_REPS)")
    ap.add_argument("--quick", action="store_true",
                    help="about 2 minutes: 2 runs each, a shorter rate run, no C or bpftrace-printf rows")
    ap.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    ap.add_argument("--doc", default=os.environ.get("BENCH_DOC"),
                    help="rewrite the generated block of this markdown file, e.g. docs/performance.md "
                         "(default: $BENCH_DOC; none)")
    ap.add_argument("--json", help="also write the raw figures as JSON to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.quick and "BENCH_REPS" not in os.environ and "--reps" not in sys.argv:
        args.reps = 2
    args.only = set(args.only.split(",")) if args.only else set(SECTIONS)
    if args.only - set(SECTIONS):
        ap.error("unknown section(s): " + ",".join(sorted(args.only - set(SECTIONS))))
    return args


def main():
    args = parse_args()
    if os.geteuid() != 0:
        die("must run as root (BPF uprobes)")
    tmp = tempfile.mkdtemp(prefix="asynctrace-bench.")
    try:
        run(args, tmp)
    finally:
        if args.keep:
            say("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args, tmp):
    bench = Bench(args, tmp)
    bench.target_seconds = 0.5 if args.quick else 2.0
    if not os.access(bench.at, os.X_OK):
        die("%s not found: run `make all targets` first" % bench.at)
    uft, bt = version(["uftrace", "--version"]), version(["bpftrace", "--version"])
    for name, v in (("uftrace", uft), ("bpftrace", bt)):
        if not v:
            bench.warn("%s NOT FOUND: its rows are missing (scripts/install-deps.sh installs it)" % name)
    t0 = time.monotonic()
    res = {}

    def step(key, what, fn):
        if key in args.only:
            t = time.monotonic()
            say("%s (%.0f s so far)" % (what, time.monotonic() - t0))
            res[key] = fn()
            say("  took %.0f s" % (time.monotonic() - t))

    step("polls", "1. added ns per poll: tokio_ct debug, 1 M polls", lambda: overhead.tokio_polls(bench, uft, bt))
    step("c", "1b. added ns per call: probe_mech", lambda: None if args.quick else overhead.c_calls(bench, uft, bt))
    step("fidelity", "2. fidelity", lambda: fidelity.fidelity(bench, uft))
    step("http", "3. HTTP server", lambda: http_server.http(bench, uft))
    step("rate", "4. event rate", lambda: rate.rate(bench))
    step("attach", "attach cost", lambda: overhead.attach(bench, bt))
    step("analysis", "analysis speed", lambda: overhead.analysis(bench))
    step("scale", "analysis at scale: tokio_ct 19 M events, uftrace dump vs report and exports",
         lambda: scale.scale(bench, uft))
    step("profile", "profiling cost: cpu_work, untraced vs profile at 99 and 999 Hz", lambda: profiling.profile(bench))
    step("coverage", "coverage", lambda: coverage(bench))

    sections = sections_of(bench, res)
    took = time.monotonic() - t0
    cmd = "make bench" if not sys.argv[1:] or sys.argv[1:] == ["--build", "build"] else \
        "bench/run.sh " + " ".join(sys.argv[1:])
    header = "\n".join([
        "asynctrace benchmarks, %s, commit %s" % (datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
                                                 commit()),
        "machine: %s" % machine(),
        "peers: %s; %s" % (uft or "uftrace missing", bt or "bpftrace missing"),
        "command: `%s`; median of %d run(s)%s; took %.0f s" % (cmd, args.reps, ", --quick" if args.quick else "",
                                                              took)])
    b = bars(bench, res)
    print(render_text(header, sections, b, bench.all_notes()))
    md = render_markdown(header.replace("\n", "  \n"), sections, b, bench.all_notes())
    print()
    print(md)
    if args.doc:
        update_doc(args.doc, md)
        say("rewrote the generated block of " + args.doc)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"sections": [{"title": s.title, "head": s.head, "rows": s.rows, "notes": s.notes}
                                    for s in sections], "bars": b.rows, "notes": bench.all_notes(),
                       "header": header}, f, indent=1)


if __name__ == "__main__":
    main()
