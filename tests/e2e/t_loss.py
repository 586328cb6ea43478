"""Lost events: counted one by one, exactly, and shown by record and report.

With ASYNCTRACE_DRAIN_AT_END=1 record takes nothing from the ring buffer or
the agent's buffers until the target has exited, so what fits is the
buffers' capacity and everything beyond it is lost: the counts are known
before the run (docs/cli.md, "What fits before record drains")."""
from harness import *  # noqa: F401,F403

PROBE_MECH = os.path.join(C_TARGETS, "probe_mech")
PLAIN = ("--function", "^plain$")  # one leaf function: an entry and an exit per call, one thread

RING_MB = 0.001  # rounded up to the smallest ring buffer: one page
RING_SLOT = 64   # struct probe_event (56 bytes) + the ring's 8-byte record header
POOL_MB = 0.25   # the smallest pool: two buffers
AGENT_BUFFER = 128 << 10
AGENT_RECORDS = (AGENT_BUFFER - 128) // 32  # a 128-byte header, then 32-byte records: 4092


def ring_bytes(mb):
    size = 4096
    while size < mb * 1024 * 1024:
        size <<= 1
    return size


def buffer_mb():
    return RING_MB if backend() == "bpf" else POOL_MB


def capacity():
    """Events one thread can write before record drains."""
    if backend() == "bpf":
        # The producer stays less than the ring's size ahead of the reader;
        # the thread's name takes the first slot.
        return (ring_bytes(RING_MB) - 1) // RING_SLOT - 1
    return max(2, int(POOL_MB * 1024 * 1024) // AGENT_BUFFER) * AGENT_RECORDS


def record_undrained(calls, name):
    """probe_mech --calls N, with record draining only after it exited."""
    need_root()
    trace = tmpfile(f"{name}-{backend()}.trace")
    env = dict(os.environ, ASYNCTRACE_DRAIN_AT_END="1")
    proc = run([TRACER, "record", "-o", trace, *backend_args(), "--buffer-size", str(buffer_mb()), *PLAIN,
                "--", PROBE_MECH, "--calls", str(calls)], env=env)
    check_eq(proc.returncode, 0, f"record's exit status ({proc.stderr})")
    check_eq(proc.stdout, f"probe_mech: {calls} calls done\n", "the command's output")
    report = report_json(trace)
    # The capacity above is one backend's: a mixed capture would be neither.
    check_eq(report["capture"], "inproc" if backend() == "inproc" else "ebpf-uprobe", "capture")
    return trace, proc, report


def produced(calls):
    truth = ground_truth(PROBE_MECH, "--calls", str(calls))["functions"]["plain"]
    return truth["entries"] + truth["exits"]


def check_counts(report, calls, want_lost):
    check_eq(report["lost"], want_lost, f"lost events ({produced(calls)} produced, {capacity()} fit)")
    check_eq(report["events"], produced(calls) - want_lost, "events recorded")
    check_eq(report["events"] + report["lost"], produced(calls), "events recorded + lost vs produced")


def check_shown(trace, proc, report):
    """record's summary and the text report state the exact counts."""
    lost, events = report["lost"], report["events"]
    check(f"record: {events} events from 1 thread " in proc.stderr, f"record's summary of events: {proc.stderr!r}")
    check(f"; {lost} lost\n" in proc.stderr, f"record's summary states {lost} lost: {proc.stderr!r}")
    warning = f"warning: record: {lost} events were lost (" in proc.stderr
    check_eq(warning, lost > 0, f"record warns of the loss ({proc.stderr!r})")
    text = tracer("report", trace)
    check_eq(text.returncode, 0, f"report ({text.stderr})")
    check(f"Recorded: {events} events, {lost} lost," in text.stdout, f"the text report's counts: {text.stdout!r}")
    shown = f"WARNING:  {lost} events were lost while recording" in text.stdout
    check_eq(shown, lost > 0, f"the text report's warning ({text.stdout!r})")
    check_eq(text.stdout.count("were lost"), 1 if lost else 0, "loss warnings in the text report")


@test
def lost_events_are_counted_and_shown():
    """Far more events than fit: the rest are lost, counted exactly (each
    drop, not each full buffer), and record and report both say how many."""
    calls = 5 * capacity()  # ten times the events that fit
    trace, proc, report = record_undrained(calls, "lossy")
    check_counts(report, calls, produced(calls) - capacity())
    check_shown(trace, proc, report)


@test
def loss_begins_exactly_at_capacity():
    """Exactly as many events as fit: none lost; one call more: its two."""
    fit = capacity() // 2
    trace, proc, report = record_undrained(fit, "fits")
    check_counts(report, fit, 0)
    check_shown(trace, proc, report)
    trace, proc, report = record_undrained(fit + 1, "one-more")
    check_counts(report, fit + 1, 2)
    check_shown(trace, proc, report)


@test
def loss_under_load_adds_up():
    """Buffers too small for the event rate while record drains as usual:
    how many are lost depends on the scheduling, but every event produced
    is either in the trace or counted, and record warns exactly when any is."""
    need_root()
    trace = tmpfile(f"load-{backend()}.trace")
    if backend() == "bpf":  # one page of ring buffer against 90 k events
        calls = 5000
        functions = ("--function", "^(multi_ret|tail_caller|tail_target|plain|recurse|many_args)$")
        truth = ground_truth(PROBE_MECH, "--calls", str(calls))
        want = sum(f["entries"] + f["exits"] for f in truth["functions"].values())
        proc = tracer("record", "-o", trace, *backend_args(), "--buffer-size", str(RING_MB), *functions, "--",
                      PROBE_MECH, "--calls", str(calls))
    else:  # two 128 KiB buffers against tens of millions of events a second
        counts = tmpfile("load-counts.json")
        proc = tracer("record", "-o", trace, *backend_args(), "--buffer-size", str(POOL_MB), "--polls-only",
                      "-m", "Tick", "--", os.path.join(RUST_RELEASE, "rate"), "--threads", "2", "--seconds", "1",
                      "--counts", counts)
        with open(counts) as f:
            want = 2 * sum(c["polls"] for n, c in json.load(f)["functions"].items() if "Tick" in n)
    check_eq(proc.returncode, 0, f"record ({proc.stderr})")
    report = report_json(trace)
    check_eq(report["events"] + report["lost"], want, "events recorded + lost vs produced")
    check_eq(f"{report['lost']} events were lost" in proc.stderr, report["lost"] > 0,
             f"record warns of the {report['lost']} lost ({proc.stderr!r})")
