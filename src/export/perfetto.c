/* Perfetto's native protobuf trace (trace_processor, ui.perfetto.dev): the
 * same content as the Chrome JSON export — thread tracks with every poll,
 * a track per task with its futures' polls, wake flows, cancellation
 * markers — as TrackEvent slices on tracks named by TrackDescriptors.
 *
 * Written as the Perfetto SDK writes (perfetto_seq.h): one packet sequence
 * per thread, whose default track is the thread's, carrying that thread's
 * polls and the task-track copies of them; one more sequence for the task
 * process's descriptors, the wakes' flow ends and the cancellations.
 *
 * Slices are BEGIN/END pairs, so a track's events must nest, but polls
 * reach us at their end, inner first. A thread's polls are held until its
 * outermost poll (or a task poll inside a runtime shell) closes; then that
 * group is sorted per track, turned into events with a stack, merged in
 * time with the thread's wakes and written. Memory is one group per
 * thread, not the trace. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "export/filter.h"
#include "export/perfetto.h"
#include "export/perfetto_seq.h"
#include "trace/polls.h"
#include "trace/tasks.h"
#include "util/array.h"
#include "util/u64map.h"

/* Track uuids, global to the trace: the two processes, the tasks right
 * after them (a task's uuid is in each of its events: small varints),
 * the threads (only in descriptors and defaults) far above. */
#define PROCESS_UUID 1ULL
#define TASKS_UUID 2ULL
#define THREAD_UUID_BASE (1ULL << 32)
#define TASKS_SEQUENCE 1
#define DEFAULT_TRACK 0 /* in a slice: the sequence's own thread track */

/* Interning keys of event names that are not function names. */
#define NAME_KEY_WAKE (1ULL << 40)
#define NAME_KEY_CANCEL (2ULL << 40)

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
	uint32_t poll;   /* index into the group's polls */
	uint16_t depth;
};

struct pf_event {
	uint64_t ts;
	uint64_t track;
	uint32_t order;  /* generation order: keeps each track's nesting at equal ts */
	uint32_t ref;    /* slice, wake or cancellation index by kind */
	uint8_t kind;    /* enum pf_kind */
};

struct pf_thread {
	uint32_t tid;
	struct pf_seq seq;
	struct poll *polls;     /* the open group: since the last outermost poll */
	size_t poll_count, poll_cap;
	uint32_t *wakes;        /* indices of the thread's wakes, by time */
	size_t wake_count, wake_cap, wake_next;
};

struct pf_writer {
	const struct trace_file *trace;
	const struct task_model *model;
	const struct export_filter *filter; /* NULL: everything */
	struct pb_writer out;
	struct pf_seq tasks;
	struct pf_thread *threads;
	size_t thread_count, thread_cap;
	struct u64map thread_index; /* tid + 1 -> index + 1 */
	/* scratch for one group, reused */
	struct pf_slice *slices;
	size_t slice_count, slice_cap;
	struct pf_event *events;
	size_t event_count, event_cap;
	uint32_t *stack;
	size_t stack_cap;
	int err;
};

static uint64_t thread_uuid(uint32_t tid)
{
	return THREAD_UUID_BASE + tid;
}

static uint64_t task_uuid(uint32_t id)
{
	return TASKS_UUID + id;
}

static bool flows(const struct pf_writer *w, const struct wake *wk)
{
	return wk->poll_ts && wk->target >= 1 && wk->target <= w->model->task_count;
}

/* ---- track descriptors -------------------------------------------------- */

static void process_descriptor(struct buf *b, uint64_t uuid, uint32_t pid, const char *name,
			       bool explicit_order)
{
	size_t track = pb_begin(b, PF_TRACK_DESCRIPTOR), process;

	pb_uint(b, 1, uuid);                /* uuid */
	process = pb_begin(b, 3);           /* process */
	pb_uint(b, 1, pid);                 /* pid */
	pb_string(b, 6, name);              /* process_name */
	pb_end(b, process);
	if (explicit_order)
		pb_uint(b, 11, 3);          /* child_ordering: EXPLICIT */
	pb_end(b, track);
}

