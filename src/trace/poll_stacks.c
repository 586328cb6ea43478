/* Poll time as stacks (poll_stacks.h). */
#include "trace/poll_stacks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/function_kinds.h"
#include "util/array.h"

#define MAX_OPEN 256
#define ROOT_RUNTIME 0          /* a poll outside tasks */
#define ROOT_THREAD (1u << 31)  /* by thread: tid | ROOT_THREAD */

/* A thread's open polls, outermost first. */
struct open_polls {
	uint32_t func[MAX_OPEN];
	uint64_t child_ns[MAX_OPEN];
	uint8_t shell[MAX_OPEN];
	size_t depth;
};

int poll_stacks__init(struct poll_stacks *s, const struct trace_file *trace, const struct task_model *model,
		      enum profile_group by)
{
	memset(s, 0, sizeof(*s));
	s->trace = trace;
	s->model = model;
	s->by = by;
	return 0;
}

static struct open_polls *thread_of(struct poll_stacks *s, uint32_t tid)
{
	struct open_polls *o = u64map_get(&s->open, (uint64_t)tid + 1);

	if (o || s->err)
		return o;
	o = calloc(1, sizeof(*o));
	if (!o || u64map_put(&s->open, (uint64_t)tid + 1, o)) {
		free(o);
		s->err = -ENOMEM;
		return NULL;
	}
	return o;
}

static void on_begin(const struct poll *p, void *ctx)
{
	struct poll_stacks *s = ctx;
	struct open_polls *o = thread_of(s, p->tid);

	if (!o)
		return;
	o->depth = p->depth < MAX_OPEN ? p->depth : MAX_OPEN - 1; /* what an unwound frame left is gone */
	o->func[o->depth] = p->func_id;
	o->child_ns[o->depth] = 0;
	o->depth++;
}

static uint64_t hash_key(const uint32_t *key, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ key[i]) * 1099511628211ULL;
	return h | 1;
}

/* Adds ns to the stack key[0..n): an entry found by hash and compared. */
static void add_stack(struct poll_stacks *s, const uint32_t *key, size_t n, uint64_t ns)
{
	uint64_t h = hash_key(key, n);
	uintptr_t e = (uintptr_t)u64map_get(&s->index, h);

	for (; e; e = 0) {
		const uint32_t *k = &s->keys[s->entries[e - 1].at];

		if (k[0] == n && !memcmp(k + 1, key, n * sizeof(*key))) {
			s->entries[e - 1].ns += ns;
			return;
		}
	}
	if (ARRAY_RESERVE(s->keys, s->keys_cap, s->keys_len + n + 1) ||
	    ARRAY_RESERVE(s->entries, s->entry_cap, s->entry_count + 1)) {
		s->err = -ENOMEM;
		return;
	}
	s->entries[s->entry_count].at = s->keys_len;
	s->entries[s->entry_count].ns = ns;
	s->keys[s->keys_len++] = (uint32_t)n;
	memcpy(&s->keys[s->keys_len], key, n * sizeof(*key));
	s->keys_len += n;
	s->entry_count++;
	if (!u64map_get(&s->index, h) && u64map_put(&s->index, h, (void *)(uintptr_t)s->entry_count))
		s->err = -ENOMEM; /* a colliding stack is found by the slow way: never, so it is added again */
}

static uint32_t root_of(const struct poll_stacks *s, const struct poll *p)
{
	const struct task *t = task_model__find(s->model, p->task, p->tid, p->start); /* 0: its thread's block_on */

	if (s->by == PROFILE_BY_THREAD)
		return p->tid | ROOT_THREAD;
	return t ? t->id : ROOT_RUNTIME;
}

static void on_poll(const struct poll *p, void *ctx)
{
	struct poll_stacks *s = ctx;
	struct open_polls *o = thread_of(s, p->tid);
	uint32_t key[MAX_OPEN + 2];
	uint64_t ns = p->end - p->start, self;
	size_t n = 0, depth;

	if (!o)
		return;
	depth = p->depth < MAX_OPEN ? p->depth : MAX_OPEN - 1;
	if (depth >= o->depth)
		return; /* its beginning was never seen */
	self = ns > o->child_ns[depth] ? ns - o->child_ns[depth] : 0;
	o->depth = depth;
	if (depth)
		o->child_ns[depth - 1] += ns;
	if (p->runs_tasks || !self || (s->keep && !s->keep(p, s->model, s->keep_ctx)))
		return; /* a runtime shell's own time is the runtime's */
	if (s->by != PROFILE_BY_FUNCTION)
		key[n++] = root_of(s, p);
	for (size_t i = 0; i <= depth; i++) {
		uint32_t f = i == depth ? p->func_id : o->func[i];

		if (s->trace->functions[f].context != CONTEXT_TASK)
			key[n++] = f;
	}
	if (n)
		add_stack(s, key, n, self);
}

struct trace_consumer poll_stacks__consumer(struct poll_stacks *s)
{
	return (struct trace_consumer){ .poll_begin = on_begin, .poll = on_poll, .ctx = s };
}

static void emit_root(const struct poll_stacks *s, uint32_t root, profile_frame_fn emit, void *ctx)
{
	char name[4300];

	if (root & ROOT_THREAD)
		trace_file__thread_label(s->trace, root & ~ROOT_THREAD, name, sizeof(name));
	else if (root == ROOT_RUNTIME || root > s->model->task_count)
		snprintf(name, sizeof(name), "[no task]");
	else
		task_model__short_label(s->model, &s->model->tasks[root - 1], name, sizeof(name));
	emit(name, PROFILE_FRAME_ROOT, NULL, 0, ctx);
}

void poll_stacks__each(const struct poll_stacks *s, profile_frame_fn emit, void (*done)(uint64_t ns, void *ctx),
		       void *ctx)
{
	for (size_t e = 0; e < s->entry_count; e++) {
		const uint32_t *k = &s->keys[s->entries[e].at];
		size_t i = 1;

		if (s->by != PROFILE_BY_FUNCTION)
			emit_root(s, k[i++], emit, ctx);
		for (; i <= k[0]; i++)
			emit(s->trace->functions[k[i]].name, PROFILE_FRAME_FUTURE, s->trace->functions[k[i]].source_file,
			     s->trace->functions[k[i]].source_line, ctx);
		done(s->entries[e].ns, ctx);
	}
}

int poll_stacks__build(struct poll_stacks *s, struct task_model *model, const struct trace_file *trace,
		       enum profile_group by,
		       bool (*keep)(const struct poll *p, const struct task_model *m, const void *ctx),
		       const void *keep_ctx)
{
	struct trace_consumer consumers[2];
	int err = task_model__init(model, trace, 0);

	if (err)
		return err;
	poll_stacks__init(s, trace, model, by);
	s->keep = keep;
	s->keep_ctx = keep_ctx;
	consumers[0] = task_model__consumer(model);
	consumers[1] = poll_stacks__consumer(s);
	err = trace_file__pass(trace, consumers, 2, &model->stats);
	if (!err)
		err = s->err;
	if (!err)
		err = task_model__finish(model);
	if (err) {
		poll_stacks__free(s);
		task_model__free(model);
	}
	return err;
}

static void free_open(struct poll_stacks *s)
{
	for (size_t i = 0; s->open.slots && i <= s->open.mask; i++)
		if (s->open.slots[i].key)
			free(s->open.slots[i].value);
}

void poll_stacks__free(struct poll_stacks *s)
{
	free_open(s);
	u64map_free(&s->open);
	u64map_free(&s->index);
	free(s->keys);
	free(s->entries);
	memset(s, 0, sizeof(*s));
}
