/* The consumers of a pass on a thread of their own (see pipeline.c). */
#ifndef ASYNCTRACE_TRACE_PIPELINE_H
#define ASYNCTRACE_TRACE_PIPELINE_H

#include "trace/polls.h"

struct trace_pipeline;

/* Starts the consumers' thread; *front is the one consumer to give the
 * pass on this thread: it copies what it is handed to them. Returns 0,
 * -EINVAL for more than TRACE_PASS_MAX_CONSUMERS, -ENOMEM, or -EAGAIN
 * when no thread could be started. */
int trace_pipeline__new(struct trace_pipeline **pipeline, const struct trace_consumer *consumers, size_t count,
			struct trace_consumer *front);
/* Hands over what is left, waits until the consumers had it all, frees. */
void trace_pipeline__finish(struct trace_pipeline *pipeline);

#endif
