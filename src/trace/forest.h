/* Call trees of several tasks merged by position: `tree` without --task
 * shows one tree per root function, each node summed over every task that
 * reached it (the forest), or one task's tree alone. */
#ifndef ASYNCTRACE_TRACE_FOREST_H
#define ASYNCTRACE_TRACE_FOREST_H

#include <stddef.h>
#include <stdint.h>

#include "trace/tasks.h"
#include "util/u64map.h"

/* A node over every task of its group at that position: tasks whose root
 * futures run the same function form one group. */
struct forest_node {
	struct tree_node sum;  /* counts summed; parent/first_child/next index merged nodes */
	uint32_t tasks;        /* tasks that reached this node */
	/* private */
	uint32_t last_task;
	uint32_t last_child;
};

struct task_forest {
	const struct task_model *model;
	struct forest_node *nodes;
	size_t count;
	size_t capacity;
	struct u64map index;   /* mix(group root func name, path) -> index + 1 */
	uint32_t *roots;       /* one per group */
	size_t root_count;
	size_t root_capacity;
	/* private: while merging one task */
	uint64_t group;        /* its group key */
	uint32_t task;
	uint32_t *stack;       /* merged index per depth while walking */
	size_t stack_capacity;
	int err;
};

/* The trees of every task with polls, merged by group; only_task (an id,
 * 0: all) keeps one task's tree alone. Returns 0 or -ENOMEM; free either
 * way. */
int task_forest__build(struct task_forest *forest, const struct task_model *model, uint32_t only_task);
void task_forest__free(struct task_forest *forest);
/* When a node's last Ready came, from the start of its tree's root: in one
 * task's tree, which join! branch finished last. 0 unknown. */
uint64_t task_forest__done_after(const struct task_forest *forest, const struct forest_node *node);

#endif
