/* asynctrace record: probe every poll function of a process's main binary
 * and stream the events into a trace file. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "elf/pollfn.h"
#include "probe/plan.h"
#include "probe/recorder.h"
#include "probe/uprobe.h"
#include "trace/writer.h"
#include "util/error.h"
#include "util/spawn.h"

#define DEFAULT_OUTPUT "asynctrace.trace"
#define DEFAULT_BUFFER_MB 16
#define POLL_INTERVAL_MS 100

struct record_options {
	const char *output;
	char *match;          /* the --match patterns joined into one alternation */
	char *functions;      /* the --function patterns, likewise */
	int no_tasks;         /* --polls-only: no wake/spawn/drop hooks */
	double duration;      /* seconds; 0 = until the target exits or a signal */
	pid_t pid;            /* -p */
	char **command;       /* -- CMD ARGS... */
	size_t buffer_bytes;
	int verbose;
};

/* Set from the signal handler; the loop polls it. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
	stop_signal = sig;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: asynctrace record [options] (-p PID | [--] CMD [ARGS...])\n"
		"  -o, --output FILE      trace file to write (default " DEFAULT_OUTPUT ")\n"
		"  -m, --match REGEX      probe only poll functions whose name matches (repeatable)\n"
		"  -f, --function REGEX   also probe any other function whose name matches (repeatable)\n"
		"      --polls-only       probe poll functions only: no spawn, wake, task and drop hooks\n"
		"                         (cheaper; `report --tasks` and `tree` then know less)\n"
		"  -d, --duration SEC     stop recording after SEC seconds\n"
		"  -p, --pid PID          trace a running process\n"
		"  -b, --buffer-size MB   BPF ring buffer size (default %d)\n"
		"  -v, --verbose          list every probe and libbpf's diagnostics\n"
		"  -q, --quiet            no summary on stderr\n",
		DEFAULT_BUFFER_MB);
}

static size_t round_buffer_size(double megabytes)
{
	size_t bytes = 4096;

	while (bytes < megabytes * 1024 * 1024 && bytes < (1UL << 30))
		bytes <<= 1;
	return bytes;
}

static int parse_options(struct record_options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "match", required_argument, NULL, 'm' },
		{ "function", required_argument, NULL, 'f' },
		{ "polls-only", no_argument, NULL, 'P' },
		{ "duration", required_argument, NULL, 'd' },
		{ "pid", required_argument, NULL, 'p' },
		{ "buffer-size", required_argument, NULL, 'b' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char *end;
	double mb;
	long pid;
	int c;

	o->output = DEFAULT_OUTPUT;
	o->buffer_bytes = round_buffer_size(DEFAULT_BUFFER_MB);
	optind = 1;
	/* '+': the first non-option starts the command, whose own options stay its own. */
	while ((c = getopt_long(argc, argv, "+o:m:f:d:p:b:vqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': o->output = optarg; break;
		case 'm':
			if (pattern_append(&o->match, optarg))
				return -ENOMEM;
			break;
		case 'f':
			if (pattern_append(&o->functions, optarg))
				return -ENOMEM;
			break;
		case 'd':
			o->duration = strtod(optarg, &end);
			if (*end || !(o->duration > 0) || !isfinite(o->duration)) {
				report_error("record: --duration wants a positive number of seconds, not '%s'", optarg);
				return -EINVAL;
			}
			break;
		case 'p':
			errno = 0;
			pid = strtol(optarg, &end, 10);
			if (*end || errno || pid <= 0 || pid > INT_MAX) {
				report_error("record: -p wants a process id, not '%s'", optarg);
				return -EINVAL;
			}
			o->pid = (pid_t)pid;
			break;
		case 'b':
			mb = strtod(optarg, &end);
			if (*end || !(mb > 0) || mb > 1024) {
				report_error("record: --buffer-size wants megabytes in (0, 1024], not '%s'", optarg);
				return -EINVAL;
			}
			o->buffer_bytes = round_buffer_size(mb);
			break;
		case 'P': o->no_tasks = 1; break;
		case 'v': o->verbose = 1; break;
		case 'q': report_set_quiet(1); break;
		case 'h': usage(stdout); return 1;
		default: usage(stderr); return -EINVAL;
		}
	}
	if (optind < argc)
		o->command = &argv[optind];
	if (!o->command == !o->pid) {
		report_error("record: give either -p PID or a command to run (see --help)");
		return -EINVAL;
	}
	return 0;
}

