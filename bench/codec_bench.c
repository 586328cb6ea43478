/* codec-bench TRACE...: the trace format 3.0 event encoding on recorded
 * traces, set against its peers measured in the same run: the 56-byte
 * events of format 2.0, and zstd on top of each STREAM chunk.
 *
 * For each trace (any version): its events are written again with the 3.0
 * writer as `record` writes them (trace_writer__add_event, in order), and
 *   size    bytes per event in STREAM chunks (and in the whole file);
 *   encode  events/s through trace_writer__add_event (encoding, chunking,
 *           crc32, stdio), and through event_codec__encode alone;
 *   decode  a trace of 8 streams (the trace's threads, copied with their
 *           timestamps shifted by a few ns): trace_file__open (which checks
 *           every chunk's crc32) and trace_file__for_each_event's merge;
 *   zstd    each STREAM chunk's encoded bytes compressed (levels -1, 1, 3):
 *           bytes per event, and the time it would add per event.
 * Single-threaded; figures are the best of a few repetitions. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "trace/codec.h"
#include "trace/format.h"
#include "trace/reader.h"
#include "trace/writer.h"

#define STREAMS 8
#define REPS 5

struct events {
	struct trace_event *e;
	size_t n;
	size_t capacity;
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int keep_event(const struct trace_event *e, void *ctx)
{
	struct events *ev = ctx;

	if (ev->n == ev->capacity) {
		size_t capacity = ev->capacity ? ev->capacity * 2 : 65536;
		struct trace_event *grown = realloc(ev->e, capacity * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		ev->e = grown;
		ev->capacity = capacity;
	}
	ev->e[ev->n++] = *e;
	return 0;
}

static int begin_copy(struct trace_writer **w, const char *path, const struct trace_file *t)
{
	int err = trace_writer__open(w, path);

	err = err ? err : trace_writer__write_meta(*w, &t->meta);
	return err ? err : trace_writer__write_functions(*w, t->functions, t->function_count);
}

static int end_copy(struct trace_writer *w)
{
	struct trace_trailer trailer = { .end_reason = TRACE_END_TARGET_EXITED, .exit_status = -1 };
	int err = trace_writer__finish(w, &trailer);

	trace_writer__free(w);
	return err;
}

/* Writes ev as record does; returns the seconds add_event took, or < 0. */
static double write_copy(const char *path, const struct trace_file *t, const struct events *ev)
{
	struct trace_writer *w;
	double start, took;
	int err = begin_copy(&w, path, t);

	if (err)
		return -1;
	start = now();
	for (size_t i = 0; i < ev->n && !err; i++)
		err = trace_writer__add_event(w, &ev->e[i]);
	took = now() - start;
	err = err ? err : end_copy(w);
	return err ? -1 : took;
}

/* The file, and the bytes of its STREAM chunks. */
static void *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	void *data = NULL;
	long size;

	if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (data = malloc((size_t)size)) && fread(data, (size_t)size, 1, f) == 1)
		*len = (size_t)size;
	else {
		free(data);
		data = NULL;
	}
	if (f)
		fclose(f);
	return data;
}

typedef void (*chunk_fn)(const struct trace_stream_header *h, const uint8_t *encoded, void *ctx);

static size_t for_each_stream_chunk(const uint8_t *file, size_t len, chunk_fn fn, void *ctx)
{
	size_t bytes = 0;

	for (size_t at = sizeof(struct trace_file_header); at + 16 <= len;) {
		struct trace_chunk_header h;

		memcpy(&h, file + at, sizeof(h));
		if (h.type == TRACE_CHUNK_STREAM && h.size >= sizeof(struct trace_stream_header)) {
			struct trace_stream_header sh;

			memcpy(&sh, file + at + 16, sizeof(sh));
			if (fn)
				fn(&sh, file + at + 16 + sizeof(sh), ctx);
			bytes += 16 + h.size;
		}
		at += 16 + h.size;
	}
	return bytes;
}

/* The distinct tids of ev, at most max. */
static size_t tids_of(const struct events *ev, uint32_t *tids, size_t max)
{
	size_t count = 0;

	for (size_t i = 0; i < ev->n && count < max; i++) {
		size_t j = 0;

		while (j < count && tids[j] != ev->e[i].tid)
			j++;
		if (j == count)
			tids[count++] = ev->e[i].tid;
	}
	return count;
}

