"""The tracers the benchmarks run, each probing a given set of functions of
one binary: asynctrace (inproc or bpf backend), uftrace (`record -P`),
bpftrace (uprobe + uretprobe) and nothing at all. Each builds its command
line and checks what it counted against the target's ground truth before its
timings are used."""

import json
import os
import re
import subprocess

from harness import check_stdout, die, ere_escape, exact_regex


class Result:
    """What one traced run recorded: calls (polls or C calls traced), events,
    lost, trace bytes, good (every check passed), and tracer-specific detail."""

    def __init__(self, calls=0, events=0, lost=0, trace_bytes=0, good=True):
        self.calls, self.events, self.lost, self.trace_bytes, self.good = calls, events, lost, trace_bytes, good
        self.report = None
        self.span = None   # seconds the program ran as the tracer saw it (its own start-up and wrap-up left out)


def symbols(bench, binary, regex=None, every_role=False):
    """asynctrace's view of binary: the poll functions (and with every_role
    the runtime hooks and drop glue that `record` probes by default)."""
    cmd = [bench.at, "symbols", "--format", "json", binary]
    if regex:
        cmd += ["--match", regex]
    if every_role:
        cmd.append("--all")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        die("asynctrace symbols failed: " + r.stderr.strip())
    return json.loads(r.stdout)["functions"]


def known_functions(gt, syms):
    """Ground-truth functions that have a symbol (release builds inline some)."""
    names = {f["name"] for f in syms}
    return {n: c for n, c in gt["expect"].items() if n in names}


class Untraced:
    name = "untraced"

    def command(self, argv, out):
        return list(argv)

    def result(self, bench, label, run, out, gt):
        return Result(good=check_stdout(bench, label, run, gt))


# ---- asynctrace ------------------------------------------------------------------
class AsyncTrace:
    """asynctrace record. functions: names to probe exactly (--match, or
    --function for C) with --polls-only; None: record's default probes."""

    def __init__(self, bench, backend, functions=None, c=False, label=None, extra=()):
        self.bench, self.backend, self.functions, self.c, self.extra = bench, backend, functions, c, list(extra)
        self.name = label or "asynctrace %s%s" % (backend, "" if functions else " (default probes)")

    def command(self, argv, out):
        cmd = [self.bench.at, "record", "--backend", self.backend, "-o", out] + self.extra
        if self.functions:
            cmd += ["--function" if self.c else "--match", exact_regex(self.functions)]
            if not self.c:
                cmd.append("--polls-only")
        return cmd + ["--"] + list(argv)

    def report(self, trace):
        r = subprocess.run([self.bench.at, "report", "--json", trace], capture_output=True, text=True)
        if r.returncode != 0:
            die("asynctrace report %s failed: %s" % (trace, r.stderr.strip()))
        return json.loads(r.stdout)

    def result(self, bench, label, run, out, gt, expect=None, lost_ok=False):
        """Check the trace against expect (function -> polls; default: the
        ground truth's functions that have symbols, which the caller passes)."""
        rep = self.report(out)
        res = Result(rep["polls"], rep["events"], rep["lost"], os.path.getsize(out))
        res.report, res.capture = rep, rep.get("capture")
        res.span = rep["duration_ns"] / 1e9   # first to last event
        res.patched = patch_summary(run.err)
        if rep["lost"] and not lost_ok:
            res.good = False
            bench.warn("%s: %d events lost" % (label, rep["lost"]))
        got = {}
        for f in rep["functions"]:
            got[f["name"]] = got.get(f["name"], 0) + f["polls"]
        expect = gt["expect"] if expect is None else expect
        bad = {n: (got.get(n, 0), c) for n, c in expect.items() if got.get(n, 0) != c}
        if bad:
            res.good = False
            bench.warn("%s: counts (got, ground truth) differ: %s" % (label, bad))
        if self.functions and not self.c and rep["events"] != 2 * rep["polls"] and not lost_ok:
            # --polls-only: one entry and one exit record per poll, nothing else
            res.good = False
            bench.warn("%s: %d events for %d polls (expected 2 per poll)" % (label, rep["events"], rep["polls"]))
        if not check_stdout(bench, label, run, gt):
            res.good = False
        return res


def patch_summary(err):
    """record's own line: how many functions the agent patched and how many
    went to uprobes; or the uprobe count for --backend bpf."""
    m = re.search(r"(\d+) of (\d+) functions patched in process, (\d+) through uprobes, in ([\d.]+) ms", err)
    if m:
        return {"patched": int(m.group(1)), "functions": int(m.group(2)),
                "uprobed": int(m.group(3)), "ms": float(m.group(4))}
    m = re.search(r"(\d+) probes on (\d+) (?:poll )?functions? attached in ([\d.]+) ms", err)
    if m:
        return {"probes": int(m.group(1)), "functions": int(m.group(2)), "ms": float(m.group(3))}
    return None


