"""On-CPU profiles (asynctrace profile): samples joined with the polls of
the same run must name the task and the futures that were on the CPU.

busy_poll runs its N tasks one after the other, each spinning MS ms of CPU
inside its first poll of `busy` (tests/targets/rust/src/bin/busy_poll.rs):
by construction nearly all CPU time of the run is inside those polls, one
task at a time, so the samples whose innermost future is `busy` must all
belong to busy tasks (at least 90 %: a sample taken on the edge of a poll
is the only doubt), each of the N tasks getting a share. The counts of the
report, of the folded stacks and of their groupings must agree exactly:
they are the same samples."""
import collections
import json
import os
import re
import shutil

from harness import *  # noqa: F401,F403

BUSY = os.path.join(RUST, "busy_poll")
RUST_FP = os.path.join(BUILD, "targets", "rust-fp", "debug")  # profile_tasks with frame pointers
BUSY_FN = "busy_poll::busy::{{closure}}"
TASKS, SPIN_MS, HZ = 3, 60, 999
_recorded = {}


def profiled():
    """busy_poll profiled once per backend: (trace, report --json)."""
    if backend() in _recorded:
        return _recorded[backend()]
    need_root()
    truth = ground_truth(BUSY, "--tasks", str(TASKS), "--spin-ms", str(SPIN_MS))
    trace = tmpfile(f"profile-busy-{backend()}.trace")
    proc = tracer("profile", "-q", "-F", str(HZ), "-o", trace, *backend_args(), "--", BUSY,
                  "--tasks", str(TASKS), "--spin-ms", str(SPIN_MS))
    check_eq(proc.returncode, 0, f"profile busy_poll ({proc.stderr.strip()})")
    check_eq(proc.stdout, truth["stdout"], "the target's stdout")
    report = report_json(trace)
    compare_with_truth(report, truth)
    _recorded[backend()] = (trace, report)
    return _recorded[backend()]


def folded(trace, *args):
    proc = tracer("export", "--format", "folded", *args, trace)
    check_eq(proc.returncode, 0, f"export folded {' '.join(args)} ({proc.stderr.strip()})")
    stacks = collections.Counter()
    for line in proc.stdout.splitlines():
        m = re.fullmatch(r"(.+) (\d+)", line)
        check(m is not None, f"a folded line without its count: {line!r}")
        check(m.group(1) not in stacks, f"a stack written twice: {m.group(1)!r}")
        stacks[m.group(1)] = int(m.group(2))
    return stacks


@test
def profile_samples_belong_to_the_busy_tasks():
    trace, report = profiled()
    prof = report.get("profile")
    check(prof is not None, "report --json of a profiled trace has no profile")
    check_eq(prof["hz"], HZ, "sampling frequency")
    # 3 x 60 ms of CPU at 999 Hz is ~180 samples; far fewer means sampling is broken.
    check(prof["samples"] >= 60, f"only {prof['samples']} samples of ~{TASKS * SPIN_MS} ms of CPU at {HZ} Hz")
    busy_tasks = {t["id"] for t in report["tasks"] if t["root"] == BUSY_FN}
    check_eq(len(busy_tasks), TASKS, "busy tasks in the report")
    in_busy = {f["function"]: f["samples"] for f in prof["functions"]}.get(BUSY_FN, 0)
    check(in_busy >= 0.9 * prof["samples"], f"{in_busy} of {prof['samples']} samples inside {BUSY_FN}")
    by_task = {t["task"]: t["samples"] for t in prof["tasks"]}
    attributed = sum(by_task.get(t, 0) for t in busy_tasks)
    check(attributed >= 0.9 * in_busy, f"{attributed} of the {in_busy} samples in {BUSY_FN} are the busy tasks'")
    for task in busy_tasks:
        check(by_task.get(task, 0) >= in_busy / TASKS / 3,
              f"task {task} got {by_task.get(task, 0)} of {in_busy} samples, though it spun as long as the others")
    check_eq(sum(by_task.values()) + prof["outside_polls"] + prof["outside_tasks"], prof["samples"],
             "samples by task + outside tasks + outside polls")


