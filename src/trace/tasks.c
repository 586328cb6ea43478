#include "trace/tasks.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/array.h"
#include "util/hash.h"

#define PSEUDO_TASK_KEY (1ULL << 63) /* block_on roots are keyed by their thread */

/* A live future instance: one state machine at one address, from its first
 * poll to its Ready, its drop, or an unwinding panic. */
struct future_slot {
	uint32_t node;
	uint32_t root_of;       /* task id when it is that task's root future */
	uint64_t pending_since; /* end of its last Pending poll, 0 none */
	uint32_t ready_node;    /* ended by a Ready, not yet dropped: its node + 1 */
};



static uint64_t mix(uint64_t a, uint64_t b)
{
	uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ULL)) * 0xbf58476d1ce4e5b9ULL;

	return (h ^ (h >> 31)) | 1;
}

static uint64_t name_hash(const struct task_model *m, uint32_t func_id)
{
	return hash_string(m->trace->functions[func_id].name);
}

static bool is_task_fn(const struct task_model *m, uint32_t func_id)
{
	return func_id < m->trace->function_count && m->trace->functions[func_id].context == CONTEXT_TASK;
}

static struct task *live_task(struct task_model *m, uint64_t key)
{
	uintptr_t index = (uintptr_t)u64map_get(&m->live_tasks, key);

	return index ? &m->tasks[index - 1] : NULL;
}

static struct task *new_task(struct task_model *m, uint64_t key, uint64_t ptr, uint64_t created)
{
	struct task *t;

	uintptr_t previous = (uintptr_t)u64map_get(&m->latest_tasks, key);

	if (ARRAY_RESERVE(m->tasks, m->task_capacity, m->task_count + 1) ||
	    u64map_put(&m->live_tasks, key, (void *)(uintptr_t)(m->task_count + 1)) ||
	    u64map_put(&m->latest_tasks, key, (void *)(uintptr_t)(m->task_count + 1))) {
		m->err = -ENOMEM;
		return NULL;
	}
	t = &m->tasks[m->task_count];
	memset(t, 0, sizeof(*t));
	t->previous = (uint32_t)previous;
	t->id = (uint32_t)++m->task_count;
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
static struct task *task_for(struct task_model *m, uint64_t ptr, uint32_t tid, uint64_t ts)
{
	uint64_t key = ptr ? ptr : (uint64_t)tid | PSEUDO_TASK_KEY;
	struct task *t = live_task(m, key);

	if (t && (ptr || t->state == TASK_PENDING))
		return t;
	return new_task(m, key, ptr, ts);
}

static void adopt_spawn(struct task_model *m, struct task *t);

/* A task whose poll chain starts: a finished task at the same address is
 * gone, its memory reused (runtimes without allocation hooks, like
 * futures' LocalPool, show reuse only this way). A new task created here,
 * not by an allocation hook, takes the oldest spawn no allocation took. */
static void start_task_poll(struct task_model *m, const struct hook *h)
{
	struct task *t = live_task(m, h->task);

	if (!h->task || (t && t->state == TASK_PENDING))
		return;
	t = new_task(m, h->task, h->task, h->event->ts);
	if (t)
		adopt_spawn(m, t);
}

static void end_task(struct task *t, enum task_state state, uint64_t ts)
{
	if (t->state != TASK_PENDING)
		return;
	t->state = state;
	t->ended = ts;
}

static unsigned log2_bucket(uint64_t ns)
{
	unsigned bucket = 0;

	while (ns > 1 && bucket < LATENCY_BUCKETS - 1) {
		ns >>= 1;
		bucket++;
	}
	return bucket;
}

/* The wakes waiting for this task poll are answered by it. Wakes during
 * the poll itself (after its start) wait for the next one. */
static void answer_wakes(struct task_model *m, struct task *t, const struct poll *p)
{
	bool first = true;

	while (t->waiting_head) {
		struct wake *w = &m->wakes[t->waiting_head - 1];

		if (w->ts > p->start)
			break;
		w->poll_ts = p->start;
		w->poll_tid = p->tid;
		m->wake_latency[log2_bucket(p->start - w->ts)]++;
		if (first)
			t->sched_wait_ns += p->start - w->ts;
		first = false;
		t->waiting_head = w->next;
	}
	if (!t->waiting_head)
		t->waiting_tail = 0;
}

/* The deepest .await reached during the poll that just ended is where the
 * task parked, if it ended Pending. */
static void commit_park(struct task *t)
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
	struct task *t = task_for(m, p->task, p->tid, p->start);

