/* record's capture backends: the in-process agent (plan, region, handshake)
 * and the uprobes that trace what the agent cannot patch, or everything
 * with --backend bpf and -p. The wording of their errors lives here. */
#include "cmd/record.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bpf/poll.h"
#include "cmd/cmd.h"
#include "elf/pollfn_cache.h"
#include "probe/agent_session.h"
#include "probe/uprobe.h"
#include "util/error.h"

#define DEFAULT_RING_MB 16
#define DEFAULT_POOL_MB 64
/* The agent reports from the target's constructor, before main. */
#define AGENT_REPORT_TIMEOUT_MS 10000

static size_t ring_bytes(double megabytes)
{
	size_t bytes = 4096;

	while (bytes < megabytes * 1024 * 1024 && bytes < (1UL << 30))
		bytes <<= 1;
	return bytes;
}

int record_choose_backend(struct record_run *run)
{
	const struct record_options *o = run->o;
	const char *why;

	run->backend = o->backend;
	if (run->backend == BACKEND_AUTO)
		run->backend = o->command ? BACKEND_INPROC : BACKEND_BPF;
	if (run->backend == BACKEND_INPROC && o->pid) {
		report_error("record: the in-process backend traces a command it starts (-- CMD), not -p; use --backend bpf");
		return -EINVAL;
	}
	if (run->backend != BACKEND_INPROC)
		return 0;
	why = agent_session__unsupported(run->path, run->fns.machine);
	run->agent_library = why ? NULL : agent_session__find_library();
	if (!why && !run->agent_library)
		why = "libasynctrace-agent.so is not next to asynctrace nor in its lib/asynctrace/";
	if (!why && strpbrk(run->agent_library, " :"))
		why = "the agent's path holds a space or a colon, which LD_PRELOAD cannot carry";
	if (!why)
		return 0;
	if (o->backend == BACKEND_INPROC) {
		report_error("record: cannot trace in process: %s", why);
		return -ENOTSUP;
	}
	report_info("record: tracing with uprobes: %s", why);
	run->backend = BACKEND_BPF;
	return 0;
}

/* "poll start", "resume point", "exit (state 3)": what an inlined body's
 * site records, from its cookie. */
static const char *site_meaning(const struct agent_site *site, char *buf, size_t len)
{
	uint64_t state = site->cookie >> COOKIE_OFFSET_SHIFT;

	if (((site->cookie >> COOKIE_KIND_SHIFT) & COOKIE_KIND_MASK) == PROBE_KIND_EXIT)
		snprintf(buf, len, "exit (state %u)", (unsigned)state);
	else
		snprintf(buf, len, "%s", state ? "resume point" : "poll start");
	return buf;
}

static void list_site_refusals(const struct record_run *run)
{
	const struct agent_plan_set *plan = &run->agent_plan;
	char meaning[32];

	for (size_t i = 0; i < plan->site_count; i++)
		if (plan->sites[i].refusal)
			report_info("not patched: %s: %s at 0x%llx: %s (a uprobe there)",
				    run->fns.fns[plan->sites[i].func_id].demangled,
				    site_meaning(&plan->sites[i], meaning, sizeof(meaning)),
				    (unsigned long long)plan->sites[i].uprobe_addr,
				    inproc_refusal__name(plan->sites[i].refusal));
}

/* The inlined bodies the in-process default leaves out, named. */
static void say_left_out(const struct record_run *run, size_t count)
{
	char names[512];
	size_t len = 0;

	names[0] = '\0';
	for (size_t i = 0; i < run->fns.count; i++)
		if (run->fns.fns[i].inlined.is && run->fns.fns[i].inlined.left_out)
			len = join_name(names, sizeof(names), len, run->fns.fns[i].demangled);
	if (count)
		report_info("record: %zu async bod%s rustc inlined into other functions not traced: in process, "
			    "a site of %s or the function %s inlined into cannot be patched (--inlined probes %s "
			    "with uprobes: root, ~5 us a poll each; the report names every one): %s", count, count == 1 ? "y" : "ies",
			    count == 1 ? "its" : "theirs", count == 1 ? "it is" : "they are", count == 1 ? "it" : "them",
			    names);
}

static void list_refusals(const struct record_run *run)
{
	for (size_t i = 0; i < run->fns.count; i++)
		if (run->agent_plan.refusal[i])
			report_info("not patched: %s (%s): %s", run->fns.fns[i].demangled,
				    run->fns.fns[i].context == CONTEXT_FUNCTION ? "function"
									 : function_role__name(run->fns.fns[i].role),
				    run->fns.fns[i].inlined.is && !run->fns.fns[i].inlined.left_out
					    ? "some of its sites cannot be patched in process (below)"
					    : inproc_refusal__name(run->agent_plan.refusal[i]));
	list_site_refusals(run);
}

