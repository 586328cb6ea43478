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

/* What a sample is: an on-CPU sample, or (with switches) a thread
 * leaving the CPU, voluntarily (it blocked: the stack where) or preempted,
 * and coming back. Values are the trace's (trace/trace.h). */
enum cpu_sample_kind {
	SAMPLE_ON_CPU = 0,
	SAMPLE_BLOCKED_AT = 1,    /* the user stack at a switch-out */
	SAMPLE_SWITCH_OUT = 2,    /* voluntary: the thread slept or blocked */
	SAMPLE_PREEMPTED = 3,     /* involuntary: still runnable */
	SAMPLE_SWITCH_IN = 4,
};

struct cpu_sample {
	uint64_t ts;             /* CLOCK_MONOTONIC ns */
	unsigned kind;           /* enum cpu_sample_kind */
	uint32_t pid, tid;
	uint32_t frame_count;
	const uint64_t *frames;  /* user addresses, the sampled one first; valid during the callback */
	/* With a register mask (DWARF mode) instead of frames: the user
	 * registers (the mask's bits in order) and the copy of the stack from
	 * the stack pointer up; NULL when the sample has none (in the kernel). */
	const uint64_t *regs;
	unsigned reg_count;
	const uint8_t *stack;
	size_t stack_len;
};

/* Bytes of user stack copied with each sample in DWARF mode: perf's
 * default. Enough for a debug tokio task's stack from the blocking call
 * to _start (42 frames, measured); 16 KiB cost 1.5 % more of a CPU-bound
 * program's time at 999 Hz (docs/performance.md). */
#define SAMPLER_STACK_COPY 8192

/* Called per sample; a negative return stops the drain and is returned. */
typedef int (*cpu_sample_fn)(const struct cpu_sample *sample, void *ctx);

/* Samples `pid` and its future threads at `hz` once it execs (a held
 * child: sampling starts with its program, not with our exec wrapper), or
 * at once when `on_exec` is false (a running process: its existing
 * threads are not followed, only those it starts later). Returns 0 or a
 * negative errno of perf_event_open (-EACCES/-EPERM: not allowed,
 * -ENOENT/-ENODEV: no such event). regs_mask 0: call chains from frame
 * pointers; else the user registers it names and SAMPLER_STACK_COPY bytes
 * of stack, for DWARF unwinding. */
int sampler__open(struct sampler **out, pid_t pid, unsigned hz, int on_exec, uint64_t regs_mask);
/* Also every context switch of the same threads, with the user stack of a
 * switch-out: what a blocking poll was waiting in. A context-switch event
 * counts in the kernel, so this needs perf_event_paranoid <= 1 or root
 * (-EACCES otherwise, and the sampler goes on without). */
int sampler__add_switches(struct sampler *s);
/* Hands over every sample the kernel holds now. Returns 0 or the
 * callback's negative value. */
int sampler__drain(struct sampler *s, cpu_sample_fn fn, void *ctx);
/* Samples the kernel dropped (its buffer was full). */
uint64_t sampler__lost(const struct sampler *s);
void sampler__free(struct sampler *s);

#endif
