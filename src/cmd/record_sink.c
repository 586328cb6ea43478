#include "cmd/record_sink.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/error.h"
#include "util/private_file.h"
#include "util/array.h"

int recorder__open_output(struct recorder *rec, const char *path)
{
	int err = trace_writer__open(&rec->writer, path);

	if (err)
		report_error("record: cannot create %s: %s", path, private_file__strerror(err));
	rec->output = path;
	return err;
}

static char *join_command(char *const *command)
{
	size_t len = 1;
	char *joined;

	for (size_t i = 0; command && command[i]; i++)
		len += strlen(command[i]) + 1;
	joined = calloc(1, len);
	for (size_t i = 0; joined && command && command[i]; i++) {
		if (i)
			strcat(joined, " ");
		strcat(joined, command[i]);
	}
	return joined;
}

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* An inlined async body named in the table but never probed (why: the flag). */
static struct trace_function listed_only(const char *name, uint32_t why)
{
	return (struct trace_function){ .name = (char *)name, .mangled = (char *)name, .context = CONTEXT_COMPILER,
					.flags = TRACE_FUNCTION_INLINED | why };
}

static struct trace_function function_entry(const struct poll_fn *fn, uint32_t exits)
{
	return (struct trace_function){
		.addr = fn->addr,
		.size = fn->size,
		.context = fn->context,
		.body = fn->body,
		.self_arg = fn->self_arg,
		.result = fn->result,
		.exit_sites = exits,
		.source_line = fn->source_line,
		.role = fn->role,
		.runtime = fn->runtime,
		.flags = (fn->inlined.is ? TRACE_FUNCTION_INLINED : 0) |
			 (fn->inlined.approximate ? TRACE_FUNCTION_APPROXIMATE : 0) |
			 (fn->inlined.is && fn->inlined.left_out ? TRACE_FUNCTION_UNPROBED : 0),
		.target = fn->target,
		.state_offset = fn->state.offset,
		.state_size = fn->state.size,
		.await_count = (uint32_t)fn->state.await_count,
		.awaits = fn->state.awaits,
		.name = fn->demangled,
		.mangled = fn->mangled,
		.source_file = fn->source_file,
	};
}

/* Everything buffered to the file, and the second it happened. */
static int checkpoint(struct recorder *rec)
{
	rec->last_checkpoint_s = clock_ns(CLOCK_MONOTONIC) / 1000000000;
	return trace_writer__checkpoint(rec->writer);
}

int recorder__write_header(struct recorder *rec, const char *binary, const char *shown,
			   char *const *command, const struct poll_fn_list *fns,
			   const uint32_t *exits, const char *capture)
{
	struct trace_meta meta = {
		.clock = CLOCK_MONOTONIC, /* what bpf_ktime_get_ns() reads */
		.pid = (uint32_t)rec->target_pid,
		.start_realtime_ns = clock_ns(CLOCK_REALTIME),
		.start_clock_ns = clock_ns(CLOCK_MONOTONIC),
		.machine = fns->machine,
		.build_id_len = (uint8_t)fns->build_id_len,
		.target_path = (char *)shown,
		.command = join_command(command),
		.capture = (char *)capture,
	};
	size_t uncounted = fns->uncounted ? fns->uncounted->count : 0;
	size_t unprobed = fns->uncounted ? fns->uncounted->unprobed_count : 0;
	size_t listed = fns->count + uncounted + unprobed;
	struct trace_function *table = calloc(listed + 1, sizeof(*table));
	int err;

	rec->fns = fns;
	rec->binary = binary;
	memcpy(meta.build_id, fns->build_id, sizeof(meta.build_id));
	if (!table || !meta.command) {
		free(table);
		free(meta.command);
		return -ENOMEM;
	}
	for (size_t i = 0; i < fns->count; i++)
		table[i] = function_entry(&fns->fns[i], exits[i]);
	for (size_t i = 0; i < uncounted; i++)
		table[fns->count + i] = listed_only(fns->uncounted->names[i], TRACE_FUNCTION_UNCOUNTED);
	for (size_t i = 0; i < unprobed; i++)
		table[fns->count + uncounted + i] = listed_only(fns->uncounted->unprobed[i], TRACE_FUNCTION_UNPROBED);
	err = trace_writer__write_meta(rec->writer, &meta);
	if (!err)
		err = trace_writer__write_functions(rec->writer, table, listed);
	if (!err) /* on disk before any event: a killed recorder's file is still read */
		err = checkpoint(rec);
	free(table);
	free(meta.command);
	if (err)
		report_error("record: cannot write %s: %s", rec->output, strerror(-err));
	return err;
}

