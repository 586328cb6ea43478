/* Subcommands: each takes its own argv (argv[0] = subcommand name) and
 * returns the process exit status. */
#ifndef ASYNCTRACE_CMD_CMD_H
#define ASYNCTRACE_CMD_CMD_H

#include <stddef.h>

int cmd_symbols(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_tree(int argc, char **argv);
int cmd_import(int argc, char **argv);

struct trace_file;
/* Opens a trace, or reports why not as "<command>: <reason>". */
int open_trace_for(const char *command, const char *path, struct trace_file **trace);

/* Appends name to the list of names in buf (len bytes so far, NUL-ended,
 * buf[0] = 0 at first), ", " between, while whole names fit in size
 * bytes; the first that does not ends the list with "...". Returns the
 * new length (size once ended). */
size_t join_name(char *buf, size_t size, size_t len, const char *name);
/* Reports why reading an open trace's events failed (a negative errno
 * from the model builders) as "<command>: <path>: <reason>". */
/* A bad option met by getopt_long (run with opterr = 0 and a leading ':'
 * in the option string): one line, "CMD: unknown option '--x'" or "CMD:
 * option '--x' needs an argument", pointing at CMD --help. */
void report_bad_option(const char *command, int c, char *const argv[]);
/* "record: 1 inlined async body whose polls are not counted (no state
 * dispatch found): a::b::{{closure}}", when there are any. */
struct uncounted_bodies;
void say_uncounted(const char *command, const struct uncounted_bodies *u);
void report_trace_error(const char *command, const char *path, int err);

/* Repeated --match-style options: appends "(pattern)" to the alternation
 * in *patterns (malloc'ed, NULL at first). Returns 0 or -ENOMEM. */
int pattern_append(char **patterns, const char *pattern);

/* Exit status for a command line the command cannot understand. */
#define EXIT_USAGE 2

#endif
