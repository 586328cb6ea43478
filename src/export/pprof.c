/* pprof's profile.proto, gzipped (what `go tool pprof`, Pyroscope, Parca
 * and speedscope read), through protobuf-c: every on-CPU sample of a
 * profiled trace, its stack the profile model's (trace/profile.h: the task
 * or thread at the root, the futures being polled, the native frames),
 * with two values (samples, and CPU nanoseconds at the sampling period)
 * and labels `task` and `thread`. A frame is a Location per name and
 * source line, with one Line of its Function (one per name, with its
 * file): pprof's views aggregate by function, `-list` by line. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>

#include "export/export.h"
#include "export/filter.h"
#include "export/profile_common.h"
#include "export/pprof_profile.pb-c.h"
#include "trace/profile.h"
#include "util/array.h"
#include "util/hash.h"
#include "util/u64map.h"

#define MAX_STACK 512

struct pprof_writer {
	const struct profile *profile;
	Perftools__Profiles__Profile out;
	size_t string_cap, function_cap, location_cap, sample_cap;
	struct u64map string_index;   /* hash of a string -> index + 1 */
	struct u64map function_index; /* name's string index + 1 -> function id */
	struct u64map location_index; /* (name's string index + 1) << 24 | line -> location id */
	uint64_t stack[MAX_STACK];    /* the sample being built, root first */
	size_t depth;
	int err;
};

static int64_t intern(struct pprof_writer *w, const char *s)
{
	uint64_t key = hash_string(s) | 1;
	uintptr_t at = (uintptr_t)u64map_get(&w->string_index, key);
	char *copy;

	/* a hash shared by two strings: the second is stored again, unindexed */
	if (at && !strcmp(w->out.string_table[at - 1], s))
		return (int64_t)(at - 1);
	if (ARRAY_RESERVE(w->out.string_table, w->string_cap, w->out.n_string_table + 1) || !(copy = strdup(s))) {
		w->err = -ENOMEM;
		return 0;
	}
	w->out.string_table[w->out.n_string_table++] = copy;
	if (!at && u64map_put(&w->string_index, key, (void *)(uintptr_t)w->out.n_string_table))
		w->err = -ENOMEM;
	return (int64_t)w->out.n_string_table - 1;
}

/* One Function per frame name (with its file), ids 1-based. */
static uint64_t function_of(struct pprof_writer *w, int64_t name, const char *file)
{
	uintptr_t id = (uintptr_t)u64map_get(&w->function_index, (uint64_t)name + 1);
	Perftools__Profiles__Function *fn;

	if (id || w->err)
		return id;
	fn = malloc(sizeof(*fn));
	if (!fn || ARRAY_RESERVE(w->out.function, w->function_cap, w->out.n_function + 1)) {
		free(fn);
		w->err = -ENOMEM;
		return 0;
	}
	perftools__profiles__function__init(fn);
	fn->id = id = w->out.n_function + 1;
	fn->name = fn->system_name = name;
	fn->filename = file ? intern(w, file) : 0;
	w->out.function[w->out.n_function++] = fn;
	if (u64map_put(&w->function_index, (uint64_t)name + 1, (void *)id))
		w->err = -ENOMEM;
	return id;
}

/* One Location per frame name and line (pprof -list shows the lines);
 * ids are 1-based. */
static uint64_t location_of(struct pprof_writer *w, const char *name, const char *file, uint32_t line_no)
{
	int64_t str = intern(w, name);
	uint64_t key = ((uint64_t)str + 1) << 24 | (line_no & 0xffffff);
	uintptr_t id = (uintptr_t)u64map_get(&w->location_index, key);
	uint64_t fn = id ? 0 : function_of(w, str, file);
	Perftools__Profiles__Location *loc;
	Perftools__Profiles__Line *line;

	if (id || w->err)
		return id;
	loc = malloc(sizeof(*loc));
	line = malloc(sizeof(*line));
	if (loc)
		perftools__profiles__location__init(loc);
	if (!loc || !line || ARRAY_RESERVE(w->out.location, w->location_cap, w->out.n_location + 1) ||
	    !(loc->line = malloc(sizeof(*loc->line)))) {
		free(loc), free(line);
		w->err = -ENOMEM;
		return 0;
	}
	id = w->out.n_location + 1;
	perftools__profiles__line__init(line);
	line->function_id = fn;
	line->line = line_no;
	loc->id = id;
	loc->n_line = 1;
	loc->line[0] = line;
	w->out.location[w->out.n_location++] = loc;
	if (u64map_put(&w->location_index, key, (void *)id))
		w->err = -ENOMEM;
	return id;
}

static void push_frame(const char *name, enum profile_frame_kind kind, const char *file, uint32_t line,
			 void *ctx)
{
	struct pprof_writer *w = ctx;
	uint64_t id = location_of(w, name, file, line);

	(void)kind;
	if (id && w->depth < MAX_STACK)
		w->stack[w->depth++] = id;
}

static Perftools__Profiles__Label *label(struct pprof_writer *w, const char *key, int64_t num)
{
	Perftools__Profiles__Label *l = malloc(sizeof(*l));

	if (!l) {
		w->err = -ENOMEM;
		return NULL;
	}
	perftools__profiles__label__init(l);
	l->key = intern(w, key);
	l->num = num;
	return l;
}

