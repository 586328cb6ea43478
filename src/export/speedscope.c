/* speedscope's file format (https://www.speedscope.app/file-format-schema.json):
 * one "sampled" profile per thread, its samples in time order (speedscope's
 * Time Order view is then the thread's timeline; Left Heavy and Sandwich
 * aggregate), each weighed with the CPU time of one sample; frames shared
 * by name. Stacks are the profile model's (trace/profile.h), task at the
 * root unless --group-by says otherwise. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "export/filter.h"
#include "export/profile_common.h"
#include "trace/profile.h"
#include "util/array.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/u64map.h"

struct ss_writer {
	const struct profile *profile;
	char **frames;              /* names, by index */
	size_t frame_count, frame_cap;
	struct u64map frame_index;  /* name hash | 1 -> index + 1 */
	/* per sample kept: its stack's place in `stacks` */
	uint32_t *stacks;
	size_t stacks_len, stacks_cap;
	size_t *sample_at;          /* per trace sample: offset into stacks + 1, 0 not kept */
	int err;
};

static uint32_t frame_of(struct ss_writer *w, const char *name)
{
	uint64_t key = hash_string(name) | 1;
	uintptr_t at = (uintptr_t)u64map_get(&w->frame_index, key);
	char *copy;

	if (at && !strcmp(w->frames[at - 1], name))
		return (uint32_t)(at - 1);
	if (ARRAY_RESERVE(w->frames, w->frame_cap, w->frame_count + 1) || !(copy = strdup(name))) {
		w->err = -ENOMEM;
		return 0;
	}
	w->frames[w->frame_count++] = copy;
	if (!at && u64map_put(&w->frame_index, key, (void *)(uintptr_t)w->frame_count))
		w->err = -ENOMEM;
	return (uint32_t)(w->frame_count - 1);
}

static void push_frame(const char *name, enum profile_frame_kind kind, const char *file, uint32_t line,
			 void *ctx)
{
	struct ss_writer *w = ctx;
	uint32_t f = frame_of(w, name);

	(void)kind, (void)file, (void)line;
	if (!w->err && ARRAY_RESERVE(w->stacks, w->stacks_cap, w->stacks_len + 1))
		w->err = -ENOMEM;
	if (!w->err)
		w->stacks[w->stacks_len++] = f;
}

/* Each kept sample's stack, as frame indices after a length. */
static void collect(struct ss_writer *w, const struct export_filter *filter, int group_by)
{
	const struct trace_file *t = w->profile->trace;

	for (size_t i = 0; i < t->sample_count && !w->err; i++) {
		size_t len_at = w->stacks_len;

		if (!export_profile__keeps(w->profile, filter, i))
			continue;
		if (ARRAY_RESERVE(w->stacks, w->stacks_cap, w->stacks_len + 1)) {
			w->err = -ENOMEM;
			break;
		}
		w->stacks[w->stacks_len++] = 0; /* its length, set below */
		profile__stack(w->profile, i, (enum profile_group)group_by, push_frame, w);
		w->stacks[len_at] = (uint32_t)(w->stacks_len - len_at - 1);
		w->sample_at[i] = len_at + 1;
	}
}

static void write_frames(struct ss_writer *w, struct json_writer *j)
{
	json_writer__key(j, "shared");
	json_writer__object_begin(j);
	json_writer__key(j, "frames");
	json_writer__array_begin(j);
	for (size_t i = 0; i < w->frame_count; i++) {
		json_writer__object_begin(j);
		json_writer__key(j, "name");
		json_writer__string(j, w->frames[i]);
		json_writer__object_end(j);
	}
	json_writer__array_end(j);
	json_writer__object_end(j);
}

