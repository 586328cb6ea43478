/* From events to polls: pairs each entry with its exit on the same thread,
 * by stack pointer. A frame a panic unwinds has no exit; it is closed, as
 * `unwound`, when a later event on its thread shows the stack above it. */
#ifndef ASYNCTRACE_TRACE_POLLS_H
#define ASYNCTRACE_TRACE_POLLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/trace.h"

enum poll_result {
	POLL_RESULT_UNKNOWN = 0, /* the function's Poll<T> layout is not known */
	POLL_RESULT_READY = 1,
	POLL_RESULT_PENDING = 2,
};

enum poll_end {
	POLL_END_RETURNED = 0,   /* an exit probe fired */
	POLL_END_UNWOUND = 1,    /* unwound by a panic (or left without an observed exit) */
	POLL_END_UNFINISHED = 2, /* still running when the trace ended */
};

struct poll {
	uint64_t start;
	uint64_t end;      /* for unwound polls: the event that revealed the unwinding */
	uint64_t future;   /* the `self` argument */
	uint64_t parent_future; /* the enclosing poll's, or 0 */
	uint64_t task;     /* the task (runtime task pointer) it is part of, or 0 */
	uint64_t path;     /* the chain of function names from the root: its call-tree node */
	uint64_t parent_path;
	uint64_t state;    /* exit: the future's state discriminant (has_state) */
	uint32_t func_id;
	uint32_t tid;
	uint32_t pid;
	uint32_t parent_func; /* enclosing probed function on this thread, or UINT32_MAX */
	uint16_t cpu;
	uint16_t depth;    /* probed frames below it on its thread */
	uint8_t result;    /* enum poll_result */
	uint8_t end_kind;  /* enum poll_end */
	/* A runtime shell: this poll ran other tasks' polls (tokio's worker
	 * loop runs inside a blocking task's poll). Its duration is the
	 * worker's lifetime, not work of its own. */
	uint8_t runs_tasks;
	uint8_t parent_runs_tasks; /* the enclosing poll is such a shell (so far) */
	uint8_t has_state;
	uint8_t forwarding; /* a wrapper like `<&mut F as Future>::poll` (see below) */
};

/* A probed moment that is not a poll: a wake, spawn, task allocation or
 * release, or a future's drop (by the role of event->func_id's function),
 * with what was being polled on its thread at that moment. */
struct hook {
	const struct trace_event *event;
	uint8_t role;      /* enum function_role */
	uint8_t in_poll;   /* a poll was running on the thread: fields below */
	uint8_t nested;    /* a wake inside a wake of the same task, a spawn called by a
			    * spawn right before: the same wake, the same spawn */
	uint32_t func_id;  /* the innermost running poll's function */
	uint64_t task;     /* its task, or 0 */
	uint64_t future;
};

/* Not a probed function's role: the hook callback is also told when a
 * task's chain of task polls starts (event = that entry), so a task is
 * known during its first poll, before any poll of it has closed. */
#define HOOK_TASK_POLL_START 0xff

typedef void (*hook_callback)(const struct hook *hook, void *ctx);

struct poll_builder_stats {
	uint64_t polls;
	uint64_t unwound;
	uint64_t unfinished;
	uint64_t orphan_exits; /* exits without a matching entry (attached mid-poll) */
	uint64_t bad_events;   /* unknown kind or function id: skipped */
	uint64_t hooks;        /* wakes, spawns, drops, ... */
};

typedef void (*poll_callback)(const struct poll *poll, void *ctx);

struct poll_builder;

struct poll_builder *poll_builder__new(const struct trace_function *functions, size_t count,
				       poll_callback callback, void *ctx);
void poll_builder__set_hook_callback(struct poll_builder *b, hook_callback callback, void *ctx);
/* Returns 0 or -ENOMEM. */
int poll_builder__add(struct poll_builder *b, const struct trace_event *event);
/* Closes frames still open as unfinished, ending at end_ts. */
void poll_builder__finish(struct poll_builder *b, uint64_t end_ts);
const struct poll_builder_stats *poll_builder__stats(const struct poll_builder *b);
void poll_builder__free(struct poll_builder *b);

/* Whether a poll function only forwards to the future it wraps. */
bool is_forwarding_wrapper(const char *name);

/* Ready/Pending from an exit event, by the function's Poll<T> layout. */
enum poll_result poll_result__decode(const struct trace_function *fn, const struct trace_event *exit);
const char *poll_result__name(enum poll_result result);
/* "returned", "unwound", "unfinished". */
const char *poll_end__name(enum poll_end end_kind);

/* A poll's start, as the begin callback sees it: the fields known at its
 * entry (start, future, function, thread, task, path, depth, parents);
 * end, result, state and end_kind are 0, runs_tasks is not known yet. */
void poll_builder__set_begin_callback(struct poll_builder *b, poll_callback callback, void *ctx);

/* One reader of a pass over a trace: any callback may be NULL. Polls reach
 * `poll` at their end, inner before outer; `poll_begin` at their entry,
 * in time order per thread; hooks at their moment. */
struct trace_consumer {
	poll_callback poll_begin;
	poll_callback poll;
	hook_callback hook;
	void *ctx;
};

#define TRACE_PASS_MAX_CONSUMERS 8

/* A pass fed one event at a time, in timestamp order: what a file pass
 * does, and what a live view does with events as they are recorded. */
struct trace_pass;
/* Returns 0, -EINVAL for more than TRACE_PASS_MAX_CONSUMERS, or -ENOMEM. */
int trace_pass__new(struct trace_pass **pass, const struct trace_function *functions, size_t function_count,
		    const struct trace_consumer *consumers, size_t count);
/* Returns 0 or -ENOMEM. */
int trace_pass__add(struct trace_pass *pass, const struct trace_event *event);
/* Closes the polls still open as unfinished at the last event's time; the
 * builder's counts into stats (may be NULL). */
void trace_pass__finish(struct trace_pass *pass, struct poll_builder_stats *stats);
void trace_pass__free(struct trace_pass *pass);

struct trace_file;
/* One pass over every event of a trace through one poll builder, every
 * poll, begin and hook handed to each consumer in the order given (a
 * consumer may read what an earlier one built from the same moment: the
 * task model before an exporter). Frames still open at the end are
 * unfinished at the last event's time. stats may be NULL. Returns 0,
 * -EINVAL for more than TRACE_PASS_MAX_CONSUMERS, or a negative errno. */
int trace_file__pass(const struct trace_file *trace, const struct trace_consumer *consumers, size_t count,
		     struct poll_builder_stats *stats);
/* trace_file__pass with the consumers on a second thread while this one
 * decodes and pairs the events: the same calls in the same order. What
 * trace_file__pass does for a trace of PASS_THREADED_MIN_EVENTS or more
 * on a machine with two CPUs or more (below it, a thread costs more than
 * it saves). */
#define PASS_THREADED_MIN_EVENTS 200000
int trace_file__pass_threaded(const struct trace_file *trace, const struct trace_consumer *consumers, size_t count,
			      struct poll_builder_stats *stats);
/* The same with one consumer that has only `poll`. */
int trace_file__replay_polls(const struct trace_file *trace, poll_callback callback, void *ctx,
			     struct poll_builder_stats *stats);

#endif
