#!/usr/bin/env python3
"""The end-to-end tests' harness: registration (once per capture backend),
checks, running the tracer and the targets. run.py loads every test module
(run.py itself and tests/e2e/t_*.py) and calls main()."""
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

BUILD = os.environ.get("ASYNCTRACE_BUILD") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
TRACER = os.path.join(BUILD, "asynctrace")
RUST = os.path.join(BUILD, "targets", "rust", "debug")
RUST_RELEASE = os.path.join(BUILD, "targets", "rust", "release")
C_TARGETS = os.path.join(BUILD, "targets", "c")

REGISTRY = "/usr/share/cargo/registry/"
# The Rust targets' sources, as their DWARF names them (the build's absolute path).
SOURCES = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets", "rust",
                                        "src", "bin"))  # where Debian's crates (and their macros) live

TESTS = []
BACKENDS = ("inproc", "bpf")
BACKEND = None  # the capture backend of the test running now; None: backend-independent
WORKDIR = None  # the run's scratch directory


def test(fn):
    """A recording test: runs once per capture backend, with the same truth."""
    for backend in BACKENDS:
        TESTS.append((f"{fn.__name__}[{backend}]", fn, backend))
    return fn


def test_once(fn):
    """A test of one backend (it passes --backend itself) or of no recording."""
    TESTS.append((fn.__name__, fn, None))
    return fn


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def check_eq(got, want, what):
    if got != want:
        raise Failure(f"{what}: got {got!r}, want {want!r}")


def need_root():
    check(os.geteuid() == 0, "needs root for BPF (CI runs as root): run `sudo make test`")


def run(cmd, timeout=120, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def tracer(*args, timeout=120):
    return run([TRACER, *args], timeout=timeout)


def tmpfile(name):
    return os.path.join(WORKDIR, name)


def one_error_line(proc, what):
    """A failure: non-zero exit and exactly one line on stderr, ours."""
    check(proc.returncode != 0, f"{what}: exit status 0, want non-zero")
    lines = proc.stderr.strip().splitlines()
    check(len(lines) == 1, f"{what}: want one stderr line, got {len(lines)}: {proc.stderr!r}")
    check(lines[0].startswith("asynctrace: "), f"{what}: stderr line is not ours: {lines[0]!r}")
    return lines[0]


def ground_truth(binary, *args):
    proc = run([binary, *args, "--ground-truth"])
    check(proc.returncode == 0, f"{binary} --ground-truth failed: {proc.stderr}")
    return json.loads(proc.stdout)


def backend():
    """The capture backend of the test running now (None: backend-independent)."""
    return BACKEND


def backend_args():
    return ("--backend", BACKEND) if BACKEND else ()


def record(binary, *args, out=None, extra=()):
    """Records `binary args` with the test's backend; returns (trace path, completed process)."""
    need_root()
    trace = out or tmpfile(f"{os.path.basename(binary)}-{BACKEND}.trace")
    proc = tracer("record", "-q", "-o", trace, *backend_args(), *extra, "--", binary, *args)
    return trace, proc


def as_nobody(*cmd):
    """Runs cmd as user nobody, with no capabilities at all."""
    need_root()
    return run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all", "--", *cmd])


def nobody_copies(name, *files):
    """A scratch directory nobody owns with copies of the tracer, its agent
    and files: where nobody may read them, wherever the build directory is."""
    outdir = tmpfile(name)
    os.makedirs(outdir, exist_ok=True)
    for path in (TRACER, os.path.join(BUILD, "libasynctrace-agent.so"), *files):
        shutil.copy2(path, outdir)
    os.chown(outdir, pwd.getpwnam("nobody").pw_uid, -1)
    return outdir


def report_json(trace):
    proc = tracer("report", "--json", trace)
    check(proc.returncode == 0, f"report failed: {proc.stderr}")
    return json.loads(proc.stdout)


def functions_by_name(report):
    rows = {}
    for f in report["functions"]:
        row = rows.setdefault(f["name"], {"polls": 0, "ready": 0, "pending": 0, "unwound": 0, "max_ns": 0})
        for key in ("polls", "ready", "pending", "unwound"):
            row[key] += f[key]
        row["max_ns"] = max(row["max_ns"], f["max_ns"])
    return rows


COUNT_KEYS = ("polls", "ready", "pending", "unwound")


def compare_with_truth(report, truth, keys=COUNT_KEYS):
    """Every truth function must state every key compared: a missing
    expectation is a failure, not a pass."""
    rows = functions_by_name(report)
    check_eq(report["lost"], 0, "lost events")
    check(truth["functions"], "the ground truth lists no functions")
    for name, want in truth["functions"].items():
        missing = [k for k in keys if k not in want]
        check(not missing, f"ground truth of {name} lacks {missing}")
        if want["polls"] == 0 and name not in rows:
            continue  # never polled: the report lists only polled functions
        check(name in rows, f"{name} not in the report (functions: {sorted(rows)[:8]}...)")
        for key in keys:
            check_eq(rows[name][key], want[key], f"{name} {key}")


def exact_counts(binary_name, *args):
    binary = os.path.join(RUST, binary_name)
    truth = ground_truth(binary, *args)
    untraced = run([binary, *args])
    trace, proc = record(binary, *args)
    check_eq(proc.returncode, untraced.returncode, "exit status traced vs untraced")
    check_eq(proc.stdout, untraced.stdout, "stdout traced vs untraced")
    check_eq(proc.stdout, truth["stdout"], "stdout vs the ground truth")
    check_eq(proc.returncode, truth["exit_status"], "exit status vs the ground truth")
    compare_with_truth(report_json(trace), truth)
    return trace


def main():
    global WORKDIR, BACKEND
    # NAME runs the tests whose name contains NAME; -NAME leaves them out.
    selected = [a for a in sys.argv[1:] if not a.startswith("-")]
    excluded = [a[1:] for a in sys.argv[1:] if a.startswith("-")]
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="asynctrace-e2e-") as WORKDIR:
        os.chmod(WORKDIR, 0o755)  # unprivileged runs read targets' traces here
        os.environ["XDG_CACHE_HOME"] = os.path.join(WORKDIR, "cache")  # record's analysis cache, ours alone
        for name, fn, backend in TESTS:
            if (selected and not any(s in name for s in selected)) or any(x in name for x in excluded):
                continue
            BACKEND = backend
            start = time.time()
            try:
                fn()
                passed += 1
                print(f"ok   e2e: {name} ({time.time() - start:.1f}s)", flush=True)
            except Failure as e:
                failed += 1
                print(f"FAIL e2e: {name}: {e}", flush=True)
            except Exception:
                failed += 1
                print(f"FAIL e2e: {name}: crashed:\n{traceback.format_exc()}", flush=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
