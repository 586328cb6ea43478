/* The trace file reader and what reads a trace after it: report's
 * analyses (summary, task model folded and kept, on-CPU profile), tree's
 * forest, and every export format written to /dev/null. Traces come from
 * anyone (a colleague's recording, an import), so none of this may trust
 * the file past what trace_file__open checked. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "export/export.h"
#include "fuzz_common.h"
#include "trace/forest.h"
#include "trace/format.h"
#include "trace/profile.h"
#include "trace/reader.h"
#include "trace/summary.h"
#include "trace/tasks.h"

/* The file header's byte that no reader checks: set, the checksums are
 * left as the input has them (the skipped-chunk paths). */
#define KEEP_CHECKSUMS_AT offsetof(struct trace_file_header, reserved0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void set_crc(uint8_t *crc_at, const uint8_t *bytes, size_t len)
{
	uint32_t crc = (uint32_t)crc32(0L, bytes, (uInt)len);

	memcpy(crc_at, &crc, sizeof(crc));
}

/* A mutation almost never keeps a chunk's crc32 right, and a chunk whose
 * crc fails is skipped unread: recomputed here, the decoders behind the
 * checks see the mutated bytes. Walks the chunks as the reader does. */
static void fix_checksums(uint8_t *file, size_t size)
{
	struct trace_file_header h;
	struct trace_chunk_header c;
	struct trace_stream_header sh;
	size_t at;

	if (size < sizeof(h) || file[KEEP_CHECKSUMS_AT])
		return;
	memcpy(&h, file, sizeof(h));
	for (at = h.header_size; at <= size && size - at >= sizeof(c); at += c.size) {
		uint8_t *payload = file + at + sizeof(c);

		memcpy(&c, file + at, sizeof(c));
		at += sizeof(c);
		if (c.size > size - at)
			return;
		if (c.type == TRACE_CHUNK_STREAM && c.size >= sizeof(sh)) {
			memcpy(&sh, payload, sizeof(sh));
			if (sh.encoded_bytes <= c.size - sizeof(sh))
				set_crc(payload + offsetof(struct trace_stream_header, crc32), payload + sizeof(sh),
					sh.encoded_bytes);
		} else if (c.type == TRACE_CHUNK_SAMPLES && c.size >= sizeof(struct trace_samples_header)) {
			set_crc(payload + offsetof(struct trace_samples_header, crc32),
				payload + sizeof(struct trace_samples_header),
				c.size - sizeof(struct trace_samples_header));
		}
	}
}

/* report's text path: the summary with a folding task model, one pass. */
static void report_folded(const struct trace_file *trace)
{
	struct trace_summary summary = { 0 };
	struct task_model model = { 0 };
	struct trace_consumer consumers[2];
	struct poll_builder_stats stats;
	struct task_warnings warnings;

	if (trace_summary__init(&summary, trace, 10, 1000000))
		return;
	if (!task_model__init(&model, trace, TASK_MODEL_FOLD)) {
		consumers[0] = trace_summary__consumer(&summary);
		consumers[1] = task_model__consumer(&model);
		if (!trace_file__pass(trace, consumers, 2, &stats) && !trace_summary__finish(&summary, &stats) &&
		    !task_model__finish(&model)) {
			trace_summary__sort(&summary, SORT_P99);
			task_model__warnings(&model, summary.long_polls, &warnings);
		}
		task_model__free(&model);
	}
	trace_summary__free(&summary);
}

/* The profile's summary, as report prints it for a profiled trace. */
static void summarize_profile(const struct profile *p)
{
	struct profile_summary s = { 0 };

	if (!profile__summarize(p, &s))
		profile_summary__free(&s);
}

/* report --json / --tasks, and tree: every task kept, samples joined. */
static void report_kept(const struct trace_file *trace)
{
	struct task_model model = { 0 };
	struct profile profile;
	struct trace_consumer consumers[2];
	struct future_summary *futures = NULL;
	struct task_forest forest = { 0 };
	bool sampled = trace->sample_hz != 0;

	if (task_model__init(&model, trace, TASK_MODEL_KEEP_HISTORY))
		return;
	if (sampled && profile__init(&profile, trace, &model)) {
		task_model__free(&model);
		return;
	}
	consumers[0] = task_model__consumer(&model);
	if (sampled)
		consumers[1] = profile__consumer(&profile);
	if (!trace_file__pass(trace, consumers, sampled ? 2 : 1, NULL) && !task_model__finish(&model)) {
		if (sampled)
			summarize_profile(&profile);
		if (!task_model__future_summaries(&model, &futures))
			free(futures);
		task_forest__build(&forest, &model, 0);
		task_forest__free(&forest);
	}
	if (sampled)
		profile__free(&profile);
	task_model__free(&model);
}

/* Each format in each of its forms; their errors are the trace's. */
static void export_all(const struct trace_file *trace, FILE *out)
{
	const struct export_format *const *formats = export_formats();

	for (size_t i = 0; formats[i]; i++) {
		const struct export_format *f = formats[i];

		f->write(trace, NULL, out);
		if (f->write_poll_time)
			f->write_poll_time(trace, NULL, out, PROFILE_BY_FUNCTION);
		if (f->write_grouped)
			f->write_grouped(trace, NULL, out, PROFILE_BY_THREAD);
		if (f->write_at_level)
			f->write_at_level(trace, NULL, out, 0); /* plain packets */
	}
	fflush(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct trace_file *trace;
	uint8_t *file = malloc(size ? size : 1);
	char why[512];
	int err;

	if (!file || (!devnull && !(devnull = fopen("/dev/null", "w"))))
		abort();
	memcpy(file, data, size);
	fix_checksums(file, size);
	err = trace_file__open(&trace, fuzz_memfd_path(file, size), why, sizeof(why));
	free(file);
	if (err)
		return 0;
	report_folded(trace);
	report_kept(trace);
	export_all(trace, devnull);
	trace_file__close(trace);
	return 0;
}
