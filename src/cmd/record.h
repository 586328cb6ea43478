/* Pieces of `asynctrace record` (record.c: options, target, the run;
 * record_capture.c: setting up the capture backends and their wording). */
#ifndef ASYNCTRACE_CMD_RECORD_H
#define ASYNCTRACE_CMD_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "elf/pollfn.h"
#include "probe/agent_plan.h"
#include "probe/plan.h"
#include "cmd/record_sink.h"
#include "util/spawn.h"

enum call_graph {
	CALL_GRAPH_AUTO = 0, /* frame pointers when the binary keeps them, else DWARF */
	CALL_GRAPH_FP,
	CALL_GRAPH_DWARF,
};

enum record_backend {
	BACKEND_AUTO = 0,   /* inproc for -- CMD, bpf for -p */
	BACKEND_INPROC = 1,
	BACKEND_BPF = 2,
};

struct record_options {
	const char *output;
	char *match;          /* the --match patterns joined into one alternation */
	char *functions;      /* the --function patterns, likewise */
	int no_tasks;         /* --polls-only: no wake/spawn/drop hooks */
	/* release builds' inlined async bodies: 1 --inlined (every one, with
	 * uprobes where the agent cannot patch a site), -1 --no-inlined, 0 the
	 * default: in process only those whose every site the agent patches;
	 * with bpf and -p, every one */
	int inlined;
	int no_cache;         /* --no-cache: analyse the binary afresh */
	double duration;      /* seconds; 0 = until the target exits or a signal */
	pid_t pid;            /* -p */
	char **command;       /* -- CMD ARGS... */
	double buffer_mb;     /* 0: the backend's default */
	enum record_backend backend;
	int verbose;
	int drain_at_end;     /* ASYNCTRACE_DRAIN_AT_END set: drain only when the recording ends (tests) */
	unsigned sample_hz;   /* -F: on-CPU samples per second and CPU; 0 none */
	int call_graph;       /* --call-graph: enum call_graph */
	bool profile;         /* run as `asynctrace profile` */
};

/* One recording's state, shared by the two files. */
struct record_run {
	const struct record_options *o;
	enum record_backend backend;  /* resolved: INPROC or BPF */
	char *path;                   /* the file probed */
	char *shown;                  /* its name for people */
	struct poll_fn_list fns;
	struct agent_plan_set agent_plan;
	bool *by_uprobe;              /* per func_id: traced through uprobes */
	bool uprobes_unavailable;     /* inproc: BPF could not be loaded (no privileges) */
	int uprobes_error;            /* ... and why */
	bool warned_untraced;         /* said that what uprobes should trace is not traced */
	uint32_t *exits;              /* per func_id, for the function table */
	struct probe_site *patched_sites; /* inlined bodies' uprobe sites the agent patched instead */
	size_t patched_site_count;
	struct probe_plan probe_plan;
	struct held_child child;
	struct recorder rec;
	char *agent_library;
};

/* record_capture.c */
/* Picks the backend; says why when auto falls back. */
int record_choose_backend(struct record_run *run);
/* Plans the in-process patches (inproc) and opens what the backend needs
 * before the target starts. */
int record_prepare_capture(struct record_run *run);
/* Starts the command (held before exec) or follows -p. */
int record_start_target(struct record_run *run);
/* Attaches uprobes where needed, releases the command, completes the
 * handshake with the agent, writes the trace header. After it, events
 * flow. */
int record_arm_capture(struct record_run *run);
size_t record_count_by_uprobe(const struct record_run *run);

/* record.c: `record` (default_hz 0: no samples unless -F) and `profile`
 * (default_hz: sampling on). Returns the exit status. */
int record_main(int argc, char **argv, unsigned default_hz);
void record_run__free(struct record_run *run);

#endif
