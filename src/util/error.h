/* One way to tell the user something went wrong: a single line on stderr,
 * prefixed with the program name. Library code returns negative errno and
 * leaves the wording to its caller at the command boundary. */
#ifndef ASYNCTRACE_UTIL_ERROR_H
#define ASYNCTRACE_UTIL_ERROR_H

#if defined(__GNUC__)
#define AT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AT_PRINTF(a, b)
#endif

/* "asynctrace: <message>\n" on stderr. */
void report_error(const char *fmt, ...) AT_PRINTF(1, 2);
/* "asynctrace: warning: <message>\n" on stderr. */
void report_warning(const char *fmt, ...) AT_PRINTF(1, 2);
/* Informational line on stderr, shown unless quiet. */
void report_info(const char *fmt, ...) AT_PRINTF(1, 2);
/* Silence report_info (e.g. --quiet). */
void report_set_quiet(int quiet);

#endif
