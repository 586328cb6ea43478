/* Poll time as stacks, without samples: each poll's self time (its
 * duration less its child polls') on the stack task -> enclosing futures ->
 * it, summed per distinct stack. What a poll-time flame graph draws (export
 * --weight poll-time) from any trace. Fed by a pass after the task model;
 * memory follows the distinct stacks and the polls open, not the polls. */
#ifndef ASYNCTRACE_TRACE_POLL_STACKS_H
#define ASYNCTRACE_TRACE_POLL_STACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/polls.h"
#include "trace/profile.h"
#include "trace/tasks.h"
#include "util/u64map.h"

struct poll_stacks {
	const struct trace_file *trace;
	const struct task_model *model;
	enum profile_group by;
	bool (*keep)(const struct poll *p, const struct task_model *m, const void *ctx); /* NULL: every poll */
	const void *keep_ctx;
	/* private */
	struct u64map open;      /* tid + 1 -> struct open_polls * */
	struct u64map index;     /* hash of a stack -> entry + 1 */
	uint32_t *keys;          /* the stacks: [length, root, func ids...] back to back */
	size_t keys_len, keys_cap;
	struct { size_t at; uint64_t ns; } *entries;
	size_t entry_count, entry_cap;
	int err;
};

/* Returns 0 or -ENOMEM. */
int poll_stacks__init(struct poll_stacks *s, const struct trace_file *trace, const struct task_model *model,
		      enum profile_group by);
/* Hand to trace_file__pass after the task model's consumer. */
struct trace_consumer poll_stacks__consumer(struct poll_stacks *s);
/* After the pass and task_model__finish (task names): every stack, root
 * first, frame by frame through emit, then its nanoseconds through done. */
void poll_stacks__each(const struct poll_stacks *s, profile_frame_fn emit, void (*done)(uint64_t ns, void *ctx),
		       void *ctx);
/* One pass of its own with a task model, of the polls keep keeps (NULL:
 * all). Returns 0 or a negative errno. */
int poll_stacks__build(struct poll_stacks *s, struct task_model *model, const struct trace_file *trace,
		       enum profile_group by,
		       bool (*keep)(const struct poll *p, const struct task_model *m, const void *ctx),
		       const void *keep_ctx);
void poll_stacks__free(struct poll_stacks *s);

#endif
