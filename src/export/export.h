/* Output formats for other tools, behind one table (uftrace's dump ops). */
#ifndef ASYNCTRACE_EXPORT_EXPORT_H
#define ASYNCTRACE_EXPORT_EXPORT_H

#include <stdio.h>

#include "trace/reader.h"

struct export_format {
	const char *name;
	const char *description;
	/* Writes the whole trace to out. Returns 0 or a negative errno. */
	int (*write)(const struct trace_file *trace, FILE *out);
};

/* NULL when there is no such format. */
const struct export_format *export_format__find(const char *name);
/* For --help: every format, NULL-terminated. */
const struct export_format *const *export_formats(void);

extern const struct export_format chrome_export_format;
extern const struct export_format perfetto_export_format;

#endif
