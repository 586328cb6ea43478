"""`import zcore` on real zCore kernel probe logs (../shared/data/zcore-real,
read in place; its SOURCES.md gives the ground truth used here): the eBPF
serial console of commit ce75804, dump.py's dumped_data.txt of the same
events, the chatty eBPF form of bec0cf7, and the GDB breakpoint log of
9d5b430. Then the switch-function split, bad input, and mutated logs.
The data missing is a failure, not a skip."""
import collections
import json
import os
import random
import re

from harness import *  # noqa: F401,F403

REPO = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ZCORE = os.path.join(REPO, "..", "shared", "data", "zcore-real")
CE_LOG = os.path.join(ZCORE, "zcore-ebpf-ce75804", "async.log")
CE_DUMP = os.path.join(ZCORE, "zcore-ebpf-ce75804", "dumped_data.txt")
CE_SYM = os.path.join(ZCORE, "derived", "zcore-async-fn.from-ce75804-log.sym")
BEC_LOG = os.path.join(ZCORE, "zcore-ebpf-bec0cf7", "async.log")
GDB_LOG = os.path.join(ZCORE, "zcore-gdb-9d5b430", "async.log")

# SOURCES.md, ce75804: address -> (entries, exits).
CE_TRUTH = {
    0xffffffc0802d90ba: (349, 345), 0xffffffc0802254ae: (30, 30), 0xffffffc08022e044: (27, 27),
    0xffffffc08022e2a4: (27, 27), 0xffffffc08020e6cc: (7, 7), 0xffffffc0802d79b4: (3, 2),
    0xffffffc0802f482e: (2, 1), 0xffffffc08023e332: (1, 1), 0xffffffc0802ebaf2: (1, 1),
    0xffffffc08027285c: (1, 1), 0xffffffc0802eb9fa: (1, 1),
}
CE_NAMES = {
    0xffffffc0802d90ba: "<linux_syscall::Syscall>::syscall::{closure#0}",
    0xffffffc08022e044: "<core::future::from_generator::GenFuture<<linux_object::fs::file::File as "
                        "linux_object::fs::FileLike>::read::{closure#0}> as core::future::future::Future>::poll",
    0xffffffc0802f482e: "<zircon_object::task::thread::ThreadSwitchFuture as core::future::future::Future>::poll",
}
# SOURCES.md, bec0cf7: address -> entries (= exits).
BEC_TRUTH = {
    0xffffffc0802f485c: 83, 0xffffffc0802d79e2: 83, 0xffffffc08022de92: 83, 0xffffffc08022fa66: 83,
    0xffffffc0802728a0: 82, 0xffffffc08022e072: 7, 0xffffffc08022e2d2: 7, 0xffffffc0802ebb20: 1,
    0xffffffc08027288a: 1, 0xffffffc0802eba28: 1,
}
# SOURCES.md, 9d5b430 (GDB): name prefix as logged -> (entries, exits).
GDB_TRUTH = {
    "<executor::task_collection::TaskCollection>::generator::{closure#0}": (168, 168),
    "<zircon_object::task::thread::ThreadSwitchFuture as": (56, 56),
    "<<linux_object::fs::stdio::Stdin as rcore_fs::vfs::INode>::async_poll::SerialFuture": (56, 112),
    "ore::ptr::drop_in_place::<core::future::from_generator::GenFuture<<linux_object::fs::file::File": (56, 112),
    "ore::ptr::drop_in_place::<<<linux_syscall::Syscall>::sys_select": (55, 110),
    "<zcore_drivers::utils::devicetree::Devicetree>::walk_inner": (33, 33),
    "<dtb_walker::walker::Walker>::walk_inner": (14, 14),
    "<alloc::collections::btree::node::Handle<": (5, 10),
    "<str>::trim_matches": (3, 6),
    "<hashbrown::raw::RawTable<": (2, 2),
    "kernel_hal::imp::arch::vm::init_kernel_page_table::{closure#0}": (1, 1),
    "xecutor::runtime::spawn_task::<zircon_object::task::thread::ThreadSwitchFuture>": (1, 2),
}


def need(path):
    check(os.path.exists(path), f"{path} missing (the real zCore data: see {ZCORE}/SOURCES.md)")
    return path


