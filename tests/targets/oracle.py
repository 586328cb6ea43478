#!/usr/bin/env python3
"""Independent check of a target's --ground-truth with tracefs uprobe events (root).

    oracle.py BINARY [ARGS...]

Runs `BINARY ARGS --ground-truth`, then runs `BINARY ARGS` (from a private copy,
so no other process trips the probes) with kernel uprobe events on
  * the entry of every ground-truth function (counts polls), and
  * every exit of it: `ret`, or a `jmp` out of it (a tail call), fetching the
    Poll discriminant at `ret`s where DWARF says the return type keeps it.
No uretprobes: they make Rust panics abort; entry and `ret` uprobes do not.
unwound = polls - returns. Prints one line per function; exits 1 on a mismatch
(counts, stdout or exit status). Functions without a symbol (inlined in
release builds) are skipped; without DWARF types (release builds, debug = 1)
returns are not classified: only polls, unwinds and durations are checked.
Ground truths with a "tasks" list (the task-level targets) are also checked for task
instances, wakes, call tree, drops and await points: see oracle_tasks.py.
(bpftrace 0.17 cannot do this: Debian's build refuses uprobes that are not at
a symbol's start.)
"""
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_tasks  # noqa: E402

TRACEFS = "/sys/kernel/tracing"


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def all_symbols(binary):
    """demangled name -> [(address, size), ...] of every function symbol."""
    seen = {}
    for line in run("nm", "-S", "--defined-only", "--demangle", binary).splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[2] in "tTwW":
            seen.setdefault(parts[3], []).append((int(parts[0], 16), int(parts[1], 16)))
    return seen


def symbols(binary):
    """demangled name -> (address, size), for names that occur once."""
    return {n: v[0] for n, v in all_symbols(binary).items() if len(v) == 1}


def exit_sites(binary, addr, size):
    """(address, is_ret) of each instruction that leaves the function: `ret`,
    or a direct `jmp` to outside it (a tail call)."""
    out = run("objdump", "-d", "--no-show-raw-insn", f"--start-address={addr}",
              f"--stop-address={addr + size}", binary)
    sites = []
    for m in re.finditer(r"^\s*([0-9a-f]+):\s+(ret|jmp)\w*\s*([0-9a-f]*)", out, re.M):
        at, op, target = int(m.group(1), 16), m.group(2), m.group(3)
        if op == "ret":
            sites.append((at, True))
        elif target and not addr <= int(target, 16) < addr + size:
            sites.append((at, False))
    return sites


def ret_sites(binary, addr, size):
    return [a for a, is_ret in exit_sites(binary, addr, size) if is_ret]


def poll_layout(binary, addr):
    """(byte_size, discr_offset, discr_size, pending_value) of the fn's return type, or None."""
    sub = run("llvm-dwarfdump", f"--lookup={addr:#x}", binary)
    m = re.search(r"DW_TAG_subprogram.*?DW_AT_type\s+\((0x[0-9a-f]+) \"core::task::poll::Poll<", sub, re.S)
    if not m:
        return None
    ty = run("llvm-dwarfdump", f"--debug-info={m.group(1)}", "-c", binary)
    size = int(re.search(r"DW_AT_byte_size\s+\((0x[0-9a-f]+)\)", ty).group(1), 16)
    discr = re.search(r"DW_AT_artificial", ty)
    off = re.search(r"DW_TAG_variant_part.*?DW_AT_data_member_location\s+\((0x[0-9a-f]+)\)", ty, re.S)
    dty = re.search(r"DW_TAG_variant_part.*?DW_AT_type\s+\(0x[0-9a-f]+ \"(u8|u16|u32|u64)\"\)", ty, re.S)
    pend = re.search(r"DW_AT_discr_value\s+\((0x[0-9a-f]+)\)\s+\S+:\s+DW_TAG_member\s+DW_AT_name\s+\(\"Pending\"\)", ty)
    if not (discr and off and dty and pend):
        return None
    bits = {"u8": 8, "u16": 16, "u32": 32, "u64": 64}[dty.group(1)]
    return size, int(off.group(1), 16), bits, int(pend.group(1), 16)


@functools.lru_cache(maxsize=None)
def load_segments(binary):
    segs = []
    for line in run("readelf", "-lW", binary).splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            segs.append((int(f[1], 16), int(f[2], 16), int(f[4], 16)))
    return segs


def file_offset(binary, addr):
    """Uprobe offsets are file offsets: map a virtual address through PT_LOAD."""
    for off, vaddr, filesz in load_segments(binary):
        if vaddr <= addr < vaddr + filesz:
            return addr - vaddr + off
    raise SystemExit(f"{addr:#x} is in no PT_LOAD segment")


def fetcharg(layout):
    """tracefs fetch argument reading the Poll discriminant at a `ret`."""
    size, off, bits, _ = layout
    if size > 16:  # returned through the hidden pointer, which comes back in rax
        return f"+{off}(%ax):u{bits}"
    return f"%{'ax' if off < 8 else 'dx'}:u{bits}"


def write(path, text, append=False):
    """One write(2) to a tracefs file (O_APPEND adds a probe, O_TRUNC would clear all)."""
    fd = os.open(os.path.join(TRACEFS, path), os.O_WRONLY | (os.O_APPEND if append else os.O_TRUNC))
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


# With options/record-tgid, each line carries the thread group id after the tid.
EVENT = re.compile(r"^\s*(.*?)-(\d+)\s+\(\s*(\d+|-+)\)\s+\[\d+\][^:]*?\s([\d.]+): (\w+): \([^)]*\)(.*)$", re.M)
FIELD = re.compile(r"(\w+)=(\"[^\"]*\"|\S+)")


