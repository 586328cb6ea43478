/* Trace file round trip, reader validation, and the poll builder (pairing,
 * unwound frames, Ready/Pending decoding). Streams, their merge and the
 * 2.x format are in test_streams.c. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/polls.h"
#include "trace/reader.h"
#include "trace/writer.h"
#include "trace_fixture.h"
#include "unit.h"


static struct trace_event event(uint8_t kind, uint32_t func, uint64_t ts, uint64_t sp, uint64_t arg0)
{
	return (struct trace_event){ .ts = ts, .sp = sp, .arg0 = arg0, .pid = 10, .tid = 11,
				     .func_id = func, .cpu = 1, .kind = kind };
}

static const struct trace_function functions[] = {
	{ .addr = 0x1000, .size = 0x40, .context = CONTEXT_TASK, .name = "task::poll",
	  .mangled = "_ZN4task4poll17h0123456789abcdefE" },
	{ .addr = 0x2000, .size = 0x80, .context = CONTEXT_COMPILER, .name = "demo::leaf::{{closure}}",
	  .result = { .mode = RESULT_IN_REGS, .disc_size = 1, .disc_offset = 0, .pending_value = 1 },
	  .source_file = "src/main.rs", .source_line = 42 },
};

static int write_sample(const char *path, uint64_t nevents)
{
	struct trace_meta meta = { .clock = 1, .pid = 10, .start_clock_ns = 5, .machine = 62,
				   .build_id_len = 3, .build_id = { 1, 2, 3 },
				   .target_path = "/bin/demo", .command = "demo --x", .capture = "test" };
	struct trace_thread threads[] = { { .tid = 11, .name = "worker" }, { .tid = 13, .name = "w" } };
	struct trace_trailer trailer = { .lost = 7, .end_reason = TRACE_END_TARGET_EXITED };
	struct trace_writer *w;
	int err = trace_writer__open(&w, path);

	if (err)
		return err;
	err = trace_writer__write_meta(w, &meta);
	err = err ? err : trace_writer__write_functions(w, functions, 2);
	for (uint64_t i = 0; !err && i < nevents; i++) {
		struct trace_event e = event(i % 2 ? TRACE_EVENT_EXIT : TRACE_EVENT_ENTRY, 1, 100 + i, 0x7000, i);

		err = trace_writer__add_event(w, &e);
	}
	err = err ? err : trace_writer__write_threads(w, threads, 2);
	err = err ? err : trace_writer__finish(w, &trailer);
	trace_writer__free(w);
	return err;
}

struct counter {
	uint64_t events;
	uint64_t last_arg;
};

static int count_event(const struct trace_event *e, void *ctx)
{
	struct counter *c = ctx;

	c->events++;
	c->last_arg = e->arg0;
	return 0;
}

UNIT_TEST(trace_round_trip)
{
	char *path = trace_fixture__temp_path();
	struct trace_file *t = NULL;
	struct counter c = { 0 };
	char err[256];
	/* More than one STREAM chunk (8192 events each). */
	uint64_t n = 150001;

	CHECK(write_sample(path, n) == 0);
	CHECK(trace_file__open(&t, path, err, sizeof(err)) == 0);
	if (t) {
		CHECK(t->version_major == 3 && t->version_minor == 1);
		CHECK(t->event_count == n && t->stream_count == 1 && t->first_ts == 100);
		CHECK(t->trailer.events == n);
		CHECK(t->trailer.lost == 7);
		CHECK(t->function_count == 2);
		CHECK_STR(t->functions[1].name, "demo::leaf::{{closure}}");
		CHECK_STR(t->functions[1].source_file, "src/main.rs");
		CHECK(t->functions[1].source_line == 42);
		CHECK(t->functions[1].result.pending_value == 1);
		CHECK(t->functions[0].source_file == NULL);
		CHECK_STR(t->meta.target_path, "/bin/demo");
		CHECK_STR(t->meta.command, "demo --x");
		CHECK(t->meta.build_id_len == 3 && t->meta.build_id[2] == 3);
		CHECK_STR(trace_file__thread_name(t, 11), "worker");
		CHECK(trace_file__thread_name(t, 12) == NULL);
		CHECK_STR(trace_file__thread_name(t, 13), "w"); /* one letter is a name */
		CHECK(trace_file__for_each_event(t, count_event, &c) == 0);
		CHECK(c.events == n);
		CHECK(c.last_arg == n - 1);
		trace_file__close(t);
	}
	unlink(path);
	free(path);
}

