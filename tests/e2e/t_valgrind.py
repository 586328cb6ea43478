"""valgrind memcheck on the report and export paths: a synthetic trace
(tasks, wakes, nesting), a recorded one with on-CPU samples (the profile
exports), and an imported kernel trace: 0 errors, no definite leaks."""
import os
import shutil

from harness import *  # noqa: F401,F403
from t_golden import fixtures

VALGRIND = ("valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite")
REPO = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CAT_JSON = os.path.join(REPO, "..", "shared", "data", "zcore-real", "cat-cd0d658", "123.json")


def memcheck(*args, what):
    proc = run([*VALGRIND, TRACER, *args], timeout=600)
    check(proc.returncode != 99, f"valgrind found errors in {what}:\n{proc.stderr[-3000:]}")
    check_eq(proc.returncode, 0, f"{what} exit status under valgrind ({proc.stderr.strip()[-500:]})")


def report_and_exports(trace, name, profiles):
    for args in (["report"], ["report", "--json"], ["report", "--tasks"], ["tree"], ["tree", "--json"]):
        memcheck(*args, trace, what=f"{' '.join(args)} ({name})")
    formats = ["chrome", "perfetto"] + (["folded", "pprof", "speedscope", "svg"] if profiles else [])
    for fmt in formats:
        memcheck("export", "--format", fmt, "-o", tmpfile(f"vg-{name}.{fmt}"), trace,
                 what=f"export --format {fmt} ({name})")
    memcheck("export", "--format", "svg", "--weight", "poll-time", "-o", tmpfile(f"vg-{name}-pt.svg"), trace,
             what=f"export --format svg --weight poll-time ({name})")


@test_once
def valgrind_clean_on_report_and_export():
    check(shutil.which("valgrind"), "valgrind missing (scripts/install-deps.sh installs it)")
    report_and_exports(fixtures()["tasks"], "tasks fixture", profiles=False)
    need_root()
    trace = tmpfile("vg-profile.trace")
    proc = tracer("profile", "-F", "499", "-o", trace, "--", os.path.join(RUST, "tokio_ct"))
    check_eq(proc.returncode, 0, f"profile tokio_ct ({proc.stderr.strip()[-300:]})")
    report_and_exports(trace, "profiled tokio_ct", profiles=True)
    imported = tmpfile("vg-cat.trace")
    memcheck("import", "cat", CAT_JSON, "-o", imported, what="import cat")
    report_and_exports(imported, "imported CAT JSON", profiles=False)