static int open_uprobes(struct record_run *run)
{
	struct recorder *rec = &run->rec;
	double mb = run->backend == BACKEND_BPF && run->o->buffer_mb ? run->o->buffer_mb : DEFAULT_RING_MB;
	int err;

	if (rec->uprobes || run->uprobes_unavailable)
		return rec->uprobes ? 0 : run->uprobes_error;
	err = uprobe_session__open(&rec->uprobes, ring_bytes(mb), run->o->verbose, &run->fns, recorder__on_event,
				   rec);
	if (!err)
		return 0;
	if (run->backend == BACKEND_INPROC) { /* the caller says what goes untraced */
		run->uprobes_unavailable = true;
		run->uprobes_error = err;
		return err;
	}
	if (err == -EPERM || err == -EACCES)
		report_error("record: cannot load BPF programs: %s (they need root, or CAP_BPF and CAP_PERFMON: "
			     "sudo setcap cap_bpf,cap_perfmon+ep asynctrace; the in-process backend needs neither)",
			     strerror(-err));
	else
		report_error("record: cannot load BPF programs: %s", strerror(-err));
	return err;
}

static int prepare_inproc(struct record_run *run)
{
	struct recorder *rec = &run->rec;
	double mb = run->o->buffer_mb ? run->o->buffer_mb : DEFAULT_POOL_MB;
	struct agent_session_callbacks callbacks = recorder__agent_callbacks(rec);
	struct pollfn_cache_key key = { run->path, run->o->match, run->o->functions, !run->o->no_tasks };
	int err = run->o->no_cache ? agent_plan__build(&run->agent_plan, run->path, &run->fns)
				   : agent_plan__build_cached(&run->agent_plan, &run->fns, &key);

	if (err) {
		report_error("record: cannot decode the functions of %s: %s", run->path, strerror(-err));
		return err;
	}
	/* By default, an inlined body is traced in process or not at all: one
	 * uprobe among its sites would cost its polls (and theirs around it)
	 * microseconds each. */
	if (!run->o->inlined)
		say_left_out(run, agent_plan__leave_out_partial_bodies(&run->agent_plan, &run->fns));
	if (run->o->verbose)
		list_refusals(run);
	if (!run->agent_plan.count) {
		report_info("record: tracing with uprobes: no function can be patched in process (-v says why)");
		run->backend = BACKEND_BPF;
		for (size_t i = 0; i < run->fns.count; i++) /* all uprobes: nothing is left out */
			run->by_uprobe[i] = true, run->fns.fns[i].inlined.left_out = false;
		return open_uprobes(run);
	}
	/* Functions the agent cannot patch go to uprobes, which need privileges:
	 * without them, say so now and trace the rest. */
	if (run->agent_plan.refused && (err = open_uprobes(run)) < 0) {
		report_warning("record: %zu function%s cannot be patched in process and uprobes are not available (%s): %s not traced (-v lists them)",
			       run->agent_plan.refused, run->agent_plan.refused == 1 ? "" : "s",
			       err == -EPERM || err == -EACCES ? "they need root or CAP_BPF+CAP_PERFMON" : strerror(-err),
			       run->agent_plan.refused == 1 ? "it is" : "they are");
		run->warned_untraced = true;
	}
	err = agent_session__create(&rec->agent, &run->agent_plan, &run->fns, (size_t)(mb * 1024 * 1024),
				    &callbacks);
	if (err)
		report_error("record: cannot create the buffers shared with the agent: %s", strerror(-err));
	return err;
}

/* Spawn sites resolved before are kept beside the binary's analysis. */
static void find_sites_cache(struct record_run *run)
{
	struct pollfn_cache_key key = { run->path, run->o->match, run->o->functions, !run->o->no_tasks };
	char path[4096];

	if (!run->o->no_cache && pollfn_cache__path(&key, ".sites", path, sizeof(path)) == 0)
		run->rec.sites_cache = strdup(path);
}

int record_prepare_capture(struct record_run *run)
{
	size_t n = run->fns.count ? run->fns.count : 1;

	find_sites_cache(run);
	run->by_uprobe = calloc(n, sizeof(*run->by_uprobe));
	run->exits = calloc(n, sizeof(*run->exits));
	if (!run->by_uprobe || !run->exits)
		return -ENOMEM;
	if (run->backend == BACKEND_INPROC)
		return prepare_inproc(run);
	for (size_t i = 0; i < run->fns.count; i++)
		run->by_uprobe[i] = true;
	return open_uprobes(run);
}

