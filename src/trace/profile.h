/* On-CPU samples joined with the polls of the same run: each sample gets
 * the chain of polls open on its thread at its instant (innermost first)
 * and the task they belong to. Fed by a pass (a consumer after the task
 * model), so the live view and the exporters share it. Samples are few
 * next to events (a profiler's rate), so what is kept is per sample. */
#ifndef ASYNCTRACE_TRACE_PROFILE_H
#define ASYNCTRACE_TRACE_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/polls.h"
#include "trace/reader.h"
#include "trace/tasks.h"

#define PROFILE_MAX_ASYNC 32

/* What ran when sample i (of trace->samples) was taken. */
struct sample_context {
	uint32_t task;                     /* task id, 0 none */
	uint16_t poll_count;               /* polls open, at most PROFILE_MAX_ASYNC kept */
	uint32_t polls[PROFILE_MAX_ASYNC]; /* their function ids, innermost first */
};

/* A thread off the CPU because it waited (slept, blocked in a syscall):
 * from a voluntary switch-out to its switch-in. */
struct offcpu {
	uint64_t start, end;
	uint32_t tid;
	int64_t stack;                     /* the BLOCKED_AT sample with its stack, -1 none */
	bool claimed;                      /* by the innermost poll around it */
	bool preempted;                    /* runnable all along: off CPU, but no wait */
};

/* A poll that ran on the CPU for long (its duration less its time off
 * CPU): the innermost such poll, not the ones around it. */
struct heavy_poll {
	uint64_t start, end;
	uint64_t oncpu_ns;
	uint32_t func_id;
	uint32_t tid;
	uint32_t task;
};

/* A poll that made its thread wait: the executor could run nothing else. */
struct blocking_poll {
	uint64_t start, end;
	uint64_t offcpu_ns;
	uint32_t func_id;
	uint32_t tid;
	uint32_t task;                     /* 0 none */
	size_t waits;                      /* off-CPU intervals inside it */
	int64_t stack;                     /* the longest wait's stack sample, -1 none */
	char syscalls[4][32];              /* the libc functions it entered the kernel through ("" none) */
};

/* Voluntary off-CPU time in one poll from which it is reported. */
#define BLOCKING_MIN_NS 1000000ULL

struct profile {
	const struct trace_file *trace;
	const struct task_model *model;    /* may be NULL: no tasks */
	struct sample_context *contexts;   /* per sample */
	/* private: each thread's samples, [first, first + count) */
	struct u64map thread_range;        /* tid + 1 -> index of ranges + 1 */
	struct { size_t first, count; } *ranges;
	uint32_t cached_tid;
	size_t cached_range;
	/* Off-CPU intervals, by thread then time, and the polls they made
	 * block (at least BLOCKING_MIN_NS of waiting). */
	struct offcpu *waits;
	size_t wait_count;
	struct blocking_poll *blocking;
	size_t blocking_count, blocking_cap;
	/* With switches recorded: the polls on CPU for heavy_min_ns or more
	 * (set before the pass; profile__init makes it LONG_POLL_NS_DEFAULT). */
	uint64_t heavy_min_ns;
	struct heavy_poll *heavy;
	size_t heavy_count, heavy_cap;
	bool has_switches;                 /* the trace recorded context switches */
};

/* Returns 0 or -ENOMEM. */
int profile__init(struct profile *p, const struct trace_file *trace, const struct task_model *model);
/* A task model (without folding: samples name tasks by id) and the
 * profile, built in one pass of their own and finished. Returns 0 or a
 * negative errno; on success both are the caller's to free. */
int profile__build(struct profile *p, struct task_model *model, const struct trace_file *trace);
/* Hand to trace_file__pass after the task model's consumer. */
struct trace_consumer profile__consumer(struct profile *p);
void profile__free(struct profile *p);

/* What a flame graph is rooted at. */
enum profile_group {
	PROFILE_BY_TASK,     /* "task N: FUTURE", then its futures */
	PROFILE_BY_FUNCTION, /* the outermost future itself */
	PROFILE_BY_THREAD,   /* "NAME/TID", then the task */
};

/* A sample's stack, root first, one call of emit per frame: the root the
 * grouping asks for ("[runtime]" for a sample outside every poll), the
 * futures being polled outer to inner (not the runtime's task polls: the
 * root names the task), then the native frames below the innermost poll
 * (named from the trace's FRAMES, else "0xADDR"). Names are valid during
 * the call. Needs the task model finished (task names). */
enum profile_frame_kind {
	PROFILE_FRAME_ROOT,   /* the task, thread, "[runtime]" or "[no task]" */
	PROFILE_FRAME_FUTURE, /* a future being polled */
	PROFILE_FRAME_NATIVE, /* a native frame below the innermost poll */
};
/* A frame: its name, kind and source place (file NULL, line 0: unknown). */
typedef void (*profile_frame_fn)(const char *name, enum profile_frame_kind kind, const char *file, uint32_t line,
				 void *ctx);
void profile__stack(const struct profile *p, size_t sample, enum profile_group by, profile_frame_fn emit,
		    void *ctx);

/* Where a sample's native frames meet its innermost poll: how many of its
 * frames (leaf first) ran below that poll's function. With a chain that
 * does not reach the poll function (frame pointers missing), the sampled
 * frame alone; with no poll open, every frame. */
uint32_t profile__frames_below(const struct profile *p, size_t sample);

/* The name of the syscall a wait's stack entered the kernel by: its libc
 * function's, without the library's prefixes and versions (read,
 * clock_nanosleep, futex, epoll_wait), written into buf. */
void profile__syscall_name(const struct profile *p, int64_t stack, char *buf, size_t len);

/* A sampled address's function (the trace's FRAMES), else "0xADDR" in buf. */
const char *profile__frame_name(const struct profile *p, uint64_t addr, char *buf, size_t len);

/* Samples per task and per innermost future, most first. */
struct profile_count {
	uint32_t id;       /* task id, or function id */
	uint64_t samples;
};

struct profile_summary {
	uint64_t samples;
	uint64_t outside_polls;  /* the runtime: scheduler, I/O driver, no future polled */
	uint64_t outside_tasks;  /* in polls, but of no task (block_on's future, ...) */
	struct profile_count *tasks;
	size_t task_count;
	struct profile_count *functions; /* the innermost poll's function (not a task poll) */
	size_t function_count;
};

/* After the pass. Returns 0 or -ENOMEM. */
int profile__summarize(const struct profile *p, struct profile_summary *s);
void profile_summary__free(struct profile_summary *s);

#endif