	if (!t)
		return;
	if (!t->polls)
		t->first_poll = p->start;
	t->polls++;
	t->busy_ns += p->end - p->start;
	t->last_seen = p->end;
	answer_wakes(m, t, p);
	commit_park(t);
}

static struct tree_node *node_for(struct task_model *m, const struct task *t, const struct poll *p)
{
	uint64_t key = mix(t->id, p->path);
	uintptr_t index = (uintptr_t)u64map_get(&m->node_index, key);
	struct tree_node *n;

	if (index)
		return &m->nodes[index - 1];
	if (ARRAY_RESERVE(m->nodes, m->node_capacity, m->node_count + 1) ||
	    u64map_put(&m->node_index, key, (void *)(uintptr_t)(m->node_count + 1))) {
		m->err = -ENOMEM;
		return NULL;
	}
	n = &m->nodes[m->node_count++];
	memset(n, 0, sizeof(*n));
	n->task = t->id;
	n->func_id = p->func_id;
	n->path = p->path;
	n->parent_path = p->parent_path;
	n->parent = n->first_child = n->next = NO_FUNCTION;
	n->first_start = p->start;
	return n;
}

static void count_park(struct tree_node *n, uint32_t line)
{
	unsigned i, least = 0;

	for (i = 0; i < 4; i++) {
		if (n->park_lines[i] == line || !n->park_counts[i]) {
			n->park_lines[i] = line;
			n->park_counts[i]++;
			return;
		}
		if (n->park_counts[i] < n->park_counts[least])
			least = i;
	}
	n->park_lines[least] = line; /* more than four lines: keep the busiest */
	n->park_counts[least] = 1;
}

/* Where a Pending parked: the await line its state names. The task keeps
 * the deepest one of its running poll. */
static void note_park(struct task_model *m, struct task *t, struct tree_node *n, const struct poll *p)
{
	uint32_t line;

	if (!p->has_state)
		return;
	line = trace_function__await_line(&m->trace->functions[p->func_id], p->state);
	if (!line)
		return;
	count_park(n, line);
	if (t->poll_park_func == NO_FUNCTION || p->depth > t->poll_park_depth) {
		t->poll_park_func = p->func_id;
		t->poll_park_line = line;
		t->poll_park_depth = p->depth;
	}
}

static struct future_slot *future_slot(struct task_model *m, const struct poll *p, struct tree_node *n)
{
	uint64_t key = mix(p->future, name_hash(m, p->func_id));
	struct future_slot *slot = u64map_get(&m->futures, key);

	if (slot && slot->node == (uint32_t)(n - m->nodes))
		return slot;
	/* Polled again after its Ready with no drop between, though its drop
	 * glue is probed: a fused future (join!'s MaybeDone), the same one. */
	if (slot && slot->ready_node == (uint32_t)(n - m->nodes) + 1 &&
	    u64map_get(&m->dropped_types, name_hash(m, p->func_id) | 1)) {
		slot->node = slot->ready_node - 1;
		slot->ready_node = 0;
		return slot;
	}
	if (!slot) {
		slot = calloc(1, sizeof(*slot));
		if (!slot || u64map_put(&m->futures, key, slot)) {
			free(slot);
			m->err = -ENOMEM;
			return NULL;
		}
	}
	/* A new instance (also one reusing a finished one's address). */
	slot->node = (uint32_t)(n - m->nodes);
	slot->root_of = 0;
	slot->pending_since = 0;
	slot->ready_node = 0;
	n->instances++;
	return slot;
}

/* u64map cannot delete: an ended slot points nowhere. */
static void end_future(struct task_model *m, const struct poll *p, bool ready)
{
	uint64_t key = mix(p->future, name_hash(m, p->func_id));
	struct future_slot *slot = u64map_get(&m->futures, key);

	if (!slot)
		return;
	slot->ready_node = ready && slot->node != NO_FUNCTION ? slot->node + 1 : 0;
	slot->node = NO_FUNCTION;
}