int record_start_target(struct record_run *run)
{
	const struct record_options *o = run->o;
	struct recorder *rec = &run->rec;
	char **env = NULL;
	int err;

	if (!o->command) {
		rec->target_pid = o->pid;
		rec->pidfd = (int)syscall(SYS_pidfd_open, o->pid, 0);
		return 0;
	}
	if (rec->agent) {
		env = agent_session__child_env(rec->agent, run->agent_library);
		if (!env)
			return -ENOMEM;
	}
	err = held_child__spawn(&run->child, run->path, o->command, env);
	agent_session__free_env(env);
	if (err) {
		report_error("record: cannot start %s: %s", o->command[0], strerror(-err));
		return err;
	}
	rec->target_pid = rec->child_pid = run->child.pid;
	if (rec->agent)
		agent_session__set_target(rec->agent, run->child.pid);
	return 0;
}

/* Exits the probes cannot take (conditional tail calls): a poll leaving
 * through one ends when the stack shows it gone (as unwound). Counted in
 * one line; -v names the functions. */
static void report_unsupported_exits(const struct record_run *run)
{
	const struct probe_plan *plan = &run->probe_plan;
	size_t functions = 0;

	for (size_t i = 0; i < run->fns.count; i++) {
		if (!plan->unsupported_per_function[i])
			continue;
		functions++;
		if (run->o->verbose)
			report_info("record: %s: %u exit%s not probed (conditional tail call%s)",
				    run->fns.fns[i].demangled, plan->unsupported_per_function[i],
				    plan->unsupported_per_function[i] == 1 ? "" : "s",
				    plan->unsupported_per_function[i] == 1 ? "" : "s");
	}
	if (plan->unsupported_exits)
		report_info("record: %zu exit%s in %zu function%s cannot be probed (conditional tail calls): polls "
			    "leaving there end when the stack shows them gone%s", plan->unsupported_exits,
			    plan->unsupported_exits == 1 ? "" : "s", functions, functions == 1 ? "" : "s",
			    run->o->verbose ? "" : " (-v lists them)");
}

static int plan_probes(struct record_run *run)
{
	struct probe_plan *plan = &run->probe_plan;
	int err = probe_plan__build(plan, run->path, &run->fns);
	size_t without_exits = 0;

	if (err == -ENOTSUP) {
		report_error("record: cannot probe %s binaries on this machine", run->fns.machine == 0 ? "these" : "non-native");
		return err;
	}
	if (err) {
		report_error("record: cannot decode the functions of %s: %s", run->path, strerror(-err));
		return err;
	}
	probe_plan__keep(plan, run->by_uprobe, run->patched_sites, run->patched_site_count);
	for (size_t i = 0; i < run->fns.count; i++) {
		run->exits[i] = run->by_uprobe[i] ? plan->exits_per_function[i] : run->exits[i];
		without_exits += run->by_uprobe[i] && run->fns.fns[i].role == ROLE_POLL && !plan->exits_per_function[i];
	}
	if (without_exits)
		report_info("record: %zu poll functions have no exit instruction; their polls end when the stack shows them gone",
			    without_exits);
	report_unsupported_exits(run);
	if (run->o->verbose)
		for (size_t i = 0; i < plan->count; i++)
			report_info("probe %s at file offset 0x%llx: %s",
				    plan->sites[i].kind == PROBE_KIND_ENTRY ? "entry" : "exit ",
				    (unsigned long long)plan->sites[i].file_offset,
				    run->fns.fns[plan->sites[i].func_id].demangled);
	return 0;
}

static int attach_probes(struct record_run *run)
{
	struct recorder *rec = &run->rec;
	const struct probe_plan *plan = &run->probe_plan;
	pid_t pid = rec->target_pid;
	size_t failed = 0;
	int err;

	if (!plan->count)
		return 0;
	uprobe_session__set_target(rec->uprobes, pid);
	err = uprobe_session__attach(rec->uprobes, run->path, pid, plan, &failed);
	if (!err)
		return 0;
	if (err == -ESRCH)
		report_error("record: process %d exited before the probes were attached", (int)pid);
	else if (uprobe_session__uses_multi_link(rec->uprobes))
		report_error("record: cannot attach %zu uprobes to %s: %s%s", plan->count, run->path, strerror(-err),
			     err == -EPERM || err == -EACCES ? " (run as root or grant CAP_BPF+CAP_PERFMON)" : "");
	else
		report_error("record: cannot attach a uprobe to %s at file offset 0x%llx (%s): %s%s", run->path,
			     (unsigned long long)plan->sites[failed].file_offset,
			     run->fns.fns[plan->sites[failed].func_id].demangled, strerror(-err),
			     err == -EPERM || err == -EACCES ? " (run as root or grant CAP_BPF+CAP_PERFMON)" : "");
	return err;
}

