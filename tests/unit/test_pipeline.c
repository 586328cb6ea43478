/* A pass with its consumers on a second thread (trace/pipeline.c) makes
 * the same calls, in the same order, with the same contents, as a pass on
 * one thread: over many batches, the ring full and empty, hooks' events
 * copied. */
#include <stdbool.h>
#include <stdlib.h>

#include "trace/polls.h"
#include "trace/reader.h"
#include "trace_fixture.h"
#include "unit.h"

enum { RAW_POLL, OUTER, WAKE_BY_REF, FUNCTION_COUNT };

static struct trace_function functions[FUNCTION_COUNT] = {
	[RAW_POLL] = { .context = CONTEXT_TASK, .name = "tokio::runtime::task::raw::RawTask::poll" },
	[OUTER] = { .context = CONTEXT_COMPILER, .name = "demo::outer::{{closure}}",
		    .result = { RESULT_IN_REGS, 1, 0, 1 } },
	[WAKE_BY_REF] = { .role = ROLE_WAKE_BY_REF, .name = "tokio::runtime::task::waker::wake_by_ref" },
};

/* What a consumer was told, one line per call. */
struct call {
	char kind; /* 'b'egin, 'p'oll, 'h'ook */
	uint32_t func_id, tid;
	uint64_t start, end, future, task;
	uint8_t result, depth;
};

struct log {
	struct call *calls;
	size_t count, capacity;
};

static struct call *log_next(struct log *log, char kind)
{
	if (log->count == log->capacity) {
		size_t cap = log->capacity ? log->capacity * 2 : 1024;
		struct call *c = realloc(log->calls, cap * sizeof(*c));

		if (!c)
			abort();
		log->calls = c;
		log->capacity = cap;
	}
	log->calls[log->count] = (struct call){ .kind = kind };
	return &log->calls[log->count++];
}

static void log_poll(struct log *log, const struct poll *p, char kind)
{
	struct call *c = log_next(log, kind);

	*c = (struct call){ kind, p->func_id, p->tid, p->start, p->end, p->future, p->task, p->result,
			    (uint8_t)p->depth };
}

static void on_begin(const struct poll *p, void *ctx) { log_poll(ctx, p, 'b'); }
static void on_poll(const struct poll *p, void *ctx) { log_poll(ctx, p, 'p'); }

static void on_hook(const struct hook *h, void *ctx)
{
	struct call *c = log_next(ctx, 'h');

	*c = (struct call){ 'h', h->event->func_id, h->event->tid, h->event->ts, h->role, h->event->arg0, h->task,
			    h->in_poll, (uint8_t)h->func_id };
}

#define THREADS 3
#define POLLS_PER_THREAD 4000
#define EVENTS_PER_POLL 5

static struct trace_event *make_events(size_t *count)
{
	struct trace_event *e = calloc(THREADS * POLLS_PER_THREAD * EVENTS_PER_POLL, sizeof(*e));
	size_t n = 0;

	if (!e)
		return NULL;
	for (uint64_t i = 0; i < POLLS_PER_THREAD; i++) {
		for (uint32_t t = 0; t < THREADS; t++) {
			uint64_t ts = 1000 + i * 100 + t * 10, task = 0x10000 + (i % 37) * 0x100 + t;
			uint32_t tid = 10 + t;

			e[n++] = (struct trace_event){ .ts = ts, .sp = 0x9000, .arg0 = task, .tid = tid,
						       .func_id = RAW_POLL, .kind = TRACE_EVENT_ENTRY };
			e[n++] = (struct trace_event){ .ts = ts + 1, .sp = 0x8f00, .arg0 = task + 0x40, .tid = tid,
						       .func_id = OUTER, .kind = TRACE_EVENT_ENTRY };
			e[n++] = (struct trace_event){ .ts = ts + 2, .sp = 0x8e00, .arg0 = task, .tid = tid,
						       .func_id = WAKE_BY_REF, .kind = TRACE_EVENT_ENTRY };
			e[n++] = (struct trace_event){ .ts = ts + 3, .sp = 0x8f00, .arg0 = i % 5 != 0, .tid = tid,
						       .func_id = OUTER, .kind = TRACE_EVENT_EXIT };
			e[n++] = (struct trace_event){ .ts = ts + 4, .sp = 0x9000, .tid = tid, .func_id = RAW_POLL,
						       .kind = TRACE_EVENT_EXIT };
		}
	}
	for (size_t i = 0; i < n; i++)
		e[i].pid = 1;
	*count = n;
	return e;
}

static bool same_call(const struct call *a, const struct call *b)
{
	return a->kind == b->kind && a->func_id == b->func_id && a->tid == b->tid && a->start == b->start &&
	       a->end == b->end && a->future == b->future && a->task == b->task && a->result == b->result &&
	       a->depth == b->depth;
}

static size_t first_difference(const struct log *a, const struct log *b)
{
	size_t i = 0;

	while (i < a->count && i < b->count && same_call(&a->calls[i], &b->calls[i]))
		i++;
	return i;
}

static int run(const struct trace_file *trace, struct log *log, struct poll_builder_stats *stats, bool threaded)
{
	/* Two consumers, as report's summary and task model: each call to both. */
	struct trace_consumer consumers[2] = {
		{ .poll_begin = on_begin, .poll = on_poll, .hook = on_hook, .ctx = log },
		{ .poll = on_poll, .ctx = log },
	};

	return threaded ? trace_file__pass_threaded(trace, consumers, 2, stats)
			: trace_file__pass(trace, consumers, 2, stats);
}

UNIT_TEST(pipeline_pass_makes_the_same_calls_as_one_thread)
{
	size_t n = 0;
	struct trace_event *events = make_events(&n);
	struct trace_file *trace = events ? trace_fixture__open(functions, FUNCTION_COUNT, events, n) : NULL;
	struct log one = { 0 }, two = { 0 };
	struct poll_builder_stats s1 = { 0 }, s2 = { 0 };

	CHECK(trace != NULL);
	if (trace) {
		/* below PASS_THREADED_MIN_EVENTS: trace_file__pass stays on this thread */
		CHECK(trace->event_count == n && n < PASS_THREADED_MIN_EVENTS);
		CHECK(run(trace, &one, &s1, false) == 0);
		CHECK(run(trace, &two, &s2, true) == 0);
		/* per task poll: two polls to two consumers, their begins to one,
		 * the wake and the task poll's start */
		CHECK(one.count == THREADS * POLLS_PER_THREAD * (2 * 2 + 2 + 2));
		CHECK(two.count == one.count);
		CHECK(first_difference(&one, &two) == one.count);
		CHECK(s1.polls == s2.polls && s1.polls == THREADS * POLLS_PER_THREAD * 2);
	}
	free(one.calls);
	free(two.calls);
	free(events);
	trace_file__close(trace);
}