static long file_size(const char *path)
{
	FILE *f = fopen(path, "rb");
	long size = -1;

	if (f && fseek(f, 0, SEEK_END) == 0)
		size = ftell(f);
	if (f)
		fclose(f);
	return size;
}

static struct trace_file *open_cut(const char *path, long keep, char *err, size_t errlen)
{
	struct trace_file *t = NULL;

	if (write_sample(path, 1000) != 0 || truncate(path, keep) != 0)
		return NULL;
	if (trace_file__open(&t, path, err, errlen) != 0)
		return NULL;
	return t;
}

/* A recording that did not finish is read up to its last whole chunk; one
 * cut before its function table, or not a trace at all, is refused. */
UNIT_TEST(trace_reader_recovers_cut_files_and_rejects_foreign_ones)
{
	char *path = trace_fixture__temp_path();
	char err[256] = "";
	struct trace_file *t;
	long whole;
	FILE *f;

	CHECK(write_sample(path, 1000) == 0);
	whole = file_size(path);
	t = open_cut(path, whole, err, sizeof(err));
	CHECK(t && !t->cut_short && t->chunks_skipped == 0 && t->bytes_discarded == 0 && t->event_count == 1000);
	trace_file__close(t);
	/* Exactly before the trailer chunk (16-byte header + 32 bytes): every
	 * event is there, only the end is missing. */
	t = open_cut(path, whole - 48, err, sizeof(err));
	CHECK(t && t->cut_short && t->bytes_discarded == 0 && t->event_count == 1000);
	CHECK(t && t->trailer.end_reason == 0 && t->trailer.lost == 0);
	trace_file__close(t);
	/* Inside the trailer: its bytes are discarded. */
	t = open_cut(path, whole - 10, err, sizeof(err));
	CHECK(t && t->cut_short && t->bytes_discarded == 38 && t->event_count == 1000);
	trace_file__close(t);
	/* Half way: fewer events, none invented. */
	t = open_cut(path, whole / 2, err, sizeof(err));
	CHECK(t && t->cut_short && t->bytes_discarded > 0 && t->event_count < 1000);
	trace_file__close(t);
	/* Inside the meta chunk: nothing to read events with. */
	CHECK(open_cut(path, 24 + 16, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "truncated") != NULL);
	f = fopen(path, "w");
	if (f) {
		fputs("this is not a trace file at all, but long enough to have a header", f);
		fclose(f);
	}
	CHECK(trace_file__open(&t, path, err, sizeof(err)) < 0);
	CHECK(strstr(err, "not an asynctrace trace file") != NULL);
	unlink(path);
	free(path);
}

#define MAX_POLLS 16

struct collected {
	struct poll polls[MAX_POLLS];
	int count;
};

static void collect(const struct poll *p, void *ctx)
{
	struct collected *c = ctx;

	if (c->count < MAX_POLLS)
		c->polls[c->count++] = *p;
}

static void feed(struct poll_builder *b, const struct trace_event *events, size_t n)
{
	for (size_t i = 0; i < n; i++)
		poll_builder__add(b, &events[i]);
}

