#include "trace/polls.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/consumer_set.h"
#include "trace/pipeline.h"
#include "trace/reader.h"
#include "util/u64map.h"
#include "util/array.h"
#include "util/hash.h"

struct frame {
	uint64_t sp;
	uint64_t start;
	uint64_t future;
	uint64_t task;    /* the task whose poll this is part of, or 0 */
	uint64_t path;    /* hash of the function names from the root down */
	uint32_t func_id;
	uint16_t cpu;
	uint8_t runs_tasks;
};

struct thread_stack {
	struct frame *frames;
	size_t depth;
	size_t capacity;
	uint32_t pid;
	uint32_t tid;
	/* The wake hook just before, with nothing else in between (a wake
	 * that calls another waker function of the same task is one wake). */
	uint64_t wake_sp;
	uint64_t wake_target;
	uint64_t spawn_sp;  /* the entry of the outermost spawn call in progress */
	size_t spawn_depth; /* the poll depth it was called at */
};

struct poll_builder {
	const struct trace_function *functions;
	size_t function_count;
	uint64_t *name_hashes;  /* per function: copies of one generic share a node */
	uint8_t *forwarding;    /* per function: a wrapper that only polls its inner future */
	poll_callback callback;
	void *ctx;
	hook_callback on_hook;
	void *hook_ctx;
	poll_callback on_begin;
	void *begin_ctx;
	struct u64map threads; /* tid + 1 -> struct thread_stack */
	struct thread_stack *last_thread; /* events come in runs per thread */
	struct poll_builder_stats stats;
};

/* A path extended by one function: order matters, so mix, don't xor. */
static uint64_t extend_path(uint64_t path, uint64_t name_hash)
{
	uint64_t h = (path ^ name_hash) * 0x9e3779b97f4a7c15ULL;

	return (h ^ (h >> 29)) | 1; /* never 0: 0 means "no path" */
}

/* core's and alloc's blanket impls (`&mut F`, `Pin<P>`, `Box<F>`,
 * `AssertUnwindSafe<F>`) poll the future they wrap and nothing else: in
 * a task's tree they are not a level of their own. */
bool is_forwarding_wrapper(const char *name)
{
	static const char *const wrappers[] = {
		"<&mut F as core::future::future::Future>::poll",
		"<core::pin::Pin<P> as core::future::future::Future>::poll",
		"<alloc::boxed::Box<F,A> as core::future::future::Future>::poll",
		"<alloc::boxed::Box<F> as core::future::future::Future>::poll",
		"<core::panic::unwind_safe::AssertUnwindSafe<F> as core::future::future::Future>::poll",
	};

	for (size_t i = 0; name && i < sizeof(wrappers) / sizeof(wrappers[0]); i++)
		if (!strcmp(name, wrappers[i]))
			return true;
	return false;
}

struct poll_builder *poll_builder__new(const struct trace_function *functions, size_t count,
				       poll_callback callback, void *ctx)
{
	struct poll_builder *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->functions = functions;
	b->function_count = count;
	b->callback = callback;
	b->ctx = ctx;
	b->name_hashes = calloc(count ? count : 1, sizeof(*b->name_hashes));
	b->forwarding = calloc(count ? count : 1, sizeof(*b->forwarding));
	if (!b->name_hashes || !b->forwarding) {
		free(b->name_hashes);
		free(b->forwarding);
		free(b);
		return NULL;
	}
	for (size_t i = 0; i < count; i++) {
		b->name_hashes[i] = hash_string(functions[i].name);
		b->forwarding[i] = is_forwarding_wrapper(functions[i].name);
	}
	return b;
}

void poll_builder__set_hook_callback(struct poll_builder *b, hook_callback callback, void *ctx)
{
	b->on_hook = callback;
	b->hook_ctx = ctx;
}

void poll_builder__set_begin_callback(struct poll_builder *b, poll_callback callback, void *ctx)
{
	b->on_begin = callback;
	b->begin_ctx = ctx;
}

static struct thread_stack *thread_of(struct poll_builder *b, const struct trace_event *e)
{
	struct thread_stack *t = b->last_thread;

	if (t && t->tid == e->tid)
		return t;
	t = u64map_get(&b->threads, (uint64_t)e->tid + 1);
	if (t)
		return b->last_thread = t;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->pid = e->pid;
	t->tid = e->tid;
	if (u64map_put(&b->threads, (uint64_t)e->tid + 1, t)) {
		free(t);
		return NULL;
	}
	return b->last_thread = t;
}

static bool is_task_poll(const struct poll_builder *b, const struct frame *f)
{
	return b->functions[f->func_id].context == CONTEXT_TASK;
}

