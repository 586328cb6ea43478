#include "trace/forest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/array.h"

static uint64_t name_key(const struct task_model *m, uint32_t func_id)
{
	return m->name_hashes[func_id] | 1; /* the model hashed each name once */
}

static void add_counts(struct tree_node *sum, const struct tree_node *n)
{
	sum->polls += n->polls;
	sum->ready += n->ready;
	sum->pending += n->pending;
	sum->unwound += n->unwound;
	sum->busy_ns += n->busy_ns;
	sum->wait_ns += n->wait_ns;
	sum->instances += n->instances;
	sum->cancelled += n->cancelled;
	if (n->last_ready > sum->last_ready)
		sum->last_ready = n->last_ready;
	if (!sum->first_start || n->first_start < sum->first_start)
		sum->first_start = n->first_start;
	for (unsigned i = 0; i < 4; i++)
		if (n->park_counts[i] && n->park_counts[i] >= sum->park_counts[0]) {
			sum->park_lines[0] = n->park_lines[i];
			sum->park_counts[0] = n->park_counts[i];
		}
}

static struct forest_node *merged_node(struct task_forest *f, const struct tree_node *n, unsigned depth)
{
	uint64_t key = (f->group * 0x9e3779b97f4a7c15ULL) ^ n->path;
	uintptr_t index = (uintptr_t)u64map_get(&f->index, key | 1);
	struct forest_node *m;

	if (index)
		return &f->nodes[index - 1];
	if (ARRAY_RESERVE(f->nodes, f->capacity, f->count + 1) ||
	    u64map_put(&f->index, key | 1, (void *)(uintptr_t)(f->count + 1))) {
		f->err = -ENOMEM;
		return NULL;
	}
	m = &f->nodes[f->count];
	memset(m, 0, sizeof(*m));
	m->sum.func_id = n->func_id;
	m->sum.parent = m->sum.first_child = m->sum.next = m->last_child = NO_FUNCTION;
	if (depth == 0) {
		if (ARRAY_RESERVE(f->roots, f->root_capacity, f->root_count + 1)) {
			f->err = -ENOMEM;
			return NULL;
		}
		f->roots[f->root_count++] = (uint32_t)f->count;
	} else {
		struct forest_node *parent = &f->nodes[f->stack[depth - 1]];

		m->sum.parent = f->stack[depth - 1];
		if (parent->last_child == NO_FUNCTION)
			parent->sum.first_child = (uint32_t)f->count;
		else
			f->nodes[parent->last_child].sum.next = (uint32_t)f->count;
		parent->last_child = (uint32_t)f->count;
	}
	return &f->nodes[f->count++];
}

static void merge_node(const struct tree_node *n, unsigned depth, void *ctx)
{
	struct task_forest *f = ctx;
	struct forest_node *m;

	if (f->err || ARRAY_RESERVE(f->stack, f->stack_capacity, depth + 1)) {
		f->err = f->err ? f->err : -ENOMEM;
		return;
	}
	m = merged_node(f, n, depth);
	if (!m)
		return;
	f->stack[depth] = (uint32_t)(m - f->nodes);
	add_counts(&m->sum, n);
	if (m->last_task != f->task) {
		m->tasks++;
		m->last_task = f->task;
	}
}

int task_forest__build(struct task_forest *f, const struct task_model *model, uint32_t only_task)
{
	memset(f, 0, sizeof(*f));
	f->model = model;
	for (size_t i = 0; i < model->task_count && !f->err; i++) {
		const struct task *t = &model->tasks[i];

		if ((only_task && t->id != only_task) || t->first_node == NO_FUNCTION)
			continue;
		f->task = t->id;
		/* One group per root function, or per task when one is asked for. */
		f->group = only_task ? t->id : name_key(model, model->nodes[t->first_node].func_id);
		task_model__walk_tree(model, t, merge_node, f);
	}
	return f->err;
}

void task_forest__free(struct task_forest *f)
{
	free(f->nodes);
	free(f->roots);
	free(f->stack);
	u64map_free(&f->index);
}

/* When a node's last Ready came, from the start of its tree's root: in one
 * task's tree, which join! branch finished last. */
uint64_t task_forest__done_after(const struct task_forest *f, const struct forest_node *m)
{
	const struct forest_node *root = m;

	while (root->sum.parent != NO_FUNCTION)
		root = &f->nodes[root->sum.parent];
	return m->sum.last_ready > root->sum.first_start ? m->sum.last_ready - root->sum.first_start : 0;
}
