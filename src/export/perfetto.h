/* The Perfetto export with its one knob, for tests and measurements: the
 * `perfetto` format is perfetto_write_trace at PERFETTO_DEFLATE_LEVEL. */
#ifndef ASYNCTRACE_EXPORT_PERFETTO_H
#define ASYNCTRACE_EXPORT_PERFETTO_H

#include <stdio.h>

#include "trace/reader.h"

struct export_filter;

/* libdeflate's level 1..12, or 0 for plain (uncompressed) packets. Level
 * 1: on tokio_ct's 8.75 M polls 14.6 bytes per poll, the export 2.8 s
 * (zlib's level 1: 13.4 bytes, 3.4 s; libdeflate's 3: 13.0 bytes, 3.3-3.9
 * s); the budget is 40 (docs/perfetto-export.md). */
#define PERFETTO_DEFLATE_LEVEL 1
#define PERFETTO_MAX_DEFLATE_LEVEL 12

/* filter: NULL, or what to keep (export/filter.h). Returns 0 or a negative
 * errno: -ESRCH, nothing written, when the filter names a task the trace
 * does not have. */
int perfetto_write_trace(const struct trace_file *trace, const struct export_filter *filter, FILE *out, int level);

#endif
