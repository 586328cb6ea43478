#!/usr/bin/env python3
"""asynctrace benchmarks: tracing overhead, attach cost, trace size, analysis speed.

Every figure is the median of --reps runs and is set against a peer measured in
the same run: the uninstrumented program, and bpftrace probing the same
functions (entry uprobe + uretprobe; a timestamp and a count per hit into maps,
or, as a second variant, one printf per hit streamed to user space). Both
tracers' counts are checked against the targets' --ground-truth before their
timings are used. Python standard library only; run as root.

Per-poll cost is differential, so that fixed costs (tracer start-up, symbol
analysis, bpftrace's compile, probe detach) cancel out:

    us/poll = ((T_traced(big) - T_traced(small)) - (T_plain(big) - T_plain(small)))
              / (traced calls(big) - traced calls(small))

T is wall time, or CPU time (user + system of the tracer, its target and
everything they waited for). A traced call ("poll") is one entry and one exit
probe hit.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

RUST_BIN = "tokio_ct"                               # debug build: poll functions start with `sub $N,%rsp`
RUST_BIG = ["--tasks", "10", "--yields", "2000"]     # 80,040 polls of each of 4 functions
RUST_SMALL = ["--tasks", "1", "--yields", "1"]
C_BIG = ["--calls", "20000"]                        # 160,000 calls of 5 functions
C_SMALL = ["--calls", "1"]
ATTACH_BIN = "demo"                                 # the debug target with the most poll functions
ATTACH_ARGS = ["--ground-truth"]                    # prints one line and exits


def die(msg):
    print("bench: " + msg, file=sys.stderr)
    sys.exit(1)


class Run:
    pass


def timed(cmd, first_line=False):
    """Run cmd with its output captured. Returns a Run: wall and cpu seconds,
    first (seconds to its first stdout line, with first_line), rc, out, err."""
    r = Run()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    head, r.first = "", None
    if first_line:
        head = p.stdout.readline()
        r.first = time.monotonic() - t0
    out, r.err = p.communicate()
    r.wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r.cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    r.rc, r.out = p.returncode, head + out
    return r


def median(xs):
    return statistics.median(xs) if xs else None


def ere_escape(s):
    """A POSIX ERE matching s literally (for asynctrace --match/--function)."""
    out = []
    for c in s:
        if c in ".{}()*+?|$":
            out.append("[" + c + "]")
        elif c in "[]\\^":
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def ground_truth(binary, args):
    r = subprocess.run([binary] + args + ["--ground-truth"], capture_output=True, text=True)
    if r.returncode != 0:
        die("%s --ground-truth failed: %s" % (binary, r.stderr.strip()))
    gt = json.loads(r.stdout)
    # expected traced calls per function: Rust polls, C entries
    gt["expect"] = {n: f.get("polls", f.get("entries")) for n, f in gt["functions"].items()}
    return gt


def hexaddr(a):
    return a if isinstance(a, str) else hex(a)


class Bench:
    def __init__(self, args):
        self.build = os.path.abspath(args.build)
        self.reps = args.reps
        self.at = os.path.join(self.build, "asynctrace")
        if not os.access(self.at, os.X_OK):
            die("%s not found: run `make all targets` first" % self.at)
        self.bpftrace = shutil.which("bpftrace")
        self.tmp = tempfile.mkdtemp(prefix="asynctrace-bench.")
        self.nscripts = 0
        self.notes = []
        self.results = {}
        self.sizes = []            # (trace bytes, events) of every big recording
        self.largest = (0, None)   # (events, path): input of the analysis benchmark

    def warn(self, msg):
        print("bench: WARNING: " + msg, file=sys.stderr)
        self.notes.append("WARNING: " + msg)

    def symbols(self, binary, regex=None):
        cmd = [self.at, "symbols", "--format", "json", binary]
        if regex:
            cmd[4:4] = ["--match", regex]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            die("asynctrace symbols failed: " + r.stderr.strip())
        return json.loads(r.stdout)["functions"]

    # ---- bpftrace -------------------------------------------------------------
    def bt_script(self, binary, groups, printf=False):
        """One uprobe + uretprobe block per group (a function: its symbol name,
        or the virtual addresses of its copies); counts keyed by group index."""
        lines = []
        for i, targets in enumerate(groups):
            ent = ", ".join("uprobe:%s:%s" % (binary, t) for t in targets)
            ret = ", ".join("uretprobe:%s:%s" % (binary, t) for t in targets)
            pe = ' printf("e %%d %%d %%llu\\n", tid, %d, nsecs);' % i if printf else ""
            px = ' printf("x %%d %%d %%llu\\n", tid, %d, nsecs);' % i if printf else ""
            # uprobe:BIN:... fires in every process running BIN (tests may run
            # the same targets concurrently): keep to the child, as asynctrace does.
            lines.append("%s /pid == cpid/ { @entry[%d] = count(); @ts[tid, %d] = nsecs;%s }"
                         % (ent, i, i, pe))
            lines.append("%s /pid == cpid/ { @exit[%d] = count(); @ns[%d] = sum(nsecs - @ts[tid, %d]);%s }"
                         % (ret, i, i, i, px))
        lines.append("END { clear(@ts); }")
        self.nscripts += 1
        path = os.path.join(self.tmp, "probes%d.bt" % self.nscripts)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def bt_check(self, label, out, names, gt, printf):
        counts = {"entry": {}, "exit": {}}
        for m in re.finditer(r"^@(entry|exit)\[(\d+)\]: (\d+)$", out, re.M):
            counts[m.group(1)][int(m.group(2))] = int(m.group(3))
        good, calls = True, 0
        for i, n in enumerate(names):
            e, x = counts["entry"].get(i, 0), counts["exit"].get(i, 0)
            if e != gt["expect"][n] or x != gt["expect"][n]:
                good = False
                self.warn("%s: bpftrace counted %s entries=%d exits=%d, ground truth %d"
                          % (label, n, e, x, gt["expect"][n]))
            calls += e
        if printf:
            lines = len(re.findall(r"^[ex] \d+ \d+ \d+$", out, re.M))
            if lines != 2 * calls:
                good = False
                self.warn("%s: bpftrace printed %d of %d events (lost)" % (label, lines, 2 * calls))
        return calls, good

    # ---- asynctrace -------------------------------------------------------------
    def at_check(self, label, trace, gt, must_match):
        r = subprocess.run([self.at, "report", "--json", trace], capture_output=True, text=True)
        if r.returncode != 0:
            die("asynctrace report failed: " + r.stderr.strip())
        rep = json.loads(r.stdout)
        good = True
        if rep["lost"] != 0:
            good = False
            self.warn("%s: %d events lost" % (label, rep["lost"]))
        got = {}
        for f in rep["functions"]:
            got[f["name"]] = got.get(f["name"], 0) + f["polls"]
        bad = {n: (got.get(n, 0), c) for n, c in gt["expect"].items() if got.get(n, 0) != c}
        if bad:
            good = False
            self.warn("%s: counts (got, ground truth) differ: %s" % (label, bad))
        if must_match and sorted(got) != sorted(gt["expect"]):
            self.warn("%s: traced functions %s, expected %s" % (label, sorted(got), sorted(gt["expect"])))
        return rep["polls"], rep["events"], good

    # ---- 1, 2: overhead per traced call ----------------------------------------
    def overhead(self, key, binary, big, small, rust):
        gts = {"big": ground_truth(binary, big), "small": ground_truth(binary, small)}
        names = list(gts["big"]["expect"])
        regex = "^(" + "|".join(ere_escape(n) for n in names) + ")$"
        sel = "--match" if rust else "--function"

        configs = [("untraced", None), ("asynctrace", ["record", "-q", sel, regex])]
        if rust:
            configs.append(("asynctrace-all", ["record", "-q"]))
        if self.bpftrace:
            if rust:
                # bpftrace 0.17 cannot parse the '$' of legacy Rust names in a
                # probe spec, so it gets addresses. uprobe:BIN:0xADDR takes a
                # virtual address (as nm prints it, not a file offset): bpftrace
                # finds the symbol containing it and converts it itself. The
                # counts checked below prove it lands on the right instruction.
                addrs = {n: [] for n in names}
                for f in self.symbols(binary, regex):
                    addrs[f["name"]].append(hexaddr(f["address"]))
                groups = [addrs[n] for n in names]
            else:
                groups = [[n] for n in names]
            configs.append(("bpftrace", self.bt_script(binary, groups)))
            if rust:
                configs.append(("bpftrace-printf", self.bt_script(binary, groups, printf=True)))

        runs = {c: {"big": [], "small": []} for c, _ in configs}
        calls = {c: {} for c, _ in configs}
        ok = {c: True for c, _ in configs}
        for _ in range(self.reps):
            for cname, extra in configs:
                for size, args in (("big", big), ("small", small)):
                    gt = gts[size]
                    trace = os.path.join(self.tmp, "%s-%s-%s.trace" % (key, cname, size))
                    if cname == "untraced":
                        cmd = [binary] + args
                    elif cname.startswith("bpftrace"):
                        cmd = ["bpftrace", "-q", extra, "-c", " ".join([binary] + args)]
                    else:
                        cmd = [self.at] + extra[:2] + ["-o", trace] + extra[2:] + ["--", binary] + args
                    r = timed(cmd)
                    if r.rc != 0:
                        die("`%s` exited %d:\n%s" % (" ".join(cmd), r.rc, r.err.strip()[-2000:]))
                    runs[cname][size].append(r)
                    label = "%s %s %s" % (cname, os.path.basename(binary), " ".join(args))
                    if cname == "untraced":
                        n, good = 0, True
                    elif cname.startswith("bpftrace"):
                        n, good = self.bt_check(label, r.out, names, gt, cname.endswith("printf"))
                    else:
                        n, events, good = self.at_check(label, trace, gt, cname == "asynctrace")
                        if size == "big":
                            self.sizes.append((os.path.getsize(trace), events))
                            if events > self.largest[0]:
                                keep = os.path.join(self.tmp, "largest.trace")
                                shutil.copyfile(trace, keep)
                                self.largest = (events, keep)
                        os.unlink(trace)
                    if not cname.startswith("bpftrace") and r.out != gt["stdout"]:
                        good = False
                        self.warn("%s: target printed %r, ground truth %r" % (label, r.out[:200], gt["stdout"]))
                    calls[cname][size] = n
                    ok[cname] = ok[cname] and good

        def med(c, size, what):
            return median([getattr(r, what) for r in runs[c][size]])

        res = {"untraced_wall_s": med("untraced", "big", "wall"),
               "polls_per_function": gts["big"]["expect"], "configs": {}}
        for cname, _ in configs[1:]:
            d = calls[cname]["big"] - calls[cname]["small"]
            c = {"wall_s": med(cname, "big", "wall"), "small_wall_s": med(cname, "small", "wall"),
                 "calls": calls[cname]["big"], "counts_ok": ok[cname],
                 "slowdown": med(cname, "big", "wall") / med("untraced", "big", "wall")}
            for what in ("wall", "cpu"):
                added = ((med(cname, "big", what) - med(cname, "small", what))
                         - (med("untraced", "big", what) - med("untraced", "small", what)))
                c["us_per_call_" + what] = added / d * 1e6 if d > 0 else None
            res["configs"][cname] = c
        self.results[key] = res
        return res

    # ---- 3: attach cost --------------------------------------------------------
    def attach(self):
        binary = os.path.join(self.build, "targets/rust/debug", ATTACH_BIN)
        addrs = sorted({hexaddr(f["address"]) for f in self.symbols(binary)}, key=lambda a: int(a, 16))
        res = {"binary": ATTACH_BIN, "functions": len(addrs)}
        trace = os.path.join(self.tmp, "attach.trace")
        plain, first, wall, own = [], [], [], []
        for _ in range(self.reps):
            plain.append(timed([binary] + ATTACH_ARGS, first_line=True).first)
            r = timed([self.at, "record", "-o", trace, "--", binary] + ATTACH_ARGS, first_line=True)
            if r.rc != 0:
                die("asynctrace record -- %s failed: %s" % (ATTACH_BIN, r.err.strip()))
            first.append(r.first)
            wall.append(r.wall)
            m = re.search(r"(\d+) probes on (\d+) (?:poll )?functions attached in ([\d.]+) ms", r.err)
            if m:
                res["at_probes"] = int(m.group(1))
                own.append(float(m.group(3)))
        res.update(plain_first_s=median(plain), at_first_s=median(first), at_wall_s=median(wall),
                   at_attach_ms=median(own))
        if self.bpftrace:
            # bpftrace 0.17 refuses probes inside a function ("compiled without
            # (k|u)probe offset support", --unsafe does not help), so it gets an
            # entry uprobe + uretprobe per poll function: about as many probes
            # as asynctrace's entry + every exit site. One run: detaching its
            # probes takes ~0.1 s each.
            script = self.bt_script(binary, [[a] for a in addrs])
            r = timed(["bpftrace", "-q", script, "-c", " ".join([binary] + ATTACH_ARGS)], first_line=True)
            if r.rc != 0 or not r.out.startswith("{"):
                self.warn("bpftrace attach run failed: %s" % r.err.strip()[-500:])
            else:
                res.update(bt_probes=2 * len(addrs), bt_first_s=r.first, bt_wall_s=r.wall)
        self.results["attach"] = res
        return res

    # ---- 5: analysis speed -----------------------------------------------------
    def analysis(self):
        events, trace = self.largest
        if not trace:
            return None
        out = os.path.join(self.tmp, "largest.json")
        rt, et = [], []
        for _ in range(self.reps):
            for cmd, acc in (([self.at, "report", trace], rt),
                             ([self.at, "export", "--format", "chrome", "-o", out, trace], et)):
                r = timed(cmd)
                if r.rc != 0:
                    die("`%s` failed: %s" % (" ".join(cmd), r.err.strip()))
                acc.append(r.wall)
        res = {"events": events, "trace_bytes": os.path.getsize(trace), "json_bytes": os.path.getsize(out),
               "report_s": median(rt), "export_s": median(et)}
        self.results["analysis"] = res
        return res


def fmt(v, digits=3, unit=""):
    return "n/a" if v is None else ("%%.%dg" % digits) % v + unit


def ratio(a, b):
    return "n/a" if a is None or b is None or b == 0 else "%.2fx" % (a / b)


def bpf_record_size():
    """The size of one ring-buffer record, as src/bpf/poll.h states it."""
    header = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "bpf", "poll.h")
    with open(header) as f:
        match = re.search(r"One ring-buffer record: (\d+) bytes", f.read())
    return int(match.group(1)) if match else 0


def main():
    ap = argparse.ArgumentParser(description="asynctrace benchmarks (see docs/performance.md)")
    ap.add_argument("--build", default="build", help="build directory (default: build)")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_REPS", "5")),
                    help="runs of each measurement, median reported (default 5, or $BENCH_REPS)")
    ap.add_argument("--json", help="also write the raw results as JSON to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if os.geteuid() != 0:
        die("must run as root (BPF uprobes)")
    b = Bench(args)
    t0 = time.monotonic()
    rust = os.path.join(b.build, "targets/rust/debug", RUST_BIN)
    cbin = os.path.join(b.build, "targets/c/probe_mech")
    for f in (rust, cbin):
        if not os.access(f, os.X_OK):
            die("%s not found: run `make targets` first" % f)
    if b.bpftrace:
        bt_version = subprocess.run(["bpftrace", "--version"], capture_output=True, text=True).stdout.strip()
    else:
        bt_version = "bpftrace NOT INSTALLED"
        msg = ("bpftrace NOT FOUND: no tracer peer in this run; only asynctrace vs untraced "
               "numbers follow (apt-get install bpftrace for the comparison)")
        print("bench: " + msg, file=sys.stderr)
        b.notes.append(msg)

    say = lambda s: print("bench: " + s, file=sys.stderr, flush=True)
    say("median of %d runs each; about 2-3 minutes" % b.reps)
    say("1/4 overhead: %s (debug) %s" % (RUST_BIN, " ".join(RUST_BIG)))
    r = b.overhead("rust", rust, RUST_BIG, RUST_SMALL, rust=True)
    say("2/4 overhead: probe_mech %s" % " ".join(C_BIG))
    c = b.overhead("c", cbin, C_BIG, C_SMALL, rust=False)
    say("3/4 attach cost: %s (debug)" % ATTACH_BIN)
    a = b.attach()
    say("4/4 trace size, analysis speed")
    an = b.analysis()

    rows = []
    bt = "bpftrace" if b.bpftrace else "bpftrace (missing)"
    add = lambda *row: rows.append(tuple(str(x) for x in row))

    def flag(cfg):
        return "" if cfg is None or cfg["counts_ok"] else " COUNTS WRONG"

    for res, title, fns, is_rust in ((r, "%s debug %s" % (RUST_BIN, " ".join(RUST_BIG)), "4 poll fns", True),
                                     (c, "probe_mech %s" % " ".join(C_BIG), "5 C functions", False)):
        cf = res["configs"]
        at, btm, btp, al = cf["asynctrace"], cf.get("bpftrace"), cf.get("bpftrace-printf"), cf.get("asynctrace-all")
        g = lambda cfg, k: cfg[k] if cfg else None
        add("%s: %s calls of %s, untraced %.3f s" % (title, at["calls"], fns, res["untraced_wall_s"]),
            "", "", "", "")
        add("  added wall us/call", fmt(at["us_per_call_wall"]) + flag(at), bt + " maps",
            fmt(g(btm, "us_per_call_wall")) + flag(btm), ratio(at["us_per_call_wall"], g(btm, "us_per_call_wall")))
        add("  added CPU us/call (tracer + target)", fmt(at["us_per_call_cpu"]), bt + " maps",
            fmt(g(btm, "us_per_call_cpu")), ratio(at["us_per_call_cpu"], g(btm, "us_per_call_cpu")))
        if btp or (is_rust and not b.bpftrace):
            add("  same, peer streaming every event (printf)", fmt(at["us_per_call_wall"]),
                bt + " printf per hit", fmt(g(btp, "us_per_call_wall")) + flag(btp),
                ratio(at["us_per_call_wall"], g(btp, "us_per_call_wall")))
        if al:
            add("  added wall us/call, default probes (%d polls)" % al["calls"],
                fmt(al["us_per_call_wall"]) + flag(al), bt + " maps, 4 fns",
                fmt(g(btm, "us_per_call_wall")), ratio(al["us_per_call_wall"], g(btm, "us_per_call_wall")))
        add("  whole traced run, wall (incl. start-up)", "%.2f s" % at["wall_s"], bt + " maps",
            fmt(g(btm, "wall_s"), 3, " s"), ratio(at["wall_s"], g(btm, "wall_s")))
        add("  slowdown vs untraced" + (" (default probes)" if al else ""),
            "%.0fx" % at["slowdown"] + (" (%.0fx)" % al["slowdown"] if al else ""), "untraced", "1x", "")

    add("attach: %s debug, %d poll fns, time to target's first output" % (ATTACH_BIN, a["functions"]),
        "%.0f ms" % (a["at_first_s"] * 1e3), "%s (%s probes)" % (bt, a.get("bt_probes", "-")),
        "%.0f ms" % (a["bt_first_s"] * 1e3) if "bt_first_s" in a else "n/a",
        ratio(a["at_first_s"], a.get("bt_first_s")))
    add("  probes; attach alone (asynctrace's figure)", "%s; %s" % (a.get("at_probes", "?"), fmt(a["at_attach_ms"], 3, " ms")),
        "untraced first output", "%.0f ms" % (a["plain_first_s"] * 1e3), "")
    add("  whole run incl. detach", "%.0f ms" % (a["at_wall_s"] * 1e3), bt + " (1 run)",
        "%.0f ms" % (a["bt_wall_s"] * 1e3) if "bt_wall_s" in a else "n/a", ratio(a["at_wall_s"], a.get("bt_wall_s")))
    if b.sizes:
        tb, te = sum(s for s, _ in b.sizes), sum(e for _, e in b.sizes)
        record = bpf_record_size()
        add("trace size: bytes per event (%d traces)" % len(b.sizes), "%.1f" % (tb / te),
            "BPF record (src/bpf/poll.h)", str(record), ratio(tb / te, record))
    if an:
        add("analysis of %d events (%.1f MB): report" % (an["events"], an["trace_bytes"] / 1e6),
            "%.0f ms, %.2g ev/s" % (an["report_s"] * 1e3, an["events"] / an["report_s"]), "", "", "")
        add("  export --format chrome", "%.0f ms, %.2g ev/s" % (an["export_s"] * 1e3, an["events"] / an["export_s"]),
            "", "", "")
        add("  chrome JSON bytes per event", "%.0f" % (an["json_bytes"] / an["events"]),
            "trace file", "%.0f" % (an["trace_bytes"] / an["events"]), ratio(an["json_bytes"], an["trace_bytes"]))

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    u = platform.uname()
    print()
    print("asynctrace benchmarks, %s" % datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))
    print("machine: %s, nproc %d, Linux %s %s" % (cpu, os.cpu_count(), u.release, u.machine))
    print("peer:    %s; median of %d runs; took %.0f s" % (bt_version, b.reps, time.monotonic() - t0))
    print()
    head = ("MEASUREMENT", "ASYNCTRACE", "PEER", "PEER VALUE", "RATIO")
    w = [max(len(row[i]) for row in rows + [head]) for i in range(5)]
    for row in [head] + rows:
        print("%-*s  %*s  %-*s  %*s  %*s" % (w[0], row[0], w[1], row[1], w[2], row[2], w[3], row[3], w[4], row[4]))
    print()
    print("us/call: added time per traced call (one entry + one exit probe hit), big run minus small run,")
    print("minus the same difference untraced. ratio = asynctrace / peer: below 1 asynctrace is cheaper.")
    for n in b.notes:
        print(n)
    b.results.update(date=datetime.datetime.now().astimezone().isoformat(), cpu=cpu, nproc=os.cpu_count(),
                     kernel=u.release, bpftrace=bt_version, reps=b.reps, notes=b.notes)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(b.results, f, indent=1)
    if args.keep:
        print("bench: kept " + b.tmp, file=sys.stderr)
    else:
        shutil.rmtree(b.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
