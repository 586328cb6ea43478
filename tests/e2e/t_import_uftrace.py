"""`import uftrace`: recordings made here by `uftrace record` of our Rust
targets (dynamic patching, -P: they are not built with -pg) and of a small
C program built with -pg, imported and compared with uftrace's own `report`
call counts, function by function (by address: uftrace's names are the
.sym file's mangled ones, ours demangled). Then mutated recordings: every
fatal error is one line, nothing crashes.

uftrace is required: missing, the tests fail (scripts/install-deps.sh)."""
import json
import os
import random
import re
import shutil
import subprocess

from harness import *  # noqa: F401,F403

UFTRACE = shutil.which("uftrace")

# A -pg C program: two threads, nested calls, libc calls through the PLT.
C_SOURCE = r"""
#include <pthread.h>
#include <stdio.h>
static int leaf(int x) { return x * 2; }
static int mid(int x) { int s = 0; for (int i = 0; i < x; i++) s += leaf(i); return s; }
static void *worker(void *p) { (void)p; mid(3); return NULL; }
int main(void)
{
	pthread_t t;
	pthread_create(&t, NULL, worker, NULL);
	mid(5);
	pthread_join(t, NULL);
	printf("%d\n", mid(2));
	return 0;
}
"""


def need_uftrace():
    check(UFTRACE, "uftrace is not installed (apt-get install uftrace: scripts/install-deps.sh)")


def uftrace_record(name, binary, *options):
    """A fresh uftrace.data directory of `binary`, recorded with options."""
    need_uftrace()
    data = tmpfile(f"{name}.uftrace.data")
    shutil.rmtree(data, ignore_errors=True)
    proc = run([UFTRACE, "record", "-d", data, *options, binary], timeout=60)
    check(proc.returncode == 0, f"uftrace record {name} failed ({proc.returncode}): {proc.stderr[-400:]}")
    return data


def uftrace_calls(data):
    """uftrace report's Calls column by function, mangled as in the .sym
    file; sched events (linux:schedule) are no functions."""
    proc = run([UFTRACE, "report", "-d", data, "-f", "call", "--demangle=no"], timeout=60)
    check(proc.returncode == 0, f"uftrace report failed: {proc.stderr[-400:]}")
    calls = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"\s*(\d+)\s+(\S.*)$", line)
        if m and not m.group(2).startswith("linux:"):
            calls[m.group(2)] = calls.get(m.group(2), 0) + int(m.group(1))
    check(calls, f"uftrace report lists no functions: {proc.stdout[:400]!r}")
    return calls


def demangled(names):
    """c++filt's names (libiberty's Rust demangler, as ours), with legacy
    names' ::h<hash> and v0 names' crate disambiguators dropped as we
    drop them."""
    proc = run(["c++filt"], input="\n".join(names) + "\n")
    check(proc.returncode == 0, f"c++filt failed: {proc.stderr}")
    out = [re.sub(r"\[[0-9a-f]+\]", "", re.sub(r"::h[0-9a-f]{16}$", "", line))
           for line in proc.stdout.splitlines()]
    check_eq(len(out), len(names), "c++filt output lines")
    return dict(zip(names, out))


def import_and_report(data, name):
    trace = tmpfile(f"{name}.trace")
    proc = tracer("import", "uftrace", data, "-o", trace)
    check(proc.returncode == 0, f"import uftrace {name} failed ({proc.returncode}): {proc.stderr.strip()}")
    return report_json(trace), proc


def compare_calls(data, name):
    """Every function uftrace reports: our polls equal its calls, by name
    (functions of one name summed on both sides, as both reports do); and
    we have no function it does not count."""
    calls = uftrace_calls(data)
    names = demangled(sorted(calls))
    want = {}
    for fn, n in calls.items():
        want[names[fn]] = want.get(names[fn], 0) + n
    report, _ = import_and_report(data, name)
    got = {fn: row["polls"] for fn, row in functions_by_name(report).items()}
    for fn in sorted(set(want) | set(got)):
        check_eq(got.get(fn, 0), want.get(fn, 0), f"{name}: calls of {fn}")
    check_eq(report["lost"], 0, f"{name}: lost events")
    return report, want


