/* A synthetic trace of any size, shaped like a tokio program, whose every
 * number is known by construction: `gen-trace -o FILE [--events N | --tasks N]
 * [--polls P] [--threads T] [--concurrent W] [--seed S] [--shell] [--truth]`
 * (options: gen_options.c).
 *
 * Each thread (one stream) runs a block_on root, `synthetic::main`, whose
 * polls free the previous wave of W tasks and spawn the next; the wave's
 * tasks are then polled round-robin, P polls each. A task poll is the
 * chain RawTask::poll > Harness::poll > outer > middle > leaf > YieldNow
 * (three nested async fn bodies and a leaf future), Pending P - 1 times,
 * then Ready. A Pending poll is woken either from inside (wake_by_ref in
 * YieldNow: a self-wake) or, every other time, by value from outside the
 * task's poll. With --shell, each wave's task polls run inside one poll of
 * the thread's worker loop (RawTask > Harness > BlockingTask::poll), a
 * runtime shell, as tokio's multi-thread workers do. Durations follow a
 * formula of (seed, thread, task, poll), so two runs with the same options
 * write the same file. --truth prints what the analyses must find (polls,
 * results, total, max, p50 and p99 ns per function, the longest polls,
 * tasks and their times, wakes and their latency, per-thread busy time) as
 * JSON, counted while the events are made, never read back. Written with
 * the real writer: a format-3 trace like a recorded one. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gen_options.h"
#include "trace/writer.h"
#include "util/json.h"

#define T0 1000000000ULL
#define PID 4242
#define TID_BASE 5000
#define PENDING 1 /* every Poll<T> here: discriminant 1 is Pending, 0 Ready */
#define READY 0
#define SUSPENDED 3 /* the state an async fn parks in at its one .await */
#define BATCH 4096 /* events handed to the writer at a time */
#define SPAWN_SITE 0x55550000a1b0ULL
#define HIST_BINS 8192 /* durations are multiples of 10 ns: exact percentiles up to 81 us */
#define LATENCY_BINS 40 /* log2 ns, as report's wake latency histogram */
#define LONGEST 10 /* report's longest polls */
#define SOURCE "/synthetic/src/main.rs"

enum {
	F_MAIN, F_RAW, F_HARNESS, F_OUTER, F_MIDDLE, F_LEAF, F_YIELD, F_BLOCKING,
	F_SPAWN, F_NEW, F_FREE, F_WAKE_BY_REF, F_WAKE, F_COUNT
};

/* Stack depth of each frame below the thread's base, as a debug build
 * lays them out (roughly tokio_ct's); hooks sit below their caller. */
static const uint64_t frame_depth[F_COUNT] = {
	[F_MAIN] = 0, [F_RAW] = 0, [F_HARNESS] = 0x50, [F_OUTER] = 0x500, [F_MIDDLE] = 0x690,
	[F_LEAF] = 0x7b0, [F_YIELD] = 0x870, [F_BLOCKING] = 0x500, [F_SPAWN] = 0x400, [F_NEW] = 0x900, [F_FREE] = 0x300,
	[F_WAKE_BY_REF] = 0x8f0, [F_WAKE] = 0x100,
};

/* Where each future lives inside its task's allocation (tokio_ct's layout). */
static const uint64_t future_offset[F_COUNT] = {
	[F_OUTER] = 0x38, [F_MIDDLE] = 0x48, [F_LEAF] = 0x60, [F_YIELD] = 0x70,
};

static struct await_point outer_awaits[] = { { SUSPENDED, 16, NULL } };
static struct await_point middle_awaits[] = { { SUSPENDED, 23, NULL } };
static struct await_point leaf_awaits[] = { { SUSPENDED, 34, NULL } };

#define REGS(size) { RESULT_IN_REGS, (size), 0, PENDING }
#define ASYNC_FN(n, line, aw, res, self) { .context = CONTEXT_COMPILER, .body = BODY_ASYNC_FN, .name = (n), \
	.result = res, .self_arg = (self), .exit_sites = 1, .source_file = SOURCE, .source_line = (line), \
	.state_offset = 24, .state_size = 1, .await_count = 1, .awaits = (aw) }
