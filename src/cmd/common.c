/* Small pieces every subcommand that reads traces shares. */
#include "cmd/cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "trace/reader.h"
#include "util/error.h"

int open_trace_for(const char *command, const char *path, struct trace_file **trace)
{
	char why[512];
	int err = trace_file__open(trace, path, why, sizeof(why));

	if (err)
		report_error("%s: %s", command, why);
	return err;
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
