/* Perfetto's native protobuf trace (trace_processor, ui.perfetto.dev): the
 * same content as the Chrome JSON export — thread tracks with every poll,
 * a track per task with its futures' polls, wake flows, cancellation
 * markers — as TrackEvent slices on tracks named by TrackDescriptors.
 *
 * Written as the Perfetto SDK writes (perfetto_seq.h): one packet sequence
 * per thread, whose default track is the thread's, carrying that thread's
 * polls, the task-track copies of them and its wakes; one more sequence for
 * the task tracks' descriptors, the wakes' flow ends and the cancellations.
 *
 * One pass: the task model is a consumer before the writer, and tells
 * wakes, their answers and cancellations as they happen. A task's track
 * is declared just before its first event, as the SDK does. A wake is
 * written once its fate is known (answered by a poll, or not: its task
 * ended, or the trace did), so its flow has both ends or none; it is then
 * behind its sequence's clock and carries its absolute time.
 *
 * Slices are BEGIN/END pairs, so a track's events must nest, but polls
 * reach us at their end, inner first. A thread's polls are held until its
 * outermost poll (or a task poll inside a runtime shell) closes; then that
 * group is sorted per track, turned into events with a stack and written.
 * Memory is one group per thread and the wakes waiting for a poll, not the
 * trace. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "export/filter.h"
#include "export/perfetto.h"
#include "export/perfetto_nest.h"
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

struct pf_thread {
	uint32_t tid;
	struct pf_seq seq;
	struct poll *polls;     /* the open group: since the last outermost poll */
	uint32_t *poll_tasks;   /* each one's task track (task id), 0 none */
	size_t poll_count, poll_cap, poll_task_cap;
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
	uint8_t *declared;          /* bit per task id: its track is described */
	size_t declared_bytes;
	/* Wakes of pending tasks, kept (for their flow) until a poll answers
	 * them or the trace ends; slots reused through .next. */
	struct wake *waiting;
	size_t waiting_count, waiting_cap;
	uint32_t free_waiting;      /* slot + 1 */
	struct u64map waiting_index; /* wake ordinal -> slot + 1 */
	struct pf_nest nest;        /* scratch for one group, reused */
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

/* "task N: future": the state the Chrome export's label ends with is not
 * known yet (a descriptor comes before the track's first event). */
static int task_descriptor(struct pf_writer *w, const struct task *t)
{
	struct buf *b = &w->out.bundle;
	size_t packet = pf_seq__begin_packet(&w->tasks, &w->out), track;
	char label[4200];

	task_model__short_label(w->model, t, label, sizeof(label));
	track = pb_begin(b, PF_TRACK_DESCRIPTOR);
	pb_uint(b, 1, task_uuid(t->id));    /* uuid */
	pb_string(b, 2, label);             /* name */
	pb_uint(b, 5, TASKS_UUID);          /* parent_uuid */
	/* sibling_order_rank: task 10 after task 9, not after task 1 */
	pb_uint(b, 12, t->id > INT32_MAX ? INT32_MAX : t->id);
	pb_end(b, track);
	return pb_writer__end_packet(&w->out, packet);
}