#define TASK_FN(n) { .context = CONTEXT_TASK, .body = BODY_RUNTIME, .runtime = RUNTIME_TOKIO, .exit_sites = 1, \
	.name = (n) }
#define HOOK_FN(r, n) { .context = CONTEXT_TASK, .body = BODY_RUNTIME, .role = (r), .runtime = RUNTIME_TOKIO, \
	.name = (n) }

static const struct trace_function functions[F_COUNT] = {
	[F_MAIN] = { .context = CONTEXT_ANONYMOUS, .body = BODY_ASYNC_BLOCK, .name = "synthetic::main::{{closure}}",
		     .result = REGS(1), .exit_sites = 1, .source_file = SOURCE, .source_line = 48 },
	[F_RAW] = TASK_FN("tokio::runtime::task::raw::RawTask::poll"),
	[F_HARNESS] = TASK_FN("tokio::runtime::task::harness::Harness<T,S>::poll"),
	[F_OUTER] = ASYNC_FN("synthetic::outer::{{closure}}", 15, outer_awaits, REGS(1), 0),
	/* Poll<u64>-sized results come back through a hidden pointer: self is arg 1. */
	[F_MIDDLE] = ASYNC_FN("synthetic::middle::{{closure}}", 22, middle_awaits,
			      ((struct poll_result_layout){ RESULT_IN_MEMORY, 8, 0, PENDING }), 1),
	[F_LEAF] = ASYNC_FN("synthetic::leaf::{{closure}}", 33, leaf_awaits, REGS(8), 0),
	[F_YIELD] = { .context = CONTEXT_USER, .body = BODY_POLL_IMPL, .result = REGS(1), .exit_sites = 1,
		      .name = "<synthetic::YieldNow as core::future::future::Future>::poll",
		      .source_file = "/synthetic/src/lib.rs", .source_line = 44 },
	/* --shell: a multi-thread worker's loop, itself a task's poll (tokio_mt's workers) */
	[F_BLOCKING] = { .context = CONTEXT_USER, .body = BODY_POLL_IMPL, .result = REGS(1), .exit_sites = 1,
			 .name = "<tokio::runtime::blocking::task::BlockingTask<T> as core::future::future::Future>::poll" },
	[F_SPAWN] = HOOK_FN(ROLE_SPAWN, "tokio::task::spawn::spawn"),
	[F_NEW] = HOOK_FN(ROLE_TASK_NEW, "tokio::runtime::task::raw::RawTask::new"),
	[F_FREE] = HOOK_FN(ROLE_TASK_FREE, "tokio::runtime::task::harness::Harness<T,S>::dealloc"),
	[F_WAKE_BY_REF] = HOOK_FN(ROLE_WAKE_BY_REF, "tokio::runtime::task::waker::wake_by_ref"),
	[F_WAKE] = HOOK_FN(ROLE_WAKE, "tokio::runtime::task::waker::wake_by_val"),
};


struct fn_truth {
	uint64_t polls, ready, pending, unknown, total_ns, max_ns;
};

/* What the analyses must find, counted as the events are made. */
struct truth {
	struct fn_truth fns[F_COUNT];
	uint64_t (*durations)[HIST_BINS]; /* per function: polls by duration / 10 */
	bool unfit[F_COUNT];              /* a duration of HIST_BINS * 10 ns or more */
	uint64_t events, spawned, freed, wakes_by_ref, wakes_by_val, end_ts;
	uint64_t wake_latency[LATENCY_BINS];
	uint64_t task_busy_ns, task_wait_ns, task_lifetime_ns, task_idle_ns; /* summed over every task */
};

/* A task slot of a wave: when its task was made, when it was last woken,
 * its busy and wait time so far. */
struct slot {
	uint64_t created, woken, busy, wait;
};

