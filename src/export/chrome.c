/* Chrome Trace Event JSON (chrome://tracing, Perfetto UI, speedscope):
 * one complete ("X") event per poll on its thread, nested by time.
 *
 * Written for traces of tens of millions of events: each function's
 * constant text is escaped once, numbers are formatted without printf and
 * the slices go through large buffers that a second thread writes
 * (util/outbuf.h). A slice carries only what differs between polls; what
 * is the same for every poll of a function (its source location) is said
 * once, in otherData.locations, and default values are left out
 * (docs/cli.md). */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "export/filter.h"
#include "trace/polls.h"
#include "trace/summary.h"
#include "trace/tasks.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/outbuf.h"
#include "util/put.h"
#include "util/u64map.h"

/* Trace-viewer's reserved color names, only for polls that are not like
 * the others: other slices are colored by the viewers from their name,
 * the same in every trace, so naming a color for them is bytes for
 * nothing. */
#define COLOR_UNWOUND "terrible"
#define COLOR_UNFINISHED "grey"
#define COLOR_LONG "bad"

/* The tracks a slice can go on: its thread's, its task's. */
enum track_kind { ON_THREAD, ON_TASK };

/* A function's constant text, escaped once: the head of its slices up to
 * the tid, for each kind of track, and its name as a JSON string's inside
 * (for the cancellation markers). */
struct function_text {
	char *head[2];  /* ,\n{"ph":"X","name":NAME,"cat":"CAT","pid":PID,"tid": */
	size_t head_len[2];
	char *name;     /* escaped, without the quotes */
	size_t name_len;
};

struct chrome_writer {
	const struct trace_file *trace;
	/* Built in the same pass, a consumer before the writer: a poll's task
	 * is known when the poll reaches the writer, a wake's answer and a
	 * cancellation are told as they happen. With --task the model is
	 * built first (ids are checked before anything is written). */
	struct task_model *model;
	const struct export_filter *filter;
	struct outbuf out;
	struct function_text *texts; /* per function id */
	uint64_t origin_ns;
	uint32_t task_pid;
};

/* The longest slice after its head: every number at its widest. */
#define SLICE_TAIL_MAX 320
/* Heads are copied in blocks of this many bytes (fixed-size copies the
 * compiler inlines, where a copy of a varying length is a call): the
 * last block reads past the head into this padding and writes past it
 * into room the next bytes overwrite. */
#define HEAD_PADDING 32

static char *put_head(char *at, const char *head, size_t len)
{
	for (size_t i = 0; i < len; i += HEAD_PADDING)
		memcpy(at + i, head + i, HEAD_PADDING);
	return at + len;
}

static uint64_t since_origin(const struct chrome_writer *cw, uint64_t ts)
{
	return ts > cw->origin_ns ? ts - cw->origin_ns : 0;
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
	return NULL;
}

/* What follows the tid: ,"ts":..,"dur":..[,"cname"],"args":{..}} */
static char *put_slice_tail(char *at, const struct chrome_writer *cw, const struct poll *p)
{
	const struct trace_function *fn = &cw->trace->functions[p->func_id];
	const char *color = poll_color(cw, p);
	uint32_t line = p->has_state ? trace_function__await_line(fn, p->state) : 0;

	at = PUT_LITERAL(at, ",\"ts\":");
	at = put_us(at, since_origin(cw, p->start));
	at = PUT_LITERAL(at, ",\"dur\":");
	at = put_us(at, p->end - p->start);
	if (color) {
		at = PUT_LITERAL(at, ",\"cname\":\"");
		at = put_bytes(at, color, strlen(color));
		*at++ = '"';
	}
	at = PUT_LITERAL(at, ",\"args\":{\"future\":\"0x");
	at = put_hex(at, p->future);
	*at++ = '"';
	if (p->result != POLL_RESULT_UNKNOWN) {
		const char *result = poll_result__name(p->result);

		at = PUT_LITERAL(at, ",\"result\":\"");
		at = put_bytes(at, result, strlen(result));
		*at++ = '"';
	}
	if (p->end_kind != POLL_END_RETURNED) {
		const char *end = poll_end__name(p->end_kind);

		at = PUT_LITERAL(at, ",\"end\":\"");
		at = put_bytes(at, end, strlen(end));
		*at++ = '"';
	}
	at = PUT_LITERAL(at, ",\"depth\":");
	at = put_u64(at, p->depth);
	at = PUT_LITERAL(at, ",\"cpu\":");
	at = put_u64(at, p->cpu);
	if (line) {
		at = PUT_LITERAL(at, ",\"parked_at_line\":");
		at = put_u64(at, line);
	}
	return PUT_LITERAL(at, "}}");
}

