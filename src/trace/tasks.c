#include "trace/tasks.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/array.h"
#include "util/hash.h"

#include "trace/tasks_private.h"

static bool is_task_fn(const struct task_model *m, uint32_t func_id)
{
	return func_id < m->trace->function_count && m->trace->functions[func_id].context == CONTEXT_TASK;
}

/* A task's polls, wakes and hooks come in runs: one remembered key saves
 * most lookups (live_tasks only ever gains or replaces keys). */
struct task *tasks_live(struct task_model *m, uint64_t key)
{
	uintptr_t index;

	if (key && key == m->cached_key)
		return &m->tasks[m->cached_index - 1];
	index = (uintptr_t)u64map_get(&m->live_tasks, key);
	if (!index)
		return NULL;
	m->cached_key = key;
	m->cached_index = index;
	return &m->tasks[index - 1];
}

/* A slot for a new task: a folded one's, or the next. Returns its index,
 * or SIZE_MAX when out of memory. */
static size_t task_slot(struct task_model *m)
{
	size_t index = m->free_tasks;

	if (index) {
		m->free_tasks = m->tasks[index - 1].own_nodes;
		return index - 1;
	}
	if (ARRAY_RESERVE(m->tasks, m->task_capacity, m->task_count + 1))
		return SIZE_MAX;
	return m->task_count++;
}

static struct task *new_task(struct task_model *m, uint64_t key, uint64_t ptr, uint64_t created)
{
	bool folding = m->flags & TASK_MODEL_FOLD;
	uintptr_t previous = folding ? 0 : (uintptr_t)u64map_get(&m->latest_tasks, key);
	size_t index = task_slot(m);
	struct task *t;

	/* Folding, nothing looks tasks up by time: no latest_tasks. */
	if (index == SIZE_MAX || u64map_put(&m->live_tasks, key, (void *)(uintptr_t)(index + 1)) ||
	    (!folding && u64map_put(&m->latest_tasks, key, (void *)(uintptr_t)(index + 1)))) {
		m->err = -ENOMEM;
		return NULL;
	}
	if (key == m->cached_key)
		m->cached_index = index + 1;
	t = &m->tasks[index];
	memset(t, 0, sizeof(*t));
	t->previous = (uint32_t)previous;
	t->id = (uint32_t)(index + 1);
	t->ptr = ptr;
	t->root_func = t->name_func = t->park_func = t->poll_park_func = NO_FUNCTION;
	t->first_node = NO_FUNCTION;
	t->created = created;
	return t;
}

/* The task a poll or hook belongs to: by the runtime's pointer or, outside
 * tasks, the block_on running on the thread (its root future may be
 * reached through forwarding wrappers such as `&mut F`, so the thread, not
 * the future, names it; a finished one is followed by the next). Created
 * when first seen (spawned before tracing, or no allocation hook). */
struct task *tasks_for(struct task_model *m, uint64_t ptr, uint32_t tid, uint64_t ts)
{
	uint64_t key = ptr ? ptr : (uint64_t)tid | PSEUDO_TASK_KEY;
	struct task *t = tasks_live(m, key);

	if (t && (ptr || t->state == TASK_PENDING))
		return t;
	return new_task(m, key, ptr, ts);
}

static void adopt_spawn(struct task_model *m, struct task *t, uint32_t tid);

/* A task whose poll chain starts: a finished task at the same address is
 * gone, its memory reused (runtimes without allocation hooks, like
 * futures' LocalPool, show reuse only this way). A new task created here,
 * not by an allocation hook, takes the oldest spawn no allocation took. */
static void start_task_poll(struct task_model *m, const struct hook *h)
{
	struct task *t = tasks_live(m, h->task);

	if (!h->task || (t && t->state == TASK_PENDING))
		return;
	if (t)
		tasks_release(m, t); /* its memory holds the new task */
	t = new_task(m, h->task, h->task, h->event->ts);
	if (t)
		adopt_spawn(m, t, h->event->tid);
}

void tasks_end(struct task *t, enum task_state state, uint64_t ts)
{
	if (t->state != TASK_PENDING)
		return;
	t->state = state;
	t->ended = ts;
}

static uint64_t task_key(const struct task *t)
{
	return t->ptr; /* only runtime tasks are released: block_on roots are not */
}

/* Nothing can refer to the task again: its counts go to the folded sums,
 * its waiting wakes, nodes and slot are freed for reuse. */