/* A task poll directly under a non-task frame starts a task's poll chain
 * (tokio: RawTask::poll > raw::poll > Harness::poll, one task): whatever
 * encloses it runs tasks, and so does everything enclosing that. */
static void mark_task_runner(const struct poll_builder *b, const struct frame *f, struct frame *parent)
{
	if (parent && (f->runs_tasks || (is_task_poll(b, f) && !is_task_poll(b, parent))))
		parent->runs_tasks = 1;
}

/* What a frame says about its poll; the end is the caller's. Every
 * field is set one by one: zeroing the struct first (an initialiser)
 * was a tenth of report's time. */
static void frame_poll(const struct poll_builder *b, const struct thread_stack *t, const struct frame *f,
		       const struct frame *parent, size_t depth, struct poll *p)
{
	p->start = f->start;
	p->end = 0;
	p->future = f->future;
	p->parent_future = parent ? parent->future : 0;
	p->task = f->task;
	p->path = f->path;
	p->parent_path = parent ? parent->path : 0;
	p->state = 0;
	p->func_id = f->func_id;
	p->tid = t->tid;
	p->pid = t->pid;
	p->parent_func = parent ? parent->func_id : UINT32_MAX;
	p->cpu = f->cpu;
	p->depth = (uint16_t)depth;
	p->result = POLL_RESULT_UNKNOWN;
	p->end_kind = POLL_END_RETURNED;
	p->runs_tasks = f->runs_tasks;
	p->parent_runs_tasks = parent ? parent->runs_tasks : 0;
	p->has_state = 0;
	p->forwarding = b->forwarding[f->func_id];
}

static void close_top(struct poll_builder *b, struct thread_stack *t, uint64_t end,
		      enum poll_end end_kind, enum poll_result result, const struct trace_event *exit)
{
	const struct frame *f = &t->frames[--t->depth];
	struct frame *parent = t->depth ? &t->frames[t->depth - 1] : NULL;
	struct poll p;

	mark_task_runner(b, f, parent);
	frame_poll(b, t, f, parent, t->depth, &p);
	p.end = end >= f->start ? end : f->start;
	p.result = result;
	p.end_kind = end_kind;
	if (exit && (exit->flags & TRACE_EVENT_STATE)) {
		p.state = exit->aux;
		p.has_state = 1;
	}

	b->stats.polls++;
	if (end_kind == POLL_END_UNWOUND)
		b->stats.unwound++;
	else if (end_kind == POLL_END_UNFINISHED)
		b->stats.unfinished++;
	b->callback(&p, b->ctx);
}

/* The stack grows down: a frame whose stack pointer is at or below a new
 * event's is gone, even though no exit was seen for it. */
static void close_unwound(struct poll_builder *b, struct thread_stack *t, uint64_t sp,
			  uint64_t ts, int inclusive)
{
	while (t->depth) {
		const struct frame *f = &t->frames[t->depth - 1];

		if (f->sp > sp || (!inclusive && f->sp == sp))
			break;
		/* An inlined body has no exit probes: what comes after its poll
		 * ends it (a bound, not a panic). */
		close_top(b, t, ts, b->functions[f->func_id].flags & TRACE_FUNCTION_INLINED ? POLL_END_RETURNED
											   : POLL_END_UNWOUND,
			  POLL_RESULT_UNKNOWN, NULL);
	}
}

/* What a runtime's wakers carry for the task whose chain this poll starts:
 * tokio and async-task poll with the task pointer itself. futures-util's
 * FuturesUnordered (LocalPool, ThreadPool) polls a LocalFutureObj held in
 * its Task<Fut>, whose Arc data pointer the waker carries: the future is
 * its field at offset 8 (futures-util 0.3, rustc 1.95 layout, from DWARF). */
#define FUTURES_TASK_FUTURE_OFFSET 8

static uint64_t task_pointer(const struct poll_builder *b, const struct frame *f)
{
	if (b->functions[f->func_id].runtime == RUNTIME_FUTURES && f->future > FUTURES_TASK_FUTURE_OFFSET)
		return f->future - FUTURES_TASK_FUTURE_OFFSET;
	return f->future;
}

/* A task poll under a non-task frame (or nothing) starts a task's chain and
 * names the task by its first argument (tokio's task header, async-task's
 * raw task: what wakers carry); the chain's other task polls belong to the
 * same task. Futures polled under a chain form that task's tree, rooted at
 * the first of them; futures polled outside any task (block_on) form a
 * tree of their own. */
