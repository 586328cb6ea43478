/* Synthetic traces whose every number is known by construction, written
 * with the real writer: `make_fixtures DIR` writes DIR/stats.trace and
 * DIR/tasks.trace. tests/golden/README.md lists what each one holds and the
 * numbers the goldens must show; tests/e2e/t_golden.py compares the
 * commands' output with tests/golden/expected/. Times are ns after T0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/writer.h"
#include "util/array.h"

#define T0 1000000000ULL
#define MS 1000000ULL
#define US 1000ULL

#define PENDING 1 /* Poll<()> in rax: 1 is Pending, 0 Ready */
#define READY 0
#define NO_STATE UINT64_MAX

struct events {
	struct trace_event *e;
	size_t n, cap;
	int err;
};

static void add(struct events *ev, uint32_t tid, uint8_t kind, uint32_t func, uint64_t ts, uint64_t sp,
		uint64_t arg0)
{
	if (ARRAY_RESERVE(ev->e, ev->cap, ev->n + 1)) {
		ev->err = 1;
		return;
	}
	ev->e[ev->n++] = (struct trace_event){ .ts = T0 + ts, .sp = sp, .arg0 = arg0, .pid = 100, .tid = tid,
					       .func_id = func, .kind = kind };
}

static void enter(struct events *ev, uint32_t tid, uint32_t func, uint64_t ts, uint64_t sp, uint64_t future)
{
	add(ev, tid, TRACE_EVENT_ENTRY, func, ts, sp, future);
}

/* An exit returning `result`; a Pending one parked in `state` unless NO_STATE. */
static void leave(struct events *ev, uint32_t tid, uint32_t func, uint64_t ts, uint64_t sp, uint64_t result,
		  uint64_t state)
{
	add(ev, tid, TRACE_EVENT_EXIT, func, ts, sp, result);
	if (!ev->err && state != NO_STATE) {
		ev->e[ev->n - 1].flags = TRACE_EVENT_STATE;
		ev->e[ev->n - 1].aux = state;
	}
}

/* A hook: an entry (wake, spawn, free, drop) or, for task allocation, an exit. */
static void hook(struct events *ev, uint32_t tid, uint8_t kind, uint32_t func, uint64_t ts, uint64_t sp,
		 uint64_t arg0, uint64_t return_address)
{
	add(ev, tid, kind, func, ts, sp, arg0);
	if (!ev->err && return_address) {
		ev->e[ev->n - 1].flags = TRACE_EVENT_RETURN_ADDRESS;
		ev->e[ev->n - 1].aux = return_address;
	}
}

struct fixture {
	const char *name;
	struct trace_function *fns;
	size_t fn_count;
	const struct trace_thread *threads;
	size_t thread_count;
	const struct trace_site *sites;
	size_t site_count;
	uint64_t lost;
	struct events ev;
};

static int write_fixture(const char *dir, struct fixture *f)
{
	char path[4096], target[64];
	struct trace_meta meta = { .clock = 1, .pid = 100, .start_clock_ns = T0, .machine = 62 /* EM_X86_64 */,
				   .target_path = target, .command = target, .capture = "synthetic" };
	struct trace_trailer trailer = { .lost = f->lost, .end_reason = TRACE_END_TARGET_EXITED, .exit_status = 0 };
	struct trace_writer *w;
	int err;

	snprintf(path, sizeof(path), "%s/%s.trace", dir, f->name);
	snprintf(target, sizeof(target), "/golden/%s", f->name);
	err = f->ev.err ? -12 : trace_writer__open(&w, path);
	if (err)
		return err;
	err = trace_writer__write_meta(w, &meta);
	err = err ? err : trace_writer__write_functions(w, f->fns, f->fn_count);
	for (size_t i = 0; !err && i < f->ev.n; i++)
		err = trace_writer__add_event(w, &f->ev.e[i]);
	err = err ? err : trace_writer__write_threads(w, f->threads, f->thread_count);
	if (!err && f->site_count)
		err = trace_writer__write_sites(w, f->sites, f->site_count);
	err = err ? err : trace_writer__finish(w, &trailer);
	trace_writer__free(w);
	free(f->ev.e);
	return err;
}

#define POLL_FN(ctx, n) { .context = (ctx), .name = (n), .result = { RESULT_IN_REGS, 1, 0, PENDING } }

/* ---- stats: durations, threads, long polls, runtime shells, lost events ---- */

