/* Output formats for other tools, behind one table (uftrace's dump ops). */
#ifndef ASYNCTRACE_EXPORT_EXPORT_H
#define ASYNCTRACE_EXPORT_EXPORT_H

#include <stdint.h>
#include <stdio.h>

#include "trace/reader.h"

struct export_filter;

struct export_format {
	const char *name;
	const char *description;
	/* Writes the trace to out: all of it, or with a filter (NULL: none)
	 * what it keeps. Returns 0 or a negative errno; -ESRCH before writing
	 * anything when the filter names a task the trace does not have. */
	int (*write)(const struct trace_file *trace, const struct export_filter *filter, FILE *out);
	/* A format that compresses: the same with a level from 0 (none) to
	 * max_level (write uses the format's default). NULL: none. */
	int (*write_at_level)(const struct trace_file *trace, const struct export_filter *filter, FILE *out,
			      int level);
	int max_level;
	/* A profile format: the same with the flame graph's root (enum
	 * profile_group, export --group-by). NULL: not a profile. */
	int (*write_grouped)(const struct trace_file *trace, const struct export_filter *filter, FILE *out,
			     int group_by);
	/* The same weighed by poll time instead of samples (export --weight
	 * poll-time): any trace. NULL: samples only. */
	int (*write_poll_time)(const struct trace_file *trace, const struct export_filter *filter, FILE *out,
			       int group_by);
	/* Output bytes per trace event, as measured (0: not estimated), and
	 * the size past which the format's viewers fail to open a file
	 * (0: none known). */
	uint64_t bytes_per_event;
	uint64_t viewer_limit_bytes;
};

/* NULL when there is no such format. */
const struct export_format *export_format__find(const char *name);
/* For --help: every format, NULL-terminated. */
const struct export_format *const *export_formats(void);

extern const struct export_format chrome_export_format;
extern const struct export_format perfetto_export_format;
extern const struct export_format folded_export_format;
extern const struct export_format pprof_export_format;
extern const struct export_format speedscope_export_format;
extern const struct export_format svg_export_format;

#endif
