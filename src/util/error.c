#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>

/* The only mutable state here: whether --quiet was given. It belongs to the
 * parsed options, kept beside the printer so every command shares it. */
static int quiet_info;

void report_set_quiet(int quiet)
{
	quiet_info = quiet;
}

static void print_line(const char *prefix, const char *fmt, va_list ap)
{
	fputs("asynctrace: ", stderr);
	fputs(prefix, stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void report_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	print_line("", fmt, ap);
	va_end(ap);
}

void report_warning(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	print_line("warning: ", fmt, ap);
	va_end(ap);
}

void report_info(const char *fmt, ...)
{
	va_list ap;

	if (quiet_info)
		return;
	va_start(ap, fmt);
	print_line("", fmt, ap);
	va_end(ap);
}
