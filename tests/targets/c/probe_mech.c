/* probe_mech: tiny C target for uprobe mechanics, with exact call counts.
 *
 *   probe_mech [--calls N] [--depth D] [--seconds S] [--exit STATUS] [--crash]
 *              [--env NAME] [--fds] [--exec PROGRAM] [--ignore-sigint] [--close-stdout]
 *              [--kill] [--pause-ms MS] [--ground-truth]
 *
 * Per iteration i of N, main calls each of:
 *   multi_ret(i)   several `ret` instructions (early returns on different branches)
 *   tail_caller(i) ends in a tail call: `jmp tail_target`, no `ret` of its own
 *   plain(i)       a plain leaf function
 *   recurse(D)     recursion D levels deep: D + 1 entries per call
 *   many_args(...) eight arguments: the last two are passed on the stack
 *                  (a tracer must not shift this function's stack frame)
 * so tail_target is entered N times, only through the jump. Every entry has
 * exactly one exit (tail_caller's exit is tail_target's `ret`).
 * --seconds S repeats the N iterations until S seconds have passed (a
 * long-running process to attach to or interrupt); --exit STATUS ends with
 * that exit status (the tracer must pass it through); --crash dies of
 * SIGSEGV after the calls (the trace must still be complete). --env NAME
 * prints NAME's value and --fds the process's open file descriptors: what
 * a tracer must leave as it found them. --exec PROGRAM replaces the process
 * with PROGRAM after the calls (same pid: the tracer must keep what was
 * recorded before and stop there). --ignore-sigint ignores SIGINT (Ctrl-C
 * does not end it); --close-stdout closes its standard output first (what
 * it prints then goes nowhere: stderr says so); --kill dies of SIGKILL
 * after the calls. --pause-ms MS sleeps MS ms between the --seconds rounds
 * (a long run that stays light to trace).
 * Built with -O2 -fno-inline; see the Makefile for the flags that keep this
 * shape (checked there with objdump).
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOIPA __attribute__((noipa)) /* no inlining, cloning or IPA-driven rewrites */

volatile long sink; /* side effects the compiler must keep */

NOIPA long multi_ret(long x)
{
	if (x % 4 == 0) {
		sink = x;
		return 0;
	}
	if (x % 4 == 1) {
		sink = -x;
		return 1;
	}
	if (x % 4 == 2) {
		sink += x;
		return 2;
	}
	sink ^= x;
	return 3;
}

NOIPA long tail_target(long x)
{
	sink += x;
	return x * 3;
}

NOIPA long tail_caller(long x)
{
	sink = x;
	return tail_target(x + 1); /* sibling call: compiled to `jmp tail_target` */
}

NOIPA long plain(long x)
{
	sink = x;
	return x + 1;
}

NOIPA long recurse(long depth)
{
	if (depth <= 0)
		return 0;
	long r = recurse(depth - 1);
	sink = r; /* a volatile store after the call: no tail-recursion elimination */
	return r + 1;
}

NOIPA long many_args(long a, long b, long c, long d, long e, long f, long g, long h)
{
	sink = a + b + c + d + e + f;
	return g * 2 + h; /* g and h come from the caller's stack */
}

static long arg_value(int argc, char **argv, int *i)
{
	char *end;
	if (*i + 1 >= argc) {
		fprintf(stderr, "probe_mech: %s needs a value\n", argv[*i]);
		exit(2);
	}
	long v = strtol(argv[++*i], &end, 10);
	if (*end || v < 0) {
		fprintf(stderr, "probe_mech: bad value '%s'\n", argv[*i]);
		exit(2);
	}
	return v;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long run_calls(long calls, long depth)
{
	long total = 0;

	for (long i = 0; i < calls; i++) {
		total += multi_ret(i);
		total += tail_caller(i);
		total += plain(i);
		total += recurse(depth);
		total += many_args(i, 1, 2, 3, 4, 5, i, 7) - i * 2 - 7;
	}
	return total;
}

static void print_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *d;

	printf("fds:");
	while (dir && (d = readdir(dir)))
		if (d->d_name[0] != '.' && atoi(d->d_name) != dirfd(dir))
			printf(" %s", d->d_name);
	printf("\n");
	if (dir)
		closedir(dir);
}