UNIT_TEST(poll_builder_pairs_nested_calls_and_decodes_results)
{
	struct collected c = { 0 };
	struct poll_builder *b = poll_builder__new(functions, 2, collect, &c);
	struct trace_event events[] = {
		event(TRACE_EVENT_ENTRY, 0, 100, 0x8000, 0xaaaa),
		event(TRACE_EVENT_ENTRY, 1, 110, 0x7f00, 0xbbbb),
		event(TRACE_EVENT_EXIT, 1, 150, 0x7f00, 0x0101), /* al = 1: Pending */
		event(TRACE_EVENT_ENTRY, 1, 160, 0x7f00, 0xbbbb),
		event(TRACE_EVENT_EXIT, 1, 170, 0x7f00, 0xff00), /* al = 0: Ready */
		event(TRACE_EVENT_EXIT, 0, 200, 0x8000, 0),
	};

	feed(b, events, 6);
	poll_builder__finish(b, 300);
	CHECK(c.count == 3);
	CHECK(c.polls[0].func_id == 1 && c.polls[0].result == POLL_RESULT_PENDING);
	CHECK(c.polls[0].start == 110 && c.polls[0].end == 150 && c.polls[0].depth == 1);
	CHECK(c.polls[0].future == 0xbbbb && c.polls[0].parent_func == 0);
	CHECK(c.polls[1].result == POLL_RESULT_READY);
	CHECK(c.polls[2].func_id == 0 && c.polls[2].depth == 0 && c.polls[2].end == 200);
	CHECK(c.polls[2].result == POLL_RESULT_UNKNOWN && c.polls[2].end_kind == POLL_END_RETURNED);
	CHECK(poll_builder__stats(b)->unwound == 0);
	poll_builder__free(b);
}

UNIT_TEST(poll_builder_closes_frames_a_panic_unwound)
{
	struct collected c = { 0 };
	struct poll_builder *b = poll_builder__new(functions, 2, collect, &c);
	struct trace_event events[] = {
		event(TRACE_EVENT_ENTRY, 0, 100, 0x8000, 0),
		event(TRACE_EVENT_ENTRY, 1, 110, 0x7f00, 0),
		event(TRACE_EVENT_ENTRY, 1, 120, 0x7e00, 0),
		/* the two inner frames unwind; the outer one catches and returns */
		event(TRACE_EVENT_EXIT, 0, 200, 0x8000, 0),
		/* a later poll at the same depth on the same thread */
		event(TRACE_EVENT_ENTRY, 1, 300, 0x7f00, 0),
		event(TRACE_EVENT_ENTRY, 1, 310, 0x7e00, 0),
		/* no exit for 0x7e00: the next entry at the same stack pointer
		 * shows that frame is gone */
		event(TRACE_EVENT_ENTRY, 1, 320, 0x7e00, 0),
	};

	feed(b, events, 7);
	poll_builder__finish(b, 400);
	CHECK(c.count == 6);
	CHECK(c.polls[0].end_kind == POLL_END_UNWOUND && c.polls[0].start == 120 && c.polls[0].end == 200);
	CHECK(c.polls[1].end_kind == POLL_END_UNWOUND && c.polls[1].start == 110);
	CHECK(c.polls[2].end_kind == POLL_END_RETURNED && c.polls[2].func_id == 0);
	CHECK(c.polls[3].end_kind == POLL_END_UNWOUND && c.polls[3].start == 310 && c.polls[3].end == 320);
	CHECK(c.polls[4].end_kind == POLL_END_UNFINISHED && c.polls[4].start == 320 && c.polls[4].end == 400);
	CHECK(c.polls[5].end_kind == POLL_END_UNFINISHED && c.polls[5].start == 300);
	CHECK(poll_builder__stats(b)->unwound == 3);
	CHECK(poll_builder__stats(b)->unfinished == 2);
	poll_builder__free(b);
}

UNIT_TEST(poll_builder_counts_orphan_exits_and_bad_events)
{
	struct collected c = { 0 };
	struct poll_builder *b = poll_builder__new(functions, 2, collect, &c);
	struct trace_event events[] = {
		event(TRACE_EVENT_EXIT, 1, 100, 0x7f00, 0), /* attached mid-poll */
		event(TRACE_EVENT_ENTRY, 9, 110, 0x7f00, 0), /* no such function */
		event(7, 1, 120, 0x7f00, 0),                 /* no such kind */
		event(TRACE_EVENT_ENTRY, 2, 130, 0x7f00, 0), /* one past the table */
	};

	feed(b, events, 4);
	poll_builder__finish(b, 200);
	CHECK(c.count == 0);
	CHECK(poll_builder__stats(b)->orphan_exits == 1);
	CHECK(poll_builder__stats(b)->bad_events == 3);
	poll_builder__free(b);
}

