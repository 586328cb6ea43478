#include "trace/summary.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace/histogram.h"
#include "util/u64map.h"
#include "util/array.h"

/* A row's durations: kept exactly while there are few (percentiles then
 * exact), in a histogram past EXACT_LIMIT (within 0.8 %): memory per row
 * is bounded, whatever the number of polls. */
#define EXACT_LIMIT 4096

struct durations {
	uint64_t *values;       /* up to EXACT_LIMIT, until the histogram takes over */
	size_t count;
	size_t capacity;
	struct histogram histogram;
	uint64_t total;
	uint64_t max;
	uint64_t n;
};

struct summary_builder {
	const struct trace_file *trace;
	struct trace_summary *summary;
	uint32_t *row_of_function;    /* function id -> row */
	struct durations *durations;  /* per row */
	struct u64map thread_rows;    /* tid + 1 -> row + 1 */
	size_t thread_capacity;
	size_t top;
	uint64_t long_poll_ns;
	int err;
};

static int spill(struct durations *d)
{
	for (size_t i = 0; i < d->count; i++)
		if (histogram__add(&d->histogram, d->values[i]))
			return -ENOMEM;
	free(d->values);
	d->values = NULL;
	d->count = d->capacity = 0;
	return 0;
}

static int push_duration(struct durations *d, uint64_t value)
{
	d->n++;
	d->total += value;
	if (value > d->max)
		d->max = value;
	if (!d->histogram.count && d->count == EXACT_LIMIT && spill(d))
		return -ENOMEM;
	if (d->histogram.count)
		return histogram__add(&d->histogram, value);
	if (ARRAY_RESERVE(d->values, d->capacity, d->count + 1))
		return -ENOMEM;
	d->values[d->count++] = value;
	return 0;
}

/* One row per distinct name, in first-seen order. */
static int build_rows(struct summary_builder *b)
{
	const struct trace_file *t = b->trace;
	struct trace_summary *s = b->summary;
	uint32_t *first;
	int err;

	b->row_of_function = calloc(t->function_count + 1, sizeof(uint32_t));
	s->functions = calloc(t->function_count + 1, sizeof(*s->functions));
	b->durations = calloc(t->function_count + 1, sizeof(*b->durations));
	first = calloc(t->function_count + 1, sizeof(*first));
	err = b->row_of_function && s->functions && b->durations && first ?
	      trace_functions__first_of_name(t->functions, t->function_count, first) : -ENOMEM;
	for (size_t i = 0; i < t->function_count && !err; i++) {
		if (first[i] == i) {
			s->functions[s->function_count] = (struct function_summary){
				.name = t->functions[i].name, .first_func_id = (uint32_t)i,
			};
			b->row_of_function[i] = (uint32_t)s->function_count++;
		} else {
			b->row_of_function[i] = b->row_of_function[first[i]];
		}
		/* listed only to be named (never probed): no copy of the row */
		if (b->trace->functions[i].flags & (TRACE_FUNCTION_UNCOUNTED | TRACE_FUNCTION_UNPROBED))
			continue;
		s->functions[b->row_of_function[i]].copies++;
		if (b->trace->functions[i].flags & TRACE_FUNCTION_INLINED)
			s->functions[b->row_of_function[i]].inlined++;
		if (b->trace->functions[i].flags & TRACE_FUNCTION_APPROXIMATE)
			s->functions[b->row_of_function[i]].approximate++;
	}
	free(first);
	return err;
}

static struct thread_summary *thread_row(struct summary_builder *b, uint32_t tid)
{
	struct trace_summary *s = b->summary;
	uintptr_t row = (uintptr_t)u64map_get(&b->thread_rows, (uint64_t)tid + 1);

	if (row)
		return &s->threads[row - 1];
	if (ARRAY_RESERVE(s->threads, b->thread_capacity, s->thread_count + 1))
		return NULL;
	s->threads[s->thread_count] = (struct thread_summary){
		.tid = tid, .name = trace_file__thread_name(b->trace, tid),
	};
	if (u64map_put(&b->thread_rows, (uint64_t)tid + 1, (void *)(uintptr_t)(s->thread_count + 1)))
		return NULL;
	return &s->threads[s->thread_count++];
}

/* Keeps the `top` longest polls, longest first (insertion: top is small). */
static void keep_if_long(struct summary_builder *b, const struct poll *p, uint64_t duration)
{
	struct trace_summary *s = b->summary;
	size_t i;

	if (!b->top || (s->longest_count == b->top && duration <= s->longest[b->top - 1].duration_ns))
		return;
	i = s->longest_count < b->top ? s->longest_count++ : b->top - 1;
	while (i > 0 && s->longest[i - 1].duration_ns < duration) {
		s->longest[i] = s->longest[i - 1];
		i--;
	}
	s->longest[i].poll = *p;
	s->longest[i].duration_ns = duration;
}