static void on_future_poll(struct task_model *m, const struct poll *p)
{
	struct task *t = task_for(m, p->task, p->tid, p->start);
	struct tree_node *n = t ? node_for(m, t, p) : NULL;
	struct future_slot *slot = n ? future_slot(m, p, n) : NULL;

	if (!slot)
		return;
	n->polls++;
	n->busy_ns += p->end - p->start;
	if (slot->pending_since && p->start >= slot->pending_since)
		n->wait_ns += p->start - slot->pending_since;
	slot->pending_since = 0;
	if (!t->polls && !t->first_poll)
		t->first_poll = p->start;
	t->last_seen = p->end;
	if (p->end_kind == POLL_END_UNWOUND) {
		n->unwound++;
		end_future(m, p, false);
	} else if (p->result == POLL_RESULT_READY) {
		n->ready++;
		if (p->end > n->last_ready)
			n->last_ready = p->end;
		end_future(m, p, true);
	} else if (p->result == POLL_RESULT_PENDING) {
		n->pending++;
		slot->pending_since = p->end;
		note_park(m, t, n, p);
	}
	if (p->parent_path)
		return;
	/* The task's root future: its result is the task's. A block_on's
	 * task is created by the first poll to end, an inner one: its root's
	 * poll began earlier. */
	if (p->start < t->created)
		t->created = p->start;
	if (p->start < t->first_poll)
		t->first_poll = p->start;
	slot->root_of = t->id;
	t->root_func = p->func_id;
	if (t->first_node == NO_FUNCTION)
		t->first_node = (uint32_t)(n - m->nodes);
	t->last_pending = p->result == POLL_RESULT_PENDING;
	if (p->result == POLL_RESULT_READY)
		end_task(t, TASK_COMPLETED, p->end);
	if (!p->task) { /* a block_on root has no task poll to count */
		t->polls++;
		t->busy_ns += p->end - p->start;
		commit_park(t);
	}
}

static void on_poll(const struct poll *p, void *ctx)
{
	struct task_model *m = ctx;
	uint8_t context = m->trace->functions[p->func_id].context;

	if (m->err || context == CONTEXT_FUNCTION || p->forwarding)
		return;
	if (context != CONTEXT_TASK)
		on_future_poll(m, p);
	else if (p->parent_func == UINT32_MAX || !is_task_fn(m, p->parent_func))
		on_task_poll(m, p); /* the top of a task's chain of task polls */
}

/* The task running where a hook fired. */
static struct task *current_task(struct task_model *m, const struct hook *h)
{
	if (!h->in_poll)
		return NULL;
	return task_for(m, h->task, h->event->tid, h->event->ts);
}

static void on_wake(struct task_model *m, const struct hook *h)
{
	struct task *target = live_task(m, h->event->arg0), *waker = current_task(m, h);
	struct wake *w;

	if (!target) {
		m->wakes_unknown++;
		return;
	}
	if (ARRAY_RESERVE(m->wakes, m->wake_capacity, m->wake_count + 1)) {
		m->err = -ENOMEM;
		return;
	}
	w = &m->wakes[m->wake_count++];
	*w = (struct wake){
		.ts = h->event->ts, .tid = h->event->tid, .target = target->id,
		.waker = waker ? waker->id : 0, .by_ref = h->role == ROLE_WAKE_BY_REF,
		.self = waker == target,
	};
	target->wakes++;
	target->wakes_by_ref += w->by_ref;
	target->self_wakes += w->self;
	if (target->state != TASK_PENDING)
		target->wakes_after_end++;
	else if (target->waiting_tail)
		m->wakes[target->waiting_tail - 1].next = (uint32_t)m->wake_count;
	else
		target->waiting_head = (uint32_t)m->wake_count;
	if (target->state == TASK_PENDING)
		target->waiting_tail = (uint32_t)m->wake_count;
}

/* A spawn call: the task its thread allocates next is the spawned one
 * (tokio, async-task). Runtimes that allocate later, elsewhere (futures'
 * LocalPool) leave it unconsumed, and their new tasks adopt the oldest
 * such spawn. */
static void on_spawn(struct task_model *m, const struct hook *h)
{
	uintptr_t open = (uintptr_t)u64map_get(&m->spawning, (uint64_t)h->event->tid + 1);
	struct task *parent = current_task(m, h);
	struct spawn *s;

	/* Public spawns call inner ones (tokio::spawn > spawn_inner): the
	 * outermost call, whose return address is in user code, is the site.
	 * Only a call right after it is inner: a spawn left open (a runtime
	 * that allocates elsewhere) and a later, deeper one are two spawns. */
	if (open && !m->spawn_queue[open - 1].consumed && h->nested)
		return;
	if (ARRAY_RESERVE(m->spawn_queue, m->spawn_capacity, m->spawn_count + 1) ||
	    u64map_put(&m->spawning, (uint64_t)h->event->tid + 1, (void *)(uintptr_t)(m->spawn_count + 1))) {
		m->err = -ENOMEM;
		return;
	}
	s = &m->spawn_queue[m->spawn_count++];
	*s = (struct spawn){
		.ts = h->event->ts,
		.site = h->event->flags & TRACE_EVENT_RETURN_ADDRESS ? h->event->aux : 0,
		.parent = parent ? parent->id : 0,
	};
}

