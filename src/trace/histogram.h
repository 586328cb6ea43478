/* Durations in a log-linear histogram: exact below 64 ns, then 64 buckets
 * per power of two, so a percentile read from it is within 1/128 (0.8 %)
 * of the true value. Memory follows the powers of two seen (512 bytes
 * each), never the number of values; two histograms merge by adding. */
#ifndef ASYNCTRACE_TRACE_HISTOGRAM_H
#define ASYNCTRACE_TRACE_HISTOGRAM_H

#include <stdint.h>

#define HISTOGRAM_SUB_BITS 6
#define HISTOGRAM_GROUPS (64 - HISTOGRAM_SUB_BITS + 1)

struct histogram {
	uint64_t count;
	uint64_t max;
	uint64_t *groups[HISTOGRAM_GROUPS]; /* group 0: [0, 64) exactly; g: [2^(g+5), 2^(g+6)) */
};

/* Returns 0 or -ENOMEM. */
int histogram__add(struct histogram *h, uint64_t value);
/* Adds every value of `from` to `into`. Returns 0 or -ENOMEM. */
int histogram__merge(struct histogram *into, const struct histogram *from);
/* The nearest-rank percentile (pct of 100), as the middle of its bucket
 * (never above the largest value); 0 when empty. */
uint64_t histogram__percentile(const struct histogram *h, unsigned pct);
void histogram__free(struct histogram *h);

#endif