@test
def profile_folded_stacks_are_rooted_at_tasks():
    trace, report = profiled()
    prof = report["profile"]
    stacks = folded(trace)
    check_eq(sum(stacks.values()), prof["samples"], "folded samples vs report's")
    by_root = collections.Counter()
    for stack, n in stacks.items():
        frames = stack.split(";")
        by_root[frames[0]] += n
        if BUSY_FN in frames[1:]:
            check(re.fullmatch(r"task \d+: " + re.escape(BUSY_FN), frames[0]) is not None,
                  f"a stack through {BUSY_FN} not rooted at its task: {stack!r}")
            check_eq(frames[1], BUSY_FN, f"the future under the task root of {stack!r}")
    for t in prof["tasks"]:
        check_eq(by_root[f"task {t['task']}: {t['name']}"], t["samples"], f"folded samples of task {t['task']}")
    check_eq(by_root["[runtime]"], prof["outside_polls"], "samples outside polls")
    # The same samples grouped otherwise: by the outermost future, by thread.
    by_function = folded(trace, "--group-by", "function")
    check_eq(sum(by_function.values()), prof["samples"], "--group-by function: samples")
    check_eq(sum(n for s, n in by_function.items() if s.split(";")[0] == BUSY_FN),
             sum(n for s, n in stacks.items() if s.split(";")[1:2] == [BUSY_FN]), "--group-by function: busy's")
    by_thread = folded(trace, "--group-by", "thread")
    check_eq(sum(by_thread.values()), prof["samples"], "--group-by thread: samples")
    tids = {t["tid"] for t in report["threads"]}
    for s in by_thread:
        m = re.fullmatch(r".*/(\d+)", s.split(";")[0])
        check(m is not None and int(m.group(1)) in tids, f"--group-by thread: a root that is not a thread: {s!r}")


@test
def profile_folded_filters():
    trace, report = profiled()
    task = max(report["profile"]["tasks"], key=lambda t: t["samples"])
    only = folded(trace, "--task", str(task["task"]))
    check_eq(sum(only.values()), task["samples"], f"--task {task['task']}: samples")
    check(all(s.startswith(f"task {task['task']}: ") for s in only), "--task: stacks of another task")


@test_once
def profile_errors():
    one_error_line(tracer("profile", "-F", "0", "--", BUSY), "profile -F 0")
    one_error_line(tracer("profile", "-F", "many", "--", BUSY), "profile -F many")
    # A trace recorded without samples has no profile to export.
    need_root()
    trace = tmpfile("profile-none.trace")
    proc = tracer("record", "-q", "-o", trace, "--", BUSY, "--tasks", "1", "--spin-ms", "1")
    check_eq(proc.returncode, 0, f"record ({proc.stderr.strip()})")
    proc = tracer("export", "--format", "folded", trace)
    check_eq(proc.returncode, 1, "export folded of a trace without samples: exit status")
    check_eq(len(proc.stderr.strip().splitlines()), 1, f"one line: {proc.stderr!r}")
    check("no on-CPU samples" in proc.stderr, f"says why: {proc.stderr!r}")
    check("profile" not in report_json(trace), "report --json of a trace without samples has no profile")
    proc = tracer("export", "--format", "chrome", "--group-by", "task", trace)
    check_eq(proc.returncode, 2, "--group-by with chrome: exit status")


# --- profile_tasks: a CPU-heavy task, idle ones, blocking ones, a timer ------
# (tests/targets/rust/src/bin/profile_tasks.rs; its ground truth's "profile"
# names the burning function, the blocking polls and what must not block.)

