"""`import cat` on real Chrome trace JSON: CAT's own profile (123.json, an
async-std mutex_example), zCore dump.py's conversion of its eBPF probe log
(output.json, ts in ns) and of a GDB run (output-directjson.json, ts in s,
doubled exits). The expected counts are computed here from the JSON with
the builder's rules (LIFO per thread by name, an exit with no entry on its
thread matched to the latest open one elsewhere, an exit repeating the
thread's last matched exit dropped as doubled), then compared with what
`report --json`, `tree` and `export` say about the imported trace. Bad and
mutated inputs must fail with one line, never with a signal.

The data lives outside the repository (../shared/data/zcore-real, see its
SOURCES.md); missing, the tests fail."""
import collections
import json
import os
import random
import re

from harness import *  # noqa: F401,F403

REPO = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DATA = os.path.join(REPO, "..", "shared", "data", "zcore-real")
CAT_JSON = os.path.join(DATA, "cat-cd0d658", "123.json")
ZCORE_EBPF_JSON = os.path.join(DATA, "zcore-ebpf-ce75804", "output.json")
ZCORE_GDB_JSON = os.path.join(DATA, "zcore-gdb-9d5b430", "output-directjson.json")
DUMP_PY_ARG = "Function address (For recognizing anonymous type)"
SUMMARY = re.compile(r"(\d+) polls paired on their thread, (\d+) across threads, (\d+) left open; "
                     r"(\d+) exits without an entry, (\d+) doubled exits dropped")


def load_events(path):
    check(os.path.exists(path), f"{path} is missing (the test data of ../shared/data/zcore-real)")
    with open(path) as f:
        doc = json.load(f)
    return doc["traceEvents"] if isinstance(doc, dict) else doc


def tid_of(ev):
    raw = ev.get("tid", ev.get("pid", 0))
    return int(str(raw).strip()) & 0xFFFFFFFF


def cat_name(name):
    return name.replace("::_{{closure}}", "::{{closure}}")


def records_of(events, ns_per_unit):
    """(ns, file order, tid, ph, name) of each B/E, converted as the reader
    does (a float through one double multiplication, rounded)."""
    out = []
    for seq, ev in enumerate(events):
        if ev["ph"] in ("B", "E"):
            ts = ev["ts"]
            ns = ts * ns_per_unit if isinstance(ts, int) else int(ts * ns_per_unit + 0.5)
            out.append((ns, seq, tid_of(ev), ev["ph"], cat_name(ev["name"])))
    return out


def pair_like_builder(records, across_threads=True):
    """Per name: [returned, unwound, unfinished] polls, and the totals of
    the import summary."""
    stacks = {}  # tid -> [(name, ns)], in order of first record (the builder's thread order)
    for _, _, tid, _, _ in records:
        stacks.setdefault(tid, [])
    last_exit = {}
    polls = collections.defaultdict(lambda: [0, 0, 0])
    totals = collections.Counter()

    def close(stack, pos, name):
        polls[name][0] += 1
        for above, _ in stack[pos + 1:]:
            polls[above][1] += 1
            totals["left_open"] += 1
        del stack[pos:]

    for ns, _, tid, ph, name in sorted(records):
        stack = stacks[tid]
        if ph == "B":
            stack.append((name, ns))
            last_exit[tid] = None
            continue
        pos = next((i for i in range(len(stack) - 1, -1, -1) if stack[i][0] == name), None)
        if pos is not None:
            close(stack, pos, name)
            last_exit[tid] = name
            totals["pairs"] += 1
            continue
        if last_exit.get(tid) == name:
            totals["doubled"] += 1
            continue
        best = None
        for other, ostack in stacks.items():
            at = next((i for i in range(len(ostack) - 1, -1, -1) if ostack[i][0] == name), None)
            if across_threads and other != tid and at is not None and (best is None or ostack[at][1] >= best[2]):
                best = (other, at, ostack[at][1])
        if best:
            close(stacks[best[0]], best[1], name)
            totals["cross"] += 1
        else:
            totals["orphans"] += 1
    for stack in stacks.values():
        for name, _ in stack:
            polls[name][2] += 1
            totals["left_open"] += 1
    return polls, totals


def import_cat(path, name, *extra):
    trace = tmpfile(f"{name}.trace")
    proc = tracer("import", "cat", *extra, path, "-o", trace)
    check(proc.returncode == 0, f"import cat {path} failed ({proc.returncode}): {proc.stderr.strip()}")
    m = SUMMARY.search(proc.stderr)
    check(m, f"no pairing summary in {proc.stderr!r}")
    keys = ("pairs", "cross", "left_open", "orphans", "doubled")
    return trace, dict(zip(keys, map(int, m.groups()))), proc.stderr