static void place_in_task(const struct poll_builder *b, struct frame *f, const struct frame *parent)
{
	bool parent_is_task = parent && is_task_poll(b, parent);

	if (is_task_poll(b, f)) {
		f->task = parent_is_task && parent->task ? parent->task : task_pointer(b, f);
		f->path = 0;
		return;
	}
	f->task = parent ? parent->task : 0;
	if (b->forwarding[f->func_id]) /* transparent: what it wraps sits where it sits */
		f->path = parent && !parent_is_task ? parent->path : 0;
	else if (!parent || parent_is_task)
		f->path = extend_path(0, b->name_hashes[f->func_id]);
	else
		f->path = extend_path(parent->path, b->name_hashes[f->func_id]);
}

/* An inlined body's poll that ran on from its start (or an await) into
 * another await's resume code (an entry flagged RESUMED while its own
 * frame is on top): the same poll, not a second one. A poll of another
 * instance is told apart by its host's entry, which closes this frame
 * (hosts are probed: src/elf/pollfn_inlined.c). The future is not
 * compared: its register is only sure at the dispatch, not on a run-on. */
static bool continues_inlined_poll(const struct poll_builder *b, const struct thread_stack *t,
				   const struct trace_event *e)
{
	const struct frame *top = t->depth ? &t->frames[t->depth - 1] : NULL;

	return (b->functions[e->func_id].flags & TRACE_FUNCTION_INLINED) && (e->flags & TRACE_EVENT_RESUMED) && top &&
	       top->func_id == e->func_id && top->sp == e->sp;
}

static int push_frame(struct poll_builder *b, struct thread_stack *t, const struct trace_event *e)
{
	const struct trace_function *fn = &b->functions[e->func_id];
	struct frame *f, *parent;

	/* Frames below the event's stack pointer are gone whatever it is (their
	 * exits were lost: a recording that outran its buffers); closing them
	 * first lets a resumed body find its own frame on top again. */
	close_unwound(b, t, e->sp, e->ts, 0);
	if (continues_inlined_poll(b, t, e))
		return 0;
	close_unwound(b, t, e->sp, e->ts, 1);
	if (ARRAY_RESERVE(t->frames, t->capacity, t->depth + 1))
		return -ENOMEM;
	parent = t->depth ? &t->frames[t->depth - 1] : NULL;
	f = &t->frames[t->depth++];
	f->sp = e->sp;
	f->start = e->ts;
	f->future = fn->self_arg == 1 ? e->arg1 : e->arg0;
	f->func_id = e->func_id;
	f->cpu = e->cpu;
	f->runs_tasks = 0;
	place_in_task(b, f, parent);
	if (b->on_hook && is_task_poll(b, f) && (!parent || !is_task_poll(b, parent))) {
		struct hook h = { .event = e, .role = HOOK_TASK_POLL_START, .in_poll = 1,
				  .func_id = f->func_id, .task = f->task, .future = f->future };

		b->on_hook(&h, b->hook_ctx);
	}
	/* after the task-start hook: a consumer's begin sees the new task */
	if (b->on_begin) {
		struct poll p;

		frame_poll(b, t, f, parent, t->depth - 1, &p);
		b->on_begin(&p, b->begin_ctx);
	}
	return 0;
}

static void pop_frame(struct poll_builder *b, struct thread_stack *t, const struct trace_event *e)
{
	close_unwound(b, t, e->sp, e->ts, 0);
	if (!t->depth || t->frames[t->depth - 1].sp != e->sp ||
	    t->frames[t->depth - 1].func_id != e->func_id) {
		/* An inlined body's exit can run twice in one poll (LLVM
		 * interleaves an instruction of its host between two of its
		 * own): the first ended the poll; the second is no orphan. */
		if (!(b->functions[e->func_id].flags & TRACE_FUNCTION_INLINED))
			b->stats.orphan_exits++;
		return;
	}
	close_top(b, t, e->ts, POLL_END_RETURNED,
		  poll_result__decode(&b->functions[e->func_id], e), e);
}

/* A hook (wake, spawn, task allocation or release, drop) is a moment, not
 * a frame: it goes to the hook callback with the task running on its
 * thread. Its stack pointer still shows frames that are gone. */