/* One thread: its stream, its clock, its tasks. */
struct thread_gen {
	uint32_t index, tid;
	uint64_t now;        /* the next event's time */
	uint64_t stack;      /* stack pointer of its outermost frame */
	uint64_t shell_depth; /* how far below it task polls run: 0, or under a worker loop */
	uint64_t shell_start, shell_busy; /* the worker loop's task: first poll, time polled */
	uint64_t task_base;  /* task allocations: task_base + slot * 0x200, reused by each wave */
	uint64_t tasks;      /* tasks it runs */
	uint64_t started;    /* tasks spawned so far */
	uint64_t polls, busy_ns; /* outermost polls */
	uint64_t main_start;     /* its block_on's first poll */
	uint64_t main_busy;      /* and the time in its polls */
	struct slot *slots;      /* one per task alive at once */
	struct trace_event batch[BATCH];
	size_t n;
};

struct gen {
	const struct options *o;
	struct trace_writer *w;
	struct thread_gen *threads;
	struct truth truth;
	int err;
};

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The leaf future's busy time in poll k of task j: 100..730 ns, in steps
 * of 10, so sums stay exact and percentiles land on distinct values. */
static uint64_t leaf_ns(const struct gen *g, const struct thread_gen *th, uint64_t j, uint32_t k)
{
	uint64_t h = splitmix64(g->o->seed ^ splitmix64(((uint64_t)th->index << 48) ^ (j << 16) ^ k));

	return 100 + 10 * (h % 64);
}

static void flush_batch(struct gen *g, struct thread_gen *th)
{
	if (!g->err && th->n)
		g->err = trace_writer__add_stream_events(g->w, th->tid, th->tid, PID, th->batch, th->n);
	th->n = 0;
}

static struct trace_event *emit(struct gen *g, struct thread_gen *th, uint8_t kind, uint32_t func, uint64_t ts)
{
	struct trace_event *e;

	if (th->n == BATCH)
		flush_batch(g, th);
	e = &th->batch[th->n++];
	*e = (struct trace_event){ .ts = ts, .sp = th->stack - th->shell_depth - frame_depth[func], .pid = PID, .tid = th->tid,
				   .func_id = func, .kind = kind, .cpu = (uint16_t)th->index };
	g->truth.events++;
	if (ts > g->truth.end_ts)
		g->truth.end_ts = ts;
	return e;
}

static void enter(struct gen *g, struct thread_gen *th, uint32_t func, uint64_t ts, uint64_t future)
{
	struct trace_event *e = emit(g, th, TRACE_EVENT_ENTRY, func, ts);

	if (functions[func].self_arg == 1)
		e->arg1 = future;
	else
		e->arg0 = future;
}

static void count_poll(struct gen *g, uint32_t func, uint64_t ns, int result)
{
	struct fn_truth *t = &g->truth.fns[func];

	if (ns / 10 < HIST_BINS && ns % 10 == 0)
		g->truth.durations[func][ns / 10]++;
	else
		g->truth.unfit[func] = true;
	t->polls++;
	t->total_ns += ns;
	if (ns > t->max_ns)
		t->max_ns = ns;
	if (result == PENDING)
		t->pending++;
	else if (result == READY)
		t->ready++;
	else
		t->unknown++;
}

/* The exit of a poll that began at `start`: its Poll<T> where the
 * function's layout says, the state it parked in for async fns. Task
 * polls (result not decoded) return the task pointer, as tokio's do. */
static void leave(struct gen *g, struct thread_gen *th, uint32_t func, uint64_t start, uint64_t ts, int result,
		  uint64_t task)
{
	const struct trace_function *fn = &functions[func];
	struct trace_event *e = emit(g, th, TRACE_EVENT_EXIT, func, ts);

	if (fn->result.mode == RESULT_IN_MEMORY) {
		e->flags |= TRACE_EVENT_ARG1_FROM_MEMORY;
		e->arg1 = (uint64_t)result;
	} else if (fn->result.mode == RESULT_IN_REGS) {
		e->arg0 = (uint64_t)result;
	} else {
		e->arg0 = task;
	}
	if (fn->state_size && result == PENDING) {
		e->flags |= TRACE_EVENT_STATE;
		e->aux = SUSPENDED;
	}
	count_poll(g, func, ts - start, fn->result.mode ? result : -1);
}

/* A thread's busy time: its outermost polls that are not a worker loop
 * (a runtime shell's time is its tasks'). */
