"""Analysis at scale: how fast and in how much memory a trace of tens of
millions of events is summarised and converted, against uftrace's own
converter on a recording of the same program.

tokio_ct (debug) `--tasks 500 --yields 2499` (`--quick`: 100 tasks) is recorded twice: by asynctrace
(inproc, default probes: ~19 M events) and by `uftrace record -P` on every
function `asynctrace symbols --all` lists (poll functions, runtime hooks,
drop glue: ~20 M records). Timed, each in a fresh process whose peak RSS is
its own (GNU time's %M): `uftrace dump --chrome` (records/s = its 16-byte records
/ wall), and asynctrace `report`, `export --format chrome` and `export
--format perfetto` (events/s = the trace's events / wall). Both recordings'
counts are checked against the target's ground truth first.

Then report's memory on synthetic traces of 1 M and 10 M events
(build/gen-trace, tests/tools/gen_trace.c), whose numbers are known by
construction and checked: its peak RSS should not grow with the trace.

One run of each: a run takes 5 to 60 s, and the figures of interest (a ratio
of 20x, a memory ceiling) are far from the VM's ±20 %. Every file of GBs is
deleted as soon as it is measured."""

import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

from harness import die, ground_truth, must_succeed, say, timed

GNU_TIME = "/usr/bin/time"  # Debian's `time` (scripts/install-deps.sh)
from tables import Section
from tracers import AsyncTrace, Uftrace, symbols

SHAPE = ["--tasks", "500", "--yields", "2499"]
QUICK_SHAPE = ["--tasks", "100", "--yields", "2499"]   # --quick: ~3.8 M events, a fifth of the time
RATIO_BAR = 20                    # asynctrace events/s >= 20x uftrace dump's records/s
RSS_BAR = 64 * 2 ** 20            # report's peak RSS on generated traces
RSS_GROWTH_BAR = 1.25             # RSS at 10 M events / RSS at 1 M: "not growing"
GENERATED = (1000000, 10000000)   # events of the synthetic traces
GEN_THREADS = 4
UFTRACE_RECORD = 16               # bytes of one uftrace record (no arguments, no return values recorded)
# A measured command still running after this is killed and its row says so: on a loaded machine the
# Perfetto export of 19 M events has been seen writing 0.5 MB/s, and a bench must end.
TIMEOUT_S = float(os.environ.get("BENCH_SCALE_TIMEOUT", "900"))


class Measured:
    """One command's wall and CPU seconds (user + system), its own peak RSS
    in bytes and its output bytes; killed: it ran past TIMEOUT_S."""

    def __init__(self, wall, cpu, rss, out_bytes, err, killed=False):
        self.wall, self.cpu, self.rss, self.out_bytes, self.err = wall, cpu, rss, out_bytes, err
        self.killed = killed

    def rate(self, items):
        return None if self.killed else items / self.wall


def measure(cmd, stdout=None, output=None):
    """Run cmd in a fresh process, stdout to the file `stdout` (else
    discarded); `output`: the file it writes, whose size is its output."""
    # Peak RSS through GNU time: Python starts children with vfork, and a
    # child's ru_maxrss then starts at this process's own size (the kernel
    # keeps the high-water mark of the mm an exec leaves), a floor of
    # 18-31 MiB that is not the command's.
    with open(stdout or os.devnull, "wb") as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        t0 = time.monotonic()
        p = subprocess.Popen([GNU_TIME, "-f", "%M", "-o", rss.name] + cmd, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=err, start_new_session=True)
        # time and the command it runs, together
        timer = threading.Timer(TIMEOUT_S, lambda: os.killpg(p.pid, signal.SIGKILL))
        timer.start()
        _, status, usage = os.wait4(p.pid, 0)
        timer.cancel()
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")
        peak = rss.read().strip().splitlines()  # its last line: KiB (a status line may precede it)
        maxrss = int(peak[-1]) if peak and peak[-1].isdigit() else usage.ru_maxrss
    if p.returncode == -9 and wall >= TIMEOUT_S:
        say("  killed after %.0f s: %s" % (wall, " ".join(cmd)))
        return Measured(wall, usage.ru_utime + usage.ru_stime, maxrss * 1024, 0, text, killed=True)
    if p.returncode != 0:
        die("`%s` exited %d:\n%s" % (" ".join(cmd), p.returncode, text.strip()[-2000:]))
    path = output or stdout
    size = os.path.getsize(path) if path else 0
    return Measured(wall, usage.ru_utime + usage.ru_stime, maxrss * 1024, size, text)


