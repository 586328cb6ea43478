/* What the task model's files share: tasks.c (task lifecycles, spawns,
 * the pass), task_tree.c (call trees, future instances, drops) and
 * task_wakes.c (wakes and their answers). Not for other layers. */
#ifndef ASYNCTRACE_TRACE_TASKS_PRIVATE_H
#define ASYNCTRACE_TRACE_TASKS_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "trace/tasks.h"

#define PSEUDO_TASK_KEY (1ULL << 63) /* block_on roots are keyed by their thread */

/* A live future instance: one state machine at one address, from its first
 * poll to its Ready, its drop, or an unwinding panic. */
struct future_slot {
	uint32_t node;
	uint32_t root_of;       /* task id when it is that task's root future */
	uint64_t pending_since; /* end of its last Pending poll, 0 none */
	uint32_t ready_node;    /* ended by a Ready, not yet dropped: its node + 1 */
	uint32_t task;          /* the id whose live_futures counts it, 0 none */
};

/* Two keys in one (never 0). Inline: several per poll. */
static inline uint64_t tasks_mix(uint64_t a, uint64_t b)
{
	uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ULL)) * 0xbf58476d1ce4e5b9ULL;

	return (h ^ (h >> 31)) | 1;
}

static inline uint64_t tasks_name_hash(const struct task_model *m, uint32_t func_id)
{
	return m->name_hashes[func_id];
}

struct task *tasks_live(struct task_model *m, uint64_t key);
/* The task a poll or hook belongs to, created when first seen; NULL only
 * when out of memory (m->err is set). */
struct task *tasks_for(struct task_model *m, uint64_t ptr, uint32_t tid, uint64_t ts);
void tasks_end(struct task *t, enum task_state state, uint64_t ts);
/* A future instance of task id starts (id) or ends (0) at slot; a freed
 * task whose last one ends is folded (TASK_MODEL_FOLD). */
void tasks_count_future(struct task_model *m, struct future_slot *slot, uint32_t id);
/* TASK_MODEL_FOLD: the task's memory was released; folds it if nothing
 * refers to it. */
void tasks_release(struct task_model *m, struct task *t);
/* A node slot for task t (a folded one reused, or a new one); NULL when
 * out of memory. */
struct tree_node *tasks_new_node(struct task_model *m, struct task *t, uint32_t *index);
void tasks_commit_park(struct task *t);

/* task_tree.c */
void tasks_on_future_poll(struct task_model *m, const struct poll *p);
void tasks_on_drop(struct task_model *m, const struct hook *h);
int tasks_note_dropped_types(struct task_model *m);
int tasks_link_tree(struct task_model *m);
void tasks_name(struct task_model *m);
void tasks_free_futures(struct task_model *m);

/* task_wakes.c */
void tasks_on_wake(struct task_model *m, const struct hook *h, struct task *waker);
void tasks_answer_wakes(struct task_model *m, struct task *t, const struct poll *p);
void tasks_free_wakes(struct task_model *m);

#endif
