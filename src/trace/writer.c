#include "trace/writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "trace/codec.h"
#include "trace/format.h"
#include "util/buf.h"
#include "util/private_file.h"
#include "util/u64map.h"

/* A stream's chunk is written when it holds this much: large writes, a
 * bounded buffer per open stream, and a crash of the tracer loses at
 * most one chunk per stream. */
#define CHUNK_BYTES 32768
#define CHUNK_EVENTS 8192
#define FIRST_BUFFER_BYTES 1024
/* Ring-buffer order interleaves threads: a few recent streams by id
 * spare most lookups in the map. */
#define RECENT_STREAMS 64
#define FILE_BUFFER_SIZE (1 << 20)

/* One stream's pending chunk. */
struct stream_buffer {
	uint64_t id;
	uint32_t tid;
	uint32_t pid;
	uint32_t count;
	uint64_t first_ts;
	uint64_t last_ts;
	uint8_t *bytes;
	size_t len;
	size_t capacity;
	struct codec_state state;
};

struct trace_writer {
	FILE *file;
	char *io_buffer;
	struct event_codec codec;
	int have_functions;
	struct u64map streams;       /* id + 1 -> struct stream_buffer */
	struct stream_buffer *recent[RECENT_STREAMS]; /* by id % RECENT_STREAMS */
	uint64_t total;
	uint64_t bytes;
	int err; /* sticky first write error */
};

int trace_writer__open(struct trace_writer **out, const char *path)
{
	struct trace_writer *w = calloc(1, sizeof(*w));
	struct trace_file_header header = {
		.version_major = TRACE_VERSION_MAJOR,
		.version_minor = TRACE_VERSION_MINOR,
		.header_size = sizeof(header),
		.endian = TRACE_ENDIAN_LITTLE,
		.event_size = 0,
	};
	int err;

	if (!w)
		return -ENOMEM;
	w->io_buffer = malloc(FILE_BUFFER_SIZE);
	if (!w->io_buffer) {
		trace_writer__free(w);
		return -ENOMEM;
	}
	w->file = private_file__fopen(path); /* 0600, no symlinks; close-on-exec: not inherited by the target */
	if (!w->file) {
		err = -errno;
		trace_writer__free(w);
		return err;
	}
	setvbuf(w->file, w->io_buffer, _IOFBF, FILE_BUFFER_SIZE);
	memcpy(header.magic, TRACE_MAGIC, TRACE_MAGIC_LEN);
	if (fwrite(&header, sizeof(header), 1, w->file) != 1) {
		err = -errno;
		trace_writer__free(w);
		return err ? err : -EIO;
	}
	w->bytes = sizeof(header);
	*out = w;
	return 0;
}

static int write_chunk(struct trace_writer *w, uint32_t type, const void *head, size_t head_len,
		       const void *body, size_t body_len)
{
	struct trace_chunk_header chunk = { .type = type, .size = head_len + body_len };
	static const uint8_t zeros[8];
	size_t pad = (8 - chunk.size % 8) % 8;

	if (w->err)
		return w->err;
	chunk.size += pad;
	if (fwrite(&chunk, sizeof(chunk), 1, w->file) != 1 ||
	    (head_len && fwrite(head, head_len, 1, w->file) != 1) ||
	    (body_len && fwrite(body, body_len, 1, w->file) != 1) ||
	    (pad && fwrite(zeros, pad, 1, w->file) != 1))
		w->err = errno ? -errno : -EIO;
	else
		w->bytes += sizeof(chunk) + chunk.size;
	return w->err;
}

static int write_buf_chunk(struct trace_writer *w, uint32_t type, struct buf *b)
{
	int err = b->err ? b->err : write_chunk(w, type, b->data, b->len, NULL, 0);

	buf_free(b);
	return err;
}

int trace_writer__write_meta(struct trace_writer *w, const struct trace_meta *meta)
{
	struct buf b = { 0 };

	buf_put_u32(&b, meta->clock);
	buf_put_u32(&b, meta->pid);
	buf_put_u64(&b, meta->start_realtime_ns);
	buf_put_u64(&b, meta->start_clock_ns);
	buf_put_u16(&b, meta->machine);
	buf_put_u8(&b, meta->build_id_len);
	buf_put_bytes(&b, meta->build_id, sizeof(meta->build_id));
	buf_put_str(&b, meta->target_path);
	buf_put_str(&b, meta->command);
	buf_put_str(&b, meta->capture);
	return write_buf_chunk(w, TRACE_CHUNK_META, &b);
}

