#!/usr/bin/env python3
"""asynctrace benchmarks: tracing overhead, attach cost, trace size, analysis speed.

Every figure is the median of --reps runs and is compared with a peer measured
in the same run: the uninstrumented program, and bpftrace doing the same
probing (entry uprobe + uretprobe on the same functions, a timestamp and a
count per hit into maps). Counts from both tracers are checked against the
targets' --ground-truth before their timings are used. Standard library only.

Per-poll cost is differential, so that fixed costs (tracer start-up, symbol
analysis, bpftrace's LLVM compile, probe detach) cancel out:

    cost/poll = ((T_traced(big) - T_traced(small)) - (T_plain(big) - T_plain(small)))
                / (traced polls(big) - traced polls(small))

where T is wall time and "polls" are traced function calls (each one entry and
one exit probe hit).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

RUST_BIN = "tokio_ct"
RUST_BIG = ["--tasks", "10", "--yields", "2000"]     # 4 x 80,040 polls
RUST_SMALL = ["--tasks", "1", "--yields", "1"]
C_BIG = ["--calls", "20000"]                        # 160,000 calls
C_SMALL = ["--calls", "1"]
ATTACH_BIN = "demo"                                 # the debug binary with most poll functions
ATTACH_ARGS = ["--ground-truth"]                    # prints one line, runs (almost) nothing


def die(msg):
    print("bench: " + msg, file=sys.stderr)
    sys.exit(1)


def warn(msg, notes):
    print("bench: WARNING: " + msg, file=sys.stderr)
    notes.append("WARNING: " + msg)


def timed(cmd, first_line=False):
    """Run cmd; return (wall seconds, seconds to its first stdout line or None,
    exit status, stdout, stderr)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    first = None
    head = ""
    if first_line:
        head = p.stdout.readline()
        first = time.monotonic() - t0
    out, err = p.communicate()
    return time.monotonic() - t0, first, p.returncode, head + out, err


def median(xs):
    return statistics.median(xs) if xs else None


def ere_escape(s):
    """Literal POSIX ERE for s (asynctrace's --match/--function)."""
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
    return json.loads(r.stdout)


def expected_counts(gt):
    """name -> expected traced calls (Rust: polls; C: entries)."""
    return {n: f.get("polls", f.get("entries")) for n, f in gt["functions"].items()}


