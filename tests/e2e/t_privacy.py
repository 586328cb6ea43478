"""Trace and export files hold someone's program's addresses, names and
arguments: they are created 0600, never written through a symbolic link,
and a file another user owns is not overwritten. Checked for each writer:
record (both backends), import, export."""
import os
import pwd
import stat
import subprocess

from harness import *  # noqa: F401,F403

REPO = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CAT_JSON = os.path.join(REPO, "..", "shared", "data", "zcore-real", "cat-cd0d658", "123.json")
TARGET = os.path.join(BUILD, "targets", "rust", "debug", "join_tokio")


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def import_to(out):
    check(os.path.exists(CAT_JSON), f"{CAT_JSON} missing")
    return tracer("import", "cat", CAT_JSON, "-o", out)


def writers(name):
    """(what, run(out) -> proc) for each command that writes a file."""
    trace = tmpfile(f"{name}-source.trace")
    proc = import_to(trace)
    check_eq(proc.returncode, 0, f"import cat ({proc.stderr.strip()})")
    return [
        ("import", import_to),
        ("export", lambda out: tracer("export", "--format", "chrome", "-o", out, trace)),
        ("record", lambda out: tracer("record", *backend_args(), "-o", out, "--", TARGET)),
    ]


@test
def written_files_are_private():
    """A new file is 0600; an existing 0644 file of ours is made 0600 and
    replaced whole (not left with old bytes at its end)."""
    umask = os.umask(0o022)
    try:
        for what, write in writers("private"):
            if what == "record":
                need_root()
            out = tmpfile(f"private-{what}.out")
            if os.path.exists(out):
                os.unlink(out)
            proc = write(out)
            check_eq(proc.returncode, 0, f"{what} ({proc.stderr.strip()[-300:]})")
            check_eq(oct(mode_of(out)), oct(0o600), f"{what}: mode of a new file")
            size = os.path.getsize(out)
            with open(out, "ab") as f:
                f.write(b"\0" * 100_000)
            os.chmod(out, 0o644)
            proc = write(out)
            check_eq(proc.returncode, 0, f"{what} over an existing file ({proc.stderr.strip()[-300:]})")
            check_eq(oct(mode_of(out)), oct(0o600), f"{what}: mode after overwriting a 0644 file")
            check(os.path.getsize(out) < size + 100_000, f"{what}: the old file's tail was kept")
    finally:
        os.umask(umask)


@test
def symlinks_and_other_users_files_refused():
    """The output is a symbolic link (to a file it would clobber): refused
    in one line, the link's target untouched. The output is a file nobody
    owns (as root): refused, the file untouched."""
    need_root()
    nobody = pwd.getpwnam("nobody").pw_uid
    for what, write in writers("refused"):
        victim = tmpfile(f"victim-{what}")
        with open(victim, "w") as f:
            f.write("precious\n")
        link = tmpfile(f"link-{what}.out")
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(victim, link)
        proc = write(link)
        line = one_error_line(proc, f"{what} -o SYMLINK")
        check("symbolic link" in line, f"{what}: the error names the link: {line!r}")
        with open(victim) as f:
            check_eq(f.read(), "precious\n", f"{what}: the link's target")
        theirs = tmpfile(f"theirs-{what}.out")
        with open(theirs, "w") as f:
            f.write("theirs\n")
        os.chown(theirs, nobody, -1)
        proc = write(theirs)
        line = one_error_line(proc, f"{what} -o ANOTHER_USERS_FILE")
        check("another user" in line, f"{what}: the error names the owner: {line!r}")
        with open(theirs) as f:
            check_eq(f.read(), "theirs\n", f"{what}: another user's file")


@test_once
def devices_are_written_as_they_are():
    """/dev/null as the output: written, the device left alone."""
    before = os.stat("/dev/null")
    for what, write in writers("devnull"):
        if what == "record":
            continue  # record opens its output as import does (trace_writer__open)
        proc = write("/dev/null")
        check_eq(proc.returncode, 0, f"{what} -o /dev/null ({proc.stderr.strip()})")
    after = os.stat("/dev/null")
    check_eq((after.st_mode, after.st_uid), (before.st_mode, before.st_uid), "/dev/null itself")


@test_once
def another_users_process_refused_in_one_line():
    """-p PID of root's process, as nobody: one line naming the owner and
    the capabilities (and how to grant them); nothing written."""
    outdir = nobody_copies("privacy-p")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        trace = os.path.join(outdir, "p.trace")
        proc = as_nobody(os.path.join(outdir, "asynctrace"), "record", "-p", str(sleeper.pid), "-o", trace)
        line = one_error_line(proc, "record -p ROOTS_PID as nobody")
        for words in ("belongs to another user (uid 0)", "CAP_SYS_PTRACE", "setcap"):
            check(words in line, f"'{words}' not in {line!r}")
        check(not os.path.exists(trace), "a trace was written")
    finally:
        sleeper.kill()
        sleeper.wait()


@test_once
def bpf_without_capabilities_named_inproc_goes_on():
    """As nobody: --backend bpf fails in one line naming CAP_BPF and
    CAP_PERFMON and how to grant them; the in-process backend records the
    same program and its counts are exact."""
    outdir = nobody_copies("privacy-bpf", TARGET)
    binary = os.path.join(outdir, os.path.basename(TARGET))
    trace = os.path.join(outdir, "bpf.trace")
    proc = as_nobody(os.path.join(outdir, "asynctrace"), "record", "--backend", "bpf", "-o", trace, "--", binary)
    line = one_error_line(proc, "record --backend bpf as nobody")
    for words in ("CAP_BPF", "CAP_PERFMON", "setcap", "in-process backend needs neither"):
        check(words in line, f"'{words}' not in {line!r}")
    trace = os.path.join(outdir, "inproc.trace")
    proc = as_nobody(os.path.join(outdir, "asynctrace"), "record", "--backend", "inproc", "-o", trace, "--", binary)
    check_eq(proc.returncode, 0, f"record --backend inproc as nobody ({proc.stderr.strip()[-300:]})")
    truth = ground_truth(TARGET)
    compare_with_truth(report_json(trace), truth)
