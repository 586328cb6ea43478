/* On-CPU samples read back from a trace and joined with its polls
 * (trace/samples.c, trace/profile.c): each sample's chain of open polls,
 * innermost first, its task; the runtime's samples outside polls; waits
 * owned by the innermost poll around them; a corrupt SAMPLES chunk skipped
 * and counted, the others kept. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "trace/profile.h"
#include "trace/reader.h"
#include "trace_fixture.h"
#include "unit.h"

enum { RAW_POLL, OUTER, INNER, FUNCTION_COUNT };

static struct trace_function functions[FUNCTION_COUNT] = {
	[RAW_POLL] = { .context = CONTEXT_TASK, .name = "tokio::runtime::task::raw::RawTask::poll" },
	[OUTER] = { .context = CONTEXT_COMPILER, .name = "demo::outer::{{closure}}", .addr = 0x1000, .size = 0x100,
		    .result = { RESULT_IN_REGS, 1, 0, 1 } },
	[INNER] = { .context = CONTEXT_COMPILER, .name = "demo::inner::{{closure}}", .addr = 0x2000, .size = 0x100,
		    .result = { RESULT_IN_REGS, 1, 0, 1 } },
};

struct events {
	struct trace_event e[32];
	size_t n;
};

static void add(struct events *ev, uint8_t kind, uint32_t func, uint64_t ts, uint64_t sp, uint64_t arg0)
{
	ev->e[ev->n++] = (struct trace_event){ .ts = ts, .sp = sp, .arg0 = arg0, .pid = 1, .tid = 7, .func_id = func,
					       .kind = kind };
}

/* Task 0x7a5c polled once on thread 7 from 1000 to 2000 ns: outer (1100 -
 * 1900) awaits inner (1200 - 1500). */
static size_t task_poll(struct events *ev)
{
	add(ev, TRACE_EVENT_ENTRY, RAW_POLL, 1000, 0x9000, 0x7a5c);
	add(ev, TRACE_EVENT_ENTRY, OUTER, 1100, 0x8f00, 0xf1);
	add(ev, TRACE_EVENT_ENTRY, INNER, 1200, 0x8e00, 0xf2);
	add(ev, TRACE_EVENT_EXIT, INNER, 1500, 0x8e00, 1);
	add(ev, TRACE_EVENT_EXIT, OUTER, 1900, 0x8f00, 1);
	add(ev, TRACE_EVENT_EXIT, RAW_POLL, 2000, 0x9000, 0);
	return ev->n;
}

/* Frames, leaf first: in inner's code under outer's call (return address
 * - 1), then a native function called from inner. */
static const uint64_t frames[] = { 0x2010, 0x1020, 0x5000, 0x2020, 0x1030 };
static const struct trace_site sites[] = {
	{ .addr = 0x5000, .function = "core::hint::black_box" },
	{ .addr = 0x2010, .function = "demo::inner::{{closure}}" },
};

static void stack_of(const char *name, enum profile_frame_kind kind, const char *file, uint32_t line,
			 void *ctx)
{
	char *out = ctx;

	(void)kind, (void)file, (void)line;
	if (*out)
		strcat(out, ";");
	strncat(out, name, 200);
}