static char *process_executable(pid_t pid)
{
	char link[64], target[PATH_MAX];
	ssize_t len;

	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	len = readlink(link, target, sizeof(target) - 1);
	if (len < 0)
		return NULL;
	target[len] = '\0';
	return strdup(target);
}

/* The binary to probe: the command's resolved path, or, for a running
 * process, /proc/PID/exe, which reaches its executable even when the file
 * was deleted or replaced, or lives in another mount namespace. *shown is
 * the name to record and print. */
static int resolve_target(const struct record_options *o, char **path, char **shown)
{
	if (o->command) {
		*path = spawn_resolve_command(o->command[0]);
		if (!*path) {
			report_error("record: cannot run %s: %s", o->command[0], strerror(errno));
			return -errno;
		}
		*shown = strdup(*path);
		return *shown ? 0 : -ENOMEM;
	}
	if (kill(o->pid, 0) < 0 && errno == ESRCH) {
		report_error("record: no such process: %d", (int)o->pid);
		return -ESRCH;
	}
	*shown = process_executable(o->pid);
	if (!*shown) {
		int err = errno;

		report_error("record: cannot read the executable of process %d: %s%s", (int)o->pid,
			     strerror(err), err == EACCES ? " (run as root)" : "");
		return -err;
	}
	return asprintf(path, "/proc/%d/exe", (int)o->pid) < 0 ? -ENOMEM : 0;
}

static int compile_pattern(const char *option, const char *pattern, regex_t *re)
{
	if (regcomp(re, pattern, REG_EXTENDED | REG_NOSUB) == 0)
		return 0;
	report_error("record: invalid %s pattern: %s", option, pattern);
	return -EINVAL;
}

static int load_functions(const char *path, const struct record_options *o,
			  struct poll_fn_list *fns)
{
	regex_t match, functions;
	int err = o->match ? compile_pattern("--match", o->match, &match) : 0;

	if (!err && o->functions && (err = compile_pattern("--function", o->functions, &functions))) {
		if (o->match)
			regfree(&match);
	}
	if (err)
		return err;
	err = poll_fn_list__load(fns, path, o->match ? &match : NULL);
	if (!err && o->functions)
		err = poll_fn_list__add_functions(fns, path, &functions);
	/* Task lifecycles need the runtime's hooks and the futures' drop glue. */
	if (!err && fns->count && !o->no_tasks)
		err = poll_fn_list__add_hooks(fns, path);
	if (o->match)
		regfree(&match);
	if (o->functions)
		regfree(&functions);
	if (err == -ENOEXEC)
		report_error("record: %s: not an ELF file", path);
	else if (err)
		report_error("record: cannot read %s: %s", path, strerror(-err));
	else if (!fns->count)
		report_error("record: %s: no poll functions %s", path,
			     o->match || o->functions ? "match the patterns" : "found (is it a Rust async program?)");
	else
		return 0;
	return err ? err : -ENOENT;
}

