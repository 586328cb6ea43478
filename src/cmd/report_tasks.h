/* The task part of `report` (see report_tasks.c). */
#ifndef ASYNCTRACE_CMD_REPORT_TASKS_H
#define ASYNCTRACE_CMD_REPORT_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "trace/summary.h"
#include "trace/tasks.h"
#include "util/json.h"

/* One row per task, the first `top` (0: all). */
void report_tasks__print(const struct task_model *m, const struct trace_summary *s, size_t top);
void report_tasks__print_latency(const struct task_model *m);
void report_tasks__print_warnings(const struct task_warnings *w, uint64_t long_poll_ns);
/* "instances", "cancelled" and "parked_at" members of a function's object:
 * what the task model knows of the futures that function polled. */
void report_tasks__json_function(struct json_writer *w, const struct task_model *m,
				 const struct future_summary *futures);
/* "tasks", "wakes", "wake_latency" and "warnings" members of the report object. */
void report_tasks__json(struct json_writer *w, const struct task_model *m, const struct trace_summary *s,
			const struct task_warnings *warnings);

#endif
