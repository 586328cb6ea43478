/* Async semantics from a trace: task instances and their lifecycles
 * (spawn, polls, wakes, completion or cancellation), future instances, and
 * each task's async call tree, with where its futures waited. */
#ifndef ASYNCTRACE_TRACE_TASKS_H
#define ASYNCTRACE_TRACE_TASKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/polls.h"
#include "trace/reader.h"
#include "util/u64map.h"

enum task_state {
	TASK_PENDING = 0,   /* neither finished nor dropped when the trace ended */
	TASK_COMPLETED = 1, /* its future returned Ready (or it was released after a Ready) */
	TASK_CANCELLED = 2, /* dropped or released while its future was still Pending */
};

#define NO_FUNCTION UINT32_MAX

struct task {
	uint32_t id;            /* 1, 2, ... in order of appearance */
	uint32_t parent;        /* id of the task that spawned it, 0 if none or unknown */
	uint64_t ptr;           /* the runtime's task pointer; 0 for a thread's block_on */
	uint32_t root_func;     /* that future's poll function, or NO_FUNCTION */
	uint32_t name_func;     /* what the task runs, for people: the root, or the first
				 * future below runtime/combinator wrappers (futures'
				 * Remote, CatchUnwind, ...); NO_FUNCTION if unknown */
	uint32_t park_func;     /* innermost async body where its last Pending parked */
	uint32_t park_line;     /* the line of that .await, 0 unknown */
	uint64_t spawn_site;    /* return address of the spawn call, 0 unknown */
	uint64_t created;       /* spawn (task allocation) time, else first poll start */
	uint64_t first_poll;
	uint64_t ended;         /* completion/cancellation time, 0 while pending */
	uint64_t last_seen;     /* last poll end or hook */
	uint64_t polls;
	uint64_t busy_ns;
	uint64_t sched_wait_ns; /* wake -> next poll start */
	uint64_t wakes;
	uint64_t wakes_by_ref;
	uint64_t self_wakes;
	uint64_t wakes_after_end;
	uint8_t state;          /* enum task_state */
	uint8_t last_pending;   /* its last poll returned Pending */
	uint32_t first_node;    /* its call tree: index of the root node, or NO_FUNCTION */
	/* private: wakes waiting for the next poll (indexes + 1, linked by
	 * wake.next), and the deepest park seen in the running task poll */
	uint32_t waiting_head;
	uint32_t waiting_tail;
	uint32_t previous;      /* the task before it under the same key (address reuse), + 1 */
	uint32_t poll_park_func;
	uint32_t poll_park_line;
	uint16_t poll_park_depth;
	uint8_t freed;          /* its memory was released (or reused by a new task) */
	uint32_t live_futures;  /* future instances of it still live */
	uint32_t own_nodes;     /* its nodes: index + 1, linked by tree_node.next_own */
};

/* One node of a task's async call tree: a function at a position in the
 * tree (the chain of functions from the task's root future), over every
 * future instance that sat there. */
struct tree_node {
	uint32_t task;          /* id */
	uint32_t func_id;
	uint64_t path;
	uint64_t parent_path;
	uint32_t parent;        /* node index, NO_FUNCTION for the root */
	uint32_t first_child;   /* node index or NO_FUNCTION; siblings by next */
	uint32_t next;
	uint64_t polls;
	uint64_t ready;
	uint64_t pending;
	uint64_t unwound;
	uint64_t busy_ns;
	uint64_t wait_ns;       /* a future's Pending -> its next poll */
	uint64_t instances;     /* distinct futures polled there */
	uint64_t cancelled;     /* of which dropped before Ready */
	uint64_t first_start;   /* orders siblings */
	uint64_t last_ready;    /* end of the last poll that returned Ready: which join!
				 * child finished last */
	/* the .awaits its Pendings parked at: up to 4 lines with counts */
	uint32_t park_lines[4];
	uint32_t park_counts[4];
	uint32_t next_own;      /* private: the task's next node + 1 */
};

/* The .await a node's futures parked at most often, 0 unknown. */
uint32_t tree_node__top_park_line(const struct tree_node *node);

struct wake {
	uint64_t ts;
	uint64_t poll_ts;       /* start of the poll it led to, 0 none */
	uint32_t tid;           /* waking thread */
	uint32_t target;        /* task id */
	uint32_t waker;         /* task id of the waker, 0 a thread outside tasks */
	uint32_t poll_tid;      /* thread of that poll */
	uint8_t by_ref;
	uint8_t self;
	uint32_t next;          /* private: the target's next waiting wake + 1 */
	uint64_t ordinal;       /* 1, 2, ...: its place among the wakes of known tasks */
};

