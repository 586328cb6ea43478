/* Chrome Trace Event JSON (chrome://tracing, Perfetto UI, speedscope):
 * one complete ("X") event per poll on its thread, nested by time. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "trace/polls.h"
#include "trace/summary.h"
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



/* A function's constant parts of a slice, escaped once: every poll of it
 * copies them instead of formatting the name and location again (stdio
 * formatting was half the export's time). */
struct slice_text {
	char *head;  /* ,\n{"ph":"X","name":NAME,"cat":"CAT","pid": */
	size_t head_len;
	char *tail;  /* ,"location":"FILE:LINE"}} or }} */
	size_t tail_len;
};

struct chrome_writer {
	const struct trace_file *trace;
	const struct task_model *model;
	FILE *out;
	const char **colors; /* per function id */
	struct slice_text *texts; /* per function id */
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
	if (!p->runs_tasks && p->end - p->start > LONG_POLL_NS_DEFAULT &&
	    cw->trace->functions[p->func_id].context != CONTEXT_TASK)
		return COLOR_LONG;
	return cw->colors[p->func_id];
}

static uint64_t since_origin(const struct chrome_writer *cw, uint64_t ts)
{
	return ts > cw->origin_ns ? ts - cw->origin_ns : 0;
}

static char *put_str(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return p + n;
}

static char *put_u64(char *p, uint64_t v)
{
	char digits[20];
	size_t n = 0;

	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = digits[--n];
	return p;
}

/* Microseconds with three decimals, as write_us. */
static char *put_us(char *p, uint64_t ns)
{
	uint64_t frac = ns % 1000;

	p = put_u64(p, ns / 1000);
	*p++ = '.';
	*p++ = (char)('0' + frac / 100);
	*p++ = (char)('0' + frac / 10 % 10);
	*p++ = (char)('0' + frac % 10);
	return p;
}

static char *put_hex(char *p, uint64_t v)
{
	char digits[16];
	size_t n = 0;

	do {
		digits[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	while (n)
		*p++ = digits[--n];
	return p;
}

/* The same bytes write_slice wrote with stdio before the numbers, and after. */
static int make_slice_text(const struct trace_function *fn, struct slice_text *st)
{
	FILE *head = open_memstream(&st->head, &st->head_len), *tail;

	if (!head)
		return -ENOMEM;
	fputs(",\n{\"ph\":\"X\",\"name\":", head);
	json_write_string(head, fn->name);
	fprintf(head, ",\"cat\":\"%s\",\"pid\":", context_class__name(fn->context));
	if (fclose(head) != 0)
		return -ENOMEM;
	tail = open_memstream(&st->tail, &st->tail_len);
	if (!tail)
		return -ENOMEM;
	if (fn->source_file) {
		char location[4096];

		snprintf(location, sizeof(location), "%s:%u", fn->source_file, fn->source_line);
		fputs(",\"location\":", tail);
		json_write_string(tail, location);
	}
	fputs("}}", tail);
	return fclose(tail) == 0 ? 0 : -ENOMEM;
}

static void free_slice_texts(struct slice_text *texts, size_t count)
{
	for (size_t i = 0; texts && i < count; i++) {
		free(texts[i].head);
		free(texts[i].tail);
	}
	free(texts);
}

static void write_slice(struct chrome_writer *cw, const struct poll *p, uint32_t pid, uint32_t tid)
{
	const struct trace_function *fn = &cw->trace->functions[p->func_id];
	const struct slice_text *st = &cw->texts[p->func_id];
	char buf[512], *at = buf;
	uint32_t line = p->has_state ? trace_function__await_line(fn, p->state) : 0;

	fwrite(st->head, 1, st->head_len, cw->out);
	at = put_u64(at, pid);
	at = put_str(at, ",\"tid\":");
	at = put_u64(at, tid);
	at = put_str(at, ",\"ts\":");
	at = put_us(at, since_origin(cw, p->start));
	at = put_str(at, ",\"dur\":");
	at = put_us(at, p->end - p->start);
	at = put_str(at, ",\"cname\":\"");
	at = put_str(at, poll_color(cw, p));
	at = put_str(at, "\",\"args\":{\"future\":\"0x");
	at = put_hex(at, p->future);
	at = put_str(at, "\",\"result\":\"");
	at = put_str(at, poll_result__name(p->result));
	at = put_str(at, "\",\"end\":\"");
	at = put_str(at, poll_end__name(p->end_kind));
	at = put_str(at, "\",\"depth\":");
	at = put_u64(at, p->depth);
	at = put_str(at, ",\"cpu\":");
	at = put_u64(at, p->cpu);
	if (line) {
		at = put_str(at, ",\"parked_at_line\":");
		at = put_u64(at, line);
	}
	fwrite(buf, 1, (size_t)(at - buf), cw->out);
	fwrite(st->tail, 1, st->tail_len, cw->out);
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
			wake__name(w), i + 1, cw->trace->meta.pid, w->tid);
		write_us(cw->out, since_origin(cw, w->ts));
		fprintf(cw->out, "},\n{\"ph\":\"f\",\"name\":\"%s\",\"cat\":\"wake\",\"id\":%zu,\"pid\":%u,\"tid\":%u,\"ts\":",
			wake__name(w), i + 1, cw->task_pid, w->target);
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

	err = task_model__build(&model, t, TASK_MODEL_KEEP_HISTORY);
	if (err)
		return err;
	cw.model = &model;
	cw.colors = calloc(t->function_count + 1, sizeof(*cw.colors));
	if (!cw.colors) {
		task_model__free(&model);
		return -ENOMEM;
	}
	cw.texts = calloc(t->function_count + 1, sizeof(*cw.texts));
	for (size_t i = 0; cw.texts && !err && i < t->function_count; i++) {
		cw.colors[i] = function_colors[hash_string(t->functions[i].name) %
					       (sizeof(function_colors) / sizeof(function_colors[0]))];
		err = make_slice_text(&t->functions[i], &cw.texts[i]);
	}
	if (!cw.texts || err) {
		free_slice_texts(cw.texts, t->function_count);
		free(cw.colors);
		task_model__free(&model);
		return -ENOMEM;
	}
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
	free_slice_texts(cw.texts, t->function_count);
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
	/* 250 on tokio_ct's 3.75 M events (docs/performance.md); Chrome's
	 * viewer and ui.perfetto.dev's JSON importer give up near 256 MB. */
	.bytes_per_event = 250,
	.viewer_limit_bytes = 256ULL << 20,
};
