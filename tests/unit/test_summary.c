/* The report's numbers on a synthetic trace whose every duration is known:
 * counts by result, total, mean, nearest-rank p50/p99, max, long polls,
 * the longest polls, thread busy time (outermost polls only, runtime shells
 * left out), the first and last timestamps, and the sort orders. A wrong
 * divisor, percentile rank, comparison or a missed sum changes an exact
 * expected value here. */
#include <stdlib.h>
#include <string.h>

#include "trace/reader.h"
#include "trace/summary.h"
#include "trace_fixture.h"
#include "unit.h"

enum { SHELL, TASK_POLL, SPREAD, HUNDRED, LEAF, FUNCTION_COUNT };

static const struct poll_result_layout in_al = { .mode = RESULT_IN_REGS, .disc_size = 1, .pending_value = 1 };

static struct trace_function functions[FUNCTION_COUNT] = {
	/* tokio's blocking-task shell: its poll runs the worker loop, whose
	 * task polls make it a shell (a non-task poll around task polls). */
	[SHELL] = { .context = CONTEXT_USER, .name = "tokio::runtime::blocking::task::BlockingTask::poll" },
	[TASK_POLL] = { .context = CONTEXT_TASK, .name = "tokio::runtime::task::raw::poll" },
	[SPREAD] = { .context = CONTEXT_COMPILER, .name = "demo::spread::{{closure}}", .result = in_al },
	[HUNDRED] = { .context = CONTEXT_COMPILER, .name = "demo::hundred::{{closure}}", .result = in_al },
	[LEAF] = { .context = CONTEXT_COMPILER, .name = "demo::leaf::{{closure}}", .result = in_al },
};

struct events {
	struct trace_event e[1024];
	size_t n;
};

static void add(struct events *ev, uint8_t kind, uint32_t func, uint32_t tid, uint64_t ts, uint64_t sp,
		uint64_t arg0)
{
	if (ev->n < sizeof(ev->e) / sizeof(ev->e[0]))
		ev->e[ev->n++] = (struct trace_event){ .ts = ts, .sp = sp, .arg0 = arg0, .pid = 1, .tid = tid,
						       .func_id = func, .kind = kind };
}

/* One returned poll; sp below the enclosing frame's when nested. */
static void poll(struct events *ev, uint32_t func, uint32_t tid, uint64_t start, uint64_t end, int pending,
		 uint64_t sp)
{
	add(ev, TRACE_EVENT_ENTRY, func, tid, start, sp, 0xf0);
	add(ev, TRACE_EVENT_EXIT, func, tid, end, sp, pending);
}

/*
 * Thread 1: spread's 10 polls of 10, 20, ..., 100 ns (every third Pending),
 *   starting at 1000, 2000, ...; the 100 ns one holds a 5 ns leaf poll.
 * Thread 2: a runtime shell from 500 to 900000 runs 200 task polls of
 *   hundred, each 1..200 ns (so p99 = 198, not the max), each inside the
 *   task poll around it (task poll 2 ns longer). Thread 2 starts first: 500
 *   is the first timestamp, though its events come after thread 1's.
 * Thread 1 also has one poll still open at the end (unfinished) at 50000.
 */
static void build(struct events *ev)
{
	for (int i = 1; i <= 10; i++) {
		uint64_t start = 1000 * (uint64_t)i;

		if (i < 10) {
			poll(ev, SPREAD, 1, start, start + 10 * (uint64_t)i, i % 3 == 0, 0x8000);
			continue;
		}
		add(ev, TRACE_EVENT_ENTRY, SPREAD, 1, start, 0x8000, 0xf0);
		poll(ev, LEAF, 1, start + 10, start + 15, 0, 0x7f00);
		add(ev, TRACE_EVENT_EXIT, SPREAD, 1, start + 100, 0x8000, 0);
	}
	add(ev, TRACE_EVENT_ENTRY, SPREAD, 1, 50000, 0x8000, 0xf0);
	add(ev, TRACE_EVENT_ENTRY, SHELL, 2, 500, 0x9000, 0x5e11);
	for (uint64_t i = 1; i <= 200; i++) {
		uint64_t start = 1000 + 4000 * i;

		add(ev, TRACE_EVENT_ENTRY, TASK_POLL, 2, start, 0x8800, 0x7a5c);
		poll(ev, HUNDRED, 2, start + 1, start + 1 + i, 0, 0x8000);
		add(ev, TRACE_EVENT_EXIT, TASK_POLL, 2, start + 2 + i, 0x8800, 0);
	}
	add(ev, TRACE_EVENT_EXIT, SHELL, 2, 900000, 0x9000, 0);
}

