/* Writes the fuzz_trace seed that neither gen-trace nor make-fixtures
 * makes: a trace with on-CPU samples, their frames, spawn sites and a load
 * bias (what `asynctrace profile` records), with the real writer:
 * `seed-profiled FILE`. A task polled once on thread 7; outer awaits
 * inner; five samples, one in a native callee. */
#include <stdio.h>

#include "trace/writer.h"

enum { RAW_POLL, OUTER, INNER, FUNCTION_COUNT };

static const struct trace_function functions[FUNCTION_COUNT] = {
	[RAW_POLL] = { .context = CONTEXT_TASK, .name = "tokio::runtime::task::raw::RawTask::poll",
		       .addr = 0x800, .size = 0x80 },
	[OUTER] = { .context = CONTEXT_COMPILER, .name = "demo::outer::{{closure}}", .addr = 0x1000, .size = 0x100,
		    .result = { RESULT_IN_REGS, 1, 0, 1 } },
	[INNER] = { .context = CONTEXT_COMPILER, .name = "demo::inner::{{closure}}", .addr = 0x2000, .size = 0x100,
		    .result = { RESULT_IN_REGS, 1, 0, 1 } },
};

#define EVENT(k, f, t, s, a) { .ts = t, .sp = s, .arg0 = a, .pid = 1, .tid = 7, .func_id = f, .kind = TRACE_EVENT_##k }
static const struct trace_event events[] = {
	EVENT(ENTRY, RAW_POLL, 1000, 0x9000, 0x7a5c), EVENT(ENTRY, OUTER, 1100, 0x8f00, 0xf1),
	EVENT(ENTRY, INNER, 1200, 0x8e00, 0xf2),     EVENT(EXIT, INNER, 1500, 0x8e00, 1),
	EVENT(EXIT, OUTER, 1900, 0x8f00, 1),         EVENT(EXIT, RAW_POLL, 2000, 0x9000, 0),
};

static const uint64_t frames[] = { 0x2010, 0x1020, 0x5000, 0x2020, 0x1030 };
static const struct trace_sample samples[] = {
	{ .ts = 1300, .tid = 7, .kind = TRACE_SAMPLE_ON_CPU, .frame_count = 2, .first_frame = 0 },
	{ .ts = 1300, .tid = 7, .kind = TRACE_SAMPLE_ON_CPU, .frame_count = 3, .first_frame = 2 },
	{ .ts = 1700, .tid = 7, .kind = TRACE_SAMPLE_ON_CPU },
	{ .ts = 2500, .tid = 7, .kind = TRACE_SAMPLE_ON_CPU },
	{ .ts = 1300, .tid = 8, .kind = TRACE_SAMPLE_ON_CPU },
};
static const struct trace_site sites[] = {
	{ .addr = 0x5000, .function = "core::hint::black_box", .file = "/rust/hint.rs", .line = 3 },
	{ .addr = 0x2010, .function = "demo::inner::{{closure}}", .file = "src/main.rs", .line = 9 },
};
static const struct trace_thread threads[] = { { .tid = 7, .name = "worker-1" }, { .tid = 8, .name = "main" } };

int main(int argc, char **argv)
{
	struct trace_meta meta = { .clock = 1, .pid = 1, .target_path = "/bin/seed", .capture = "inproc",
				   .command = "seed" };
	struct trace_trailer trailer = { .end_reason = TRACE_END_TARGET_EXITED, .exit_status = 0 };
	struct trace_writer *w;
	int err;

	if (argc != 2 || (err = trace_writer__open(&w, argv[1]))) {
		fprintf(stderr, "usage: seed-profiled FILE\n");
		return 2;
	}
	err = trace_writer__write_meta(w, &meta);
	err = err ? err : trace_writer__write_functions(w, functions, FUNCTION_COUNT);
	for (size_t i = 0; !err && i < sizeof(events) / sizeof(events[0]); i++)
		err = trace_writer__add_event(w, &events[i]);
	err = err ? err : trace_writer__write_samples(w, samples, 3, frames, 999, 0);
	err = err ? err : trace_writer__write_samples(w, samples + 3, 2, frames, 999, 1);
	err = err ? err : trace_writer__write_frames(w, sites, 2);
	err = err ? err : trace_writer__write_sites(w, sites, 1);
	err = err ? err : trace_writer__write_mapping(w, 0x555500000000ULL);
	err = err ? err : trace_writer__write_threads(w, threads, 2);
	err = err ? err : trace_writer__finish(w, &trailer);
	trace_writer__free(w);
	if (err)
		fprintf(stderr, "seed-profiled: %s: error %d\n", argv[1], err);
	return err ? 1 : 0;
}