/* One slice, formatted straight into the output buffer (a head too long
 * for one room, a name of kilobytes, goes first on its own). */
static void put_slice(struct chrome_writer *cw, const struct poll *p, enum track_kind track, uint32_t tid)
{
	const struct function_text *text = &cw->texts[p->func_id];
	size_t head_len = text->head_len[track];
	char *at;

	if (head_len > OUTBUF_MAX_ROOM - HEAD_PADDING - 20 - SLICE_TAIL_MAX) {
		outbuf__put(&cw->out, text->head[track], head_len);
		head_len = 0;
	}
	at = outbuf__room(&cw->out, head_len + HEAD_PADDING + 20 + SLICE_TAIL_MAX);
	at = put_head(at, text->head[track], head_len);
	at = put_u64(at, tid);
	outbuf__advance(&cw->out, put_slice_tail(at, cw, p));
}

/* A future's poll once more on its task's track. */
static void write_task_slice(struct chrome_writer *cw, const struct poll *p)
{
	const struct task *task = task_model__find(cw->model, p->task, p->tid, p->start);

	if (task)
		put_slice(cw, p, ON_TASK, task->id);
}

/* Every poll on its thread; futures' polls also on their task's track. */
static void write_poll(const struct poll *p, void *ctx)
{
	struct chrome_writer *cw = ctx;

	if (!export_filter__keeps_poll(cw->filter, cw->model, p))
		return;
	put_slice(cw, p, ON_THREAD, p->tid);
	if (task_model__on_task_track(cw->model, p))
		write_task_slice(cw, p);
}

static char *put_track(char *at, uint32_t pid, uint32_t tid, uint64_t ns)
{
	at = PUT_LITERAL(at, ",\"pid\":");
	at = put_u64(at, pid);
	at = PUT_LITERAL(at, ",\"tid\":");
	at = put_u64(at, tid);
	at = PUT_LITERAL(at, ",\"ts\":");
	at = put_us(at, ns);
	return PUT_LITERAL(at, "}");
}

static char *put_flow_end(char *at, char phase, const char *name, size_t id)
{
	at = PUT_LITERAL(at, ",\n{\"ph\":\"");
	*at++ = phase;
	at = PUT_LITERAL(at, "\",\"name\":\"");
	at = put_bytes(at, name, strlen(name));
	at = PUT_LITERAL(at, "\",\"cat\":\"wake\",\"id\":");
	return put_u64(at, id);
}

/* A flow arrow from a wake (on the waking thread) to the poll it led to
 * (on the woken task's track). Its end is at the start of the task poll,
 * which is not drawn on task tracks: it binds to the next slice there (the
 * default binding), the task's future polled by that poll; an "enclosing
 * slice" binding ("bp":"e") would find none and viewers drop the arrow. */
static void write_flow(const struct wake *w, void *ctx)
{
	struct chrome_writer *cw = ctx;
	const char *name = wake__name(w);
	size_t id = w->ordinal; /* the same id in every export of the trace, filtered or not */
	char *at;

	if (!w->poll_ts || !export_filter__keeps_wake(cw->filter, w))
		return;
	at = outbuf__room(&cw->out, 400);
	at = put_flow_end(at, 's', name, id);
	at = put_track(at, cw->trace->meta.pid, w->tid, since_origin(cw, w->ts));
	at = put_flow_end(at, 'f', name, id);
	at = put_track(at, cw->task_pid, w->target, since_origin(cw, w->poll_ts));
	outbuf__advance(&cw->out, at);
}

#define CANCEL_HEAD ",\n{\"ph\":\"i\",\"s\":\"t\",\"cname\":\"" COLOR_UNWOUND "\",\"name\":\"cancelled: "

static void write_cancellation(const struct cancellation *c, void *ctx)
{
	struct chrome_writer *cw = ctx;
	const struct function_text *text = &cw->texts[c->func_id];
	char *at;

	if (!export_filter__keeps_cancellation(cw->filter, c))
		return;
	outbuf__put(&cw->out, CANCEL_HEAD, sizeof(CANCEL_HEAD) - 1);
	outbuf__put(&cw->out, text->name, text->name_len);
	at = outbuf__room(&cw->out, 200);
	at = PUT_LITERAL(at, "\",\"cat\":\"cancel\"");
	at = put_track(at, cw->task_pid, c->task, since_origin(cw, c->ts));
	outbuf__advance(&cw->out, at);
}

/* A model built before the pass (--task) kept its history: its wakes and
 * cancellations are written after the slices. */