def report_rows(trace):
    rows = {}
    for f in report_json(trace)["functions"]:
        row = rows.setdefault(f["name"], [0, 0, 0, f["context"]])
        row[0] += f["polls"] - f["unwound"] - f["unfinished"]
        row[1] += f["unwound"]
        row[2] += f["unfinished"]
    return rows


def check_against_model(path, name, ns_per_unit):
    """Imports path; its report equals the builder's rules run in Python.
    Returns (trace, per-name model, summary totals, stderr)."""
    events = load_events(path)
    polls, totals = pair_like_builder(records_of(events, ns_per_unit))
    trace, summary, stderr = import_cat(path, name)
    want = {k: totals[k] for k in ("pairs", "cross", "left_open", "orphans", "doubled")}
    check_eq(summary, want, f"{name}: import summary vs the Python pairing")
    rows = report_rows(trace)
    check_eq({n: r[:3] for n, r in rows.items()}, {n: list(p) for n, p in polls.items()},
             f"{name}: per function [returned, unwound, unfinished] polls")
    return trace, polls, totals, stderr


def check_exports(trace, name):
    """Every export works on the trace; chrome's thread tracks hold one X
    event per poll, by name."""
    want = collections.Counter()
    for f in report_json(trace)["functions"]:
        want[f["name"]] += f["polls"]
    out = tmpfile(f"{name}.chrome.json")
    proc = tracer("export", "--format", "chrome", "-o", out, trace)
    check_eq(proc.returncode, 0, f"{name}: export chrome ({proc.stderr.strip()})")
    with open(out) as f:
        events = json.load(f)["traceEvents"]
    procs = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    threads = [e for e in events if procs.get(e["pid"]) != "tasks"]
    check_eq(collections.Counter(e["name"] for e in threads if e["ph"] == "X"), want,
             f"{name}: chrome X events on thread tracks per function")
    for fmt, extra in (("perfetto", ()), ("folded", ("--weight", "poll-time")), ("svg", ("--weight", "poll-time"))):
        dest = tmpfile(f"{name}.{fmt}")
        proc = tracer("export", "--format", fmt, *extra, "-o", dest, trace)
        check(proc.returncode == 0 and os.path.getsize(dest) > 0,
              f"{name}: export {fmt} failed ({proc.returncode}): {proc.stderr.strip()}")
    tree = tracer("tree", trace)
    check_eq(tree.returncode, 0, f"{name}: tree ({tree.stderr.strip()})")
    return threads, tree.stdout


@test_once
def import_cat_real_cat_profile():
    """CAT's 123.json: 23 B/E pairs, each name's polls its B and E count,
    nothing left open; `_{{closure}}` read as a compiler-generated
    `{{closure}}`; threads named from the metadata; report, tree and every
    export work."""
    events = load_events(CAT_JSON)
    phases = collections.Counter(e["ph"] for e in events)
    check_eq((phases["B"], phases["E"], phases["M"]), (23, 23, 20), "123.json B, E, M events")
    begins = collections.Counter(cat_name(e["name"]) for e in events if e["ph"] == "B")
    ends = collections.Counter(cat_name(e["name"]) for e in events if e["ph"] == "E")
    check_eq(begins, ends, "123.json B and E per name")
    trace, polls, totals, stderr = check_against_model(CAT_JSON, "cat-123", 1000)
    check_eq((totals["pairs"], totals["left_open"], totals["orphans"]), (23, 0, 0), "pairs, left open, orphans")
    check_eq({n: p[0] for n, p in polls.items()}, dict(begins), "polls per name vs B per name")
    check("ts read as us;" in stderr and "23 B, 23 E, 0 X, 20 metadata events" in stderr,
          f"the unit and event counts are not said: {stderr!r}")
    doc = report_json(trace)
    check_eq((doc["polls"], doc["unwound"], doc["unfinished"]), (23, 0, 0), "report polls, unwound, unfinished")
    rows = report_rows(trace)
    check_eq(rows["mutex_example::main::{{closure}}"][3], "compiler-generated", "context of the closure")
    check(not any("_{{closure}}" in n for n in rows), "a `_{{closure}}` name was left as CAT spells it")
    check_eq(rows["async_std::task::sleep::sleep"][3], "function", "context of a plain function")
    # 10 s between the first and the last poll: µs read as µs
    check(10.0e9 < doc["duration_ns"] < 10.01e9, f"duration {doc['duration_ns']} ns, want 10.0 s")
    _, tree = check_exports(trace, "cat-123")
    check("mutex_example::main::{{closure}}" in tree, f"the closure is not in the tree: {tree[:300]!r}")
    names = tracer("report", trace).stdout
    check("mutex_example/55559" in names and "mutex_example/55568" in names,
          "threads are not named from CAT's thread_name metadata")


