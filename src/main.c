/* asynctrace: the subcommand table and dispatch, nothing else. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "util/error.h"

#define ASYNCTRACE_VERSION "0.1.0"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "symbols", cmd_symbols, "list the poll functions of a binary, with context classes" },
	{ "record", cmd_record, "trace the polls of a running process or a command" },
	{ "profile", cmd_profile, "record with on-CPU samples: where each task spends CPU time" },
	{ "report", cmd_report, "summarise a trace: polls, durations, threads, tasks" },
	{ "tree", cmd_tree, "each task's async call tree: who polled whom, waits, cancellations" },
	{ "export", cmd_export, "convert a trace for other tools (Chrome/Perfetto timeline)" },
	{ "import", cmd_import, "read other tools' recordings: zCore logs, uftrace data, CAT JSON" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: asynctrace <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-8s  %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n'asynctrace <command> --help' shows a command's options.\n");
}

/* A full disk or closed pipe must not look like success (perf does the
 * same). A command that failed has said why in its own line already: one
 * error, one line. */
static int finish_stdout(int status)
{
	if ((fflush(stdout) != 0 || ferror(stdout)) && status == 0) {
		report_error("cannot write standard output: %s", strerror(errno ? errno : EIO));
		return 1;
	}
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return finish_stdout(0);
	}
	if (!strcmp(argv[1], "--version")) {
		printf("asynctrace %s\n", ASYNCTRACE_VERSION);
		return finish_stdout(0);
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return finish_stdout(commands[i].run(argc - 1, argv + 1));
	report_error("'%s' is not a command; see 'asynctrace --help'", argv[1]);
	return EXIT_USAGE;
}