static void count_thread_poll(struct thread_gen *th, uint64_t start, uint64_t end)
{
	th->polls++;
	th->busy_ns += end - start;
}

static void hook(struct gen *g, struct thread_gen *th, uint32_t func, uint64_t ts, uint64_t arg0)
{
	uint8_t kind = functions[func].role == ROLE_TASK_NEW ? TRACE_EVENT_EXIT : TRACE_EVENT_ENTRY;
	struct trace_event *e = emit(g, th, kind, func, ts);

	e->arg0 = arg0;
	if (functions[func].role == ROLE_SPAWN) {
		e->flags = TRACE_EVENT_RETURN_ADDRESS;
		e->aux = SPAWN_SITE;
	}
}

static uint64_t task_ptr(const struct thread_gen *th, uint64_t slot)
{
	return th->task_base + slot * 0x200;
}

static unsigned log2_bin(uint64_t ns)
{
	unsigned bin = 0;

	for (; ns >= 2 && bin < LATENCY_BINS - 1; ns >>= 1)
		bin++;
	return bin;
}

/* A task's times as the task model defines them: wait = from the wake to
 * the poll that answers it (every poll but the first answers one), busy =
 * its task polls, lifetime = from its allocation to its root future's
 * Ready, idle = the lifetime neither busy nor waiting, or 0 (a self-wake's
 * wait begins inside the poll, so the two can overlap). */
static void answer_wake(struct gen *g, struct slot *sl, uint64_t start, uint32_t k)
{
	if (k > 0) {
		g->truth.wake_latency[log2_bin(start - sl->woken)]++;
		sl->wait += start - sl->woken;
	}
}

static void count_task_poll(struct gen *g, struct slot *sl, uint64_t start, uint64_t end, uint64_t ready_at)
{
	uint64_t life;

	sl->busy += end - start;
	if (!ready_at)
		return;
	life = ready_at - sl->created;
	g->truth.task_busy_ns += sl->busy;
	g->truth.task_wait_ns += sl->wait;
	g->truth.task_lifetime_ns += life;
	g->truth.task_idle_ns += life > sl->busy + sl->wait ? life - sl->busy - sl->wait : 0;
}

static void wake(struct gen *g, struct thread_gen *th, uint32_t func, uint64_t ts, uint64_t slot)
{
	hook(g, th, func, ts, task_ptr(th, slot));
	th->slots[slot].woken = ts;
	if (func == F_WAKE_BY_REF)
		g->truth.wakes_by_ref++;
	else
		g->truth.wakes_by_val++;
}

/* Poll k of the task in `slot` (the j-th of its thread), from th->now:
 * each level enters 10 ns after its parent and leaves 10 ns after its
 * child, around the leaf's own busy time. Pending polls are woken: from
 * inside when k is even (a self-wake), else from outside, by value. */
static void task_poll(struct gen *g, struct thread_gen *th, uint64_t slot, uint64_t j, uint32_t k)
{
	static const uint32_t chain[] = { F_RAW, F_HARNESS, F_OUTER, F_MIDDLE, F_LEAF, F_YIELD };
	const size_t levels = sizeof(chain) / sizeof(chain[0]);
	uint64_t task = task_ptr(th, slot), s = th->now, y = leaf_ns(g, th, j, k), end = s, ready_at = 0;
	int result = k + 1 < g->o->polls ? PENDING : READY;

	answer_wake(g, &th->slots[slot], s, k);
	for (size_t i = 0; i < levels; i++)
		enter(g, th, chain[i], s + 10 * i, chain[i] == F_RAW || chain[i] == F_HARNESS ? task
										    : task + future_offset[chain[i]]);
	if (result == PENDING && k % 2 == 0)
		wake(g, th, F_WAKE_BY_REF, s + 10 * levels, slot);
	for (size_t i = levels; i-- > 0;) {
		end = s + 10 * (levels - 1) + y + 10 * (levels - 1 - i);
		leave(g, th, chain[i], s + 10 * i, end, chain[i] == F_RAW || chain[i] == F_HARNESS ? -1 : result,
		      task);
		if (chain[i] == F_OUTER && result == READY)
			ready_at = end;
	}
	count_task_poll(g, &th->slots[slot], s, end, ready_at);
	count_thread_poll(th, s, end);
	if (result == PENDING && k % 2 == 1)
		wake(g, th, F_WAKE, end + 20, slot);
	th->now = end + 50;
}