static void take_spawn(struct task_model *m, struct task *t, struct spawn *s)
{
	t->spawn_site = s->site;
	t->parent = s->parent;
	s->consumed = 1;
	m->spawns++;
}

static void adopt_spawn(struct task_model *m, struct task *t)
{
	while (m->spawn_head < m->spawn_count && m->spawn_queue[m->spawn_head].consumed)
		m->spawn_head++;
	if (m->spawn_head < m->spawn_count && m->spawn_queue[m->spawn_head].ts <= t->created)
		take_spawn(m, t, &m->spawn_queue[m->spawn_head]);
}

/* A task allocation: a new instance, also where an old task's memory is
 * reused. The spawn call in progress on the thread, if any, made it. */
static void on_task_new(struct task_model *m, const struct hook *h)
{
	uintptr_t open = (uintptr_t)u64map_get(&m->spawning, (uint64_t)h->event->tid + 1);
	struct task *old = live_task(m, h->event->arg0), *t;

	if (!h->event->arg0)
		return;
	if (old)
		end_task(old, old->last_pending ? TASK_CANCELLED : TASK_COMPLETED, h->event->ts);
	t = new_task(m, h->event->arg0, h->event->arg0, h->event->ts);
	if (!t)
		return;
	if (open && !m->spawn_queue[open - 1].consumed)
		take_spawn(m, t, &m->spawn_queue[open - 1]);
}

static void on_task_free(struct task_model *m, const struct hook *h)
{
	struct task *t = live_task(m, h->event->arg0);

	if (t)
		end_task(t, t->last_pending ? TASK_CANCELLED : TASK_COMPLETED, h->event->ts);
}

/* A future dropped: the instance at that address ends; cancelled when it
 * never returned Ready (a lost select! branch, an aborted task). */
static void on_drop(struct task_model *m, const struct hook *h)
{
	const struct trace_function *glue = &m->trace->functions[h->event->func_id];
	uint64_t key = mix(h->event->arg0, name_hash(m, glue->target));
	struct future_slot *slot = u64map_get(&m->futures, key);

	if (slot)
		slot->ready_node = 0; /* dropped: a later future here is a new one */
	if (!slot || slot->node == NO_FUNCTION)
		return;
	/* Dropped by its own poll (MaybeDone's Pin::set replaces itself in
	 * place): the instance goes on, its poll is still running. Same
	 * address is not enough: a parent's first field shares its address. */
	if (h->in_poll && h->future == h->event->arg0 && name_hash(m, h->func_id) == name_hash(m, glue->target))
		return;
	if (slot->pending_since) {
		struct tree_node *n = &m->nodes[slot->node];

		n->cancelled++;
		if (ARRAY_RESERVE(m->cancellations, m->cancellation_capacity, m->cancellation_count + 1)) {
			m->err = -ENOMEM;
			return;
		}
		m->cancellations[m->cancellation_count++] =
			(struct cancellation){ h->event->ts, n->task, n->func_id };
		if (slot->root_of)
			end_task(&m->tasks[slot->root_of - 1], TASK_CANCELLED, h->event->ts);
	}
	slot->node = NO_FUNCTION;
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
			on_wake(m, h);
		break;
	case ROLE_SPAWN: on_spawn(m, h); break;
	case ROLE_TASK_NEW:
		if (h->event->kind == TRACE_EVENT_EXIT)
			on_task_new(m, h);
		break;
	case ROLE_TASK_FREE: on_task_free(m, h); break;
	case ROLE_DROP: on_drop(m, h); break;
	case HOOK_TASK_POLL_START: start_task_poll(m, h); break;
	default: break;
	}
}

/* Parents by path, children in order of their first poll. */
static int compare_start(const void *a, const void *b, void *ctx)
{
	const struct tree_node *nodes = ctx;
	uint64_t x = nodes[*(const uint32_t *)a].first_start, y = nodes[*(const uint32_t *)b].first_start;

	return x < y ? -1 : x > y;
}

static int link_tree(struct task_model *m)
{
	uint32_t *order = malloc((m->node_count + 1) * sizeof(*order));

	if (!order)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->node_count; i++)
		order[i] = i;
	qsort_r(order, m->node_count, sizeof(*order), compare_start, m->nodes);
	/* Linking in reverse start order and pushing at the head leaves each
	 * child list in start order. */
	for (size_t k = m->node_count; k-- > 0;) {
		struct tree_node *n = &m->nodes[order[k]];
		uintptr_t parent = n->parent_path ? (uintptr_t)u64map_get(&m->node_index, mix(n->task, n->parent_path)) : 0;

		if (!parent)
			continue;
		n->parent = (uint32_t)(parent - 1);
		n->next = m->nodes[parent - 1].first_child;
		m->nodes[parent - 1].first_child = order[k];
	}
	free(order);
	return 0;
}