/* A thread's name: the BPF side sends it once, from the thread itself;
 * the agent with every buffer the thread takes (the latest wins: threads
 * are often named after they start). */
static void name_thread(struct recorder *rec, uint32_t tid, const char *name, size_t len, bool replace)
{
	uintptr_t index = (uintptr_t)u64map_get(&rec->thread_index, (uint64_t)tid + 1);
	struct trace_thread *thread;

	if (index && !replace)
		return;
	if (!index) {
		if (ARRAY_RESERVE(rec->threads, rec->thread_capacity, rec->thread_count + 1))
			return; /* the thread stays unnamed */
		if (u64map_put(&rec->thread_index, (uint64_t)tid + 1, (void *)(uintptr_t)(rec->thread_count + 1)))
			return;
		index = ++rec->thread_count;
	}
	thread = &rec->threads[index - 1];
	memset(thread, 0, sizeof(*thread));
	thread->tid = tid;
	memcpy(thread->name, name, len < sizeof(thread->name) - 1 ? len : sizeof(thread->name) - 1);
}

/* A thread the samples met first (a worker that never polls, a plain
 * std::thread): named from /proc while it lives. */
static void on_sampled_thread(uint32_t pid, uint32_t tid, void *ctx)
{
	struct recorder *rec = ctx;
	char path[64], comm[32] = "";
	FILE *f;

	if (u64map_get(&rec->thread_index, (uint64_t)tid + 1))
		return;
	snprintf(path, sizeof(path), "/proc/%u/task/%u/comm", pid, tid);
	f = fopen(path, "re");
	if (f && fgets(comm, sizeof(comm), f))
		name_thread(rec, tid, comm, strcspn(comm, "\n"), false);
	if (f)
		fclose(f);
}

void recorder__follow_sampled_threads(struct recorder *rec)
{
	rec->samples.on_thread = on_sampled_thread;
	rec->samples.thread_ctx = rec;
}

/* Spawn sites are return addresses in the process: keep them, to resolve
 * at the end (with the load bias recorder__locate_target found). */
static void note_address(struct recorder *rec, const struct trace_event *e)
{
	const struct poll_fn *fn = &rec->fns->fns[e->func_id];

	if (fn->role == ROLE_SPAWN && (e->flags & TRACE_EVENT_RETURN_ADDRESS))
		address_book__note(&rec->addresses, e->aux);
}

static int write_failed(struct recorder *rec, int err)
{
	if (!rec->write_error) {
		rec->write_error = err;
		report_error("record: cannot write %s: %s", rec->output, strerror(-err));
	}
	return err; /* stop this drain; the loop ends the recording */
}

void recorder__locate_target(struct recorder *rec)
{
	const struct poll_fn *fn = &rec->fns->fns[0];

	/* Events are drained in batches, often after a short program exited:
	 * read its mappings now. A command released a moment ago may still
	 * be inside exec, mapping its segments: try for up to ~50 ms. */
	for (int attempt = 0; attempt < 100; attempt++) {
		if (!address_book__find_bias(&rec->addresses, rec->target_pid, rec->binary, fn->file_offset,
					     fn->addr))
			return;
		usleep(500);
	}
}

/* A thread's first hit at an entry probe says where that function is
 * mapped: the load bias, also for a program that exited before
 * recorder__locate_target could read its mappings. */
static void learn_bias(struct recorder *rec, const struct probe_event *pe)
{
	if (rec->addresses.have_bias || !(pe->flags & PROBE_FLAG_ENTRY_IP) || pe->func_id >= rec->fns->count ||
	    (pid_t)pe->pid != rec->target_pid)
		return;
	rec->addresses.load_bias = pe->aux - rec->fns->fns[pe->func_id].addr;
	rec->addresses.have_bias = true;
}