static void thread_descriptor(struct pf_writer *w, uint32_t tid)
{
	struct buf *b = &w->out.bundle;
	const char *name = trace_file__thread_name(w->trace, tid);
	size_t track = pb_begin(b, PF_TRACK_DESCRIPTOR), thread;

	pb_uint(b, 1, thread_uuid(tid));    /* uuid */
	pb_uint(b, 5, PROCESS_UUID);        /* parent_uuid */
	thread = pb_begin(b, 4);            /* thread */
	pb_uint(b, 1, w->trace->meta.pid);  /* pid */
	pb_uint(b, 2, tid);                 /* tid */
	pb_string(b, 5, name && *name ? name : "thread"); /* thread_name */
	pb_end(b, thread);
	pb_end(b, track);
}

static int task_descriptor(struct pf_writer *w, const struct task *t)
{
	struct buf *b = &w->out.bundle;
	size_t packet = pf_seq__begin_packet(&w->tasks, &w->out), track;
	char label[4200];

	task_model__label(w->model, t, label, sizeof(label));
	track = pb_begin(b, PF_TRACK_DESCRIPTOR);
	pb_uint(b, 1, task_uuid(t->id));    /* uuid */
	pb_string(b, 2, label);             /* name */
	pb_uint(b, 5, TASKS_UUID);          /* parent_uuid */
	/* sibling_order_rank: task 10 after task 9, not after task 1 */
	pb_uint(b, 12, t->id > INT32_MAX ? INT32_MAX : t->id);
	pb_end(b, track);
	return pb_writer__end_packet(&w->out, packet);
}

/* ---- threads ------------------------------------------------------------ */

/* A thread's sequence starts with its track's descriptor. */
static int start_thread(struct pf_writer *w, struct pf_thread *th)
{
	size_t packet = pf_seq__begin_first(&th->seq, &w->out, thread_uuid(th->tid));

	thread_descriptor(w, th->tid);
	return pb_writer__end_packet(&w->out, packet);
}

static struct pf_thread *find_thread(struct pf_writer *w, uint32_t tid)
{
	uintptr_t i = (uintptr_t)u64map_get(&w->thread_index, (uint64_t)tid + 1);

	return i ? &w->threads[i - 1] : NULL;
}

static struct pf_thread *add_thread(struct pf_writer *w, uint32_t tid)
{
	struct pf_thread *th = find_thread(w, tid);

	if (th || w->err)
		return th;
	if (w->thread_count >= INT32_MAX - 2 || ARRAY_RESERVE(w->threads, w->thread_cap, w->thread_count + 1) ||
	    u64map_put(&w->thread_index, (uint64_t)tid + 1, (void *)(uintptr_t)(w->thread_count + 1))) {
		w->err = -ENOMEM;
		return NULL;
	}
	th = &w->threads[w->thread_count++];
	*th = (struct pf_thread){ .tid = tid };
	pf_seq__init(&th->seq, (uint32_t)(TASKS_SEQUENCE + w->thread_count));
	return th;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The threads known before replaying (named ones, wakers), in tid order
 * so the same trace always gives the same file, each with its wakes. */
static int known_threads(struct pf_writer *w)
{
	const struct task_model *m = w->model;
	size_t n = w->trace->thread_count + m->wake_count;
	uint32_t *tids = malloc((n + 1) * sizeof(*tids));

	if (!tids)
		return -ENOMEM;
	n = 0;
	for (size_t i = 0; i < w->trace->thread_count; i++)
		if (export_filter__keeps_thread(w->filter, w->trace->threads[i].tid))
			tids[n++] = w->trace->threads[i].tid;
	for (size_t i = 0; i < m->wake_count; i++)
		if (export_filter__keeps_wake(w->filter, &m->wakes[i]))
			tids[n++] = m->wakes[i].tid;
	qsort(tids, n, sizeof(*tids), cmp_u32);
	for (size_t i = 0; i < n && !w->err; i++) {
		struct pf_thread *th = add_thread(w, tids[i]);

		if (th && !th->seq.started)
			w->err = start_thread(w, th);
	}
	free(tids);
	for (size_t i = 0; i < m->wake_count && !w->err; i++) {
		struct pf_thread *th = find_thread(w, m->wakes[i].tid);

		if (!export_filter__keeps_wake(w->filter, &m->wakes[i]))
			continue;
		if (ARRAY_RESERVE(th->wakes, th->wake_cap, th->wake_count + 1))
			return w->err = -ENOMEM;
		th->wakes[th->wake_count++] = (uint32_t)i;
	}
	return w->err;
}

static int cmp_wakes_by_ts(const void *a, const void *b, void *ctx)
{
	const struct wake *wakes = ctx;
	const struct wake *x = &wakes[*(const uint32_t *)a], *y = &wakes[*(const uint32_t *)b];

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return cmp_u32(a, b);
}

static void sort_thread_wakes(struct pf_writer *w)
{
	for (size_t i = 0; i < w->thread_count; i++)
		qsort_r(w->threads[i].wakes, w->threads[i].wake_count, sizeof(uint32_t), cmp_wakes_by_ts,
			w->model->wakes);
}

/* ---- slices of a group -------------------------------------------------- */

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
	w->events[w->event_count] = (struct pf_event){ ts, track, (uint32_t)w->event_count, ref, kind };
	w->event_count++;
	return 0;
}

