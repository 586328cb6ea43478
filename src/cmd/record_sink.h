/* The sink of `record`: takes the events of either capture backend (the
 * eBPF uprobe session, the in-process agent's buffers, or both at once),
 * names threads as they appear, and writes the trace file. It also follows
 * the target: whether it still runs, and its exit status. It says what
 * happened in the command's words, so it lives with the command, above
 * the capture backends in probe/. */
#ifndef ASYNCTRACE_CMD_RECORD_SINK_H
#define ASYNCTRACE_CMD_RECORD_SINK_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "elf/pollfn.h"
#include "probe/addresses.h"
#include "probe/agent_session.h"
#include "probe/uprobe.h"
#include "cmd/record_samples.h"
#include "trace/trace.h"
#include "trace/writer.h"
#include "util/u64map.h"

struct recorder {
	struct uprobe_session *uprobes; /* NULL when every function is traced in process */
	struct agent_session *agent;    /* NULL for the uprobe backend */
	struct trace_writer *writer;
	struct u64map thread_index;  /* tid + 1 -> index + 1 into threads */
	struct trace_thread *threads;
	size_t thread_count;
	size_t thread_capacity;
	pid_t target_pid;
	pid_t child_pid;             /* > 0 when we started the target */
	int pidfd;                   /* -p: becomes readable when the target exits */
	int wait_status;
	int child_reaped;
	int left_running;    /* interrupted twice: not waited for */
	int exec_failed;
	int failed;
	int write_error;             /* negative errno of the first failed write */
	bool drain_at_end;           /* take no event before the recording ends (a test hook) */
	uint64_t last_checkpoint_s;  /* CLOCK_MONOTONIC second of the last trace_writer__checkpoint */
	uint64_t lost;
	uint64_t events;
	uint64_t file_bytes;         /* the trace's size once finished */
	const char *command_name;
	const char *output;
	const struct poll_fn_list *fns; /* what the func_ids of events index */
	const char *binary;          /* the probed file (for addresses and lines) */
	struct address_book addresses; /* spawn sites */
	struct sample_sink samples;  /* on-CPU samples (profile), or none */
	char *sites_cache;           /* sites resolved by earlier recordings of this binary, or NULL */
};

int recorder__open_output(struct recorder *rec, const char *path);
/* Meta and function table; before any event. binary: the file probed;
 * shown: its name for people; exits[func_id]: exit sites observed (the
 * in-process backend sees every exit: 1); capture: how events were taken
 * ("ebpf-uprobe", "inproc", "inproc+ebpf-uprobe"). */
int recorder__write_header(struct recorder *rec, const char *binary, const char *shown,
			   char *const *command, const struct poll_fn_list *fns,
			   const uint32_t *exits, const char *capture);
/* Where the target's binary is mapped, while it runs (after attach, or
 * after a held command was released). */
void recorder__locate_target(struct recorder *rec);
/* probe_event_fn for the uprobe session. */
int recorder__on_event(const struct probe_event *event, void *ctx);
/* The agent session's callbacks. */
struct agent_session_callbacks recorder__agent_callbacks(struct recorder *rec);
/* Hands over what the backends hold now (waiting up to timeout_ms for the
 * uprobe ring buffer; with drain_at_end, only waits). Returns 0 or a
 * negative errno (already reported). */
int recorder__poll(struct recorder *rec, int timeout_ms);
/* Names the threads met first in samples (call once sampling started). */
void recorder__follow_sampled_threads(struct recorder *rec);
/* Has the target exited? Our own child is reaped and its status kept. */
bool recorder__target_exited(struct recorder *rec);
/* Ends the uprobes (drained, then detached): the target runs on untraced
 * by them. */
void recorder__stop_uprobes(struct recorder *rec);
/* Waits for our child to exit (after SIGTERM when `terminate`), draining
 * the agent's buffers meanwhile. */
/* Waits for the command to exit (SIGTERM first when `terminate`). A
 * command that outlives a Ctrl-C (it ignores SIGINT) is said to, once; a
 * further stop signal (*stops grows past its value at the call) stops the
 * wait: false, the command left running. `stops` may be NULL. */
bool recorder__wait_child(struct recorder *rec, bool terminate, const volatile sig_atomic_t *stops);
/* Final drain, threads, sites and the trailer. Returns 0 or a negative
 * errno (already reported). */
int recorder__finish(struct recorder *rec, enum trace_end_reason reason);
void recorder__print_summary(const struct recorder *rec, const char *output, double seconds);
void recorder__close(struct recorder *rec);

#endif
