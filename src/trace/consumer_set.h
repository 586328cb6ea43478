/* The consumers of a pass, kept by trace/polls.c's one-thread pass and by
 * trace/pipeline.c's consumer thread: each poll, begin and hook goes to
 * every consumer that has the callback, in the order given. */
#ifndef ASYNCTRACE_TRACE_CONSUMER_SET_H
#define ASYNCTRACE_TRACE_CONSUMER_SET_H

#include <errno.h>
#include <stdbool.h>

#include "trace/polls.h"

struct consumer_set {
	struct trace_consumer list[TRACE_PASS_MAX_CONSUMERS];
	size_t count;
	bool begins, hooks; /* some consumer wants them: unasked-for ones cost nothing */
};

/* Returns 0 or -EINVAL for more than TRACE_PASS_MAX_CONSUMERS. */
static inline int consumer_set__init(struct consumer_set *set, const struct trace_consumer *consumers, size_t count)
{
	if (count > TRACE_PASS_MAX_CONSUMERS)
		return -EINVAL;
	*set = (struct consumer_set){ .count = count };
	for (size_t i = 0; i < count; i++) {
		set->list[i] = consumers[i];
		set->begins |= consumers[i].poll_begin != NULL;
		set->hooks |= consumers[i].hook != NULL;
	}
	return 0;
}

static inline void consumer_set__poll(const struct consumer_set *set, const struct poll *p)
{
	for (size_t i = 0; i < set->count; i++)
		if (set->list[i].poll)
			set->list[i].poll(p, set->list[i].ctx);
}

static inline void consumer_set__poll_begin(const struct consumer_set *set, const struct poll *p)
{
	for (size_t i = 0; i < set->count; i++)
		if (set->list[i].poll_begin)
			set->list[i].poll_begin(p, set->list[i].ctx);
}

static inline void consumer_set__hook(const struct consumer_set *set, const struct hook *h)
{
	for (size_t i = 0; i < set->count; i++)
		if (set->list[i].hook)
			set->list[i].hook(h, set->list[i].ctx);
}

#endif
