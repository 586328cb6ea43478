/* Chrome Trace Event JSON (chrome://tracing, Perfetto UI, speedscope):
 * one complete ("X") event per poll on its thread, nested by time. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "trace/polls.h"
#include "trace/tasks.h"
#include "util/json.h"
#include "util/hash.h"

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
#define COLOR_LONG "bad"
#define LONG_POLL_NS 10000000ULL /* as `report --long-poll`'s default */



struct chrome_writer {
	const struct trace_file *trace;
	const struct task_model *model;
	FILE *out;
	const char **colors; /* per function id */
	uint64_t origin_ns;
	uint64_t polls;
	uint32_t task_pid;
};

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
	if (!p->runs_tasks && p->end - p->start > LONG_POLL_NS &&
	    cw->trace->functions[p->func_id].context != CONTEXT_TASK)
		return COLOR_LONG;
	return cw->colors[p->func_id];
}

static uint64_t since_origin(const struct chrome_writer *cw, uint64_t ts)
{
	return ts > cw->origin_ns ? ts - cw->origin_ns : 0;
}

static const char *end_name(uint8_t end_kind)
{
	return end_kind == POLL_END_UNWOUND ? "unwound" : end_kind == POLL_END_UNFINISHED ? "unfinished" : "returned";
}

static void write_slice(struct chrome_writer *cw, const struct poll *p, uint32_t pid, uint32_t tid)
{
	const struct trace_function *fn = &cw->trace->functions[p->func_id];
	FILE *out = cw->out;

	fputs(",\n{\"ph\":\"X\",\"name\":", out);
	json_write_string(out, fn->name);
	fprintf(out, ",\"cat\":\"%s\",\"pid\":%u,\"tid\":%u,\"ts\":", context_class__name(fn->context), pid, tid);
	write_us(out, since_origin(cw, p->start));
	fputs(",\"dur\":", out);
	write_us(out, p->end - p->start);
	fprintf(out, ",\"cname\":\"%s\",\"args\":{\"future\":\"0x%" PRIx64 "\",\"result\":\"%s\",\"end\":\"%s\",\"depth\":%u,\"cpu\":%u",
		poll_color(cw, p), p->future, poll_result__name(p->result), end_name(p->end_kind), p->depth, p->cpu);
	if (p->has_state && trace_function__await_line(fn, p->state))
		fprintf(out, ",\"parked_at_line\":%u", trace_function__await_line(fn, p->state));
	if (fn->source_file) {
		char location[4096];

		snprintf(location, sizeof(location), "%s:%u", fn->source_file, fn->source_line);
		fputs(",\"location\":", out);
		json_write_string(out, location);
	}
	fputs("}}", out);
}

/* Every poll on its thread; futures polled for a task once more on the
 * task's own track. */
static void write_poll(const struct poll *p, void *ctx)
{
	struct chrome_writer *cw = ctx;
	const struct task *task;

	write_slice(cw, p, p->pid, p->tid);
	cw->polls++;
	if (!task_model__on_task_track(cw->model, p))
		return;
	task = task_model__find(cw->model, p->task, p->tid, p->start);
	if (task)
		write_slice(cw, p, cw->task_pid, task->id);
}

/* A flow arrow from each wake (on the waking thread) to the poll it led to
 * (on the woken task's track). Its end is at the start of the task poll,
 * which is not drawn on task tracks: it binds to the next slice there (the
 * default binding), the task's future polled by that poll; an "enclosing
 * slice" binding ("bp":"e") would find none and viewers drop the arrow. */
