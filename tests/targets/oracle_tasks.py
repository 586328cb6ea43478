"""Task-level checks for oracle.py (ground truths with a "tasks" list).

Besides the poll functions' entries and returns, probes (entry uprobes, and
uprobes on `ret`/tail-`jmp` exits; never uretprobes):
  * the runtime's poll of a whole task (tokio `Harness<T,S>::poll`, async-task
    `RawTask<F,T,S>::run`, futures `LocalFutureObj::poll` as LocalPool calls
    it), its first argument identifying the task;
  * the waker vtable's wake (by value) and wake_by_ref functions, whose first
    argument is the waker's data pointer (the task, for these runtimes), and
    the thread's comm; a wake inside another wake (async-task's `wake` calls
    `wake_by_ref`) is not counted twice;
  * task creation: tokio `OwnedTasks<S>::bind` and async-task
    `RawTask::allocate` (or async-executor's `Executor::spawn`), returning the
    task pointer; futures `LocalSpawner::spawn_local_obj`, taking the boxed
    future;
  * `core::ptr::drop_in_place<F>` of each async fn with "instances".
With DWARF types (debug builds) every async fn entry and drop also fetches
the future's address and its `__state` byte: state 0 at entry starts an
instance, a drop in a SuspendN state is a cancellation, and the state seen at
the poll after a Pending (or at the drop) names the await point it was parked
on (SuspendN's DW_AT_decl_file/line).

A task instance's root is the first ground-truth function polled inside the
runtime's poll of it; its parent is the task being polled on the thread that
created it. A wake is "self" if the waking thread is polling the woken task,
"task:ROOT" if it is polling another task, else "thread:COMM".
"""
import re
import subprocess
from collections import Counter, defaultdict

RUNTIMES = {
    "tokio": {
        "poll": ["tokio::runtime::task::harness::Harness<T,S>::poll"],
        "wake_by_val": ["tokio::runtime::task::waker::wake_by_val"],
        "wake_by_ref": ["tokio::runtime::task::waker::wake_by_ref"],
        "create": ["tokio::runtime::task::list::OwnedTasks<S>::bind"],
    },
    "async-std": {
        "poll": ["async_task::raw::RawTask<F,T,S>::run"],
        "wake_by_val": ["async_task::raw::RawTask<F,T,S>::wake"],
        "wake_by_ref": ["async_task::raw::RawTask<F,T,S>::wake_by_ref"],
        "create": ["async_task::raw::RawTask<F,T,S>::allocate", "async_task::runnable::spawn_unchecked",
                   "async_executor::Executor::spawn", "async_global_executor::executor::spawn"],
    },
    "futures": {
        "poll": ["<futures_task::future_obj::LocalFutureObj<T> as core::future::future::Future>::poll"],
        "wake_by_val": ["futures_task::waker::wake_arc_raw"],
        "wake_by_ref": ["futures_task::waker::wake_by_ref_arc_raw"],
        "spawn": ["<futures_executor::local_pool::LocalSpawner as futures_task::spawn::LocalSpawn>::spawn_local_obj"],
    },
}


def dwarfdump(*args):
    return subprocess.run(["llvm-dwarfdump", *args], check=True, capture_output=True, text=True).stdout


