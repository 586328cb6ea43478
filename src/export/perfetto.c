/* Perfetto's native protobuf trace (trace_processor, ui.perfetto.dev): the
 * same content as the Chrome JSON export — thread tracks with every poll,
 * a track per task with its futures' polls, wake flows, cancellation
 * markers — as TrackEvent slices on tracks named by TrackDescriptors.
 *
 * Slices are BEGIN/END pairs, so a track's events must nest: the replay
 * hands polls over at their end (inner first), hence every poll is held,
 * sorted per track and turned into events with a stack. Holding the whole
 * trace is fine for the traces we see; streaming it is future work. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "export/filter.h"
#include "export/perfetto_trace.pb-c.h"
#include "trace/polls.h"
#include "trace/tasks.h"
#include "util/u64map.h"
#include "util/array.h"

/* One writer, one packet sequence: trace_processor keeps per-sequence
 * order for events at equal timestamps, which our nesting relies on. */
#define SEQUENCE_ID 1

/* Track uuids, global to the trace: small fixed ones for the two process
 * tracks, then a range per kind keyed by tid or task id. */
#define PROCESS_UUID 1ULL
#define TASKS_UUID 2ULL
#define THREAD_UUID_BASE (1ULL << 32)
#define TASK_UUID_BASE (2ULL << 32)

/* As in the Chrome export: the task tracks form a process of their own
 * next to the target's threads. */

enum pf_kind {
	PF_BEGIN,   /* a poll's slice on a thread or task track */
	PF_END,
	PF_WAKE,    /* on the waking thread: a flow starts */
	PF_WOKEN,   /* on the woken task's track: the flow ends */
	PF_CANCEL,
};

struct pf_slice {
	uint64_t start;
	uint64_t end;
	uint64_t track;
	uint32_t poll;   /* index into the writer's polls */
	uint16_t depth;
};

struct pf_event {
	uint64_t ts;
	uint64_t seq;    /* generation order: keeps each track's nesting at equal ts */
	uint64_t track;
	uint32_t ref;    /* slice, wake or cancellation index by kind */
	uint8_t kind;    /* enum pf_kind */
};

struct pf_writer {
	const struct trace_file *trace;
	const struct task_model *model;
	const struct export_filter *filter; /* NULL: everything */
	FILE *out;
	struct poll *polls;
	size_t poll_count, poll_cap;
	struct pf_slice *slices;
	size_t slice_count, slice_cap;
	struct pf_event *events;
	size_t event_count, event_cap;
	struct u64map threads; /* tid + 1 -> (void *)1: every thread a track names */
	uint8_t *buf;          /* one packed packet */
	size_t buf_cap;
	uint64_t packets;
	uint64_t first_ts;
	int err;
};

static uint64_t thread_uuid(uint32_t tid)
{
	return THREAD_UUID_BASE + tid;
}

static uint64_t task_uuid(uint32_t id)
{
	return TASK_UUID_BASE + id;
}

static int note_thread(struct pf_writer *w, uint32_t tid)
{
	return u64map_put(&w->threads, (uint64_t)tid + 1, (void *)1);
}

static int add_slice(struct pf_writer *w, const struct poll *p, uint32_t poll, uint64_t track)
{
	if (ARRAY_RESERVE(w->slices, w->slice_cap, w->slice_count + 1))
		return -ENOMEM;
	w->slices[w->slice_count++] = (struct pf_slice){ p->start, p->end, track, poll, p->depth };
	return 0;
}

static int add_event(struct pf_writer *w, uint64_t ts, uint64_t track, uint32_t ref, enum pf_kind kind)
{
	if (ARRAY_RESERVE(w->events, w->event_cap, w->event_count + 1))
		return -ENOMEM;
	w->events[w->event_count] = (struct pf_event){ ts, w->event_count, track, ref, kind };
	w->event_count++;
	return 0;
}

/* Every poll on its thread; futures polled for a task once more on the
 * task's track (as chrome.c: not the runtime's task polls, plain
 * functions or forwarding wrappers). */
