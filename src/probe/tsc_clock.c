#include "probe/tsc_clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/array.h"

/* Pairs closer than this are merged: the last one moves forward instead. */
#define MIN_SPACING_NS 20000000ull

uint64_t tsc_clock__read(void)
{
#if defined(__x86_64__)
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
#else
	return 0;
#endif
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* The tightest of a few (clock, tsc, clock) readings: the tsc sits in the
 * middle of its bracket. */
static struct tsc_point measure(void)
{
	struct tsc_point best = { 0 };
	uint64_t best_width = UINT64_MAX;

	for (int i = 0; i < 7; i++) {
		uint64_t before = monotonic_ns(), tsc = tsc_clock__read(), after = monotonic_ns();

		if (after - before < best_width) {
			best_width = after - before;
			best = (struct tsc_point){ .tsc = tsc, .ns = before + (after - before) / 2 };
		}
	}
	return best;
}

static double rate_between(const struct tsc_point *a, const struct tsc_point *b)
{
	return b->tsc > a->tsc ? (double)(b->ns - a->ns) / (double)(b->tsc - a->tsc) : 0;
}

/* The last point extrapolates with the rate over the whole run. */
static void set_rates(struct tsc_clock *c)
{
	struct tsc_point *first = &c->points[0], *last = &c->points[c->count - 1];

	if (c->count >= 2)
		c->points[c->count - 2].rate = rate_between(&c->points[c->count - 2], last);
	last->rate = c->count >= 2 ? rate_between(first, last) : 0;
}

static int append(struct tsc_clock *c, struct tsc_point p)
{
	if (c->count >= 2 && p.ns - c->points[c->count - 2].ns < MIN_SPACING_NS) {
		c->points[c->count - 1] = p;
	} else {
		if (ARRAY_RESERVE(c->points, c->capacity, c->count + 1))
			return -ENOMEM;
		c->points[c->count++] = p;
	}
	set_rates(c);
	return 0;
}

/* Records are converted only after a pair later than all of them was
 * taken (record samples after collecting buffers, and once before the
 * target starts), so conversion interpolates; the overall rate extrapolates
 * only in a case that does not arise, and a short run needs no wait. */
int tsc_clock__sample(struct tsc_clock *c)
{
	return append(c, measure());
}

uint64_t tsc_clock__ns(struct tsc_clock *c, uint64_t tsc, size_t *hint)
{
	size_t i = *hint < c->count ? *hint : 0;
	const struct tsc_point *a;

	if (!c->count)
		return 0;
	if (tsc < c->points[i].tsc)
		i = 0;
	while (i + 1 < c->count && c->points[i + 1].tsc <= tsc)
		i++;
	*hint = i;
	a = &c->points[i];
	if (tsc < a->tsc) /* before the first point: cannot happen (it precedes the target) */
		return a->ns - (uint64_t)((double)(a->tsc - tsc) * c->points[c->count - 1].rate);
	return a->ns + (uint64_t)((double)(tsc - a->tsc) * a->rate);
}

void tsc_clock__free(struct tsc_clock *c)
{
	free(c->points);
	*c = (struct tsc_clock){ 0 };
}

int tsc_clock__usable(void)
{
#if defined(__x86_64__)
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[4096];
	int constant = 0, nonstop = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		constant = strstr(line, " constant_tsc") != NULL;
		nonstop = strstr(line, " nonstop_tsc") != NULL;
		break;
	}
	fclose(f);
	return constant && nonstop;
#else
	return 0;
#endif
}
