"""Release builds (`debug = 1`, inlining on): every async fn of every Rust
test target, polled as its ground truth says, whether rustc kept its poll
function or inlined its body into another (then it is probed at its state
dispatch and resume points, and marked inlined); where the code shows an
async fn's own state byte, Ready/Pending are decided from it, and must be
right. The target's output and
exit status are its own. Where a count cannot be exact, the reason is
named here and, for bodies without a dispatch, by `symbols` itself."""
import os
import re

from harness import *  # noqa: F401,F403

TARGETS = ("tokio_mt tokio_ct async_std_tasks futures_exec busy_poll panic_task demo join_tokio join_async_std "
           "join_futures select_tokio select_async_std select_futures spawn_tokio spawn_async_std spawn_futures "
           "wake_tokio wake_async_std wake_futures reuse_tokio reuse_async_std reuse_futures sleep_tokio "
           "fidelity threads_churn fork_tokio dlopen_tokio signal_poll rate timing end_states").split()

# Measured, with the reason (docs/release-mode.md): the only counts that
# are not exact; the report must mark each "count approximate".
APPROXIMATE = {
    ("signal_poll", "signal_poll::in_handler::{{closure}}"):
        "LLVM rotated the handler's `while pending` loop: polls after the first re-enter the body's await "
        "by a branch from the host, not through its dispatch (counted once per handler run)",
}
# Inlined bodies no dispatch was found for: symbols and the report name
# them, their polls are not counted.
UNCOUNTED = {("threads_churn", "threads_churn::step::{{closure}}")}


def uncounted_by_symbols(binary):
    proc = tracer("symbols", binary)
    check_eq(proc.returncode, 0, f"symbols {binary} ({proc.stderr.strip()})")
    for line in proc.stderr.splitlines():
        if "polls are not counted" in line:
            return {n.strip() for n in line.split("release code): ", 1)[1].split(", ")}
    return set()


SITES = re.compile(r"record: (\d+) of (\d+) inlined-body sites patched in process, (\d+) through uprobes")
REFUSED_SITE = re.compile(r"not patched: (.*): (poll start|resume point|exit \(state \d+\)) at (0x[0-9a-f]+): (.*) "
                          r"\(a uprobe there\)$")


def record_inlined(binary):
    """record --inlined; in process with -v, which names each site left to a uprobe and why."""
    if backend() != "inproc":
        return record(binary, extra=("--inlined",))
    trace = tmpfile(f"{os.path.basename(binary)}-{backend()}.trace")
    return trace, tracer("record", "-v", "-o", trace, *backend_args(), "--inlined", "--", binary)


def sites_in_process(name, stderr, refusals):
    """(patched, all) inlined-body sites of one in-process recording; each one left
    to a uprobe must be named with its reason (collected in refusals)."""
    said = SITES.search(stderr)
    if not said:
        return 0, 0
    patched, total, by_uprobe = map(int, said.groups())
    named = [m.groups() for m in map(REFUSED_SITE.search, stderr.splitlines()) if m]
    check_eq(len(named), by_uprobe, f"{name}: every site left to a uprobe is named with its reason ({named})")
    for fn, what, addr, why in named:
        refusals.setdefault(why, []).append(f"{name}:{fn.rsplit('::', 2)[-2]}:{what}@{addr}")
    return patched, total