static void collect_poll(const struct poll *p, void *ctx)
{
	struct pf_writer *w = ctx;
	const struct task *task;
	uint32_t index = (uint32_t)w->poll_count;

	if (w->err || !export_filter__keeps_poll(w->filter, w->model, p))
		return;
	if (w->poll_count >= UINT32_MAX ||
	    ARRAY_RESERVE(w->polls, w->poll_cap, w->poll_count + 1)) {
		w->err = -ENOMEM;
		return;
	}
	w->polls[w->poll_count++] = *p;
	w->err = note_thread(w, p->tid);
	if (!w->err)
		w->err = add_slice(w, p, index, thread_uuid(p->tid));
	if (w->err || !task_model__on_task_track(w->model, p))
		return;
	task = task_model__find(w->model, p->task, p->tid, p->start);
	if (task)
		w->err = add_slice(w, p, index, task_uuid(task->id));
}

static int cmp_slices(const void *a, const void *b)
{
	const struct pf_slice *x = a, *y = b;

	if (x->track != y->track)
		return x->track < y->track ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end) /* the outer of two slices starting together first */
		return x->end > y->end ? -1 : 1;
	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;
	return x->poll < y->poll ? -1 : x->poll > y->poll;
}

/* Whether s, starting when top ends, is top's child rather than its next
 * sibling: only a zero-length slice deeper on the stack can be. */
static bool nests_at_end(const struct pf_slice *top, const struct pf_slice *s)
{
	return s->start == top->end && s->end == top->end && s->depth > top->depth;
}

/* One track's slices (sorted) into BEGIN/END events, properly nested. */
static int track_events(struct pf_writer *w, size_t from, size_t to, uint32_t *stack)
{
	size_t depth = 0;
	int err = 0;

	for (size_t i = from; i < to && !err; i++) {
		struct pf_slice *s = &w->slices[i];

		while (depth && !err) {
			const struct pf_slice *top = &w->slices[stack[depth - 1]];

			if (top->end > s->start || nests_at_end(top, s))
				break;
			err = add_event(w, top->end, top->track, stack[--depth], PF_END);
		}
		/* A child recorded as outliving its parent (an unwound frame
		 * closed late) would break every later slice on the track:
		 * it ends with its parent here. */
		if (depth && s->end > w->slices[stack[depth - 1]].end)
			s->end = w->slices[stack[depth - 1]].end;
		if (!err)
			err = add_event(w, s->start, s->track, (uint32_t)i, PF_BEGIN);
		stack[depth++] = (uint32_t)i;
	}
	while (depth && !err) {
		uint32_t top = stack[--depth];

		err = add_event(w, w->slices[top].end, w->slices[top].track, top, PF_END);
	}
	return err;
}

static int slice_events(struct pf_writer *w)
{
	uint32_t *stack;
	size_t from = 0;
	int err = 0;

	if (!w->slice_count)
		return 0;
	if (w->slice_count >= UINT32_MAX)
		return -ENOMEM;
	qsort(w->slices, w->slice_count, sizeof(*w->slices), cmp_slices);
	stack = malloc(w->slice_count * sizeof(*stack));
	if (!stack)
		return -ENOMEM;
	for (size_t i = 1; i <= w->slice_count && !err; i++) {
		if (i < w->slice_count && w->slices[i].track == w->slices[from].track)
			continue;
		err = track_events(w, from, i, stack);
		from = i;
	}
	free(stack);
	return err;
}

static bool flows(const struct pf_writer *w, const struct wake *wk)
{
	return wk->poll_ts && wk->target >= 1 && wk->target <= w->model->task_count;
}

/* Every wake as an instant on the waking thread; one that led to a poll
 * also ends a flow on the woken task's track at that poll's start. */
static int wake_events(struct pf_writer *w)
{
	const struct task_model *m = w->model;
	int err = 0;

	for (size_t i = 0; i < m->wake_count && !err; i++) {
		const struct wake *wk = &m->wakes[i];

		if (!export_filter__keeps_wake(w->filter, wk))
			continue;
		err = note_thread(w, wk->tid);
		if (!err)
			err = add_event(w, wk->ts, thread_uuid(wk->tid), (uint32_t)i, PF_WAKE);
		if (!err && flows(w, wk))
			err = add_event(w, wk->poll_ts, task_uuid(wk->target), (uint32_t)i, PF_WOKEN);
	}
	for (size_t i = 0; i < m->cancellation_count && !err; i++) {
		const struct cancellation *c = &m->cancellations[i];

		if (c->task >= 1 && c->task <= m->task_count && export_filter__keeps_cancellation(w->filter, c))
			err = add_event(w, c->ts, task_uuid(c->task), (uint32_t)i, PF_CANCEL);
	}
	return err;
}

