/* Small pieces every subcommand that reads traces shares. */
#include "cmd/cmd.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elf/pollfn.h"
#include "trace/reader.h"
#include "util/error.h"

int open_trace_for(const char *command, const char *path, struct trace_file **trace)
{
	char why[512];
	int err = trace_file__open(trace, path, why, sizeof(why));

	if (err) {
		report_error("%s: %s", command, why);
		return err;
	}
	if ((*trace)->cut_short || (*trace)->chunks_skipped)
		report_warning("%s: trace %s: %llu events in %llu chunks recovered, %llu bytes discarded "
			       "(%llu chunks failed their checksum)", command,
			       (*trace)->cut_short ? "ended abruptly" : "damaged",
			       (unsigned long long)(*trace)->event_count, (unsigned long long)(*trace)->chunks_read,
			       (unsigned long long)(*trace)->bytes_discarded,
			       (unsigned long long)(*trace)->chunks_skipped);
	return 0;
}

size_t join_name(char *buf, size_t size, size_t len, const char *name)
{
	size_t need = strlen(name) + (len ? 2 : 0);

	if (len >= size)
		return len; /* ended already */
	if (len + need + sizeof(", ...") > size) {
		snprintf(buf + len, size - len, "%s...", len ? ", " : "");
		return size;
	}
	return len + (size_t)snprintf(buf + len, size - len, "%s%s", len ? ", " : "", name);
}

/* The names, joined by ", " into buf (whole names, then "..."). */
static const char *joined(char *buf, size_t size, char *const *names, size_t count)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < count; i++)
		len = join_name(buf, size, len, names[i]);
	return buf;
}

void say_uncounted(const char *command, const struct uncounted_bodies *u)
{
	char names[512];

	if (u->count)
		report_warning("%s: %zu inlined async bod%s whose polls are not counted (no state dispatch found "
			       "in the release code): %s", command, u->count, u->count == 1 ? "y" : "ies",
			       joined(names, sizeof(names), u->names, u->count));
	if (u->unprobed_count)
		report_info("%s: %zu async bod%s rustc inlined into other functions not traced (--inlined probes "
			    "them with uprobes: root, ~5 us a poll each): %s", command, u->unprobed_count,
			    u->unprobed_count == 1 ? "y" : "ies",
			    joined(names, sizeof(names), u->unprobed, u->unprobed_count));
}

void report_bad_option(const char *command, int c, char *const argv[])
{
	report_error("%s: %s '%s' (see 'asynctrace %s --help')", command,
		     c == ':' ? "missing the argument of option" : "unknown option", argv[optind - 1], command);
}

void report_trace_error(const char *command, const char *path, int err)
{
	if (err == -EBADMSG)
		report_error("%s: %s: corrupt trace file (events do not decode)", command, path);
	else if (err == -ENOMEM)
		report_error("%s: %s: out of memory", command, path);
	else
		report_error("%s: %s: %s", command, path, strerror(-err));
}

int pattern_append(char **patterns, const char *pattern)
{
	char *joined;

	if (asprintf(&joined, "%s%s(%s)", *patterns ? *patterns : "", *patterns ? "|" : "",
		     pattern) < 0)
		return -ENOMEM;
	free(*patterns);
	*patterns = joined;
	return 0;
}
