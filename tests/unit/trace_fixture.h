/* Test-time trace files: synthetic events written with the real writer
 * and opened with the real reader, so model tests see exactly what a
 * recorded trace would give them (the encoding included). */
#ifndef ASYNCTRACE_TESTS_TRACE_FIXTURE_H
#define ASYNCTRACE_TESTS_TRACE_FIXTURE_H

#include <stddef.h>

#include <stdint.h>

#include "trace/reader.h"

/* A malloc'ed path of a new empty file under /tmp. */
char *trace_fixture__temp_path(void);
/* Writes meta, the function table and the events (each to the stream of
 * its tid) to a temporary file and opens it; the file is already
 * unlinked. NULL (a note printed) when writing or reading failed. */
struct trace_file *trace_fixture__open(const struct trace_function *fns, size_t fn_count,
				       const struct trace_event *events, size_t count);

/* The same with on-CPU samples: one SAMPLES chunk per `per_chunk` samples
 * (at `hz`), and `frames`, the resolved addresses, as the FRAMES chunk.
 * corrupt_chunk > 0: that SAMPLES chunk (1-based) gets one byte of its
 * samples flipped after its checksum was computed. */
struct trace_file *trace_fixture__open_profiled(const struct trace_function *fns, size_t fn_count,
						const struct trace_event *events, size_t count,
						const struct trace_sample *samples, size_t sample_count,
						const uint64_t *sample_frames, size_t per_chunk, unsigned hz,
						const struct trace_site *frames, size_t frame_count, int corrupt_chunk);

#endif