def describe(p, capture=None):
    """One line on what a tracer managed to probe (patch_summary, or
    Uftrace.coverage as {patched, functions, missing})."""
    if "missing" in p:
        return "patched %d of the %d functions asked for%s" % (
            p["patched"], p["functions"], (" (never: " + "; ".join(p["missing"]) + ")") if p["missing"] else "")
    head = "capture %s, " % capture if capture else ""
    if "uprobed" in p:
        return head + "%d of %d functions patched in process, %d through uprobes" % (
            p["patched"], p["functions"], p["uprobed"])
    return head + "%d uprobes on %d functions" % (p["probes"], p["functions"])


def unpatched_reasons(bench, tracer, argv):
    """`record -v`'s list of functions left to uprobes, by reason
    ({"role: reason": count}), from one untimed run of an inproc tracer."""
    out = bench.path("reasons.trace")
    cmd = tracer.command(argv, out)
    cmd.insert(2, "-v")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if os.path.exists(out):
        os.unlink(out)
    reasons = {}
    for m in re.finditer(r"^asynctrace: not patched: .* \(([\w ]+)\): (.*)$", r.stderr, re.M):
        key = "%s: %s" % (m.group(1), m.group(2))
        reasons[key] = reasons.get(key, 0) + 1
    return reasons


# ---- uftrace ---------------------------------------------------------------------
# uftrace 0.13 demangles legacy Rust symbols (_ZN...17h<hash>E) with its own
# C++-style demangler: it decodes the $..$ escapes below, keeps `..` for the
# `::` inside generic arguments, keeps the `_` that rustc puts before a path
# segment beginning with `$` (`tokio_ct::leaf::_{{closure}}`,
# `_<targets..YieldNow as core..future..future..Future>::poll`) and drops the
# hash (and a `.llvm.N` suffix). v0 symbols (_R...) and C names stay as they
# are. -P takes a POSIX ERE that may match anywhere in that name, or, when the
# pattern has no regex character, the exact name.
UFTRACE_ESCAPES = {"SP": "@", "BP": "*", "RF": "&", "LT": "<", "GT": ">", "LP": "(", "RP": ")", "C": ",",
                   "u20": " ", "u22": '"', "u27": "'", "u2b": "+", "u3b": ";", "u3d": "=", "u5b": "[",
                   "u5d": "]", "u7b": "{", "u7d": "}", "u7e": "~"}


def uftrace_name(mangled):
    if not mangled.startswith("_ZN"):
        return mangled
    i, parts = 3, []
    while i < len(mangled) and mangled[i] != "E":
        j = i
        while mangled[j].isdigit():
            j += 1
        if j == i:
            return mangled
        n = int(mangled[i:j])
        parts.append(mangled[j:j + n])
        i = j + n
    if parts and re.fullmatch(r"h[0-9a-f]{16}", parts[-1]):
        parts.pop()
    unescape = lambda p: re.sub(r"\$(\w+?)\$", lambda m: UFTRACE_ESCAPES.get(m.group(1), m.group(0)), p)
    return "::".join(unescape(p) for p in parts)


class Uftrace:
    """uftrace record -P on exactly the given functions: symbol dicts from
    `asynctrace symbols` (Rust) or plain C names. No PLT hooks (--no-libcall)
    and no scheduler events (--no-sched): asynctrace records neither."""

    name = "uftrace -P"

    def __init__(self, bench, binary, functions):
        self.bench, self.binary = bench, binary
        self.by_name = {}      # asynctrace's name -> uftrace's name
        for f in functions:
            if isinstance(f, str):
                self.by_name[f] = f
            else:
                self.by_name[f["name"]] = uftrace_name(f["mangled"])
        self.copies = len(functions)
        # The patterns go in an option file: uftrace stores its command line in
        # the data's info file and cannot read that file back when the line is
        # longer than 4 KiB ("cannot read uftrace header info"). The file is
        # split at whitespace, so a space in a name is matched as [[:space:]].
        bench.nuftrace = getattr(bench, "nuftrace", 0) + 1
        self.optfile = bench.path("uftrace%d.opts" % bench.nuftrace)
        with open(self.optfile, "w") as f:
            for n in sorted(set(self.by_name.values())):
                f.write("-P ^%s$\n" % ere_escape(n).replace(" ", "[[:space:]]"))

    def command(self, argv, out, verbose=False):
        cmd = ["uftrace", "record", "--no-libcall", "--no-sched", "-d", out, "--opt-file=" + self.optfile]
        if verbose:
            cmd.insert(2, "-vv")
        return cmd + list(argv)

    def coverage(self, argv):
        """(functions patched, functions asked for, names never patched), from
        uftrace's own -vv log of one untimed run: it skips what it cannot
        patch without saying so otherwise."""
        out = self.bench.path("uftrace-coverage")
        r = subprocess.run(self.command(argv, out, verbose=True), capture_output=True, text=True)
        subprocess.run(["rm", "-rf", out])
        text = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout + r.stderr)
        done = re.findall(r"force patch normal func: (.*) \(patch size: \d+\)$", text, re.M)
        missing = sorted(set(self.by_name.values()) - set(done))
        return len(done), self.copies, missing

    def counts(self, out):
        """{uftrace name: [entries, exits]} and the number of 'lost' markers."""
        r = subprocess.run(["uftrace", "dump", "-d", out], capture_output=True, text=True)
        if r.returncode != 0:
            die("uftrace dump -d %s failed: %s" % (out, r.stderr.strip()[-500:]))
        counts = {}
        for m in re.finditer(r"\[(entry|exit )\] (.*)\([0-9a-f]+\) depth: \d+$", r.stdout, re.M):
            c = counts.setdefault(m.group(2), [0, 0])
            c[0 if m.group(1) == "entry" else 1] += 1
        return counts, len(re.findall(r"lost", r.stdout, re.I))

    def result(self, bench, label, run, out, gt, expect=None):
        counts, lost = self.counts(out)
        calls = sum(e for e, _ in counts.values())
        size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out) if f.endswith(".dat"))
        res = Result(calls, sum(e + x for e, x in counts.values()), lost, size)
        with open(os.path.join(out, "info"), "rb") as f:   # the target's run, from exec to exit
            m = re.search(rb"^elapsed_time:([\d.]+) sec$", f.read(), re.M)
            res.span = float(m.group(1)) if m else None
        if lost or "LOST" in run.err:
            res.good = False
            bench.warn("%s: uftrace lost records (%d markers in its dump)" % (label, lost))
        expect = gt["expect"] if expect is None else expect
        for n, want in expect.items():
            e, x = counts.get(self.by_name.get(n, n), [0, 0])
            if e != want or x != want:
                res.good = False
                bench.warn("%s: uftrace counted %s entries=%d exits=%d, ground truth %d" % (label, n, e, x, want))
        res.good = check_stdout(bench, label, run, gt) and res.good
        subprocess.run(["rm", "-rf", out])
        return res