def profile_tasks(build, call_graph="auto"):
    """profile_tasks of a build (debug or release) profiled under this
    backend: (truth, trace, report --json, task id by spawn line)."""
    key = (backend(), build, call_graph)
    if key in _recorded:
        return _recorded[key]
    need_root()
    binary = os.path.join({"debug": RUST, "release": RUST_RELEASE, "fp": RUST_FP}[build], "profile_tasks")
    truth = ground_truth(binary)
    trace = tmpfile(f"profile-tasks-{build}-{call_graph}-{backend()}.trace")
    proc = tracer("profile", "-F", str(HZ), "--call-graph", call_graph, "-o", trace, *backend_args(), "--",
                  binary)
    # The targets keep no frame pointers (rustc's x86_64 default): auto picks DWARF; the fp build's, frame pointers.
    want = {"auto": "frame pointers" if build == "fp" else "DWARF CFI", "dwarf": "DWARF CFI",
            "fp": "frame pointers"}[call_graph]
    check(f"profile: call graphs from {want}" in proc.stderr, f"--call-graph {call_graph}: {proc.stderr!r}")
    check_eq(proc.returncode, 0, f"profile profile_tasks ({proc.stderr.strip()})")
    check_eq(proc.stdout, truth["stdout"], "the target's stdout")
    report = report_json(trace)
    by_line = {}
    for t in report["tasks"]:
        m = re.search(r":(\d+)$", t.get("spawn_site") or "")
        if m:
            by_line.setdefault(int(m.group(1)), []).append(t["id"])
    _recorded[key] = (truth, trace, report, by_line)
    return _recorded[key]


def task_of_root(truth, by_line, root):
    """The task ids of the truth's tasks rooted at `root` (by spawn line:
    a release build may have inlined the root's own poll function)."""
    lines = {t["spawn_line"] for t in truth["tasks"] if t["root"] == root}
    check(lines, f"the truth has no task rooted at {root}")
    return {i for line in lines for i in by_line.get(line, [])}


def check_cpu_attribution(build, call_graph="auto"):
    truth, trace, report, by_line = profile_tasks(build, call_graph)
    burn_fn, burn_task = truth["profile"]["burn_fn"], truth["profile"]["burn_task_fn"]
    tasks = task_of_root(truth, by_line, burn_task)
    check_eq(len(tasks), 1, f"{build}: burner tasks found by spawn line")
    (task,) = tasks
    in_burn = attributed = 0
    for stack, n in folded(trace).items():
        if stack.split(";")[-1] != burn_fn:
            continue
        in_burn += n
        attributed += n if stack.startswith(f"task {task}: ") else 0
    # 5 polls x 40 ms of CPU at 999 Hz: ~200 samples, nearly all in burn_cpu.
    check(in_burn >= 50, f"{build}: only {in_burn} samples in {burn_fn} of ~{truth['profile']['burn_ms_total']} ms")
    check(attributed >= 0.9 * in_burn, f"{build}: {attributed} of {in_burn} samples in {burn_fn} are task {task}'s")
    return truth, trace, report


def check_blocking(build):
    truth, trace, report, by_line = profile_tasks(build)
    check("blocking" in report, f"{build}: report --json has no blocking list (were context switches recorded?)")
    found = report["blocking"]
    for want in truth["profile"]["blocking"]:
        tasks = task_of_root(truth, by_line, want["function"])
        mine = [b for b in found if b["task"] in tasks]
        check_eq(len(mine), want["polls"], f"{build}: blocking polls of {want['function']}")
        for b in mine:
            if build != "release":  # release inlines the async fn into the task's poll
                check_eq(b["function"], want["function"], f"{build}: the blocking poll's function")
            check(b["offcpu_ns"] >= want["min_offcpu_ns"],
                  f"{build}: {want['function']} off CPU {b['offcpu_ns']} ns < {want['min_offcpu_ns']}")
            check(b["offcpu_ns"] <= b["duration_ns"], f"{build}: off-CPU time longer than its poll: {b}")
            check(want["syscall"] in b["syscalls"], f"{build}: {want['function']} blocked in {b['syscalls']}, "
                                                     f"want {want['syscall']}")
            check(b["stack"], f"{build}: a blocking poll without the stack where it waited")
    for name in truth["profile"]["not_blocking"]:
        tasks = task_of_root(truth, by_line, name)
        check_eq([b for b in found if b["task"] in tasks or b["function"] == name], [],
                 f"{build}: {name} flagged as blocking")
    # CPU-heavy: the burner's polls spin 40 ms each (of wall time: on a loaded
    # machine less of it on the CPU), the blocking ones wait; only the burner.
    burner = task_of_root(truth, by_line, truth["profile"]["burn_task_fn"])
    heavy = report["cpu_heavy"]
    check(heavy, f"{build}: no CPU-heavy poll, though burner spins {truth['burn_ms']} ms a poll")
    check_eq([h for h in heavy if h["task"] not in burner], [], f"{build}: CPU-heavy polls of other tasks")
    check(len(heavy) <= truth["burn_polls"], f"{build}: more CPU-heavy polls than burner's polls: {heavy}")
    for h in heavy:
        check(h["oncpu_ns"] <= h["duration_ns"], f"{build}: on CPU longer than the poll: {h}")


