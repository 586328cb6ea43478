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
#include "trace/profile.h"
#include "trace/tasks.h"
#include "util/buf.h"

/* A frame name may hold a separator: ';' and line ends become ':' (its
 * spaces are kept: readers take the count after the last space). */
static void put_frame(const char *name, enum profile_frame_kind kind, void *ctx)
{
	struct buf *b = ctx;

	(void)kind;
	if (b->len)
		buf_put_bytes(b, ";", 1);
	for (const char *c = name; *c; c++) {
		char ch = *c == ';' || *c == '\n' || *c == '\r' ? ':' : *c;

		buf_put_bytes(b, &ch, 1);
	}
}

static int cmp_lines(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;

	return strcmp(x, y);
}

/* Each kept sample's stack as a NUL-terminated string. */
static int sample_lines(const struct profile *p, const struct export_filter *filter, int group_by,
			char ***lines, size_t *count)
{
	const struct trace_file *t = p->trace;

	*count = 0;
	*lines = calloc(t->sample_count + 1, sizeof(**lines));
	if (!*lines)
		return -ENOMEM;
	for (size_t i = 0; i < t->sample_count; i++) {
		struct buf b = { 0 };

		if (t->samples[i].kind != TRACE_SAMPLE_ON_CPU ||
		    !export_filter__keeps_sample(filter, t->samples[i].tid, t->samples[i].ts, p->contexts[i].task))
			continue;
		profile__stack(p, i, (enum profile_group)group_by, put_frame, &b);
		buf_put_bytes(&b, "", 1);
		if (b.err) {
			buf_free(&b);
			return -ENOMEM;
		}
		(*lines)[(*count)++] = (char *)b.data;
	}
	return 0;
}

static int write_counted(char **lines, size_t count, FILE *out)
{
	qsort(lines, count, sizeof(*lines), cmp_lines);
	for (size_t i = 0; i < count;) {
		size_t j = i + 1;

		while (j < count && !strcmp(lines[i], lines[j]))
			j++;
		fprintf(out, "%s %zu\n", lines[i], j - i);
		i = j;
	}
	return ferror(out) ? -EIO : 0;
}

static int folded_write_grouped(const struct trace_file *t, const struct export_filter *filter, FILE *out,
				int group_by)
{
	struct task_model model;
	struct profile p;
	char **lines = NULL;
	size_t count = 0;
	int err = profile__build(&p, &model, t);

	if (err)
		return err;
	if (export_filter__missing_task(filter, &model))
		err = -ESRCH;
	else if (!t->sample_hz)
		err = -ENODATA; /* recorded without samples */
	if (!err)
		err = sample_lines(&p, filter, group_by, &lines, &count);
	if (!err)
		err = write_counted(lines, count, out);
	for (size_t i = 0; i < count; i++)
		free(lines[i]);
	free(lines);
	profile__free(&p);
	task_model__free(&model);
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
};
