/* asynctrace record: trace every poll function of a command (in process by
 * default) or of a running process (uprobes), streaming the events into a
 * trace file. */
#include "cmd/record.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "elf/pollfn_cache.h"
#include "elf/unwind.h"
#include "util/error.h"

#define DEFAULT_OUTPUT "asynctrace.trace"
#define POLL_INTERVAL_MS 100
/* Short: a SIGCHLD that lands while the loop drains is only seen at the
 * next wake-up. */
#define AGENT_POLL_INTERVAL_MS 2
#define DRAIN_AT_END_ENV "ASYNCTRACE_DRAIN_AT_END"

/* Set from the signal handler; the loop polls them. */
static volatile sig_atomic_t stop_signal, stop_signals;

static void on_stop_signal(int sig)
{
	stop_signal = sig;
	stop_signals++;
}

/* profile: record with -F 99 unless given, said first. */
static void usage(FILE *out, bool profile)
{
	if (profile)
		fprintf(out, "usage: asynctrace profile [-F HZ] [--call-graph fp|dwarf|auto] [record's options]\n"
			     "                         (-p PID | [--] CMD [ARGS...])\n"
			     "  record with on-CPU samples (99 Hz unless -F), and context switches where allowed\n\n");
	fprintf(out,
		"usage: asynctrace record [options] (-p PID | [--] CMD [ARGS...])\n"
		"  -o, --output FILE      trace file to write (default " DEFAULT_OUTPUT ")\n"
		"  -B, --backend KIND     inproc: patch the command's functions in its own process (no root\n"
		"                         needed, ~25 ns per poll); bpf: eBPF uprobes (root); auto (default):\n"
		"                         inproc for a command, bpf for -p\n"
		"  -m, --match REGEX      probe only poll functions whose name matches (repeatable)\n"
		"  -f, --function REGEX   also probe any other function whose name matches (repeatable)\n"
		"      --polls-only       probe poll functions only: no spawn, wake, task and drop hooks\n"
		"                         (cheaper; `report --tasks` and `tree` then know less)\n"
		"      --inlined          release builds: probe every async body rustc inlined into another\n"
		"                         function; by default in process, only those whose every site the\n"
		"                         agent patches (~0.2 us a poll), the rest are named; a site left to\n"
		"                         a uprobe costs ~5 us a poll, and the polls around it as much (root)\n"
		"      --no-inlined       leave the inlined bodies out (every backend)\n"
		"  -d, --duration SEC     stop recording after SEC seconds\n"
		"  -F, --freq HZ          also sample on-CPU user stacks HZ times a second per CPU (1..10000;\n"
		"                         `asynctrace profile`: 99 unless given)\n"
		"      --call-graph KIND  how samples' stacks are unwound: fp (frame pointers), dwarf (a\n"
		"                         8 KiB stack copy unwound with the binaries' CFI) or auto (default:\n"
		"                         fp when the binary keeps frame pointers)\n"
		"  -p, --pid PID          trace a running process\n"
		"  -b, --buffer-size MB   bpf: ring buffer size (default 16); inproc: buffer pool (default 64)\n"
		"      --no-cache         analyse the binary again (its analysis is kept in ~/.cache/asynctrace)\n"
		"  -v, --verbose          list every probe, every function not patched and why, and libbpf's\n"
		"                         diagnostics\n"
		"  -q, --quiet            no summary on stderr\n");
}

static int parse_backend(const char *text, enum record_backend *backend)
{
	if (!strcmp(text, "auto"))
		*backend = BACKEND_AUTO;
	else if (!strcmp(text, "inproc"))
		*backend = BACKEND_INPROC;
	else if (!strcmp(text, "bpf"))
		*backend = BACKEND_BPF;
	else {
		report_error("record: --backend wants inproc, bpf or auto, not '%s'", text);
		return -EINVAL;
	}
	return 0;
}

static int parse_call_graph(const char *text, int *mode)
{
	if (!strcmp(text, "auto"))
		*mode = CALL_GRAPH_AUTO;
	else if (!strcmp(text, "fp"))
		*mode = CALL_GRAPH_FP;
	else if (!strcmp(text, "dwarf"))
		*mode = CALL_GRAPH_DWARF;
	else {
		report_error("record: --call-graph wants fp, dwarf or auto, not '%s'", text);
		return -EINVAL;
	}
	return 0;
}