static void on_poll(const struct poll *p, void *ctx)
{
	struct summary_builder *b = ctx;
	uint32_t row = b->row_of_function[p->func_id];
	struct function_summary *f = &b->summary->functions[row];
	uint64_t duration = p->end - p->start;

	f->polls++;
	if (p->end_kind == POLL_END_UNWOUND)
		f->unwound++;
	else if (p->end_kind == POLL_END_UNFINISHED)
		f->unfinished++;
	else if (p->result == POLL_RESULT_READY)
		f->ready++;
	else if (p->result == POLL_RESULT_PENDING)
		f->pending++;
	else
		f->unknown++;
	if (!b->summary->first_ts || p->start < b->summary->first_ts)
		b->summary->first_ts = p->start;
	if (p->end > b->summary->last_ts)
		b->summary->last_ts = p->end;
	if (p->end_kind == POLL_END_UNFINISHED)
		return;
	if (push_duration(&b->durations[row], duration))
		b->err = -ENOMEM;
	if (p->runs_tasks)
		return; /* a runtime shell: its time is its tasks' */
	if (p->depth == 0 || p->parent_runs_tasks) {
		struct thread_summary *t = thread_row(b, p->tid);

		if (!t) {
			b->err = -ENOMEM;
			return;
		}
		t->polls++;
		t->busy_ns += duration;
	}
	/* A task poll's time is its future's, which is listed under its own name. */
	if (b->trace->functions[p->func_id].context == CONTEXT_TASK)
		return;
	keep_if_long(b, p, duration);
	if (b->long_poll_ns && duration > b->long_poll_ns) {
		f->long_polls++;
		b->summary->long_polls++;
	}
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values. */
static uint64_t percentile(const struct durations *d, unsigned pct)
{
	size_t rank = (d->count * pct + 99) / 100;

	return d->values[rank ? rank - 1 : 0];
}

static void finish_row(struct function_summary *f, struct durations *d)
{
	if (!d->n)
		return;
	f->total_ns = d->total;
	f->timed = d->n;
	f->mean_ns = d->total / d->n;
	f->max_ns = d->max;
	if (d->histogram.count) {
		f->p50_ns = histogram__percentile(&d->histogram, 50);
		f->p99_ns = histogram__percentile(&d->histogram, 99);
		return;
	}
	qsort(d->values, d->count, sizeof(*d->values), compare_u64);
	f->p50_ns = percentile(d, 50);
	f->p99_ns = percentile(d, 99);
}

static void free_builder(struct summary_builder *b)
{
	for (size_t i = 0; b->durations && i < b->summary->function_count; i++) {
		free(b->durations[i].values);
		histogram__free(&b->durations[i].histogram);
	}
	free(b->durations);
	free(b->row_of_function);
	u64map_free(&b->thread_rows);
	free(b);
}

int trace_summary__init(struct trace_summary *s, const struct trace_file *trace, size_t top_polls,
			uint64_t long_poll_ns)
{
	struct summary_builder *b = calloc(1, sizeof(*b));
	int err;

	memset(s, 0, sizeof(*s));
	if (!b)
		return -ENOMEM;
	*b = (struct summary_builder){ .trace = trace, .summary = s, .top = top_polls, .long_poll_ns = long_poll_ns };
	s->builder = b;
	s->longest = calloc(top_polls + 1, sizeof(*s->longest));
	err = s->longest ? build_rows(b) : -ENOMEM;
	if (err)
		trace_summary__free(s);
	return err;
}

struct trace_consumer trace_summary__consumer(struct trace_summary *s)
{
	return (struct trace_consumer){ .poll = on_poll, .ctx = s->builder };
}

int trace_summary__finish(struct trace_summary *s, const struct poll_builder_stats *stats)
{
	struct summary_builder *b = s->builder;
	int err = b->err;

	if (stats)
		s->stats = *stats;
	for (size_t i = 0; !err && i < s->function_count; i++)
		finish_row(&s->functions[i], &b->durations[i]);
	free_builder(b);
	s->builder = NULL;
	return err;
}

int trace_summary__build(struct trace_summary *s, const struct trace_file *trace, size_t top_polls,
			 uint64_t long_poll_ns)
{
	struct poll_builder_stats stats;
	struct trace_consumer consumer;
	int err = trace_summary__init(s, trace, top_polls, long_poll_ns);

	if (err)
		return err;
	consumer = trace_summary__consumer(s);
	err = trace_file__pass(trace, &consumer, 1, &stats);
	if (!err)
		err = trace_summary__finish(s, &stats);
	if (err)
		trace_summary__free(s);
	return err;
}

void trace_summary__free(struct trace_summary *s)
{
	if (s->builder)
		free_builder(s->builder);
	free(s->functions);
	free(s->threads);
	free(s->longest);
	memset(s, 0, sizeof(*s));
}

static const char *const sort_keys[] = {
	[SORT_TOTAL] = "total", [SORT_POLLS] = "polls", [SORT_MEAN] = "mean",
	[SORT_MAX] = "max", [SORT_P99] = "p99", [SORT_NAME] = "name",
};

int summary_sort__parse(const char *key)
{
	for (size_t i = 0; i < sizeof(sort_keys) / sizeof(sort_keys[0]); i++)
		if (!strcmp(key, sort_keys[i]))
			return (int)i;
	return -1;
}

static uint64_t sort_value(const struct function_summary *f, enum summary_sort key)
{
	switch (key) {
	case SORT_POLLS: return f->polls;
	case SORT_MEAN: return f->mean_ns;
	case SORT_MAX: return f->max_ns;
	case SORT_P99: return f->p99_ns;
	default: return f->total_ns;
	}
}

static int compare_rows(const void *a, const void *b, void *ctx)
{
	const struct function_summary *x = a, *y = b;
	enum summary_sort key = *(const enum summary_sort *)ctx;
	uint64_t vx, vy;

	if (key == SORT_NAME)
		return strcmp(x->name, y->name);
	vx = sort_value(x, key);
	vy = sort_value(y, key);
	if (vx != vy)
		return vx > vy ? -1 : 1;
	return strcmp(x->name, y->name);
}

void trace_summary__sort(struct trace_summary *s, enum summary_sort key)
{
	qsort_r(s->functions, s->function_count, sizeof(*s->functions), compare_rows, &key);
}