/* Encodes one thread's events in chunks as the writer does. */
static void encode_thread(const struct event_codec *codec, struct codec_state *state,
			  const struct trace_event *e, size_t n, uint8_t *out)
{
	size_t len = 0, in_chunk = 0;

	for (size_t i = 0; i < n; i++) {
		if (in_chunk == 0 || in_chunk == 8192 || len >= 32768) {
			codec_state__reset(state, e[i].ts);
			in_chunk = len = 0;
		}
		len += event_codec__encode(codec, state, &e[i], out + len);
		in_chunk++;
	}
}

/* The codec alone, on each thread's events (split beforehand), without
 * the writer's buffers, checksums and stdio. */
static double encode_alone(const struct trace_file *t, const struct events *ev)
{
	static struct codec_state state;
	struct trace_event *split = malloc((ev->n + 1) * sizeof(*split));
	uint8_t *out = malloc(32768 + CODEC_MAX_EVENT_BYTES);
	size_t starts[65] = { 0 }, tid_count, n = 0;
	uint32_t tids[64];
	struct event_codec codec;
	double best = 1e9;

	tid_count = tids_of(ev, tids, 64);
	if (!split || !out || event_codec__init(&codec, t->functions, t->function_count)) {
		free(split);
		free(out);
		return -1;
	}
	for (size_t k = 0; k < tid_count; k++) {
		starts[k] = n;
		for (size_t i = 0; i < ev->n; i++)
			if (ev->e[i].tid == tids[k])
				split[n++] = ev->e[i];
	}
	starts[tid_count] = n;
	for (int rep = 0; rep < REPS; rep++) {
		double start = now();

		for (size_t k = 0; k < tid_count; k++)
			encode_thread(&codec, &state, split + starts[k], starts[k + 1] - starts[k], out);
		if (now() - start < best)
			best = now() - start;
	}
	event_codec__free(&codec);
	free(split);
	free(out);
	return n == ev->n ? best : -1;
}

/* STREAMS streams: the trace's threads, each copied whole, in turn. */
static int write_streams(const char *path, const struct trace_file *t, const struct events *ev)
{
	struct trace_event *mine = malloc((ev->n + 1) * sizeof(*mine));
	uint32_t tids[STREAMS];
	size_t tid_count = tids_of(ev, tids, STREAMS);
	struct trace_writer *w;
	int err = mine ? begin_copy(&w, path, t) : -ENOMEM;

	for (uint32_t k = 0; !err && k < STREAMS && tid_count; k++) {
		size_t n = 0;

		for (size_t i = 0; i < ev->n; i++)
			if (ev->e[i].tid == tids[k % tid_count]) {
				mine[n] = ev->e[i];
				mine[n++].ts += k * 7;
			}
		err = trace_writer__add_stream_events(w, k + 1, 1000 + k, t->meta.pid, mine, n);
	}
	free(mine);
	return err ? err : (mine ? end_copy(w) : err);
}

static int touch_event(const struct trace_event *e, void *ctx)
{
	*(uint64_t *)ctx += e->ts ^ e->arg0;
	return 0;
}

static void measure_decode(const char *path)
{
	double best_open = 1e9, best_merge = 1e9;
	uint64_t events = 0, sink = 0;
	size_t streams = 0;

	for (int rep = 0; rep < REPS; rep++) {
		struct trace_file *t;
		char err[256];
		double start = now(), opened;

		if (trace_file__open(&t, path, err, sizeof(err))) {
			printf("  decode   %s\n", err);
			return;
		}
		opened = now();
		if (trace_file__for_each_event(t, touch_event, &sink))
			printf("  decode   failed\n");
		if (opened - start < best_open)
			best_open = opened - start;
		if (now() - opened < best_merge)
			best_merge = now() - opened;
		events = t->event_count;
		streams = t->stream_count;
		trace_file__close(t);
	}
	printf("  decode   %zu streams, %llu events: merge %.1f M events/s; open (crc32 of every chunk) %.1f ms, with it %.1f M events/s\n",
	       streams, (unsigned long long)events, (double)events / best_merge / 1e6, best_open * 1e3,
	       (double)events / (best_merge + best_open) / 1e6);
}

struct zstd_run {
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
	int level;
	size_t bytes;
	size_t compressed;
	double compress;
	double decompress;
	int failed;
};