@test_once
def uftrace_import_matches_report_rust_polls():
    """tokio_mt with every ::poll patched: three threads, worker names from
    perf COMM records; per-function counts equal uftrace report's."""
    binary = os.path.join(RUST, "tokio_mt")
    data = uftrace_record("tokio_mt", binary, "-P", "::poll$")
    report, want = compare_calls(data, "tokio_mt")
    check(len(want) >= 8, f"tokio_mt: only {len(want)} functions patched: {sorted(want)}")
    names = {f["name"] for f in report["functions"]}
    check(any(n.startswith("<targets::YieldNow as core::future::future::Future>::poll") for n in names),
          f"tokio_mt: no demangled YieldNow poll among {sorted(names)[:6]}")
    threads = {t["name"] for t in report["threads"]}
    check(any("tokio-runtime-w" in t for t in threads), f"tokio_mt: no worker thread named: {threads}")


@test_once
def uftrace_import_matches_report_rust_everything():
    """join_tokio with every function patched (-P .), PLT calls too: some
    thousand functions, tens of thousands of calls, nested deep."""
    binary = os.path.join(RUST, "join_tokio")
    data = uftrace_record("join_tokio", binary, "-P", ".")
    _, want = compare_calls(data, "join_tokio")
    check(len(want) > 500 and sum(want.values()) > 10000,
          f"join_tokio: {len(want)} functions, {sum(want.values())} calls: want a full recording")


def c_program():
    source, binary = tmpfile("uftrace_c.c"), tmpfile("uftrace_c")
    if not os.path.exists(binary):
        with open(source, "w") as f:
            f.write(C_SOURCE)
        proc = run(["cc", "-pg", "-O0", "-pthread", "-o", binary, source])
        check(proc.returncode == 0, f"building the -pg C program failed: {proc.stderr}")
    return binary


@test_once
def uftrace_import_matches_report_c_pg():
    """A -pg C program (mcount: addresses inside the functions) with a
    trigger writing EVENT records with data (read=proc/statm)."""
    binary = c_program()
    data = uftrace_record("c_pg", binary, "-T", "mid@read=proc/statm")
    _, want = compare_calls(data, "c_pg")
    check_eq((want.get("leaf"), want.get("mid"), want.get("main")), (10, 3, 1), "c_pg: uftrace's own counts")


def mutated(data, name, change):
    """Imports a copy of data changed by change(copy); stderr decoded
    leniently (a damaged file may put any byte into a message)."""
    copy = tmpfile(f"mutated-{name}")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(data, copy)
    change(copy)
    proc = subprocess.run([TRACER, "import", "uftrace", copy, "-o", tmpfile(f"mutated-{name}.trace")],
                          capture_output=True, timeout=60)
    proc.stdout = proc.stdout.decode(errors="replace")
    proc.stderr = proc.stderr.decode(errors="replace")
    return copy, proc


def dat_files(d):
    return sorted(os.path.join(d, n) for n in os.listdir(d) if re.fullmatch(r"\d+\.dat", n))


def edit(path, fn):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data = fn(data)
    with open(path, "wb") as f:
        f.write(data)


def remove(*patterns):
    def change(d):
        for n in os.listdir(d):
            if any(re.fullmatch(p, n) for p in patterns):
                os.unlink(os.path.join(d, n))
    return change


def fatal(data, name, change, want):
    path, proc = mutated(data, name, change)
    line = one_error_line(proc, name)
    check(re.search(want, line), f"{name}: error line {line!r} does not say {want!r}")