static void add_sample(struct pprof_writer *w, size_t i, int group_by, int64_t period)
{
	const struct trace_sample *ts = &w->profile->trace->samples[i];
	Perftools__Profiles__Sample *s = malloc(sizeof(*s));

	if (!s || ARRAY_RESERVE(w->out.sample, w->sample_cap, w->out.n_sample + 1)) {
		free(s);
		w->err = -ENOMEM;
		return;
	}
	perftools__profiles__sample__init(s);
	w->out.sample[w->out.n_sample++] = s; /* freed with the rest, whatever is missing */
	w->depth = 0;
	profile__stack(w->profile, i, (enum profile_group)group_by, push_frame, w);
	s->location_id = malloc((w->depth + 1) * sizeof(*s->location_id));
	s->value = malloc(2 * sizeof(*s->value));
	s->label = calloc(2, sizeof(*s->label));
	if (!s->location_id || !s->value || !s->label) {
		w->err = -ENOMEM;
		return;
	}
	for (size_t d = 0; d < w->depth; d++)
		s->location_id[d] = w->stack[w->depth - 1 - d]; /* leaf first */
	s->n_location_id = w->depth;
	s->value[0] = 1;
	s->value[1] = period;
	s->n_value = 2;
	s->label[0] = label(w, "thread", ts->tid);
	s->label[1] = label(w, "task", w->profile->contexts[i].task);
	s->n_label = 2;
}

static Perftools__Profiles__ValueType *value_type(struct pprof_writer *w, const char *type, const char *unit)
{
	Perftools__Profiles__ValueType *v = malloc(sizeof(*v));

	if (!v) {
		w->err = -ENOMEM;
		return NULL;
	}
	perftools__profiles__value_type__init(v);
	v->type = intern(w, type);
	v->unit = intern(w, unit);
	return v;
}

static void describe(struct pprof_writer *w, int64_t period)
{
	const struct trace_file *t = w->profile->trace;

	intern(w, ""); /* string_table[0] */
	w->out.sample_type = calloc(2, sizeof(*w->out.sample_type));
	if (!w->out.sample_type) {
		w->err = -ENOMEM;
		return;
	}
	w->out.sample_type[0] = value_type(w, "samples", "count");
	w->out.sample_type[1] = value_type(w, "cpu", "nanoseconds");
	w->out.n_sample_type = 2;
	w->out.period_type = value_type(w, "cpu", "nanoseconds");
	w->out.period = period;
	w->out.time_nanos = (int64_t)t->meta.start_realtime_ns;
	w->out.duration_nanos = t->trailer.end_clock_ns > t->meta.start_clock_ns
					? (int64_t)(t->trailer.end_clock_ns - t->meta.start_clock_ns) : 0;
	w->out.default_sample_type = intern(w, "cpu");
}

static void free_profile(Perftools__Profiles__Profile *p)
{
	for (size_t i = 0; i < p->n_sample; i++) {
		for (size_t l = 0; p->sample[i]->label && l < p->sample[i]->n_label; l++)
			free(p->sample[i]->label[l]);
		free(p->sample[i]->label);
		free(p->sample[i]->location_id);
		free(p->sample[i]->value);
		free(p->sample[i]);
	}
	for (size_t i = 0; i < p->n_location; i++) {
		free(p->location[i]->line[0]);
		free(p->location[i]->line);
		free(p->location[i]);
	}
	for (size_t i = 0; i < p->n_function; i++)
		free(p->function[i]);
	for (size_t i = 0; i < p->n_string_table; i++)
		free(p->string_table[i]);
	for (size_t i = 0; i < p->n_sample_type; i++)
		free(p->sample_type[i]);
	free(p->sample_type);
	free(p->period_type);
	free(p->sample);
	free(p->location);
	free(p->function);
	free(p->string_table);
}

/* The packed profile, gzipped as pprof files are. */
static int write_gzipped(const Perftools__Profiles__Profile *p, FILE *out)
{
	size_t len = perftools__profiles__profile__get_packed_size(p), bound, n;
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(6);
	uint8_t *plain = malloc(len + 1), *gz = NULL;
	int err = 0;

	if (!c || !plain) {
		err = -ENOMEM;
		goto out;
	}
	perftools__profiles__profile__pack(p, plain);
	bound = libdeflate_gzip_compress_bound(c, len);
	gz = malloc(bound);
	n = gz ? libdeflate_gzip_compress(c, plain, len, gz, bound) : 0;
	if (!n)
		err = -ENOMEM;
	else if (fwrite(gz, 1, n, out) != n)
		err = -EIO;
out:
	free(gz);
	free(plain);
	if (c)
		libdeflate_free_compressor(c);
	return err;
}

static int pprof_write_grouped(const struct trace_file *t, const struct export_filter *filter, FILE *out,
			       int group_by)
{
	struct pprof_writer w = { .out = PERFTOOLS__PROFILES__PROFILE__INIT };
	struct task_model model;
	struct profile p;
	int64_t period = t->sample_hz ? (int64_t)(1000000000ULL / t->sample_hz) : 0;
	int err = export_profile__begin(&p, &model, t, filter);

	if (err)
		return err;
	w.profile = &p;
	describe(&w, period);
	for (size_t i = 0; !w.err && i < t->sample_count; i++)
		if (export_profile__keeps(&p, filter, i))
			add_sample(&w, i, group_by, period);
	err = w.err ? w.err : write_gzipped(&w.out, out);
	free_profile(&w.out);
	u64map_free(&w.string_index);
	u64map_free(&w.function_index);
	u64map_free(&w.location_index);
	export_profile__end(&p, &model);
	return err;
}

static int pprof_write(const struct trace_file *t, const struct export_filter *filter, FILE *out)
{
	return pprof_write_grouped(t, filter, out, PROFILE_BY_TASK);
}

const struct export_format pprof_export_format = {
	.name = "pprof",
	.description = "gzipped pprof profile.proto of the on-CPU samples (go tool pprof, Pyroscope, Parca)",
	.write = pprof_write,
	.write_grouped = pprof_write_grouped,
};
