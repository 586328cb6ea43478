/* What each function's futures did, over every task: instances, how many
 * were cancelled, and the .awaits they parked at, summed over the copies
 * of one generic (functions of one name), in one walk of the call-tree
 * nodes. */
#include "trace/tasks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace/tasks_private.h"
#include "util/u64map.h"

static void add_park(struct future_summary *f, uint32_t line, uint64_t count)
{
	for (size_t i = 0; i < f->park_count; i++)
		if (f->parks[i].line == line) {
			f->parks[i].count += count;
			return;
		}
	if (f->park_count < FUTURE_PARK_LINES)
		f->parks[f->park_count++] = (struct future_park){ line, count };
}

/* canon[id]: the first function of id's name. */
static int canonical_ids(const struct task_model *m, uint32_t *canon)
{
	const struct trace_function *fns = m->trace->functions;
	struct u64map by_name = { 0 };
	int err = 0;

	for (uint32_t i = 0; i < m->trace->function_count && !err; i++) {
		uint64_t key = tasks_name_hash(m, i) | 1;
		uintptr_t first;

		/* Chain on collision: successive keys until the name matches. */
		while ((first = (uintptr_t)u64map_get(&by_name, key)) && strcmp(fns[first - 1].name, fns[i].name))
			key += 2;
		if (first) {
			canon[i] = (uint32_t)(first - 1);
			continue;
		}
		canon[i] = i;
		err = u64map_put(&by_name, key, (void *)(uintptr_t)(i + 1));
	}
	u64map_free(&by_name);
	return err;
}

int task_model__future_summaries(const struct task_model *m, struct future_summary **out)
{
	size_t count = m->trace->function_count;
	struct future_summary *sums = calloc(count + 1, sizeof(*sums));
	uint32_t *canon = calloc(count + 1, sizeof(*canon));
	int err = sums && canon ? canonical_ids(m, canon) : -ENOMEM;

	for (size_t i = 0; i < count && !err; i++)
		sums[i].last_func = NO_FUNCTION;
	for (size_t i = 0; i < m->node_count && !err; i++) {
		const struct tree_node *n = &m->nodes[i];
		struct future_summary *f;

		if (n->func_id == NO_FUNCTION)
			continue; /* a folded node's free slot */
		f = &sums[canon[n->func_id]];

		f->last_func = n->func_id;
		f->instances += n->instances;
		f->cancelled += n->cancelled;
		for (unsigned k = 0; k < 4; k++)
			if (n->park_counts[k])
				add_park(f, n->park_lines[k], n->park_counts[k]);
	}
	for (size_t i = 0; i < count && !err; i++)
		sums[i] = sums[canon[i]];
	free(canon);
	if (err) {
		free(sums);
		return err;
	}
	*out = sums;
	return 0;
}