static int plan_probes(const char *path, const struct poll_fn_list *fns, struct probe_plan *plan,
		       int verbose)
{
	int err = probe_plan__build(plan, path, fns);

	if (err == -ENOTSUP) {
		report_error("record: cannot probe %s binaries on this machine", fns->machine == 0 ? "these" : "non-native");
		return err;
	}
	if (err) {
		report_error("record: cannot decode the functions of %s: %s", path, strerror(-err));
		return err;
	}
	if (plan->functions_without_exits)
		report_info("record: %zu poll functions have no exit instruction; their polls end when the stack shows them gone",
			    plan->functions_without_exits);
	if (verbose)
		for (size_t i = 0; i < plan->count; i++)
			report_info("probe %s at file offset 0x%llx: %s",
				    plan->sites[i].kind == PROBE_KIND_ENTRY ? "entry" : "exit ",
				    (unsigned long long)plan->sites[i].file_offset,
				    fns->fns[plan->sites[i].func_id].demangled);
	return 0;
}

static int open_session(struct recorder *rec, const struct record_options *o,
			const struct poll_fn_list *fns)
{
	int err = uprobe_session__open(&rec->session, o->buffer_bytes, o->verbose, fns,
				       recorder__on_event, rec);

	if (err == -EPERM || err == -EACCES)
		report_error("record: cannot load BPF programs: %s (run as root or grant CAP_BPF+CAP_PERFMON)",
			     strerror(-err));
	else if (err)
		report_error("record: cannot load BPF programs: %s", strerror(-err));
	return err;
}

static int attach_probes(struct recorder *rec, const char *path, pid_t pid,
			 const struct probe_plan *plan, const struct poll_fn_list *fns)
{
	size_t failed = 0;
	int err;

	uprobe_session__set_target(rec->session, pid);
	err = uprobe_session__attach(rec->session, path, pid, plan, &failed);
	if (!err)
		return 0;
	if (err == -ESRCH)
		report_error("record: process %d exited before the probes were attached", (int)pid);
	else if (uprobe_session__uses_multi_link(rec->session))
		report_error("record: cannot attach %zu uprobes to %s: %s%s", plan->count, path, strerror(-err),
			     err == -EPERM || err == -EACCES ? " (run as root or grant CAP_BPF+CAP_PERFMON)" : "");
	else
		report_error("record: cannot attach a uprobe to %s at file offset 0x%llx (%s): %s%s", path,
			     (unsigned long long)plan->sites[failed].file_offset,
			     fns->fns[plan->sites[failed].func_id].demangled, strerror(-err),
			     err == -EPERM || err == -EACCES ? " (run as root or grant CAP_BPF+CAP_PERFMON)" : "");
	return err;
}

static void install_signal_handlers(void)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Has the target exited? For our own child, reap it and keep its status. */
static int target_exited(struct recorder *rec)
{
	struct pollfd pfd = { .fd = rec->pidfd, .events = POLLIN };

	if (rec->child_pid > 0) {
		pid_t got = waitpid(rec->child_pid, &rec->wait_status, WNOHANG);

		if (got == rec->child_pid) {
			rec->child_reaped = 1;
			return 1;
		}
		return got < 0 && errno == ECHILD;
	}
	if (rec->pidfd >= 0)
		return poll(&pfd, 1, 0) == 1;
	return kill(rec->target_pid, 0) < 0 && errno == ESRCH;
}

static enum trace_end_reason record_loop(struct recorder *rec, double duration)
{
	double deadline = duration > 0 ? now_seconds() + duration : 0;

	for (;;) {
		int rc = uprobe_session__poll(rec->session, POLL_INTERVAL_MS);

		if (rc < 0 && rc != -EINTR) {
			report_error("record: reading the ring buffer failed: %s", strerror(-rc));
			rec->failed = 1;
			return TRACE_END_SIGNAL;
		}
		if (rec->write_error)
			return TRACE_END_SIGNAL;
		if (stop_signal)
			return TRACE_END_SIGNAL;
		if (target_exited(rec))
			return TRACE_END_TARGET_EXITED;
		if (deadline && now_seconds() >= deadline)
			return TRACE_END_DURATION;
	}
}

/* The command's fate is its own: wait for it, and return its status the
 * way a shell would. A recording ended by --duration or SIGTERM ends the
 * command with SIGTERM, as `perf record` does. */