/* A poll of the block_on root: it frees the tasks of the wave that ended
 * (their JoinHandles dropped) and spawns `spawn` new ones; Ready when it
 * spawns none. */
static void main_poll(struct gen *g, struct thread_gen *th, uint64_t freed, uint64_t spawn)
{
	uint64_t s = th->now, t = s + 20;

	enter(g, th, F_MAIN, s, th->stack + 0x600);
	for (uint64_t i = 0; i < freed; i++, t += 20)
		hook(g, th, F_FREE, t, task_ptr(th, i));
	for (uint64_t i = 0; i < spawn; i++, t += 40) {
		hook(g, th, F_SPAWN, t, 0);
		hook(g, th, F_NEW, t + 20, task_ptr(th, i));
		th->slots[i] = (struct slot){ .created = t + 20 };
	}
	leave(g, th, F_MAIN, s, t, spawn ? PENDING : READY, 0);
	count_thread_poll(th, s, t);
	/* the block_on's task: busy in its polls, alive from its first to its Ready */
	if (!th->main_start)
		th->main_start = s;
	g->truth.task_busy_ns += t - s;
	th->main_busy += t - s;
	if (!spawn) {
		g->truth.task_lifetime_ns += t - th->main_start;
		g->truth.task_idle_ns += t - th->main_start - th->main_busy;
	}
	g->truth.freed += freed;
	g->truth.spawned += spawn;
	th->now = t + 50;
}

/* --shell: the worker loop's task, polled once per wave (RawTask::poll >
 * Harness::poll > BlockingTask::poll), runs the wave's task polls inside:
 * they start task chains of their own under a frame that is no task poll. */
#define SHELL_STACK 0x1000
#define SHELL_LEVELS 3

static uint64_t shell_task(const struct thread_gen *th)
{
	return th->task_base + 0x10000000;
}

/* The worker loop's task is spawned (spawn_blocking) before its first
 * poll, outside any poll, as tokio does. */
static uint64_t enter_shell(struct gen *g, struct thread_gen *th)
{
	uint64_t start;

	static const uint32_t chain[SHELL_LEVELS] = { F_RAW, F_HARNESS, F_BLOCKING };

	if (!th->shell_start) {
		hook(g, th, F_SPAWN, th->now, 0);
		hook(g, th, F_NEW, th->now + 20, shell_task(th));
		th->shell_start = th->now + 20;
		th->now += 40;
	}
	start = th->now;
	for (unsigned i = 0; i < SHELL_LEVELS; i++)
		enter(g, th, chain[i], start + 10 * i, shell_task(th) + (chain[i] == F_BLOCKING ? 0x38 : 0));
	th->shell_depth = SHELL_STACK;
	th->now += 10 * SHELL_LEVELS;
	return start;
}

/* Its last poll is Ready: the thread's work is done. */
static void leave_shell(struct gen *g, struct thread_gen *th, uint64_t start, bool last)
{
	static const uint32_t chain[SHELL_LEVELS] = { F_RAW, F_HARNESS, F_BLOCKING };
	uint64_t end = th->now;

	th->shell_depth = 0;
	for (unsigned i = SHELL_LEVELS; i-- > 0; end += 10)
		leave(g, th, chain[i], start + 10 * i, end, chain[i] == F_BLOCKING ? (last ? READY : PENDING) : -1,
		      shell_task(th));
	th->shell_busy += end - 10 - start;
	g->truth.task_busy_ns += end - 10 - start;
	if (last) {
		uint64_t life = end - 10 * SHELL_LEVELS - th->shell_start;

		g->truth.task_lifetime_ns += life;
		g->truth.task_idle_ns += life > th->shell_busy ? life - th->shell_busy : 0;
	}
	th->now = end + 40;
}