@test_once
def uftrace_import_bad_input():
    binary = c_program()
    data = uftrace_record("c_bad", binary)
    big = dat_files(data)[0]
    tid = os.path.basename(big)
    fatal(data, "truncated", lambda d: edit(os.path.join(d, tid), lambda b: b[:-5]),
          rf"{tid}: truncated at record \d+ \(offset \d+: 11 of 16 bytes\)")
    fatal(data, "magic", lambda d: edit(os.path.join(d, tid), lambda b: b[:24] + bytes([b[24] & ~0x38]) + b[25:]),
          rf"{tid}: record 1 \(offset 16\): bad magic 0, want 5")
    fatal(data, "no-info", remove("info"), r"/info: No such file")
    fatal(data, "info-magic", lambda d: edit(os.path.join(d, "info"), lambda b: b"X" + b[1:]), r"/info: not uftrace")
    fatal(data, "info-cut", lambda d: edit(os.path.join(d, "info"), lambda b: b[:20]), r"/info: truncated header")
    fatal(data, "no-task", remove("task.txt"), r"task.txt: No such file")
    fatal(data, "no-map", remove(r"sid-.*\.map"), r"sid-[0-9a-f]+\.map: No such file")
    fatal(data, "no-dat", remove(r"\d+\.dat"), r"no function entry or exit records")
    proc = tracer("import", "uftrace", tmpfile("no-such.data"), "-o", tmpfile("x.trace"))
    check(re.search(r"no-such.data: No such file", one_error_line(proc, "missing dir")), proc.stderr)
    proc = tracer("import", "uftrace", data)
    check_eq(proc.returncode, 2, "no -o: usage exit status")
    _, proc = mutated(data, "no-sym", remove(r".*\.sym"))
    check(proc.returncode == 0 and "at addresses no map or symbol covers" in proc.stderr,
          f"no .sym: {proc.returncode} {proc.stderr}")
    # A LOST record (time 0, addr = how many), as libmcount writes at a new buffer
    lost = (0).to_bytes(8, "little") + (2 | 5 << 3 | 42 << 16).to_bytes(8, "little")
    _, proc = mutated(data, "lost", lambda d: edit(os.path.join(d, tid), lambda b: lost + b))
    check(proc.returncode == 0 and "42 events lost by uftrace (1 LOST record)" in proc.stderr,
          f"LOST: {proc.returncode} {proc.stderr}")


@test_once
def uftrace_import_random_damage_never_crashes():
    """Bytes flipped anywhere in the recording: imported or refused with
    one line, never a signal."""
    binary = c_program()
    data = uftrace_record("c_fuzz", binary)
    files = [n for n in sorted(os.listdir(data)) if os.path.getsize(os.path.join(data, n)) and
             (n.endswith((".dat", ".map", ".txt")) or n in ("info", "uftrace_c.sym")) and not n.startswith("perf")]
    rng = random.Random(1234)
    for i in range(60):
        victim = rng.choice(files)

        def flip(b):
            for _ in range(rng.randint(1, 6)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            return b[:rng.randrange(len(b) + 1)] if rng.random() < 0.3 else b
        _, proc = mutated(data, f"fuzz{i}", lambda d: edit(os.path.join(d, victim), flip))
        what = f"flip #{i} in {victim}"
        check(proc.returncode >= 0, f"{what}: killed by signal {-proc.returncode}: {proc.stderr[-300:]}")
        check(proc.returncode in (0, 1), f"{what}: exit {proc.returncode}")
        if proc.returncode:
            one_error_line(proc, what)


@test_once
def uftrace_import_args_refused():
    binary = c_program()
    data = uftrace_record("c_args", binary, "-A", "mid@arg1")
    proc = tracer("import", "uftrace", data, "-o", tmpfile("args.trace"))
    check("carries arguments or a return value" in one_error_line(proc, "args"), proc.stderr)
    proc = tracer("import", "uftrace", "--help")
    check(proc.returncode == 0 and proc.stdout.startswith("usage: asynctrace import uftrace"), proc.stdout[:80])