static const struct function_summary *row(const struct trace_summary *s, const char *name)
{
	for (size_t i = 0; i < s->function_count; i++)
		if (!strcmp(s->functions[i].name, name))
			return &s->functions[i];
	return NULL;
}

static const struct thread_summary *thread(const struct trace_summary *s, uint32_t tid)
{
	for (size_t i = 0; i < s->thread_count; i++)
		if (s->threads[i].tid == tid)
			return &s->threads[i];
	return NULL;
}

static struct trace_file *open_fixture(void)
{
	static struct events ev;

	ev.n = 0;
	build(&ev);
	return trace_fixture__open(functions, FUNCTION_COUNT, ev.e, ev.n);
}

UNIT_TEST(summary_counts_durations_and_percentiles_exactly)
{
	struct trace_file *t = open_fixture();
	struct trace_summary s;
	const struct function_summary *spread, *hundred, *leaf;

	CHECK(t != NULL);
	if (!t || trace_summary__build(&s, t, 3, 50) != 0) {
		CHECK(!"summary built");
		trace_file__close(t);
		return;
	}
	spread = row(&s, "demo::spread::{{closure}}");
	hundred = row(&s, "demo::hundred::{{closure}}");
	leaf = row(&s, "demo::leaf::{{closure}}");
	CHECK(spread && hundred && leaf);
	if (spread && hundred && leaf) {
		/* 10 returned + 1 unfinished; Pending at i = 3, 6, 9. */
		CHECK(spread->polls == 11 && spread->ready == 7 && spread->pending == 3);
		CHECK(spread->unfinished == 1 && spread->unwound == 0 && spread->unknown == 0);
		CHECK(spread->timed == 10 && spread->total_ns == 550 && spread->mean_ns == 55);
		CHECK(spread->p50_ns == 50 && spread->p99_ns == 100 && spread->max_ns == 100);
		/* Longer than 50 ns: 60, 70, 80, 90, 100 (50 itself is not). */
		CHECK(spread->long_polls == 5);
		CHECK(hundred->polls == 200 && hundred->ready == 200 && hundred->total_ns == 20100);
		CHECK(hundred->mean_ns == 100 && hundred->p50_ns == 100);
		CHECK(hundred->p99_ns == 198 && hundred->max_ns == 200);
		CHECK(hundred->long_polls == 150);
		CHECK(leaf->polls == 1 && leaf->total_ns == 5 && leaf->long_polls == 0);
	}
	CHECK(s.long_polls == 155);
	/* Runtime shells and task polls are never among the longest. */
	CHECK(s.longest_count == 3);
	CHECK(s.longest_count == 3 && s.longest[0].duration_ns == 200 && s.longest[0].poll.func_id == HUNDRED);
	CHECK(s.longest_count == 3 && s.longest[1].duration_ns == 199 && s.longest[2].duration_ns == 198);
	CHECK(s.first_ts == 500 && s.last_ts == 900000);
	trace_summary__free(&s);
	trace_file__close(t);
}

UNIT_TEST(summary_thread_busy_counts_outermost_polls_not_shells)
{
	struct trace_file *t = open_fixture();
	struct trace_summary s;
	const struct thread_summary *one, *two;

	if (!t || trace_summary__build(&s, t, 0, 0) != 0) {
		CHECK(!"summary built");
		trace_file__close(t);
		return;
	}
	one = thread(&s, 1);
	two = thread(&s, 2);
	CHECK(s.thread_count == 2 && one && two);
	if (one && two) {
		/* Thread 1: its 10 returned polls (the leaf is nested, the open one unfinished). */
		CHECK(one->polls == 10 && one->busy_ns == 550);
		/* Thread 2: the task polls inside the shell, i + 2 ns each; not the shell. */
		CHECK(two->polls == 200 && two->busy_ns == 20100 + 400);
	}
	CHECK(s.long_polls == 0 && s.longest_count == 0);
	trace_summary__free(&s);
	trace_file__close(t);
}

static const char *first_after_sort(struct trace_summary *s, const char *key)
{
	trace_summary__sort(s, (enum summary_sort)summary_sort__parse(key));
	return s->functions[0].name;
}