def async_envs(binary):
    """'crate::path::{{closure}}' -> (state offset, {state: (file, line)}) of each async fn's state machine."""
    envs, stack, env, discr = {}, [], None, None
    for line in dwarfdump("--name={async_fn_env#0}", "-c", "-p", binary).splitlines():
        m = re.match(r"0x[0-9a-f]+:( +)(DW_TAG_\w+)", line)
        if m:
            depth, tag = len(m.group(1)), m.group(2)
            while stack and stack[-1][0] >= depth:
                stack.pop()
            stack.append([depth, tag, None])
            if env and depth <= env[0]:
                env = None
            continue
        a = re.match(r"\s+(DW_AT_\w+)\s+\((.*)\)$", line)
        if not a or not stack:
            continue
        key, val, die = a.group(1), a.group(2), stack[-1]
        if key == "DW_AT_name":
            die[2] = val.strip('"')
            if die[1] == "DW_TAG_structure_type" and die[2] == "{async_fn_env#0}":
                path = "::".join(d[2] for d in stack[:-1] if d[1] == "DW_TAG_namespace")
                env = (die[0], envs.setdefault(path + "::{{closure}}", [None, {}]))
        elif env and key == "DW_AT_data_member_location" and die[2] == "__state":
            env[1][0] = int(val, 16)
        elif env and key == "DW_AT_discr_value":
            discr = int(val, 16)
        elif env and key == "DW_AT_decl_file":
            file = val.strip('"')
        elif env and key == "DW_AT_decl_line" and discr is not None:
            env[1][1][discr] = (file, int(val))
            discr = None
    return {k: (off, states) for k, (off, states) in envs.items() if off is not None}


def member_offset(binary, struct, member):
    out = dwarfdump(f"--name={struct}", "-c", binary)
    m = re.search(r'DW_AT_name\s+\("' + re.escape(member) + r'"\)\s+(?:DW_AT_\w+\s+\(.*\)\s+)*?'
                  r"DW_AT_data_member_location\s+\((0x[0-9a-f]+)\)", out)
    return int(m.group(1), 16) if m else None


def runs(seq):
    """[18, 18, 18, 20] -> '18x3 20'."""
    out = []
    for x in seq:
        if out and out[-1][0] == x:
            out[-1][1] += 1
        else:
            out.append([x, 1])
    return " ".join(f"{x}x{n}" if n > 1 else f"{x}" for x, n in out)


class Inst:
    """One task instance: its key (task or boxed-future pointer), parent instance, root, polls."""

    def __init__(self, key, parent):
        self.key, self.parent, self.root, self.polls = key, parent, None, 0