/* One wave of a thread: spawned by a main poll, polled round-robin. */
static uint64_t run_wave(struct gen *g, struct thread_gen *th, uint64_t previous)
{
	uint64_t left = th->tasks - th->started, start;
	uint64_t size = left < g->o->concurrent ? left : g->o->concurrent, first = th->started;

	main_poll(g, th, previous, size);
	th->started += size;
	start = g->o->shell ? enter_shell(g, th) : 0;
	for (uint32_t k = 0; k < g->o->polls && !g->err; k++)
		for (uint64_t slot = 0; slot < size; slot++)
			task_poll(g, th, slot, first + slot, k);
	if (g->o->shell)
		leave_shell(g, th, start, th->started == th->tasks);
	return size;
}

static int init_threads(struct gen *g)
{
	const struct options *o = g->o;

	for (uint32_t i = 0; i < o->threads; i++) {
		struct thread_gen *th = &g->threads[i];

		th->index = i;
		th->tid = TID_BASE + i;
		th->now = T0 + 137 * i; /* threads start apart: streams interleave, never tie */
		th->stack = 0x7ff000000000ULL - ((uint64_t)i << 24);
		th->task_base = 0x560000000000ULL + ((uint64_t)i << 32);
		th->tasks = o->tasks / o->threads + (i < o->tasks % o->threads);
		th->slots = calloc(th->tasks < o->concurrent ? th->tasks + 1 : o->concurrent, sizeof(*th->slots));
		if (!th->slots)
			return -ENOMEM;
	}
	return 0;
}

/* Waves of all threads in turn, as worker threads run side by side. */
static void generate(struct gen *g)
{
	uint64_t *previous = calloc(g->o->threads, sizeof(*previous));
	bool more = true;

	g->err = previous ? init_threads(g) : -ENOMEM;
	while (more && !g->err) {
		more = false;
		for (uint32_t i = 0; i < g->o->threads; i++) {
			struct thread_gen *th = &g->threads[i];

			if (th->started < th->tasks)
				previous[i] = run_wave(g, th, previous[i]);
			more |= th->started < th->tasks;
		}
	}
	for (uint32_t i = 0; !g->err && i < g->o->threads; i++) {
		main_poll(g, &g->threads[i], previous[i], 0);
		flush_batch(g, &g->threads[i]);
	}
	free(previous);
}

static int write_head(struct gen *g, const char *command)
{
	struct trace_meta meta = { .clock = 1, .pid = PID, .start_clock_ns = T0, .machine = 62 /* EM_X86_64 */,
				   .target_path = "/synthetic/tokio_like", .command = (char *)command,
				   .capture = "synthetic" };
	struct trace_function fns[F_COUNT];
	int err = trace_writer__write_meta(g->w, &meta);

	memcpy(fns, functions, sizeof(fns));
	for (uint32_t i = 0; i < F_COUNT; i++) {
		fns[i].addr = 0x10000 + 0x100 * i;
		fns[i].size = 0x80;
		fns[i].mangled = fns[i].name;
	}
	return err ? err : trace_writer__write_functions(g->w, fns, F_COUNT);
}

static int write_tail(struct gen *g)
{
	struct trace_site site = { SPAWN_SITE, 50, SOURCE, "synthetic::main::{{closure}}" };
	struct trace_trailer trailer = { .end_clock_ns = g->truth.end_ts, .end_reason = TRACE_END_TARGET_EXITED,
					 .exit_status = 0 };
	struct trace_thread *threads = calloc(g->o->threads, sizeof(*threads));
	int err = threads ? 0 : -ENOMEM;

	for (uint32_t i = 0; threads && i < g->o->threads; i++) {
		threads[i].tid = g->threads[i].tid;
		snprintf(threads[i].name, sizeof(threads[i].name), "worker-%u", i % 100000000); /* threads: <= 2^24 */
	}
	err = err ? err : trace_writer__write_threads(g->w, threads, g->o->threads);
	err = err ? err : trace_writer__write_sites(g->w, &site, 1);
	err = err ? err : trace_writer__finish(g->w, &trailer);
	free(threads);
	return err;
}

