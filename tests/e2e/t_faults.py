"""Faults while recording: a disk that fills up mid-run (the command runs
to its end untraced, its output and exit its own; record exits 1 with one
line naming the cause; what reached the disk reads as a trace cut short),
an output that cannot take a byte (/dev/full), a command that kills itself
with SIGKILL, closes its stdout, or ignores SIGINT (and the tracer is
interrupted twice)."""
import json
import os
import signal
import subprocess
import time

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


PROBE_FUNCTIONS = ("--function", "^(multi_ret|tail_caller|tail_target|plain|recurse|many_args)$")


def probe_mech():
    return os.path.join(C_TARGETS, "probe_mech")


@test
def dev_full_output_is_one_line():
    """-o /dev/full: not even the header can be written. One line naming
    the cause, exit 1, and the command is not started (nothing of it would
    be recorded)."""
    if backend() == "bpf":
        need_root()
    proc = tracer("record", *backend_args(), "-o", "/dev/full", *PROBE_FUNCTIONS, "--", probe_mech(),
                  "--calls", "200")
    check_eq(proc.returncode, 1, f"exit status ({proc.stderr.strip()})")
    check_eq(proc.stdout, "", "the command's stdout (not run)")
    errors = [l for l in proc.stderr.splitlines() if "error" in l or "No space" in l]
    check_eq(len(errors), 1, f"one error line: {proc.stderr!r}")
    check("No space left on device" in errors[0], f"the cause named: {errors[0]!r}")


@test
def target_killed_by_sigkill_leaves_a_complete_trace():
    """The command dies of SIGKILL after its calls: its status is passed on
    (137) and every call it made is in the trace."""
    if backend() == "bpf":
        need_root()
    truth = ground_truth(probe_mech(), "--calls", "300")
    trace = tmpfile(f"sigkill-{backend()}.trace")
    proc = tracer("record", *backend_args(), "-o", trace, *PROBE_FUNCTIONS, "--", probe_mech(),
                  "--calls", "300", "--kill")
    check_eq(proc.returncode, 128 + signal.SIGKILL, "exit status of a command killed by SIGKILL")
    check_eq(proc.stdout, truth["stdout"], "stdout before the kill")
    rows = functions_by_name(report_json(trace))
    for name in ("multi_ret", "plain", "many_args"):
        check_eq(rows.get(name, {}).get("polls"), truth["functions"][name]["entries"], f"{name} entries")


@test
def target_closing_stdout_keeps_its_status():
    """The command closes its stdout before printing: what it prints goes
    nowhere (as untraced), its exit status is its own, the trace complete."""
    if backend() == "bpf":
        need_root()
    untraced = run([probe_mech(), "--calls", "100", "--close-stdout", "--exit", "3"])
    trace = tmpfile(f"closed-{backend()}.trace")
    proc = tracer("record", "-q", *backend_args(), "-o", trace, *PROBE_FUNCTIONS, "--", probe_mech(),
                  "--calls", "100", "--close-stdout", "--exit", "3")
    check_eq((proc.returncode, proc.stdout), (untraced.returncode, untraced.stdout), "status and stdout vs untraced")
    check_eq(proc.stderr, untraced.stderr, "stderr vs untraced (record -q adds nothing)")
    check_eq(functions_by_name(report_json(trace)).get("plain", {}).get("polls"), 100, "plain entries")


def children_of(pid):
    proc = run(["pgrep", "-P", str(pid)])
    return [int(p) for p in proc.stdout.split()]


@test
def interrupted_twice_leaves_a_sigint_ignoring_command_running():
    """The command ignores SIGINT: Ctrl-C (to the process group) does not
    end it, and record says it waits for it; a second interrupt ends the
    recording with a readable trace (interrupted, polls kept), exit 130, and
    the command still running, untraced."""
    need_root()  # the process-group signal and pgrep of root's children
    trace = tmpfile(f"sigint-twice-{backend()}.trace")
    # Files, not pipes: the command left running holds them open.
    err_path = tmpfile(f"sigint-twice-{backend()}.err")
    err_file = open(err_path, "w")
    proc = subprocess.Popen([TRACER, "record", "-o", trace, *backend_args(), *PROBE_FUNCTIONS, "--", probe_mech(),
                             "--seconds", "60", "--ignore-sigint", "--calls", "10", "--pause-ms", "10"],
                            stdout=subprocess.DEVNULL, stderr=err_file, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    err_file.close()
    command = []
    try:
        time.sleep(1.5)
        command = children_of(proc.pid)
        check_eq(len(command), 1, "the command runs under record")
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(1.2)
        check(proc.poll() is None, "record waits for the command that outlived Ctrl-C")
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
        with open(err_path) as f:
            err = f.read()
        check_eq(proc.returncode, 128 + signal.SIGINT, f"record's exit status ({err.strip()[-400:]})")
        check("goes on after the interrupt" in err, f"record said it waits: {err!r}")
        check("left running" in err, f"record said it left the command running: {err!r}")
        check(os.path.exists(f"/proc/{command[0]}"), "the command still runs")
        report = report_json(trace)
        check_eq(report["end_reason"], "interrupted", "end reason")
        check(report["polls"] > 0, "polls recorded before the interrupts")
    finally:
        for pid in command:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