def import_log(*args):
    trace = tmpfile("zcore.trace")
    proc = tracer("import", "zcore", *args, "-o", trace)
    check(proc.returncode == 0, f"import zcore {' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return trace, proc.stderr


def by_address(report):
    rows = {}
    for f in report["functions"]:
        rows[int(f["address"], 16)] = f
    return rows


def summary_number(stderr, what):
    m = re.search(r"(\d+) " + re.escape(what), stderr)
    check(m, f"the summary does not say '{what}': {stderr}")
    return int(m[1])


@test_once
def zcore_ebpf_log_counts():
    """ce75804's serial console: 892 probe events among boot noise; per
    address, polls = entries and unfinished = entries - exits (the log was
    cut by QEMU's termination); the one exit logged under pid -1 after its
    thread was switched out pairs across threads; names come from the
    log's own `trace point symbol resolved` lines."""
    trace, err = import_log(need(CE_LOG))
    check_eq(summary_number(err, "records"), 892, "records")
    check_eq(summary_number(err, "across threads"), 1, "exits paired across threads")
    check_eq(summary_number(err, "exits without an entry"), 0, "orphan exits")
    check("not understood" not in err, f"lines reported as not understood: {err}")
    report = report_json(trace)
    rows = by_address(report)
    check_eq(sorted(rows), sorted(CE_TRUTH), "function addresses")
    for addr, (entries, exits) in CE_TRUTH.items():
        check_eq((rows[addr]["polls"], rows[addr]["unfinished"]), (entries, entries - exits), f"{addr:#x} polls, unfinished")
    for addr, name in CE_NAMES.items():
        check_eq(rows[addr]["name"], name, f"{addr:#x} name")
    check_eq(report["polls"], 449, "polls")
    threads = {t["tid"]: t["name"] for t in report["threads"]}
    check_eq(threads.get(0xffffffff), "executor", "pid -1 is the executor's stream")
    # (1028 has only unfinished polls: report lists threads with finished ones)
    check_eq({t for t in threads if t != 0xffffffff}, {1073}, "pid streams with finished polls")


@test_once
def zcore_dumped_data_equals_its_log():
    """dump.py's dumped_data.txt (hex addresses, `[exit]`, blank lines) and
    the console log it came from import to the same functions, polls and
    durations; with the derived symbol file the names are the same too."""
    a = by_address(report_json(import_log(need(CE_LOG))[0]))
    b = by_address(report_json(import_log(need(CE_DUMP))[0]))
    keys = ("name", "polls", "unfinished", "total_ns", "max_ns")
    check_eq({k: {x: v[x] for x in keys} for k, v in b.items()},
             {k: {x: v[x] for x in keys} for k, v in a.items()}, "dumped_data.txt vs async.log")
    c = by_address(report_json(import_log("--sym", need(CE_SYM), CE_LOG)[0]))
    check_eq({k: v["name"] for k, v in c.items()}, {k: v["name"] for k, v in a.items()}, "names with --sym")


@test_once
def zcore_chatty_log_counts():
    """bec0cf7's chatty form (ANSI colours, FUNCTION_NAME/FUNCTION_ADDR
    placeholders, the address on the next `addr =` line, register dumps):
    862 events, balanced and nested, per-address polls as counted."""
    trace, err = import_log(need(BEC_LOG))
    check_eq(summary_number(err, "records"), 862, "records")
    check_eq(summary_number(err, "left open"), 0, "left open")
    rows = by_address(report_json(trace))
    check_eq({a: r["polls"] for a, r in rows.items()}, BEC_TRUTH, "polls per address")
    check(all(r["unfinished"] == 0 for r in rows.values()), "no poll unfinished")


def gdb_rows(report):
    rows = collections.Counter()
    for f in report["functions"]:
        prefixes = [p for p in GDB_TRUTH if f["name"].startswith(p)]
        check_eq(len(prefixes), 1, f"ground-truth rows for {f['name']}")
        rows[prefixes[0]] += f["polls"]
    return rows


@test_once
def zcore_gdb_log_counts():
    """GDB's log: seconds timestamps, exits at return-site pcs (matched by
    name), doubled exits, exits after their caller's: one poll per entry,
    every extra exit dropped as doubled or late, none orphaned or open."""
    trace, err = import_log(need(GDB_LOG))
    entries = sum(e for e, _ in GDB_TRUTH.values())
    exits = sum(x for _, x in GDB_TRUTH.values())
    check_eq(summary_number(err, "records"), entries + exits, "records")
    check_eq(summary_number(err, "exits without an entry"), 0, "orphan exits")
    check_eq(summary_number(err, "left open"), 0, "left open")
    late = summary_number(err, "exits came after their caller's exit")
    paired = summary_number(err, "polls paired on their thread")
    check_eq(paired + late, entries, "entries paired, or ended by their caller and exited late")
    check_eq(summary_number(err, "doubled exits dropped"), exits - entries, "doubled exits")
    report = report_json(trace)
    check_eq(report["capture"], "import-zcore-gdb", "capture")
    check_eq(dict(gdb_rows(report)), {p: e for p, (e, _) in GDB_TRUTH.items()}, "polls per function")


@test_once
def zcore_gdb_cut_names_repaired_by_sym():
    """The GDB log's names lost leading hex letters (`ore::ptr::...`); a
    symbol file naming the entries' addresses repairs them, exits (which
    carry return-site pcs) included: the polls stay where they were."""
    cut = {}
    with open(need(GDB_LOG), encoding="utf-8") as f:
        for line in f:
            m = re.search(r"\[entry\] (.*)\((\d+)\) depth:", line)
            if m and m[1].startswith(("ore::", "xecutor::")):
                cut[int(m[2])] = ("c" if m[1].startswith("ore::") else "e") + m[1]
    check(len(cut) >= 3, f"cut names found: {len(cut)}")
    sym = tmpfile("gdb.sym")
    with open(sym, "w") as f:
        for addr, name in cut.items():
            f.write(f"{addr:#x} {name}\n")
    trace, err = import_log("--sym", sym, GDB_LOG)
    names = {f["name"]: f["polls"] for f in report_json(trace)["functions"]}
    check(not any(n.startswith(("ore::", "xecutor::")) for n in names), f"cut names left: {sorted(names)}")
    for full in set(cut.values()):
        want = GDB_TRUTH[next(p for p in GDB_TRUTH if full[1:].startswith(p))][0]
        check_eq(names.get(full), want, f"polls of {full[:60]}")
    check(summary_number(err, "records had names the log cut") > 0, "repairs reported")


@test_once
def zcore_switch_fn_splits_threads():
    """--switch-fn ThreadSwitchFuture on bec0cf7 (one hart, tid 1): each
    of its 83 calls becomes a thread holding that call and everything it
    polled; per-function polls do not change."""
    plain = by_address(report_json(import_log(need(BEC_LOG))[0]))
    trace, err = import_log("--switch-fn", "ThreadSwitchFuture", BEC_LOG)
    check_eq(summary_number(err, "calls of ThreadSwitchFuture"), 83, "switch calls")
    report = report_json(trace)
    split = [t for t in report["threads"] if t["name"].startswith("switch #")]
    check_eq(len(split), 83, "threads made by the split")
    check_eq({a: r["polls"] for a, r in by_address(report).items()},
             {a: r["polls"] for a, r in plain.items()}, "polls per address")
    tid = split[0]["tid"]
    chrome = tmpfile("switch.json")
    proc = tracer("export", "--format", "chrome", "--thread", str(tid), "-o", chrome, trace)
    check_eq(proc.returncode, 0, f"export --thread of a split thread ({proc.stderr.strip()})")
    with open(chrome, encoding="utf-8") as f:
        events = [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X" and e.get("tid") == tid]
    check_eq(sum("ThreadSwitchFuture" in e["name"] for e in events), 1, "switch calls on the first split thread")
    check(len(events) > 1, "the first split thread holds what its switch call polled")
    none = tracer("import", "zcore", "--switch-fn", "no_such_function", BEC_LOG, "-o", tmpfile("none.trace"))
    check_eq(none.returncode, 0, "an unknown --switch-fn imports")
    check("no function of that name" in none.stderr, f"and says so: {none.stderr}")


@test_once
def zcore_kernel_traces_work_in_every_command():
    """report, tree and the chrome and perfetto exports on a kernel trace."""
    trace, _ = import_log(need(CE_LOG))
    for cmd in (["report", trace], ["tree", trace], ["report", "--tasks", trace],
                ["export", "--format", "chrome", "-o", tmpfile("k.json"), trace],
                ["export", "--format", "perfetto", "-o", tmpfile("k.pftrace"), trace]):
        proc = tracer(*cmd)
        check_eq(proc.returncode, 0, f"{' '.join(cmd[:3])} on a kernel trace ({proc.stderr.strip()})")
    tree = tracer("tree", trace).stdout
    check("<linux_syscall::Syscall>::syscall::{closure#0}" in tree, "the syscall closure in the tree")


PROBE_LINES = [
    b"time-threadID-entry/exit-addr-depth: 100\0 7 entry 4096 0\r\n",
    b"\0time-threadID-entry/exit-addr-depth: 200\0 7 entry 8192 1\r\n",
    b"\0time-threadID-entry/exit-addr-depth: 300\0 7 exit 8192 1\r\n",
    b"\0time-threadID-entry/exit-addr-depth: 400\0 7 exit 4096 0\r\n",
]


@test_once
def zcore_malformed_lines_named_by_number():
    """A probe line that does not parse is skipped and named by its line
    number; the rest import. Other console lines are no error."""
    log = tmpfile("bad-lines.log")
    lines = [b"[ 1.0 WARN ] boot noise\r\n"] + PROBE_LINES[:2] + \
        [b"time-threadID-entry/exit-addr-depth: 250 7 entr 8192 1\r\n"] + PROBE_LINES[2:]
    with open(log, "wb") as f:
        f.write(b"".join(lines))
    proc = tracer("import", "zcore", log, "-o", tmpfile("bad-lines.trace"))
    check_eq(proc.returncode, 0, f"import with one bad line ({proc.stderr.strip()})")
    check("1 line not understood and skipped (line 4)" in proc.stderr, f"the bad line named: {proc.stderr}")
    check_eq(summary_number(proc.stderr, "records"), 4, "records")


@test_once
def zcore_bad_input_one_line():
    """Missing, directory, empty, binary, and no-probe inputs; a missing
    symbol file; no -o: one line each, non-zero exit."""
    empty, noise, binary = tmpfile("empty.log"), tmpfile("noise.log"), tmpfile("binary.log")
    open(empty, "wb").close()
    with open(noise, "wb") as f:
        f.write(b"[ 0.1 INFO ] nothing to see\r\n" * 50)
    with open(binary, "wb") as f:
        f.write(bytes(random.Random(7).randrange(256) for _ in range(4096)))
    out = tmpfile("bad.trace")
    cases = [
        (["/nonexistent/async.log", "-o", out], "No such file"),
        ([ZCORE, "-o", out], "directory"),
        ([empty, "-o", out], "no probe records"),
        ([noise, "-o", out], "no probe records"),
        ([binary, "-o", out], "no probe records"),
        (["--sym", "/nonexistent.sym", need(CE_LOG), "-o", out], "symbol file"),
        ([CE_LOG], "no output"),
        (["-o", out], "no LOG"),
        (["--machine", "vax", CE_LOG, "-o", out], "unknown machine"),
    ]
    for args, words in cases:
        proc = tracer("import", "zcore", *args)
        check(proc.returncode != 0, f"import zcore {args}: exit 0")
        line = one_error_line(proc, f"import zcore {args}")
        check(words in line, f"import zcore {args}: '{words}' not in {line!r}")


def mutate(data, rng):
    data = bytearray(data)
    for _ in range(rng.randrange(1, 6)):
        op = rng.randrange(6)
        at = rng.randrange(len(data)) if data else 0
        if op == 0 and data:
            data[at] = rng.randrange(256)
        elif op == 1:
            del data[at:at + rng.randrange(1, 64)]
        elif op == 2:
            data[at:at] = rng.choice([b"\0", b"\x1b[", b"\r", b"\n", b"(", b")", b"depth:", b"[exit ]",
                                      b"18446744073709551615", b"99999999999999999999999", b" addr: "])
        elif op == 3:
            data = data[:at]
        elif op == 4 and data:
            end = min(len(data), at + rng.randrange(1, 400))
            data[at:at] = data[at:end]
        else:
            data[at:at] = b"." * rng.randrange(1, 300)
    return bytes(data)


@test_once
def zcore_mutated_logs_never_crash():
    """300 mutated pieces of the three real forms: every run ends by exit
    (no signal), a failing one with exactly one line."""
    pieces = []
    for path, start in ((CE_LOG, 150_000), (BEC_LOG, 60_000), (GDB_LOG, 0)):
        with open(need(path), "rb") as f:
            f.seek(start)
            pieces.append(f.read(24_000))
    rng = random.Random(1729)
    log, out = tmpfile("mutated.log"), tmpfile("mutated.trace")
    failures = 0
    for i in range(300):
        with open(log, "wb") as f:
            f.write(mutate(pieces[i % len(pieces)], rng))
        args = ["--switch-fn", "poll"] if i % 5 == 0 else []
        proc = tracer("import", "zcore", *args, log, "-o", out)
        check(proc.returncode in (0, 1), f"mutation {i}: exit {proc.returncode} ({proc.stderr[-300:]!r})")
        if proc.returncode:
            failures += 1
            one_error_line(proc, f"mutation {i}")
        else:
            check_eq(tracer("report", out).returncode, 0, f"report on mutation {i}")
    print(f"     mutated zCore logs: 300 runs, {failures} refused with one line", flush=True)
