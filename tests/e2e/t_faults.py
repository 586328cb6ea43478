"""Faults while recording: a disk that fills up mid-run. The command runs
to its end untraced (its output and exit are its own), record exits 1 with
one line naming the cause, and what reached the disk reads as a trace cut
short."""
import json
import os
import subprocess

from harness import *  # noqa: F401,F403


def small_tmpfs(name, size):
    path = tmpfile(name)
    os.makedirs(path, exist_ok=True)
    proc = run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path])
    check_eq(proc.returncode, 0, f"mount a {size} tmpfs ({proc.stderr.strip()})")
    return path


@test
def full_disk_mid_run_leaves_the_command_alone():
    need_root()
    mount = small_tmpfs(f"full-{backend()}", "96k")
    try:
        out = os.path.join(mount, "x.trace")
        proc = tracer("record", "--backend", backend(), "-o", out, "--",
                      os.path.join(RUST, "tokio_ct"), "--tasks", "50", "--yields", "2499")
        check_eq(proc.returncode, 1, "record's exit status when the disk is full")
        check("tokio_ct: 50 tasks x 2499 yields done" in proc.stdout,
              f"the command ran to its end: stdout {proc.stdout[-200:]!r}")
        errors = [l for l in proc.stderr.splitlines() if "No space left on device" in l]
        check_eq(len(errors), 1, f"one line for the full disk: {proc.stderr!r}")
        check("killed by signal" not in proc.stderr, f"the command was not stopped: {proc.stderr!r}")
        report = tracer("report", out)
        check_eq(report.returncode, 0, f"report of the cut trace ({report.stderr.strip()})")
        check("trace ended abruptly" in report.stderr and "cut short" in report.stdout,
              f"read as cut short: {report.stderr.strip()!r}")
    finally:
        subprocess.run(["umount", mount])


@test_once
def unprobeable_exits_are_counted_and_listed():
    """cond_tail leaves 9 of its 10 calls through `jne other`, a conditional
    tail call no probe can take: record says so in one line (-v names the
    function), and report shows those polls as unwound (the last, never
    closed, unfinished) instead of missing them."""
    need_root()
    binary = os.path.join(C_TARGETS, "cond_tail")
    out = tmpfile("cond_tail.trace")
    quiet = tracer("record", "--backend", "bpf", "-f", "^cond_tail$", "-o", out, "--", binary)
    check_eq(quiet.returncode, 0, f"record cond_tail ({quiet.stderr.strip()})")
    lines = [l for l in quiet.stderr.splitlines() if "cannot be probed" in l]
    check(len(lines) == 1 and "1 exit in 1 function" in lines[0] and "-v lists them" in lines[0],
          f"one line counting the exit: {quiet.stderr!r}")
    verbose = tracer("record", "-v", "--backend", "bpf", "-f", "^cond_tail$", "-o", out, "--", binary)
    check("record: cond_tail: 1 exit not probed (conditional tail call)" in verbose.stderr,
          f"-v names the function: {verbose.stderr[-800:]!r}")
    report = json.loads(tracer("report", "--json", out).stdout)
    rows = [(f["name"], f["polls"], f["unwound"], f["unfinished"]) for f in report["functions"]]
    check_eq(rows, [("cond_tail", 10, 8, 1)], "cond_tail's polls")


@test_once
def symbols_json_counts_the_exits_record_probes():
    """symbols --json gives each function's uprobe exits (and the ones no
    probe can take): their sum is what record -v lists as exit probes."""
    need_root()
    binary = os.path.join(RUST, "tokio_ct")
    listed = tracer("symbols", "--all", "--format", "json", binary)
    check_eq(listed.returncode, 0, f"symbols --json ({listed.stderr.strip()})")
    fns = json.loads(listed.stdout)["functions"]
    check(all("uprobe" in f for f in fns), "every function has its uprobe plan")
    exits = sum(f["uprobe"]["exits"] for f in fns)
    check(exits >= len([f for f in fns if f["role"] == "poll"]), f"at least one exit per poll function: {exits}")
    check_eq(sum(f["uprobe"]["unsupported_exits"] for f in fns), 0, "unprobeable exits in tokio_ct (debug)")
    proc = tracer("record", "-v", "--backend", "bpf", "-o", tmpfile("exits.trace"), "--", binary,
                  "--tasks", "1", "--yields", "1")
    check_eq(proc.returncode, 0, f"record -v ({proc.stderr.strip()[-300:]})")
    probed = len([l for l in proc.stderr.splitlines() if l.startswith("asynctrace: probe exit ")])
    check_eq(probed, exits, "exit probes record -v lists")