static void write_history(struct chrome_writer *cw)
{
	for (size_t i = 0; i < cw->model->wake_count; i++)
		write_flow(&cw->model->wakes[i], cw);
	for (size_t i = 0; i < cw->model->cancellation_count; i++)
		write_cancellation(&cw->model->cancellations[i], cw);
}

/* ---- the constant parts, with stdio ------------------------------------ */

static int make_head(const struct trace_function *fn, uint32_t pid, char **head, size_t *len)
{
	FILE *out = open_memstream(head, len);
	char *padded;

	if (!out)
		return -ENOMEM;
	fputs(",\n{\"ph\":\"X\",\"name\":", out);
	json_write_string(out, fn->name);
	fprintf(out, ",\"cat\":\"%s\",\"pid\":%u,\"tid\":", context_class__name(fn->context), pid);
	if (fclose(out) != 0 || !(padded = realloc(*head, *len + HEAD_PADDING)))
		return -ENOMEM;
	memset(padded + *len, 0, HEAD_PADDING);
	*head = padded;
	return 0;
}

static int make_function_text(const struct chrome_writer *cw, const struct trace_function *fn,
			      struct function_text *text)
{
	FILE *out;
	int err = make_head(fn, cw->trace->meta.pid, &text->head[ON_THREAD], &text->head_len[ON_THREAD]);

	if (!err)
		err = make_head(fn, cw->task_pid, &text->head[ON_TASK], &text->head_len[ON_TASK]);
	if (err || !(out = open_memstream(&text->name, &text->name_len)))
		return -ENOMEM;
	json_write_string(out, fn->name);
	if (fclose(out) != 0)
		return -ENOMEM;
	/* The quotes go: "cancelled: " comes before the name inside them. */
	memmove(text->name, text->name + 1, text->name_len - 2);
	text->name_len -= 2;
	return 0;
}

static void free_function_texts(struct function_text *texts, size_t count)
{
	for (size_t i = 0; texts && i < count; i++) {
		free(texts[i].head[ON_THREAD]);
		free(texts[i].head[ON_TASK]);
		free(texts[i].name);
	}
	free(texts);
}

static int make_function_texts(struct chrome_writer *cw)
{
	const struct trace_file *t = cw->trace;
	int err = 0;

	cw->texts = calloc(t->function_count + 1, sizeof(*cw->texts));
	if (!cw->texts)
		return -ENOMEM;
	for (size_t i = 0; !err && i < t->function_count; i++)
		err = make_function_text(cw, &t->functions[i], &cw->texts[i]);
	return err;
}

/* Each poll function's source location, once for all its slices (copies of a
 * function with the same name and place once: a 64-bit hash of both
 * tells them apart well enough for a list people read). */
static int write_locations(const struct trace_file *t, FILE *out)
{
	struct u64map seen = { 0 };
	int err = 0;

	fputs(",\"locations\":[", out);
	for (size_t i = 0; i < t->function_count && !err; i++) {
		const struct trace_function *fn = &t->functions[i];
		char location[4096];
		uint64_t key;

		if (!fn->source_file || fn->role != ROLE_POLL)
			continue;
		snprintf(location, sizeof(location), "%s:%u", fn->source_file, fn->source_line);
		key = (hash_string(fn->name) * 31 + hash_string(location)) | 1;
		if (u64map_get(&seen, key))
			continue;
		err = u64map_put(&seen, key, (void *)1);
		fputs(seen.count == 1 ? "\n[" : ",\n[", out);
		json_write_string(out, fn->name);
		fputc(',', out);
		json_write_string(out, location);
		fputc(']', out);
	}
	fputs("]", out);
	u64map_free(&seen);
	return err;
}

/* Task tracks' names: known once the model is built, when the thread
 * slices are out already (through a memory stream: a few lines per task). */
static int write_task_names(struct chrome_writer *cw)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	if (!out)
		return -ENOMEM;
	fprintf(out, ",\n{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%u,\"tid\":0,\"args\":{\"name\":\"tasks\"}}",
		cw->task_pid);
	for (size_t i = 0; i < cw->model->task_count; i++) {
		const struct task *t = &cw->model->tasks[i];
		char label[4200];

		if (!export_filter__keeps_task_track(cw->filter, t))
			continue;
		task_model__label(cw->model, t, label, sizeof(label));
		fprintf(out, ",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%u,\"tid\":%u,\"args\":{\"name\":",
			cw->task_pid, t->id);
		json_write_string(out, label);
		fprintf(out, "}},\n{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":%u,\"tid\":%u,\"args\":{\"sort_index\":%u}}",
			cw->task_pid, t->id, t->id);
	}
	if (fclose(out) != 0) {
		free(text);
		return -ENOMEM;
	}
	outbuf__put(&cw->out, text, len);
	free(text);
	return 0;
}

