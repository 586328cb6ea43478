#include "trace/writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/format.h"
#include "util/buf.h"

/* 64 Ki events (3 MiB) per chunk: large writes, and a crash of the tracer
 * loses at most one chunk. */
#define EVENTS_PER_CHUNK 65536
#define FILE_BUFFER_SIZE (1 << 20)

_Static_assert(sizeof(struct trace_event) == 56, "trace_event is 56 bytes on disk");

struct trace_writer {
	FILE *file;
	char *io_buffer;
	struct trace_event *events;
	size_t pending;
	uint64_t total;
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
		.event_size = sizeof(struct trace_event),
	};
	int err;

	if (!w)
		return -ENOMEM;
	w->events = malloc(EVENTS_PER_CHUNK * sizeof(*w->events));
	w->io_buffer = malloc(FILE_BUFFER_SIZE);
	if (!w->events || !w->io_buffer) {
		trace_writer__free(w);
		return -ENOMEM;
	}
	w->file = fopen(path, "wbe"); /* not inherited by the target */
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
	if (!b->err) {
		uint32_t size = (uint32_t)(b->len - start);

		memcpy(b->data + start, &size, sizeof(size));
	}
}

int trace_writer__write_functions(struct trace_writer *w, const struct trace_function *fns,
				  size_t count)
{
	struct buf b = { 0 };

	buf_put_u32(&b, (uint32_t)count);
	for (size_t i = 0; i < count; i++)
		put_function(&b, &fns[i]);
	return write_buf_chunk(w, TRACE_CHUNK_FUNCTIONS, &b);
}

static int flush_events(struct trace_writer *w)
{
	uint32_t head[2] = { (uint32_t)w->pending, 0 };
	int err;

	if (!w->pending)
		return w->err;
	err = write_chunk(w, TRACE_CHUNK_EVENTS, head, sizeof(head), w->events,
			  w->pending * sizeof(*w->events));
	w->pending = 0;
	return err;
}

int trace_writer__add_event(struct trace_writer *w, const struct trace_event *event)
{
	w->events[w->pending++] = *event;
	w->total++;
	if (w->pending == EVENTS_PER_CHUNK)
		return flush_events(w);
	return w->err;
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

int trace_writer__write_sites(struct trace_writer *w, const struct trace_site *sites, size_t count)
{
	struct buf b = { 0 };

	buf_put_u32(&b, (uint32_t)count);
	for (size_t i = 0; i < count; i++) {
		buf_put_u64(&b, sites[i].addr);
		buf_put_u32(&b, sites[i].line);
		buf_put_str(&b, sites[i].file);
		buf_put_str(&b, sites[i].function);
	}
	return write_buf_chunk(w, TRACE_CHUNK_SITES, &b);
}

int trace_writer__write_mapping(struct trace_writer *w, uint64_t load_bias)
{
	struct buf b = { 0 };

	buf_put_u64(&b, load_bias);
	return write_buf_chunk(w, TRACE_CHUNK_MAPPING, &b);
}

int trace_writer__finish(struct trace_writer *w, struct trace_trailer *trailer)
{
	struct buf b = { 0 };
	int err;

	flush_events(w);
	trailer->events = w->total;
	buf_put_u64(&b, trailer->events);
	buf_put_u64(&b, trailer->lost);
	buf_put_u64(&b, trailer->end_clock_ns);
	buf_put_u32(&b, trailer->end_reason);
	buf_put_u32(&b, (uint32_t)trailer->exit_status);
	write_buf_chunk(w, TRACE_CHUNK_TRAILER, &b);
	if (!w->err && fflush(w->file) != 0)
		w->err = -errno;
	if (!w->err && fsync(fileno(w->file)) != 0 && errno != EINVAL)
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
		flush_events(w);
		fclose(w->file);
	}
	free(w->events);
	free(w->io_buffer);
	free(w);
}

/* Interim: format 2 has no streams; events are written as they come. */
int trace_writer__add_stream_events(struct trace_writer *w, uint64_t stream, uint32_t tid,
				    uint32_t pid, const struct trace_event *events, size_t count)
{
	int err = 0;

	(void)stream;
	for (size_t i = 0; i < count && !err; i++) {
		struct trace_event e = events[i];

		e.tid = tid;
		e.pid = pid;
		err = trace_writer__add_event(w, &e);
	}
	return err;
}
