/* Test-time trace files: synthetic events written with the real writer
 * and opened with the real reader, so model tests see exactly what a
 * recorded trace would give them (the encoding included). */
#ifndef ASYNCTRACE_TESTS_TRACE_FIXTURE_H
#define ASYNCTRACE_TESTS_TRACE_FIXTURE_H

#include <stddef.h>

#include "trace/reader.h"

/* A malloc'ed path of a new empty file under /tmp. */
char *trace_fixture__temp_path(void);
/* Writes meta, the function table and the events (each to the stream of
 * its tid) to a temporary file and opens it; the file is already
 * unlinked. NULL (a note printed) when writing or reading failed. */
struct trace_file *trace_fixture__open(const struct trace_function *fns, size_t fn_count,
				       const struct trace_event *events, size_t count);

#endif