/* One thread's samples: [first, end) of the trace's (by thread, then time). */
static void write_thread(struct ss_writer *w, struct json_writer *j, size_t first, size_t end, uint64_t weight)
{
	const struct trace_file *t = w->profile->trace;
	char title[64];
	uint64_t count = 0;

	for (size_t i = first; i < end; i++)
		count += w->sample_at[i] != 0;
	if (!count)
		return;
	trace_file__thread_label(t, t->samples[first].tid, title, sizeof(title));
	json_writer__object_begin(j);
	json_writer__key(j, "type");
	json_writer__string(j, "sampled");
	json_writer__key(j, "name");
	json_writer__string(j, title);
	json_writer__key(j, "unit");
	json_writer__string(j, "nanoseconds");
	json_writer__key(j, "startValue");
	json_writer__uint(j, 0);
	json_writer__key(j, "endValue");
	json_writer__uint(j, count * weight);
	json_writer__key(j, "samples");
	json_writer__array_begin(j);
	for (size_t i = first; i < end; i++) {
		const uint32_t *s = w->sample_at[i] ? &w->stacks[w->sample_at[i] - 1] : NULL;

		if (!s)
			continue;
		json_writer__array_begin(j);
		for (uint32_t d = 0; d < s[0]; d++)
			json_writer__uint(j, s[1 + d]);
		json_writer__array_end(j);
	}
	json_writer__array_end(j);
	json_writer__key(j, "weights");
	json_writer__array_begin(j);
	for (uint64_t i = 0; i < count; i++)
		json_writer__uint(j, weight);
	json_writer__array_end(j);
	json_writer__object_end(j);
}

static int write_document(struct ss_writer *w, FILE *out)
{
	const struct trace_file *t = w->profile->trace;
	uint64_t weight = 1000000000ULL / t->sample_hz;
	const char *target = t->meta.target_path ? strrchr(t->meta.target_path, '/') : NULL;
	struct json_writer j;

	json_writer__init(&j, out, 0);
	json_writer__object_begin(&j);
	json_writer__key(&j, "$schema");
	json_writer__string(&j, "https://www.speedscope.app/file-format-schema.json");
	json_writer__key(&j, "name");
	json_writer__string(&j, target ? target + 1 : t->meta.target_path);
	json_writer__key(&j, "exporter");
	json_writer__string(&j, "asynctrace");
	json_writer__key(&j, "activeProfileIndex");
	json_writer__uint(&j, 0);
	write_frames(w, &j);
	json_writer__key(&j, "profiles");
	json_writer__array_begin(&j);
	for (size_t i = 0, first = 0; i <= t->sample_count; i++) {
		if (i < t->sample_count && t->samples[i].tid == t->samples[first].tid)
			continue;
		if (i > first)
			write_thread(w, &j, first, i, weight);
		first = i;
	}
	json_writer__array_end(&j);
	json_writer__object_end(&j);
	return json_writer__finish(&j);
}

static int speedscope_write_grouped(const struct trace_file *t, const struct export_filter *filter, FILE *out,
				    int group_by)
{
	struct ss_writer w = { 0 };
	struct task_model model;
	struct profile p;
	int err = export_profile__begin(&p, &model, t, filter);

	if (err)
		return err;
	w.profile = &p;
	w.sample_at = calloc(t->sample_count + 1, sizeof(*w.sample_at));
	if (!w.sample_at)
		err = -ENOMEM;
	if (!err)
		collect(&w, filter, group_by);
	if (!err)
		err = w.err;
	if (!err)
		err = write_document(&w, out);
	for (size_t i = 0; i < w.frame_count; i++)
		free(w.frames[i]);
	free(w.frames);
	free(w.stacks);
	free(w.sample_at);
	u64map_free(&w.frame_index);
	export_profile__end(&p, &model);
	return err;
}

static int speedscope_write(const struct trace_file *t, const struct export_filter *filter, FILE *out)
{
	return speedscope_write_grouped(t, filter, out, PROFILE_BY_TASK);
}

const struct export_format speedscope_export_format = {
	.name = "speedscope",
	.description = "speedscope's JSON of the on-CPU samples, a profile per thread in time order",
	.write = speedscope_write,
	.write_grouped = speedscope_write_grouped,
};