static void fold(struct task_model *m, struct task *t)
{
	uint32_t index = t->id;
	uintptr_t live = (uintptr_t)u64map_get(&m->live_tasks, task_key(t));

	m->folded_self_wakes += t->self_wakes;
	m->folded_wakes_after_end += t->wakes_after_end;
	while (t->waiting_head) {
		uint32_t w = t->waiting_head;

		t->waiting_head = m->wakes[w - 1].next;
		m->wakes[w - 1].next = m->free_wakes;
		m->free_wakes = w;
	}
	while (t->own_nodes) {
		uint32_t at = t->own_nodes - 1;
		struct tree_node *n = &m->nodes[at];

		t->own_nodes = n->next_own;
		u64map_remove(&m->node_index, tasks_mix(t->id, n->path));
		n->func_id = NO_FUNCTION;
		n->next_own = m->free_nodes;
		m->free_nodes = at + 1;
	}
	if (live == index)
		u64map_remove(&m->live_tasks, task_key(t));
	if (m->cached_index == index)
		m->cached_key = 0;
	memset(t, 0, sizeof(*t)); /* id 0: a free slot */
	t->own_nodes = m->free_tasks;
	m->free_tasks = index;
	m->tasks_folded++;
}

void tasks_release(struct task_model *m, struct task *t)
{
	t->freed = 1;
	if ((m->flags & TASK_MODEL_FOLD) && !t->live_futures && t->ptr && t->id)
		fold(m, t);
}

void tasks_count_future(struct task_model *m, struct future_slot *slot, uint32_t id)
{
	if (slot->task == id)
		return; /* the same task's again: its count stands (and it is in use) */
	if (slot->task && slot->task <= m->task_count) {
		struct task *old = &m->tasks[slot->task - 1];

		if (old->live_futures && !--old->live_futures && old->freed)
			tasks_release(m, old);
	}
	slot->task = id;
	if (id)
		m->tasks[id - 1].live_futures++;
}

struct tree_node *tasks_new_node(struct task_model *m, struct task *t, uint32_t *index)
{
	struct tree_node *n;

	if (m->free_nodes) {
		*index = m->free_nodes - 1;
		m->free_nodes = m->nodes[*index].next_own;
	} else {
		if (ARRAY_RESERVE(m->nodes, m->node_capacity, m->node_count + 1))
			return NULL;
		*index = (uint32_t)m->node_count++;
	}
	n = &m->nodes[*index];
	memset(n, 0, sizeof(*n));
	n->next_own = t->own_nodes;
	t->own_nodes = *index + 1;
	return n;
}

/* The deepest .await reached during the poll that just ended is where the
 * task parked, if it ended Pending. */
void tasks_commit_park(struct task *t)
{
	if (t->poll_park_func != NO_FUNCTION && t->last_pending) {
		t->park_func = t->poll_park_func;
		t->park_line = t->poll_park_line;
	}
	t->poll_park_func = NO_FUNCTION;
	t->poll_park_depth = 0;
}

static void on_task_poll(struct task_model *m, const struct poll *p)
{
	struct task *t = tasks_for(m, p->task, p->tid, p->start);

	if (!t)
		return;
	if (!t->polls)
		t->first_poll = p->start;
	t->polls++;
	t->busy_ns += p->end - p->start;
	t->last_seen = p->end;
	tasks_answer_wakes(m, t, p);
	tasks_commit_park(t);
}

static void on_poll(const struct poll *p, void *ctx)
{
	struct task_model *m = ctx;
	uint8_t context = m->trace->functions[p->func_id].context;

	if (m->err || context == CONTEXT_FUNCTION || p->forwarding)
		return;
	if (context != CONTEXT_TASK)
		tasks_on_future_poll(m, p);
	else if (p->parent_func == UINT32_MAX || !is_task_fn(m, p->parent_func))
		on_task_poll(m, p); /* the top of a task's chain of task polls */
}

/* The task running where a hook fired. */
static struct task *current_task(struct task_model *m, const struct hook *h)
{
	if (!h->in_poll)
		return NULL;
	return tasks_for(m, h->task, h->event->tid, h->event->ts);
}

/* A spawn call: the task its thread allocates next is the spawned one
 * (tokio, async-task). Runtimes that allocate later, elsewhere (futures'
 * LocalPool) leave it unconsumed, and their new tasks adopt the oldest
 * such spawn. */
/* The thread's latest spawn while no task has taken it, or NULL. */
static struct spawn *open_spawn(struct task_model *m, uint32_t tid)
{
	uintptr_t index = (uintptr_t)u64map_get(&m->spawning, (uint64_t)tid + 1);
	struct spawn *s;

	if (!index || index - 1 < m->spawn_base)
		return NULL; /* none, or consumed and dropped from the queue */
	s = &m->spawn_queue[index - 1 - m->spawn_base];
	return s->consumed ? NULL : s;
}

/* Consumed spawns at the queue's head are gone for good: drop them once
 * they are half of it, so the queue follows the spawns not yet taken. */
