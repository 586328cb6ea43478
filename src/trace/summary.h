/* Per-function and per-thread summaries of a trace's polls: what `report`
 * prints. Functions with the same demangled name (monomorphised copies of
 * one generic async fn) are one row. */
#ifndef ASYNCTRACE_TRACE_SUMMARY_H
#define ASYNCTRACE_TRACE_SUMMARY_H

#include <stddef.h>
#include <stdint.h>

#include "trace/polls.h"
#include "trace/reader.h"

/* Polls longer than this block their worker thread: report's --long-poll
 * default, and the exporters' colour for a long poll. */
#define LONG_POLL_NS_DEFAULT 10000000ULL

struct function_summary {
	const char *name;       /* borrowed from the trace */
	uint32_t first_func_id; /* for address, context, location */
	uint32_t copies;        /* function-table entries merged into this row */
	uint32_t inlined;       /* of them, async bodies inlined into another function
				 * (TRACE_FUNCTION_INLINED: their polls end with their caller's) */
	uint32_t approximate;   /* of those, counted approximately (TRACE_FUNCTION_APPROXIMATE) */
	uint64_t polls;         /* every poll, however it ended */
	uint64_t ready;
	uint64_t pending;
	uint64_t unknown;       /* returned, result not decodable */
	uint64_t unwound;
	uint64_t unfinished;
	/* Durations of returned and unwound polls (unwound: an upper bound). */
	uint64_t timed;
	uint64_t total_ns;
	uint64_t mean_ns;
	uint64_t p50_ns;
	uint64_t p99_ns;
	uint64_t max_ns;
	uint64_t long_polls;    /* longer than the threshold (runtime shells excepted) */
};

struct thread_summary {
	uint32_t tid;
	const char *name;       /* borrowed; NULL when unknown */
	uint64_t polls;         /* outermost polls, not counting runtime shells */
	uint64_t busy_ns;       /* time inside them */
};

struct longest_poll {
	struct poll poll;
	uint64_t duration_ns;
};

struct trace_summary {
	struct function_summary *functions;
	size_t function_count;
	struct thread_summary *threads;
	size_t thread_count;
	struct longest_poll *longest; /* longest first; runtime shells left out */
	size_t longest_count;
	struct poll_builder_stats stats;
	uint64_t long_polls;
	uint64_t first_ts;
	uint64_t last_ts;
	void *builder;          /* private, during a pass */
};

/* A summary fed by a pass (trace/polls.h): init, hand
 * trace_summary__consumer to trace_file__pass, then finish with the pass's
 * stats. It keeps the `top_polls` longest polls; polls longer than
 * long_poll_ns (0: none) are counted as long. Percentiles are exact up to
 * 4096 timed polls of a row, then read from a log-linear histogram
 * (trace/histogram.h: within 0.8 %); memory grows with rows and threads,
 * not polls. Each returns 0 or -ENOMEM; a failed init leaves nothing to
 * free, anything else is freed with trace_summary__free. */
int trace_summary__init(struct trace_summary *summary, const struct trace_file *trace, size_t top_polls,
			uint64_t long_poll_ns);
struct trace_consumer trace_summary__consumer(struct trace_summary *summary);
int trace_summary__finish(struct trace_summary *summary, const struct poll_builder_stats *stats);
/* init, a pass of its own, finish. */
int trace_summary__build(struct trace_summary *summary, const struct trace_file *trace,
			 size_t top_polls, uint64_t long_poll_ns);
void trace_summary__free(struct trace_summary *summary);

enum summary_sort {
	SORT_TOTAL, SORT_POLLS, SORT_MEAN, SORT_MAX, SORT_P99, SORT_NAME,
};
/* Returns -1 for an unknown key. */
int summary_sort__parse(const char *key);
void trace_summary__sort(struct trace_summary *summary, enum summary_sort key);

#endif