static void write_flows(const struct chrome_writer *cw)
{
	for (size_t i = 0; i < cw->model->wake_count; i++) {
		const struct wake *w = &cw->model->wakes[i];

		if (!w->poll_ts)
			continue;
		fprintf(cw->out, ",\n{\"ph\":\"s\",\"name\":\"%s\",\"cat\":\"wake\",\"id\":%zu,\"pid\":%u,\"tid\":%u,\"ts\":",
			w->self ? "self-wake" : w->by_ref ? "wake_by_ref" : "wake", i + 1, cw->trace->meta.pid, w->tid);
		write_us(cw->out, since_origin(cw, w->ts));
		fprintf(cw->out, "},\n{\"ph\":\"f\",\"name\":\"%s\",\"cat\":\"wake\",\"id\":%zu,\"pid\":%u,\"tid\":%u,\"ts\":",
			w->self ? "self-wake" : w->by_ref ? "wake_by_ref" : "wake", i + 1, cw->task_pid, w->target);
		write_us(cw->out, since_origin(cw, w->poll_ts));
		fputs("}", cw->out);
	}
}

static void write_cancellations(const struct chrome_writer *cw)
{
	for (size_t i = 0; i < cw->model->cancellation_count; i++) {
		const struct cancellation *c = &cw->model->cancellations[i];
		char name[4200];

		snprintf(name, sizeof(name), "cancelled: %s", cw->trace->functions[c->func_id].name);
		fputs(",\n{\"ph\":\"i\",\"s\":\"t\",\"cname\":\"" COLOR_UNWOUND "\",\"name\":", cw->out);
		json_write_string(cw->out, name);
		fprintf(cw->out, ",\"cat\":\"cancel\",\"pid\":%u,\"tid\":%u,\"ts\":", cw->task_pid, c->task);
		write_us(cw->out, since_origin(cw, c->ts));
		fputs("}", cw->out);
	}
}

static void write_task_names(const struct chrome_writer *cw)
{
	FILE *out = cw->out;

	fprintf(out, ",\n{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%u,\"tid\":0,\"args\":{\"name\":\"tasks\"}}",
		cw->task_pid);
	for (size_t i = 0; i < cw->model->task_count; i++) {
		const struct task *t = &cw->model->tasks[i];
		char label[4200];

		task_model__label(cw->model, t, label, sizeof(label));
		fprintf(out, ",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%u,\"tid\":%u,\"args\":{\"name\":",
			cw->task_pid, t->id);
		json_write_string(out, label);
		fprintf(out, "}},\n{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":%u,\"tid\":%u,\"args\":{\"sort_index\":%u}}",
			cw->task_pid, t->id, t->id);
	}
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

static int chrome_write(const struct trace_file *t, FILE *out)
{
	struct chrome_writer cw = { .trace = t, .out = out, .task_pid = t->meta.pid + TASK_PID_OFFSET };
	uint64_t first = t->first_ts;
	struct task_model model;
	int err;

	err = task_model__build(&model, t);
	if (err)
		return err;
	cw.model = &model;
	cw.colors = calloc(t->function_count + 1, sizeof(*cw.colors));
	if (!cw.colors) {
		task_model__free(&model);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->function_count; i++)
		cw.colors[i] = function_colors[hash_string(t->functions[i].name) %
					       (sizeof(function_colors) / sizeof(function_colors[0]))];
	cw.origin_ns = t->meta.start_clock_ns && t->meta.start_clock_ns <= first ? t->meta.start_clock_ns : first;
	fputs("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"asynctrace\",\"target\":", out);
	json_write_string(out, t->meta.target_path);
	fprintf(out, ",\"events\":%" PRIu64 ",\"lost\":%" PRIu64 "},\n\"traceEvents\":[\n", t->trailer.events,
		t->trailer.lost);
	write_metadata(&cw);
	write_task_names(&cw);
	err = trace_file__replay_polls(t, write_poll, &cw, NULL);
	write_flows(&cw);
	write_cancellations(&cw);
	fputs("\n]}\n", out);
	free(cw.colors);
	task_model__free(&model);
	if (!err && ferror(out))
		err = -EIO;
	return err;
}

const struct export_format chrome_export_format = {
	.name = "chrome",
	.description = "Chrome Trace Event JSON for chrome://tracing and ui.perfetto.dev",
	.write = chrome_write,
};