UNIT_TEST(summary_sorts_by_each_key)
{
	struct trace_file *t = open_fixture();
	struct trace_summary s;

	if (!t || trace_summary__build(&s, t, 0, 0) != 0) {
		CHECK(!"summary built");
		trace_file__close(t);
		return;
	}
	CHECK(summary_sort__parse("nope") == -1);
	/* The shell's 899500 ns is the largest total, mean and max. */
	CHECK_STR(first_after_sort(&s, "total"), "tokio::runtime::blocking::task::BlockingTask::poll");
	/* 200 each: the tie goes by name. */
	CHECK_STR(first_after_sort(&s, "polls"), "demo::hundred::{{closure}}");
	CHECK_STR(s.functions[1].name, "tokio::runtime::task::raw::poll");
	CHECK_STR(s.functions[2].name, "demo::spread::{{closure}}");
	CHECK_STR(first_after_sort(&s, "mean"), "tokio::runtime::blocking::task::BlockingTask::poll");
	CHECK_STR(first_after_sort(&s, "name"), "demo::hundred::{{closure}}");
	CHECK_STR(s.functions[s.function_count - 1].name, "tokio::runtime::task::raw::poll");
	/* After the shell: p99 200 (task polls, 3..202 ns) > 198 (hundred). */
	CHECK_STR(first_after_sort(&s, "p99"), "tokio::runtime::blocking::task::BlockingTask::poll");
	CHECK_STR(s.functions[1].name, "tokio::runtime::task::raw::poll");
	CHECK_STR(s.functions[2].name, "demo::hundred::{{closure}}");
	CHECK_STR(first_after_sort(&s, "max"), "tokio::runtime::blocking::task::BlockingTask::poll");
	CHECK_STR(s.functions[3].name, "demo::spread::{{closure}}");
	trace_summary__free(&s);
	trace_file__close(t);
}

/* The longest polls: longest first, equal durations in the order they
 * ended, and only the `top` longest kept. */
UNIT_TEST(summary_longest_polls_keep_order_of_ties)
{
	static struct events ev;
	struct trace_file *t;
	struct trace_summary s;
	const uint64_t durations[] = { 50, 70, 50, 20, 50 };

	ev.n = 0;
	for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++)
		poll(&ev, SPREAD, 1, 1000 * (i + 1), 1000 * (i + 1) + durations[i], 0, 0x8000);
	t = trace_fixture__open(functions, FUNCTION_COUNT, ev.e, ev.n);
	if (!t || trace_summary__build(&s, t, 3, 0) != 0) {
		CHECK(!"summary built");
		trace_file__close(t);
		return;
	}
	CHECK(s.longest_count == 3);
	if (s.longest_count == 3) {
		CHECK(s.longest[0].duration_ns == 70 && s.longest[0].poll.start == 2000);
		CHECK(s.longest[1].duration_ns == 50 && s.longest[1].poll.start == 1000);
		CHECK(s.longest[2].duration_ns == 50 && s.longest[2].poll.start == 3000);
	}
	trace_summary__free(&s);
	trace_file__close(t);
}

/* Past 4096 polls a row's percentiles come from the histogram: within
 * 1/128 of the exact ones; count, total, mean and max stay exact. */
UNIT_TEST(summary_many_polls_percentiles_from_histogram)
{
	enum { N = 5000 };
	struct trace_event *e = calloc(2 * N, sizeof(*e));
	struct trace_summary s;
	struct trace_file *t;

	CHECK(e != NULL);
	if (!e)
		return;
	for (uint64_t i = 0; i < N; i++) {
		uint64_t start = 1000 + i * 10000, duration = 100 + (i * 7919) % N; /* 100 .. 5099, each once */

		e[2 * i] = (struct trace_event){ .ts = start, .sp = 0x8000, .arg0 = 0xf0, .pid = 1, .tid = 1,
						 .func_id = SPREAD, .kind = TRACE_EVENT_ENTRY };
		e[2 * i + 1] = (struct trace_event){ .ts = start + duration, .sp = 0x8000, .pid = 1, .tid = 1,
						     .func_id = SPREAD, .kind = TRACE_EVENT_EXIT };
	}
	t = trace_fixture__open(functions, FUNCTION_COUNT, e, 2 * N);
	CHECK(t != NULL);
	if (t && trace_summary__build(&s, t, 5, 0) == 0) {
		const struct function_summary *f = NULL;

		for (size_t i = 0; i < s.function_count; i++)
			if (s.functions[i].first_func_id == SPREAD)
				f = &s.functions[i];
		CHECK(f && f->polls == N && f->timed == N && f->ready == N);
		CHECK(f && f->total_ns == 12997500 && f->mean_ns == 2599 && f->max_ns == 5099);
		/* exact: rank 2500 -> 2599, rank 4950 -> 5049 */
		CHECK(f && f->p99_ns >= 5049 - 5049 / 128 && f->p99_ns <= 5049 + 5049 / 128);
		CHECK(f && f->p50_ns >= 2599 - 2599 / 128 && f->p50_ns <= 2599 + 2599 / 128);
		trace_summary__free(&s);
	} else {
		CHECK(!"summary built");
	}
	trace_file__close(t);
	free(e);
}