@test
def release_builds_count_every_async_fn():
    need_root()  # the bpf backend; inlined sites the agent cannot patch are uprobes
    mismatches, inlined_seen, results_known, wrong_results = {}, 0, 0, {}
    sites_patched, sites_total, refusals = 0, 0, {}
    for name in TARGETS:
        binary = os.path.join(RUST_RELEASE, name)
        truth = ground_truth(binary)
        untraced = run([binary])
        trace, proc = record_inlined(binary)
        patched, total = sites_in_process(name, proc.stderr, refusals)
        sites_patched, sites_total = sites_patched + patched, sites_total + total
        check_eq((proc.returncode, proc.stdout), (untraced.returncode, untraced.stdout),
                 f"{name}: exit status and stdout, traced vs untraced")
        report = report_json(trace)
        rows = functions_by_name(report)
        flagged = {f["name"] for f in report["functions"] if f.get("approximate_copies")}
        inlined_seen += sum(1 for f in report["functions"] if f["inlined_copies"])
        uncounted = uncounted_by_symbols(binary)
        for fn, want in truth["functions"].items():
            if want.get("polls") is None:
                continue
            got = rows.get(fn, {}).get("polls", 0)
            if (name, fn) in UNCOUNTED:
                check(fn in uncounted, f"{name}: symbols does not name {fn} as uncounted ({sorted(uncounted)})")
                check(fn in report["uncounted_inlined"],
                      f"{name}: the report does not name {fn} as uncounted ({report['uncounted_inlined']})")
                continue
            if got != want["polls"]:
                mismatches[(name, fn)] = (got, want["polls"])
                check(fn in flagged, f"{name}: {fn} counted {got} of {want['polls']} polls, not marked approximate")
            row = rows.get(fn, {})
            known = row.get("ready", 0) + row.get("pending", 0)  # decided without DWARF types
            if known:
                results_known += 1
                got_rp, want_rp = (row["ready"], row["pending"]), (want.get("ready"), want.get("pending"))
                # all polls decided: exactly the truth; some (an inlined body
                # leaving by an exit whose state store is not seen): no more
                if (got_rp != want_rp) if known == row["polls"] else \
                        (got_rp[0] > (want_rp[0] or 0) or got_rp[1] > (want_rp[1] or 0)):
                    wrong_results[(name, fn)] = (got_rp, want_rp)
    unexplained = {k: v for k, v in mismatches.items() if k not in APPROXIMATE}
    check(not unexplained, f"poll counts (got, want) that differ: {unexplained}")
    stale = [k for k in APPROXIMATE if k not in mismatches]
    check(not stale, f"counts listed as approximate are exact now: {stale} (update APPROXIMATE)")
    check(inlined_seen >= 40, f"only {inlined_seen} inlined rows across the release targets")
    check(not wrong_results, f"Ready/Pending decided wrongly (got, want): {wrong_results}")
    check(results_known >= 40, f"Ready/Pending known for only {results_known} async fns")
    print(f"     release targets: {len(TARGETS)}, inlined rows {inlined_seen}, approximate {len(mismatches)}, "
          f"uncounted {len(UNCOUNTED)}, results known for {results_known} async fns", flush=True)
    if backend() == "inproc":
        # Measured: docs/release-mode.md (In-process sites) gives the refusals and their reasons.
        print(f"     inlined-body sites patched in process: {sites_patched} of {sites_total}", flush=True)
        for why, where in sorted(refusals.items()):
            print(f"       {len(where)} left to uprobes: {why}: {' '.join(sorted(where))}", flush=True)
        check(sites_total >= 100, f"only {sites_total} inlined-body sites across the release targets")
        check(sites_patched >= 0.8 * sites_total,
              f"only {sites_patched} of {sites_total} inlined-body sites patched in process")


@test_once
def release_rows_marked_inlined():
    """report and tree mark the inlined bodies; symbols lists them."""
    need_root()
    binary = os.path.join(RUST_RELEASE, "tokio_ct")
    trace, proc = record(binary, extra=("--inlined",))
    check_eq(proc.returncode, 0, "record tokio_ct (release)")
    text = tracer("report", trace).stdout
    check("Inlined:  " in text, "the report says what inlined rows mean")
    for fn in ("tokio_ct::middle::{{closure}}", "tokio_ct::leaf::{{closure}}"):
        check(any(fn in line and "[inlined]" in line for line in text.splitlines()), f"{fn} marked in report")
        tree = tracer("tree", trace).stdout
        check(any(fn in line and "[inlined]" in line for line in tree.splitlines()), f"{fn} marked in tree")
        listed = tracer("symbols", binary).stdout
        check(any(fn in line and "(inlined)" in line for line in listed.splitlines()), f"{fn} in symbols")
    outer = [l for l in text.splitlines() if "tokio_ct::outer::{{closure}}" in l]
    check(outer and "[inlined]" not in outer[0], "outer keeps its own poll function")


def inlined_rows(report):
    return sorted(f["name"] for f in report["functions"] if f["inlined_copies"])


def said_left_out(stderr):
    return [l for l in stderr.splitlines() if "inlined into other functions not traced" in l]


