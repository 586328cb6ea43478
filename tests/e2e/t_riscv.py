"""A riscv64 kernel-style executor (tests/targets/riscv/kernel_exec.c, run
under qemu-user): its symbols carry Rust poll-function names (legacy and v0
manglings), its output is a zCore eBPF probe log with counts known by
construction. Tests of `symbols` on a foreign-architecture ELF and on a
kernel's `nm -C -n` table, and of `import zcore` on the log.

The riscv64 cross gcc and qemu-riscv64 are required: missing, the tests
fail (scripts/install-deps.sh installs them)."""
import collections
import json
import os
import re
import shutil
import subprocess
import time

from harness import *  # noqa: F401,F403

REPO = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
RISCV_MK = os.path.join(REPO, "tests", "targets", "riscv", "riscv.mk")
BUILT = os.path.join(BUILD, "targets", "riscv", "kernel_exec")
ZCORE = os.path.join(REPO, "..", "shared", "data", "zcore-real")
KERNEL_SYM = os.path.join(ZCORE, "zcore-sym-246476bf", "kernel.sym")
CC, QEMU, NM = "riscv64-linux-gnu-gcc", "qemu-riscv64", "riscv64-linux-gnu-nm"
# Kinds kernel_exec's ground truth gives its functions; "function" is no poll function.
POLL_KINDS = {"task", "genfuture", "poll-impl", "async-fn", "async-block"}
SPEED_ROUNDS = 21740  # 46 probe lines a round: 1,000,040 lines

_fixture = []


def need_tools():
    missing = [t for t in (CC, QEMU, NM) if not shutil.which(t)]
    check(not missing, f"missing {', '.join(missing)} (install gcc-riscv64-linux-gnu, binutils-riscv64-linux-gnu, "
                       "qemu-user: scripts/install-deps.sh)")


def kernel_exec():
    """The fixture: the targets Makefile's build, else built here from the same rule."""
    need_tools()
    if os.path.exists(BUILT):
        return BUILT
    if not _fixture:
        out = tmpfile("riscv-targets")
        binary = os.path.join(out, "riscv", "kernel_exec")
        proc = run(["make", "-s", "-f", RISCV_MK, f"OUT={out}", binary], cwd=REPO)
        check(proc.returncode == 0, f"building kernel_exec failed: {proc.stderr}")
        _fixture.append(binary)
    return _fixture[0]


def run_riscv(*args, timeout=120):
    proc = subprocess.run([QEMU, "-L", "/usr/riscv64-linux-gnu", kernel_exec(), *args],
                          capture_output=True, timeout=timeout)
    check(proc.returncode == 0, f"kernel_exec {' '.join(args)}: exit {proc.returncode}: {proc.stderr!r}")
    return proc.stdout


def truth_of(rounds):
    return json.loads(run_riscv("--rounds", str(rounds), "--ground-truth"))


PROBE = re.compile(rb"time-threadID-entry/exit-addr-depth: (\d+)\0 (\d+) (entry|exit) (\d+) (\d+)\r$")
RESOLVED = re.compile(rb"trace point symbol resolved, symbol:(.*) addr: ([0-9a-f]+)\r$")


def parse_log(data):
    """Probe records (ts, pid, kind, addr, depth) and resolved symbols
    {addr: name}, read as a zCore log reader must: records split by NUL."""
    records, resolved = [], {}
    for line in data.split(b"\n"):
        line = line.lstrip(b"\0")
        m = PROBE.match(line)
        if m:
            records.append((int(m[1]), int(m[2]), m[3].decode(), int(m[4]), int(m[5])))
        elif (m := RESOLVED.search(line)):
            resolved[int(m[2], 16)] = m[1].decode()
    return records, resolved


def nm_table(*flags):
    """{address: name} of the fixture's function symbols, as nm prints them."""
    proc = run([NM, *flags, "-n", kernel_exec()])
    check_eq(proc.returncode, 0, f"nm {' '.join(flags)}")
    table = {}
    for line in proc.stdout.splitlines():
        addr, kind, name = line.split(" ", 2)
        if kind in "tT":
            table[int(addr, 16)] = name
    return table