# ---- bpftrace --------------------------------------------------------------------
def hexaddr(a):
    return a if isinstance(a, str) else hex(a)


class Bpftrace:
    """bpftrace uprobe + uretprobe on each function: a count and a timestamp
    per hit in maps (printf: also one line per hit streamed to user space).
    groups: per function, its probe targets (a C name, or the virtual
    addresses of a Rust function's copies: bpftrace 0.17 cannot parse the `$`
    of legacy Rust names, and takes uprobe:BIN:0xADDR as an address that nm
    prints, converting it to a file offset itself)."""

    def __init__(self, bench, binary, names, groups, printf=False):
        self.bench, self.binary, self.names, self.printf = bench, binary, names, printf
        self.name = "bpftrace" + (" printf" if printf else "")
        lines = []
        for i, targets in enumerate(groups):
            ent = ", ".join("uprobe:%s:%s" % (binary, t) for t in targets)
            ret = ", ".join("uretprobe:%s:%s" % (binary, t) for t in targets)
            pe = ' printf("e %%d %%d %%llu\\n", tid, %d, nsecs);' % i if printf else ""
            px = ' printf("x %%d %%d %%llu\\n", tid, %d, nsecs);' % i if printf else ""
            # uprobe:BIN:... fires in every process running BIN (tests may run
            # the same targets concurrently): keep to the child, as asynctrace does.
            lines.append("%s /pid == cpid/ { @entry[%d] = count(); @ts[tid, %d] = nsecs;%s }" % (ent, i, i, pe))
            lines.append("%s /pid == cpid/ { @exit[%d] = count(); @ns[%d] = sum(nsecs - @ts[tid, %d]);%s }"
                         % (ret, i, i, i, px))
        lines.append("END { clear(@ts); }")
        bench.nscripts = getattr(bench, "nscripts", 0) + 1
        self.script = bench.path("probes%d.bt" % bench.nscripts)
        with open(self.script, "w") as f:
            f.write("\n".join(lines) + "\n")

    @classmethod
    def for_rust(cls, bench, binary, names, printf=False):
        addrs = {n: [] for n in names}
        for f in symbols(bench, binary, exact_regex(names)):
            addrs[f["name"]].append(hexaddr(f["address"]))
        return cls(bench, binary, names, [addrs[n] for n in names], printf)

    def command(self, argv, out):
        return ["bpftrace", "-q", self.script, "-c", " ".join(argv)]

    def result(self, bench, label, run, out, gt):
        counts = {"entry": {}, "exit": {}}
        for m in re.finditer(r"^@(entry|exit)\[(\d+)\]: (\d+)$", run.out, re.M):
            counts[m.group(1)][int(m.group(2))] = int(m.group(3))
        res = Result()
        for i, n in enumerate(self.names):
            e, x = counts["entry"].get(i, 0), counts["exit"].get(i, 0)
            if e != gt["expect"][n] or x != gt["expect"][n]:
                res.good = False
                bench.warn("%s: bpftrace counted %s entries=%d exits=%d, ground truth %d"
                           % (label, n, e, x, gt["expect"][n]))
            res.calls += e
        if self.printf:
            lines = len(re.findall(r"^[ex] \d+ \d+ \d+$", run.out, re.M))
            if lines != 2 * res.calls:
                res.good = False
                bench.warn("%s: bpftrace printed %d of %d events (lost)" % (label, lines, 2 * res.calls))
        return res
