/* Writing a trace file (format 3.x): meta and function table first, then
 * events, encoded per stream (one thread instance) and written in STREAM
 * chunks as each stream's buffer fills, threads and the trailer at the
 * end. */
#ifndef ASYNCTRACE_TRACE_WRITER_H
#define ASYNCTRACE_TRACE_WRITER_H

#include <stddef.h>

#include "trace/trace.h"

struct trace_writer;

/* Creates (truncates) `path`. Returns 0 or a negative errno. */
int trace_writer__open(struct trace_writer **out, const char *path);
int trace_writer__write_meta(struct trace_writer *w, const struct trace_meta *meta);
int trace_writer__write_functions(struct trace_writer *w, const struct trace_function *fns,
				  size_t count);
/* Events of the BPF backend, in ring-buffer order: each goes to the stream of its tid
 * (stream id = tid; the in-process backend uses ids >= 1ull << 32). Buffered per stream,
 * written as a STREAM chunk when a stream's encoded bytes reach ~32 KiB or 8192 events.
 * The encoding needs the function table: -EINVAL before trace_writer__write_functions. */
int trace_writer__add_event(struct trace_writer *w, const struct trace_event *event);
/* `count` events of one stream, in order (tid/pid of the stream given here; the events'
 * own tid/pid fields are ignored). Appended to that stream's pending chunk (flushed by size
 * as above). */
int trace_writer__add_stream_events(struct trace_writer *w, uint64_t stream, uint32_t tid,
				    uint32_t pid, const struct trace_event *events, size_t count);
/* Writes the stream's pending chunk now and forgets the stream's buffer (its thread ended). */
int trace_writer__flush_stream(struct trace_writer *w, uint64_t stream);
/* Bytes written so far (for "bytes per event" summaries). */
uint64_t trace_writer__bytes_written(const struct trace_writer *w);
int trace_writer__write_threads(struct trace_writer *w, const struct trace_thread *threads,
				size_t count);
/* Resolved code addresses (spawn sites). */
int trace_writer__write_sites(struct trace_writer *w, const struct trace_site *sites, size_t count);
/* The target's load bias: address in the process = address in the file + bias. */
/* One SAMPLES chunk: samples[i]'s frames are frames[first_frame ..
 * first_frame + frame_count). */
int trace_writer__write_samples(struct trace_writer *w, const struct trace_sample *samples, size_t count,
				const uint64_t *frames, uint32_t hz, uint64_t lost);
/* The FRAMES chunk: sampled addresses and where they are in the source. */
int trace_writer__write_frames(struct trace_writer *w, const struct trace_site *frames, size_t count);
int trace_writer__write_mapping(struct trace_writer *w, uint64_t load_bias);
/* Flushes every stream, writes the trailer (its `events` field is filled in) and
 * closes the file, checking that every byte reached it. */
/* Writes every pending chunk and hands the file's buffer to the kernel:
 * a recorder killed later leaves a file that is read up to here. */
int trace_writer__checkpoint(struct trace_writer *w);
int trace_writer__finish(struct trace_writer *w, struct trace_trailer *trailer);
/* Closes without a trailer if not finished (pending events are written);
 * frees. */
void trace_writer__free(struct trace_writer *w);
uint64_t trace_writer__event_count(const struct trace_writer *w);

#endif