/* Each entry starts with its own size, so a later minor version can append
 * fields that older readers skip. */
static void put_function(struct buf *b, const struct trace_function *fn)
{
	size_t start = b->len;

	buf_put_u32(b, 0); /* entry size, patched below */
	buf_put_u64(b, fn->addr);
	buf_put_u64(b, fn->size);
	buf_put_u8(b, fn->context);
	buf_put_u8(b, fn->body);
	buf_put_u8(b, fn->self_arg);
	buf_put_u8(b, fn->result.mode);
	buf_put_u8(b, fn->result.disc_size);
	buf_put_u8(b, fn->role);
	buf_put_u16(b, fn->result.disc_offset);
	buf_put_u64(b, fn->result.pending_value);
	buf_put_u32(b, fn->exit_sites);
	buf_put_u32(b, fn->source_line);
	buf_put_u32(b, fn->target);
	buf_put_u16(b, fn->state_offset);
	buf_put_u8(b, fn->state_size);
	buf_put_u8(b, fn->runtime);
	buf_put_str(b, fn->name);
	buf_put_str(b, fn->mangled);
	buf_put_str(b, fn->source_file);
	buf_put_u32(b, fn->await_count);
	for (uint32_t i = 0; i < fn->await_count; i++) {
		buf_put_u64(b, fn->awaits[i].state);
		buf_put_u32(b, fn->awaits[i].line);
		buf_put_str(b, fn->awaits[i].file);
	}
	buf_put_u32(b, fn->flags); /* 3.1 */
	if (!b->err) {
		uint32_t size = (uint32_t)(b->len - start);

		memcpy(b->data + start, &size, sizeof(size));
	}
}

int trace_writer__write_functions(struct trace_writer *w, const struct trace_function *fns,
				  size_t count)
{
	struct buf b = { 0 };
	int err;

	if (w->have_functions)
		return -EINVAL; /* one table: event func_ids index it */
	err = event_codec__init(&w->codec, fns, count);
	if (err)
		return err;
	w->have_functions = 1;

	buf_put_u32(&b, (uint32_t)count);
	for (size_t i = 0; i < count; i++)
		put_function(&b, &fns[i]);
	return write_buf_chunk(w, TRACE_CHUNK_FUNCTIONS, &b);
}

static int write_stream_chunk(struct trace_writer *w, struct stream_buffer *sb)
{
	struct trace_stream_header head = {
		.stream = sb->id,
		.tid = sb->tid,
		.pid = sb->pid,
		.count = sb->count,
		.encoded_bytes = (uint32_t)sb->len,
		.first_ts = sb->first_ts,
		.last_ts = sb->last_ts,
		.crc32 = (uint32_t)crc32(0L, sb->bytes, (uInt)sb->len),
	};
	int err;

	if (!sb->count)
		return w->err;
	err = write_chunk(w, TRACE_CHUNK_STREAM, &head, sizeof(head), sb->bytes, sb->len);
	sb->count = 0;
	sb->len = 0;
	return err;
}

static void free_stream(struct stream_buffer *sb)
{
	if (sb)
		free(sb->bytes);
	free(sb);
}

static struct stream_buffer *stream_of(struct trace_writer *w, uint64_t id)
{
	struct stream_buffer *sb = w->recent[id % RECENT_STREAMS];

	if (sb && sb->id == id)
		return sb;
	if (id == UINT64_MAX)
		return NULL; /* not a stream id (the map's keys are id + 1) */
	sb = u64map_get(&w->streams, id + 1);
	if (!sb) {
		sb = calloc(1, sizeof(*sb));
		if (!sb || u64map_put(&w->streams, id + 1, sb)) {
			free(sb);
			return NULL;
		}
		sb->id = id;
	}
	return w->recent[id % RECENT_STREAMS] = sb;
}

/* Room for one more event; the buffer grows to one chunk at most (a
 * chunk is written once it holds CHUNK_BYTES). */
static int reserve_event(struct stream_buffer *sb)
{
	size_t capacity = sb->capacity ? sb->capacity : FIRST_BUFFER_BYTES;
	uint8_t *bytes;

	if (sb->capacity - sb->len >= CODEC_MAX_EVENT_BYTES)
		return 0;
	while (capacity - sb->len < CODEC_MAX_EVENT_BYTES)
		capacity *= 2;
	if (capacity > CHUNK_BYTES + CODEC_MAX_EVENT_BYTES)
		capacity = CHUNK_BYTES + CODEC_MAX_EVENT_BYTES;
	bytes = realloc(sb->bytes, capacity);
	if (!bytes)
		return -ENOMEM;
	sb->bytes = bytes;
	sb->capacity = capacity;
	return 0;
}

