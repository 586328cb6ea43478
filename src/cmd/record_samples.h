/* On-CPU samples taken beside the events (asynctrace profile, record -F):
 * drained with the events, written as SAMPLES chunks in batches, their
 * addresses resolved into a FRAMES chunk before the trace is closed. */
#ifndef ASYNCTRACE_CMD_RECORD_SAMPLES_H
#define ASYNCTRACE_CMD_RECORD_SAMPLES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "elf/unwind.h"
#include "probe/frames.h"
#include "probe/sampler.h"
#include "trace/trace.h"
#include "trace/writer.h"
#include "util/u64map.h"

struct sample_sink {
	struct sampler *sampler;     /* NULL: not sampling */
	struct frame_book *frames;
	struct dwarf_unwinder *unwinder; /* --call-graph dwarf, else NULL */
	/* DWARF samples kept as taken (registers, stack copy) to be unwound
	 * later: not while the target runs (the unwinding would take CPU from
	 * it), unless they pass SAMPLE_PENDING_BYTES. */
	struct pending_sample *pending;
	size_t pending_count, pending_cap, pending_bytes;
	uint64_t unwound, unwind_ns;     /* samples unwound with DWARF, and the time it took */
	pid_t pid;
	unsigned hz;
	struct trace_sample *batch;
	size_t batch_count, batch_capacity;
	uint64_t *batch_frames;
	size_t batch_frame_count, batch_frame_capacity;
	uint64_t lost_written;       /* of sampler__lost, already in a chunk */
	/* A thread seen first in a sample (it may never poll): told while it
	 * lives, so that its name can still be read. */
	void (*on_thread)(uint32_t pid, uint32_t tid, void *ctx);
	void *thread_ctx;
	struct u64map threads_seen;  /* tid + 1 -> 1 */
	uint64_t samples;            /* on CPU */
	uint64_t switches;           /* voluntary switch-outs */
	int switch_error;            /* why switches are not recorded, 0 they are */
	bool maps_stale;             /* an address outside every mapping seen */
	uint64_t maps_read_ns;
};

/* Starts sampling pid (on_exec: a held child, from its exec on). Says why
 * not, in one line, and returns a negative errno. */
int sample_sink__start(struct sample_sink *s, pid_t pid, unsigned hz, bool on_exec, bool dwarf, uint16_t machine);
/* Takes what the kernel holds; writes full batches. */
int sample_sink__drain(struct sample_sink *s, struct trace_writer *w);
/* The last batch and the frames. Returns 0 or a negative errno. */
int sample_sink__finish(struct sample_sink *s, struct trace_writer *w);
void sample_sink__free(struct sample_sink *s);

#endif