static int finish_child(struct recorder *rec, enum trace_end_reason reason)
{
	int status;

	if (rec->child_pid <= 0)
		return 0;
	if (!rec->child_reaped) {
		if (reason == TRACE_END_DURATION || (reason == TRACE_END_SIGNAL && stop_signal != SIGINT))
			kill(rec->child_pid, SIGTERM);
		while (waitpid(rec->child_pid, &rec->wait_status, 0) < 0 && errno == EINTR)
			;
		rec->child_reaped = 1;
	}
	status = rec->wait_status;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status)) {
		report_info("record: %s was killed by signal %d (%s)", rec->command_name,
			    WTERMSIG(status), strsignal(WTERMSIG(status)));
		return 128 + WTERMSIG(status);
	}
	return 1;
}

static int start_target(struct recorder *rec, const struct record_options *o, const char *path,
			struct held_child *child)
{
	int err;

	if (!o->command) {
		rec->target_pid = o->pid;
		rec->pidfd = (int)syscall(SYS_pidfd_open, o->pid, 0);
		return 0;
	}
	err = held_child__spawn(child, path, o->command);
	if (err) {
		report_error("record: cannot start %s: %s", o->command[0], strerror(-err));
		return err;
	}
	rec->target_pid = rec->child_pid = child->pid;
	return 0;
}

static int run_record(const struct record_options *o)
{
	struct poll_fn_list fns = { 0 };
	struct probe_plan plan = { 0 };
	struct held_child child = { .release_fd = -1, .error_fd = -1 };
	struct recorder rec = { .pidfd = -1 };
	enum trace_end_reason reason;
	char *path = NULL, *shown = NULL;
	double started;
	int err, status = 1;

	err = resolve_target(o, &path, &shown);
	if (!err)
		err = load_functions(path, o, &fns);
	if (!err)
		err = plan_probes(path, &fns, &plan, o->verbose);
	if (!err)
		err = open_session(&rec, o, &fns);
	if (!err)
		err = recorder__open_output(&rec, o->output);
	if (!err)
		err = start_target(&rec, o, path, &child);
	if (err)
		goto out;
	rec.command_name = o->command ? o->command[0] : shown;
	started = now_seconds();
	err = attach_probes(&rec, path, rec.target_pid, &plan, &fns);
	if (!err)
		err = recorder__write_header(&rec, path, shown, o->command, &fns, &plan);
	if (err) {
		held_child__abort(&child);
		rec.child_pid = 0;
		goto out;
	}
	report_info("record: %zu probes on %zu function%s attached in %.0f ms",
		    uprobe_session__attached(rec.session), fns.count, fns.count == 1 ? "" : "s", (now_seconds() - started) * 1e3);
	install_signal_handlers();
	if (o->command) {
		err = held_child__release(&child);
		if (err) {
			report_error("record: cannot run %s: %s", o->command[0], strerror(-err));
			rec.exec_failed = 1;
		}
	}
	if (!rec.exec_failed)
		recorder__locate_target(&rec);
	reason = rec.exec_failed ? TRACE_END_TARGET_EXITED : record_loop(&rec, o->duration);
	err = recorder__finish(&rec, reason);
	status = finish_child(&rec, reason);
	if (rec.exec_failed)
		status = 127;
	else if (err || rec.failed)
		status = status ? status : 1;
	else
		recorder__print_summary(&rec, o->output, now_seconds() - started);
out:
	recorder__close(&rec);
	probe_plan__free(&plan);
	poll_fn_list__free(&fns);
	free(path);
	free(shown);
	return status;
}

int cmd_record(int argc, char **argv)
{
	struct record_options options = { 0 };
	int rc = parse_options(&options, argc, argv);
	int status;

	if (!rc)
		status = run_record(&options);
	else
		status = rc > 0 ? 0 : EXIT_USAGE;
	free(options.match);
	free(options.functions);
	return status;
}
