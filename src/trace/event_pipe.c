/* Decoding on a second CPU: a thread runs the stream merge and fills
 * batches of decoded events; the caller's thread hands them to the
 * analysis. The merge is the same code either way, so the order is too.
 * A handful of batches in flight keep memory fixed, whatever the trace. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "trace/streams.h"

#define BATCH_EVENTS 4096
#define BATCHES 4
/* Below this the thread's start costs more than it saves. */
#ifndef PIPE_MIN_EVENTS
#define PIPE_MIN_EVENTS 100000
#endif

struct batch {
	struct trace_event events[BATCH_EVENTS];
	size_t count;
};

struct event_pipe {
	const struct trace_streams *streams;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct batch *batches;
	size_t filled;      /* batches handed over, ever */
	size_t consumed;    /* batches given back, ever */
	bool done;          /* the producer has finished: rc is its result */
	bool stop;          /* the consumer wants no more */
	int rc;
};

static struct batch *producing(struct event_pipe *p)
{
	return &p->batches[p->filled % BATCHES];
}

/* Hands the full batch over, waiting for a free one. Returns 1 when the
 * consumer has stopped. */
static int publish(struct event_pipe *p)
{
	int stopped;

	pthread_mutex_lock(&p->lock);
	p->filled++;
	pthread_cond_broadcast(&p->changed);
	while (!p->stop && p->filled - p->consumed == BATCHES)
		pthread_cond_wait(&p->changed, &p->lock);
	stopped = p->stop;
	pthread_mutex_unlock(&p->lock);
	if (!stopped)
		producing(p)->count = 0;
	return stopped;
}

static int collect(const struct trace_event *event, void *ctx)
{
	struct event_pipe *p = ctx;
	struct batch *b = producing(p);

	b->events[b->count++] = *event;
	return b->count == BATCH_EVENTS ? publish(p) : 0;
}

static void *produce(void *arg)
{
	struct event_pipe *p = arg;
	int rc;

	producing(p)->count = 0;
	rc = trace_streams__merge_events(p->streams, collect, p);
	pthread_mutex_lock(&p->lock);
	if (producing(p)->count && !p->stop)
		p->filled++; /* the last, partial batch */
	p->rc = rc > 0 ? 0 : rc; /* 1: stopped by the consumer */
	p->done = true;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* The next full batch, or NULL when the producer is done. */
static struct batch *next_batch(struct event_pipe *p)
{
	struct batch *b = NULL;

	pthread_mutex_lock(&p->lock);
	while (p->filled == p->consumed && !p->done)
		pthread_cond_wait(&p->changed, &p->lock);
	if (p->filled != p->consumed)
		b = &p->batches[p->consumed % BATCHES];
	pthread_mutex_unlock(&p->lock);
	return b;
}

static void give_back(struct event_pipe *p, bool stop)
{
	pthread_mutex_lock(&p->lock);
	p->consumed++;
	p->stop |= stop;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

static int consume(struct event_pipe *p, trace_event_fn fn, void *ctx)
{
	struct batch *b;
	int rc = 0;

	while (!rc && (b = next_batch(p))) {
		for (size_t i = 0; i < b->count && !rc; i++)
			rc = fn(&b->events[i], ctx);
		give_back(p, rc != 0);
	}
	return rc;
}

int trace_streams__pipe_events(const struct trace_streams *s, trace_event_fn fn, void *ctx)
{
	struct event_pipe p = { .streams = s };
	pthread_t thread;
	int rc;

	p.batches = malloc(BATCHES * sizeof(*p.batches));
	if (!p.batches)
		return -ENOMEM;
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.changed, NULL);
	rc = -pthread_create(&thread, NULL, produce, &p);
	if (!rc) {
		rc = consume(&p, fn, ctx);
		pthread_join(thread, NULL);
		if (!rc)
			rc = p.rc;
	}
	pthread_cond_destroy(&p.changed);
	pthread_mutex_destroy(&p.lock);
	free(p.batches);
	return rc;
}

int trace_streams__for_each_event(const struct trace_streams *s, trace_event_fn fn, void *ctx)
{
	if (trace_streams__event_count(s) < PIPE_MIN_EVENTS || sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return trace_streams__merge_events(s, fn, ctx);
	return trace_streams__pipe_events(s, fn, ctx);
}