UNIT_TEST(profile_samples_get_the_polls_open_on_their_thread)
{
	struct trace_sample samples[] = {
		{ .ts = 1300, .tid = 7, .kind = TRACE_SAMPLE_ON_CPU, .frame_count = 2, .first_frame = 0 },
		{ .ts = 1300, .tid = 7, .kind = TRACE_SAMPLE_ON_CPU, .frame_count = 3, .first_frame = 2 },
		{ .ts = 1700, .tid = 7, .kind = TRACE_SAMPLE_ON_CPU },
		{ .ts = 1950, .tid = 7, .kind = TRACE_SAMPLE_ON_CPU },
		{ .ts = 2500, .tid = 7, .kind = TRACE_SAMPLE_ON_CPU },
		{ .ts = 1300, .tid = 8, .kind = TRACE_SAMPLE_ON_CPU },
	};
	struct events ev = { .n = 0 };
	size_t n = task_poll(&ev);
	struct trace_file *t = trace_fixture__open_profiled(functions, FUNCTION_COUNT, ev.e, n, samples, 6, frames, 4,
							    999, sites, 2, 0);
	struct task_model model;
	struct profile p;
	struct profile_summary sum;
	char stack[1024] = "";

	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(t->sample_count == 6 && t->sample_hz == 999 && t->chunks_skipped == 0);
	CHECK(profile__build(&p, &model, t) == 0);
	/* by thread, then time: tid 7's five, then tid 8's */
	CHECK(t->samples[0].tid == 7 && t->samples[5].tid == 8);
	CHECK(p.contexts[0].poll_count == 3 && p.contexts[0].polls[0] == INNER && p.contexts[0].polls[1] == OUTER &&
	      p.contexts[0].polls[2] == RAW_POLL);
	CHECK(p.contexts[0].task == 1);
	CHECK(p.contexts[2].poll_count == 2 && p.contexts[2].polls[0] == OUTER);
	CHECK(p.contexts[3].poll_count == 1 && p.contexts[3].polls[0] == RAW_POLL && p.contexts[3].task == 1);
	CHECK(p.contexts[4].poll_count == 0 && p.contexts[4].task == 0);
	CHECK(p.contexts[5].poll_count == 0);
	/* The native frames below the innermost poll: none when the sample is
	 * in inner's own code, the callee when it is below it. */
	CHECK(profile__frames_below(&p, 0) == 0);
	CHECK(profile__frames_below(&p, 1) == 1);
	profile__stack(&p, 1, PROFILE_BY_TASK, stack_of, stack);
	CHECK_STR(stack, "task 1: demo::outer::{{closure}};demo::outer::{{closure}};demo::inner::{{closure}};"
			 "core::hint::black_box");
	stack[0] = '\0';
	profile__stack(&p, 4, PROFILE_BY_THREAD, stack_of, stack);
	CHECK_STR(stack, "thread/7;[runtime]");
	CHECK(profile__summarize(&p, &sum) == 0);
	CHECK(sum.samples == 6 && sum.outside_polls == 2 && sum.outside_tasks == 0);
	CHECK(sum.task_count == 1 && sum.tasks[0].id == 1 && sum.tasks[0].samples == 4);
	CHECK(sum.function_count == 2 && sum.functions[0].id == INNER && sum.functions[0].samples == 2 &&
	      sum.functions[1].id == OUTER && sum.functions[1].samples == 1);
	profile_summary__free(&sum);
	profile__free(&p);
	task_model__free(&model);
	trace_file__close(t);
}

UNIT_TEST(profile_waits_belong_to_the_innermost_poll)
{
	/* a 400 ns wait inside inner, a preemption inside outer, a wait after the poll */
	struct trace_sample samples[] = {
		{ .ts = 1250, .tid = 7, .kind = TRACE_SAMPLE_BLOCKED_AT, .frame_count = 1, .first_frame = 0 },
		{ .ts = 1250, .tid = 7, .kind = TRACE_SAMPLE_SWITCH_OUT },
		{ .ts = 1450, .tid = 7, .kind = TRACE_SAMPLE_SWITCH_IN },
		{ .ts = 1600, .tid = 7, .kind = TRACE_SAMPLE_PREEMPTED },
		{ .ts = 1800, .tid = 7, .kind = TRACE_SAMPLE_SWITCH_IN },
		{ .ts = 2100, .tid = 7, .kind = TRACE_SAMPLE_SWITCH_OUT },
		{ .ts = 2900, .tid = 7, .kind = TRACE_SAMPLE_SWITCH_IN },
	};
	struct events ev = { .n = 0 };
	size_t n = task_poll(&ev);
	struct trace_file *t = trace_fixture__open_profiled(functions, FUNCTION_COUNT, ev.e, n, samples, 7, frames, 3,
							    99, sites, 2, 0);
	struct task_model model;
	struct profile p;

	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(profile__build(&p, &model, t) == 0);
	CHECK(p.has_switches);
	CHECK(p.wait_count == 3);
	CHECK(p.waits[0].start == 1250 && p.waits[0].end == 1450 && p.waits[0].stack == 0 && !p.waits[0].preempted);
	CHECK(p.waits[1].start == 1600 && p.waits[1].end == 1800 && p.waits[1].preempted);
	CHECK(p.waits[0].claimed && !p.waits[1].claimed && !p.waits[2].claimed); /* a preemption is no wait */
	CHECK(p.blocking_count == 0); /* 200 ns: under BLOCKING_MIN_NS */
	CHECK(p.heavy_count == 0);    /* nothing near 10 ms */
	profile__free(&p);
	task_model__free(&model);
	trace_file__close(t);
}