@test
def profile_cpu_heavy_task_debug():
    check_cpu_attribution("debug")


@test
def profile_cpu_heavy_task_release():
    check_cpu_attribution("release")


@test
def profile_blocking_polls_debug():
    check_blocking("debug")


@test
def profile_blocking_polls_release():
    check_blocking("release")


@test
def profile_call_graph_fp_and_dwarf():
    """Both unwinders attribute the burning; only DWARF gets through the
    code without frame pointers: a blocked stack goes on past the blocking
    future into the runtime that polled it (tokio's Core::poll)."""
    for build in ("debug", "release"):
        for mode in ("fp", "dwarf"):
            check_cpu_attribution(build, mode)
    truth, trace, report, by_line = profile_tasks("debug", "dwarf")
    for b in report["blocking"]:
        fn = b["function"]
        check(fn in b["stack"], f"dwarf: the blocked stack of {fn} does not hold it: {b['stack']}")
        below = b["stack"][b["stack"].index(fn) + 1:]
        check(any(f.startswith("tokio::runtime::") for f in below),
              f"dwarf: the blocked stack of {fn} stops at it: {b['stack']}")


WEB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "web")


def pprof_read(path):
    """The pprof file as the pprof-format package reads it (tests/web)."""
    proc = run(["node", os.path.join(WEB, "pprof_read.mjs"), path])
    check_eq(proc.returncode, 0, f"pprof-format could not read {path}: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


@test
def profile_pprof_reads_back_as_the_folded_stacks():
    truth, trace, report, by_line = profile_tasks("debug")
    out = tmpfile(f"profile-{backend()}.pb.gz")
    proc = tracer("export", "--format", "pprof", "-o", out, trace)
    check_eq(proc.returncode, 0, f"export pprof ({proc.stderr.strip()})")
    with open(out, "rb") as f:
        check_eq(f.read(2), b"\x1f\x8b", "a gzipped file")
    prof = pprof_read(out)
    check_eq(prof["sampleTypes"], [["samples", "count"], ["cpu", "nanoseconds"]], "sample types")
    check_eq(prof["periodType"], ["cpu", "nanoseconds"], "period type")
    check_eq(prof["period"], 1_000_000_000 // HZ, "period: one sample's CPU time")
    # folded writes a ';' inside a name (`[T; N]`) as ':'; pprof keeps names as they are
    stacks = collections.Counter(";".join(f.replace(";", ":") for f in s["stack"]) for s in prof["samples"])
    check_eq(stacks, folded(trace), "pprof's stacks vs the folded stacks")
    # Source places from DWARF: the burning function's file, its lines.
    burn_fn = truth["profile"]["burn_fn"]
    files = {f["name"]: f["filename"] for f in prof["functions"]}
    check(files.get(burn_fn, "").endswith("/profile_tasks.rs"), f"{burn_fn}'s file: {files.get(burn_fn)!r}")
    check(any(name == burn_fn and line > 0 for name, line in prof["lines"]), f"no line of {burn_fn}")
    for s in prof["samples"]:
        check_eq(s["values"], [1, prof["period"]], "a sample's values")
        m = re.match(r"task (\d+): ", s["stack"][0])
        check_eq(s["labels"].get("task"), int(m.group(1)) if m else 0, f"task label of {s['stack'][0]!r}")
        # a task runs on a thread that polls; other threads (pipe-writer) are sampled too
        check(s["labels"].get("thread", 0) > 0, f"thread label {s['labels']}")
        if s["labels"]["task"]:
            check(s["labels"]["thread"] in {t["tid"] for t in report["threads"]}, f"thread label {s['labels']}")


def page_text(url, *words, screenshot=None):
    """The text of the page at url in headless Chromium, once it holds every
    word (tests/web/page_text.mjs): (text, found)."""
    check(shutil.which("chromium") is not None, "chromium is not installed (scripts/install-deps.sh installs it)")
    extra = ["--screenshot", screenshot] if screenshot else []
    proc = run(["node", os.path.join(WEB, "page_text.mjs"), url, *extra, *words], timeout=120)
    check_eq(proc.returncode, 0, f"page_text.mjs: {proc.stderr[-800:]}")
    out = json.loads(proc.stdout)
    return out["text"], out["found"]


def served(directory):
    """An HTTP server on localhost for directory, in a thread: (server, port)."""
    import functools
    import http.server
    import threading
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=directory))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