@test_once
def riscv_log_matches_its_ground_truth():
    """The fixture itself: each address's entries and exits equal its
    calls, records nest (LIFO, same depth), timestamps grow, and the
    resolved-symbol lines name every traced function at its nm address."""
    rounds = 5
    truth = truth_of(rounds)
    records, resolved = parse_log(run_riscv("--rounds", str(rounds)))
    check_eq(len(records), truth["probe_lines"], "probe lines")
    by_addr = {int(f["address"], 16): name for name, f in truth["functions"].items()}
    check_eq(resolved, by_addr, "trace point symbol resolved lines vs the ground truth")
    check_eq({a: n for a, n in nm_table("-C").items() if a in by_addr}, by_addr,
             "nm -C names at the traced addresses")
    counts = collections.Counter((kind, addr) for _, _, kind, addr, _ in records)
    for addr, name in by_addr.items():
        want = truth["functions"][name]["calls"]
        check_eq((counts["entry", addr], counts["exit", addr]), (want, want), f"{name} entries, exits")
    stack = []
    for ts, pid, kind, addr, depth in records:
        check_eq(pid, truth["pid"], "pid")
        if kind == "entry":
            check_eq(depth, len(stack), f"entry depth at {ts}")
            stack.append(addr)
        else:
            check(stack and stack[-1] == addr, f"exit of {addr} at {ts} does not close the innermost entry")
            stack.pop()
            check_eq(depth, len(stack), f"exit depth at {ts}")
    check_eq(stack, [], "entries left open")
    check_eq([r[0] for r in records], sorted(r[0] for r in records), "timestamps in order")


@test_once
def riscv_symbols_match_nm():
    """`symbols --format sym` on the riscv64 ELF: exactly the poll
    functions, each `0xADDR NAME` with nm's address and `nm -C`'s name
    (libiberty's demangling, hash and v0 disambiguators dropped, as
    symbols prints it); the plain functions and drop glue are not listed."""
    truth = truth_of(1)
    proc = tracer("symbols", "--format", "sym", kernel_exec())
    check_eq(proc.returncode, 0, f"symbols exit status ({proc.stderr.strip()})")
    listed = [line.split(" ", 1) for line in proc.stdout.splitlines()]
    got = {int(addr, 16): name for addr, name in listed}
    check_eq(len(got), len(listed), "one line per address")
    nm = nm_table("-C")
    want = {int(f["address"], 16): name for name, f in truth["functions"].items() if f["kind"] in POLL_KINDS}
    check_eq(got, want, "symbols --format sym vs the fixture's poll functions")
    check_eq({a: nm.get(a) for a in got}, got, "symbols --format sym vs nm -C")
    # The mangled names are the ones the ELF carries (legacy _ZN...17h<hash>E and v0 _R...).
    mangled = nm_table()
    check(any(mangled[a].startswith("_ZN") for a in got) and any(mangled[a].startswith("_R") for a in got),
          "the fixture has both legacy and v0 poll-function symbols")
    js = tracer("symbols", "--format", "json", kernel_exec())
    check_eq(js.returncode, 0, "symbols --format json exit status")
    doc = json.loads(js.stdout)
    check_eq(doc["machine"], "riscv64", "machine")
    check_eq({int(f["address"], 16): f["mangled"] for f in doc["functions"]},
             {a: mangled[a] for a in got}, "json mangled names vs nm")
    context = {"task": "task", "genfuture": "compiler-generated", "async-fn": "compiler-generated",
               "poll-impl": "user-implemented", "async-block": "anonymous"}
    check_eq({f["name"]: f["context"] for f in doc["functions"]},
             {n: context[f["kind"]] for n, f in truth["functions"].items() if f["kind"] in POLL_KINDS},
             "context classes")


def kernel_sym_poll_names():
    """The poll functions of kernel.sym by an independent, simpler rule: a
    `{{closure}}` last segment (async body or closure: without code or DWARF
    every closure is listed), `<... as core::future::future::Future>::poll`
    (an impl or GenFuture's poll), or a task-table name (none in zCore's
    kernel: its executor's task poll is a closure). Generic arguments do
    not matter for these suffix tests."""
    names = []
    with open(KERNEL_SYM, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 2)
            if len(parts) < 3 or parts[1] not in "tT":
                continue
            name = parts[2]
            if name.endswith("::{{closure}}") or name.endswith(" as core::future::future::Future>::poll"):
                names.append((int(parts[0], 16), name))
    return names


