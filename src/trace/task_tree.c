/* Task trees: the nodes of each task's async call tree, the future
 * instances polled at them and their drops, and the linking and naming
 * done once every event is in. A future's slot lives from its first poll
 * to its end (Ready, unwound, dropped): memory follows live futures. */
#include "trace/tasks.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "trace/tasks_private.h"
#include "util/array.h"

static struct tree_node *node_for(struct task_model *m, struct task *t, const struct poll *p)
{
	uint64_t key = tasks_mix(t->id, p->path);
	uintptr_t index = (uintptr_t)u64map_get(&m->node_index, key);
	struct tree_node *n;
	uint32_t at;

	if (index)
		return &m->nodes[index - 1];
	n = tasks_new_node(m, t, &at);
	if (!n || u64map_put(&m->node_index, key, (void *)(uintptr_t)(at + 1))) {
		m->err = -ENOMEM;
		return NULL;
	}
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

/* The slot of the instance polled, looked up (slot, NULL when none) under
 * key; a new instance's when it is not the one at node n. */
static struct future_slot *future_slot(struct task_model *m, const struct poll *p, struct tree_node *n,
				       struct future_slot *slot, uint64_t key)
{
	if (slot && slot->node == (uint32_t)(n - m->nodes))
		return slot;
	/* Polled again after its Ready with no drop between, though its drop
	 * glue is probed: a fused future (join!'s MaybeDone), the same one
	 * (end_future kept its slot only for such types). */
	if (slot && slot->ready_node == (uint32_t)(n - m->nodes) + 1 &&
	    u64map_get(&m->dropped_types, tasks_name_hash(m, p->func_id) | 1)) {
		slot->node = slot->ready_node - 1;
		slot->ready_node = 0;
		tasks_count_future(m, slot, n->task); /* live again */
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
	tasks_count_future(m, slot, n->task);
	slot->node = (uint32_t)(n - m->nodes);
	slot->root_of = 0;
	slot->pending_since = 0;
	slot->ready_node = 0;
	n->instances++;
	return slot;
}

/* An instance ended. Its slot goes, unless it returned Ready and its
 * type's drops are probed: a fused future (join!'s MaybeDone) may be
 * polled again before the drop, and is still the same one. */
static void end_future(struct task_model *m, const struct poll *p, struct future_slot *slot, bool ready)
{
	if (ready && slot->node != NO_FUNCTION &&
	    u64map_get(&m->dropped_types, tasks_name_hash(m, p->func_id) | 1)) {
		slot->ready_node = slot->node + 1;
		slot->node = NO_FUNCTION;
		/* ended: its drop may never be seen (inlined), so it holds no
		 * task from being folded */
		tasks_count_future(m, slot, 0);
		return;
	}
	u64map_remove(&m->futures, tasks_mix(p->future, tasks_name_hash(m, p->func_id)));
	tasks_count_future(m, slot, 0);
	free(slot);
}

/* The task's root future: its result is the task's. A block_on's task is
 * created by the first poll to end, an inner one: its root's poll began
 * earlier. */
static void note_root(struct task_model *m, struct task *t, const struct tree_node *n, struct future_slot *slot,
		      const struct poll *p)
{
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
		tasks_end(t, TASK_COMPLETED, p->end);
	if (!p->task) { /* a block_on root has no task poll to count */
		t->polls++;
		t->busy_ns += p->end - p->start;
		tasks_commit_park(t);
	}
}

void tasks_on_future_poll(struct task_model *m, const struct poll *p)
{
	struct task *t = tasks_for(m, p->task, p->tid, p->start);
	uint64_t key = tasks_mix(p->future, tasks_name_hash(m, p->func_id));
	struct future_slot *slot = u64map_get(&m->futures, key);
	struct tree_node *n = NULL;
	bool unwound = p->end_kind == POLL_END_UNWOUND, ready = !unwound && p->result == POLL_RESULT_READY;

	if (!t)
		return;
	/* A live instance names its node: no lookup by path. */
	if (slot && slot->node != NO_FUNCTION && m->nodes[slot->node].task == t->id &&
	    m->nodes[slot->node].path == p->path)
		n = &m->nodes[slot->node];
	else if ((n = node_for(m, t, p)))
		slot = future_slot(m, p, n, slot, key);
	if (!n || !slot)
		return;
	n->polls++;
	n->busy_ns += p->end - p->start;
	if (slot->pending_since && p->start >= slot->pending_since)
		n->wait_ns += p->start - slot->pending_since;
	slot->pending_since = 0;
	if (!t->polls && !t->first_poll)
		t->first_poll = p->start;
	t->last_seen = p->end;
	if (unwound) {
		n->unwound++;
	} else if (ready) {
		n->ready++;
		if (p->end > n->last_ready)
			n->last_ready = p->end;
	} else if (p->result == POLL_RESULT_PENDING) {
		n->pending++;
		slot->pending_since = p->end;
		note_park(m, t, n, p);
	}
	if (!p->parent_path)
		note_root(m, t, n, slot, p);
	if (unwound || ready)
		end_future(m, p, slot, ready);
}

static void note_cancellation(struct task_model *m, const struct cancellation *c)
{
	m->cancelled_total++;
	if (m->on_cancel)
		m->on_cancel(c, m->callback_ctx);
	if (!(m->flags & TASK_MODEL_KEEP_HISTORY))
		return;
	if (ARRAY_RESERVE(m->cancellations, m->cancellation_capacity, m->cancellation_count + 1)) {
		m->err = -ENOMEM;
		return;
	}
	m->cancellations[m->cancellation_count++] = *c;
}

/* A future dropped: the instance at that address ends; cancelled when it
 * never returned Ready (a lost select! branch, an aborted task). */
void tasks_on_drop(struct task_model *m, const struct hook *h)
{
	const struct trace_function *glue = &m->trace->functions[h->event->func_id];
	uint64_t key = tasks_mix(h->event->arg0, tasks_name_hash(m, glue->target));
	struct future_slot *slot = u64map_get(&m->futures, key);

	if (!slot)
		return;
	if (slot->node == NO_FUNCTION) /* dropped after its Ready: gone */
		goto release;
	/* Dropped by its own poll (MaybeDone's Pin::set replaces itself in
	 * place): the instance goes on, its poll is still running. Same
	 * address is not enough: a parent's first field shares its address. */
	if (h->in_poll && h->future == h->event->arg0 &&
	    tasks_name_hash(m, h->func_id) == tasks_name_hash(m, glue->target))
		return;
	if (slot->pending_since) {
		struct tree_node *n = &m->nodes[slot->node];

		n->cancelled++;
		note_cancellation(m, &(struct cancellation){ h->event->ts, n->task, n->func_id });
		if (slot->root_of)
			tasks_end(&m->tasks[slot->root_of - 1], TASK_CANCELLED, h->event->ts);
	}
release:
	u64map_remove(&m->futures, key);
	tasks_count_future(m, slot, 0);
	free(slot);
}

/* Parents by path, children in order of their first poll. */
static int compare_start(const void *a, const void *b, void *ctx)
{
	const struct tree_node *nodes = ctx;
	uint64_t x = nodes[*(const uint32_t *)a].first_start, y = nodes[*(const uint32_t *)b].first_start;

	return x < y ? -1 : x > y;
}

int tasks_link_tree(struct task_model *m)
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
		/* a folded node's slot, free (TASK_MODEL_FOLD), has no tree */
		uintptr_t parent = n->func_id == NO_FUNCTION || !n->parent_path ? 0 :
				   (uintptr_t)u64map_get(&m->node_index, tasks_mix(n->task, n->parent_path));

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

uint32_t task_model__name_func(const struct task_model *m, const struct task *t)
{
	uint32_t n = t->first_node;

	if (n == NO_FUNCTION)
		return t->root_func;
	while (is_library_wrapper(&m->trace->functions[m->nodes[n].func_id]) &&
	       m->nodes[n].first_child != NO_FUNCTION)
		n = m->nodes[n].first_child;
	return m->nodes[n].func_id;
}

void tasks_name(struct task_model *m)
{
	for (size_t i = 0; i < m->task_count; i++) {
		struct task *t = &m->tasks[i];

		if (t->id) /* else a folded task's free slot */
			t->name_func = task_model__name_func(m, t);
	}
}

/* Future types whose drops are seen (their drop glue is probed). */
int tasks_note_dropped_types(struct task_model *m)
{
	for (size_t i = 0; i < m->trace->function_count; i++) {
		const struct trace_function *fn = &m->trace->functions[i];

		if (fn->role == ROLE_DROP && u64map_put(&m->dropped_types, tasks_name_hash(m, fn->target) | 1, (void *)1))
			return -ENOMEM;
	}
	return 0;
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


static void free_values(struct u64map *map)
{
	for (size_t i = 0; map->slots && i <= map->mask; i++)
		if (map->slots[i].key)
			free(map->slots[i].value);
	u64map_free(map);
}

void tasks_free_futures(struct task_model *m)
{
	free_values(&m->futures);
}