UNIT_TEST(poll_result_decoding_by_layout)
{
	struct trace_function fn = { .name = "f" };
	struct trace_event e = { .kind = TRACE_EVENT_EXIT };

	/* Poll<u64>-like: tag in the first register, payload in the second. */
	fn.result = (struct poll_result_layout){ RESULT_IN_REGS, 8, 0, 1 };
	e.arg0 = 1;
	CHECK(poll_result__decode(&fn, &e) == POLL_RESULT_PENDING);
	e.arg0 = 0;
	CHECK(poll_result__decode(&fn, &e) == POLL_RESULT_READY);
	/* Niche in the second register (offset 8, 4 bytes). */
	fn.result = (struct poll_result_layout){ RESULT_IN_REGS, 4, 8, 0x80000001 };
	e.arg1 = 0xdead000080000001ULL;
	CHECK(poll_result__decode(&fn, &e) == POLL_RESULT_PENDING);
	/* Returned in memory: the BPF side read the word at the discriminant. */
	fn.result = (struct poll_result_layout){ RESULT_IN_MEMORY, 1, 24, 3 };
	e.flags = TRACE_EVENT_ARG1_FROM_MEMORY;
	e.arg1 = 0x1234503;
	CHECK(poll_result__decode(&fn, &e) == POLL_RESULT_PENDING);
	e.flags |= TRACE_EVENT_READ_FAILED;
	CHECK(poll_result__decode(&fn, &e) == POLL_RESULT_UNKNOWN);
	fn.result = (struct poll_result_layout){ RESULT_UNKNOWN, 0, 0, 0 };
	CHECK(poll_result__decode(&fn, &e) == POLL_RESULT_UNKNOWN);
}

UNIT_TEST(poll_builder_marks_runtime_shells)
{
	/* tokio's worker: blocking task chain > BlockingTask::poll > worker
	 * loop > task chain > future. */
	static const struct trace_function fns[] = {
		{ .context = CONTEXT_TASK, .name = "RawTask::poll" },
		{ .context = CONTEXT_TASK, .name = "Harness::poll" },
		{ .context = CONTEXT_USER, .name = "BlockingTask::poll" },
		{ .context = CONTEXT_COMPILER, .name = "work::{{closure}}" },
	};
	struct collected c = { 0 };
	struct poll_builder *b = poll_builder__new(fns, 4, collect, &c);
	struct trace_event events[] = {
		event(TRACE_EVENT_ENTRY, 0, 100, 0x9000, 1),
		event(TRACE_EVENT_ENTRY, 1, 101, 0x8f00, 1),
		event(TRACE_EVENT_ENTRY, 2, 102, 0x8e00, 2),
		event(TRACE_EVENT_ENTRY, 0, 110, 0x8000, 3),
		event(TRACE_EVENT_ENTRY, 1, 111, 0x7f00, 3),
		event(TRACE_EVENT_ENTRY, 3, 112, 0x7e00, 4),
		event(TRACE_EVENT_EXIT, 3, 120, 0x7e00, 0),
		event(TRACE_EVENT_EXIT, 1, 121, 0x7f00, 0),
		event(TRACE_EVENT_EXIT, 0, 122, 0x8000, 0),
		event(TRACE_EVENT_EXIT, 2, 200, 0x8e00, 0),
		event(TRACE_EVENT_EXIT, 1, 201, 0x8f00, 0),
		event(TRACE_EVENT_EXIT, 0, 202, 0x9000, 0),
	};

	feed(b, events, 12);
	CHECK(c.count == 6);
	/* the inner task chain and its future run no other task */
	CHECK(!c.polls[0].runs_tasks && !c.polls[1].runs_tasks && !c.polls[2].runs_tasks);
	CHECK(c.polls[2].func_id == 0 && c.polls[2].parent_runs_tasks);
	/* BlockingTask::poll and the chain around it are shells */
	CHECK(c.polls[3].func_id == 2 && c.polls[3].runs_tasks);
	CHECK(c.polls[4].runs_tasks && c.polls[5].runs_tasks);
	poll_builder__free(b);
}
