/* gen-trace's command line (tests/tools/gen_trace.c). */
#ifndef ASYNCTRACE_TESTS_GEN_OPTIONS_H
#define ASYNCTRACE_TESTS_GEN_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

struct options {
	uint64_t events;     /* 0: use tasks */
	uint64_t tasks;
	uint32_t polls;      /* per task */
	uint32_t threads;
	uint32_t concurrent; /* tasks alive at once on a thread: a wave */
	uint64_t seed;
	const char *out;
	bool truth;
	bool shell;          /* each wave's task polls inside a worker loop's poll */
};

/* Fills o from the command line: 0, 1 after --help (printed), or -EINVAL
 * after one error line on stderr. --events N becomes the task count that
 * makes about N events. */
int gen_options__parse(struct options *o, int argc, char **argv);

#endif