/* A chunk has one tid and pid: a change (a reused tid) starts a new one. */
static int begin_event(struct trace_writer *w, struct stream_buffer *sb, uint32_t tid, uint32_t pid,
		       uint64_t ts)
{
	int err;

	if (sb->count && (sb->tid != tid || sb->pid != pid)) {
		err = write_stream_chunk(w, sb);
		if (err)
			return err;
	}
	if (!sb->count) {
		sb->tid = tid;
		sb->pid = pid;
		sb->first_ts = ts;
		codec_state__reset(&sb->state, ts);
	}
	return reserve_event(sb);
}

static int append_event(struct trace_writer *w, struct stream_buffer *sb, uint32_t tid, uint32_t pid,
			const struct trace_event *e)
{
	/* The usual case, a chunk under way with room, checks only that. */
	if (!sb->count || sb->tid != tid || sb->pid != pid || sb->capacity - sb->len < CODEC_MAX_EVENT_BYTES) {
		int err = begin_event(w, sb, tid, pid, e->ts);

		if (err)
			return err;
	}
	sb->len += event_codec__encode(&w->codec, &sb->state, e, sb->bytes + sb->len);
	sb->last_ts = e->ts;
	sb->count++;
	w->total++;
	if (sb->len >= CHUNK_BYTES || sb->count >= CHUNK_EVENTS)
		return write_stream_chunk(w, sb);
	return 0;
}

int trace_writer__add_event(struct trace_writer *w, const struct trace_event *event)
{
	struct stream_buffer *sb;

	if (w->err)
		return w->err;
	if (!w->have_functions)
		return -EINVAL;
	sb = stream_of(w, event->tid);
	return sb ? append_event(w, sb, event->tid, event->pid, event) : -ENOMEM;
}

int trace_writer__add_stream_events(struct trace_writer *w, uint64_t stream, uint32_t tid,
				    uint32_t pid, const struct trace_event *events, size_t count)
{
	struct stream_buffer *sb;
	int err = 0;

	if (w->err)
		return w->err;
	if (!w->have_functions || stream == UINT64_MAX)
		return -EINVAL;
	sb = stream_of(w, stream);
	if (!sb)
		return -ENOMEM;
	for (size_t i = 0; i < count && !err; i++)
		err = append_event(w, sb, tid, pid, &events[i]);
	return err;
}

int trace_writer__flush_stream(struct trace_writer *w, uint64_t stream)
{
	struct stream_buffer *sb = stream == UINT64_MAX ? NULL : u64map_get(&w->streams, stream + 1);
	int err;

	if (!sb)
		return w->err;
	err = write_stream_chunk(w, sb);
	u64map_remove(&w->streams, stream + 1);
	if (w->recent[stream % RECENT_STREAMS] == sb)
		w->recent[stream % RECENT_STREAMS] = NULL;
	free_stream(sb);
	return err;
}

static int compare_streams(const void *a, const void *b)
{
	uint64_t x = (*(struct stream_buffer *const *)a)->id, y = (*(struct stream_buffer *const *)b)->id;

	return x < y ? -1 : x > y;
}

static void drop_streams(struct trace_writer *w)
{
	for (size_t i = 0; w->streams.slots && i <= w->streams.mask; i++)
		if (w->streams.slots[i].key)
			free_stream(w->streams.slots[i].value);
	u64map_free(&w->streams);
	memset(w->recent, 0, sizeof(w->recent));
}

/* Writes every pending chunk, in stream order (a file does not depend on
 * how the map hashes), and forgets the streams. */
static int flush_streams(struct trace_writer *w)
{
	struct stream_buffer **order = malloc((w->streams.count + 1) * sizeof(*order));
	size_t n = 0;

	if (!order) {
		drop_streams(w);
		return w->err = w->err ? w->err : -ENOMEM;
	}
	for (size_t i = 0; w->streams.slots && i <= w->streams.mask; i++)
		if (w->streams.slots[i].key)
			order[n++] = w->streams.slots[i].value;
	qsort(order, n, sizeof(*order), compare_streams);
	for (size_t i = 0; i < n; i++)
		write_stream_chunk(w, order[i]);
	free(order);
	drop_streams(w);
	return w->err;
}