static void compress_chunk(const struct trace_stream_header *h, const uint8_t *encoded, void *ctx)
{
	struct zstd_run *z = ctx;
	size_t bound = ZSTD_compressBound(h->encoded_bytes), size;
	uint8_t *packed = malloc(bound), *back = malloc(h->encoded_bytes + 1);
	double start = now(), packed_at;

	size = packed && back ? ZSTD_compressCCtx(z->cctx, packed, bound, encoded, h->encoded_bytes, z->level) : 0;
	packed_at = now();
	if (!size || ZSTD_isError(size) ||
	    ZSTD_decompressDCtx(z->dctx, back, h->encoded_bytes, packed, size) != h->encoded_bytes ||
	    memcmp(back, encoded, h->encoded_bytes))
		z->failed = 1;
	z->decompress += now() - packed_at;
	z->compress += packed_at - start;
	z->bytes += h->encoded_bytes + 64;
	z->compressed += size + 64;
	free(packed);
	free(back);
}

static void measure_zstd(const uint8_t *file, size_t len, size_t events)
{
	static const int levels[] = { -1, 1, 3 };

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		struct zstd_run z = { .cctx = ZSTD_createCCtx(), .dctx = ZSTD_createDCtx(), .level = levels[i] };

		for_each_stream_chunk(file, len, compress_chunk, &z);
		printf("  zstd %2d  %.2f bytes/event (%.0f %% of the encoding); adds %.1f ns/event to encode, %.1f to decode%s\n",
		       levels[i], (double)z.compressed / (double)events, 100.0 * (double)z.compressed / (double)z.bytes,
		       z.compress * 1e9 / (double)events, z.decompress * 1e9 / (double)events,
		       z.failed ? " (FAILED)" : "");
		ZSTD_freeCCtx(z.cctx);
		ZSTD_freeDCtx(z.dctx);
	}
}

static void measure_size_and_encode(const char *copy, const struct trace_file *t, const struct events *ev)
{
	double best = 1e9, alone = encode_alone(t, ev);
	size_t len = 0;
	uint8_t *file;

	for (int rep = 0; rep < REPS; rep++) {
		double took = write_copy(copy, t, ev);

		if (took >= 0 && took < best)
			best = took;
	}
	file = slurp(copy, &len);
	if (!file || best >= 1e9) {
		printf("  cannot write %s\n", copy);
		free(file);
		return;
	}
	printf("  size     %.2f bytes/event in STREAM chunks (%.2f for the whole file); format 2.0: 56, %.1fx more\n",
	       (double)for_each_stream_chunk(file, len, NULL, NULL) / (double)ev->n, (double)len / (double)ev->n,
	       56.0 * (double)ev->n / (double)for_each_stream_chunk(file, len, NULL, NULL));
	printf("  encode   trace_writer__add_event %.1f M events/s; event_codec__encode alone %.1f M events/s\n",
	       (double)ev->n / best / 1e6, alone > 0 ? (double)ev->n / alone / 1e6 : 0.0);
	measure_zstd(file, len, ev->n);
	free(file);
}

static int bench_trace(const char *path, const char *dir)
{
	char copy[4096], streams[4096], err[256];
	struct events ev = { 0 };
	struct trace_file *t;

	if (trace_file__open(&t, path, err, sizeof(err))) {
		fprintf(stderr, "codec-bench: %s\n", err);
		return 1;
	}
	if (trace_file__for_each_event(t, keep_event, &ev) || !ev.n) {
		fprintf(stderr, "codec-bench: %s: no events read\n", path);
		trace_file__close(t);
		free(ev.e);
		return 1;
	}
	snprintf(copy, sizeof(copy), "%s/copy.trace", dir);
	snprintf(streams, sizeof(streams), "%s/streams.trace", dir);
	printf("%s: %zu events (format %u.%u)\n", path, ev.n, t->version_major, t->version_minor);
	measure_size_and_encode(copy, t, &ev);
	if (write_streams(streams, t, &ev) == 0)
		measure_decode(streams);
	unlink(copy);
	unlink(streams);
	trace_file__close(t);
	free(ev.e);
	return 0;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/asynctrace-codec-bench-XXXXXX";
	int failed = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: codec-bench TRACE...\n");
		return 2;
	}
	if (!mkdtemp(dir)) {
		fprintf(stderr, "codec-bench: cannot create a directory under /tmp: %s\n", strerror(errno));
		return 1;
	}
	for (int i = 1; i < argc; i++)
		failed |= bench_trace(argv[i], dir);
	rmdir(dir);
	return failed;
}