/* With a threshold of 300 ns on CPU: inner (300 ns, 200 of them waiting)
 * is not heavy; outer (800 ns, 200 waiting, 200 preempted) is, with 400 ns
 * on CPU; the task poll around it is not reported again. */
UNIT_TEST(profile_cpu_heavy_is_the_innermost_poll_long_on_cpu)
{
	struct trace_sample samples[] = {
		{ .ts = 1250, .tid = 7, .kind = TRACE_SAMPLE_SWITCH_OUT },
		{ .ts = 1450, .tid = 7, .kind = TRACE_SAMPLE_SWITCH_IN },
		{ .ts = 1600, .tid = 7, .kind = TRACE_SAMPLE_PREEMPTED },
		{ .ts = 1800, .tid = 7, .kind = TRACE_SAMPLE_SWITCH_IN },
	};
	struct events ev = { .n = 0 };
	size_t n = task_poll(&ev);
	struct trace_file *t = trace_fixture__open_profiled(functions, FUNCTION_COUNT, ev.e, n, samples, 4, frames, 4,
							    99, sites, 2, 0);
	struct trace_consumer consumers[2];
	struct task_model model;
	struct profile p;

	CHECK(t != NULL);
	if (!t || task_model__init(&model, t, 0))
		return;
	CHECK(profile__init(&p, t, &model) == 0);
	p.heavy_min_ns = 300;
	consumers[0] = task_model__consumer(&model);
	consumers[1] = profile__consumer(&p);
	CHECK(trace_file__pass(t, consumers, 2, NULL) == 0);
	CHECK(p.heavy_count == 1);
	CHECK(p.heavy_count && p.heavy[0].func_id == OUTER && p.heavy[0].oncpu_ns == 400 && p.heavy[0].task == 1);
	profile__free(&p);
	task_model__free(&model);
	trace_file__close(t);
}

UNIT_TEST(profile_corrupt_samples_chunk_is_skipped_and_counted)
{
	struct trace_sample samples[] = {
		{ .ts = 1300, .tid = 7, .kind = TRACE_SAMPLE_ON_CPU },
		{ .ts = 1700, .tid = 7, .kind = TRACE_SAMPLE_ON_CPU },
		{ .ts = 1950, .tid = 7, .kind = TRACE_SAMPLE_ON_CPU },
	};
	struct events ev = { .n = 0 };
	size_t n = task_poll(&ev);
	struct trace_file *t = trace_fixture__open_profiled(functions, FUNCTION_COUNT, ev.e, n, samples, 3, frames, 1,
							    99, sites, 2, 2);

	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(t->chunks_skipped == 1);
	CHECK(t->sample_count == 2 && t->samples[0].ts == 1300 && t->samples[1].ts == 1950);
	CHECK(t->event_count == n); /* the events are not touched */
	CHECK(trace_file__frame(t, 0x5000) && !strcmp(trace_file__frame(t, 0x5000)->function, "core::hint::black_box"));
	CHECK(trace_file__frame(t, 0x5001) == NULL);
	trace_file__close(t);
}
