/* The in-process agent stamps records with the time stamp counter (one
 * rdtsc, ~7 ns here); traces are on CLOCK_MONOTONIC, which the eBPF side
 * reads too, so both backends share one timeline. record samples
 * (tsc, CLOCK_MONOTONIC) pairs as it drains and converts each record by
 * interpolating between the pairs around it: linear interpolation is never
 * worse than its two end points (~20 ns each), whatever NTP does to the
 * monotonic clock's rate in between. */
#ifndef ASYNCTRACE_PROBE_TSC_CLOCK_H
#define ASYNCTRACE_PROBE_TSC_CLOCK_H

#include <stddef.h>
#include <stdint.h>

struct tsc_point {
	uint64_t tsc;
	uint64_t ns;
	double rate;   /* ns per tick to the next point (the last: over the whole run) */
};

struct tsc_clock {
	struct tsc_point *points; /* increasing */
	size_t count;
	size_t capacity;
};

/* Adds a pair for now. Returns 0 or -ENOMEM. */
int tsc_clock__sample(struct tsc_clock *c);
/* ns on CLOCK_MONOTONIC for a tsc; *hint is where the previous lookup
 * ended (start at 0), so a run of increasing tsc values costs O(1) each. */
uint64_t tsc_clock__ns(struct tsc_clock *c, uint64_t tsc, size_t *hint);
void tsc_clock__free(struct tsc_clock *c);
uint64_t tsc_clock__read(void);
/* Whether the TSC is constant-rate and runs in every C-state (cpuinfo's
 * constant_tsc and nonstop_tsc), so one clock serves every CPU. */
int tsc_clock__usable(void);

#endif