static int parse_number_option(struct record_options *o, int c, const char *arg)
{
	char *end;
	long pid;

	switch (c) {
	case 'd':
		o->duration = strtod(arg, &end);
		if (*end || !(o->duration > 0) || !isfinite(o->duration)) {
			report_error("record: --duration wants a positive number of seconds, not '%s'", arg);
			return -EINVAL;
		}
		return 0;
	case 'F':
		errno = 0;
		pid = strtol(arg, &end, 10);
		if (*end || errno || pid < 1 || pid > 10000) {
			report_error("record: -F wants samples per second in 1..10000, not '%s'", arg);
			return -EINVAL;
		}
		o->sample_hz = (unsigned)pid;
		return 0;
	case 'p':
		errno = 0;
		pid = strtol(arg, &end, 10);
		if (*end || errno || pid <= 0 || pid > INT_MAX) {
			report_error("record: -p wants a process id, not '%s'", arg);
			return -EINVAL;
		}
		o->pid = (pid_t)pid;
		return 0;
	default: /* 'b' */
		o->buffer_mb = strtod(arg, &end);
		if (*end || !(o->buffer_mb > 0) || o->buffer_mb > 1024) {
			report_error("record: --buffer-size wants megabytes in (0, 1024], not '%s'", arg);
			return -EINVAL;
		}
		return 0;
	}
}