int recorder__on_event(const struct probe_event *pe, void *ctx)
{
	struct recorder *rec = ctx;
	struct trace_event e = {
		.ts = pe->ts,
		.sp = pe->sp,
		.arg0 = pe->arg0,
		.arg1 = pe->arg1,
		.aux = pe->aux,
		.pid = pe->pid,
		.tid = pe->tid,
		.func_id = pe->func_id,
		.cpu = pe->cpu,
		.kind = pe->kind == PROBE_KIND_ENTRY ? TRACE_EVENT_ENTRY : TRACE_EVENT_EXIT,
		.flags = (pe->flags & PROBE_FLAG_ARG1_FROM_MEMORY ? TRACE_EVENT_ARG1_FROM_MEMORY : 0) |
			 (pe->flags & PROBE_FLAG_READ_FAILED ? TRACE_EVENT_READ_FAILED : 0) |
			 (pe->flags & PROBE_FLAG_STATE ? TRACE_EVENT_STATE : 0) |
			 (pe->flags & PROBE_FLAG_RETURN_ADDRESS ? TRACE_EVENT_RETURN_ADDRESS : 0) |
			 (pe->flags & PROBE_FLAG_RESUMED ? TRACE_EVENT_RESUMED : 0),
	};
	int err;

	if (pe->kind == PROBE_KIND_THREAD) {
		name_thread(rec, pe->tid, (const char *)&pe->arg0, 16, false);
		learn_bias(rec, pe);
		return 0;
	}
	if (pe->func_id >= rec->fns->count)
		return 0; /* cannot happen: cookies carry our own ids */
	note_address(rec, &e);
	err = trace_writer__add_event(rec->writer, &e);
	if (err)
		return write_failed(rec, err);
	rec->events++;
	return 0;
}

static int on_agent_events(uint64_t stream, uint32_t tid, const struct trace_event *events, size_t count,
			   void *ctx)
{
	struct recorder *rec = ctx;
	int err;

	if (rec->write_error)
		return rec->write_error;
	for (size_t i = 0; i < count; i++)
		note_address(rec, &events[i]);
	err = trace_writer__add_stream_events(rec->writer, stream, tid, (uint32_t)rec->target_pid, events, count);
	if (err)
		return write_failed(rec, err);
	rec->events += count;
	return 0;
}

static void on_agent_thread(uint32_t tid, const char *comm, void *ctx)
{
	name_thread(ctx, tid, comm, strlen(comm), true);
}

/* A thread's last buffer: its encoder state goes (ten thousand short-lived
 * threads must not keep ten thousand pending chunks). */
static int on_agent_stream_end(uint64_t stream, void *ctx)
{
	struct recorder *rec = ctx;
	int err = trace_writer__flush_stream(rec->writer, stream);

	return err ? write_failed(rec, err) : 0;
}

struct agent_session_callbacks recorder__agent_callbacks(struct recorder *rec)
{
	return (struct agent_session_callbacks){ on_agent_events, on_agent_thread, on_agent_stream_end, rec };
}

static int write_addresses(struct recorder *rec)
{
	struct trace_site *sites = NULL;
	size_t count = 0;
	int err = address_book__resolve(&rec->addresses, rec->binary, rec->sites_cache, &sites, &count);

	if (!err && rec->addresses.have_bias)
		err = trace_writer__write_mapping(rec->writer, rec->addresses.load_bias);
	if (!err && count)
		err = trace_writer__write_sites(rec->writer, sites, count);
	for (size_t i = 0; i < count; i++)
		trace_site__free(&sites[i]);
	free(sites);
	return err;
}

/* Uprobe events arrive in the ring buffer, the agent's in its buffers:
 * with both, the ring buffer is polled briefly so the agent's handovers
 * are not left waiting. */
#define MIXED_POLL_MS 2

/* With drain_at_end the buffers fill as if record could not keep up at
 * all: a test then knows in advance how many events are lost. */