static void write_thread_names(const struct chrome_writer *cw, FILE *out)
{
	const struct trace_file *t = cw->trace;
	const char *process = t->meta.target_path ? strrchr(t->meta.target_path, '/') : NULL;

	fprintf(out, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%u,\"tid\":0,\"args\":{\"name\":", t->meta.pid);
	json_write_string(out, process ? process + 1 : t->meta.target_path ? t->meta.target_path : "target");
	fputs("}}", out);
	for (size_t i = 0; i < t->thread_count; i++) {
		char label[48];

		if (!export_filter__keeps_thread(cw->filter, t->threads[i].tid))
			continue;
		snprintf(label, sizeof(label), "%s/%u", t->threads[i].name[0] ? t->threads[i].name : "thread",
			 t->threads[i].tid);
		fprintf(out, ",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%u,\"tid\":%u,\"args\":{\"name\":",
			t->meta.pid, t->threads[i].tid);
		json_write_string(out, label);
		fputs("}}", out);
	}
}

/* Everything before the slices, with stdio (a few hundred lines). */
static int write_head(const struct chrome_writer *cw, FILE *out)
{
	const struct trace_file *t = cw->trace;

	fputs("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"asynctrace\",\"target\":", out);
	json_write_string(out, t->meta.target_path);
	fprintf(out, ",\"events\":%" PRIu64 ",\"lost\":%" PRIu64, t->trailer.events, t->trailer.lost);
	if (write_locations(t, out))
		return -ENOMEM;
	fputs("},\n\"traceEvents\":[\n", out);
	write_thread_names(cw, out);
	errno = 0;
	if (fflush(out) != 0 || ferror(out))
		return errno ? -errno : -EIO;
	return 0;
}

/* The slices, flows and markers, through our buffers on out's descriptor
 * (stdio has nothing buffered any more: write_head flushed it), in one
 * pass with the model; the task tracks' names once it is finished. */
static int write_events(struct chrome_writer *cw, FILE *out, bool model_built)
{
	struct trace_consumer consumers[2] = {
		task_model__consumer(cw->model),
		{ .poll = write_poll, .ctx = cw },
	};
	int err = outbuf__open(&cw->out, out);
	int close_err;

	if (err)
		return err;
	if (model_built) {
		err = trace_file__pass(cw->trace, &consumers[1], 1, NULL);
		if (!err)
			write_history(cw);
	} else {
		cw->model->on_wake_answered = write_flow;
		cw->model->on_cancel = write_cancellation;
		cw->model->callback_ctx = cw;
		err = trace_file__pass(cw->trace, consumers, 2, &cw->model->stats);
		if (!err)
			err = task_model__finish(cw->model);
	}
	if (!err)
		err = write_task_names(cw);
	outbuf__put(&cw->out, "\n]}\n", 4);
	close_err = outbuf__close(&cw->out);
	return err ? err : close_err;
}

static int chrome_write(const struct trace_file *t, const struct export_filter *filter, FILE *out)
{
	struct chrome_writer cw = { .trace = t, .filter = filter, .task_pid = t->meta.pid + TASK_PID_OFFSET };
	bool by_task = filter && filter->task_count;
	uint64_t first = t->first_ts;
	struct task_model model;
	int err;

	/* Task ids are checked before anything is written: the model first,
	 * with its wakes and cancellations kept for after the slices. */
	err = by_task ? task_model__build(&model, t, TASK_MODEL_KEEP_HISTORY) : task_model__init(&model, t, 0);
	if (err)
		return err;
	cw.model = &model;
	if (by_task && export_filter__missing_task(filter, &model))
		err = -ESRCH;
	if (!err)
		err = make_function_texts(&cw);
	cw.origin_ns = t->meta.start_clock_ns && t->meta.start_clock_ns <= first ? t->meta.start_clock_ns : first;
	if (!err)
		err = write_head(&cw, out);
	if (!err)
		err = write_events(&cw, out, by_task);
	task_model__free(&model);
	free_function_texts(cw.texts, t->function_count);
	return err;
}

const struct export_format chrome_export_format = {
	.name = "chrome",
	.description = "Chrome Trace Event JSON for chrome://tracing and ui.perfetto.dev",
	.write = chrome_write,
	/* tokio_ct (docs/performance.md): 168 with the default probes, 220
	 * with --polls-only (every event a poll's): the larger, so that the
	 * warning comes before a file too big. Chrome's viewer and
	 * ui.perfetto.dev's JSON importer give up near 256 MB. */
	.bytes_per_event = 220,
	.viewer_limit_bytes = 256ULL << 20,
};
