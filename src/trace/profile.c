/* Samples to polls (profile.h). Polls reach a pass at their end, inner
 * first, so the first poll to cover a sample is its innermost, and each
 * enclosing one comes after: appending gives the chain innermost first. */
#include "trace/profile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/function_kinds.h"
#include "trace/summary.h"

static int index_threads(struct profile *p)
{
	const struct trace_file *t = p->trace;
	size_t n = 0;

	p->ranges = calloc(t->sample_count + 1, sizeof(*p->ranges));
	if (!p->ranges)
		return -ENOMEM;
	for (size_t i = 0; i < t->sample_count; i++) {
		if (i && t->samples[i].tid == t->samples[i - 1].tid) {
			p->ranges[n - 1].count++;
			continue;
		}
		p->ranges[n].first = i;
		p->ranges[n].count = 1;
		n++;
		if (u64map_put(&p->thread_range, (uint64_t)t->samples[i].tid + 1, (void *)(uintptr_t)n))
			return -ENOMEM;
	}
	return 0;
}

/* A BLOCKED_AT stack belongs to the switch-out at about its time: the two
 * are written at the same switch, in either order. */
#define STACK_SLACK_NS 100000ULL

struct wait_builder {
	uint32_t tid;
	bool open;            /* switched out, not back yet */
	bool preempted;       /* ... involuntarily */
	uint64_t out_ts;
	int64_t stack;        /* for the open wait */
	int64_t candidate;    /* a stack seen before its switch-out */
};

static int add_wait(struct profile *p, size_t *cap, const struct wait_builder *b, uint64_t end)
{
	if (p->wait_count == *cap) {
		size_t n = *cap ? *cap * 2 : 64;
		struct offcpu *more = realloc(p->waits, n * sizeof(*more));

		if (!more)
			return -ENOMEM;
		p->waits = more;
		*cap = n;
	}
	p->waits[p->wait_count++] = (struct offcpu){ b->out_ts, end, b->tid, b->stack, false, b->preempted };
	return 0;
}

static void wait_step(const struct trace_file *t, struct wait_builder *b, size_t i)
{
	const struct trace_sample *s = &t->samples[i];

	switch (s->kind) {
	case TRACE_SAMPLE_BLOCKED_AT:
		if (b->open && b->stack < 0)
			b->stack = (int64_t)i;
		else if (!b->open)
			b->candidate = (int64_t)i;
		break;
	case TRACE_SAMPLE_SWITCH_OUT:
		b->open = true;
		b->preempted = false;
		b->out_ts = s->ts;
		b->stack = b->candidate >= 0 && t->samples[b->candidate].ts + STACK_SLACK_NS >= s->ts ? b->candidate : -1;
		b->candidate = -1;
		break;
	case TRACE_SAMPLE_PREEMPTED:
		b->open = true; /* runnable all along: off CPU, but not a wait */
		b->preempted = true;
		b->out_ts = s->ts;
		b->stack = -1;
		b->candidate = -1;
		break;
	default:
		break;
	}
}

/* The voluntary off-CPU intervals, from the switch records. */
static int build_waits(struct profile *p)
{
	const struct trace_file *t = p->trace;
	struct wait_builder b = { .candidate = -1, .stack = -1 };
	size_t cap = 0;

	for (size_t i = 0; i < t->sample_count; i++) {
		const struct trace_sample *s = &t->samples[i];

		if (!i || s->tid != b.tid)
			b = (struct wait_builder){ .tid = s->tid, .candidate = -1, .stack = -1 };
		if (s->kind != TRACE_SAMPLE_ON_CPU)
			p->has_switches = true;
		if (s->kind == TRACE_SAMPLE_SWITCH_IN) {
			if (b.open && add_wait(p, &cap, &b, s->ts))
				return -ENOMEM;
			b.open = false;
			continue;
		}
		wait_step(t, &b, i);
	}
	return 0;
}

int profile__init(struct profile *p, const struct trace_file *trace, const struct task_model *model)
{
	int err;

	memset(p, 0, sizeof(*p));
	p->trace = trace;
	p->model = model;
	p->heavy_min_ns = LONG_POLL_NS_DEFAULT;
	p->contexts = calloc(trace->sample_count + 1, sizeof(*p->contexts));
	if (!p->contexts)
		return -ENOMEM;
	err = index_threads(p);
	if (!err)
		err = build_waits(p);
	if (err)
		profile__free(p);
	return err;
}