size_t record_count_by_uprobe(const struct record_run *run)
{
	size_t n = 0;

	for (size_t i = 0; run->by_uprobe && i < run->fns.count; i++)
		n += run->by_uprobe[i];
	return n;
}

/* An inlined body's sites: the ones the agent patched leave the uprobe
 * plan (run->patched_sites); the body is traced by uprobes when any other
 * is left. Every exit site is seen either way. */
static int assign_sites(struct record_run *run, bool agent_refused)
{
	const struct agent_plan_set *plan = &run->agent_plan;
	size_t failed_in_agent = 0;

	free(run->patched_sites);
	run->patched_sites = calloc(plan->site_count ? plan->site_count : 1, sizeof(*run->patched_sites));
	run->patched_site_count = 0;
	if (!run->patched_sites)
		return -ENOMEM;
	for (size_t i = 0; i < run->fns.count; i++)
		if (run->fns.fns[i].inlined.is)
			run->by_uprobe[i] = false, run->exits[i] = 0;
	for (size_t i = 0; i < plan->site_count; i++) {
		const struct agent_site *site = &plan->sites[i];
		int result = agent_refused || site->refusal ? AGENT_PATCH_PENDING
							    : agent_session__site_result(run->rec.agent, i);

		if (site->refusal == INPROC_SITE_LEFT_OUT)
			continue; /* neither patched nor probed */
		run->exits[site->func_id] += ((site->cookie >> COOKIE_KIND_SHIFT) & COOKIE_KIND_MASK) == PROBE_KIND_EXIT;
		if (result == AGENT_PATCH_APPLIED) {
			run->patched_sites[run->patched_site_count++] =
				(struct probe_site){ .file_offset = site->uprobe_offset, .cookie = site->cookie };
			continue;
		}
		run->by_uprobe[site->func_id] = true;
		if (!agent_refused && !site->refusal) {
			failed_in_agent++;
			if (run->o->verbose)
				report_info("not patched: %s: site at 0x%llx: %s", run->fns.fns[site->func_id].demangled,
					    (unsigned long long)site->addr, agent_patch_result__name(result));
		}
	}
	if (failed_in_agent)
		report_info("record: the agent could not patch %zu inlined-body site%s; uprobes trace %s", failed_in_agent,
			    failed_in_agent == 1 ? "" : "s", failed_in_agent == 1 ? "it" : "them");
	return 0;
}

/* After the agent's report: what it patched is traced in process, the
 * rest by uprobes (when we may load them). */
static int assign_functions(struct record_run *run, bool agent_refused)
{
	struct agent_session *agent = run->rec.agent;
	size_t failed_in_agent = 0, untraced;
	int rc;

	for (size_t i = 0; i < run->fns.count; i++) {
		int result = agent_refused ? AGENT_PATCH_PENDING : agent_session__result(agent, (uint32_t)i);

		if (run->fns.fns[i].inlined.is || run->fns.fns[i].inlined.left_out)
			continue; /* assign_sites; or left out: neither patched nor probed */
		run->by_uprobe[i] = result != AGENT_PATCH_APPLIED;
		/* Called through: every exit is seen. */
		run->exits[i] = result == AGENT_PATCH_APPLIED &&
				(run->fns.fns[i].role == ROLE_POLL || run->fns.fns[i].role == ROLE_TASK_NEW);
		if (!agent_refused && run->agent_plan.refusal[i] == INPROC_PATCHABLE && result != AGENT_PATCH_APPLIED) {
			run->agent_plan.refusal[i] = INPROC_AGENT;
			failed_in_agent++;
			if (run->o->verbose)
				report_info("not patched: %s: %s", run->fns.fns[i].demangled, agent_patch_result__name(result));
		}
	}
	if (failed_in_agent)
		report_info("record: the agent could not patch %zu function%s; uprobes trace %s", failed_in_agent,
			    failed_in_agent == 1 ? "" : "s", failed_in_agent == 1 ? "it" : "them");
	if ((rc = assign_sites(run, agent_refused)))
		return rc;
	if (!record_count_by_uprobe(run))
		return 0;
	rc = open_uprobes(run);
	if (rc == 0 || agent_refused)
		return rc; /* with the agent refused, nothing would trace */
	untraced = record_count_by_uprobe(run);
	for (size_t i = 0; i < run->fns.count; i++)
		run->by_uprobe[i] = false;
	if (!run->warned_untraced)
		report_warning("record: %zu function%s cannot be patched in process and uprobes are not available (%s): %s not traced (-v lists them)",
			       untraced, untraced == 1 ? "" : "s",
			       rc == -EPERM || rc == -EACCES ? "they need root or CAP_BPF+CAP_PERFMON" : strerror(-rc),
			       untraced == 1 ? "it is" : "they are");
	return 0;
}