def parse_field(v):
    return v.strip('"') if v.startswith('"') else int(v, 0)


def trace(binary, args, probes):
    """Runs the binary with the probes [(event name, address, fetch args)];
    returns (completed process, [(tid, comm, seconds, event, {field: value})])
    in time order. Only the process itself counts: uprobes fire in every
    process that runs the file, so events of its children (fork, or an exec
    of the same binary) are dropped by thread group id."""
    group = f"oracle{os.getpid()}"
    defs = [f"p:{group}/{name} {binary}:{file_offset(binary, addr):#x}{' ' + fetch if fetch else ''}"
            for name, addr, fetch in probes]
    inst = f"instances/{group}"
    try:
        for d in defs:
            write("uprobe_events", d, append=True)
        os.mkdir(os.path.join(TRACEFS, inst))
        write(f"{inst}/buffer_size_kb", "16384")
        write(f"{inst}/trace_clock", "mono")  # one clock for all CPUs
        write(f"{inst}/options/record-tgid", "1")
        write(f"{inst}/events/{group}/enable", "1")
        child = subprocess.Popen([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = child.communicate()
        proc = subprocess.CompletedProcess(child.args, child.returncode, out, err)
        write(f"{inst}/events/{group}/enable", "0")
        with open(os.path.join(TRACEFS, inst, "trace")) as f:
            text = f.read()
    finally:
        if os.path.isdir(os.path.join(TRACEFS, inst)):
            os.rmdir(os.path.join(TRACEFS, inst))
        for d in defs:
            try:
                write("uprobe_events", "-:" + d.split()[0][2:], append=True)
            except OSError:
                pass  # never defined (an earlier definition failed)
    matches = list(EVENT.finditer(text))
    unknown = sum(1 for m in matches if m.group(3).startswith("-"))
    if unknown:  # the kernel's tid -> tgid cache missed a thread: cannot tell whose events these are
        raise SystemExit(f"oracle: {unknown} events without a thread group id")
    events = [(int(m.group(2)), m.group(1).strip(), float(m.group(4)), m.group(5),
               {k: parse_field(v) for k, v in FIELD.findall(m.group(6))})
              for m in matches if int(m.group(3)) == child.pid]
    return proc, events


def check_functions(plan, events):
    """Polls, Ready/Pending/unwound (and first_poll_min_ns) per function."""
    hits, open_polls, durations = {}, {}, {}
    for tid, _, ts, name, fields in events:
        m = re.fullmatch(r"(e|r)(\d+)(?:_\d+)?", name)
        if not m:
            continue
        kind, i = m.groups()
        key = (kind + i, fields.get("d"))
        hits[key] = hits.get(key, 0) + 1
        stack = open_polls.setdefault((tid, i), [])  # entry times of this fn's active polls
        if kind == "e":
            stack.append(ts)
        elif stack:
            durations.setdefault(f"e{i}", []).append(int((ts - stack.pop()) * 1e9))
    ok = True
    for i, name, want, layout in plan:
        got = {"polls": sum(n for (k, _), n in hits.items() if k == f"e{i}")}
        keys = ["polls"]
        if layout:
            pend = layout[3]
            got["pending"] = hits.get((f"r{i}", pend), 0)
            got["ready"] = sum(n for (k, d), n in hits.items() if k == f"r{i}" and d != pend)
            got["unwound"] = got["polls"] - got["pending"] - got["ready"]
            keys += ["ready", "pending", "unwound"]
        else:  # no types: returns are not classified, but polls - returns still counts unwinds
            got["unwound"] = got["polls"] - sum(n for (k, _), n in hits.items() if k == f"r{i}")
            keys.append("unwound")
        if "first_poll_min_ns" in want:  # each task's first poll must last that long
            long_polls = [d for d in durations.get(f"e{i}", []) if d >= want["first_poll_min_ns"]]
            got["first_poll_min_ns"] = want["first_poll_min_ns"] if len(long_polls) >= want["ready"] else 0
            keys.append("first_poll_min_ns")
        good = all(got[k] == want[k] for k in keys)
        ok &= good
        print(f"{'ok  ' if good else 'FAIL'}  {name}: {got}" + ("" if good else f" want {want}"))
    return ok


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    tmp = tempfile.mkdtemp(prefix="oracle.")
    try:
        binary = os.path.join(tmp, os.path.basename(sys.argv[1]))
        shutil.copy2(sys.argv[1], binary)
        args = sys.argv[2:]
        truth = json.loads(run(binary, *args, "--ground-truth"))
        syms = symbols(binary)
        tasks = oracle_tasks.Checker(binary, truth, all_symbols(binary), exit_sites) if isinstance(truth.get("tasks"), list) else None
        plan, probes = [], []
        for i, (name, want) in enumerate(truth["functions"].items()):
            if name not in syms:
                print(f"skip  {name}: no symbol (inlined?)")
                continue
            addr, size = syms[name]
            layout = poll_layout(binary, addr)
            plan.append((i, name, want, layout))
            probes.append((f"e{i}", addr, tasks.entry_fetch(name, layout) if tasks else ""))
            for j, r in enumerate(ret_sites(binary, addr, size)):
                probes.append((f"r{i}_{j}", r, f"d={fetcharg(layout)}" if layout else ""))
        if tasks:
            probes += tasks.probes(plan)
        proc, events = trace(binary, args, probes)
    finally:
        shutil.rmtree(tmp)
    ok = proc.stdout == truth["stdout"] and proc.returncode == truth["exit_status"]
    print(f"{'ok  ' if ok else 'FAIL'}  exit status {proc.returncode}, stdout {proc.stdout!r}")
    ok &= check_functions(plan, events)
    if tasks:
        ok &= tasks.check(plan, events)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