/* Futures that runtimes and combinator crates wrap around a spawned
 * future (futures' spawn_with_handle: Remote<CatchUnwind<F>>): a task is
 * named after what they wrap. */
static bool is_library_wrapper(const struct trace_function *fn)
{
	static const char *const crates[] = {
		"<futures_util::", "<futures_lite::", "<futures_core::", "<futures_task::",
		"<futures_executor::", "<async_executor::", "<async_task::", "<async_std::",
		"<tokio::", "<core::", "<alloc::", "<std::",
	};

	if (fn->context != CONTEXT_USER)
		return false;
	for (size_t i = 0; i < sizeof(crates) / sizeof(crates[0]); i++)
		if (!strncmp(fn->name, crates[i], strlen(crates[i])))
			return true;
	return false;
}

static void name_tasks(struct task_model *m)
{
	for (size_t i = 0; i < m->task_count; i++) {
		struct task *t = &m->tasks[i];
		uint32_t n = t->first_node;

		t->name_func = t->root_func;
		if (n == NO_FUNCTION)
			continue;
		while (is_library_wrapper(&m->trace->functions[m->nodes[n].func_id]) &&
		       m->nodes[n].first_child != NO_FUNCTION)
			n = m->nodes[n].first_child;
		t->name_func = m->nodes[n].func_id;
	}
}

/* Future types whose drops are seen (their drop glue is probed). */
static int note_dropped_types(struct task_model *m)
{
	for (size_t i = 0; i < m->trace->function_count; i++) {
		const struct trace_function *fn = &m->trace->functions[i];

		if (fn->role == ROLE_DROP && u64map_put(&m->dropped_types, name_hash(m, fn->target) | 1, (void *)1))
			return -ENOMEM;
	}
	return 0;
}

int task_model__build(struct task_model *m, const struct trace_file *trace)
{
	int err;

	memset(m, 0, sizeof(*m));
	m->trace = trace;
	err = note_dropped_types(m);
	if (!err)
		err = trace_file__replay(trace, on_poll, on_hook, m, &m->stats);
	if (!err)
		err = m->err;
	if (!err)
		err = link_tree(m);
	if (!err)
		name_tasks(m);
	if (err)
		task_model__free(m);
	return err;
}

static void free_values(struct u64map *map)
{
	for (size_t i = 0; map->slots && i <= map->mask; i++)
		if (map->slots[i].key)
			free(map->slots[i].value);
	u64map_free(map);
}

void task_model__free(struct task_model *m)
{
	free(m->tasks);
	free(m->nodes);
	free(m->wakes);
	free(m->cancellations);
	u64map_free(&m->live_tasks);
	u64map_free(&m->latest_tasks);
	u64map_free(&m->dropped_types);
	u64map_free(&m->node_index);
	free_values(&m->futures);
	u64map_free(&m->spawning);
	free(m->spawn_queue);
	memset(m, 0, sizeof(*m));
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

uint32_t tree_node__top_park_line(const struct tree_node *n)
{
	unsigned best = 0;

	for (unsigned i = 1; i < 4; i++)
		if (n->park_counts[i] > n->park_counts[best])
			best = i;
	return n->park_counts[best] ? n->park_lines[best] : 0;
}

static void walk(const struct task_model *m, uint32_t index, unsigned depth,
		 void (*fn)(const struct tree_node *, unsigned, void *), void *ctx)
{
	for (; index != NO_FUNCTION; index = m->nodes[index].next) {
		fn(&m->nodes[index], depth, ctx);
		walk(m, m->nodes[index].first_child, depth + 1, fn, ctx);
	}
}

void task_model__walk_tree(const struct task_model *m, const struct task *t,
			   void (*fn)(const struct tree_node *node, unsigned depth, void *ctx), void *ctx)
{
	if (t->first_node == NO_FUNCTION)
		return;
	fn(&m->nodes[t->first_node], 0, ctx);
	walk(m, m->nodes[t->first_node].first_child, 1, fn, ctx);
}

const char *wake__name(const struct wake *w)
{
	return w->self ? "self-wake" : w->by_ref ? "wake_by_ref" : "wake";
}