static void compact_spawns(struct task_model *m)
{
	while (m->spawn_head < m->spawn_count && m->spawn_queue[m->spawn_head].consumed)
		m->spawn_head++;
	if (m->spawn_head < 1024 || m->spawn_head * 2 < m->spawn_count)
		return;
	memmove(m->spawn_queue, m->spawn_queue + m->spawn_head,
		(m->spawn_count - m->spawn_head) * sizeof(*m->spawn_queue));
	m->spawn_base += m->spawn_head;
	m->spawn_count -= m->spawn_head;
	m->spawn_head = 0;
}

static void on_spawn(struct task_model *m, const struct hook *h)
{
	struct task *parent = current_task(m, h);
	struct spawn *s;

	/* Public spawns call inner ones (tokio::spawn > spawn_inner): the
	 * outermost call, whose return address is in user code, is the site.
	 * Only a call right after it is inner: a spawn left open (a runtime
	 * that allocates elsewhere) and a later, deeper one are two spawns. */
	if (open_spawn(m, h->event->tid) && h->nested)
		return;
	compact_spawns(m);
	if (ARRAY_RESERVE(m->spawn_queue, m->spawn_capacity, m->spawn_count + 1) ||
	    u64map_put(&m->spawning, (uint64_t)h->event->tid + 1,
		       (void *)(uintptr_t)(m->spawn_base + m->spawn_count + 1))) {
		m->err = -ENOMEM;
		return;
	}
	s = &m->spawn_queue[m->spawn_count++];
	*s = (struct spawn){
		.ts = h->event->ts,
		.site = h->event->flags & TRACE_EVENT_RETURN_ADDRESS ? h->event->aux : 0,
		.parent = parent ? parent->id : 0,
		.tid = h->event->tid,
	};
}

static void take_spawn(struct task_model *m, struct task *t, struct spawn *s)
{
	t->spawn_site = s->site;
	t->parent = s->parent;
	s->consumed = 1;
	m->spawns++;
}

/* Where tasks are allocated through a hook, another thread's latest spawn
 * is still in flight: its allocation is coming, on that thread, and the
 * spawned task is that one, not a task first seen at its poll here. */
static bool in_flight_elsewhere(struct task_model *m, const struct spawn *s, uint32_t tid)
{
	return m->allocations_seen && s->tid != tid && open_spawn(m, s->tid) == s;
}

/* The oldest spawn no allocation took (at most one in flight per thread
 * is passed over). */
static void adopt_spawn(struct task_model *m, struct task *t, uint32_t tid)
{
	while (m->spawn_head < m->spawn_count && m->spawn_queue[m->spawn_head].consumed)
		m->spawn_head++;
	for (size_t i = m->spawn_head; i < m->spawn_count; i++) {
		struct spawn *s = &m->spawn_queue[i];

		if (s->ts > t->created)
			return;
		if (!s->consumed && !in_flight_elsewhere(m, s, tid)) {
			take_spawn(m, t, s);
			return;
		}
	}
}

/* A task allocation: a new instance, also where an old task's memory is
 * reused. The spawn call in progress on the thread, if any, made it. */
static void on_task_new(struct task_model *m, const struct hook *h)
{
	struct spawn *open = open_spawn(m, h->event->tid);
	struct task *old = tasks_live(m, h->event->arg0), *t;

	if (!h->event->arg0)
		return;
	m->allocations_seen = true;
	if (old) {
		tasks_end(old, old->last_pending ? TASK_CANCELLED : TASK_COMPLETED, h->event->ts);
		tasks_release(m, old);
	}
	t = new_task(m, h->event->arg0, h->event->arg0, h->event->ts);
	if (!t)
		return;
	if (open)
		take_spawn(m, t, open);
}

static void on_task_free(struct task_model *m, const struct hook *h)
{
	struct task *t = tasks_live(m, h->event->arg0);

	if (!t)
		return;
	tasks_end(t, t->last_pending ? TASK_CANCELLED : TASK_COMPLETED, h->event->ts);
	tasks_release(m, t);
}

static void on_hook(const struct hook *h, void *ctx)
{
	struct task_model *m = ctx;

	if (m->err)
		return;
	switch (h->role) {
	case ROLE_WAKE:
	case ROLE_WAKE_BY_REF:
		if (!h->nested)
			tasks_on_wake(m, h, current_task(m, h));
		break;
	case ROLE_SPAWN: on_spawn(m, h); break;
	case ROLE_TASK_NEW:
		if (h->event->kind == TRACE_EVENT_EXIT)
			on_task_new(m, h);
		break;
	case ROLE_TASK_FREE: on_task_free(m, h); break;
	case ROLE_DROP: tasks_on_drop(m, h); break;
	case HOOK_TASK_POLL_START: start_task_poll(m, h); break;
	default: break;
	}
}

