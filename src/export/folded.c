/* Folded stacks (Brendan Gregg's stackcollapse format, what flamegraph.pl,
 * inferno, speedscope and Firefox's profiler read): one line per distinct
 * stack, frames root first joined by ';', a space, the number of samples.
 * The stacks are the profile model's (trace/profile.h): a task (or thread,
 * or the outermost future) at the root, the futures being polled, then
 * the native frames below the innermost one. Lines are sorted, so the
 * same trace always gives the same file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "export/filter.h"
#include "export/profile_common.h"
#include "trace/poll_stacks.h"
#include "trace/profile.h"
#include "trace/tasks.h"
#include "util/array.h"
#include "util/buf.h"

/* A frame name may hold a separator: ';' and line ends become ':' (its
 * spaces are kept: readers take the count after the last space). */
static void put_frame(const char *name, enum profile_frame_kind kind, const char *file, uint32_t line,
			 void *ctx)
{
	struct buf *b = ctx;

	(void)kind, (void)file, (void)line;
	if (b->len)
		buf_put_bytes(b, ";", 1);
	for (const char *c = name; *c; c++) {
		char ch = *c == ';' || *c == '\n' || *c == '\r' ? ':' : *c;

		buf_put_bytes(b, &ch, 1);
	}
}

/* A stack and what it weighs: one sample, or nanoseconds of poll time. */
struct weighted_line {
	char *text;
	uint64_t weight;
};

struct line_set {
	struct weighted_line *lines;
	size_t count, cap;
	struct buf next; /* the stack being put together */
	int err;
};

static int cmp_lines(const void *a, const void *b)
{
	return strcmp(((const struct weighted_line *)a)->text, ((const struct weighted_line *)b)->text);
}

static void end_line(uint64_t weight, void *ctx)
{
	struct line_set *set = ctx;

	buf_put_bytes(&set->next, "", 1);
	if (set->next.err || ARRAY_RESERVE(set->lines, set->cap, set->count + 1)) {
		set->err = -ENOMEM;
		buf_free(&set->next);
		return;
	}
	set->lines[set->count++] = (struct weighted_line){ (char *)set->next.data, weight };
	set->next = (struct buf){ 0 };
}

/* Each kept sample's stack, of weight 1. */
static void sample_lines(const struct profile *p, const struct export_filter *filter, int group_by,
			 struct line_set *set)
{
	const struct trace_file *t = p->trace;

	for (size_t i = 0; i < t->sample_count && !set->err; i++) {
		if (!export_profile__keeps(p, filter, i))
			continue;
		profile__stack(p, i, (enum profile_group)group_by, put_frame, &set->next);
		end_line(1, set);
	}
}

/* Sorted, equal stacks summed: the same trace, the same file. */
static int write_lines(struct line_set *set, FILE *out)
{
	if (set->count) /* lines is NULL then: qsort's is nonnull */
		qsort(set->lines, set->count, sizeof(*set->lines), cmp_lines);
	for (size_t i = 0; i < set->count;) {
		uint64_t sum = 0;
		size_t j = i;

		while (j < set->count && !strcmp(set->lines[i].text, set->lines[j].text))
			sum += set->lines[j++].weight;
		fprintf(out, "%s %llu\n", set->lines[i].text, (unsigned long long)sum);
		i = j;
	}
	return ferror(out) ? -EIO : 0;
}

static void free_lines(struct line_set *set)
{
	for (size_t i = 0; i < set->count; i++)
		free(set->lines[i].text);
	free(set->lines);
	buf_free(&set->next);
}

static int folded_write_grouped(const struct trace_file *t, const struct export_filter *filter, FILE *out,
				int group_by)
{
	struct line_set set = { 0 };
	struct task_model model;
	struct profile p;
	int err = export_profile__begin(&p, &model, t, filter);

	if (err)
		return err;
	sample_lines(&p, filter, group_by, &set);
	err = set.err ? set.err : write_lines(&set, out);
	free_lines(&set);
	export_profile__end(&p, &model);
	return err;
}

static void poll_frame(const char *name, enum profile_frame_kind kind, const char *file, uint32_t line,
			 void *ctx)
{
	put_frame(name, kind, file, line, &((struct line_set *)ctx)->next);
}

/* --weight poll-time: each poll's self time in ns on its stack (no samples needed). */
static int folded_write_poll_time(const struct trace_file *t, const struct export_filter *filter, FILE *out,
				  int group_by)
{
	struct line_set set = { 0 };
	struct task_model model;
	struct poll_stacks stacks;
	int err = export_poll_stacks__begin(&stacks, &model, t, filter, group_by);

	if (err)
		return err;
	poll_stacks__each(&stacks, poll_frame, end_line, &set);
	err = set.err ? set.err : write_lines(&set, out);
	free_lines(&set);
	export_poll_stacks__end(&stacks, &model);
	return err;
}

static int folded_write(const struct trace_file *t, const struct export_filter *filter, FILE *out)
{
	return folded_write_grouped(t, filter, out, PROFILE_BY_TASK);
}

const struct export_format folded_export_format = {
	.name = "folded",
	.description = "folded stacks of the on-CPU samples (flamegraph.pl, inferno, speedscope)",
	.write = folded_write,
	.write_grouped = folded_write_grouped,
	.write_poll_time = folded_write_poll_time,
};
