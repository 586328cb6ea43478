/* Reading a trace file. Opening validates the whole structure (every chunk
 * inside the file, a trailer at the end) before anything is reported, so a
 * truncated or foreign file is one clear error, not a partial answer. */
#ifndef ASYNCTRACE_TRACE_READER_H
#define ASYNCTRACE_TRACE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/trace.h"

struct trace_streams;

struct trace_file {
	struct trace_meta meta;
	struct trace_function *functions;
	size_t function_count;
	struct trace_thread *threads;
	size_t thread_count;
	struct trace_trailer trailer;
	struct trace_site *sites;
	size_t site_count;
	uint64_t load_bias;       /* address in the process - address in the file */
	/* On-CPU samples (asynctrace profile), by thread then time, and the
	 * sampled addresses resolved (sorted by address). */
	struct trace_sample *samples;
	size_t sample_count;
	uint64_t *sample_frames;
	size_t sample_frame_count;
	uint64_t samples_lost;
	uint32_t sample_hz;       /* 0: the trace has no samples */
	struct trace_site *frames;
	size_t frame_count;
	uint64_t event_count;     /* events present in the file */
	size_t stream_count;      /* thread instances with events (a 2.x file: 1, or 0) */
	uint64_t first_ts;        /* the first event's, in for_each_event order; 0: none */
	uint16_t version_major;   /* 2 or 3 */
	uint16_t version_minor;
	/* A file whose recording did not finish (tracer killed, disk full) is
	 * read up to its last complete chunk; a stream chunk whose checksum
	 * fails is skipped. Both are counted here for one warning. */
	bool cut_short;           /* no trailer: ended inside or after a chunk */
	uint64_t chunks_read;
	uint64_t chunks_skipped;  /* checksum mismatch */
	uint64_t bytes_discarded; /* a cut chunk's and skipped chunks' bytes */
	/* private */
	const uint8_t *map;
	size_t map_len;
	struct trace_streams *streams;
	size_t sample_cap, sample_frame_cap;
};

/* Returns 0, or a negative errno with a one-line reason in err[]. */
int trace_file__open(struct trace_file **out, const char *path, char *err, size_t errlen);
void trace_file__close(struct trace_file *trace);

typedef int (*trace_event_fn)(const struct trace_event *event, void *ctx);
/* Calls fn for every event in timestamp order: the per-stream (per-thread)
 * sequences merged, each kept in its own order; equal timestamps go to
 * the lower stream id. A 2.x file's events are one stream, in file order.
 * Stops early and returns fn's value when it is non-zero. Returns 0, or a
 * negative errno: -EBADMSG when events do not decode (open checked their
 * checksums, so only a forged file gets there), -ENOMEM. */
int trace_file__for_each_event(const struct trace_file *trace, trace_event_fn fn, void *ctx);

/* The same order, pulled: a live view or an exporter drives its own loop.
 * trace_event_iter__next returns 1 with *event valid until the next call,
 * 0 after the last event, or a negative errno (as above). */
struct trace_event_iter;
int trace_file__events(const struct trace_file *trace, struct trace_event_iter **it);
int trace_event_iter__next(struct trace_event_iter *it, const struct trace_event **event);
void trace_event_iter__free(struct trace_event_iter *it);

/* The resolved site of a code address, or NULL. */
const struct trace_site *trace_file__site(const struct trace_file *trace, uint64_t addr);

/* The resolved frame of a sampled address, or NULL. */
const struct trace_site *trace_file__frame(const struct trace_file *trace, uint64_t addr);

/* "NAME/TID" ("thread/TID" for a thread without a name) into buf. */
const char *trace_file__thread_label(const struct trace_file *trace, uint32_t tid, char *buf, size_t len);

/* The thread's name, or NULL when the trace has none for it. */
const char *trace_file__thread_name(const struct trace_file *trace, uint32_t tid);

#endif
