#include "trace/histogram.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SUB_BUCKETS (1u << HISTOGRAM_SUB_BITS)

static unsigned top_bit(uint64_t v)
{
	return 63u - (unsigned)__builtin_clzll(v);
}

/* Group and bucket of a value: below 64 itself; above, its top bit picks
 * the group and the 6 bits after it the bucket. */
static void locate(uint64_t v, unsigned *group, unsigned *bucket)
{
	unsigned shift;

	if (v < SUB_BUCKETS) {
		*group = 0;
		*bucket = (unsigned)v;
		return;
	}
	shift = top_bit(v) - HISTOGRAM_SUB_BITS;
	*group = shift + 1;
	*bucket = (unsigned)(v >> shift) & (SUB_BUCKETS - 1);
}

static uint64_t *group_of(struct histogram *h, unsigned group)
{
	if (!h->groups[group])
		h->groups[group] = calloc(SUB_BUCKETS, sizeof(uint64_t));
	return h->groups[group];
}

int histogram__add(struct histogram *h, uint64_t value)
{
	unsigned group, bucket;
	uint64_t *counts;

	locate(value, &group, &bucket);
	counts = group_of(h, group);
	if (!counts)
		return -ENOMEM;
	counts[bucket]++;
	h->count++;
	if (value > h->max)
		h->max = value;
	return 0;
}

int histogram__merge(struct histogram *into, const struct histogram *from)
{
	for (unsigned g = 0; g < HISTOGRAM_GROUPS; g++) {
		uint64_t *counts;

		if (!from->groups[g])
			continue;
		counts = group_of(into, g);
		if (!counts)
			return -ENOMEM;
		for (unsigned b = 0; b < SUB_BUCKETS; b++)
			counts[b] += from->groups[g][b];
	}
	into->count += from->count;
	if (from->max > into->max)
		into->max = from->max;
	return 0;
}

/* The middle of a bucket: exact in group 0, else its low bound plus half
 * its width. */
static uint64_t bucket_value(unsigned group, unsigned bucket)
{
	unsigned shift;
	uint64_t low;

	if (group == 0)
		return bucket;
	shift = group - 1;
	low = (uint64_t)(SUB_BUCKETS + bucket) << shift;
	return low + ((1ULL << shift) >> 1);
}

uint64_t histogram__percentile(const struct histogram *h, unsigned pct)
{
	uint64_t rank = (h->count * pct + 99) / 100, seen = 0;

	if (!h->count)
		return 0;
	if (!rank)
		rank = 1;
	for (unsigned g = 0; g < HISTOGRAM_GROUPS; g++) {
		if (!h->groups[g])
			continue;
		for (unsigned b = 0; b < SUB_BUCKETS; b++) {
			seen += h->groups[g][b];
			if (seen >= rank) {
				uint64_t v = bucket_value(g, b);

				return v < h->max ? v : h->max;
			}
		}
	}
	return h->max;
}

void histogram__free(struct histogram *h)
{
	for (unsigned g = 0; g < HISTOGRAM_GROUPS; g++)
		free(h->groups[g]);
	memset(h, 0, sizeof(*h));
}