/* A spawn call, and whether a task took it as its origin. */
struct spawn {
	uint64_t ts;
	uint64_t site;          /* return address of the outermost spawn call */
	uint32_t parent;        /* the task that called it, 0 none */
	uint32_t tid;           /* the thread that called it */
	uint8_t consumed;
};

/* A future dropped before it returned Ready. */
struct cancellation {
	uint64_t ts;
	uint32_t task;          /* id */
	uint32_t func_id;       /* its poll function */
};

#define LATENCY_BUCKETS 40      /* log2 ns: bucket i holds [2^i, 2^(i+1)) */

/* Wakes of one task by one waker (a task, a thread outside tasks, or
 * itself), of one kind. */
struct wake_pair {
	uint32_t target;        /* task id */
	uint32_t waker;         /* task id, 0: a thread (tid) or self */
	uint32_t tid;           /* the first wake's thread */
	uint8_t self;
	uint8_t by_ref;
	uint64_t count;
};

/* Wakes grouped by the woken task's name, the waker's and the kind. */
struct wake_group {
	uint32_t target_func;   /* the woken tasks' name_func */
	uint32_t waker_func;    /* NO_FUNCTION: a thread outside tasks, or self */
	uint32_t tid;           /* for thread wakers */
	uint8_t self;
	uint8_t by_ref;
	uint64_t count;
};

enum task_model_flags {
	/* Keep every wake and cancellation in `wakes` and `cancellations`,
	 * for consumers that read them after the pass. Without it the model's
	 * memory grows with tasks and call-tree nodes, not with events. */
	TASK_MODEL_KEEP_HISTORY = 1,
	/* Fold a task away once nothing can refer to it again (the runtime
	 * released its memory and its futures are gone): its warnings go to
	 * the folded counts, its memory (task, nodes) is reused. Memory then
	 * follows live tasks; ids are reused, trees and the task list are
	 * not kept. For analyses that list no task (report's summary). */
	TASK_MODEL_FOLD = 2,
};

struct task_model {
	const struct trace_file *trace;
	unsigned flags;          /* enum task_model_flags */
	struct task *tasks;
	size_t task_count;
	size_t task_capacity;
	struct tree_node *nodes;
	size_t node_count;
	size_t node_capacity;
	/* With TASK_MODEL_KEEP_HISTORY, every wake in order (else the storage
	 * of the waiting ones: not to be read) */
	struct wake *wakes;
	size_t wake_count;
	size_t wake_capacity;
	struct cancellation *cancellations; /* with TASK_MODEL_KEEP_HISTORY */
	size_t cancellation_count;
	size_t cancellation_capacity;
	uint64_t wake_total;     /* wakes of known tasks (a nested wake is one) */
	uint64_t cancelled_total;
	struct wake_pair *wake_pairs; /* in order of their first wake */
	size_t wake_pair_count;
	size_t wake_pair_capacity;
	uint64_t wake_latency[LATENCY_BUCKETS];
	uint64_t tasks_folded;   /* TASK_MODEL_FOLD: tasks whose slots were reused */
	uint64_t folded_self_wakes;
	uint64_t folded_wakes_after_end;
	uint64_t wakes_unknown;  /* wakes of tasks never seen polled */
	uint64_t spawns;         /* tasks whose spawn call was traced */
	struct poll_builder_stats stats;
	/* Told during the pass, for consumers that stream (may be NULL). */
	void (*on_wake)(const struct wake *w, bool answerable, void *ctx); /* answerable: its task is pending */
	void (*on_wake_answered)(const struct wake *w, void *ctx);
	void (*on_cancel)(const struct cancellation *c, void *ctx);
	void *callback_ctx;
	/* private */
	struct u64map live_tasks;    /* ptr (or tid | 1<<63) -> task index + 1 */
	struct u64map latest_tasks;  /* the same key -> newest task index + 1, ever */
	struct u64map node_index;    /* hash(task, path) -> node index + 1 */
	struct u64map futures;       /* live future (address, type) -> struct future_slot * */
	struct u64map dropped_types; /* name hash | 1 of future types whose drops are probed */
	struct u64map spawning;      /* tid + 1 -> the thread's latest spawn: index + 1 */
	struct u64map wake_pair_index; /* hash(target, waker, kind) -> wake_pairs index + 1 */
	uint32_t free_wakes;         /* answered wake slots to reuse + 1, linked by next */
	uint32_t free_tasks;         /* folded task slots + 1, linked by own_nodes */
	uint32_t free_nodes;         /* folded node slots + 1, linked by next_own */
	uint64_t *name_hashes;       /* per function */
	uint64_t cached_key;         /* the last live_tasks hit */
	size_t cached_index;
	uint64_t cached_pair_key;    /* the last wake pair counted */
	size_t cached_pair;
	struct spawn *spawn_queue;   /* spawns from spawn_base on, in order */
	size_t spawn_base;           /* spawns before it were consumed and dropped */
	size_t spawn_count;          /* in the queue */
	size_t spawn_capacity;
	size_t spawn_head;           /* oldest maybe unconsumed, counted from spawn_base */
	bool allocations_seen;       /* the runtime allocates its tasks through a hook */
	int err;
};