/* The nearest-rank percentile, as report computes it, from the counts by duration. */
static uint64_t percentile(const uint64_t *bins, uint64_t count, unsigned pct)
{
	uint64_t rank = (count * pct + 99) / 100, seen = 0;

	rank = rank ? rank : 1;
	for (uint64_t bin = 0; bin < HIST_BINS; bin++) {
		seen += bins[bin];
		if (seen >= rank)
			return bin * 10;
	}
	return 0;
}

static void json_function(struct json_writer *w, const struct truth *truth, uint32_t func)
{
	const struct fn_truth *t = &truth->fns[func];

	json_writer__key(w, functions[func].name);
	json_writer__object_begin(w);
	json_writer__key(w, "polls"); json_writer__uint(w, t->polls);
	json_writer__key(w, "ready"); json_writer__uint(w, t->ready);
	json_writer__key(w, "pending"); json_writer__uint(w, t->pending);
	json_writer__key(w, "result_unknown"); json_writer__uint(w, t->unknown);
	json_writer__key(w, "unwound"); json_writer__uint(w, 0);
	json_writer__key(w, "total_ns"); json_writer__uint(w, t->total_ns);
	json_writer__key(w, "max_ns"); json_writer__uint(w, t->max_ns);
	if (!truth->unfit[func]) {
		json_writer__key(w, "p50_ns"); json_writer__uint(w, percentile(truth->durations[func], t->polls, 50));
		json_writer__key(w, "p99_ns"); json_writer__uint(w, percentile(truth->durations[func], t->polls, 99));
	}
	json_writer__object_end(w);
}

/* Polls report lists among the longest: not task polls, not worker loops. */
static bool may_be_longest(uint32_t func)
{
	return functions[func].context != CONTEXT_TASK && func != F_BLOCKING;
}

/* The longest polls' durations, longest first (none when one did not fit). */
static void json_longest(struct json_writer *w, const struct truth *t)
{
	unsigned listed = 0;
	bool fit = true;

	for (uint32_t f = 0; f < F_COUNT; f++)
		fit &= !may_be_longest(f) || !t->unfit[f];
	if (!fit)
		return;
	json_writer__key(w, "longest_ns");
	json_writer__array_begin(w);
	for (uint64_t bin = HIST_BINS; bin-- > 0 && listed < LONGEST;)
		for (uint32_t f = 0; f < F_COUNT; f++)
			for (uint64_t n = 0; may_be_longest(f) && n < t->durations[f][bin] && listed < LONGEST;
			     n++, listed++)
				json_writer__uint(w, bin * 10);
	json_writer__array_end(w);
}

static void json_wake_latency(struct json_writer *w, const struct truth *t)
{
	json_writer__key(w, "wake_latency");
	json_writer__array_begin(w);
	for (unsigned i = 0; i < LATENCY_BINS; i++) {
		if (!t->wake_latency[i])
			continue;
		json_writer__object_begin(w);
		json_writer__key(w, "lt_ns"); json_writer__uint(w, 2ULL << i);
		json_writer__key(w, "count"); json_writer__uint(w, t->wake_latency[i]);
		json_writer__object_end(w);
	}
	json_writer__array_end(w);
}

static void json_threads(struct json_writer *w, const struct gen *g)
{
	json_writer__key(w, "threads");
	json_writer__array_begin(w);
	for (uint32_t i = 0; i < g->o->threads; i++) {
		json_writer__object_begin(w);
		json_writer__key(w, "tid"); json_writer__uint(w, g->threads[i].tid);
		json_writer__key(w, "tasks"); json_writer__uint(w, g->threads[i].tasks);
		json_writer__key(w, "polls"); json_writer__uint(w, g->threads[i].polls);
		json_writer__key(w, "busy_ns"); json_writer__uint(w, g->threads[i].busy_ns);
		json_writer__object_end(w);
	}
	json_writer__array_end(w);
}