int main(int argc, char **argv)
{
	long calls = 1000, depth = 3, seconds = 0, exit_status = 0, total = 0, pause_ms = 0;
	int ground_truth = 0, crash = 0, fds = 0, kill_self = 0, close_stdout = 0;
	const char *env_name = NULL, *exec_path = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--calls"))
			calls = arg_value(argc, argv, &i);
		else if (!strcmp(argv[i], "--depth"))
			depth = arg_value(argc, argv, &i);
		else if (!strcmp(argv[i], "--seconds"))
			seconds = arg_value(argc, argv, &i);
		else if (!strcmp(argv[i], "--exit"))
			exit_status = arg_value(argc, argv, &i);
		else if (!strcmp(argv[i], "--crash"))
			crash = 1;
		else if (!strcmp(argv[i], "--env") && i + 1 < argc)
			env_name = argv[++i];
		else if (!strcmp(argv[i], "--fds"))
			fds = 1;
		else if (!strcmp(argv[i], "--exec") && i + 1 < argc)
			exec_path = argv[++i];
		else if (!strcmp(argv[i], "--ignore-sigint"))
			signal(SIGINT, SIG_IGN);
		else if (!strcmp(argv[i], "--close-stdout"))
			close_stdout = 1;
		else if (!strcmp(argv[i], "--pause-ms"))
			pause_ms = arg_value(argc, argv, &i);
		else if (!strcmp(argv[i], "--kill"))
			kill_self = 1;
		else if (!strcmp(argv[i], "--ground-truth"))
			ground_truth = 1;
		else {
			fprintf(stderr, "usage: probe_mech [--calls N] [--depth D] [--seconds S] [--exit STATUS] [--crash]\n"
					"                  [--env NAME] [--fds] [--exec PROGRAM] [--ignore-sigint]\n"
					"                  [--close-stdout] [--kill] [--pause-ms MS] [--ground-truth]\n");
			return 2;
		}
	}
	if (ground_truth) {
		long n = calls, r = calls * (depth + 1);
		printf("{\"program\":\"probe_mech\",\"calls\":%ld,\"depth\":%ld,\"functions\":{"
		       "\"multi_ret\":{\"entries\":%ld,\"exits\":%ld},"
		       "\"tail_caller\":{\"entries\":%ld,\"exits\":%ld},"
		       "\"tail_target\":{\"entries\":%ld,\"exits\":%ld},"
		       "\"plain\":{\"entries\":%ld,\"exits\":%ld},"
		       "\"recurse\":{\"entries\":%ld,\"exits\":%ld,\"max_depth\":%ld},"
		       "\"many_args\":{\"entries\":%ld,\"exits\":%ld}},"
		       "\"exit_status\":0,\"stdout\":\"probe_mech: %ld calls done\\n\"}\n",
		       calls, depth, n, n, n, n, n, n, n, n, r, r, depth + 1, n, n, calls);
		return 0;
	}
	if (close_stdout && close(STDOUT_FILENO) == 0)
		fprintf(stderr, "probe_mech: stdout closed\n");
	if (seconds) {
		double end = now_seconds() + seconds;

		while (now_seconds() < end) {
			struct timespec pause = { pause_ms / 1000, (pause_ms % 1000) * 1000000 };

			total += run_calls(calls, depth);
			if (pause_ms)
				nanosleep(&pause, NULL);
		}
	} else {
		total = run_calls(calls, depth);
	}
	sink = total;
	if (env_name)
		printf("%s%s%s\n", env_name, getenv(env_name) ? "=" : " unset", getenv(env_name) ? getenv(env_name) : "");
	if (fds)
		print_fds();
	printf("probe_mech: %ld calls done\n", calls);
	if (exec_path) {
		fflush(stdout);
		execl(exec_path, exec_path, (char *)NULL);
		perror("probe_mech: exec");
		return 127;
	}
	if (crash) {
		fflush(stdout);
		raise(SIGSEGV);
	}
	if (kill_self) {
		fflush(stdout);
		raise(SIGKILL);
	}
	return (int)exit_status;
}