/* A model to feed through a pass (trace/polls.h): init, hand
 * task_model__consumer to trace_file__pass (before the consumers that ask
 * it which task a poll is), then finish. Returns 0 or -ENOMEM. */
int task_model__init(struct task_model *model, const struct trace_file *trace, unsigned flags);
struct trace_consumer task_model__consumer(struct task_model *model);
/* After the pass: links the call trees and names the tasks. Returns 0 or
 * the error met during the pass (-ENOMEM). */
int task_model__finish(struct task_model *model);
/* Wakes grouped (struct wake_group), in order of their first wake; *out
 * is the caller's to free. Returns 0 or -ENOMEM. */
int task_model__wake_groups(const struct task_model *model, struct wake_group **out, size_t *count);

/* init, a pass of its own, finish. Returns 0 or -ENOMEM. */
int task_model__build(struct task_model *model, const struct trace_file *trace, unsigned flags);
void task_model__free(struct task_model *model);

const char *task_state__name(enum task_state state);
/* "self-wake", "wake_by_ref" or "wake". */
const char *wake__name(const struct wake *w);

#define FUTURE_PARK_LINES 16

struct future_park {
	uint32_t line;
	uint64_t count;
};

/* A function's futures over every task, its copies (functions of the same
 * name) included. */
struct future_summary {
	uint64_t instances;
	uint64_t cancelled;        /* dropped before Ready */
	uint32_t last_func;        /* the function of the last node met (for await files), NO_FUNCTION none */
	size_t park_count;
	struct future_park parks[FUTURE_PARK_LINES]; /* .awaits parked at, in order of first node */
};

/* Per function id, after task_model__finish; *out is the caller's to free.
 * Returns 0 or -ENOMEM. */
int task_model__future_summaries(const struct task_model *model, struct future_summary **out);

/* What tokio-console users are warned of. */
struct task_warnings {
	uint64_t long_polls;        /* polls over the --long-poll threshold (given) */
	uint64_t self_wakes;
	uint64_t woken_not_polled;  /* tasks with a wake no poll answered */
	uint64_t never_woken;       /* pending tasks whose last Pending got no wake */
	uint64_t wakes_after_end;   /* wakes of tasks already finished */
};

/* After task_model__finish; long_polls is the summary's count. */
void task_model__warnings(const struct task_model *model, uint64_t long_polls, struct task_warnings *warnings);

/* Timelines put task tracks in a process of their own next to the target's
 * threads: its pid is the target's plus this. */
#define TASK_PID_OFFSET 1000000000u

/* Whether a poll is drawn on its task's track too: futures are; task polls
 * (their time is their futures'), plain functions and forwarding wrappers
 * are not. */
bool task_model__on_task_track(const struct task_model *model, const struct poll *p);
/* The function a task is named after: its outermost future that is not a
 * library's wrapper. Final after task_model__finish (which sets
 * name_func); during the pass, from the polls seen so far (a task's first
 * poll already names it). */
uint32_t task_model__name_func(const struct task_model *model, const struct task *t);
/* The name of the function a task is named after (task_model__name_func),
 * or "?". */
const char *task_model__task_name(const struct task_model *model, const struct task *t);
/* "task N: future": a task's name without its state (profiles, and tracks
 * declared before the task ends). */
void task_model__short_label(const struct task_model *model, const struct task *t, char *buf, size_t len);
/* "task N: future (state)", the name of a task's track. */
void task_model__label(const struct task_model *model, const struct task *t, char *buf, size_t len);
/* The task a poll belonged to (by its task pointer, or outside tasks its
 * thread's block_on) at time ts, or NULL. */
const struct task *task_model__find(const struct task_model *model, uint64_t ptr, uint32_t tid,
				    uint64_t ts);
/* Nodes of a task's tree, depth-first (root first); calls fn(node, depth). */
void task_model__walk_tree(const struct task_model *model, const struct task *task,
			   void (*fn)(const struct tree_node *node, unsigned depth, void *ctx), void *ctx);

#endif