static void wait_undrained(int timeout_ms)
{
	struct timespec pause = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000 };

	nanosleep(&pause, NULL); /* SIGCHLD cuts it short */
}

/* Once a second, what is buffered goes to the file: a recorder killed
 * with SIGKILL loses at most the last second (a chunk per stream and
 * second costs nothing measurable). */
static void checkpoint_now_and_then(struct recorder *rec)
{
	int err;

	if (clock_ns(CLOCK_MONOTONIC) / 1000000000 == rec->last_checkpoint_s || rec->write_error)
		return;
	err = checkpoint(rec);
	if (err)
		write_failed(rec, err);
}

/* Samples go with the events; a failure ends the sampling, not the
 * recording. */
static void drain_samples(struct recorder *rec)
{
	int rc;

	if (!rec->samples.sampler || rec->write_error)
		return;
	rc = sample_sink__drain(&rec->samples, rec->writer);
	if (rc < 0) {
		report_error("profile: reading the samples failed: %s; sampling stops", strerror(-rc));
		sampler__free(rec->samples.sampler);
		rec->samples.sampler = NULL;
		rec->failed = 1;
	}
}

int recorder__poll(struct recorder *rec, int timeout_ms)
{
	int rc = 0;

	if (rec->drain_at_end) {
		wait_undrained(timeout_ms);
		return 0;
	}
	if (rec->agent && !rec->write_error) {
		rc = agent_session__drain(rec->agent, false);
		if (rc < 0 && !rec->write_error) {
			report_error("record: reading the agent's buffers failed: %s", strerror(-rc));
			rec->failed = 1;
			return rc;
		}
	}
	if (rec->uprobes) {
		rc = uprobe_session__poll(rec->uprobes, rec->agent ? MIXED_POLL_MS : timeout_ms);
		if (rc < 0 && rc != -EINTR && !rec->write_error) {
			report_error("record: reading the ring buffer failed: %s", strerror(-rc));
			rec->failed = 1;
			return rc;
		}
	} else if (rec->agent) {
		agent_session__wait(rec->agent, timeout_ms);
	}
	drain_samples(rec);
	checkpoint_now_and_then(rec);
	return rec->write_error;
}

bool recorder__target_exited(struct recorder *rec)
{
	struct pollfd pfd = { .fd = rec->pidfd, .events = POLLIN };

	if (rec->child_pid > 0) {
		pid_t got;

		if (rec->child_reaped)
			return true;
		got = waitpid(rec->child_pid, &rec->wait_status, WNOHANG);
		if (got == rec->child_pid) {
			rec->child_reaped = 1;
			return true;
		}
		return got < 0 && errno == ECHILD;
	}
	if (rec->pidfd >= 0)
		return poll(&pfd, 1, 0) == 1;
	return kill(rec->target_pid, 0) < 0 && errno == ESRCH;
}

void recorder__stop_uprobes(struct recorder *rec)
{
	if (!rec->uprobes)
		return;
	/* Everything the target produced is in the ring buffer by now (its
	 * probes ran synchronously in its threads): take it, then detach. */
	if (!rec->write_error)
		uprobe_session__drain(rec->uprobes);
	uprobe_session__detach(rec->uprobes);
	if (!rec->write_error)
		uprobe_session__drain(rec->uprobes);
}

/* How long a command may take to die of the Ctrl-C it was sent too
 * before record says it is waiting for it. */
#define OUTLIVES_CTRL_C_NS 500000000ull