@test
def profile_speedscope_loads_in_speedscope():
    truth, trace, report, by_line = profile_tasks("debug")
    www = tmpfile(f"speedscope-www-{backend()}")
    shutil.rmtree(www, ignore_errors=True)
    shutil.copytree(os.path.join(WEB, "node_modules", "speedscope", "dist", "release"), os.path.join(www, "app"))
    out = os.path.join(www, "profile.json")
    proc = tracer("export", "--format", "speedscope", "-o", out, trace)
    check_eq(proc.returncode, 0, f"export speedscope ({proc.stderr.strip()})")
    with open(out) as f:
        doc = json.load(f)
    check_eq(doc["$schema"], "https://www.speedscope.app/file-format-schema.json", "schema")
    names = [fr["name"] for fr in doc["shared"]["frames"]]
    stacks = collections.Counter()
    for p in doc["profiles"]:
        check_eq(p["type"], "sampled", "profile type")
        check_eq(len(p["samples"]), len(p["weights"]), f"{p['name']}: samples vs weights")
        check_eq(sum(p["weights"]), p["endValue"] - p["startValue"], f"{p['name']}: weights vs its span")
        for s in p["samples"]:
            stacks[";".join(names[i].replace(";", ":") for i in s)] += 1  # as folded writes a ';' in a name
    check_eq(stacks, folded(trace), "speedscope's stacks vs the folded stacks")
    burn_fn, burn_task = truth["profile"]["burn_fn"], truth["profile"]["burn_task_fn"]
    (task,) = task_of_root(truth, by_line, burn_task)
    server, port = served(www)
    # speedscope's sandwich view lists every function as text: the task root and the burning function.
    words = (doc["profiles"][0]["name"], f"task {task}: {burn_task}", burn_fn)
    try:
        url = f"http://127.0.0.1:{port}/app/index.html#profileURL=" + \
              f"http%3A%2F%2F127.0.0.1%3A{port}%2Fprofile.json&view=sandwich"
        text, found = page_text(url, *words)
    finally:
        server.shutdown()
    check(found, f"speedscope never showed {words}: it shows {text[:600]!r}")