/* The agent holds the target in its constructor until go. Returns 1 when
 * everything goes to uprobes (the agent refused), 0 when the agent traces,
 * or a negative errno. */
static int complete_handshake(struct record_run *run)
{
	struct recorder *rec = &run->rec;
	const char *why = NULL;
	int state = agent_session__wait_agent(rec->agent, AGENT_REPORT_TIMEOUT_MS, &why);
	bool refused = state != AGENT_PATCHED;
	int err;

	if (state == -ESRCH) {
		report_error("record: %s exited before the agent started (was it run with LD_PRELOAD ignored?)", rec->command_name);
		return -ESRCH;
	}
	if (refused)
		report_warning("record: the in-process agent %s%s%s; tracing with uprobes", state == AGENT_REFUSED ? "refused: " : "did not start",
			       why ? why : "", state == AGENT_REFUSED ? "" : " (LD_PRELOAD ignored?)");
	err = assign_functions(run, refused);
	if (err) {
		report_error("record: nothing can trace %s: the agent is not running and uprobes are not available (%s)",
			     rec->command_name,
			     err == -EPERM || err == -EACCES ? "they need root or CAP_BPF+CAP_PERFMON" : strerror(-err));
		return err;
	}
	return refused ? 1 : 0;
}

static const char *capture_name(const struct record_run *run)
{
	size_t by_uprobe = record_count_by_uprobe(run);

	if (!run->rec.agent)
		return "ebpf-uprobe";
	return by_uprobe ? "inproc+ebpf-uprobe" : "inproc";
}

static int release_command(struct record_run *run)
{
	struct recorder *rec = &run->rec;
	int err;

	if (!run->o->command)
		return 0;
	err = held_child__release(&run->child);
	if (err) {
		report_error("record: cannot run %s: %s", run->o->command[0], strerror(-err));
		rec->exec_failed = 1;
	}
	return err;
}

static int arm_inproc(struct record_run *run)
{
	struct recorder *rec = &run->rec;
	int err = release_command(run), all_by_uprobe = 0, rc;

	if (rec->exec_failed) /* nothing ran: an empty trace, and the shell's 127 */
		return recorder__write_header(rec, run->path, run->shown, run->o->command, &run->fns, run->exits,
					      capture_name(run));
	if (!err) {
		rc = complete_handshake(run);
		all_by_uprobe = rc == 1;
		err = rc < 0 ? rc : 0;
	}
	if (!err && record_count_by_uprobe(run))
		err = plan_probes(run);
	if (!err)
		err = attach_probes(run);
	if (all_by_uprobe) { /* the agent stays idle: the trace is the uprobes' */
		agent_session__go(rec->agent);
		agent_session__free(rec->agent);
		rec->agent = NULL;
	}
	if (!err)
		err = recorder__write_header(rec, run->path, run->shown, run->o->command, &run->fns, run->exits,
					     capture_name(run));
	if (err) {
		kill(rec->child_pid, SIGKILL); /* held before main: it never ran */
		waitpid(rec->child_pid, NULL, 0);
		rec->child_pid = 0;
		return err;
	}
	recorder__locate_target(rec);
	if (rec->agent)
		agent_session__go(rec->agent);
	return 0;
}

static int arm_uprobes(struct record_run *run)
{
	struct recorder *rec = &run->rec;
	int err = plan_probes(run);

	if (!err)
		err = attach_probes(run);
	if (!err)
		err = recorder__write_header(rec, run->path, run->shown, run->o->command, &run->fns, run->exits,
					     capture_name(run));
	if (err) {
		held_child__abort(&run->child);
		rec->child_pid = 0;
		return err;
	}
	if (release_command(run) == 0)
		recorder__locate_target(rec);
	return 0;
}

int record_arm_capture(struct record_run *run)
{
	return run->backend == BACKEND_INPROC ? arm_inproc(run) : arm_uprobes(run);
}

void record_run__free(struct record_run *run)
{
	recorder__close(&run->rec);
	probe_plan__free(&run->probe_plan);
	agent_plan__free(&run->agent_plan);
	poll_fn_list__free(&run->fns);
	free(run->by_uprobe);
	free(run->exits);
	free(run->patched_sites);
	free(run->agent_library);
	free(run->path);
	free(run->shown);
}