@test_once
def symbols_reads_a_kernel_nm_table():
    """`symbols kernel.sym` (a zCore riscv64 `nm -C -n` table, not an
    ELF): the same `0xADDR NAME` lines as for a binary, for the functions
    the independent rule above finds."""
    check(os.path.exists(KERNEL_SYM), f"{KERNEL_SYM} missing (see {ZCORE}/SOURCES.md)")
    proc = tracer("symbols", "--format", "sym", KERNEL_SYM)
    check_eq(proc.returncode, 0, f"symbols kernel.sym exit status ({proc.stderr.strip()})")
    got = [(int(a, 16), n) for a, n in (line.split(" ", 1) for line in proc.stdout.splitlines())]
    want = kernel_sym_poll_names()
    check(len(want) > 50, f"the independent count found only {len(want)}")
    check_eq(len(got), len(want), "number of poll functions in kernel.sym")
    check_eq(sorted(got), sorted(want), "poll functions of kernel.sym")
    table = tracer("symbols", KERNEL_SYM)
    check_eq(table.returncode, 0, "symbols kernel.sym (table) exit status")
    check_eq(len(table.stdout.splitlines()), len(want) + 1, "table rows (with the header)")


def import_zcore(log, sym, trace):
    start = time.monotonic()
    proc = tracer("import", "zcore", "--sym", sym, log, "-o", trace, timeout=600)
    elapsed = time.monotonic() - start
    check(proc.returncode == 0, f"import zcore failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed


def need_import_zcore():
    proc = tracer("import", "zcore", "--help")
    check(proc.returncode == 0 and proc.stdout.startswith("usage: asynctrace import zcore"),
          f"`import zcore --help` does not work yet: {proc.stderr.strip() or proc.stdout[:80]!r}")


def fixture_sym_file():
    """The fixture's symbol table as `nm -n` prints it (mangled names:
    the importer demangles them)."""
    sym = tmpfile("kernel_exec.nm")
    if not os.path.exists(sym):
        proc = run([NM, "-n", kernel_exec()])
        check_eq(proc.returncode, 0, "nm -n")
        with open(sym, "w") as f:
            f.write(proc.stdout)
    return sym


@test_once
def riscv_import_zcore_poll_counts():
    """The fixture's log through `import zcore` and `report --json`: each
    poll function's polls equal the calls the program's structure makes;
    plain functions (drop glue, helpers), if listed, too."""
    need_import_zcore()
    rounds = 7
    truth = truth_of(rounds)
    log = tmpfile("kernel_exec.log")
    with open(log, "wb") as f:
        f.write(run_riscv("--rounds", str(rounds)))
    trace = tmpfile("kernel_exec.trace")
    import_zcore(log, fixture_sym_file(), trace)
    rows = functions_by_name(report_json(trace))
    for name, f in truth["functions"].items():
        if f["kind"] not in POLL_KINDS and name not in rows:
            continue
        check(name in rows, f"{name} not in the report (functions: {sorted(rows)})")
        check_eq(rows[name]["polls"], f["calls"], f"{name} polls")
    extra = set(rows) - set(truth["functions"])
    check(not extra, f"functions the program does not have: {sorted(extra)}")


@test_once
def riscv_import_zcore_million_lines_speed():
    """Time to import a log of >= 1,000,000 probe lines (printed; no
    timing assertion), and the task poll's count in it."""
    need_import_zcore()
    log = tmpfile("kernel_exec-1M.log")
    start = time.monotonic()
    proc = subprocess.run([QEMU, kernel_exec(), "--rounds", str(SPEED_ROUNDS), "--out", log],
                          capture_output=True, timeout=300)
    made = time.monotonic() - start
    check_eq(proc.returncode, 0, f"kernel_exec --out ({proc.stderr!r})")
    truth = truth_of(SPEED_ROUNDS)
    check(truth["probe_lines"] >= 1_000_000, f"only {truth['probe_lines']} probe lines")
    trace = tmpfile("kernel_exec-1M.trace")
    elapsed = import_zcore(log, fixture_sym_file(), trace)
    size = os.path.getsize(log)
    print(f"     import zcore: {truth['probe_lines']:,} probe lines ({size / 1e6:.1f} MB, made in {made:.2f} s "
          f"under qemu) in {elapsed:.2f} s: {truth['probe_lines'] / elapsed / 1e6:.2f} M lines/s", flush=True)
    rows = functions_by_name(report_json(trace))
    task = "async_task::raw::RawTask<F,T,S>::run"
    check_eq(rows.get(task, {}).get("polls"), truth["functions"][task]["calls"], f"{task} polls")