@test
def profile_svg_flame_graph_renders():
    import xml.etree.ElementTree as ET
    truth, trace, report, by_line = profile_tasks("debug")
    burn_fn = truth["profile"]["burn_fn"]
    (task,) = task_of_root(truth, by_line, truth["profile"]["burn_task_fn"])
    www = tmpfile(f"svg-www-{backend()}")
    os.makedirs(www, exist_ok=True)
    out = os.path.join(www, "flame.svg")
    proc = tracer("export", "--format", "svg", "-o", out, trace)
    check_eq(proc.returncode, 0, f"export svg ({proc.stderr.strip()})")
    ns = "{http://www.w3.org/2000/svg}"
    root = ET.parse(out).getroot()  # well-formed XML, or this raises
    frames = {}
    for g in root.iter(ns + "g"):
        m = re.fullmatch(r"(.*) \((\d+) samples, [\d.]+%\)", g.find(ns + "title").text)
        check(m is not None, f"a frame's title: {g.find(ns + 'title').text!r}")
        frames.setdefault(m.group(1), []).append((int(m.group(2)), g.find(ns + "rect").get("fill")))
    stacks = folded(trace)
    total = sum(stacks.values())
    check_eq(frames["all"][0][0], total, "the bottom bar holds every sample")
    burning = sum(n for s, n in stacks.items() if burn_fn in s.split(";"))
    check_eq(sum(n for n, _ in frames.get(burn_fn, [])), burning, f"{burn_fn}'s frames vs the folded stacks")
    check(len({fill for _, fill in frames[burn_fn]}) == 1, "one function, one color")
    # The same trace gives the same file; a frame's color is its name's, whatever the trace.
    again = tmpfile(f"flame-again-{backend()}.svg")
    tracer("export", "--format", "svg", "-o", again, trace)
    with open(out, "rb") as a, open(again, "rb") as b:
        check(a.read() == b.read(), "two exports of one trace differ")
    other = profile_tasks("release")[1]
    proc = tracer("export", "--format", "svg", "-o", again, other)
    check_eq(proc.returncode, 0, "export svg of the release trace")
    fills = {g.find(ns + "title").text.rsplit(" (", 1)[0]: g.find(ns + "rect").get("fill")
             for g in ET.parse(again).getroot().iter(ns + "g")}
    check_eq(fills.get(burn_fn), frames[burn_fn][0][1], f"{burn_fn}'s color in another trace")
    # In Chromium its script labels the frames, and searching shows the share matched.
    server, port = served(www)
    try:
        text, found = page_text(f"http://127.0.0.1:{port}/flame.svg#search=" + re.escape(burn_fn).replace(":", "%3A"),
                                f"task {task}: ", burn_fn, "Matched: ", screenshot=os.path.join(www, "flame.png"))
    finally:
        server.shutdown()
    check(found, f"the flame graph never showed its labels and search: {text[:400]!r}")
    m = re.search(r"Matched: ([\d.]+)%", text)
    check_eq(float(m.group(1)), round(100 * burning / total, 1), "the share the search matched")
    check(os.path.getsize(os.path.join(www, "flame.png")) > 5000, "the screenshot is empty")


@test
def profile_frame_pointer_build():
    """Built with frame pointers, auto takes them, and the kernel's walk
    alone gets through the task's stack down to main, as DWARF's does
    without them. (A frame-pointer walk from inside a libc wrapper that
    sets up no frame, as `read`, skips that wrapper's caller: the blocking
    future itself is then missing from its wait's stack; docs/cli.md.)"""
    check_cpu_attribution("fp")
    check_blocking("fp")
    truth, trace, report, by_line = profile_tasks("fp")
    for b in report["blocking"]:
        check(any(f.startswith("tokio::runtime::") for f in b["stack"][1:]) and "main" in b["stack"],
              f"fp: the blocked stack of {b['function']} does not reach main through tokio: {b['stack']}")


def weighted(trace, *args):
    """export --weight poll-time: {stack: ns}."""
    proc = tracer("export", "--format", "folded", "--weight", "poll-time", *args, trace)
    check_eq(proc.returncode, 0, f"export folded --weight poll-time ({proc.stderr.strip()})")
    stacks = {}
    for line in proc.stdout.splitlines():
        stack, ns = line.rsplit(" ", 1)
        check(stack not in stacks, f"a stack written twice: {stack!r}")
        stacks[stack] = int(ns)
    return stacks


