/* Numbers for people. */
#ifndef ASYNCTRACE_UTIL_FORMAT_H
#define ASYNCTRACE_UTIL_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/* "812ns", "3.25us", "14.0ms", "1.50s": three significant digits, in buf. */
const char *format_duration(uint64_t ns, char *buf, size_t len);

#endif
