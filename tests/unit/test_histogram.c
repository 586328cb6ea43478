/* The log-linear histogram behind report's percentiles: exact below 64,
 * within 1/128 of the true nearest-rank value above, mergeable. */
#include <stdlib.h>
#include <string.h>

#include "trace/histogram.h"
#include "unit.h"

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t exact_percentile(const uint64_t *sorted, size_t n, unsigned pct)
{
	size_t rank = (n * pct + 99) / 100;

	return sorted[rank ? rank - 1 : 0];
}

/* Within 1/128 of the true value (the middle of a bucket 1/64 wide). */
static int close_enough(uint64_t got, uint64_t want)
{
	uint64_t diff = got > want ? got - want : want - got;

	return diff * 128 <= want;
}

UNIT_TEST(histogram_small_values_are_exact)
{
	struct histogram h = { 0 };

	for (uint64_t v = 0; v < 64; v++)
		CHECK(histogram__add(&h, v) == 0);
	CHECK(h.count == 64 && h.max == 63);
	CHECK(histogram__percentile(&h, 50) == 31);
	CHECK(histogram__percentile(&h, 99) == 63);
	CHECK(histogram__percentile(&h, 1) == 0);
	histogram__free(&h);
	CHECK(histogram__percentile(&h, 50) == 0); /* empty */
}

UNIT_TEST(histogram_percentiles_within_one_128th)
{
	enum { N = 100000 };
	uint64_t *values = malloc(N * sizeof(*values));
	struct histogram h = { 0 };
	uint64_t x = 88172645463325252ULL;
	unsigned bad = 0;

	CHECK(values != NULL);
	if (!values)
		return;
	for (size_t i = 0; i < N; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift: spread over 2^0 .. 2^40 */
		values[i] = (x >> 24) >> (x % 40);
		CHECK(histogram__add(&h, values[i]) == 0);
	}
	qsort(values, N, sizeof(*values), compare_u64);
	for (unsigned pct = 1; pct <= 100; pct++) {
		uint64_t want = exact_percentile(values, N, pct), got = histogram__percentile(&h, pct);

		bad += !close_enough(got, want);
	}
	CHECK(bad == 0);
	CHECK(h.max == values[N - 1] && histogram__percentile(&h, 100) <= h.max);
	/* a value at the top of the range has a group too */
	CHECK(histogram__add(&h, UINT64_MAX) == 0 && h.max == UINT64_MAX);
	histogram__free(&h);
	free(values);
}

UNIT_TEST(histogram_merge_is_adding)
{
	struct histogram a = { 0 }, b = { 0 }, all = { 0 };

	for (uint64_t v = 1; v < 300000; v += 7) {
		CHECK(histogram__add(v % 3 ? &a : &b, v * 13) == 0);
		CHECK(histogram__add(&all, v * 13) == 0);
	}
	CHECK(histogram__merge(&a, &b) == 0);
	CHECK(a.count == all.count && a.max == all.max);
	for (unsigned pct = 1; pct <= 100; pct += 7)
		CHECK(histogram__percentile(&a, pct) == histogram__percentile(&all, pct));
	for (unsigned g = 0; g < HISTOGRAM_GROUPS; g++)
		CHECK(!a.groups[g] == !all.groups[g] &&
		      (!a.groups[g] || !memcmp(a.groups[g], all.groups[g], 64 * sizeof(uint64_t))));
	histogram__free(&a);
	histogram__free(&b);
	histogram__free(&all);
}