def measure_median(reps, cmd, stdout=None, output=None):
    """measure() `reps` times (the output removed after each run but the
    last); the run of median wall time, with the largest peak RSS seen. A
    shared machine moves single runs by up to 2x (docs/performance.md)."""
    runs = []
    for i in range(max(1, reps)):
        runs.append(measure(cmd, stdout=stdout, output=output))
        if runs[-1].killed:
            return runs[-1]
        if i + 1 < reps and (output or stdout):
            remove(output or stdout)
    runs.sort(key=lambda m: m.wall)
    mid = runs[len(runs) // 2]
    mid.rss = max(m.rss for m in runs)
    return mid


def mib(n):
    return "%.0f MiB" % (n / 2 ** 20)


def per_s(n):
    return "n/a" if n is None else "%.2f M/s" % (n / 1e6)


def uftrace_records(out):
    """Records in a uftrace data directory: its per-thread .dat files hold
    16-byte records (perf-cpu*.dat are scheduler data, not recorded here)."""
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out)
               if f.endswith(".dat") and not f.startswith("perf-"))
    return size // UFTRACE_RECORD


def uftrace_calls(out):
    """{uftrace name: calls} from `uftrace report` (C, one pass); times are
    printed as `1.619  s` or `795.748 ms`."""
    r = subprocess.run(["uftrace", "report", "-d", out], capture_output=True, text=True)
    if r.returncode != 0:
        die("uftrace report -d %s failed: %s" % (out, r.stderr.strip()[-500:]))
    calls = {}
    for m in re.finditer(r"^\s*[\d.]+\s+\w+\s+[\d.]+\s+\w+\s+(\d+)\s+(.*?)\s*$", r.stdout, re.M):
        calls[m.group(2)] = calls.get(m.group(2), 0) + int(m.group(1))
    return calls


def check_uftrace(bench, uft, out, run, gt):
    """Calls of the ground truth's functions as uftrace counted them; (good,
    calls of every function)."""
    calls, good = uftrace_calls(out), run.out == gt["stdout"] and "LOST" not in run.err
    for name, want in gt["expect"].items():
        got = calls.get(uft.by_name.get(name, name), 0)
        if got != want:
            good = False
            bench.warn("scale: uftrace counted %d calls of %s, ground truth %d" % (got, name, want))
    if not good:
        bench.warn("scale: the uftrace recording failed its checks (lost records or wrong output)")
    return good, sum(calls.values())


def uftrace_side(bench, binary, shape, gt):
    """Record with uftrace, check, time `dump --chrome`; the data is deleted."""
    uft = Uftrace(bench, binary, symbols(bench, binary, every_role=True))
    out = bench.path("scale-uftrace")
    cmd = uft.command([binary] + shape, out)
    rec = timed(cmd)
    must_succeed(cmd, rec)
    records = uftrace_records(out)
    good, calls = check_uftrace(bench, uft, out, rec, gt)
    say("  uftrace: %s records in %.1f s; dump --chrome" % ("{:,}".format(records), rec.wall))
    dump = bench.path("scale-uftrace.json")
    m = measure_median(bench.reps, ["uftrace", "dump", "--chrome", "-d", out], stdout=dump)
    remove(dump)
    subprocess.run(["rm", "-rf", out])
    return {"record": rec.wall, "records": records, "calls": calls, "functions": uft.copies, "dump": m,
            "good": good}


ASYNCTRACE_COMMANDS = (
    ("report", lambda at, trace, out: [at, "report", trace], True),
    ("export --format chrome", lambda at, trace, out: [at, "export", "--format", "chrome", "-o", out, trace], False),
    ("export --format perfetto", lambda at, trace, out: [at, "export", "--format", "perfetto", "-o", out, trace],
     False),
)


def asynctrace_side(bench, binary, shape, gt):
    """Record with asynctrace, check, time each analysis; files deleted."""
    tracer = AsyncTrace(bench, "inproc")
    trace = bench.path("scale.trace")
    cmd = tracer.command([binary] + shape, trace)
    rec = timed(cmd)
    must_succeed(cmd, rec)
    res = tracer.result(bench, "scale: asynctrace inproc tokio_ct " + " ".join(shape), rec, trace, gt)
    say("  asynctrace: %s events in %.1f s" % ("{:,}".format(res.events), rec.wall))
    runs = {}
    for name, command, to_stdout in ASYNCTRACE_COMMANDS:
        out = bench.path("scale.out")
        say("  asynctrace " + name)
        runs[name] = measure_median(bench.reps, command(bench.at, trace, out), stdout=out if to_stdout else None,
                                    output=None if to_stdout else out)
        remove(out)
    size = os.path.getsize(trace)
    os.unlink(trace)
    return {"record": rec.wall, "events": res.events, "bytes": size, "runs": runs, "good": res.good}


