/* The TSC -> CLOCK_MONOTONIC conversion the in-process backend relies on:
 * both backends' events must share one timeline to the microsecond. */
#include <time.h>

#include "probe/tsc_clock.h"
#include "unit.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t distance(uint64_t a, uint64_t b)
{
	return a > b ? a - b : b - a;
}

/* A (tsc, CLOCK_MONOTONIC) pair read together: of a few tries, the one
 * with the fewest ticks around the clock read (a preemption between two
 * reads, on a loaded machine, would put them milliseconds apart). */
static void read_pair(uint64_t *tsc, uint64_t *ns)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < 8; i++) {
		uint64_t t0 = tsc_clock__read(), n = mono_ns(), t1 = tsc_clock__read();

		if (t1 - t0 < best) {
			best = t1 - t0;
			*tsc = t0 + (t1 - t0) / 2;
			*ns = n;
		}
	}
}

UNIT_TEST(tsc_clock_matches_monotonic)
{
	struct tsc_clock c = { 0 };
	struct timespec pause = { 0, 3000000 };
	uint64_t tsc_mid, ns_mid, tsc_late, ns_late;
	size_t hint = 0;

	if (!tsc_clock__usable()) {
		unit_skip("no invariant TSC on this machine\n");
		return;
	}
	CHECK(tsc_clock__sample(&c) == 0);
	nanosleep(&pause, NULL);
	CHECK(tsc_clock__sample(&c) == 0);
	CHECK(c.count == 2);
	nanosleep(&pause, NULL);
	read_pair(&tsc_mid, &ns_mid);
	nanosleep(&pause, NULL);
	CHECK(tsc_clock__sample(&c) == 0);
	nanosleep(&pause, NULL);
	read_pair(&tsc_late, &ns_late);
	/* Interpolated between the pairs, and extrapolated past the last. */
	CHECK(distance(tsc_clock__ns(&c, tsc_mid, &hint), ns_mid) < 2000);
	CHECK(distance(tsc_clock__ns(&c, tsc_late, &hint), ns_late) < 5000);
	/* Monotonic for increasing counters, whatever the hint. */
	hint = c.count - 1;
	CHECK(tsc_clock__ns(&c, tsc_mid, &hint) < tsc_clock__ns(&c, tsc_mid + 1000000, &hint));
	tsc_clock__free(&c);
}
