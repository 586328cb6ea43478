#include "trace_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/writer.h"

char *trace_fixture__temp_path(void)
{
	char *path = strdup("/tmp/asynctrace-unit-XXXXXX");
	int fd = path ? mkstemp(path) : -1;

	if (fd >= 0)
		close(fd);
	return path;
}

/* Samples to write after the events (trace_fixture__open_profiled). */
struct sample_set {
	const struct trace_sample *samples;
	size_t count, per_chunk;
	const uint64_t *frames;
	unsigned hz;
	const struct trace_site *sites;
	size_t site_count;
};

/* s NULL: events only. */
static int write_events(const char *path, const struct trace_function *fns, size_t fn_count,
			const struct trace_event *events, size_t count, const struct sample_set *s)
{
	struct trace_meta meta = { .clock = 1, .pid = 1, .target_path = "/bin/fixture", .capture = "test" };
	struct trace_trailer trailer = { .end_reason = TRACE_END_TARGET_EXITED, .exit_status = 0 };
	struct trace_writer *w;
	int err = trace_writer__open(&w, path);

	if (err)
		return err;
	err = trace_writer__write_meta(w, &meta);
	err = err ? err : trace_writer__write_functions(w, fns, fn_count);
	for (size_t i = 0; !err && i < count; i++)
		err = trace_writer__add_event(w, &events[i]);
	for (size_t i = 0; s && !err && i < s->count; i += s->per_chunk) {
		size_t n = s->count - i < s->per_chunk ? s->count - i : s->per_chunk;

		err = trace_writer__write_samples(w, &s->samples[i], n, s->frames, s->hz, 0);
	}
	if (s && !err)
		err = trace_writer__write_frames(w, s->sites, s->site_count);
	err = err ? err : trace_writer__finish(w, &trailer);
	trace_writer__free(w);
	return err;
}

/* Flips the first sample byte of the n-th SAMPLES chunk (type 9): the
 * chunk header is 16 bytes, the samples header 24. */
static void corrupt_samples(const char *path, int n)
{
	FILE *f = fopen(path, "r+b");
	uint8_t head[16];
	long at = 24; /* the file header */

	while (f && fseek(f, at, SEEK_SET) == 0 && fread(head, sizeof(head), 1, f) == 1) {
		uint32_t type;
		uint64_t size;

		memcpy(&type, head, 4);
		memcpy(&size, head + 8, 8);
		if (type == 9 && --n == 0) {
			int c;

			fseek(f, at + 16 + 24, SEEK_SET);
			c = fgetc(f);
			fseek(f, at + 16 + 24, SEEK_SET);
			fputc(c ^ 0x40, f);
			break;
		}
		at += 16 + (long)size;
	}
	if (f)
		fclose(f);
}

/* Written, corrupted when asked, opened, unlinked. */
static struct trace_file *write_and_open(const struct trace_function *fns, size_t fn_count,
					 const struct trace_event *events, size_t count, const struct sample_set *s,
					 int corrupt_chunk)
{
	char *path = trace_fixture__temp_path(), why[256] = "";
	struct trace_file *t = NULL;

	if (!path)
		return NULL;
	if (write_events(path, fns, fn_count, events, count, s) != 0) {
		printf("note: trace fixture: cannot write\n");
	} else {
		if (corrupt_chunk > 0)
			corrupt_samples(path, corrupt_chunk);
		if (trace_file__open(&t, path, why, sizeof(why)) != 0)
			printf("note: trace fixture: %s\n", why);
	}
	unlink(path);
	free(path);
	return t;
}

struct trace_file *trace_fixture__open(const struct trace_function *fns, size_t fn_count,
				       const struct trace_event *events, size_t count)
{
	return write_and_open(fns, fn_count, events, count, NULL, 0);
}

struct trace_file *trace_fixture__open_profiled(const struct trace_function *fns, size_t fn_count,
						const struct trace_event *events, size_t count,
						const struct trace_sample *samples, size_t sample_count,
						const uint64_t *sample_frames, size_t per_chunk, unsigned hz,
						const struct trace_site *frames, size_t frame_count, int corrupt_chunk)
{
	struct sample_set set = { samples, sample_count, per_chunk ? per_chunk : 1, sample_frames, hz, frames,
				  frame_count };

	return write_and_open(fns, fn_count, events, count, &set, corrupt_chunk);
}