@test
def profile_poll_time_flame_graph_adds_up():
    """Without samples, from the polls: each poll's own time on its stack.
    Self times telescope, so the stacks of a task sum exactly to its busy
    time and all of them to the threads' busy time (report --json), for a
    profiled trace and a plain recording alike."""
    truth, profiled_trace, _, _ = profile_tasks("debug")
    plain, proc = record(os.path.join(RUST, "profile_tasks"), out=tmpfile(f"poll-time-{backend()}.trace"))
    check_eq(proc.returncode, 0, f"record ({proc.stderr.strip()})")
    for trace in (profiled_trace, plain):
        report = report_json(trace)
        stacks = weighted(trace)
        check_eq(sum(stacks.values()), sum(t["busy_ns"] for t in report["threads"]),
                 "poll-time stacks vs the threads' busy time")
        for t in report["tasks"]:
            if t["kind"] != "task":
                continue  # block_on's own future counts its wrappers otherwise
            mine = sum(ns for s, ns in stacks.items() if s.startswith(f"task {t['id']}: "))
            check_eq(mine, t["busy_ns"], f"poll-time of task {t['id']} vs its busy time")
        only = weighted(trace, "--task", "2")
        check(only and all(s.startswith("task 2: ") for s in only), "--task 2: other tasks' stacks")
    proc = tracer("export", "--format", "svg", "--weight", "poll-time", "-o", tmpfile("poll-time.svg"), plain)
    check_eq(proc.returncode, 0, f"svg --weight poll-time of a trace without samples ({proc.stderr.strip()})")
    one_error_line(tracer("export", "--format", "pprof", "--weight", "poll-time", plain), "pprof --weight poll-time")
    one_error_line(tracer("export", "--format", "folded", "--weight", "cpu", plain), "--weight cpu")


@test_once
def profile_needs_no_root():
    """As an ordinary user with no capabilities (kernel.perf_event_paranoid
    2, this machine's and Debian's default): the on-CPU samples of one's own
    command are allowed, the context switches (counted in the kernel) are
    not, which one warning line says; the profile goes on."""
    need_root()
    with open("/proc/sys/kernel/perf_event_paranoid") as f:
        paranoid = int(f.read())
    check(paranoid <= 2, f"kernel.perf_event_paranoid is {paranoid}: user profiling is not allowed here")
    outdir = nobody_copies("profile-nobody", BUSY)
    trace = os.path.join(outdir, "p.trace")
    args = ("--tasks", "2", "--spin-ms", "50")
    truth = ground_truth(BUSY, *args)
    proc = as_nobody(os.path.join(outdir, "asynctrace"), "profile", "-F", str(HZ), "-o", trace, "--",
                     os.path.join(outdir, "busy_poll"), *args)
    check_eq(proc.returncode, 0, f"profile as nobody ({proc.stderr.strip()})")
    check_eq(proc.stdout, truth["stdout"], "stdout")
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    check_eq(len(warnings), 1, f"one warning, about context switches: {proc.stderr!r}")
    check("context switches" in warnings[0] and "perf_event_paranoid" in warnings[0], f"says why: {warnings[0]!r}")
    report = report_json(trace)
    check(report["profile"]["samples"] >= 20, f"samples as nobody: {report['profile']['samples']}")
    check("blocking" not in report, "no blocking list without context switches")


@test_once
def profile_attaches_to_a_running_process():
    """profile -p: a process already running (its existing threads sampled,
    events by uprobes); the samples inside busy belong to busy's tasks."""
    import subprocess
    import time
    need_root()
    args = ("--tasks", "6", "--spin-ms", "200")
    target = subprocess.Popen([BUSY, *args], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)  # well inside the first task's spin
        trace = tmpfile("profile-attach.trace")
        proc = tracer("profile", "-q", "-F", str(HZ), "-d", "0.6", "-o", trace, "-p", str(target.pid))
        check_eq(proc.returncode, 0, f"profile -p ({proc.stderr.strip()})")
    finally:
        target.wait(timeout=30)
    report = report_json(trace)
    prof = report["profile"]
    check(prof["samples"] >= 200, f"{prof['samples']} samples of ~0.6 s of CPU at {HZ} Hz")
    busy_tasks = {t["id"] for t in report["tasks"] if t["root"] == BUSY_FN}
    check(len(busy_tasks) >= 2, f"busy tasks seen while attached: {busy_tasks}")
    in_busy = {f["function"]: f["samples"] for f in prof["functions"]}.get(BUSY_FN, 0)
    attributed = sum(t["samples"] for t in prof["tasks"] if t["task"] in busy_tasks)
    # The poll running when the probes attach is seen from its end only: its
    # samples (up to a spin's 200 ms of the 600 recorded) are outside polls.
    check(in_busy >= 0.5 * prof["samples"], f"{in_busy} of {prof['samples']} samples in {BUSY_FN}")
    check(attributed >= 0.9 * in_busy, f"{attributed} of the {in_busy} samples in {BUSY_FN} are busy tasks'")