uint64_t trace_writer__bytes_written(const struct trace_writer *w)
{
	return w->bytes;
}

int trace_writer__write_threads(struct trace_writer *w, const struct trace_thread *threads,
				size_t count)
{
	struct buf b = { 0 };

	buf_put_u32(&b, (uint32_t)count);
	for (size_t i = 0; i < count; i++) {
		buf_put_u32(&b, threads[i].tid);
		buf_put_bytes(&b, threads[i].name, sizeof(threads[i].name));
	}
	return write_buf_chunk(w, TRACE_CHUNK_THREADS, &b);
}

static int write_site_table(struct trace_writer *w, uint32_t type, const struct trace_site *sites, size_t count)
{
	struct buf b = { 0 };

	buf_put_u32(&b, (uint32_t)count);
	for (size_t i = 0; i < count; i++) {
		buf_put_u64(&b, sites[i].addr);
		buf_put_u32(&b, sites[i].line);
		buf_put_str(&b, sites[i].file);
		buf_put_str(&b, sites[i].function);
	}
	return write_buf_chunk(w, type, &b);
}

int trace_writer__write_sites(struct trace_writer *w, const struct trace_site *sites, size_t count)
{
	return write_site_table(w, TRACE_CHUNK_SITES, sites, count);
}

int trace_writer__write_samples(struct trace_writer *w, const struct trace_sample *samples, size_t count,
				const uint64_t *frames, uint32_t hz, uint64_t lost)
{
	struct trace_samples_header head = { .count = (uint32_t)count, .hz = hz, .lost = lost };
	struct buf b = { 0 };
	int err;

	for (size_t i = 0; i < count; i++) {
		buf_put_u64(&b, samples[i].ts);
		buf_put_u32(&b, samples[i].tid);
		buf_put_u16(&b, samples[i].kind);
		buf_put_u16(&b, samples[i].frame_count);
		for (uint32_t f = 0; f < samples[i].frame_count; f++)
			buf_put_u64(&b, frames[samples[i].first_frame + f]);
	}
	if (b.err)
		return b.err;
	head.crc32 = (uint32_t)crc32(0, b.data, (uInt)b.len);
	err = write_chunk(w, TRACE_CHUNK_SAMPLES, &head, sizeof(head), b.data, b.len);
	buf_free(&b);
	return err;
}

int trace_writer__write_frames(struct trace_writer *w, const struct trace_site *frames, size_t count)
{
	return write_site_table(w, TRACE_CHUNK_FRAMES, frames, count);
}

int trace_writer__write_mapping(struct trace_writer *w, uint64_t load_bias)
{
	struct buf b = { 0 };

	buf_put_u64(&b, load_bias);
	return write_buf_chunk(w, TRACE_CHUNK_MAPPING, &b);
}

int trace_writer__checkpoint(struct trace_writer *w)
{
	flush_streams(w);
	if (!w->err && fflush(w->file) != 0)
		w->err = -errno;
	return w->err;
}

int trace_writer__finish(struct trace_writer *w, struct trace_trailer *trailer)
{
	struct buf b = { 0 };
	int err;

	flush_streams(w);
	trailer->events = w->total;
	buf_put_u64(&b, trailer->events);
	buf_put_u64(&b, trailer->lost);
	buf_put_u64(&b, trailer->end_clock_ns);
	buf_put_u32(&b, trailer->end_reason);
	buf_put_u32(&b, (uint32_t)trailer->exit_status);
	write_buf_chunk(w, TRACE_CHUNK_TRAILER, &b);
	/* No fsync, as perf and uftrace: it cost 5-7 ms here (a tenth of a short
	 * traced run), write errors such as ENOSPC still come back from write()
	 * or close(), and a file cut by a crash is read up to its last chunk. */
	if (!w->err && fflush(w->file) != 0)
		w->err = -errno;
	if (fclose(w->file) != 0 && !w->err)
		w->err = -errno;
	w->file = NULL;
	err = w->err;
	return err;
}

uint64_t trace_writer__event_count(const struct trace_writer *w)
{
	return w->total;
}

void trace_writer__free(struct trace_writer *w)
{
	if (!w)
		return;
	if (w->file) {
		flush_streams(w);
		fclose(w->file);
	}
	drop_streams(w);
	event_codec__free(&w->codec);
	free(w->io_buffer);
	free(w);
}