bool recorder__wait_child(struct recorder *rec, bool terminate, const volatile sig_atomic_t *stops)
{
	sig_atomic_t stops_before = stops ? *stops : 0;
	uint64_t said_at = stops_before ? clock_ns(CLOCK_MONOTONIC) + OUTLIVES_CTRL_C_NS : 0;

	if (rec->child_pid <= 0 || rec->child_reaped)
		return true;
	if (terminate)
		kill(rec->child_pid, SIGTERM);
	/* The agent keeps writing while the target lives: drain as it goes. */
	while (!recorder__target_exited(rec)) {
		struct timespec pause = { 0, 10 * 1000000 };

		if (stops && *stops > stops_before)
			return false;
		if (said_at && clock_ns(CLOCK_MONOTONIC) >= said_at && !(said_at = 0))
			report_info("record: %s (pid %d) goes on after the interrupt: waiting for it to exit "
				    "(interrupt again to stop recording and leave it running)",
				    rec->command_name ? rec->command_name : "the command", (int)rec->child_pid);
		if (rec->agent && !rec->write_error)
			agent_session__drain(rec->agent, false);
		drain_samples(rec);
		nanosleep(&pause, NULL);
	}
	return true;
}

static void final_drain(struct recorder *rec)
{
	int rc;

	if (!rec->agent || rec->write_error)
		return;
	rc = agent_session__drain(rec->agent, true);
	if (rc < 0 && !rec->write_error) {
		report_error("record: reading the agent's buffers failed: %s", strerror(-rc));
		rec->failed = 1;
	}
}

int recorder__finish(struct recorder *rec, enum trace_end_reason reason)
{
	struct trace_trailer trailer = { .end_reason = reason, .exit_status = -1 };
	int err;

	recorder__stop_uprobes(rec);
	final_drain(rec);
	rec->lost = (rec->uprobes ? uprobe_session__lost(rec->uprobes) : 0) +
		    (rec->agent ? agent_session__lost(rec->agent) : 0);
	trailer.lost = rec->lost;
	trailer.end_clock_ns = clock_ns(CLOCK_MONOTONIC);
	if (rec->child_reaped)
		trailer.exit_status = rec->wait_status;
	err = rec->write_error ? 0 : sample_sink__finish(&rec->samples, rec->writer);
	if (!err)
		err = write_addresses(rec);
	if (!err)
		err = trace_writer__write_threads(rec->writer, rec->threads, rec->thread_count);
	if (!err)
		err = trace_writer__finish(rec->writer, &trailer);
	rec->file_bytes = trace_writer__bytes_written(rec->writer);
	if (err && !rec->write_error)
		report_error("record: cannot write %s: %s", rec->output, strerror(-err));
	return err ? err : rec->write_error;
}

void recorder__print_summary(const struct recorder *rec, const char *output, double seconds)
{
	uint64_t bytes = rec->file_bytes;

	report_info("record: %llu events from %zu thread%s in %.2f s written to %s (%.1f MB, %.1f bytes/event); %llu lost",
		    (unsigned long long)rec->events, rec->thread_count, rec->thread_count == 1 ? "" : "s",
		    seconds, output, bytes / 1e6, rec->events ? (double)bytes / rec->events : 0.0,
		    (unsigned long long)rec->lost);
	if (rec->samples.hz)
		report_info("profile: %llu samples at %u Hz, %llu times off CPU waiting; %llu lost",
			    (unsigned long long)rec->samples.samples, rec->samples.hz,
			    (unsigned long long)rec->samples.switches,
			    (unsigned long long)sampler__lost(rec->samples.sampler));
	if (rec->samples.unwound)
		report_info("profile: %llu stacks unwound with DWARF, %.1f us each",
			    (unsigned long long)rec->samples.unwound,
			    rec->samples.unwind_ns / 1e3 / (double)rec->samples.unwound);
	if (rec->lost)
		report_warning("record: %llu events were lost (%s full): the report counts them; try a larger --buffer-size",
			       (unsigned long long)rec->lost, rec->agent ? "buffers" : "ring buffer");
}

void recorder__close(struct recorder *rec)
{
	trace_writer__free(rec->writer);
	rec->writer = NULL;
	sample_sink__free(&rec->samples);
	uprobe_session__free(rec->uprobes);
	rec->uprobes = NULL;
	agent_session__free(rec->agent);
	rec->agent = NULL;
	if (rec->pidfd >= 0)
		close(rec->pidfd);
	rec->pidfd = -1;
	u64map_free(&rec->thread_index);
	address_book__free(&rec->addresses);
	free(rec->threads);
	rec->threads = NULL;
	free(rec->sites_cache);
	rec->sites_cache = NULL;
}