static int parse_options(struct record_options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "backend", required_argument, NULL, 'B' },
		{ "match", required_argument, NULL, 'm' },
		{ "function", required_argument, NULL, 'f' },
		{ "polls-only", no_argument, NULL, 'P' },
		{ "inlined", no_argument, NULL, 'J' },
		{ "no-inlined", no_argument, NULL, 'I' },
		{ "duration", required_argument, NULL, 'd' },
		{ "freq", required_argument, NULL, 'F' },
		{ "call-graph", required_argument, NULL, 'G' },
		{ "pid", required_argument, NULL, 'p' },
		{ "buffer-size", required_argument, NULL, 'b' },
		{ "no-cache", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c, err;

	o->output = DEFAULT_OUTPUT;
	optind = 1;
	opterr = 0;
	/* '+': the first non-option starts the command, whose own options stay its own. */
	while ((c = getopt_long(argc, argv, "+o:B:m:f:d:F:p:b:vqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': o->output = optarg; break;
		case 'B':
			if ((err = parse_backend(optarg, &o->backend)))
				return err;
			break;
		case 'm':
		case 'f':
			if (pattern_append(c == 'm' ? &o->match : &o->functions, optarg))
				return -ENOMEM;
			break;
		case 'd':
		case 'F':
		case 'p':
		case 'b':
			if ((err = parse_number_option(o, c, optarg)))
				return err;
			break;
		case 'P': o->no_tasks = 1; break;
		case 'I': o->inlined = -1; break;
		case 'J': o->inlined = 1; break;
		case 'G':
			if ((err = parse_call_graph(optarg, &o->call_graph)))
				return err;
			break;
		case 'C': o->no_cache = 1; break;
		case 'v': o->verbose = 1; break;
		case 'q': report_set_quiet(1); break;
		case 'h': usage(stdout, o->profile); return 1;
		default:
			report_error("record: %s option '%s' (see --help)",
				     optopt && strchr("oBmfdFpbG", optopt) ? "missing the argument of" : "unknown",
				     argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc)
		o->command = &argv[optind];
	/* Not an option: only tests of exact loss want it (docs/cli.md). */
	o->drain_at_end = getenv(DRAIN_AT_END_ENV) && *getenv(DRAIN_AT_END_ENV);
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

/* -p of a process we may not trace: whose it is, and what would do. */
static void say_not_permitted(pid_t pid)
{
	char path[32];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (stat(path, &st) == 0 && st.st_uid != getuid())
		report_error("record: process %d belongs to another user (uid %u): tracing it needs root, or "
			     "CAP_SYS_PTRACE, CAP_BPF and CAP_PERFMON (sudo setcap "
			     "cap_sys_ptrace,cap_bpf,cap_perfmon+ep asynctrace)", (int)pid, (unsigned)st.st_uid);
	else
		report_error("record: cannot read the executable of process %d: permission denied (tracing a "
			     "running process needs CAP_SYS_PTRACE for it, and CAP_BPF and CAP_PERFMON)", (int)pid);
}

/* The binary to probe: the command's resolved path, or, for a running
 * process, /proc/PID/exe, which reaches its executable even when the file
 * was deleted or replaced, or lives in another mount namespace. */
static int resolve_target(struct record_run *run)
{
	const struct record_options *o = run->o;

	if (o->command) {
		run->path = spawn_resolve_command(o->command[0]);
		if (!run->path) {
			report_error("record: cannot run %s: %s", o->command[0], strerror(errno));
			return -errno;
		}
		run->shown = strdup(run->path);
		return run->shown ? 0 : -ENOMEM;
	}
	if (kill(o->pid, 0) < 0 && errno == ESRCH) {
		report_error("record: no such process: %d", (int)o->pid);
		return -ESRCH;
	}
	run->shown = process_executable(o->pid);
	if (!run->shown) {
		int err = errno;

		if (err == EACCES || err == EPERM)
			say_not_permitted(o->pid);
		else
			report_error("record: cannot read the executable of process %d: %s", (int)o->pid, strerror(err));
		return -err;
	}
	return asprintf(&run->path, "/proc/%d/exe", (int)o->pid) < 0 ? -ENOMEM : 0;
}

static int compile_pattern(const char *option, const char *pattern, regex_t *re)
{
	if (regcomp(re, pattern, REG_EXTENDED | REG_NOSUB) == 0)
		return 0;
	report_error("record: invalid %s pattern: %s", option, pattern);
	return -EINVAL;
}

/* Release builds' inlined async bodies are found unless --no-inlined
 * (in process, the default probes only those the agent can patch whole:
 * record_capture.c). */
static bool probes_inlined(const struct record_options *o)
{
	return o->inlined >= 0;
}

static int analyse_functions(struct record_run *run)
{
	const struct record_options *o = run->o;
	struct poll_fn_list *fns = &run->fns;
	regex_t match, functions;
	struct uncounted_bodies uncounted = { 0 };
	int err = o->match ? compile_pattern("--match", o->match, &match) : 0;

	if (!err && o->functions && (err = compile_pattern("--function", o->functions, &functions))) {
		if (o->match)
			regfree(&match);
	}
	if (err)
		return err;
	err = poll_fn_list__load(fns, run->path, o->match ? &match : NULL);
	if (!err && o->functions)
		err = poll_fn_list__add_functions(fns, run->path, &functions);
	/* Release builds: the async bodies inlined into what survives (the
	 * list keeps the names of those not probed: load_functions says them) */
	if (!err)
		err = poll_fn_list__add_inlined(fns, run->path, o->match ? &match : NULL, probes_inlined(o), &uncounted);
	uncounted_bodies__free(&uncounted);
	/* Task lifecycles need the runtime's hooks and the futures' drop glue. */
	if (!err && fns->count && !o->no_tasks)
		err = poll_fn_list__add_hooks(fns, run->path);
	if (o->match)
		regfree(&match);
	if (o->functions)
		regfree(&functions);
	return err;
}

/* The binary's analysis, from the cache when this binary was recorded with
 * the same options before. */
static int load_functions(struct record_run *run)
{
	const struct record_options *o = run->o;
	struct pollfn_cache_key key = { run->path, o->match, o->functions,
					(o->no_tasks ? 0 : 1) | (probes_inlined(o) ? 2 : 0) };
	struct poll_fn_list *fns = &run->fns;
	int err = o->no_cache ? -ENOENT : pollfn_cache__load(fns, &key);

	if (err == -ENOENT) {
		err = analyse_functions(run);
		if (!err && fns->count && !o->no_cache)
			pollfn_cache__store(fns, &key); /* best effort */
	}
	if (err == -EINVAL)
		return err; /* a bad pattern, already reported */
	if (err == -ENOEXEC)
		report_error("record: %s: not an ELF file", run->path);
	else if (err)
		report_error("record: cannot read %s: %s", run->path, strerror(-err));
	else if (!fns->count)
		report_error("record: %s: no poll functions %s", run->path,
			     o->match || o->functions ? "match the patterns" : "found (is it a Rust async program?)");
	else {
		if (fns->uncounted) /* analysed now or cached */
			say_uncounted("record", fns->uncounted);
		return 0;
	}
	return err ? err : -ENOENT;
}

/* Its only job is to interrupt the loop's wait (no SA_RESTART): the
 * command's exit is noticed at once, not at the next tick. */
static void on_child_signal(int sig)
{
	(void)sig;
}

static void install_signal_handlers(void)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };
	struct sigaction child = { .sa_handler = on_child_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigemptyset(&child.sa_mask);
	sigaction(SIGCHLD, &child, NULL);
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static enum trace_end_reason record_loop(struct recorder *rec, double duration)
{
	double deadline = duration > 0 ? now_seconds() + duration : 0;
	int interval = rec->agent ? AGENT_POLL_INTERVAL_MS : POLL_INTERVAL_MS;

	for (;;) {
		if (recorder__poll(rec, interval) < 0 || stop_signal)
			return TRACE_END_SIGNAL;
		if (recorder__target_exited(rec))
			return TRACE_END_TARGET_EXITED;
		if (deadline && now_seconds() >= deadline)
			return TRACE_END_DURATION;
	}
}

/* The command's fate is its own: its status comes back the way a shell
 * would report it. A recording ended by --duration or SIGTERM ends the
 * command with SIGTERM, as `perf record` does. */
static int child_status(struct recorder *rec)
{
	int status = rec->wait_status;

	if (rec->child_pid <= 0)
		return 0;
	if (rec->left_running) /* as a shell reports a job it stopped waiting for on Ctrl-C */
		return 128 + SIGINT;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status)) {
		report_info("record: %s was killed by signal %d (%s)", rec->command_name,
			    WTERMSIG(status), strsignal(WTERMSIG(status)));
		return 128 + WTERMSIG(status);
	}
	return 1;
}

/* Interrupted twice while the command outlived the first: the trace ends
 * now and the command goes on, untraced (the agent's records go nowhere). */
static void say_left_running(struct recorder *rec)
{
	report_info("record: interrupted again: %s (pid %d) left running, untraced", rec->command_name,
		    (int)rec->child_pid);
	rec->left_running = 1;
}

/* Uprobes stop with the recording; the agent's buffers are complete only
 * once the target is gone, so the in-process backend waits for it first. */
static int end_recording(struct record_run *run, enum trace_end_reason reason)
{
	struct recorder *rec = &run->rec;
	/* The command is stopped only when the user stopped the recording
	 * (--duration, SIGTERM, SIGHUP); not by Ctrl-C (it has its own), nor
	 * by a failed write (a full disk): then it runs on, untraced. */
	bool terminate = reason == TRACE_END_DURATION ||
			 (reason == TRACE_END_SIGNAL && stop_signal && stop_signal != SIGINT);
	const volatile sig_atomic_t *stops = reason == TRACE_END_SIGNAL ? &stop_signals : NULL;
	int err;

	if (rec->agent) {
		recorder__stop_uprobes(rec);
		if (!recorder__wait_child(rec, terminate, stops))
			say_left_running(rec);
		return recorder__finish(rec, reason);
	}
	err = recorder__finish(rec, reason);
	if (!recorder__wait_child(rec, terminate, stops))
		say_left_running(rec);
	return err;
}

/* auto: frame pointers when the binary keeps them (a frame-pointer walk
 * is exact and costs nothing), else DWARF. */
static int start_sampling(struct record_run *run)
{
	struct recorder *rec = &run->rec;
	int mode = run->o->call_graph;

	if (mode == CALL_GRAPH_AUTO)
		mode = elf_keeps_frame_pointers(run->path) == 1 ? CALL_GRAPH_FP : CALL_GRAPH_DWARF;
	report_info("profile: call graphs from %s", mode == CALL_GRAPH_FP ? "frame pointers" : "DWARF CFI");
	recorder__follow_sampled_threads(rec);
	return sample_sink__start(&rec->samples, rec->child_pid > 0 ? rec->child_pid : run->o->pid, run->o->sample_hz,
				  rec->child_pid > 0, mode == CALL_GRAPH_DWARF, run->fns.machine);
}

/* Functions and inlined-body sites the in-process default left out
 * (record_capture.c): neither patched nor probed. */
static size_t left_out(const struct record_run *run, size_t *sites)
{
	size_t fns = 0;

	*sites = 0;
	for (size_t i = 0; i < run->fns.count; i++)
		fns += run->fns.fns[i].inlined.left_out;
	for (size_t i = 0; i < run->agent_plan.site_count; i++)
		*sites += run->agent_plan.sites[i].refusal == INPROC_SITE_LEFT_OUT;
	return fns;
}

static void print_attached(const struct record_run *run, double started)
{
	size_t by_uprobe = record_count_by_uprobe(run), left_sites, left = left_out(run, &left_sites);
	size_t traced = run->fns.count - left, in_process = run->backend == BACKEND_INPROC ? traced - by_uprobe : 0;
	size_t sites = run->agent_plan.site_count - left_sites;

	if (run->backend == BACKEND_INPROC)
		report_info("record: %zu of %zu functions patched in process, %zu through uprobes, in %.0f ms",
			    in_process, traced, by_uprobe, (now_seconds() - started) * 1e3);
	else
		report_info("record: %zu probes on %zu function%s attached in %.0f ms",
			    uprobe_session__attached(run->rec.uprobes), run->fns.count,
			    run->fns.count == 1 ? "" : "s", (now_seconds() - started) * 1e3);
	if (run->backend == BACKEND_INPROC && sites)
		report_info("record: %zu of %zu inlined-body sites patched in process, %zu through uprobes%s",
			    run->patched_site_count, sites, sites - run->patched_site_count,
			    run->patched_site_count < sites && !run->o->verbose ? " (-v says why)" : "");
}

static int run_record(struct record_run *run)
{
	struct recorder *rec = &run->rec;
	enum trace_end_reason reason;
	double started;
	int err, status = 1;

	err = resolve_target(run);
	if (!err)
		err = load_functions(run);
	if (!err)
		err = record_choose_backend(run);
	if (!err)
		err = record_prepare_capture(run);
	if (!err)
		err = recorder__open_output(rec, run->o->output);
	if (!err)
		err = record_start_target(run);
	if (!err && run->o->sample_hz && (err = start_sampling(run))) {
		held_child__abort(&run->child); /* the command never runs */
		rec->child_pid = 0;
	}
	if (err)
		return status;
	rec->command_name = run->o->command ? run->o->command[0] : run->shown;
	rec->drain_at_end = run->o->drain_at_end;
	started = now_seconds();
	err = record_arm_capture(run);
	if (err)
		return rec->exec_failed ? 127 : status;
	print_attached(run, started);
	install_signal_handlers();
	reason = rec->exec_failed ? TRACE_END_TARGET_EXITED : record_loop(rec, run->o->duration);
	err = end_recording(run, reason);
	status = child_status(rec);
	if (rec->exec_failed)
		status = 127;
	else if (err || rec->failed)
		status = status ? status : 1;
	else
		recorder__print_summary(rec, run->o->output, now_seconds() - started);
	return status;
}

int record_main(int argc, char **argv, unsigned default_hz)
{
	struct record_options options = { .sample_hz = default_hz, .profile = default_hz != 0 };
	struct record_run run = { .o = &options };
	int rc = parse_options(&options, argc, argv);
	int status;

	run.rec.pidfd = -1;
	run.child.release_fd = run.child.error_fd = -1;
	if (!rc)
		status = run_record(&run);
	else
		status = rc > 0 ? 0 : EXIT_USAGE;
	record_run__free(&run);
	free(options.match);
	free(options.functions);
	return status;
}

int cmd_record(int argc, char **argv)
{
	return record_main(argc, argv, 0);
}
