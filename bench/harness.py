"""What every benchmark section shares: running a command and timing it,
medians and spreads, the targets' ground truth, and the notes a run collects.
Python standard library only."""

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def die(msg):
    print("bench: " + msg, file=sys.stderr)
    sys.exit(1)


def say(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


class Run:
    """One finished command: wall and cpu seconds (cpu: user + system of the
    command and every process it waited for), first (seconds to its first
    stdout line), own_cpu (the command's own process, without its children:
    for a recorder, what recording cost besides the target), rc, out, err."""


def own_cpu_seconds(pid):
    """utime + stime of process pid (all its threads, not its children)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def sample_own_cpu(proc, every, into):
    """Until proc exits, keep its latest own CPU time in into[0]. The last
    sample is at most `every` seconds old when the process exits."""
    while proc.poll() is None:
        s = own_cpu_seconds(proc.pid)
        if s is not None:
            into[0] = s
        time.sleep(every)


def timed(cmd, first_line=False, own_cpu=False):
    """Run cmd with its output captured and return a Run."""
    r = Run()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    sample, sampler = [None], None
    if own_cpu:
        sampler = threading.Thread(target=sample_own_cpu, args=(p, 0.02, sample), daemon=True)
        sampler.start()
    head, r.first = "", None
    if first_line:
        head = p.stdout.readline()
        r.first = time.monotonic() - t0
    out, r.err = p.communicate()
    r.wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if sampler:
        sampler.join()
    r.own_cpu = sample[0]
    r.cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    r.rc, r.out = p.returncode, head + out
    return r


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs):
    """(max - min) / median of xs, a fraction: how far apart the runs were."""
    xs = [x for x in xs if x is not None]
    if len(xs) < 2 or not statistics.median(xs):
        return None
    return (max(xs) - min(xs)) / statistics.median(xs)


def ere_escape(s):
    """A POSIX ERE matching s literally (asynctrace --match/--function, uftrace -P)."""
    out = []
    for c in s:
        if c in ".{}()*+?|$":
            out.append("[" + c + "]")
        elif c in "[]\\^":
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def exact_regex(names):
    return "^(" + "|".join(ere_escape(n) for n in names) + ")$"


def ground_truth(binary, args):
    r = subprocess.run([binary] + args + ["--ground-truth"], capture_output=True, text=True)
    if r.returncode != 0:
        die("%s --ground-truth failed: %s" % (binary, r.stderr.strip()))
    gt = json.loads(r.stdout)
    # expected traced calls per function: Rust polls, C entries
    gt["expect"] = {n: f.get("polls", f.get("entries")) for n, f in gt["functions"].items()}
    return gt


class Bench:
    """Options and paths of this run, the notes it collects, and every
    recording's size (for bytes per event)."""

    def __init__(self, args, tmp):
        self.build = os.path.abspath(args.build)
        self.reps = args.reps
        self.quick = args.quick
        self.tmp = tmp
        self.at = os.path.join(self.build, "asynctrace")
        self.notes = []
        self.seen = {}             # a warning with its numbers blanked -> [first text, count]
        self.sizes = {}            # group -> [(trace bytes, events)]
        self.largest = (0, None)   # (events, path) of the largest overhead trace kept

    def target(self, *parts):
        path = os.path.join(self.build, "targets", *parts)
        if not os.access(path, os.X_OK):
            die("%s not found: run `make targets` (and `make -C tests/targets http`)" % path)
        return path

    def path(self, name):
        return os.path.join(self.tmp, name)

    def warn(self, msg):
        """Say msg; the notes keep one of each kind (repeats differing only
        in numbers, e.g. the same miscount at each shape, are counted)."""
        say("WARNING: " + msg)
        key = re.sub(r"\d+", "N", msg)
        if key in self.seen:
            self.seen[key][1] += 1
        else:
            self.seen[key] = [msg, 1]

    def all_notes(self):
        warned = ["WARNING: %s%s" % (m, " (and %d more like it)" % (n - 1) if n > 1 else "")
                  for m, n in self.seen.values()]
        return warned + self.notes

    def note(self, msg):
        self.notes.append(msg)

    def add_size(self, group, trace_bytes, events):
        self.sizes.setdefault(group, []).append((trace_bytes, events))

    def bytes_per_event(self, group=None):
        pairs = [p for g, ps in self.sizes.items() if group in (None, g) for p in ps]
        events = sum(e for _, e in pairs)
        return (sum(b for b, _ in pairs) / events, len(pairs)) if events else (None, 0)


def check_stdout(bench, label, run, gt):
    if run.out != gt["stdout"]:
        bench.warn("%s: target printed %r, ground truth %r" % (label, run.out[:200], gt["stdout"]))
        return False
    return True


def must_succeed(cmd, run):
    if run.rc != 0:
        die("`%s` exited %d:\n%s" % (" ".join(cmd), run.rc, run.err.strip()[-2000:]))
