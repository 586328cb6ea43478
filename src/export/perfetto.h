/* The Perfetto export with its one knob, for tests and measurements: the
 * `perfetto` format is perfetto_write_trace at PERFETTO_DEFLATE_LEVEL. */
#ifndef ASYNCTRACE_EXPORT_PERFETTO_H
#define ASYNCTRACE_EXPORT_PERFETTO_H

#include <stdio.h>

#include "trace/reader.h"

struct export_filter;

/* zlib's level 1..9, or 0 for plain (uncompressed) packets. Level 1:
 * on tokio_ct's 8.75 M polls 16 bytes per poll in 25 s, where level 6
 * gives 12 bytes in 55 s; the budget is 40. */
#define PERFETTO_DEFLATE_LEVEL 1

/* filter: NULL, or what to keep (export/filter.h). Returns 0 or a negative
 * errno: -ESRCH, nothing written, when the filter names a task the trace
 * does not have. */
int perfetto_write_trace(const struct trace_file *trace, const struct export_filter *filter, FILE *out, int level);

#endif