/* The thread's samples, or NULL. */
static const void *thread_samples(struct profile *p, uint32_t tid, size_t *first, size_t *count)
{
	uintptr_t r;

	if (p->cached_range && p->cached_tid == tid) {
		r = p->cached_range;
	} else {
		r = (uintptr_t)u64map_get(&p->thread_range, (uint64_t)tid + 1);
		p->cached_tid = tid;
		p->cached_range = r;
	}
	if (!r)
		return NULL;
	*first = p->ranges[r - 1].first;
	*count = p->ranges[r - 1].count;
	return p;
}

/* The first of [first, first + count) at or after ts. */
static size_t first_at(const struct trace_sample *s, size_t first, size_t count, uint64_t ts)
{
	size_t lo = first, hi = first + count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s[mid].ts < ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The first wait of thread tid starting at or after ts (waits are by
 * thread, then time). */
static size_t first_wait(const struct profile *p, uint32_t tid, uint64_t ts)
{
	size_t lo = 0, hi = p->wait_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct offcpu *w = &p->waits[mid];

		if (w->tid < tid || (w->tid == tid && w->start < ts))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void note_syscall(struct profile *p, struct blocking_poll *b, int64_t stack)
{
	char name[32];
	size_t i = 0;

	profile__syscall_name(p, stack, name, sizeof(name));
	if (!name[0])
		return;
	while (i < 4 && b->syscalls[i][0] && strcmp(b->syscalls[i], name))
		i++;
	if (i < 4 && !b->syscalls[i][0])
		memcpy(b->syscalls[i], name, sizeof(name));
}

/* The waits inside a poll not claimed by a poll inside it are its own. */
static void claim_waits(struct profile *p, const struct poll *poll, uint32_t task)
{
	struct blocking_poll b = { .start = poll->start, .end = poll->end, .func_id = poll->func_id,
				   .tid = poll->tid, .task = task, .stack = -1 };
	uint64_t longest = 0;

	for (size_t i = first_wait(p, poll->tid, poll->start);
	     i < p->wait_count && p->waits[i].tid == poll->tid && p->waits[i].start <= poll->end; i++) {
		struct offcpu *w = &p->waits[i];
		uint64_t ns = (w->end < poll->end ? w->end : poll->end) - w->start;

		if (w->claimed || w->preempted)
			continue;
		w->claimed = true;
		b.offcpu_ns += ns;
		b.waits++;
		note_syscall(p, &b, w->stack);
		if (ns > longest) {
			longest = ns;
			b.stack = w->stack;
		}
	}
	if (b.offcpu_ns < BLOCKING_MIN_NS)
		return;
	if (p->blocking_count == p->blocking_cap) {
		size_t n = p->blocking_cap ? p->blocking_cap * 2 : 16;
		struct blocking_poll *more = realloc(p->blocking, n * sizeof(*more));

		if (!more)
			return; /* the list is shorter; the counts stay right */
		p->blocking = more;
		p->blocking_cap = n;
	}
	p->blocking[p->blocking_count++] = b;
}

/* Time off the CPU inside the poll, waiting or preempted. */
static uint64_t offcpu_in(const struct profile *p, const struct poll *poll)
{
	uint64_t ns = 0;

	for (size_t i = first_wait(p, poll->tid, poll->start);
	     i < p->wait_count && p->waits[i].tid == poll->tid && p->waits[i].start <= poll->end; i++)
		ns += (p->waits[i].end < poll->end ? p->waits[i].end : poll->end) - p->waits[i].start;
	return ns;
}

/* The innermost poll on CPU for long: one inside it reported before (polls
 * end inner first) makes it not the innermost. */
static void note_heavy(struct profile *p, const struct poll *poll, uint32_t task)
{
	uint64_t off = offcpu_in(p, poll), on = poll->end - poll->start > off ? poll->end - poll->start - off : 0;

	if (on < p->heavy_min_ns)
		return;
	for (size_t i = p->heavy_count; i-- > 0;) {
		const struct heavy_poll *h = &p->heavy[i];

		if (h->tid != poll->tid)
			continue;
		if (h->start >= poll->start && h->end <= poll->end)
			return;
		break;
	}
	if (p->heavy_count == p->heavy_cap) {
		size_t n = p->heavy_cap ? p->heavy_cap * 2 : 16;
		struct heavy_poll *more = realloc(p->heavy, n * sizeof(*more));

		if (!more)
			return; /* the list is shorter */
		p->heavy = more;
		p->heavy_cap = n;
	}
	p->heavy[p->heavy_count++] = (struct heavy_poll){ poll->start, poll->end, on, poll->func_id, poll->tid, task };
}

static uint32_t task_of(const struct profile *p, const struct poll *poll)
{
	/* task 0: the thread's block_on, when it has one */
	const struct task *t = p->model ? task_model__find(p->model, poll->task, poll->tid, poll->start) : NULL;

	return t ? t->id : 0;
}

static void on_poll(const struct poll *poll, void *ctx)
{
	struct profile *p = ctx;
	const struct trace_sample *s = p->trace->samples;
	size_t first, count, i;
	uint32_t task = 0;
	bool task_known = false;

	/* A runtime shell (tokio's worker loop inside a blocking task's poll):
	 * its time outside the tasks it ran is the runtime's, not a task's. */
	if (poll->runs_tasks)
		return;
	if (p->has_switches) {
		task = task_of(p, poll);
		task_known = true;
		claim_waits(p, poll, task);
		note_heavy(p, poll, task);
	}
	if (!p->trace->sample_count || !thread_samples(p, poll->tid, &first, &count))
		return;
	for (i = first_at(s, first, count, poll->start); i < first + count && s[i].ts <= poll->end; i++) {
		struct sample_context *c = &p->contexts[i];

		if (c->poll_count < PROFILE_MAX_ASYNC)
			c->polls[c->poll_count] = poll->func_id;
		c->poll_count += c->poll_count < UINT16_MAX;
		if (c->task || !p->model)
			continue;
		if (!task_known) {
			task = task_of(p, poll);
			task_known = true;
		}
		c->task = task;
	}
}

struct trace_consumer profile__consumer(struct profile *p)
{
	return (struct trace_consumer){ .poll = on_poll, .ctx = p };
}

static bool in_function(const struct trace_file *t, uint32_t func_id, uint64_t addr)
{
	const struct trace_function *fn = &t->functions[func_id];
	uint64_t start = fn->addr + t->load_bias;

	return fn->size && addr >= start && addr - start < fn->size;
}

uint32_t profile__frames_below(const struct profile *p, size_t sample)
{
	const struct trace_sample *s = &p->trace->samples[sample];
	const struct sample_context *c = &p->contexts[sample];
	const uint64_t *frames = &p->trace->sample_frames[s->first_frame];

	if (!c->poll_count)
		return s->frame_count;
	for (uint32_t i = 0; i < s->frame_count; i++)
		if (in_function(p->trace, c->polls[0], frames[i]))
			return i;
	return s->frame_count ? 1 : 0;
}

static void emit_root(const struct profile *p, const struct trace_sample *s, const struct sample_context *c,
		      enum profile_group by, profile_frame_fn emit, void *ctx)
{
	char name[4300];

	if (by == PROFILE_BY_THREAD)
		emit(trace_file__thread_label(p->trace, s->tid, name, sizeof(name)), PROFILE_FRAME_ROOT, NULL, 0, ctx);
	if (!c->poll_count) {
		emit("[runtime]", PROFILE_FRAME_ROOT, NULL, 0, ctx);
	} else if (by != PROFILE_BY_FUNCTION && c->task && p->model && c->task <= p->model->task_count) {
		task_model__short_label(p->model, &p->model->tasks[c->task - 1], name, sizeof(name));
		emit(name, PROFILE_FRAME_ROOT, NULL, 0, ctx);
	} else if (by != PROFILE_BY_FUNCTION) {
		emit("[no task]", PROFILE_FRAME_ROOT, NULL, 0, ctx);
	}
}

void profile__stack(const struct profile *p, size_t sample, enum profile_group by,
		    profile_frame_fn emit, void *ctx)
{
	const struct trace_sample *s = &p->trace->samples[sample];
	const struct sample_context *c = &p->contexts[sample];
	const uint64_t *frames = &p->trace->sample_frames[s->first_frame];
	uint32_t kept = c->poll_count < PROFILE_MAX_ASYNC ? c->poll_count : PROFILE_MAX_ASYNC;
	uint32_t below = profile__frames_below(p, sample);

	emit_root(p, s, c, by, emit, ctx);
	for (uint32_t i = kept; i-- > 0;) {
		const struct trace_function *fn = &p->trace->functions[c->polls[i]];

		if (fn->context != CONTEXT_TASK)
			emit(fn->name, PROFILE_FRAME_FUTURE, fn->source_file, fn->source_line, ctx);
	}
	for (uint32_t i = below; i-- > 0;) {
		const struct trace_site *frame = trace_file__frame(p->trace, frames[i]);
		char hex[24];

		emit(profile__frame_name(p, frames[i], hex, sizeof(hex)), PROFILE_FRAME_NATIVE,
		     frame ? frame->file : NULL, frame ? frame->line : 0, ctx);
	}
}

const char *profile__frame_name(const struct profile *p, uint64_t addr, char *buf, size_t len)
{
	const struct trace_site *frame = trace_file__frame(p->trace, addr);

	if (frame && frame->function)
		return frame->function;
	snprintf(buf, len, "0x%" PRIx64, addr);
	return buf;
}

void profile__syscall_name(const struct profile *p, int64_t stack, char *buf, size_t len)
{
	static const char *const prefixes[] = { "__GI___", "__GI_", "__libc_", "__", "GI_" };
	const struct trace_site *frame = NULL;
	const char *name;
	size_t n;

	buf[0] = '\0';
	if (stack < 0 || !p->trace->samples[stack].frame_count)
		return;
	frame = trace_file__frame(p->trace, p->trace->sample_frames[p->trace->samples[stack].first_frame]);
	if (!frame || !frame->function || frame->function[0] == '[')
		return;
	name = frame->function;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
			name += strlen(prefixes[i]);
	n = strcspn(name, "@");
	if (strstr(name, "futex"))
		name = "futex", n = 5;
	snprintf(buf, len, "%.*s", (int)n, name);
}

void profile__free(struct profile *p)
{
	free(p->contexts);
	free(p->waits);
	free(p->blocking);
	free(p->heavy);
	free(p->ranges);
	u64map_free(&p->thread_range);
	memset(p, 0, sizeof(*p));
}

/* The innermost poll that is not the runtime's task poll, or NO_FUNCTION. */
static uint32_t innermost_future(const struct profile *p, const struct sample_context *c)
{
	uint32_t kept = c->poll_count < PROFILE_MAX_ASYNC ? c->poll_count : PROFILE_MAX_ASYNC;

	for (uint32_t i = 0; i < kept; i++)
		if (p->trace->functions[c->polls[i]].context != CONTEXT_TASK)
			return c->polls[i];
	return NO_FUNCTION;
}

static int cmp_counts(const void *a, const void *b)
{
	const struct profile_count *x = a, *y = b;

	if (x->samples != y->samples)
		return x->samples > y->samples ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Nonzero entries of per-id counts, most first. */
static int compact(uint64_t *counts, size_t n, struct profile_count **out, size_t *count)
{
	*count = 0;
	*out = calloc(n + 1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (counts[i])
			(*out)[(*count)++] = (struct profile_count){ (uint32_t)i, counts[i] };
	qsort(*out, *count, sizeof(**out), cmp_counts);
	return 0;
}

int profile__summarize(const struct profile *p, struct profile_summary *s)
{
	size_t tasks = p->model ? p->model->task_count + 1 : 1;
	uint64_t *by_task = calloc(tasks, sizeof(*by_task));
	uint64_t *by_function = calloc(p->trace->function_count + 1, sizeof(*by_function));
	int err = by_task && by_function ? 0 : -ENOMEM;

	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < p->trace->sample_count && !err; i++) {
		const struct sample_context *c = &p->contexts[i];
		uint32_t fn = innermost_future(p, c);

		if (p->trace->samples[i].kind != TRACE_SAMPLE_ON_CPU)
			continue;
		s->samples++;
		if (!c->poll_count)
			s->outside_polls++;
		else if (!c->task || c->task >= tasks)
			s->outside_tasks++;
		else
			by_task[c->task]++;
		if (fn != NO_FUNCTION)
			by_function[fn]++;
	}
	if (!err)
		err = compact(by_task, tasks, &s->tasks, &s->task_count);
	if (!err)
		err = compact(by_function, p->trace->function_count, &s->functions, &s->function_count);
	free(by_task);
	free(by_function);
	if (err)
		profile_summary__free(s);
	return err;
}

void profile_summary__free(struct profile_summary *s)
{
	free(s->tasks);
	free(s->functions);
	memset(s, 0, sizeof(*s));
}

int profile__build(struct profile *p, struct task_model *model, const struct trace_file *t)
{
	struct trace_consumer consumers[2];
	int err = task_model__init(model, t, 0);

	if (err)
		return err;
	err = profile__init(p, t, model);
	if (err) {
		task_model__free(model);
		return err;
	}
	consumers[0] = task_model__consumer(model);
	consumers[1] = profile__consumer(p);
	err = trace_file__pass(t, consumers, 2, &model->stats);
	if (!err)
		err = task_model__finish(model);
	if (err) {
		profile__free(p);
		task_model__free(model);
	}
	return err;
}
