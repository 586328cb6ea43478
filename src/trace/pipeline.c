/* A pass on two threads: this one decodes the events and pairs them into
 * polls (trace/polls.c), a second one runs the consumers (summary, task
 * model, exporters) on copies handed over in batches. The consumers see
 * the same calls in the same order as on one thread; they run on one
 * thread, so they need no locks of their own.
 *
 * With two threads the reading one is about two thirds of the samples,
 * so it bounds the pass: report on 18.75 M events went from 0.65 s to
 * about 0.5 s (docs/performance.md). Batches of 2048 records were the
 * fastest of 512 to 8192: the hand-over (a lock, at most a wake-up) stays
 * out of the profile and the copies in the caches. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "trace/consumer_set.h"
#include "trace/pipeline.h"

enum record_kind { RECORD_POLL_BEGIN, RECORD_POLL, RECORD_HOOK };

struct record {
	uint8_t kind;
	union {
		struct poll poll;
		struct {
			struct hook hook;
			struct trace_event event; /* hook.event points here once consumed */
		};
	};
};

#define BATCH_RECORDS 2048
#define BATCHES 4

struct batch {
	size_t count;
	struct record records[BATCH_RECORDS];
};

struct trace_pipeline {
	struct consumer_set consumers;
	struct batch *batches; /* a ring: the producer fills [produced % BATCHES] */
	pthread_mutex_t lock;
	pthread_cond_t changed;
	size_t produced;       /* batches handed over */
	size_t consumed;       /* batches the consumer thread is done with */
	bool done;             /* no batch comes after `produced` */
	pthread_t thread;
};

static void consume_record(const struct trace_pipeline *p, const struct record *r)
{
	switch (r->kind) {
	case RECORD_POLL: consumer_set__poll(&p->consumers, &r->poll); break;
	case RECORD_POLL_BEGIN: consumer_set__poll_begin(&p->consumers, &r->poll); break;
	default: consumer_set__hook(&p->consumers, &r->hook); break;
	}
}

static void *consumer_loop(void *arg)
{
	struct trace_pipeline *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct batch *b;

		while (p->consumed == p->produced && !p->done)
			pthread_cond_wait(&p->changed, &p->lock);
		if (p->consumed == p->produced) {
			pthread_mutex_unlock(&p->lock);
			return NULL; /* done, and nothing left */
		}
		b = &p->batches[p->consumed % BATCHES];
		pthread_mutex_unlock(&p->lock);
		for (size_t i = 0; i < b->count; i++)
			consume_record(p, &b->records[i]);
		pthread_mutex_lock(&p->lock);
		p->consumed++;
		pthread_cond_signal(&p->changed);
	}
}

/* Hands the filled batch over; waits for a free one. */
static void hand_over(struct trace_pipeline *p)
{
	pthread_mutex_lock(&p->lock);
	p->produced++;
	pthread_cond_signal(&p->changed);
	while (p->produced - p->consumed == BATCHES)
		pthread_cond_wait(&p->changed, &p->lock);
	pthread_mutex_unlock(&p->lock);
	p->batches[p->produced % BATCHES].count = 0;
}

static struct record *next_record(struct trace_pipeline *p, enum record_kind kind)
{
	struct batch *b = &p->batches[p->produced % BATCHES];
	struct record *r;

	if (b->count == BATCH_RECORDS) {
		hand_over(p);
		b = &p->batches[p->produced % BATCHES];
	}
	r = &b->records[b->count++];
	r->kind = kind;
	return r;
}

static void forward_poll(const struct poll *poll, void *ctx)
{
	next_record(ctx, RECORD_POLL)->poll = *poll;
}

static void forward_poll_begin(const struct poll *poll, void *ctx)
{
	next_record(ctx, RECORD_POLL_BEGIN)->poll = *poll;
}

static void forward_hook(const struct hook *hook, void *ctx)
{
	struct record *r = next_record(ctx, RECORD_HOOK);

	r->hook = *hook;
	r->event = *hook->event;
	r->hook.event = &r->event;
}

int trace_pipeline__new(struct trace_pipeline **out, const struct trace_consumer *consumers, size_t count,
			struct trace_consumer *front)
{
	struct consumer_set set;
	struct trace_pipeline *p;
	int err = consumer_set__init(&set, consumers, count);

	if (err)
		return err;
	p = calloc(1, sizeof(*p));
	if (!p || !(p->batches = calloc(BATCHES, sizeof(*p->batches)))) {
		free(p);
		return -ENOMEM;
	}
	p->consumers = set;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->changed, NULL);
	if (pthread_create(&p->thread, NULL, consumer_loop, p)) {
		pthread_cond_destroy(&p->changed);
		pthread_mutex_destroy(&p->lock);
		free(p->batches);
		free(p);
		return -EAGAIN;
	}
	*front = (struct trace_consumer){
		.poll = forward_poll,
		.poll_begin = p->consumers.begins ? forward_poll_begin : NULL, /* unasked-for records cost nothing */
		.hook = p->consumers.hooks ? forward_hook : NULL,
		.ctx = p,
	};
	*out = p;
	return 0;
}

void trace_pipeline__finish(struct trace_pipeline *p)
{
	if (p->batches[p->produced % BATCHES].count)
		hand_over(p);
	pthread_mutex_lock(&p->lock);
	p->done = true;
	pthread_cond_signal(&p->changed);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	pthread_cond_destroy(&p->changed);
	pthread_mutex_destroy(&p->lock);
	free(p->batches);
	free(p);
}