enum { S_RAW, S_BLOCKING, S_COMPUTE, S_STEP, S_IO, S_JOB, S_COUNT };

static struct trace_function stats_fns[S_COUNT] = {
	[S_RAW] = { .context = CONTEXT_TASK, .runtime = RUNTIME_TOKIO, .name = "tokio::runtime::task::raw::RawTask::poll" },
	[S_BLOCKING] = POLL_FN(CONTEXT_USER, "<tokio::runtime::blocking::task::BlockingTask<T> as core::future::future::Future>::poll"),
	[S_COMPUTE] = POLL_FN(CONTEXT_COMPILER, "demo::compute::{{closure}}"),
	[S_STEP] = POLL_FN(CONTEXT_COMPILER, "demo::step::{{closure}}"),
	[S_IO] = POLL_FN(CONTEXT_COMPILER, "demo::blocking_io::{{closure}}"),
	[S_JOB] = POLL_FN(CONTEXT_COMPILER, "demo::job::{{closure}}"),
};

static const struct trace_thread stats_threads[] = { { 201, "main" }, { 202, "tokio-runtime-w" } };

/* Thread 201, outside any task (block_on): compute polled 100 times,
 * 10us, 20us, ... 990us, then 30ms (Ready), 1us apart; step polled inside
 * the first three (4, 5, 6 us). Then blocking_io: 9ms, 10ms, 12ms. */
static void stats_main_thread(struct events *ev)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < 100; i++) {
		uint64_t d = i < 99 ? (i + 1) * 10 * US : 30 * MS;

		enter(ev, 201, S_COMPUTE, t, 0x7f00, 0xa0);
		if (i < 3) {
			enter(ev, 201, S_STEP, t + 1 * US, 0x7e00, 0xb0);
			leave(ev, 201, S_STEP, t + 1 * US + (4 + i) * US, 0x7e00, i < 2 ? PENDING : READY, NO_STATE);
		}
		leave(ev, 201, S_COMPUTE, t + d, 0x7f00, i < 99 ? PENDING : READY, NO_STATE);
		t += d + 1 * US;
	}
	for (unsigned i = 0; i < 3; i++) {
		static const uint64_t d[] = { 9 * MS, 10 * MS, 12 * MS };

		enter(ev, 201, S_IO, t, 0x7f00, 0xc0);
		leave(ev, 201, S_IO, t + d[i], 0x7f00, i < 2 ? PENDING : READY, NO_STATE);
		t += d[i] + 1 * US;
	}
}

/* Thread 202 at 5ms: a blocking task's poll (task 0xb10c) runs the worker
 * loop for 50ms: a runtime shell. Inside it task 0x7a51 is polled twice
 * (job: 15ms Pending, 2ms Ready). */
static void stats_worker_thread(struct events *ev)
{
	const uint64_t s = 5 * MS;

	enter(ev, 202, S_RAW, s, 0x9000, 0xb10c);
	enter(ev, 202, S_BLOCKING, s + 100, 0x8f00, 0xf100);
	enter(ev, 202, S_RAW, s + 1000, 0x8e00, 0x7a51);
	enter(ev, 202, S_JOB, s + 1100, 0x8d00, 0xf200);
	leave(ev, 202, S_JOB, s + 1100 + 15 * MS, 0x8d00, PENDING, NO_STATE);
	leave(ev, 202, S_RAW, s + 1200 + 15 * MS, 0x8e00, 0, NO_STATE);
	enter(ev, 202, S_RAW, s + 20 * MS, 0x8e00, 0x7a51);
	enter(ev, 202, S_JOB, s + 20 * MS + 100, 0x8d00, 0xf200);
	leave(ev, 202, S_JOB, s + 22 * MS + 100, 0x8d00, READY, NO_STATE);
	leave(ev, 202, S_RAW, s + 22 * MS + 200, 0x8e00, 0, NO_STATE);
	leave(ev, 202, S_BLOCKING, s + 50 * MS, 0x8f00, READY, NO_STATE);
	leave(ev, 202, S_RAW, s + 50 * MS + 100, 0x9000, 0, NO_STATE);
}

/* ---- tasks: spawns, wakes across threads, completion, cancellation, join ---- */

enum { K_RAW, K_PARENT, K_LEFT, K_RIGHT, K_WORKER, K_SPAWN, K_NEW, K_FREE, K_WAKE, K_WAKE_BY_REF, K_DROP, K_COUNT };