/* Every poll on its thread; futures polled for a task once more on the
 * task's track (as chrome.c: not the runtime's task polls, plain
 * functions or forwarding wrappers). */
static int group_slices(struct pf_writer *w, const struct pf_thread *th)
{
	int err = 0;

	w->slice_count = 0;
	for (size_t i = 0; i < th->poll_count && !err; i++) {
		const struct poll *p = &th->polls[i];
		const struct task *task;

		err = add_slice(w, p, (uint32_t)i, DEFAULT_TRACK);
		if (err || !task_model__on_task_track(w->model, p))
			continue;
		task = task_model__find(w->model, p->task, p->tid, p->start);
		if (task)
			err = add_slice(w, p, (uint32_t)i, task_uuid(task->id));
	}
	return err;
}

/* A group is a task poll and the handful of polls inside it: insertion
 * sort (stable, as glibc's qsort is) beats qsort's set-up there, which was
 * a sixth of the export. Larger groups (a worker loop's) go to qsort. */
#define SORT_FEW_MAX 24

static void sort_few(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	uint8_t *items = base, tmp[64];

	if (n > SORT_FEW_MAX || size > sizeof(tmp)) {
		qsort(base, n, size, cmp);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		size_t j = i;

		if (cmp(items + (i - 1) * size, items + i * size) <= 0)
			continue;
		memcpy(tmp, items + i * size, size);
		while (j > 0 && cmp(items + (j - 1) * size, tmp) > 0) {
			memcpy(items + j * size, items + (j - 1) * size, size);
			j--;
		}
		memcpy(items + j * size, tmp, size);
	}
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
static int track_events(struct pf_writer *w, size_t from, size_t to)
{
	uint32_t *stack = w->stack;
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

static int cmp_events(const void *a, const void *b)
{
	const struct pf_event *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int group_events(struct pf_writer *w)
{
	size_t from = 0;
	int err = 0;

	w->event_count = 0;
	if (!w->slice_count)
		return 0;
	if (w->slice_count >= UINT32_MAX / 2 || ARRAY_RESERVE(w->stack, w->stack_cap, w->slice_count))
		return -ENOMEM;
	sort_few(w->slices, w->slice_count, sizeof(*w->slices), cmp_slices);
	for (size_t i = 1; i <= w->slice_count && !err; i++) {
		if (i < w->slice_count && w->slices[i].track == w->slices[from].track)
			continue;
		err = track_events(w, from, i);
		from = i;
	}
	if (!err)
		sort_few(w->events, w->event_count, sizeof(*w->events), cmp_events);
	return err;
}

/* ---- writing events ----------------------------------------------------- */

static uint64_t category(const struct trace_function *fn)
{
	return fn->context <= CONTEXT_FUNCTION ? PF_CAT_CONTEXT + fn->context : PF_CAT_UNKNOWN;
}

/* The poll's arguments, as the Chrome export names them, on its END
 * (trace_processor merges a slice's BEGIN and END arguments). */
static void poll_args(struct pf_seq *seq, struct buf *b, const struct trace_function *fn, const struct poll *p)
{
	uint32_t line = p->has_state ? trace_function__await_line(fn, p->state) : 0;

	pf_arg_pointer(b, PF_ARG_FUTURE, p->future);
	pf_arg_value(b, PF_ARG_RESULT, PF_VALUE_RESULT + (p->result <= POLL_RESULT_PENDING ? p->result : 0));
	if (p->end_kind != POLL_END_RETURNED) /* as in Chrome's slices: the default goes unsaid */
		pf_arg_value(b, PF_ARG_END, PF_VALUE_END + (p->end_kind <= POLL_END_UNFINISHED ? p->end_kind : 0));
	pf_arg_uint(b, PF_ARG_DEPTH, p->depth);
	pf_arg_uint(b, PF_ARG_CPU, p->cpu);
	if (line)
		pf_arg_uint(b, PF_ARG_PARKED_AT_LINE, line);
	if (fn->source_file) {
		uint64_t iid = pf_seq__value_iid(seq, p->func_id);
		char location[4200];

		if (!iid) {
			snprintf(location, sizeof(location), "%s:%u", fn->source_file, fn->source_line);
			iid = pf_seq__value(seq, p->func_id, location);
		}
		pf_arg_value(b, PF_ARG_LOCATION, iid);
	}
}

static void slice_event(struct pf_writer *w, struct pf_seq *seq, const struct pf_thread *th, const struct pf_event *e)
{
	struct buf *b = &w->out.bundle;
	const struct poll *p = &th->polls[w->slices[e->ref].poll];
	const struct trace_function *fn = &w->trace->functions[p->func_id];

	pb_uint(b, PF_TE_TYPE, e->kind == PF_BEGIN ? PF_SLICE_BEGIN : PF_SLICE_END);
	if (e->track != DEFAULT_TRACK)
		pb_uint(b, PF_TE_TRACK_UUID, e->track);
	if (e->kind == PF_BEGIN) {
		pb_uint(b, PF_TE_NAME_IID, pf_seq__name(seq, p->func_id, fn->name));
		pb_uint(b, PF_TE_CATEGORY_IIDS, category(fn));
	} else {
		poll_args(seq, b, fn, p);
	}
}

/* A wake's instant: on the waking thread (the flow starts) or on the
 * woken task's track (where it ends). */
static void wake_event(struct pf_writer *w, struct pf_seq *seq, uint32_t index, bool woken)
{
	struct buf *b = &w->out.bundle;
	const struct wake *wk = &w->model->wakes[index];

	pb_uint(b, PF_TE_TYPE, PF_INSTANT);
	if (woken)
		pb_uint(b, PF_TE_TRACK_UUID, task_uuid(wk->target));
	pb_uint(b, PF_TE_NAME_IID, pf_seq__name(seq, NAME_KEY_WAKE | wk->self << 1 | wk->by_ref, wake__name(wk)));
	pb_uint(b, PF_TE_CATEGORY_IIDS, PF_CAT_WAKE);
	pf_arg_uint(b, PF_ARG_TASK, wk->target);
	if (woken)
		pb_fixed64(b, PF_TE_TERMINATING_FLOW_IDS, (uint64_t)index + 1);
	else if (flows(w, wk))
		pb_fixed64(b, PF_TE_FLOW_IDS, (uint64_t)index + 1); /* wake index + 1: ids are nonzero */
}

static void cancel_event(struct pf_writer *w, const struct cancellation *c)
{
	struct buf *b = &w->out.bundle;
	const char *fn = w->trace->functions[c->func_id].name;
	char name[4200];

	snprintf(name, sizeof(name), "cancelled: %s", fn);
	pb_uint(b, PF_TE_TYPE, PF_INSTANT);
	pb_uint(b, PF_TE_TRACK_UUID, task_uuid(c->task));
	pb_uint(b, PF_TE_NAME_IID, pf_seq__name(&w->tasks, NAME_KEY_CANCEL | c->func_id, name));
	pb_uint(b, PF_TE_CATEGORY_IIDS, PF_CAT_CANCEL);
}

/* The thread's wakes before `until` (inclusive when asked): at equal
 * times the group's slice events go first, as they did when every event
 * of the trace was sorted at once. */
static int thread_wakes(struct pf_writer *w, struct pf_thread *th, uint64_t until, bool inclusive)
{
	int err = 0;

	while (th->wake_next < th->wake_count && !err) {
		uint32_t i = th->wakes[th->wake_next];
		uint64_t ts = w->model->wakes[i].ts;

		if (ts > until || (ts == until && !inclusive))
			break;
		th->wake_next++;
		err = pf_seq__begin_event(&th->seq, &w->out, ts);
		if (!err) {
			wake_event(w, &th->seq, i, false);
			err = pf_seq__end_event(&th->seq, &w->out);
		}
	}
	return err;
}

static int flush_group(struct pf_writer *w, struct pf_thread *th)
{
	int err = group_slices(w, th);

	if (!err)
		err = group_events(w);
	for (size_t i = 0; i < w->event_count && !err; i++) {
		const struct pf_event *e = &w->events[i];

		err = thread_wakes(w, th, e->ts, false);
		if (!err)
			err = pf_seq__begin_event(&th->seq, &w->out, e->ts);
		if (err)
			break;
		slice_event(w, &th->seq, th, e);
		err = pf_seq__end_event(&th->seq, &w->out);
	}
	if (!err && w->event_count)
		err = thread_wakes(w, th, w->events[w->event_count - 1].ts, true);
	th->poll_count = 0;
	return err;
}

static void collect_poll(const struct poll *p, void *ctx)
{
	struct pf_writer *w = ctx;
	bool group_ends = p->depth == 0 || p->parent_runs_tasks;
	struct pf_thread *th;

	if (w->err)
		return;
	if (!export_filter__keeps_poll(w->filter, w->model, p)) {
		/* left out, but it may close a group of kept ones */
		th = find_thread(w, p->tid);
		if (group_ends && th && th->poll_count)
			w->err = flush_group(w, th);
		return;
	}
	th = add_thread(w, p->tid);
	if (th && !th->seq.started)
		w->err = start_thread(w, th);
	if (w->err)
		return;
	if (th->poll_count >= UINT32_MAX / 2 || ARRAY_RESERVE(th->polls, th->poll_cap, th->poll_count + 1)) {
		w->err = -ENOMEM;
		return;
	}
	th->polls[th->poll_count++] = *p;
	/* Nothing of the group is still open when the outermost poll on its
	 * thread closes, or a task poll inside a runtime shell (a worker loop
	 * that is itself a probed poll, often as long as the trace): then
	 * only the shell is open, and its slice, written when it closes,
	 * begins before what the sequence has written: its BEGIN has an
	 * absolute time (pf_seq__begin_event), and viewers sort by time. */
	if (group_ends)
		w->err = flush_group(w, th);
}

static int flush_threads(struct pf_writer *w)
{
	int err = 0;

	for (size_t i = 0; i < w->thread_count && !err; i++) {
		struct pf_thread *th = &w->threads[i];

		if (th->poll_count)
			err = flush_group(w, th);
		if (!err)
			err = thread_wakes(w, th, UINT64_MAX, true);
	}
	return err;
}

/* ---- the tasks sequence ------------------------------------------------- */

/* Flow ends and cancellations, in time order on the tasks sequence. */
static int task_events(struct pf_writer *w)
{
	const struct task_model *m = w->model;
	int err = 0;

	w->event_count = 0;
	for (size_t i = 0; i < m->wake_count && !err; i++)
		if (flows(w, &m->wakes[i]) && export_filter__keeps_wake(w->filter, &m->wakes[i]))
			err = add_event(w, m->wakes[i].poll_ts, task_uuid(m->wakes[i].target), (uint32_t)i, PF_WOKEN);
	for (size_t i = 0; i < m->cancellation_count && !err; i++) {
		const struct cancellation *c = &m->cancellations[i];

		if (c->task >= 1 && c->task <= m->task_count && export_filter__keeps_cancellation(w->filter, c))
			err = add_event(w, c->ts, task_uuid(c->task), (uint32_t)i, PF_CANCEL);
	}
	if (!err && w->event_count)
		qsort(w->events, w->event_count, sizeof(*w->events), cmp_events);
	for (size_t i = 0; i < w->event_count && !err; i++) {
		const struct pf_event *e = &w->events[i];

		err = pf_seq__begin_event(&w->tasks, &w->out, e->ts);
		if (err)
			break;
		if (e->kind == PF_WOKEN)
			wake_event(w, &w->tasks, e->ref, true);
		else
			cancel_event(w, &m->cancellations[e->ref]);
		err = pf_seq__end_event(&w->tasks, &w->out);
	}
	return err;
}

/* First in the file: the processes (the target's, and "tasks" with a
 * track per task), the trace's clock, the task events. */
static int write_tasks_sequence(struct pf_writer *w)
{
	const struct trace_file *t = w->trace;
	const char *process = t->meta.target_path ? strrchr(t->meta.target_path, '/') : NULL;
	size_t packet = pf_seq__begin_first(&w->tasks, &w->out, 0);
	int err;

	process_descriptor(&w->out.bundle, PROCESS_UUID, t->meta.pid,
			   process ? process + 1 : t->meta.target_path ? t->meta.target_path : "target", false);
	err = pb_writer__end_packet(&w->out, packet);
	if (!err) {
		packet = pf_seq__begin_packet(&w->tasks, &w->out);
		process_descriptor(&w->out.bundle, TASKS_UUID, t->meta.pid + TASK_PID_OFFSET, "tasks", true);
		err = pb_writer__end_packet(&w->out, packet);
	}
	for (size_t i = 0; i < w->model->task_count && !err; i++)
		if (export_filter__keeps_task_track(w->filter, &w->model->tasks[i]))
			err = task_descriptor(w, &w->model->tasks[i]);
	if (!err)
		err = pf_seq__start_clock(&w->tasks, &w->out, t->first_ts, true);
	if (!err)
		err = task_events(w);
	return err;
}

static void free_writer(struct pf_writer *w)
{
	for (size_t i = 0; i < w->thread_count; i++) {
		pf_seq__free(&w->threads[i].seq);
		free(w->threads[i].polls);
		free(w->threads[i].wakes);
	}
	free(w->threads);
	pf_seq__free(&w->tasks);
	u64map_free(&w->thread_index);
	free(w->slices);
	free(w->events);
	free(w->stack);
}

int perfetto_write_trace(const struct trace_file *t, const struct export_filter *filter, FILE *out, int level)
{
	struct pf_writer w = { .trace = t, .filter = filter };
	struct task_model model;
	int err;

	err = task_model__build(&model, t, TASK_MODEL_KEEP_HISTORY);
	if (err)
		return err;
	w.model = &model;
	if (export_filter__missing_task(filter, &model)) {
		task_model__free(&model);
		return -ESRCH; /* nothing written */
	}
	pb_writer__init(&w.out, out, level);
	pf_seq__init(&w.tasks, TASKS_SEQUENCE);
	err = write_tasks_sequence(&w);
	if (!err)
		err = known_threads(&w);
	if (!err) {
		sort_thread_wakes(&w);
		err = trace_file__replay_polls(t, collect_poll, &w, NULL);
	}
	if (!err)
		err = w.err;
	if (!err)
		err = flush_threads(&w);
	w.out.err = w.out.err ? w.out.err : err;
	err = pb_writer__finish(&w.out);
	free_writer(&w);
	task_model__free(&model);
	if (!err && ferror(out))
		err = -EIO;
	return err;
}

static int perfetto_write(const struct trace_file *t, const struct export_filter *filter, FILE *out)
{
	return perfetto_write_trace(t, filter, out, PERFETTO_DEFLATE_LEVEL);
}

const struct export_format perfetto_export_format = {
	.name = "perfetto",
	.description = "Perfetto protobuf trace for ui.perfetto.dev and trace_processor",
	.write = perfetto_write,
	.write_at_level = perfetto_write_trace,
	.max_level = PERFETTO_MAX_DEFLATE_LEVEL,
};
