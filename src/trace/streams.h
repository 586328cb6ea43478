/* The events of a trace file, per stream (one thread instance), and their
 * merge into one time-ordered sequence. Private to the reader: it hands
 * this the event chunks it meets, then asks for events. Memory grows with
 * chunks and streams, never with events. */
#ifndef ASYNCTRACE_TRACE_STREAMS_H
#define ASYNCTRACE_TRACE_STREAMS_H

#include <stddef.h>
#include <stdint.h>

#include "trace/reader.h"
#include "trace/trace.h"

struct trace_streams;

/* Returns NULL when out of memory. */
struct trace_streams *trace_streams__new(void);
void trace_streams__free(struct trace_streams *s);
/* The chunks handed over lie in this read-only file mapping: pages read
 * through are released (madvise) so memory does not grow with the file.
 * Without it nothing is released. */
void trace_streams__set_mapping(struct trace_streams *s, const uint8_t *map, size_t len);
/* The pages released once [start, start + len) of a mapping at base (page
 * aligned, map_len bytes) is read: [*from, *to), always inside it. */
void trace_streams__release_range(uintptr_t base, size_t map_len, uintptr_t start, size_t len, uintptr_t *from,
				  uintptr_t *to);

/* A 2.x EVENTS chunk's payload. Returns 0 or a negative errno (-EINVAL:
 * malformed). */
int trace_streams__add_events_chunk(struct trace_streams *s, const uint8_t *payload, size_t size);
/* A 3.x STREAM chunk's payload: its header is checked, and the crc32 of
 * its encoded bytes. Returns 0, -EINVAL (malformed), -EBADMSG (bad crc)
 * or -ENOMEM. */
int trace_streams__add_stream_chunk(struct trace_streams *s, const uint8_t *payload, size_t size);
/* After the last chunk: orders the streams, and builds the decoding
 * table from the function table. Returns 0 or -ENOMEM. */
int trace_streams__finish(struct trace_streams *s, const struct trace_function *fns, size_t count);

uint64_t trace_streams__event_count(const struct trace_streams *s);
size_t trace_streams__stream_count(const struct trace_streams *s);
/* The timestamp of the first event in merged order, 0 without events. */
uint64_t trace_streams__first_ts(const struct trace_streams *s);

/* Every event in timestamp order (see trace_file__for_each_event), on the
 * calling thread. (A decoding thread handing batches over was measured
 * on this 2-core VM: 45 % more CPU and no shorter wall time, so none.) */
int trace_streams__for_each_event(const struct trace_streams *s, trace_event_fn fn, void *ctx);
/* The same, pulled one event at a time (trace_file__events). */
int trace_streams__iterate(const struct trace_streams *s, struct trace_event_iter **it);

#endif