class Checker:
    def __init__(self, binary, truth, syms, exit_sites):
        """syms: name -> [(address, size)]; exit_sites(binary, address, size) -> [(address, is_ret)]."""
        self.binary, self.truth, self.syms, self.exit_sites = binary, truth, syms, exit_sites
        self.rt = RUNTIMES[truth["runtime"]]
        self.envs = async_envs(binary)
        self.futures = truth["runtime"] == "futures"
        if self.futures:  # the boxed future inside LocalFutureObj; LocalFutureObj inside Task
            self.obj_off = member_offset(binary, "LocalFutureObj<()>", "future")
            self.task_off = member_offset(binary, "Task<futures_task::future_obj::LocalFutureObj<()>>", "future")

    def entry_fetch(self, name, layout):
        """Fetch args of an async fn's entry: its future (self) and state byte."""
        if name not in self.envs or not layout:
            return ""
        reg = "%si" if layout[0] > 16 else "%di"  # a large Poll<T> comes back through %rdi
        return f"s={reg}:x64 st=+{self.envs[name][0]}({reg}):u8"

    def probes(self, plan):
        out = []
        for i, name, want, layout in plan:
            if "instances" in want and name in self.envs:
                off = self.envs[name][0]
                for k, (addr, _) in enumerate(self.syms.get(f"core::ptr::drop_in_place<{name}>", [])):
                    out.append((f"x{i}_{k}", addr, f"s=%di:x64 st=+{off}(%di):u8"))
        if self.futures and (self.obj_off is None or self.task_off is None):
            print("skip  tasks: no DWARF types for futures' Task layout")
            self.rt = {}
        for role, names in self.rt.items():
            for name in names:
                if name in self.syms:
                    break
            else:
                print(f"skip  {role}: none of {names} has a symbol")
                continue
            for k, (addr, size) in enumerate(self.syms[name]):
                tag = f"{role[0]}{role[-1]}{k}"
                if role == "create":
                    rets = [a for a, is_ret in self.exit_sites(self.binary, addr, size) if is_ret]
                    out += [(f"{tag}_{j}", r, "t=%ax:x64") for j, r in enumerate(rets)]
                    continue
                if role == "spawn":
                    out.append((tag, addr, f"b=+{self.obj_off}(%si):x64"))
                    continue
                fetch = "t=%di:x64"
                if role == "poll" and self.futures:
                    fetch += f" b=+{self.obj_off}(%di):x64"
                if role.startswith("wake"):
                    fetch += " c=$comm"
                out.append((tag, addr, fetch))
                out += [(f"q{tag}_{j}", a, "") for j, (a, _) in enumerate(self.exit_sites(self.binary, addr, size))]
        self.roles = {f"{r[0]}{r[-1]}": r for r in self.rt}
        return out

    def check(self, plan, events):
        names = {i: name for i, name, _, _ in plan}
        pending_of = {i: layout[3] for i, _, _, layout in plan if layout}
        stacks = defaultdict(list)  # tid -> frames ("task", Inst) | ("fn", i, self) | ("wake",)
        current, by_task, insts = {}, {}, []
        futs, seqs = {}, defaultdict(list)  # (i, self) -> [parked states, last was Pending]
        n_inst, n_cancel, tree, wakes = Counter(), Counter(), Counter(), Counter()

        def innermost_task(st):
            return next((f[1] for f in reversed(st) if f[0] == "task"), None)

        for tid, comm, _, ev, f in events:
            st = stacks[tid]
            m = re.fullmatch(r"(q?)([a-z]+)(\d+)(?:_\d+)?", ev)
            exit_, tag, i = m.group(1), m.group(2), int(m.group(3))
            role = self.roles.get(tag) if tag not in ("e", "r", "x") else None
            if role in ("create", "spawn"):
                key = f["b"] if role == "spawn" else f["t"]
                current[key] = Inst(key, innermost_task(st))
                insts.append(current[key])
            elif role == "poll" and exit_:
                while st and st.pop()[0] != "task":
                    pass
            elif role == "poll":
                key = f["b"] if self.futures else f["t"]
                inst = current.get(key) or current.setdefault(key, Inst(key, None))
                inst.polls += 1
                if self.futures:
                    by_task[f["t"] - self.task_off] = inst
                st.append(("task", inst))
            elif role and role.startswith("wake") and exit_:
                if st and st[-1][0] == "wake":
                    st.pop()
            elif role and role.startswith("wake"):
                nested = any(fr[0] == "wake" for fr in st)
                src = innermost_task(st)
                st.append(("wake",))
                target = (by_task if self.futures else current).get(f["t"])
                if target and not nested:
                    frm = ("self",) if src is target else ("task", src) if src else ("thread", f["c"])
                    wakes[(target, role[5:], frm)] += 1
            elif tag == "e":
                task = innermost_task(st)
                base = max((n for n, fr in enumerate(st) if fr[0] == "task"), default=-1)
                path = tuple(names[fr[1]] for fr in st[base + 1:] if fr[0] == "fn") + (names[i],)
                if task and task.root is None and len(path) == 1:
                    task.root = names[i]
                tree[(task.root if task else None, path)] += 1
                if "st" in f:
                    key = (i, f["s"])
                    if f["st"] == 0:
                        if key in futs:
                            seqs[i].append(futs[key][0])
                        futs[key] = [[], False]
                        n_inst[i] += 1
                    elif key in futs and futs[key][1]:
                        futs[key][0].append(f["st"])
                st.append(("fn", i, f.get("s")))
            elif tag == "r":
                while st:
                    fr = st.pop()
                    if fr[0] == "fn" and fr[1] == i:
                        break
                if fr[0] == "fn" and (i, fr[2]) in futs and i in pending_of:
                    futs[(i, fr[2])][1] = f.get("d") == pending_of[i]
            elif tag == "x":
                fut = futs.pop((i, f["s"]), None)
                if fut:
                    if f["st"] >= 3:
                        n_cancel[i] += 1
                        if fut[1]:
                            fut[0].append(f["st"])
                    seqs[i].append(fut[0])
        for (i, _), fut in futs.items():
            seqs[i].append(fut[0])
        return self.report(plan, n_inst, n_cancel, seqs, insts + [v for v in current.values() if v not in insts],
                           tree, wakes)

    def report(self, plan, n_inst, n_cancel, seqs, insts, tree, wakes):
        ok, truth = True, self.truth

        def verdict(good, what, got, want):
            nonlocal ok
            ok &= good
            print(f"{'ok  ' if good else 'FAIL'}  {what}: {got}" + ("" if good else f" want {want}"))

        index = {name: i for i, name, _, _ in plan}
        typed = {name for name in index if name in self.envs}
        for i, name, want, _ in plan:
            if "instances" in want and name in typed:
                got = {"instances": n_inst[i], "cancelled": n_cancel[i]}
                verdict(got == {k: want[k] for k in got}, f"{name} futures", got, want)
        for name, lines in truth.get("await_lines", {}).items():
            if name not in typed:
                print(f"skip  await lines of {name}: no symbol or no DWARF types")
                continue
            states = self.envs[name][1]
            got = [[states.get(s, ("?", 0))[1] for s in seq] for seq in seqs[index[name]]]
            shown = sorted({runs(g) for g in got})
            verdict(bool(got) and all(g == lines for g in got), f"{name} await lines ({len(got)} instances)",
                    shown, runs(lines))
        for name, m in truth.get("macro_awaits", {}).items():
            if name not in typed:
                print(f"skip  macro await of {name}: no symbol or no DWARF types")
                continue
            states = self.envs[name][1]
            own = states[0][0]  # Unresumed: the fn's own file
            got = {states.get(s, ("?", 0)) for seq in seqs[index[name]] for s in seq}
            n = [len(seq) for seq in seqs[index[name]]]
            good = bool(n) and n == [m["pending"]] * len(n) and all(f != own for f, _ in got)
            verdict(good, f"{name} parked in {m['macro']} (DWARF: not {own.rsplit('/', 1)[-1]})",
                    sorted(got), f"{m['pending']} parks per instance outside the fn's file")
        if not self.rt:
            return ok
        roots = {t["root"] for t in truth["tasks"]}
        for t in truth["tasks"]:
            if t["root"] not in index:
                print(f"skip  tasks {t['root']}: no symbol")
                continue
            mine = [x for x in insts if x.root == t["root"]]
            got = {"count": len(mine), "polls_each": sorted({x.polls for x in mine}),
                   "spawned_by": sorted({x.parent.root if x.parent else None for x in mine}, key=str)}
            want = {"count": t["count"], "polls_each": [t["polls_each"]], "spawned_by": [t["spawned_by"]]}
            keys = sorted({x.key for x in mine})
            verdict(got == want, f"tasks {t['root']} ({len(keys)} distinct task addresses)", got, want)
        got = Counter()
        for (target, kind, frm), n in wakes.items():
            if target.root in roots:
                src = {"self": "self", "task": f"task:{frm[-1].root}" if frm[0] == "task" else "",
                       "thread": f"thread:{frm[-1]}"}[frm[0]]
                got[(target.root, kind, src)] += n
        want = Counter({(w["target"], w["kind"], w["from"]): w["count"] for w in truth["wakes"]})
        if all(w["target"] in index for w in truth["wakes"]):
            verdict(got == want, "wakes", sorted(got.items()), sorted(want.items()))
        if "tree" in truth:
            flat = {}

            def walk(node, path):
                flat[path + (node["name"],)] = node["polls"]
                for c in node["children"]:
                    walk(c, path + (node["name"],))
            walk(truth["tree"], ())
            if all(p[-1] in index for p in flat):
                got = {p: n for (r, p), n in tree.items() if r == truth["tree"]["name"]}
                shown = f"{len(got)} paths, polls {sorted(got.values())}" if got == flat else got
                verdict(got == flat, f"tree of {truth['tree']['name']}", shown, flat)
            else:
                print("skip  tree: a function has no symbol")
        return ok