@test
def release_inlined_bodies_by_default_never_through_uprobes():
    """In process, an inlined body is traced by default only when the agent
    can patch all of its sites and its host (a uprobe among them would cost
    microseconds a poll); the others are named (record's stderr, the
    report's Unprobed: line and JSON) and --inlined traces them too. bpf
    traces every one by default. --no-inlined leaves them all out, named.
    tokio_ct: every site patched; async_std_tasks: some left out."""
    need_root()
    for name in ("tokio_ct", "async_std_tasks"):
        binary = os.path.join(RUST_RELEASE, name)
        trace, proc = tracer_record(binary, ("--inlined",), "inlined")
        check_eq(proc.returncode, 0, f"{name}: record --inlined ({proc.stderr.strip()})")
        every = inlined_rows(report_json(trace))
        check(len(every) >= 2, f"{name}: --inlined counts the inlined bodies: {every}")
        check_eq(report_json(trace)["unprobed_inlined"], [], f"{name}: --inlined leaves none unprobed")
        trace, proc = tracer_record(binary, (), "default")
        check_eq(proc.returncode, 0, f"{name}: record ({proc.stderr.strip()})")
        report, text = report_json(trace), tracer("report", trace).stdout
        rows, unprobed = inlined_rows(report), sorted(set(report["unprobed_inlined"]))
        # The target's own async fns (their polls are the same every run; a
        # runtime's may differ); a name may be both traced and named (two
        # copies), and a named one need not be polled in this run.
        own = set(ground_truth(binary)["functions"])
        check(not (set(every) & own) - set(rows) - set(unprobed),
              f"{name}: counted by --inlined, neither traced nor named by default: "
              f"{(set(every) & own) - set(rows) - set(unprobed)}")
        check(not (set(rows) & own) - set(every), f"{name}: traced by default, not by --inlined: "
              f"{(set(rows) & own) - set(every)}")
        if backend() == "bpf" or name == "tokio_ct":
            check_eq(unprobed, [], f"{name}: none left out by default")
            check(not said_left_out(proc.stderr) and "Unprobed: " not in text, f"{name}: nothing said left out")
        else:
            check(unprobed and rows, f"{name}: some traced ({rows}), some left out ({unprobed})")
            said = said_left_out(proc.stderr)
            check(len(said) == 1, f"{name}: record says it once: {said}")
            # the count, then whole names as the line has room (the report has them all)
            m = re.search(r"record: (\d+) async bod.*each; the report names every one\): (.*)$", said[0])
            check(m is not None, f"{name}: record's line: {said[0]!r}")
            check_eq(int(m.group(1)), len(report["unprobed_inlined"]), f"{name}: how many record says")
            shown = m.group(2).split(", ")
            if shown[-1] == "...":
                shown.pop()
            check(shown and set(shown) <= set(unprobed), f"{name}: names on record's line {shown}")
            check(any(l.startswith("Unprobed: ") and all(fn in l for fn in unprobed) for l in text.splitlines()),
                  f"{name}: the report names them")
        if backend() == "inproc":
            check(re.search(r"patched in process, 0 through uprobes, in", proc.stderr) is not None,
                  f"{name}: by default no function through uprobes: {proc.stderr!r}")
            check(re.search(r"inlined-body sites patched in process, 0 through uprobes", proc.stderr) is not None,
                  f"{name}: by default no inlined site through uprobes: {proc.stderr!r}")
    trace, proc = tracer_record(binary, ("--no-inlined",), "none")
    report = report_json(trace)
    check_eq(inlined_rows(report), [], "--no-inlined traces none")
    check(not (set(every) & own) - set(report["unprobed_inlined"]),
          f"--no-inlined names every one: {(set(every) & own) - set(report['unprobed_inlined'])} not named")
    check(any(l.startswith("Unprobed: ") for l in tracer("report", trace).stdout.splitlines()),
          "--no-inlined: the report names them")


def tracer_record(binary, extra, what):
    """record without -q (what it says on stderr is checked)."""
    trace = tmpfile(f"{os.path.basename(binary)}-{what}-{backend()}.trace")
    return trace, tracer("record", "-o", trace, *backend_args(), *extra, "--", binary)


def parked_lines(trace):
    """{function: "parked at FILE:LINE"} of a tree."""
    lines = {}
    for line in tracer("tree", trace).stdout.splitlines():
        name = line.lstrip("│├└─ ").split("  ")[0]
        if "parked at " in line:
            lines[name] = line.split("parked at ", 1)[1].split()[0]
    return lines


@test_once
def release_parked_at_equals_debug():
    """Without DWARF types, where each future is parked comes from the code:
    the awaits of surviving and inlined async fns from their dispatch, the
    state from the state byte or the exit's store. tokio_ct's three async
    fns: the same lines as the debug build's."""
    need_root()
    fns = ("tokio_ct::outer::{{closure}}", "tokio_ct::middle::{{closure}}", "tokio_ct::leaf::{{closure}}")
    got, places = {}, {}
    for build in (RUST, RUST_RELEASE):
        trace, proc = record(os.path.join(build, "tokio_ct"), extra=("--inlined",))
        check_eq(proc.returncode, 0, f"record tokio_ct ({build})")
        got[build] = {f: parked_lines(trace).get(f) for f in fns}
        rows = {r["name"]: r for r in report_json(trace)["functions"]}
        places[build] = {f: (rows.get(f, {}).get("file"), rows.get(f, {}).get("line")) for f in fns}
    check(all(got[RUST].values()), f"the debug build's tree has every parked line: {got[RUST]}")
    check_eq(got[RUST_RELEASE], got[RUST], "parked at, release vs debug")
    # where each is declared: the same absolute file and line (inlined ones too)
    check(all(f and f.startswith("/") and l for f, l in places[RUST].values()), f"debug places {places[RUST]}")
    check_eq(places[RUST_RELEASE], places[RUST], "declared at, release vs debug")