/* Before the first event on a task's track: its descriptor. */
static int declare_task(struct pf_writer *w, uint32_t id)
{
	size_t byte = id / 8;

	if (!id || id > w->model->task_count)
		return 0;
	if (byte >= w->declared_bytes) {
		size_t bytes = (byte + 1) * 2;
		uint8_t *bits = realloc(w->declared, bytes);

		if (!bits)
			return -ENOMEM;
		memset(bits + w->declared_bytes, 0, bytes - w->declared_bytes);
		w->declared = bits;
		w->declared_bytes = bytes;
	}
	if (w->declared[byte] & (1u << (id % 8)))
		return 0;
	w->declared[byte] |= (uint8_t)(1u << (id % 8));
	return task_descriptor(w, &w->model->tasks[id - 1]);
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

/* The trace's threads first, in tid order, so the same trace always gives
 * the same file (a thread known only from its wakes starts at its first). */
static int known_threads(struct pf_writer *w)
{
	size_t n = 0;
	uint32_t *tids = malloc((w->trace->thread_count + 1) * sizeof(*tids));

	if (!tids)
		return -ENOMEM;
	for (size_t i = 0; i < w->trace->thread_count; i++)
		if (export_filter__keeps_thread(w->filter, w->trace->threads[i].tid))
			tids[n++] = w->trace->threads[i].tid;
	qsort(tids, n, sizeof(*tids), cmp_u32);
	for (size_t i = 0; i < n && !w->err; i++) {
		struct pf_thread *th = add_thread(w, tids[i]);

		if (th && !th->seq.started)
			w->err = start_thread(w, th);
	}
	free(tids);
	return w->err;
}

/* ---- slices of a group -------------------------------------------------- */

/* Every poll on its thread; futures polled for a task once more on the
 * task's track (as chrome.c: not the runtime's task polls, plain
 * functions or forwarding wrappers). */
static int group_slices(struct pf_writer *w, const struct pf_thread *th)
{
	int err = 0;

	w->nest.slice_count = 0;
	for (size_t i = 0; i < th->poll_count && !err; i++) {
		const struct poll *p = &th->polls[i];

		err = pf_nest__add_slice(&w->nest, p, (uint32_t)i, DEFAULT_TRACK);
		if (!err && th->poll_tasks[i])
			err = declare_task(w, th->poll_tasks[i]);
		if (!err && th->poll_tasks[i])
			err = pf_nest__add_slice(&w->nest, p, (uint32_t)i, task_uuid(th->poll_tasks[i]));
	}
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
	const struct poll *p = &th->polls[w->nest.slices[e->ref].poll];
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

/* A wake's instant: on the waking thread (the flow starts when it led to
 * a poll) or on the woken task's track (where it ends). Flow ids are the
 * wake's ordinal: the same in every export of the trace, and nonzero. */
static void wake_event(struct pf_seq *seq, struct buf *b, const struct wake *wk, bool woken)
{
	pb_uint(b, PF_TE_TYPE, PF_INSTANT);
	if (woken)
		pb_uint(b, PF_TE_TRACK_UUID, task_uuid(wk->target));
	pb_uint(b, PF_TE_NAME_IID, pf_seq__name(seq, NAME_KEY_WAKE | wk->self << 1 | wk->by_ref, wake__name(wk)));
	pb_uint(b, PF_TE_CATEGORY_IIDS, PF_CAT_WAKE);
	pf_arg_uint(b, PF_ARG_TASK, wk->target);
	if (woken)
		pb_fixed64(b, PF_TE_TERMINATING_FLOW_IDS, wk->ordinal);
	else if (wk->poll_ts)
		pb_fixed64(b, PF_TE_FLOW_IDS, wk->ordinal);
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

static int flush_group(struct pf_writer *w, struct pf_thread *th)
{
	int err = group_slices(w, th);

	if (!err)
		err = pf_nest__events(&w->nest);
	for (size_t i = 0; i < w->nest.event_count && !err; i++) {
		const struct pf_event *e = &w->nest.events[i];

		err = pf_seq__begin_event(&th->seq, &w->out, e->ts);
		if (err)
			break;
		slice_event(w, &th->seq, th, e);
		err = pf_seq__end_event(&th->seq, &w->out);
	}
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
	if (th->poll_count >= UINT32_MAX / 2 || ARRAY_RESERVE(th->polls, th->poll_cap, th->poll_count + 1) ||
	    ARRAY_RESERVE(th->poll_tasks, th->poll_task_cap, th->poll_count + 1)) {
		w->err = -ENOMEM;
		return;
	}
	/* Its task now, while the model is at this poll. */
	if (task_model__on_task_track(w->model, p)) {
		const struct task *task = task_model__find(w->model, p->task, p->tid, p->start);

		th->poll_tasks[th->poll_count] = task ? task->id : 0;
	} else {
		th->poll_tasks[th->poll_count] = 0;
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

	for (size_t i = 0; i < w->thread_count && !err; i++)
		if (w->threads[i].poll_count)
			err = flush_group(w, &w->threads[i]);
	return err;
}

/* ---- wakes and cancellations, as the model tells them ------------------- */

/* The instant on the waking thread: its sequence may not have started (a
 * thread that only wakes), and its clock is past the wake by now. */
static int write_wake(struct pf_writer *w, const struct wake *wk)
{
	struct pf_thread *th = add_thread(w, wk->tid);
	int err = w->err;

	if (!err && !th->seq.started)
		err = start_thread(w, th);
	if (!err)
		err = pf_seq__begin_event(&th->seq, &w->out, wk->ts);
	if (err)
		return err;
	wake_event(&th->seq, &w->out.bundle, wk, false);
	return pf_seq__end_event(&th->seq, &w->out);
}

/* Where the flow ends: on the woken task's track, at the poll it led to. */
static int write_woken(struct pf_writer *w, const struct wake *wk)
{
	int err = declare_task(w, wk->target);

	if (!err)
		err = pf_seq__begin_event(&w->tasks, &w->out, wk->poll_ts);
	if (err)
		return err;
	wake_event(&w->tasks, &w->out.bundle, wk, true);
	return pf_seq__end_event(&w->tasks, &w->out);
}

static void wait_for_answer(struct pf_writer *w, const struct wake *wk)
{
	uint32_t slot = w->free_waiting;

	if (slot) {
		w->free_waiting = w->waiting[slot - 1].next;
	} else {
		if (ARRAY_RESERVE(w->waiting, w->waiting_cap, w->waiting_count + 1)) {
			w->err = -ENOMEM;
			return;
		}
		slot = (uint32_t)++w->waiting_count;
	}
	w->waiting[slot - 1] = *wk;
	if (u64map_put(&w->waiting_index, wk->ordinal, (void *)(uintptr_t)slot))
		w->err = -ENOMEM;
}

static void on_wake(const struct wake *wk, bool answerable, void *ctx)
{
	struct pf_writer *w = ctx;

	if (w->err || !export_filter__keeps_wake(w->filter, wk))
		return;
	if (answerable)
		wait_for_answer(w, wk);
	else
		w->err = write_wake(w, wk); /* its task has ended: no poll will answer it */
}

/* Both ends of the flow, when the poll that answers it is kept; else the
 * wake is left out (as the Chrome export does). */
static void on_wake_answered(const struct wake *wk, void *ctx)
{
	struct pf_writer *w = ctx;
	uintptr_t slot = (uintptr_t)u64map_get(&w->waiting_index, wk->ordinal);

	if (!slot || w->err)
		return;
	u64map_remove(&w->waiting_index, wk->ordinal);
	w->waiting[slot - 1].next = w->free_waiting;
	w->free_waiting = (uint32_t)slot;
	if (!export_filter__keeps_wake(w->filter, wk))
		return;
	w->err = write_wake(w, wk);
	if (!w->err)
		w->err = write_woken(w, wk);
}

static void on_cancel(const struct cancellation *c, void *ctx)
{
	struct pf_writer *w = ctx;

	if (w->err || !export_filter__keeps_cancellation(w->filter, c) || c->task < 1 ||
	    c->task > w->model->task_count)
		return;
	w->err = declare_task(w, c->task);
	if (!w->err)
		w->err = pf_seq__begin_event(&w->tasks, &w->out, c->ts);
	if (!w->err) {
		cancel_event(w, c);
		w->err = pf_seq__end_event(&w->tasks, &w->out);
	}
}

static int cmp_ordinals(const void *a, const void *b)
{
	uint64_t x = (*(const struct wake *const *)a)->ordinal, y = (*(const struct wake *const *)b)->ordinal;

	return x < y ? -1 : x > y;
}

/* The wakes no poll answered before the trace ended, in the order they
 * happened. */
static int write_unanswered(struct pf_writer *w)
{
	const struct wake **left = malloc((w->waiting_index.count + 1) * sizeof(*left));
	size_t n = 0;
	int err = 0;

	if (!left)
		return -ENOMEM;
	for (size_t i = 0; i < w->waiting_count; i++)
		if ((uintptr_t)u64map_get(&w->waiting_index, w->waiting[i].ordinal) == i + 1)
			left[n++] = &w->waiting[i];
	qsort(left, n, sizeof(*left), cmp_ordinals);
	for (size_t i = 0; i < n && !err; i++)
		err = write_wake(w, left[i]);
	free(left);
	return err;
}

/* First in the file: the processes (the target's, and "tasks" under
 * which the task tracks go) and the trace's clock. */
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
	if (!err)
		err = pf_seq__start_clock(&w->tasks, &w->out, t->first_ts, true);
	return err;
}

static void free_writer(struct pf_writer *w)
{
	for (size_t i = 0; i < w->thread_count; i++) {
		pf_seq__free(&w->threads[i].seq);
		free(w->threads[i].polls);
		free(w->threads[i].poll_tasks);
	}
	free(w->threads);
	pf_seq__free(&w->tasks);
	u64map_free(&w->thread_index);
	u64map_free(&w->waiting_index);
	free(w->waiting);
	free(w->declared);
	pf_nest__free(&w->nest);
}

/* --task: its ids are checked before anything is written, by a model of
 * its own (one more pass, over a trace the user is taking a part of). */
static int check_tasks(const struct trace_file *t, const struct export_filter *filter)
{
	struct task_model model;
	int err;

	if (!filter || !filter->task_count)
		return 0;
	err = task_model__build(&model, t, 0);
	if (err)
		return err;
	err = export_filter__missing_task(filter, &model) ? -ESRCH : 0; /* nothing written */
	task_model__free(&model);
	return err;
}

static int write_events(struct pf_writer *w, struct task_model *model)
{
	struct trace_consumer consumers[2] = {
		task_model__consumer(model),
		{ .poll = collect_poll, .ctx = w },
	};
	int err = known_threads(w);

	model->on_wake = on_wake;
	model->on_wake_answered = on_wake_answered;
	model->on_cancel = on_cancel;
	model->callback_ctx = w;
	if (!err)
		err = trace_file__pass(w->trace, consumers, 2, &model->stats);
	if (!err)
		err = w->err;
	if (!err)
		err = task_model__finish(model);
	if (!err)
		err = w->err;
	if (!err)
		err = flush_threads(w);
	if (!err)
		err = write_unanswered(w);
	return err;
}

int perfetto_write_trace(const struct trace_file *t, const struct export_filter *filter, FILE *out, int level)
{
	struct pf_writer w = { .trace = t, .filter = filter };
	struct task_model model;
	int err = check_tasks(t, filter);

	if (!err)
		err = task_model__init(&model, t, 0);
	if (err)
		return err;
	w.model = &model;
	pb_writer__init(&w.out, out, level);
	pf_seq__init(&w.tasks, TASKS_SEQUENCE);
	err = write_tasks_sequence(&w);
	if (!err)
		err = write_events(&w, &model);
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
