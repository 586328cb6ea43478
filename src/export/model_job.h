/* The task model built on a second thread while an exporter replays the
 * trace for what does not need it (thread slices), and the polls that do
 * need it (task-track slices) held until it is there.
 *
 * Building the model is one replay of the trace, writing the slices
 * another, and they are the export's two longest steps: side by side on
 * two cores, the export takes about the longer of them instead of their
 * sum, without a third replay. Relies on trace_file__for_each_event being
 * safe to run twice at once on one open trace (it only reads it). */
#ifndef ASYNCTRACE_EXPORT_MODEL_JOB_H
#define ASYNCTRACE_EXPORT_MODEL_JOB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/polls.h"
#include "trace/reader.h"
#include "trace/tasks.h"

struct model_job {
	const struct trace_file *trace;
	struct task_model model;
	pthread_t thread;
	bool threaded;     /* false: built in model_job__start (no thread could start) */
	bool joined;
	atomic_bool done;  /* set by the builder when model and err are final */
	int err;
};

void model_job__start(struct model_job *job, const struct trace_file *trace);
/* Whether the build has finished (then model_job__join does not wait). */
bool model_job__done(struct model_job *job);
/* Waits for the build. Returns 0 (job->model is there) or its error. */
int model_job__join(struct model_job *job);
/* Joins and frees the model. */
void model_job__free(struct model_job *job);

/* What a task-track slice needs of a poll, at about half its size. */
struct held_poll {
	uint64_t start;
	uint64_t end;
	uint64_t future;
	uint64_t task;
	uint64_t state;
	uint32_t func_id;
	uint32_t tid;
	uint16_t cpu;
	uint16_t depth;
	uint8_t result;
	uint8_t end_kind;
	uint8_t runs_tasks;
	uint8_t has_state;
};

/* Polls held until the model is there, up to a limit: past it the
 * exporter waits for the model instead (memory stays bounded whatever
 * the trace's size). */
#ifndef POLL_HOLD_LIMIT_BYTES /* a build may set it (tests: -DPOLL_HOLD_LIMIT_BYTES=4096) */
#define POLL_HOLD_LIMIT_BYTES (256u << 20)
#endif

struct poll_hold {
	struct held_poll *polls;
	size_t count;
	size_t capacity;
};

/* Returns 0, -ENOSPC (the limit is reached) or -ENOMEM. */
int poll_hold__push(struct poll_hold *h, const struct poll *p);
/* The held poll as a struct poll again (fields a slice does not use are 0). */
void held_poll__unpack(const struct held_poll *held, uint32_t pid, struct poll *p);
void poll_hold__free(struct poll_hold *h);

#endif
