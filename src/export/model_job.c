#include "export/model_job.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/array.h"

static void *build_model(void *arg)
{
	struct model_job *job = arg;

	job->err = task_model__build(&job->model, job->trace, TASK_MODEL_KEEP_HISTORY);
	atomic_store_explicit(&job->done, true, memory_order_release);
	return NULL;
}

void model_job__start(struct model_job *job, const struct trace_file *trace)
{
	memset(job, 0, sizeof(*job));
	job->trace = trace;
	atomic_init(&job->done, false);
	job->threaded = pthread_create(&job->thread, NULL, build_model, job) == 0;
	if (!job->threaded)
		build_model(job);
}

bool model_job__done(struct model_job *job)
{
	return atomic_load_explicit(&job->done, memory_order_acquire);
}

int model_job__join(struct model_job *job)
{
	if (job->threaded && !job->joined)
		pthread_join(job->thread, NULL);
	job->joined = true;
	return job->err;
}

void model_job__free(struct model_job *job)
{
	/* A failed build has freed what it had. */
	if (!model_job__join(job))
		task_model__free(&job->model);
}

int poll_hold__push(struct poll_hold *h, const struct poll *p)
{
	if ((h->count + 1) * sizeof(*h->polls) > POLL_HOLD_LIMIT_BYTES)
		return -ENOSPC;
	if (ARRAY_RESERVE(h->polls, h->capacity, h->count + 1))
		return -ENOMEM;
	h->polls[h->count++] = (struct held_poll){
		.start = p->start, .end = p->end, .future = p->future, .task = p->task, .state = p->state,
		.func_id = p->func_id, .tid = p->tid, .cpu = p->cpu, .depth = p->depth, .result = p->result,
		.end_kind = p->end_kind, .runs_tasks = p->runs_tasks, .has_state = p->has_state,
	};
	return 0;
}

void held_poll__unpack(const struct held_poll *held, uint32_t pid, struct poll *p)
{
	*p = (struct poll){
		.start = held->start, .end = held->end, .future = held->future, .task = held->task,
		.state = held->state, .func_id = held->func_id, .tid = held->tid, .pid = pid, .cpu = held->cpu,
		.depth = held->depth, .result = held->result, .end_kind = held->end_kind,
		.runs_tasks = held->runs_tasks, .has_state = held->has_state, .parent_func = UINT32_MAX,
	};
}

void poll_hold__free(struct poll_hold *h)
{
	free(h->polls);
	memset(h, 0, sizeof(*h));
}