#define MAIN_RS "/src/demo/src/main.rs"

static struct await_point parent_awaits[] = { { 3, 20, NULL } };
static struct await_point left_awaits[] = { { 3, 30, NULL }, { 4, 31, NULL } };
static struct await_point right_awaits[] = { { 3, 40, NULL } };
static struct await_point worker_awaits[] = { { 3, 55, NULL } };

#define ASYNC_FN(n, line, aw) { .context = CONTEXT_COMPILER, .body = BODY_ASYNC_FN, .name = (n), \
	.result = { RESULT_IN_REGS, 1, 0, PENDING }, .source_file = MAIN_RS, .source_line = (line), \
	.state_size = 1, .await_count = sizeof(aw) / sizeof(aw[0]), .awaits = (aw) }
#define HOOK_FN(r, n) { .role = (r), .runtime = RUNTIME_TOKIO, .name = (n) }

static struct trace_function tasks_fns[K_COUNT] = {
	[K_RAW] = { .context = CONTEXT_TASK, .runtime = RUNTIME_TOKIO, .name = "tokio::runtime::task::raw::RawTask::poll" },
	[K_PARENT] = ASYNC_FN("demo::parent::{{closure}}", 18, parent_awaits),
	[K_LEFT] = ASYNC_FN("demo::left::{{closure}}", 28, left_awaits),
	[K_RIGHT] = ASYNC_FN("demo::right::{{closure}}", 38, right_awaits),
	[K_WORKER] = ASYNC_FN("demo::worker::{{closure}}", 50, worker_awaits),
	[K_SPAWN] = HOOK_FN(ROLE_SPAWN, "tokio::task::spawn::spawn"),
	[K_NEW] = HOOK_FN(ROLE_TASK_NEW, "tokio::runtime::task::raw::RawTask::new"),
	[K_FREE] = HOOK_FN(ROLE_TASK_FREE, "tokio::runtime::task::raw::RawTask::dealloc"),
	[K_WAKE] = HOOK_FN(ROLE_WAKE, "tokio::runtime::task::waker::wake_by_val"),
	[K_WAKE_BY_REF] = HOOK_FN(ROLE_WAKE_BY_REF, "tokio::runtime::task::waker::wake_by_ref"),
	[K_DROP] = { .role = ROLE_DROP, .target = K_WORKER, .name = "core::ptr::drop_in_place<demo::worker::{{closure}}>" },
};

static const struct trace_thread tasks_threads[] = { { 301, "runtime" }, { 302, "waker" } };

static const struct trace_site tasks_sites[] = {
	{ 0x401234, 42, MAIN_RS, "demo::main" },
	{ 0x401300, 21, MAIN_RS, "demo::parent::{{closure}}" },
};

/* A spawn call at ts whose task allocation returns `task` 50ns later. */
static void spawn(struct events *ev, uint32_t tid, uint64_t ts, uint64_t sp, uint64_t site, uint64_t task)
{
	hook(ev, tid, TRACE_EVENT_ENTRY, K_SPAWN, ts, sp, 0, site);
	hook(ev, tid, TRACE_EVENT_EXIT, K_NEW, ts + 50, sp - 0x100, task, 0);
}

/* A task poll of `task` from ts: RawTask::poll around one worker poll. */
static void worker_poll(struct events *ev, uint64_t task, uint64_t future, uint64_t ts, uint64_t busy,
			uint64_t result)
{
	enter(ev, 301, K_RAW, ts, 0x9000, task);
	enter(ev, 301, K_WORKER, ts + 10, 0x8f00, future);
	leave(ev, 301, K_WORKER, ts + 10 + busy, 0x8f00, result, result == PENDING ? 3 : NO_STATE);
	leave(ev, 301, K_RAW, ts + 20 + busy, 0x9000, 0, NO_STATE);
}

/* Task 1 (0x1000, spawned from main at 100) runs parent, a join of left
 * and right; parent spawns tasks 2 (0x2000: completes) and 3 (0x3000:
 * dropped while Pending, then freed). Task 4 (0x4000), spawned by thread
 * 302, parks and is never woken: pending at the end. Thread 302 wakes
 * task 1 at 5000 (answered by its poll at 6000) and after it completed
 * (8000); right wakes its own task at 6250 (answered at 7000). */