static void handle_hook(struct poll_builder *b, struct thread_stack *t, const struct trace_event *e)
{
	const struct frame *top;
	struct hook h = { .event = e, .role = b->functions[e->func_id].role };

	close_unwound(b, t, e->sp, e->ts, e->kind == TRACE_EVENT_ENTRY);
	if (h.role == ROLE_WAKE || h.role == ROLE_WAKE_BY_REF) {
		/* async-task's wake calls its wake_by_ref in debug builds */
		h.nested = t->wake_sp && e->sp < t->wake_sp && e->arg0 == t->wake_target;
		if (!h.nested) {
			t->wake_sp = e->sp;
			t->wake_target = e->arg0;
		}
	} else {
		t->wake_sp = 0;
	}
	if (h.role == ROLE_SPAWN) {
		/* tokio::spawn > spawn_inner: an inner call is deeper on the stack
		 * than an outer one still in progress (see poll_builder__add), in
		 * the same poll (polls it ran itself have ended: async-std's
		 * first spawn sets its runtime up). A spawn from a poll that
		 * began after the outer call (its caller went on into an
		 * unprobed executor loop) is a spawn of its own. */
		h.nested = t->spawn_sp && t->depth == t->spawn_depth;
		if (!h.nested) {
			t->spawn_sp = e->sp;
			t->spawn_depth = t->depth;
		}
	}
	top = t->depth ? &t->frames[t->depth - 1] : NULL;
	if (top) {
		h.task = top->task;
		h.future = top->future;
		h.func_id = top->func_id;
		h.in_poll = 1;
	}
	b->stats.hooks++;
	if (b->on_hook)
		b->on_hook(&h, b->hook_ctx);
}

int poll_builder__add(struct poll_builder *b, const struct trace_event *e)
{
	struct thread_stack *t;

	if (e->func_id >= b->function_count ||
	    (e->kind != TRACE_EVENT_ENTRY && e->kind != TRACE_EVENT_EXIT)) {
		b->stats.bad_events++;
		return 0;
	}
	t = thread_of(b, e);
	if (!t)
		return -ENOMEM;
	/* An event no deeper than the open spawn call's entry: that call has
	 * returned (whatever it ran inside, a runtime's set-up polls included,
	 * was deeper). */
	if (t->spawn_sp && e->sp >= t->spawn_sp)
		t->spawn_sp = 0;
	if (b->functions[e->func_id].role != ROLE_POLL) {
		handle_hook(b, t, e);
		return 0;
	}
	t->wake_sp = 0;
	if (e->kind == TRACE_EVENT_ENTRY)
		return push_frame(b, t, e);
	pop_frame(b, t, e);
	return 0;
}

void poll_builder__finish(struct poll_builder *b, uint64_t end_ts)
{
	for (size_t i = 0; b->threads.slots && i <= b->threads.mask; i++) {
		struct thread_stack *t = b->threads.slots[i].value;

		if (!b->threads.slots[i].key)
			continue;
		while (t->depth)
			close_top(b, t, end_ts, POLL_END_UNFINISHED, POLL_RESULT_UNKNOWN, NULL);
	}
}

const struct poll_builder_stats *poll_builder__stats(const struct poll_builder *b)
{
	return &b->stats;
}

void poll_builder__free(struct poll_builder *b)
{
	if (!b)
		return;
	for (size_t i = 0; b->threads.slots && i <= b->threads.mask; i++) {
		struct thread_stack *t = b->threads.slots[i].value;

		if (b->threads.slots[i].key) {
			free(t->frames);
			free(t);
		}
	}
	u64map_free(&b->threads);
	free(b->name_hashes);
	free(b->forwarding);
	free(b);
}

static uint64_t low_bytes(uint64_t word, unsigned offset, unsigned size)
{
	word >>= offset * 8;
	return size >= 8 ? word : word & ((1ULL << (size * 8)) - 1);
}

enum poll_result poll_result__decode(const struct trace_function *fn, const struct trace_event *e)
{
	const struct poll_result_layout *layout = &fn->result;
	unsigned offset = layout->disc_offset, size = layout->disc_size;
	uint64_t value;

	if (layout->mode == RESULT_FROM_STATE) {
		if (!(e->flags & TRACE_EVENT_STATE))
			return POLL_RESULT_UNKNOWN;
		return e->aux == 1 ? POLL_RESULT_READY : e->aux >= 3 ? POLL_RESULT_PENDING : POLL_RESULT_UNKNOWN;
	}
	if (size == 0 || size > 8)
		return POLL_RESULT_UNKNOWN;
	switch (layout->mode) {
	case RESULT_IN_REGS:
		/* Two-register results: bytes 0..7 in the first, 8..15 in the second. */
		if (offset % 8 + size > 8 || offset >= 16)
			return POLL_RESULT_UNKNOWN;
		value = low_bytes(offset < 8 ? e->arg0 : e->arg1, offset % 8, size);
		break;
	case RESULT_IN_MEMORY:
		if (!(e->flags & TRACE_EVENT_ARG1_FROM_MEMORY) || (e->flags & TRACE_EVENT_READ_FAILED))
			return POLL_RESULT_UNKNOWN;
		value = low_bytes(e->arg1, 0, size);
		break;
	default:
		return POLL_RESULT_UNKNOWN;
	}
	return value == layout->pending_value ? POLL_RESULT_PENDING : POLL_RESULT_READY;
}