def check_generated(bench, trace, truth):
    """report --json of a generated trace against what it was built to hold."""
    r = subprocess.run([bench.at, "report", "--json", trace], capture_output=True, text=True)
    if r.returncode != 0:
        die("asynctrace report --json %s failed: %s" % (trace, r.stderr.strip()[-500:]))
    rep = json.loads(r.stdout)
    got = (rep["events"], rep["polls"], len(rep["tasks"]),
           {f["name"]: (f["polls"], f["total_ns"]) for f in rep["functions"]})
    want = (truth["events"], truth["polls"], truth["tasks"],
            {n: (f["polls"], f["total_ns"]) for n, f in truth["functions"].items()})
    if got != want:
        bench.warn("scale: report of a generated trace of %d events differs from its construction" % truth["events"])
    return got == want


def generated(bench, events):
    gen = os.path.join(bench.build, "gen-trace")
    if not os.access(gen, os.X_OK):
        die("%s not found: run `make all`" % gen)
    trace, truth_file = bench.path("gen.trace"), bench.path("gen.truth")
    g = measure([gen, "--events", str(events), "--threads", str(GEN_THREADS), "--truth", "-o", trace],
                stdout=truth_file, output=trace)
    if g.killed:
        die("gen-trace --events %d ran past %.0f s" % (events, TIMEOUT_S))
    with open(truth_file) as f:
        truth = json.load(f)
    os.unlink(truth_file)
    say("  report on %s generated events" % "{:,}".format(truth["events"]))
    r = measure([bench.at, "report", trace])
    good = not r.killed and check_generated(bench, trace, truth)
    os.unlink(trace)
    return {"events": truth["events"], "bytes": g.out_bytes, "generate": g.wall, "report": r, "good": good}


def scale(bench, have_uftrace):
    binary = bench.target("rust/debug", "tokio_ct")
    shape = QUICK_SHAPE if bench.quick else SHAPE
    gt = ground_truth(binary, shape)
    res = {"load": os.getloadavg()[0], "shape": shape,
           "uftrace": uftrace_side(bench, binary, shape, gt) if have_uftrace else None,
           "asynctrace": asynctrace_side(bench, binary, shape, gt),
           "generated": [generated(bench, n) for n in GENERATED]}
    return res


def remove(path):
    """A measured command's output, if it wrote one (a killed one may not have)."""
    if os.path.exists(path):
        os.unlink(path)


def uftrace_rate(res):
    u = res["uftrace"]
    return u["dump"].rate(u["records"]) if u else None


def seconds(m):
    if m.killed:
        return "KILLED after %.0f s (%.1f s)" % (m.wall, m.cpu)
    return "%.1f s (%.1f s)" % (m.wall, m.cpu)


def ratios(run, events, u):
    """asynctrace's rate over uftrace dump's, by wall (and by CPU)."""
    rate, base = run.rate(events), uftrace_rate({"uftrace": u})
    if rate is None or base is None:
        return None, "n/a"
    return rate / base, "%.2gx (%.2gx)" % (rate / base, u["dump"].cpu / u["records"] / (run.cpu / events))


def out_per_event(out_bytes, events, killed=False):
    """Bytes per event, or the whole output when it is a summary (report)."""
    if killed:
        return "n/a"
    if out_bytes < 0.1 * events:
        return "%s bytes in all" % "{:,}".format(out_bytes)
    return "%.1f" % (out_bytes / events)


