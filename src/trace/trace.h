/* The event model every capture backend produces and every analysis reads.
 * Nothing here knows how events were captured (eBPF uprobes today, an
 * in-process agent or an imported log later). */
#ifndef ASYNCTRACE_TRACE_TRACE_H
#define ASYNCTRACE_TRACE_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "trace/function_kinds.h"

enum trace_event_kind {
	TRACE_EVENT_ENTRY = 1, /* a probed function was entered */
	TRACE_EVENT_EXIT = 2,  /* it returned or tail-called away */
};

/* Event flags (on disk). */
#define TRACE_EVENT_ARG1_FROM_MEMORY 0x1 /* exit: arg1 was read at the returned pointer */
#define TRACE_EVENT_READ_FAILED 0x2      /* ... and that read failed */
#define TRACE_EVENT_STATE 0x4            /* exit: aux = the future's state discriminant */
#define TRACE_EVENT_RETURN_ADDRESS 0x8   /* entry: aux = the return address */
/* entry of an inlined async body (TRACE_FUNCTION_INLINED) at an await's
 * resume point rather than its start (the bit exits use for ARG1_FROM_MEMORY) */
#define TRACE_EVENT_RESUMED 0x1

/* One event, as readers hand it out: the on-disk record of 2.x files (56
 * bytes, little-endian); 3.x files encode it (trace/codec.h), keeping what
 * the analyses read. What an event means depends on its function's role
 * (enum function_role): a poll's entry and exit, a wake, a spawn, a task's
 * allocation or release, a drop. */
struct trace_event {
	uint64_t ts;      /* ns, clock given in trace_meta.clock */
	uint64_t sp;      /* stack pointer at the probed instruction */
	uint64_t arg0;    /* entry: 1st argument; exit: 1st return register */
	uint64_t arg1;    /* entry: 2nd argument; exit: 2nd return register or memory word */
	uint64_t aux;     /* entry: return address; exit: state discriminant (flags say) */
	uint32_t pid;
	uint32_t tid;
	uint32_t func_id; /* index into the function table */
	uint16_t cpu;
	uint8_t kind;     /* enum trace_event_kind */
	uint8_t flags;    /* TRACE_EVENT_* */
};

/* Why recording stopped (trailer). */
enum trace_end_reason {
	TRACE_END_TARGET_EXITED = 1,
	TRACE_END_SIGNAL = 2,    /* SIGINT / SIGTERM to the tracer */
	TRACE_END_DURATION = 3,  /* --duration elapsed */
	TRACE_END_IMPORTED = 4,  /* made by `import` from another tool's recording */
};

struct trace_meta {
	uint32_t clock;            /* CLOCK_MONOTONIC for BPF's bpf_ktime_get_ns */
	uint32_t pid;              /* traced process */
	uint64_t start_realtime_ns;
	uint64_t start_clock_ns;   /* the same instant on `clock` */
	uint16_t machine;          /* e_machine of the target */
	uint8_t build_id_len;
	uint8_t build_id[20];
	char *target_path;         /* owned */
	char *command;             /* owned; command line, space separated */
	char *capture;             /* owned; e.g. "ebpf-uprobe" */
};

struct trace_function {
	uint64_t addr;
	uint64_t size;
	uint8_t context;           /* enum context_class */
	uint8_t body;              /* enum body_kind */
	uint8_t self_arg;          /* argument holding the future */
	struct poll_result_layout result;
	uint32_t exit_sites;       /* exit probes placed; 0 = exits not observed */
	uint32_t source_line;
	uint8_t role;              /* enum function_role */
	uint8_t runtime;           /* enum runtime_kind */
	uint32_t target;           /* ROLE_DROP: the poll function whose future it drops */
	uint16_t state_offset;     /* async bodies: the state discriminant */
	uint8_t state_size;        /* 0: unknown */
	uint32_t await_count;
	struct await_point *awaits; /* owned, sorted by state */
	char *name;                /* owned, demangled */
	char *mangled;             /* owned */
	char *source_file;         /* owned, may be NULL */
	uint32_t flags;            /* TRACE_FUNCTION_* (format 3.1; 0 in older files) */
};

/* An async body rustc inlined into another function (release builds):
 * addr is where its state dispatch runs, once per poll; no exits are
 * probed, so each poll ends with its caller's or at the next event that
 * leaves it (docs/release-mode.md). */
#define TRACE_FUNCTION_INLINED 0x1u
/* ... whose host's loop re-enters it past its dispatch: polls may be missed */
#define TRACE_FUNCTION_APPROXIMATE 0x2u
/* an inlined async body found without a state dispatch: listed (after the
 * probed functions, no events) so that reports say it was not counted */
#define TRACE_FUNCTION_UNCOUNTED 0x4u
/* an inlined async body that could have been counted but this recording
 * left out (record without --inlined): listed likewise, no events */
#define TRACE_FUNCTION_UNPROBED 0x8u

/* The .await a future in `state` is parked at, or NULL. */
const struct await_point *trace_function__await(const struct trace_function *fn, uint64_t state);
/* Its source line, or 0. */
uint32_t trace_function__await_line(const struct trace_function *fn, uint64_t state);
/* The file of the .await at `line` (the function's own, unless a macro's). */
const char *trace_function__await_file(const struct trace_function *fn, uint32_t line);

struct trace_thread {
	uint32_t tid;
	char name[16];             /* comm */
};

/* A code address seen in the trace (spawn sites), resolved at record time
 * while the binary was at hand. */
struct trace_site {
	uint64_t addr;             /* as seen in the process */
	uint32_t line;
	char *file;                /* owned, may be NULL */
	char *function;            /* owned, may be NULL */
};

/* An on-CPU sample: its user frames are frame_count addresses from
 * first_frame on in the trace's frame array, the sampled one first. */
struct trace_sample {
	uint64_t ts;
	uint32_t tid;
	uint16_t kind;             /* enum trace_sample_kind */
	uint16_t frame_count;
	uint64_t first_frame;
};

/* On-CPU samples, and with switches recorded a thread's comings and goings. */
enum trace_sample_kind {
	TRACE_SAMPLE_ON_CPU = 0,
	TRACE_SAMPLE_BLOCKED_AT = 1, /* the user stack where it left the CPU */
	TRACE_SAMPLE_SWITCH_OUT = 2, /* it slept or blocked */
	TRACE_SAMPLE_PREEMPTED = 3,  /* it was preempted, still runnable */
	TRACE_SAMPLE_SWITCH_IN = 4,
	TRACE_SAMPLE_KINDS
};

struct trace_trailer {
	uint64_t events;
	uint64_t lost;
	uint64_t end_clock_ns;
	uint32_t end_reason;       /* enum trace_end_reason */
	int32_t exit_status;       /* target's wait status, -1 when unknown */
};

void trace_meta__free(struct trace_meta *meta);
void trace_function__free(struct trace_function *fn);
/* first[i]: the lowest id whose function has fns[i]'s name (the copies of
 * one generic are one row, one group). Returns 0 or -ENOMEM. */
int trace_functions__first_of_name(const struct trace_function *fns, size_t count, uint32_t *first);
void trace_site__free(struct trace_site *site);
const char *trace_end_reason__name(uint32_t reason);

#endif