const char *poll_result__name(enum poll_result result)
{
	switch (result) {
	case POLL_RESULT_READY: return "Ready";
	case POLL_RESULT_PENDING: return "Pending";
	default: return "?";
	}
}

struct trace_pass {
	struct poll_builder *builder;
	struct consumer_set consumers;
	uint64_t last_ts;
};

static void pass_poll(const struct poll *p, void *ctx)
{
	consumer_set__poll(&((const struct trace_pass *)ctx)->consumers, p);
}

static void pass_poll_begin(const struct poll *p, void *ctx)
{
	consumer_set__poll_begin(&((const struct trace_pass *)ctx)->consumers, p);
}

static void pass_hook(const struct hook *h, void *ctx)
{
	consumer_set__hook(&((const struct trace_pass *)ctx)->consumers, h);
}

int trace_pass__new(struct trace_pass **out, const struct trace_function *functions, size_t function_count,
		    const struct trace_consumer *consumers, size_t count)
{
	struct consumer_set set;
	struct trace_pass *r;
	int err = consumer_set__init(&set, consumers, count);

	if (err)
		return err;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->consumers = set;
	r->builder = poll_builder__new(functions, function_count, pass_poll, r);
	if (!r->builder) {
		free(r);
		return -ENOMEM;
	}
	/* Unasked-for callbacks cost nothing: the builder skips them. */
	if (r->consumers.hooks)
		poll_builder__set_hook_callback(r->builder, pass_hook, r);
	if (r->consumers.begins)
		poll_builder__set_begin_callback(r->builder, pass_poll_begin, r);
	*out = r;
	return 0;
}

int trace_pass__add(struct trace_pass *r, const struct trace_event *event)
{
	if (event->ts > r->last_ts)
		r->last_ts = event->ts;
	return poll_builder__add(r->builder, event);
}

void trace_pass__finish(struct trace_pass *r, struct poll_builder_stats *stats)
{
	poll_builder__finish(r->builder, r->last_ts);
	if (stats)
		*stats = *poll_builder__stats(r->builder);
}

void trace_pass__free(struct trace_pass *r)
{
	if (!r)
		return;
	poll_builder__free(r->builder);
	free(r);
}

static int pass_event(const struct trace_event *event, void *ctx)
{
	return trace_pass__add(ctx, event);
}

static int pass_on_this_thread(const struct trace_file *trace, const struct trace_consumer *consumers,
			       size_t count, struct poll_builder_stats *stats)
{
	struct trace_pass *r;
	int err = trace_pass__new(&r, trace->functions, trace->function_count, consumers, count);

	if (err)
		return err;
	err = trace_file__for_each_event(trace, pass_event, r);
	if (!err)
		trace_pass__finish(r, stats);
	else if (stats)
		*stats = *poll_builder__stats(r->builder);
	trace_pass__free(r);
	return err;
}

int trace_file__pass_threaded(const struct trace_file *trace, const struct trace_consumer *consumers, size_t count,
			      struct poll_builder_stats *stats)
{
	struct trace_pipeline *pipeline;
	struct trace_consumer front;
	int err = trace_pipeline__new(&pipeline, consumers, count, &front);

	if (err == -EAGAIN)
		return pass_on_this_thread(trace, consumers, count, stats);
	if (err)
		return err;
	err = pass_on_this_thread(trace, &front, 1, stats);
	trace_pipeline__finish(pipeline);
	return err;
}

int trace_file__pass(const struct trace_file *trace, const struct trace_consumer *consumers, size_t count,
		     struct poll_builder_stats *stats)
{
	if (trace->event_count >= PASS_THREADED_MIN_EVENTS && sysconf(_SC_NPROCESSORS_ONLN) > 1)
		return trace_file__pass_threaded(trace, consumers, count, stats);
	return pass_on_this_thread(trace, consumers, count, stats);
}

int trace_file__replay_polls(const struct trace_file *trace, poll_callback callback, void *ctx,
			     struct poll_builder_stats *stats)
{
	struct trace_consumer c = { .poll = callback, .ctx = ctx };

	return trace_file__pass(trace, &c, 1, stats);
}

const char *poll_end__name(enum poll_end end_kind)
{
	return end_kind == POLL_END_UNWOUND ? "unwound" : end_kind == POLL_END_UNFINISHED ? "unfinished" : "returned";
}