/* Per function: its name's hash (monomorphised copies of one generic
 * share it), computed once, not per poll. */
static int hash_names(struct task_model *m)
{
	m->name_hashes = calloc(m->trace->function_count + 1, sizeof(*m->name_hashes));
	if (!m->name_hashes)
		return -ENOMEM;
	for (size_t i = 0; i < m->trace->function_count; i++)
		m->name_hashes[i] = hash_string(m->trace->functions[i].name);
	return 0;
}

int task_model__init(struct task_model *m, const struct trace_file *trace, unsigned flags)
{
	int err;

	memset(m, 0, sizeof(*m));
	m->trace = trace;
	m->flags = flags;
	err = hash_names(m);
	if (!err)
		err = tasks_note_dropped_types(m);
	if (err)
		task_model__free(m);
	return err;
}

struct trace_consumer task_model__consumer(struct task_model *m)
{
	return (struct trace_consumer){ .poll = on_poll, .hook = on_hook, .ctx = m };
}

int task_model__finish(struct task_model *m)
{
	int err = m->err;

	if (!err)
		err = tasks_link_tree(m);
	if (!err)
		tasks_name(m);
	return err;
}

int task_model__build(struct task_model *m, const struct trace_file *trace, unsigned flags)
{
	struct trace_consumer consumer;
	int err = task_model__init(m, trace, flags);

	if (err)
		return err;
	consumer = task_model__consumer(m);
	err = trace_file__pass(trace, &consumer, 1, &m->stats);
	if (!err)
		err = task_model__finish(m);
	if (err)
		task_model__free(m);
	return err;
}

void task_model__free(struct task_model *m)
{
	free(m->tasks);
	free(m->nodes);
	free(m->cancellations);
	free(m->name_hashes);
	tasks_free_wakes(m);
	tasks_free_futures(m);
	u64map_free(&m->live_tasks);
	u64map_free(&m->latest_tasks);
	u64map_free(&m->dropped_types);
	u64map_free(&m->node_index);
	u64map_free(&m->spawning);
	free(m->spawn_queue);
	memset(m, 0, sizeof(*m));
}

void task_model__warnings(const struct task_model *m, uint64_t long_polls, struct task_warnings *w)
{
	memset(w, 0, sizeof(*w));
	w->long_polls = long_polls;
	w->self_wakes = m->folded_self_wakes;
	w->wakes_after_end = m->folded_wakes_after_end;
	for (size_t i = 0; i < m->task_count; i++) {
		const struct task *t = &m->tasks[i];

		w->self_wakes += t->self_wakes;
		w->wakes_after_end += t->wakes_after_end;
		if (t->state != TASK_PENDING)
			continue;
		if (t->waiting_head)
			w->woken_not_polled++;
		else if (t->last_pending && t->ptr)
			w->never_woken++;
	}
}

const struct task *task_model__find(const struct task_model *m, uint64_t ptr, uint32_t tid, uint64_t ts)
{
	uint64_t key = ptr ? ptr : (uint64_t)tid | PSEUDO_TASK_KEY;
	uintptr_t index = (uintptr_t)u64map_get(&m->latest_tasks, key);

	/* Newest first: the first one created at or before ts. */
	while (index && m->tasks[index - 1].created > ts)
		index = m->tasks[index - 1].previous;
	return index ? &m->tasks[index - 1] : NULL;
}

bool task_model__on_task_track(const struct task_model *m, const struct poll *p)
{
	uint8_t context = m->trace->functions[p->func_id].context;

	return context != CONTEXT_TASK && context != CONTEXT_FUNCTION && !p->forwarding;
}

const char *task_model__task_name(const struct task_model *m, const struct task *t)
{
	uint32_t func = task_model__name_func(m, t);

	return func == NO_FUNCTION ? "?" : m->trace->functions[func].name;
}

void task_model__short_label(const struct task_model *m, const struct task *t, char *buf, size_t len)
{
	snprintf(buf, len, "task %u: %s", t->id, task_model__task_name(m, t));
}

void task_model__label(const struct task_model *m, const struct task *t, char *buf, size_t len)
{
	snprintf(buf, len, "task %u: %s (%s)", t->id,
		 t->name_func == NO_FUNCTION ? "?" : m->trace->functions[t->name_func].name,
		 task_state__name(t->state));
}

const char *task_state__name(enum task_state state)
{
	switch (state) {
	case TASK_COMPLETED: return "completed";
	case TASK_CANCELLED: return "cancelled";
	default: return "pending";
	}
}

