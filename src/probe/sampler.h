/* On-CPU sampling of a process and every thread it starts, as `perf
 * record -e cpu-clock -g` does: a software cpu-clock event per CPU,
 * inherited by new threads, sampling at a frequency, each sample with its
 * thread, its time on CLOCK_MONOTONIC (the trace's clock) and its user
 * call chain from frame pointers. User space only, so it needs no root
 * where perf_event_paranoid allows profiling one's own processes (<= 2). */
#ifndef ASYNCTRACE_PROBE_SAMPLER_H
#define ASYNCTRACE_PROBE_SAMPLER_H

#include <stdint.h>
#include <sys/types.h>

struct sampler;

struct cpu_sample {
	uint64_t ts;             /* CLOCK_MONOTONIC ns */
	uint32_t pid, tid;
	uint32_t frame_count;
	const uint64_t *frames;  /* user addresses, the sampled one first; valid during the callback */
};

/* Called per sample; a negative return stops the drain and is returned. */
typedef int (*cpu_sample_fn)(const struct cpu_sample *sample, void *ctx);

/* Samples `pid` and its future threads at `hz` once it execs (a held
 * child: sampling starts with its program, not with our exec wrapper), or
 * at once when `on_exec` is false (a running process: its existing
 * threads are not followed, only those it starts later). Returns 0 or a
 * negative errno of perf_event_open (-EACCES/-EPERM: not allowed,
 * -ENOENT/-ENODEV: no such event). */
int sampler__open(struct sampler **out, pid_t pid, unsigned hz, int on_exec);
/* Hands over every sample the kernel holds now. Returns 0 or the
 * callback's negative value. */
int sampler__drain(struct sampler *s, cpu_sample_fn fn, void *ctx);
/* Samples the kernel dropped (its buffer was full). */
uint64_t sampler__lost(const struct sampler *s);
void sampler__free(struct sampler *s);

#endif
