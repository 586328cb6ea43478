/* Chrome Trace Event JSON (chrome://tracing, Perfetto UI, speedscope):
 * one complete ("X") event per poll on its thread, nested by time. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "trace/polls.h"
#include "util/json.h"

/* Trace-viewer's reserved color names. A function's color is picked from
 * these by a hash of its name, so it is the same in every trace; unwound
 * polls are "terrible" (red) whatever the function. */
static const char *const function_colors[] = {
	"thread_state_running", "thread_state_runnable", "thread_state_iowait",
	"thread_state_sleeping", "thread_state_unknown", "background_memory_dump",
	"light_memory_dump", "detailed_memory_dump", "vsync_highlight_color",
	"generic_work", "good", "yellow", "olive", "rail_response", "rail_animation",
	"rail_idle", "rail_load", "startup", "heap_dump_stack_frame",
	"heap_dump_object_type", "cq_build_running", "cq_build_passed",
	"cq_build_attempt_runnig", "cq_build_attempt_passed",
};

#define COLOR_UNWOUND "terrible"
#define COLOR_UNFINISHED "grey"

struct chrome_writer {
	const struct trace_file *trace;
	FILE *out;
	const char **colors; /* per function id */
	uint64_t origin_ns;
	uint64_t polls;
};

static uint64_t fnv1a(const char *s)
{
	uint64_t hash = 1469598103934665603ULL;

	for (; *s; s++)
		hash = (hash ^ (unsigned char)*s) * 1099511628211ULL;
	return hash;
}

static void write_us(FILE *out, uint64_t ns)
{
	fprintf(out, "%" PRIu64 ".%03" PRIu64, ns / 1000, ns % 1000);
}

static const char *poll_color(const struct chrome_writer *cw, const struct poll *p)
{
	if (p->end_kind == POLL_END_UNWOUND)
		return COLOR_UNWOUND;
	if (p->end_kind == POLL_END_UNFINISHED)
		return COLOR_UNFINISHED;
	return cw->colors[p->func_id];
}

static const char *end_name(uint8_t end_kind)
{
	return end_kind == POLL_END_UNWOUND ? "unwound" : end_kind == POLL_END_UNFINISHED ? "unfinished" : "returned";
}

static void write_poll(const struct poll *p, void *ctx)
{
	struct chrome_writer *cw = ctx;
	const struct trace_function *fn = &cw->trace->functions[p->func_id];
	FILE *out = cw->out;

	fputs(",\n{\"ph\":\"X\",\"name\":", out);
	json_write_string(out, fn->name);
	fprintf(out, ",\"cat\":\"%s\",\"pid\":%u,\"tid\":%u,\"ts\":", context_class__name(fn->context), p->pid, p->tid);
	write_us(out, p->start > cw->origin_ns ? p->start - cw->origin_ns : 0);
	fputs(",\"dur\":", out);
	write_us(out, p->end - p->start);
	fprintf(out, ",\"cname\":\"%s\",\"args\":{\"future\":\"0x%" PRIx64 "\",\"result\":\"%s\",\"end\":\"%s\",\"depth\":%u,\"cpu\":%u",
		poll_color(cw, p), p->future, poll_result__name(p->result), end_name(p->end_kind), p->depth, p->cpu);
	if (fn->source_file) {
		char location[4096];

		snprintf(location, sizeof(location), "%s:%u", fn->source_file, fn->source_line);
		fputs(",\"location\":", out);
		json_write_string(out, location);
	}
	fputs("}}", out);
	cw->polls++;
}

static void write_metadata(const struct chrome_writer *cw)
{
	const struct trace_file *t = cw->trace;
	const char *process = t->meta.target_path ? strrchr(t->meta.target_path, '/') : NULL;
	FILE *out = cw->out;

	fprintf(out, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%u,\"tid\":0,\"args\":{\"name\":", t->meta.pid);
	json_write_string(out, process ? process + 1 : t->meta.target_path ? t->meta.target_path : "target");
	fputs("}}", out);
	for (size_t i = 0; i < t->thread_count; i++) {
		char label[48];

		snprintf(label, sizeof(label), "%s/%u", t->threads[i].name[0] ? t->threads[i].name : "thread",
			 t->threads[i].tid);
		fprintf(out, ",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%u,\"tid\":%u,\"args\":{\"name\":",
			t->meta.pid, t->threads[i].tid);
		json_write_string(out, label);
		fputs("}}", out);
	}
}

static uint64_t first_event_ts(const struct trace_file *t)
{
	for (size_t i = 0; i < t->chunk_count; i++)
		if (t->chunks[i].count)
			return ((const struct trace_event *)(const void *)(t->map + t->chunks[i].offset))->ts;
	return 0;
}

static int chrome_write(const struct trace_file *t, FILE *out)
{
	struct chrome_writer cw = { .trace = t, .out = out };
	uint64_t first = first_event_ts(t);
	int err;

	cw.colors = calloc(t->function_count + 1, sizeof(*cw.colors));
	if (!cw.colors)
		return -ENOMEM;
	for (size_t i = 0; i < t->function_count; i++)
		cw.colors[i] = function_colors[fnv1a(t->functions[i].name) %
					       (sizeof(function_colors) / sizeof(function_colors[0]))];
	cw.origin_ns = t->meta.start_clock_ns && t->meta.start_clock_ns <= first ? t->meta.start_clock_ns : first;
	fputs("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"asynctrace\",\"target\":", out);
	json_write_string(out, t->meta.target_path);
	fprintf(out, ",\"events\":%" PRIu64 ",\"lost\":%" PRIu64 "},\n\"traceEvents\":[\n", t->trailer.events,
		t->trailer.lost);
	write_metadata(&cw);
	err = trace_file__replay_polls(t, write_poll, &cw, NULL);
	fputs("\n]}\n", out);
	free(cw.colors);
	if (!err && ferror(out))
		err = -EIO;
	return err;
}

const struct export_format chrome_export_format = {
	.name = "chrome",
	.description = "Chrome Trace Event JSON for chrome://tracing and ui.perfetto.dev",
	.write = chrome_write,
};
