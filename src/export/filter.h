/* What part of a trace an export keeps (export --from/--to/--task/--thread):
 * parsed once by the command, asked by every exporter for each poll, wake
 * and cancellation. An empty filter keeps everything; the predicates
 * take NULL for "no filter" too. */
#ifndef ASYNCTRACE_EXPORT_FILTER_H
#define ASYNCTRACE_EXPORT_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/polls.h"
#include "trace/tasks.h"

struct trace_file;

struct export_filter {
	/* Times since the trace's first poll, as report prints them. */
	uint64_t from_ns;
	uint64_t to_ns;        /* UINT64_MAX: to the end */
	uint32_t *tasks;       /* ids as report --tasks numbers them */
	size_t task_count;
	uint32_t *threads;     /* tids */
	size_t thread_count;
	/* private: set by export_filter__bind */
	uint64_t from_abs;
	uint64_t to_abs;
	bool timed;
};

void export_filter__init(struct export_filter *f);
void export_filter__free(struct export_filter *f);

/* "1.5s", "200ms", "30us", "100ns" (a unit is needed, except for 0) into
 * nanoseconds. Returns 0, -EINVAL (not such a time) or -ERANGE. */
int export_filter__parse_time(const char *text, uint64_t *ns);
/* Adds a --task or --thread value (a positive decimal integer).
 * Returns 0, -EINVAL or -ENOMEM. */
int export_filter__add_task(struct export_filter *f, const char *text);
int export_filter__add_thread(struct export_filter *f, const char *text);

/* Turns the times into the trace's clock: they count from its first poll's
 * start. Returns 0 or a negative errno from reading the trace. */
int export_filter__bind(struct export_filter *f, const struct trace_file *trace);
/* A task id the model does not have, or 0: exporters refuse to write
 * anything for a --task that names no task (-ESRCH). */
uint32_t export_filter__missing_task(const struct export_filter *f, const struct task_model *model);

bool export_filter__keeps_task(const struct export_filter *f, uint32_t id);
bool export_filter__keeps_thread(const struct export_filter *f, uint32_t tid);
/* A task's track is named when the task is kept and lived in the range. */
bool export_filter__keeps_task_track(const struct export_filter *f, const struct task *t);
/* A poll inside the time range, on a kept thread, of a kept task (its
 * own task: the one task_model__find gives, 0 when none). */
bool export_filter__keeps_poll(const struct export_filter *f, const struct task_model *model,
			       const struct poll *p);
/* A wake whose waking thread, time, target task and (when it led to one)
 * answering poll's thread and start are all kept: both ends of its arrow. */
bool export_filter__keeps_wake(const struct export_filter *f, const struct wake *w);
/* An on-CPU sample of a kept thread, in the range, of a kept task (0: it
 * ran outside tasks). */
bool export_filter__keeps_sample(const struct export_filter *f, uint32_t tid, uint64_t ts, uint32_t task);
/* poll_stacks__build's keep, ctx the filter (NULL: every poll). */
bool export_filter__keeps_poll_of(const struct poll *p, const struct task_model *model, const void *filter);
bool export_filter__keeps_cancellation(const struct export_filter *f, const struct cancellation *c);

#endif