@test_once
def import_cat_zcore_ebpf_output_json():
    """dump.py's output.json of the zCore eBPF log: ts read as ns; 449 B and
    443 E pair as LIFO per pid does (442 pairs, 1 exit whose entry is on
    another pid, 7 left open at the cut), the builder matching that exit
    across threads."""
    events = load_events(ZCORE_EBPF_JSON)
    phases = collections.Counter(e["ph"] for e in events)
    check_eq((phases["B"], phases["E"]), (449, 443), "output.json B, E events")
    _, lifo = pair_like_builder(records_of(events, 1), across_threads=False)
    check_eq((lifo["pairs"], lifo["orphans"], lifo["left_open"]), (442, 1, 7), "LIFO per pid (SOURCES.md)")
    trace, _, totals, stderr = check_against_model(ZCORE_EBPF_JSON, "zcore-ebpf", 1)
    check_eq((totals["pairs"], totals["cross"], totals["orphans"]), (lifo["pairs"], 1, 0), "pairs, across, orphans")
    check_eq(totals["left_open"], lifo["left_open"] - totals["cross"], "left open: LIFO's less the one matched across")
    check("ts read as ns (zCore dump.py output)" in stderr, f"the unit is not said: {stderr!r}")
    doc = report_json(trace)
    check_eq(doc["polls"], 449, "report polls (every entry)")
    span = max(e["ts"] for e in events) - min(e["ts"] for e in events)
    check(abs(doc["duration_ns"] - span) <= 1, f"duration {doc['duration_ns']} ns, want the ns span {span}")
    check_exports(trace, "zcore-ebpf")


@test_once
def import_cat_zcore_gdb_directjson():
    """dump.py's output-directjson.json of a GDB run: ts in s (fractions);
    212 B / 286 E: the exits GDB doubled are dropped as doubled, the
    others without an entry counted as orphans, exactly as modelled."""
    events = load_events(ZCORE_GDB_JSON)
    phases = collections.Counter(e["ph"] for e in events)
    check_eq((phases["B"], phases["E"]), (212, 286), "output-directjson.json B, E events")
    trace, _, totals, stderr = check_against_model(ZCORE_GDB_JSON, "zcore-gdb", 1e9)
    check_eq(totals["pairs"] + totals["orphans"] + totals["doubled"] + totals["cross"], 286, "every exit accounted")
    check_eq(totals["pairs"] + totals["cross"] + totals["left_open"], 212, "every entry accounted")
    check(totals["doubled"] > 0 and totals["orphans"] > 0, f"doubled and orphan exits expected: {totals}")
    check("ts read as s (zCore dump.py output)" in stderr, f"the unit is not said: {stderr!r}")
    check_exports(trace, "zcore-gdb")


@test_once
def import_cat_reads_its_own_chrome_export():
    """X complete events: the chrome export's thread tracks (X events with
    fractional µs, nested, sharing starts and ends) imported back give each
    function the polls it had."""
    trace, _, _ = import_cat(ZCORE_EBPF_JSON, "zcore-ebpf-again")
    threads, _ = check_exports(trace, "zcore-ebpf-again")
    again = tmpfile("zcore-ebpf-threads.json")
    with open(again, "w") as f:
        json.dump({"traceEvents": threads}, f)
    back, summary, stderr = import_cat(again, "zcore-ebpf-back")
    check_eq((summary["left_open"], summary["orphans"], summary["doubled"]), (0, 0, 0), "X events all pair")
    want = {n: sum(r[:3]) for n, r in report_rows(trace).items()}
    check_eq({n: sum(r[:3]) for n, r in report_rows(back).items()}, want, "polls per function after the round trip")
    check("0 B, 0 E, 449 X" in stderr, f"X events not counted: {stderr!r}")


def bad_input(name, data):
    path = tmpfile(name)
    with open(path, "wb") as f:
        f.write(data)
    return path


