"""The command line itself: --help of every command, and the options that
shape report's output (--top, --sort, --long-poll) on a synthetic trace
whose rows are known (tests/golden/README.md)."""
import json
import os
import subprocess

from harness import *  # noqa: F401,F403
from t_golden import fixtures

COMMANDS = ("symbols", "record", "report", "tree", "export")


@test_once
def help_of_every_command_exits_zero():
    for command in COMMANDS:
        proc = tracer(command, "--help")
        check_eq(proc.returncode, 0, f"{command} --help exit status")
        check(proc.stdout.startswith(f"usage: asynctrace {command}"), f"{command} --help: {proc.stdout[:60]!r}")
        check_eq(proc.stderr, "", f"{command} --help stderr")
    proc = tracer("--help")
    check_eq(proc.returncode, 0, "--help exit status")
    for command in COMMANDS:
        check(f"  {command} " in proc.stdout, f"--help lists {command}")


def report_json_of(*args):
    proc = tracer("report", "--json", *args, fixtures()["stats"])
    check_eq(proc.returncode, 0, f"report --json {' '.join(args)} ({proc.stderr.strip()})")
    return json.loads(proc.stdout)


@test_once
def report_top_sort_and_long_poll_options():
    everything = report_json_of()
    check_eq(len(everything["functions"]), 6, "function rows without --top")
    top = report_json_of("--top", "2")
    check_eq([f["name"] for f in top["functions"]], [f["name"] for f in everything["functions"][:2]],
             "--top 2: the first two rows")
    check_eq([(p["function"], p["duration_ns"]) for p in top["longest"]],
             [("demo::compute::{{closure}}", 30000000), ("demo::job::{{closure}}", 15000000)],
             "--top 2: the two longest polls")
    by_polls = report_json_of("--sort", "polls")
    check_eq(by_polls["functions"][0]["name"], "demo::compute::{{closure}}", "--sort polls: 100 polls first")
    by_name = [f["name"] for f in report_json_of("--sort", "name")["functions"]]
    check_eq(by_name, sorted(by_name), "--sort name")
    # 30, 15, 12 ms are longer than 10 ms; with 11 ms the 12 ms poll still is, with 13 ms not.
    check_eq(report_json_of("--long-poll", "11")["warnings"]["long_polls"], 3, "--long-poll 11")
    check_eq(report_json_of("--long-poll", "13")["warnings"]["long_polls"], 2, "--long-poll 13")
    text = tracer("report", "--top", "1", fixtures()["stats"]).stdout
    rows = [line for line in text.splitlines() if "compiler" in line or "  task " in line or "  user " in line]
    check_eq(len(rows), 1, f"text report --top 1 function rows: {rows}")
    one_error_line(tracer("report", "--top", "x", fixtures()["stats"]), "report --top x")
    one_error_line(tracer("report", "--sort", "nope", fixtures()["stats"]), "report --sort nope")


@test_once
def chrome_export_says_when_too_big_for_viewers():
    """1.5 M events (polls only) make ~330 MB of Chrome JSON, past the ~256 MB viewers
    open: export says so once, suggests Perfetto, and still writes it; a
    small trace gets no warning."""
    need_root()
    binary = os.path.join(RUST, "tokio_ct")
    big = tmpfile("big-chrome.trace")
    proc = tracer("record", "-q", "--backend", "inproc", "-m", "tokio_ct", "--polls-only", "-o", big, "--",
                  binary, "--tasks", "100", "--yields", "2499")
    check_eq(proc.returncode, 0, f"record ({proc.stderr.strip()})")
    out = tracer("export", "--format", "chrome", "-o", "/dev/null", big)
    check_eq(out.returncode, 0, f"export of a big trace ({out.stderr.strip()})")
    lines = out.stderr.strip().splitlines()
    check(len(lines) == 1 and "more than its viewers open" in lines[0] and "--format perfetto" in lines[0],
          f"one warning line: {out.stderr!r}")
    small = tracer("export", "--format", "chrome", "-o", "/dev/null", fixtures()["stats"])
    check_eq((small.returncode, small.stderr), (0, ""), "export of a small trace: no warning")


@test_once
def bad_options_get_one_line_and_exit_2():
    trace = fixtures()["stats"]
    for command, args in (("report", ("--bogus", trace)), ("report", ("--top",)), ("tree", ("-z", trace)),
                          ("export", ("--format",)), ("symbols", ("--what", "x")), ("record", ("--nope", "true"))):
        proc = tracer(command, *args)
        line = one_error_line(proc, f"{command} {' '.join(args)}")
        check_eq(proc.returncode, 2, f"{command} {args[0]}: exit status")
        check(f"asynctrace: {command}: " in line and args[0] in line and "--help" in line, f"{command}: {line!r}")


@test_once
def full_stdout_is_one_error_line():
    """Output to a full disk (/dev/full): exit 1 and one line naming the
    cause, not the command's line and main's again."""
    trace = fixtures()["stats"]
    binary = os.path.join(RUST, "tokio_ct")
    for args in (("symbols", binary), ("symbols", "--format", "json", binary), ("report", trace),
                 ("report", "--json", trace), ("report", "--tasks", trace), ("tree", trace),
                 ("tree", "--json", trace)):
        with open("/dev/full", "w") as full:
            proc = subprocess.run([TRACER, *args], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
        line = one_error_line(proc, " ".join(args[:-1]) + " > /dev/full")
        check_eq(proc.returncode, 1, f"{args[0]} > /dev/full: exit status")
        check("No space left on device" in line, f"{args[0]} > /dev/full: {line!r}")


@test_once
def perfetto_compression_level_option():
    """--compression-level: 0 writes plain packets, any level the same
    packets once inflated; out of range, or for Chrome, one line and exit 2."""
    from perfetto_decode import inflate
    trace, files = fixtures()["stats"], {}
    for level in ("0", "1", "9"):
        files[level] = tmpfile(f"level{level}.pftrace")
        proc = tracer("export", "--format", "perfetto", "--compression-level", level, "-o", files[level], trace)
        check_eq(proc.returncode, 0, f"--compression-level {level} ({proc.stderr.strip()})")
    default = tmpfile("level-default.pftrace")
    check_eq(tracer("export", "--format", "perfetto", "-o", default, trace).returncode, 0, "default level")
    data = {k: open(v, "rb").read() for k, v in dict(files, default=default).items()}
    plain = {k: inflate(v) for k, v in data.items()}
    check_eq(plain["0"][1], 0, "level 0: no compressed bundle")
    check(plain["1"][1] >= 1 and plain["9"][1] >= 1, "levels 1 and 9: compressed bundles")
    check(plain["0"][0] == plain["1"][0] == plain["9"][0] == data["0"], "the same packets at every level")
    check_eq(data["default"], data["1"], "the default is level 1")
    for args in (("--format", "perfetto", "--compression-level", "13"),
                 ("--format", "perfetto", "--compression-level", "x"),
                 ("--format", "perfetto", "--compression-level", "-1"),
                 ("--format", "chrome", "--compression-level", "1")):
        proc = tracer("export", *args, "-o", "/dev/null", trace)
        line = one_error_line(proc, f"export {' '.join(args)}")
        check_eq(proc.returncode, 2, f"export {' '.join(args)}: exit status")
        check(line.startswith("asynctrace: export: --compression-level"), f"{' '.join(args)}: {line!r}")