static int cmp_events(const void *a, const void *b)
{
	const struct pf_event *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---- writing packets ---------------------------------------------------- */

/* A Trace is `repeated TracePacket packet = 1`: each packet is written as
 * field 1, length-delimited, so the file never exists as one message. */
static int write_packet(struct pf_writer *w, Perfetto__Protos__TracePacket *packet)
{
	uint8_t head[11];
	size_t n = 0, len;

	packet->has_trusted_packet_sequence_id = 1;
	packet->trusted_packet_sequence_id = SEQUENCE_ID;
	if (!w->packets++) {
		/* Readers skip a sequence's packets until its state is known
		 * to be complete; we have no incremental state at all. */
		packet->has_sequence_flags = 1;
		packet->sequence_flags = PERFETTO__PROTOS__TRACE_PACKET__SEQUENCE_FLAGS__SEQ_INCREMENTAL_STATE_CLEARED;
	}
	len = perfetto__protos__trace_packet__get_packed_size(packet);
	if (ARRAY_RESERVE(w->buf, w->buf_cap, len))
		return -ENOMEM;
	perfetto__protos__trace_packet__pack(packet, w->buf);
	head[n++] = (1 << 3) | 2; /* field 1, wire type 2 (length-delimited) */
	for (uint64_t v = len;; v >>= 7) {
		head[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		if (v <= 0x7f)
			break;
	}
	if (fwrite(head, 1, n, w->out) != n || fwrite(w->buf, 1, len, w->out) != len)
		return -EIO;
	return 0;
}

static int write_track(struct pf_writer *w, Perfetto__Protos__TrackDescriptor *track)
{
	Perfetto__Protos__TracePacket packet = PERFETTO__PROTOS__TRACE_PACKET__INIT;

	packet.has_timestamp = 1;
	packet.timestamp = w->first_ts;
	packet.track_descriptor = track;
	return write_packet(w, &packet);
}

static int write_process_track(struct pf_writer *w, uint64_t uuid, uint32_t pid, const char *name,
			       bool explicit_order)
{
	Perfetto__Protos__TrackDescriptor track = PERFETTO__PROTOS__TRACK_DESCRIPTOR__INIT;
	Perfetto__Protos__ProcessDescriptor process = PERFETTO__PROTOS__PROCESS_DESCRIPTOR__INIT;

	track.has_uuid = 1;
	track.uuid = uuid;
	track.process = &process;
	process.has_pid = 1;
	process.pid = (int32_t)pid;
	process.process_name = (char *)name;
	if (explicit_order) {
		track.has_child_ordering = 1;
		track.child_ordering = PERFETTO__PROTOS__TRACK_DESCRIPTOR__CHILD_TRACKS_ORDERING__EXPLICIT;
	}
	return write_track(w, &track);
}

static int write_thread_track(struct pf_writer *w, uint32_t tid)
{
	Perfetto__Protos__TrackDescriptor track = PERFETTO__PROTOS__TRACK_DESCRIPTOR__INIT;
	Perfetto__Protos__ThreadDescriptor thread = PERFETTO__PROTOS__THREAD_DESCRIPTOR__INIT;
	const char *name = trace_file__thread_name(w->trace, tid);

	track.has_uuid = 1;
	track.uuid = thread_uuid(tid);
	track.has_parent_uuid = 1;
	track.parent_uuid = PROCESS_UUID;
	track.thread = &thread;
	thread.has_pid = 1;
	thread.pid = (int32_t)w->trace->meta.pid;
	thread.has_tid = 1;
	thread.tid = (int32_t)tid;
	thread.thread_name = (char *)(name && *name ? name : "thread");
	return write_track(w, &track);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* In tid order, so the same trace always gives the same file. */
static int write_thread_tracks(struct pf_writer *w)
{
	uint64_t *tids = calloc(w->threads.count + 1, sizeof(*tids));
	size_t n = 0;
	int err = 0;

	if (!tids)
		return -ENOMEM;
	for (size_t i = 0; w->threads.slots && i <= w->threads.mask; i++)
		if (w->threads.slots[i].key)
			tids[n++] = w->threads.slots[i].key - 1;
	qsort(tids, n, sizeof(*tids), cmp_u64);
	for (size_t i = 0; i < n && !err; i++)
		err = write_thread_track(w, (uint32_t)tids[i]);
	free(tids);
	return err;
}

static int write_task_track(struct pf_writer *w, const struct task *t)
{
	Perfetto__Protos__TrackDescriptor track = PERFETTO__PROTOS__TRACK_DESCRIPTOR__INIT;
	char label[4200];

	task_model__label(w->model, t, label, sizeof(label));
	track.has_uuid = 1;
	track.uuid = task_uuid(t->id);
	track.has_parent_uuid = 1;
	track.parent_uuid = TASKS_UUID;
	track.name = label;
	/* Task 10 after task 9, not after task 1. */
	track.has_sibling_order_rank = 1;
	track.sibling_order_rank = (int32_t)(t->id > INT32_MAX ? INT32_MAX : t->id);
	return write_track(w, &track);
}

static int write_tracks(struct pf_writer *w)
{
	const struct trace_file *t = w->trace;
	const char *process = t->meta.target_path ? strrchr(t->meta.target_path, '/') : NULL;
	int err;

	err = write_process_track(w, PROCESS_UUID, t->meta.pid,
				  process ? process + 1 : t->meta.target_path ? t->meta.target_path : "target", false);
	if (!err)
		err = write_thread_tracks(w);
	if (!err)
		err = write_process_track(w, TASKS_UUID, t->meta.pid + TASK_PID_OFFSET, "tasks", true);
	for (size_t i = 0; i < w->model->task_count && !err; i++)
		if (export_filter__keeps_task_track(w->filter, &w->model->tasks[i]))
			err = write_task_track(w, &w->model->tasks[i]);
	return err;
}

/* ---- track events ------------------------------------------------------- */

#define MAX_ANNOTATIONS 8

struct annotations {
	Perfetto__Protos__DebugAnnotation items[MAX_ANNOTATIONS];
	Perfetto__Protos__DebugAnnotation *ptrs[MAX_ANNOTATIONS];
	size_t n;
};

static Perfetto__Protos__DebugAnnotation *annotate(struct annotations *a, const char *name)
{
	Perfetto__Protos__DebugAnnotation *d = &a->items[a->n];

	perfetto__protos__debug_annotation__init(d);
	d->name = (char *)name;
	a->ptrs[a->n++] = d;
	return d;
}

static void annotate_uint(struct annotations *a, const char *name, uint64_t value)
{
	Perfetto__Protos__DebugAnnotation *d = annotate(a, name);

	d->has_uint_value = 1;
	d->uint_value = value;
}

static void annotate_string(struct annotations *a, const char *name, const char *value)
{
	annotate(a, name)->string_value = (char *)value;
}

/* The poll's arguments, as the Chrome export names them. */
static void annotate_poll(struct annotations *a, const struct trace_function *fn, const struct poll *p,
			  char *location, size_t location_len)
{
	Perfetto__Protos__DebugAnnotation *future = annotate(a, "future");

	future->has_pointer_value = 1;
	future->pointer_value = p->future;
	annotate_string(a, "result", poll_result__name(p->result));
	annotate_string(a, "end", poll_end__name(p->end_kind));
	annotate_uint(a, "depth", p->depth);
	annotate_uint(a, "cpu", p->cpu);
	if (p->has_state && trace_function__await_line(fn, p->state))
		annotate_uint(a, "parked_at_line", trace_function__await_line(fn, p->state));
	if (fn->source_file) {
		snprintf(location, location_len, "%s:%u", fn->source_file, fn->source_line);
		annotate_string(a, "location", location);
	}
}

static int write_event(struct pf_writer *w, const struct pf_event *e)
{
	Perfetto__Protos__TracePacket packet = PERFETTO__PROTOS__TRACE_PACKET__INIT;
	Perfetto__Protos__TrackEvent te = PERFETTO__PROTOS__TRACK_EVENT__INIT;
	struct annotations a = { .n = 0 };
	char location[4200], cancelled[4200];
	const char *category = NULL;
	uint64_t flow = (uint64_t)e->ref + 1; /* wake index + 1: ids are nonzero */

	packet.has_timestamp = 1;
	packet.timestamp = e->ts;
	packet.track_event = &te;
	te.has_track_uuid = 1;
	te.track_uuid = e->track;
	te.has_type = 1;
	te.type = e->kind == PF_BEGIN ? PERFETTO__PROTOS__TRACK_EVENT__TYPE__TYPE_SLICE_BEGIN
		: e->kind == PF_END   ? PERFETTO__PROTOS__TRACK_EVENT__TYPE__TYPE_SLICE_END
				      : PERFETTO__PROTOS__TRACK_EVENT__TYPE__TYPE_INSTANT;
	if (e->kind == PF_BEGIN) {
		const struct poll *p = &w->polls[w->slices[e->ref].poll];
		const struct trace_function *fn = &w->trace->functions[p->func_id];

		te.name = (char *)fn->name;
		category = context_class__name(fn->context);
		annotate_poll(&a, fn, p, location, sizeof(location));
	} else if (e->kind == PF_WAKE || e->kind == PF_WOKEN) {
		const struct wake *wk = &w->model->wakes[e->ref];

		te.name = (char *)wake__name(wk);
		category = "wake";
		annotate_uint(&a, "task", wk->target);
		if (e->kind == PF_WOKEN) {
			te.n_terminating_flow_ids = 1;
			te.terminating_flow_ids = &flow;
		} else if (flows(w, wk)) {
			te.n_flow_ids = 1;
			te.flow_ids = &flow;
		}
	} else if (e->kind == PF_CANCEL) {
		const struct cancellation *c = &w->model->cancellations[e->ref];

		snprintf(cancelled, sizeof(cancelled), "cancelled: %s", w->trace->functions[c->func_id].name);
		te.name = cancelled;
		category = "cancel";
	}
	if (category) {
		te.n_categories = 1;
		te.categories = (char **)&category;
	}
	te.n_debug_annotations = a.n;
	te.debug_annotations = a.ptrs;
	return write_packet(w, &packet);
}

static int collect(struct pf_writer *w)
{
	int err = trace_file__replay_polls(w->trace, collect_poll, w, NULL);

	if (!err)
		err = w->err;
	if (!err)
		err = slice_events(w);
	if (!err)
		err = wake_events(w);
	if (!err && w->event_count)
		qsort(w->events, w->event_count, sizeof(*w->events), cmp_events);
	return err;
}

static int perfetto_write(const struct trace_file *t, const struct export_filter *filter, FILE *out)
{
	struct pf_writer w = { .trace = t, .filter = filter, .out = out };
	struct task_model model;
	int err;

	err = task_model__build(&model, t);
	if (err)
		return err;
	w.model = &model;
	if (export_filter__missing_task(filter, &model))
		err = -ESRCH;
	for (size_t i = 0; i < t->thread_count && !err; i++)
		if (export_filter__keeps_thread(filter, t->threads[i].tid))
			err = note_thread(&w, t->threads[i].tid);
	if (!err)
		err = collect(&w);
	w.first_ts = w.event_count ? w.events[0].ts : 0;
	if (!err)
		err = write_tracks(&w);
	for (size_t i = 0; i < w.event_count && !err; i++)
		err = write_event(&w, &w.events[i]);
	free(w.polls);
	free(w.slices);
	free(w.events);
	free(w.buf);
	u64map_free(&w.threads);
	task_model__free(&model);
	if (!err && ferror(out))
		err = -EIO;
	return err;
}

const struct export_format perfetto_export_format = {
	.name = "perfetto",
	.description = "Perfetto protobuf trace for ui.perfetto.dev and trace_processor",
	.write = perfetto_write,
};
