/* Writing a trace file: meta and function table first, events streamed in
 * chunks as they arrive, threads and the trailer at the end. */
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
/* Buffered; written as an events chunk when the buffer fills. */
int trace_writer__add_event(struct trace_writer *w, const struct trace_event *event);
int trace_writer__add_stream_events(struct trace_writer *w, uint64_t stream, uint32_t tid,
				    uint32_t pid, const struct trace_event *events, size_t count);
int trace_writer__write_threads(struct trace_writer *w, const struct trace_thread *threads,
				size_t count);
/* Resolved code addresses (spawn sites). */
int trace_writer__write_sites(struct trace_writer *w, const struct trace_site *sites, size_t count);
/* The target's load bias: address in the process = address in the file + bias. */
int trace_writer__write_mapping(struct trace_writer *w, uint64_t load_bias);
/* Flushes events, writes the trailer (its `events` field is filled in) and
 * closes the file, checking that every byte reached it. */
int trace_writer__finish(struct trace_writer *w, struct trace_trailer *trailer);
/* Closes without a trailer if not finished; frees. */
void trace_writer__free(struct trace_writer *w);
uint64_t trace_writer__event_count(const struct trace_writer *w);

#endif