/* The truth, in report --json's words where it has them. */
static int print_truth(const struct gen *g)
{
	const struct truth *t = &g->truth;
	struct json_writer w;
	uint64_t polls = 0;

	for (uint32_t i = 0; i < F_COUNT; i++)
		polls += t->fns[i].polls;
	json_writer__init(&w, stdout, 1);
	json_writer__object_begin(&w);
	json_writer__key(&w, "events"); json_writer__uint(&w, t->events);
	json_writer__key(&w, "polls"); json_writer__uint(&w, polls);
	json_writer__key(&w, "tasks"); json_writer__uint(&w, t->spawned + g->o->threads * (1 + g->o->shell));
	json_writer__key(&w, "shells"); json_writer__uint(&w, g->o->shell ? g->o->threads : 0);
	json_writer__key(&w, "spawned"); json_writer__uint(&w, t->spawned);
	json_writer__key(&w, "block_on"); json_writer__uint(&w, g->o->threads);
	json_writer__key(&w, "freed"); json_writer__uint(&w, t->freed);
	json_writer__key(&w, "polls_per_task"); json_writer__uint(&w, g->o->polls);
	json_writer__key(&w, "wakes_by_ref"); json_writer__uint(&w, t->wakes_by_ref);
	json_writer__key(&w, "wakes_by_val"); json_writer__uint(&w, t->wakes_by_val);
	json_writer__key(&w, "functions");
	json_writer__object_begin(&w);
	for (uint32_t i = 0; i < F_COUNT; i++)
		if (t->fns[i].polls)
			json_function(&w, t, i);
	json_writer__object_end(&w);
	json_longest(&w, t);
	json_wake_latency(&w, t);
	json_writer__key(&w, "task_busy_ns"); json_writer__uint(&w, t->task_busy_ns);
	json_writer__key(&w, "task_wait_ns"); json_writer__uint(&w, t->task_wait_ns);
	json_writer__key(&w, "task_lifetime_ns"); json_writer__uint(&w, t->task_lifetime_ns);
	json_writer__key(&w, "task_idle_ns"); json_writer__uint(&w, t->task_idle_ns);
	json_threads(&w, g);
	json_writer__object_end(&w);
	return json_writer__finish(&w);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static int write_trace(struct gen *g, const char *command)
{
	int err = trace_writer__open(&g->w, g->o->out);

	if (err)
		return err;
	g->threads = calloc(g->o->threads, sizeof(*g->threads));
	g->truth.durations = calloc(F_COUNT, sizeof(*g->truth.durations));
	err = g->threads && g->truth.durations ? write_head(g, command) : -ENOMEM;
	if (!err) {
		generate(g);
		err = g->err;
	}
	err = err ? err : write_tail(g);
	return err;
}

static void gen__free(struct gen *g)
{
	for (uint32_t i = 0; g->threads && i < g->o->threads; i++)
		free(g->threads[i].slots);
	free(g->threads);
	free(g->truth.durations);
}

static void command_line(char *buf, size_t len, int argc, char **argv)
{
	size_t at = 0;

	buf[0] = 0;
	for (int i = 0; i < argc && at < len; i++)
		at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? " " : "", argv[i]);
}

int main(int argc, char **argv)
{
	struct options o;
	struct gen g = { .o = &o };
	struct timespec t0;
	char command[1024];
	int err = gen_options__parse(&o, argc, argv);

	if (err)
		return err > 0 ? 0 : 2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	command_line(command, sizeof(command), argc, argv);
	err = write_trace(&g, command);
	if (!err) {
		fprintf(stderr, "gen-trace: %" PRIu64 " events, %" PRIu64 " tasks on %u thread(s) written to %s "
			"(%.1f bytes/event) in %.2f s\n", g.truth.events, o.tasks, o.threads, o.out,
			(double)trace_writer__bytes_written(g.w) / (double)(g.truth.events ? g.truth.events : 1),
			seconds_since(&t0));
	}
	trace_writer__free(g.w);
	if (err)
		fprintf(stderr, "gen-trace: cannot write %s: %s\n", o.out, strerror(-err));
	else if (o.truth && (print_truth(&g) || fflush(stdout)))
		err = fprintf(stderr, "gen-trace: cannot print the truth: %s\n", strerror(EIO));
	gen__free(&g);
	return err ? 1 : 0;
}
