/* Wakes: each matched to the task poll that answers it, the latency
 * between them, and who woke whom. A model that does not keep history
 * holds only the wakes still waiting for a poll (their slots are reused
 * once answered) and one count per (woken task, waker, kind). */
#include "trace/tasks.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "trace/tasks_private.h"
#include "util/array.h"

static unsigned log2_bucket(uint64_t ns)
{
	unsigned bucket = 0;

	while (ns > 1 && bucket < LATENCY_BUCKETS - 1) {
		ns >>= 1;
		bucket++;
	}
	return bucket;
}

static bool keeps_history(const struct task_model *m)
{
	return m->flags & TASK_MODEL_KEEP_HISTORY;
}

/* The wakes waiting for this task poll are answered by it. Wakes during
 * the poll itself (after its start) wait for the next one. */
void tasks_answer_wakes(struct task_model *m, struct task *t, const struct poll *p)
{
	bool first = true;

	while (t->waiting_head) {
		uint32_t index = t->waiting_head;
		struct wake *w = &m->wakes[index - 1];

		if (w->ts > p->start)
			break;
		w->poll_ts = p->start;
		w->poll_tid = p->tid;
		m->wake_latency[log2_bucket(p->start - w->ts)]++;
		if (first)
			t->sched_wait_ns += p->start - w->ts;
		first = false;
		t->waiting_head = w->next;
		if (m->on_wake_answered)
			m->on_wake_answered(w, m->callback_ctx);
		if (!keeps_history(m)) {
			w->next = m->free_wakes;
			m->free_wakes = index;
		}
	}
	if (!t->waiting_head)
		t->waiting_tail = 0;
}

/* A slot for a wake: the next in the history, or a reused one. Returns
 * its index + 1, or 0 when out of memory. */
static uint32_t wake_slot(struct task_model *m)
{
	uint32_t index = m->free_wakes;

	if (index) {
		m->free_wakes = m->wakes[index - 1].next;
		return index;
	}
	if (ARRAY_RESERVE(m->wakes, m->wake_capacity, m->wake_count + 1)) {
		m->err = -ENOMEM;
		return 0;
	}
	return (uint32_t)++m->wake_count;
}

/* Who woke whom, counted once per pair and kind. */
static void count_pair(struct task_model *m, const struct wake *w)
{
	uint64_t key = tasks_mix(tasks_mix(w->target, w->self ? 0 : w->waker ? w->waker : (1ULL << 40) | w->tid),
				 (uint64_t)w->self << 1 | w->by_ref);
	uintptr_t index = key == m->cached_pair_key ? m->cached_pair : (uintptr_t)u64map_get(&m->wake_pair_index, key);

	if (!index) {
		if (ARRAY_RESERVE(m->wake_pairs, m->wake_pair_capacity, m->wake_pair_count + 1) ||
		    u64map_put(&m->wake_pair_index, key, (void *)(uintptr_t)(m->wake_pair_count + 1))) {
			m->err = -ENOMEM;
			return;
		}
		index = ++m->wake_pair_count;
		m->wake_pairs[index - 1] = (struct wake_pair){
			.target = w->target, .waker = w->self ? 0 : w->waker, .tid = w->tid,
			.self = w->self, .by_ref = w->by_ref,
		};
	}
	m->wake_pairs[index - 1].count++;
	m->cached_pair_key = key; /* a task's wakes come in runs from one waker */
	m->cached_pair = index;
}

void tasks_on_wake(struct task_model *m, const struct hook *h, struct task *waker)
{
	struct task *target = tasks_live(m, h->event->arg0);
	struct wake w;
	uint32_t index;

	if (!target) {
		m->wakes_unknown++;
		return;
	}
	w = (struct wake){
		.ts = h->event->ts, .tid = h->event->tid, .target = target->id,
		.waker = waker ? waker->id : 0, .by_ref = h->role == ROLE_WAKE_BY_REF,
		.self = waker == target,
	};
	w.ordinal = ++m->wake_total;
	target->wakes++;
	target->wakes_by_ref += w.by_ref;
	target->self_wakes += w.self;
	if (!(m->flags & TASK_MODEL_FOLD))
		count_pair(m, &w); /* folding reuses ids: pairs would mix tasks */
	if (target->state != TASK_PENDING)
		target->wakes_after_end++;
	if (m->on_wake)
		m->on_wake(&w, target->state == TASK_PENDING, m->callback_ctx);
	if (target->state != TASK_PENDING && !keeps_history(m))
		return; /* nothing will answer it */
	index = wake_slot(m);
	if (!index)
		return;
	m->wakes[index - 1] = w;
	if (target->state != TASK_PENDING)
		return;
	if (target->waiting_tail)
		m->wakes[target->waiting_tail - 1].next = index;
	else
		target->waiting_head = index;
	target->waiting_tail = index;
}

static uint32_t task_root(const struct task_model *m, uint32_t id)
{
	return id ? m->tasks[id - 1].name_func : NO_FUNCTION;
}

static bool same_group(const struct task_model *m, const struct wake_group *g, const struct wake_pair *p)
{
	return g->target_func == task_root(m, p->target) && g->self == p->self && g->by_ref == p->by_ref &&
	       (p->self || (p->waker ? g->waker_func == task_root(m, p->waker)
				     : g->waker_func == NO_FUNCTION && g->tid == p->tid));
}

int task_model__wake_groups(const struct task_model *m, struct wake_group **out, size_t *count)
{
	struct wake_group *groups = calloc(m->wake_pair_count + 1, sizeof(*groups));
	size_t n = 0;

	if (!groups)
		return -ENOMEM;
	for (size_t i = 0; i < m->wake_pair_count; i++) {
		const struct wake_pair *p = &m->wake_pairs[i];
		size_t g = 0;

		while (g < n && !same_group(m, &groups[g], p))
			g++;
		if (g == n)
			groups[n++] = (struct wake_group){
				.target_func = task_root(m, p->target),
				.waker_func = p->waker && !p->self ? task_root(m, p->waker) : NO_FUNCTION,
				.tid = p->tid, .self = p->self, .by_ref = p->by_ref,
			};
		groups[g].count += p->count;
	}
	*out = groups;
	*count = n;
	return 0;
}

void tasks_free_wakes(struct task_model *m)
{
	free(m->wakes);
	free(m->wake_pairs);
	u64map_free(&m->wake_pair_index);
}

const char *wake__name(const struct wake *w)
{
	return w->self ? "self-wake" : w->by_ref ? "wake_by_ref" : "wake";
}
