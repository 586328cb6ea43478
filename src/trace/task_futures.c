/* What each function's futures did, over every task: instances, how many
 * were cancelled, and the .awaits they parked at, summed over the copies
 * of one generic (functions of one name), in one walk of the call-tree
 * nodes. */
#include "trace/tasks.h"

#include <errno.h>
#include <stdlib.h>

#include "trace/tasks_private.h"

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

int task_model__future_summaries(const struct task_model *m, struct future_summary **out)
{
	size_t count = m->trace->function_count;
	struct future_summary *sums = calloc(count + 1, sizeof(*sums));
	uint32_t *canon = calloc(count + 1, sizeof(*canon));
	int err = sums && canon ? trace_functions__first_of_name(m->trace->functions, count, canon) : -ENOMEM;

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