@test_once
def import_cat_refuses_bad_input():
    """One line naming the file (and, for JSON errors, line and column),
    non-zero exit, for each way an input can be wrong."""
    with open(CAT_JSON, "rb") as f:
        real = f.read()
    os.makedirs(tmpfile("a-directory.json"), exist_ok=True)
    cases = [
        (bad_input("not-json.json", b"this is no JSON\n"), r":1:\d+: not JSON"),
        (bad_input("truncated.json", real[:5000]), r":1:5001: not JSON: unexpected end of file \(truncated\?\)"),
        (bad_input("empty-file.json", b""), r": not JSON: empty file"),
        (bad_input("wrong-shape.json", b'{"events": []}'), r": not a Chrome trace"),
        (bad_input("string.json", b'"traceEvents"'), r": not a Chrome trace"),
        (bad_input("empty-array.json", b"[]\n"), r": no B, E or X events \(0 events read\)"),
        (bad_input("only-metadata.json", b'{"traceEvents": [{"ph": "M", "name": "thread_name", "pid": 1}]}'),
         r": no B, E or X events \(1 event read\)"),
        (bad_input("no-ph.json", b'[{"ts": 1, "name": "f"}]'), r": event 1: no \"ph\""),
        (bad_input("no-ts.json", b'[{"ph": "B", "ts": 1, "name": "f"}, {"ph": "E", "name": "f"}]'),
         r": event 2: E event without \"ts\""),
        (bad_input("no-name.json", b'[{"ph": "B", "ts": 1}]'), r": event 1: B event without a \"name\""),
        (bad_input("event-not-object.json", b'[{"ph": "B", "ts": 1, "name": "f"}, null]'),
         r": event 2: not a JSON object"),
        (bad_input("garbage-after.json", real + b"}"), r":\d+:\d+: not JSON"),
        (bad_input("nul-byte.json", real[:100] + b"\0" + real[100:]), r":1:101: not JSON: a NUL byte"),
        (tmpfile("a-directory.json"), r"cannot read .*: Is a directory"),
        (tmpfile("missing.json"), r"cannot read .*: No such file or directory"),
    ]
    for path, pattern in cases:
        line = one_error_line(tracer("import", "cat", path, "-o", tmpfile("bad.trace")), os.path.basename(path))
        check(path in line, f"{path}: the file is not named: {line!r}")
        check(re.search(pattern, line), f"{os.path.basename(path)}: {line!r} does not match {pattern!r}")
    line = one_error_line(tracer("import", "cat", "--ts-unit", "min", CAT_JSON, "-o", tmpfile("bad.trace")),
                          "--ts-unit min")
    check("--ts-unit" in line, f"bad --ts-unit: {line!r}")


def mutate(data, rng):
    kind = rng.choice(("flip", "flip", "truncate", "delete", "flips"))
    if kind == "truncate":
        return data[:rng.randrange(len(data))]
    if kind == "delete":
        at = rng.randrange(len(data))
        return data[:at] + data[at + rng.randint(1, 64):]
    out = bytearray(data)
    for _ in range(1 if kind == "flip" else rng.randint(2, 20)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


@test_once
def import_cat_survives_200_mutations():
    """123.json with seeded random byte flips, truncations and deletions:
    no run dies by a signal; a failing run prints exactly one line, naming
    the file; a trace that is written reports."""
    with open(CAT_JSON, "rb") as f:
        real = f.read()
    rng = random.Random(20261201)
    outcomes = collections.Counter()
    for i in range(200):
        path = bad_input(f"mutant-{i:03d}.json", mutate(real, rng))
        trace = tmpfile(f"mutant-{i:03d}.trace")
        proc = tracer("import", "cat", path, "-o", trace, timeout=30)
        check(proc.returncode >= 0, f"mutant {i}: killed by signal {-proc.returncode}")
        if proc.returncode:
            line = one_error_line(proc, f"mutant {i}")
            check(path in line, f"mutant {i}: the file is not named: {line!r}")
            outcomes["refused"] += 1
            continue
        rep = tracer("report", trace, timeout=30)
        check(rep.returncode == 0, f"mutant {i}: report of its trace failed ({rep.returncode}): {rep.stderr.strip()}")
        outcomes["imported"] += 1
    print(f"     import cat mutants: {outcomes['imported']} imported, {outcomes['refused']} refused")
    check(outcomes["refused"] > 0 and outcomes["imported"] > 0, f"mutations too mild or too harsh: {outcomes}")