static void tasks_events(struct events *ev)
{
	spawn(ev, 301, 100, 0x9000, 0x401234, 0x1000);
	/* task 1, poll 1 */
	enter(ev, 301, K_RAW, 1000, 0x9000, 0x1000);
	enter(ev, 301, K_PARENT, 1010, 0x8f00, 0xa000);
	spawn(ev, 301, 1100, 0x8e00, 0x401300, 0x2000);
	spawn(ev, 301, 1200, 0x8e00, 0x401300, 0x3000);
	enter(ev, 301, K_LEFT, 1300, 0x8e00, 0xa010);
	leave(ev, 301, K_LEFT, 1400, 0x8e00, PENDING, 3);
	enter(ev, 301, K_RIGHT, 1410, 0x8e00, 0xa020);
	leave(ev, 301, K_RIGHT, 1500, 0x8e00, PENDING, 3);
	leave(ev, 301, K_PARENT, 1600, 0x8f00, PENDING, 3);
	leave(ev, 301, K_RAW, 1610, 0x9000, 0, NO_STATE);
	worker_poll(ev, 0x2000, 0xb000, 2000, 490, READY);
	hook(ev, 301, TRACE_EVENT_ENTRY, K_FREE, 2600, 0x9000, 0x2000, 0);
	worker_poll(ev, 0x3000, 0xc000, 3000, 290, PENDING);
	hook(ev, 301, TRACE_EVENT_ENTRY, K_DROP, 3390, 0x9000, 0xc000, 0);
	hook(ev, 301, TRACE_EVENT_ENTRY, K_FREE, 3400, 0x9000, 0x3000, 0);
	spawn(ev, 302, 4000, 0x6000, 0x401234, 0x4000);
	worker_poll(ev, 0x4000, 0xd000, 4500, 190, PENDING);
	hook(ev, 302, TRACE_EVENT_ENTRY, K_WAKE, 5000, 0x6000, 0x1000, 0);
	/* task 1, poll 2: left finishes, right wakes its own task */
	enter(ev, 301, K_RAW, 6000, 0x9000, 0x1000);
	enter(ev, 301, K_PARENT, 6010, 0x8f00, 0xa000);
	enter(ev, 301, K_LEFT, 6100, 0x8e00, 0xa010);
	leave(ev, 301, K_LEFT, 6200, 0x8e00, READY, NO_STATE);
	enter(ev, 301, K_RIGHT, 6210, 0x8e00, 0xa020);
	hook(ev, 301, TRACE_EVENT_ENTRY, K_WAKE_BY_REF, 6250, 0x8d00, 0x1000, 0);
	leave(ev, 301, K_RIGHT, 6300, 0x8e00, PENDING, 3);
	leave(ev, 301, K_PARENT, 6400, 0x8f00, PENDING, 3);
	leave(ev, 301, K_RAW, 6410, 0x9000, 0, NO_STATE);
	/* task 1, poll 3: right and parent Ready */
	enter(ev, 301, K_RAW, 7000, 0x9000, 0x1000);
	enter(ev, 301, K_PARENT, 7010, 0x8f00, 0xa000);
	enter(ev, 301, K_RIGHT, 7100, 0x8e00, 0xa020);
	leave(ev, 301, K_RIGHT, 7200, 0x8e00, READY, NO_STATE);
	leave(ev, 301, K_PARENT, 7300, 0x8f00, READY, NO_STATE);
	leave(ev, 301, K_RAW, 7310, 0x9000, 0, NO_STATE);
	hook(ev, 302, TRACE_EVENT_ENTRY, K_WAKE, 8000, 0x6000, 0x1000, 0);
}

int main(int argc, char **argv)
{
	struct fixture stats = { "stats", stats_fns, S_COUNT, stats_threads, 2, NULL, 0, 7, { 0 } };
	struct fixture tasks = { "tasks", tasks_fns, K_COUNT, tasks_threads, 2, tasks_sites, 2, 0, { 0 } };
	int err;

	if (argc != 2) {
		fprintf(stderr, "usage: make_fixtures DIR\n");
		return 2;
	}
	stats_main_thread(&stats.ev);
	stats_worker_thread(&stats.ev);
	tasks_events(&tasks.ev);
	err = write_fixture(argv[1], &stats);
	if (!err)
		err = write_fixture(argv[1], &tasks);
	if (err) {
		fprintf(stderr, "make_fixtures: cannot write the fixtures in %s: %s\n", argv[1], strerror(-err));
		return 1;
	}
	return 0;
}
