/* The task part of `report` (see report_tasks.c). */
#ifndef ASYNCTRACE_CMD_REPORT_TASKS_H
#define ASYNCTRACE_CMD_REPORT_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "trace/summary.h"
#include "trace/tasks.h"
#include "util/json.h"

struct task_warnings {
	uint64_t long_polls;        /* polls over the --long-poll threshold */
	uint64_t self_wakes;
	uint64_t woken_not_polled;  /* tasks with a wake no poll answered */
	uint64_t never_woken;       /* pending tasks whose last Pending got no wake */
	uint64_t wakes_after_end;   /* wakes of tasks already finished */
};

void report_tasks__count_warnings(const struct task_model *m, const struct trace_summary *s,
				  struct task_warnings *w);
/* One row per task, the first `top` (0: all). */
void report_tasks__print(const struct task_model *m, const struct trace_summary *s, size_t top);
void report_tasks__print_latency(const struct task_model *m);
void report_tasks__print_warnings(const struct task_warnings *w, uint64_t long_poll_ns);
/* "instances", "cancelled" and "parked_at" members of a function's object:
 * what the task model knows of the futures that function polled. */
void report_tasks__json_function(struct json_writer *w, const struct task_model *m, const char *name);
/* "tasks", "wakes", "wake_latency" and "warnings" members of the report object. */
void report_tasks__json(struct json_writer *w, const struct task_model *m, const struct trace_summary *s,
			const struct task_warnings *warnings);

#endif