class Bench:
    def __init__(self, args):
        self.build = os.path.abspath(args.build)
        self.reps = args.reps
        self.at = os.path.join(self.build, "asynctrace")
        self.tmp = tempfile.mkdtemp(prefix="asynctrace-bench.")
        self.bpftrace = shutil.which("bpftrace")
        self.notes = []
        self.nscripts = 0
        self.rows = []      # (measurement, asynctrace, peer name, peer value, ratio)
        self.results = {}
        self.largest = (0, None)   # (events, trace path) for the analysis benchmark
        if not os.access(self.at, os.X_OK):
            die("%s not found: run `make all targets` first" % self.at)

    # ---- asynctrace ---------------------------------------------------
    def at_report(self, trace):
        r = subprocess.run([self.at, "report", "--json", trace], capture_output=True, text=True)
        if r.returncode != 0:
            die("asynctrace report failed: " + r.stderr.strip())
        return json.loads(r.stdout)

    def at_check(self, label, rep, expect, stdout, gt):
        """Check an asynctrace trace against the ground truth; return traced polls."""
        if rep["lost"] != 0:
            warn("%s: %d events lost" % (label, rep["lost"]), self.notes)
        got = {}
        for f in rep["functions"]:
            got[f["name"]] = got.get(f["name"], 0) + f["polls"]
        bad = {n: (got.get(n, 0), c) for n, c in expect.items() if got.get(n, 0) != c}
        if bad:
            warn("%s: counts differ from ground truth (got, expected): %s" % (label, bad), self.notes)
        if stdout != gt["stdout"]:
            warn("%s: target stdout differs from ground truth: %r" % (label, stdout[:200]), self.notes)
        return rep["polls"], rep["events"], not bad and rep["lost"] == 0

    # ---- bpftrace -----------------------------------------------------
    def bt_script(self, binary, groups):
        """groups: list of probe-target lists (one per function, each a list of
        'NAME' or '0xADDR'); uprobe + uretprobe on each, counts keyed by index."""
        lines = []
        for i, targets in enumerate(groups):
            ent = ", ".join("uprobe:%s:%s" % (binary, t) for t in targets)
            ret = ", ".join("uretprobe:%s:%s" % (binary, t) for t in targets)
            # uprobe:BIN:... fires in every process running BIN (the tests may
            # run the same targets concurrently): keep to the child, as
            # asynctrace does.
            lines.append("%s /pid == cpid/ { @entry[%d] = count(); @ts[tid, %d] = nsecs; }"
                         % (ent, i, i))
            lines.append("%s /pid == cpid/ { @exit[%d] = count(); @ns[%d] = sum(nsecs - @ts[tid, %d]); }"
                         % (ret, i, i, i))
        lines.append("END { clear(@ts); }")
        self.nscripts += 1
        path = os.path.join(self.tmp, "probes%d.bt" % self.nscripts)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    @staticmethod
    def bt_counts(stdout):
        c = {"entry": {}, "exit": {}}
        for m in re.finditer(r"^@(entry|exit)\[(\d+)\]: (\d+)$", stdout, re.M):
            c[m.group(1)][int(m.group(2))] = int(m.group(3))
        return c

    # ---- overhead per traced poll --------------------------------------
    def overhead(self, key, title, binary, big, small, select_opt, verify_bt):
        """select_opt: '--match' (poll functions) or '--function' (any function)."""
        gt_big, gt_small = ground_truth(binary, big), ground_truth(binary, small)
        exp_big, exp_small = expected_counts(gt_big), expected_counts(gt_small)
        names = list(exp_big)
        regex = "^(" + "|".join(ere_escape(n) for n in names) + ")$"

        configs = [("untraced", None)]
        configs.append(("asynctrace", [self.at, "record", "-q", select_opt, regex]))
        if select_opt == "--match":
            configs.append(("asynctrace-all", [self.at, "record", "-q"]))
        bt_groups = None
        if self.bpftrace:
            if select_opt == "--match":
                # bpftrace 0.17 cannot parse '$' of legacy Rust names in a probe
                # spec: attach by address. uprobe:BIN:0xADDR takes the symbol's
                # virtual address (as nm prints it): bpftrace finds the symbol
                # containing it and converts to a file offset itself.
                r = subprocess.run([self.at, "symbols", "--format", "json", "--match", regex, binary],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    die("asynctrace symbols failed: " + r.stderr.strip())
                addrs = {n: [] for n in names}
                for f in json.loads(r.stdout)["functions"]:
                    a = f["address"]
                    addrs[f["name"]].append(a if isinstance(a, str) else hex(a))
                bt_groups = [addrs[n] for n in names]
            else:
                bt_groups = [[n] for n in names]
            script = self.bt_script(binary, bt_groups)
            configs.append(("bpftrace", ["bpftrace", "-q", script, "-c"]))

        times = {c: {"big": [], "small": []} for c, _ in configs}
        hits = {c: {} for c, _ in configs}
        ok = {c: True for c, _ in configs}
        for rep in range(self.reps):
            for cname, pre in configs:
                for size, args, gt, exp in (("big", big, gt_big, exp_big),
                                            ("small", small, gt_small, exp_small)):
                    trace = os.path.join(self.tmp, "%s-%s-%s.trace" % (key, cname, size))
                    if cname == "untraced":
                        cmd = [binary] + args
                    elif cname == "bpftrace":
                        cmd = pre + [" ".join([binary] + args)]
                    else:
                        cmd = pre[:3] + ["-o", trace] + pre[3:] + ["--", binary] + args
                    wall, _, rc, out, err = timed(cmd)
                    if rc != 0:
                        die("%s exited %d: %s\n%s" % (" ".join(cmd), rc, err.strip()[-2000:], out[-500:]))
                    times[cname][size].append(wall)
                    label = "%s %s %s %s" % (title, cname, " ".join(args), "")
                    if cname == "untraced":
                        if out != gt["stdout"]:
                            warn("%s: unexpected stdout %r" % (label, out[:200]), self.notes)
                        hits[cname][size] = 0
                    elif cname == "bpftrace":
                        c = self.bt_counts(out)
                        polls = 0
                        for i, n in enumerate(names):
                            e, x = c["entry"].get(i, 0), c["exit"].get(i, 0)
                            if e != exp[n] or x != exp[n]:
                                ok[cname] = False
                                warn("%s: bpftrace counted %s entries=%d exits=%d, ground truth %d"
                                     % (label, n, e, x, exp[n]), self.notes)
                            polls += e
                        hits[cname][size] = polls
                    else:
                        rp = self.at_report(trace)
                        # stdout of the target is everything asynctrace printed to stdout
                        polls, events, good = self.at_check(label, rp, exp, out, gt)
                        ok[cname] = ok[cname] and good
                        hits[cname][size] = polls
                        if size == "big" and events > self.largest[0]:
                            keep = os.path.join(self.tmp, "largest.trace")
                            shutil.copyfile(trace, keep)
                            self.largest = (events, keep)
                            self.largest_bytes = os.path.getsize(trace)
                        if size == "big":
                            self.results.setdefault("trace_sizes", []).append(
                                (os.path.getsize(trace), events))
                        os.unlink(trace)

        med = {c: {s: median(times[c][s]) for s in ("big", "small")} for c, _ in configs}
        base = med["untraced"]["big"] - med["untraced"]["small"]
        res = {"untraced_big_s": med["untraced"]["big"], "configs": {}}
        for cname, _ in configs:
            if cname == "untraced":
                continue
            dpolls = hits[cname]["big"] - hits[cname]["small"]
            added = (med[cname]["big"] - med[cname]["small"]) - base
            res["configs"][cname] = {
                "wall_big_s": med[cname]["big"], "wall_small_s": med[cname]["small"],
                "polls_big": hits[cname]["big"], "counts_ok": ok[cname],
                "us_per_poll": added / dpolls * 1e6 if dpolls > 0 else None,
                "slowdown": med[cname]["big"] / med["untraced"]["big"],
            }
        self.results[key] = res
        return res

    # ---- attach cost -----------------------------------------------------
    def attach(self):
        binary = os.path.join(self.build, "targets/rust/debug", ATTACH_BIN)
        r = subprocess.run([self.at, "symbols", "--format", "json", binary], capture_output=True, text=True)
        if r.returncode != 0:
            die("asynctrace symbols failed: " + r.stderr.strip())
        funcs = json.loads(r.stdout)["functions"]
        addrs = sorted({(f["address"] if isinstance(f["address"], str) else hex(f["address"]))
                        for f in funcs}, key=lambda a: int(a, 16))
        res = {"binary": ATTACH_BIN, "functions": len(addrs)}
        trace = os.path.join(self.tmp, "attach.trace")
        first, wall, self_ms, probes = [], [], [], None
        plain = []
        for _ in range(self.reps):
            t, f, rc, out, err = timed([binary] + ATTACH_ARGS, first_line=True)
            plain.append(f)
            t, f, rc, out, err = timed([self.at, "record", "-o", trace, "--", binary] + ATTACH_ARGS,
                                       first_line=True)
            if rc != 0:
                die("asynctrace record on %s failed: %s" % (ATTACH_BIN, err.strip()))
            first.append(f)
            wall.append(t)
            m = re.search(r"(\d+) probes on (\d+) (?:poll )?functions attached in ([\d.]+) ms", err)
            if m:
                probes = int(m.group(1))
                self_ms.append(float(m.group(3)))
        res.update(plain_first_s=median(plain), at_first_s=median(first), at_wall_s=median(wall),
                   at_probes=probes, at_attach_ms=median(self_ms))
        if self.bpftrace:
            # bpftrace 0.17 refuses probes inside a function (no offset check
            # support compiled in), so it gets uprobe + uretprobe on every poll
            # function's entry: 2 x functions probes, close to asynctrace's
            # entry + every exit site. One run: its detach is slow.
            script = self.bt_script(binary, [[a] for a in addrs])
            t, f, rc, out, err = timed(["bpftrace", "-q", script, "-c", " ".join([binary] + ATTACH_ARGS)],
                                       first_line=True)
            if rc != 0:
                warn("bpftrace attach run failed: %s" % err.strip()[-500:], self.notes)
            else:
                res.update(bt_probes=2 * len(addrs), bt_first_s=f, bt_wall_s=t)
        self.results["attach"] = res
        return res

    # ---- analysis speed ------------------------------------------------------
    def analysis(self):
        events, trace = self.largest
        if not trace:
            return None
        out = os.path.join(self.tmp, "largest.json")
        rt, et = [], []
        for _ in range(self.reps):
            t, _, rc, _, err = timed([self.at, "report", trace])
            if rc != 0:
                die("asynctrace report failed: " + err.strip())
            rt.append(t)
            t, _, rc, _, err = timed([self.at, "export", "--format", "chrome", "-o", out, trace])
            if rc != 0:
                die("asynctrace export failed: " + err.strip())
            et.append(t)
        res = {"events": events, "trace_bytes": os.path.getsize(trace), "json_bytes": os.path.getsize(out),
               "report_s": median(rt), "export_s": median(et)}
        self.results["analysis"] = res
        return res


def fmt(v, unit="", digits=3):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    return ("%%.%dg" % digits) % v + unit


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return "%.2fx" % (a / b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_REPS", "3")))
    ap.add_argument("--json", help="also write all results as JSON to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if os.geteuid() != 0:
        die("must run as root (BPF uprobes)")
    b = Bench(args)
    t_start = time.monotonic()
    bt_version = "not installed"
    if b.bpftrace:
        bt_version = subprocess.run(["bpftrace", "--version"], capture_output=True, text=True).stdout.strip()
    else:
        print("bench: bpftrace NOT FOUND: the peer tracer is missing; only asynctrace vs untraced "
              "numbers follow (apt-get install bpftrace for the comparison)", file=sys.stderr)
        b.notes.append("bpftrace not installed: no tracer peer in this run")

    rust = os.path.join(b.build, "targets/rust/debug", RUST_BIN)
    cbin = os.path.join(b.build, "targets/c/probe_mech")
    for f in (rust, cbin):
        if not os.access(f, os.X_OK):
            die("%s not found: run `make targets` first" % f)

    print("bench: %d repetitions of each run (median reported); this takes 1-3 minutes" % b.reps,
          file=sys.stderr)
    print("bench: 1/4 %s (debug) %s ..." % (RUST_BIN, " ".join(RUST_BIG)), file=sys.stderr)
    r = b.overhead("rust", RUST_BIN, rust, RUST_BIG, RUST_SMALL, "--match", True)
    print("bench: 2/4 probe_mech %s ..." % " ".join(C_BIG), file=sys.stderr)
    c = b.overhead("c", "probe_mech", cbin, C_BIG, C_SMALL, "--function", True)
    print("bench: 3/4 attach cost (%s) ..." % ATTACH_BIN, file=sys.stderr)
    a = b.attach()
    print("bench: 4/4 trace size, analysis speed ...", file=sys.stderr)
    an = b.analysis()

    rows = []
    bt_name = "bpftrace" if b.bpftrace else "bpftrace (missing)"

    def add(what, mine, peer_name, peer, rat):
        rows.append((what, mine, peer_name, peer, rat))

    for key, res, what in (("rust", r, "%s debug %s" % (RUST_BIN, " ".join(RUST_BIG))),
                           ("c", c, "probe_mech %s" % " ".join(C_BIG))):
        cf = res["configs"]
        at, bt = cf["asynctrace"], cf.get("bpftrace")
        sel = "4 poll fns" if key == "rust" else "5 functions"
        add("%s: untraced wall" % what, "%.3f s" % res["untraced_big_s"], "", "", "")
        add("  added us/poll, %s%s" % (sel, "" if at["counts_ok"] else " (COUNTS WRONG)"),
            fmt(at["us_per_poll"]), bt_name + " entry+uretprobe",
            fmt(bt["us_per_poll"]) + ("" if bt["counts_ok"] else " (COUNTS WRONG)") if bt else "n/a",
            ratio(at["us_per_poll"], bt["us_per_poll"]) if bt else "n/a")
        add("  wall with tracing, %s" % sel, "%.2f s" % at["wall_big_s"], bt_name,
            "%.2f s" % bt["wall_big_s"] if bt else "n/a",
            ratio(at["wall_big_s"], bt["wall_big_s"]) if bt else "n/a")
        add("  slowdown vs untraced, %s" % sel, "%.0fx" % at["slowdown"], "untraced", "1x", "")
        if "asynctrace-all" in cf:
            al = cf["asynctrace-all"]
            add("  added us/poll, default probes (%d polls)%s" % (al["polls_big"], "" if al["counts_ok"] else " (COUNTS WRONG)"),
                fmt(al["us_per_poll"]), bt_name + " (4 fns)",
                fmt(bt["us_per_poll"]) if bt else "n/a",
                ratio(al["us_per_poll"], bt["us_per_poll"]) if bt else "n/a")
            add("  slowdown vs untraced, default probes", "%.0fx" % al["slowdown"], "untraced", "1x", "")

    add("attach: %s debug, %d poll fns: time to target's first output" % (ATTACH_BIN, a["functions"]),
        "%.0f ms (%s probes)" % (a["at_first_s"] * 1e3, a["at_probes"]),
        bt_name + " (%s probes)" % a.get("bt_probes", "-"),
        "%.0f ms" % (a["bt_first_s"] * 1e3) if "bt_first_s" in a else "n/a",
        ratio(a["at_first_s"], a.get("bt_first_s")))
    add("  same, untraced program", "", "untraced", "%.0f ms" % (a["plain_first_s"] * 1e3), "")
    add("  attach alone (asynctrace's own figure)", fmt(a["at_attach_ms"], " ms"), "", "", "")
    add("  whole run incl. detach", "%.0f ms" % (a["at_wall_s"] * 1e3), bt_name + " (1 run)",
        "%.0f ms" % (a["bt_wall_s"] * 1e3) if "bt_wall_s" in a else "n/a",
        ratio(a["at_wall_s"], a.get("bt_wall_s")))
    sizes = b.results.get("trace_sizes", [])
    if sizes:
        tb, te = sum(s for s, _ in sizes), sum(e for _, e in sizes)
        add("trace size: bytes per event", "%.1f" % (tb / te), "BPF record", "48", ratio(tb / te, 48))
    if an:
        add("report on %d events (%.1f MB)" % (an["events"], an["trace_bytes"] / 1e6),
            "%.0f ms = %.2g ev/s" % (an["report_s"] * 1e3, an["events"] / an["report_s"]), "", "", "")
        add("export --format chrome, same trace",
            "%.0f ms = %.2g ev/s" % (an["export_s"] * 1e3, an["events"] / an["export_s"]),
            "", "", "")
        add("  chrome JSON bytes per event", "%.0f" % (an["json_bytes"] / an["events"]), "trace file",
            "%.0f" % (an["trace_bytes"] / an["events"]), ratio(an["json_bytes"], an["trace_bytes"]))

    # ---- print ----
    uname = platform.uname()
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            cpu = m.group(1) if m else ""
    except OSError:
        pass
    print()
    print("asynctrace benchmarks  %s" % datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))
    print("machine: %s, nproc %d, kernel %s %s" % (cpu or "?", os.cpu_count(), uname.release, uname.machine))
    print("peer:    %s; median of %d runs; %.0f s total" % (bt_version, b.reps, time.monotonic() - t_start))
    print()
    w = [max(len(str(row[i])) for row in rows + [("MEASUREMENT", "ASYNCTRACE", "PEER", "PEER VALUE", "RATIO")])
         for i in range(5)]
    for row in [("MEASUREMENT", "ASYNCTRACE", "PEER", "PEER VALUE", "RATIO")] + rows:
        print("%-*s  %*s  %-*s  %*s  %*s" % (w[0], row[0], w[1], row[1], w[2], row[2], w[3], row[3], w[4], row[4]))
    print()
    print("us/poll = added wall time per traced call (one entry + one exit probe hit), "
          "differential between a big and a small run; ratio = asynctrace / peer (lower is better for asynctrace).")
    for n in b.notes:
        print(n)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(b.results, f, indent=1, default=str)
    if args.keep:
        print("kept " + b.tmp, file=sys.stderr)
    else:
        shutil.rmtree(b.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