def recorded_section(res):
    head = ("command", "input", "wall (CPU)", "records or events/s", "ratio to uftrace dump (by CPU)", "peak RSS",
            "output bytes/event", "checks")
    s = Section("Analysis at scale: tokio_ct (debug) %s, recorded by uftrace and by asynctrace"
                % " ".join(res["shape"]), head)
    u, a, base = res["uftrace"], res["asynctrace"], uftrace_rate(res)
    if u:
        m = u["dump"]
        s.row("uftrace dump --chrome", "%s records" % "{:,}".format(u["records"]), seconds(m),
              per_s(base), "1x", mib(m.rss), out_per_event(m.out_bytes, u["records"], m.killed),
              "counts = ground truth" if u["good"] else "CHECKS FAILED (see notes)")
    for name, run in a["runs"].items():
        s.row("asynctrace " + name, "%s events" % "{:,}".format(a["events"]), seconds(run),
              per_s(run.rate(a["events"])), ratios(run, a["events"], u)[1], mib(run.rss),
              out_per_event(run.out_bytes, a["events"], run.killed),
              "counts = ground truth" if a["good"] else "CHECKS FAILED (see notes)")
    if u:
        s.note("uftrace record -P on the %d functions of `asynctrace symbols --all` took %.1f s; its .dat files: "
               "%s records of %d bytes, `uftrace report` counts %s calls (an entry and an exit each)"
               % (u["functions"], u["record"], "{:,}".format(u["records"]), UFTRACE_RECORD,
                  "{:,}".format(u["calls"])))
    s.note("asynctrace record (inproc, default probes) took %.1f s; its trace: %.1f bytes per event"
           % (a["record"], a["bytes"] / a["events"]))
    s.note("records/s of uftrace: its 16-byte records (entries and exits) / wall; events/s of asynctrace: the "
           "trace's events / wall; by CPU: the same with user + system seconds, which a loaded machine moves "
           "less. Peak RSS: the command's own (GNU time's %M: wait4 of a vforked child starts at the bench's size), each in a fresh process; the run of median wall of the section's runs (--reps), the largest peak RSS of them")
    s.note("load average when the section began: %.1f (1 min) on %d CPUs: the machine is shared, walls move "
           "with it. A command still running after %.0f s is killed (BENCH_SCALE_TIMEOUT)"
           % (res["load"], os.cpu_count(), TIMEOUT_S))
    return s


def generated_section(res):
    s = Section("Report's memory on generated traces (gen-trace, %d threads)" % GEN_THREADS,
                ("events", "trace file", "generate", "report wall (CPU)", "events/s", "peak RSS", "checks"))
    for g in res["generated"]:
        r = g["report"]
        s.row("{:,}".format(g["events"]), "%.1f MB" % (g["bytes"] / 1e6), "%.2f s" % g["generate"],
              seconds(r), per_s(r.rate(g["events"])), mib(r.rss) + (" so far" if r.killed else ""),
              "killed: not checked" if r.killed else
              "report = construction" if g["good"] else "REPORT WRONG (see notes)")
    s.note("synthetic tokio-shaped traces (tests/tools/gen_trace.c): each task polled through RawTask::poll > "
           "Harness::poll > 3 async fns > a leaf future, waves of 64 tasks per thread; the report's polls, totals "
           "and tasks are checked against the generator's construction")
    return s


def sections(res):
    return [recorded_section(res), generated_section(res)]


def bars(b, res):
    base = uftrace_rate(res)
    a = res["asynctrace"]
    if base:
        rates = [(name, ratios(run, a["events"], res["uftrace"])[0]) for name, run in a["runs"].items()]
        b.add("analysis at scale (tokio_ct, %.0f M events): report and both exports >= %dx uftrace dump "
              "--chrome's records/s" % (a["events"] / 1e6, RATIO_BAR),
              ", ".join("%s %s" % (n.replace("export --format ", ""), "killed" if r is None else "%.2gx" % r)
                        for n, r in rates),
              all(r is not None and r >= RATIO_BAR for _, r in rates) and a["good"])
    else:
        b.add("analysis at scale: >= %dx uftrace dump --chrome" % RATIO_BAR,
              "uftrace missing" if not res["uftrace"] else "uftrace dump killed", None)
    g = res["generated"]
    small, big = g[0]["report"].rss, g[-1]["report"].rss
    killed = any(x["report"].killed for x in g)
    met = max(small, big) <= RSS_BAR and big <= RSS_GROWTH_BAR * small and all(x["good"] for x in g)
    if killed:
        met = False if max(small, big) > RSS_BAR else None   # a killed run's RSS is a lower bound
    b.add("report's peak RSS <= 64 MiB on generated traces of 1 M and 10 M events, not growing with length",
          "%s at 1 M, %s at 10 M (%.2gx)%s" % (mib(small), mib(big), big / small,
                                                "; killed before the end" if killed else ""), met)
