/* Samples beside the events (record_samples.h). */
#include "cmd/record_samples.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/array.h"
#include "util/error.h"

#define BATCH_SAMPLES 4096
#define UNWIND_MAX_FRAMES 128
/* 8 KiB a sample: some 2,000 samples, a second at 999 Hz on two CPUs
 * (what a killed tracer can lose, with the batch not yet written). */
#define SAMPLE_PENDING_BYTES (16u << 20)
#define MAX_SAMPLE_REGS 32

struct pending_sample {
	struct cpu_sample sample;  /* its pointers into the copies below */
	uint64_t regs[MAX_SAMPLE_REGS];
	uint8_t *stack;
};
/* A library loaded while the target runs is seen at the next drain that
 * meets one of its addresses, but /proc/PID/maps is read at most this
 * often. */
#define MAPS_INTERVAL_NS (50 * 1000000ULL)

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int sample_sink__start(struct sample_sink *s, pid_t pid, unsigned hz, bool on_exec, bool dwarf, uint16_t machine)
{
	int err = frame_book__new(&s->frames);

	if (!err && dwarf && (err = dwarf_unwinder__new(&s->unwinder, pid, machine)) == -ENOTSUP) {
		report_error("profile: --call-graph dwarf: no DWARF unwinding for this machine's binaries");
		return err;
	}
	if (!err)
		err = sampler__open(&s->sampler, pid, hz, on_exec, s->unwinder ? dwarf_unwinder__regs_mask(s->unwinder) : 0);
	/* Without them, no blocking polls: said once, the profile goes on. */
	if (!err && (s->switch_error = sampler__add_switches(s->sampler)))
		report_warning("profile: no context switches (%s: they need root or kernel.perf_event_paranoid <= 1): "
			       "blocking polls will not be found", strerror(-s->switch_error));
	if (err == -EACCES || err == -EPERM)
		report_error("profile: perf_event_open: %s (kernel.perf_event_paranoid is above 2, or the target "
			     "is another user's: run as root or lower it with sysctl kernel.perf_event_paranoid=2)",
			     strerror(-err));
	else if (err)
		report_error("profile: cannot sample process %d: %s", (int)pid, strerror(-err));
	s->pid = pid;
	s->hz = hz;
	s->maps_stale = true;
	return err;
}

static int flush_batch(struct sample_sink *s, struct trace_writer *w)
{
	uint64_t lost = sampler__lost(s->sampler);
	int err;

	if (!s->batch_count && lost == s->lost_written)
		return 0;
	err = trace_writer__write_samples(w, s->batch, s->batch_count, s->batch_frames, s->hz,
					  lost - s->lost_written);
	s->lost_written = lost;
	s->batch_count = s->batch_frame_count = 0;
	return err;
}

/* DWARF mode: the sample's stack copy unwound now, while the process's
 * mappings can still be read. */
static void unwind(struct sample_sink *s, struct cpu_sample *sample, uint64_t *pcs, size_t max)
{
	uint64_t t0 = monotonic_ns();

	sample->frame_count = (uint32_t)dwarf_unwinder__unwind(s->unwinder, (pid_t)sample->tid, sample->regs,
							       sample->stack, sample->stack_len, pcs, max);
	sample->frames = pcs;
	s->unwind_ns += monotonic_ns() - t0;
	s->unwound++;
}

static int add_sample(struct sample_sink *s, const struct cpu_sample *raw);

/* Remembers an address to name; a new one outside the mappings seen makes
 * the next drain read /proc/PID/maps again. */
static int note_address(struct sample_sink *s, uint64_t addr)
{
	int fresh = frame_book__note(s->frames, addr);

	if (fresh > 0 && !s->maps_stale && !frame_book__covers(s->frames, addr))
		s->maps_stale = true;
	return fresh;
}

/* Every sample kept for later, unwound and into the batch. */
static int unwind_pending(struct sample_sink *s)
{
	int err = 0;

	for (size_t i = 0; i < s->pending_count; i++) {
		s->pending[i].sample.regs = s->pending[i].regs; /* the array may have moved since */
		if (!err)
			err = add_sample(s, &s->pending[i].sample);
		free(s->pending[i].stack);
	}
	s->pending_count = s->pending_bytes = 0;
	return err;
}

/* A DWARF sample, copied to be unwound later; 1 when kept, 0 when there is
 * no room (unwind it now), or -ENOMEM. */
static int keep_for_later(struct sample_sink *s, const struct cpu_sample *raw)
{
	struct pending_sample *p;

	if (s->pending_bytes + raw->stack_len > SAMPLE_PENDING_BYTES || raw->reg_count > MAX_SAMPLE_REGS)
		return 0;
	if (ARRAY_RESERVE(s->pending, s->pending_cap, s->pending_count + 1))
		return -ENOMEM;
	p = &s->pending[s->pending_count];
	p->sample = *raw;
	memcpy(p->regs, raw->regs, raw->reg_count * sizeof(*p->regs));
	p->stack = malloc(raw->stack_len + 1);
	if (!p->stack)
		return -ENOMEM;
	memcpy(p->stack, raw->stack, raw->stack_len);
	p->sample.stack = p->stack;
	s->pending_count++;
	s->pending_bytes += raw->stack_len;
	/* Its mappings are read now, while they can be: the frames are named
	 * from them at the end. */
	return note_address(s, dwarf_unwinder__prepare(s->unwinder, raw->regs)) < 0 ? -ENOMEM : 1;
}

static int on_sample(const struct cpu_sample *raw, void *ctx)
{
	struct sample_sink *s = ctx;
	int kept;

	if (s->on_thread && !u64map_get(&s->threads_seen, (uint64_t)raw->tid + 1) &&
	    u64map_put(&s->threads_seen, (uint64_t)raw->tid + 1, (void *)1) == 0)
		s->on_thread(raw->pid, raw->tid, s->thread_ctx);

	if (!s->unwinder || !raw->regs)
		return add_sample(s, raw);
	kept = keep_for_later(s, raw);
	if (kept)
		return kept < 0 ? kept : 0;
	kept = unwind_pending(s); /* full: the backlog goes now */
	return kept ? kept : add_sample(s, raw);
}

/* Frames after the first are return addresses: kept as the call's last
 * byte (minus one), whose line is the call's. */
static int add_sample(struct sample_sink *s, const struct cpu_sample *raw)
{
	struct cpu_sample unwound = *raw;
	const struct cpu_sample *sample = raw;
	uint64_t pcs[UNWIND_MAX_FRAMES];
	struct trace_sample *t;

	if (s->unwinder && raw->regs) {
		unwind(s, &unwound, pcs, UNWIND_MAX_FRAMES);
		sample = &unwound;
	}

	if (ARRAY_RESERVE(s->batch, s->batch_capacity, s->batch_count + 1) ||
	    ARRAY_RESERVE(s->batch_frames, s->batch_frame_capacity, s->batch_frame_count + sample->frame_count))
		return -ENOMEM;
	t = &s->batch[s->batch_count++];
	*t = (struct trace_sample){ .ts = sample->ts, .tid = sample->tid, .kind = (uint16_t)sample->kind,
				    .frame_count = (uint16_t)sample->frame_count, .first_frame = s->batch_frame_count };
	for (uint32_t i = 0; i < sample->frame_count; i++) {
		uint64_t addr = sample->frames[i] - (i > 0);
		int fresh = note_address(s, addr);

		if (fresh < 0)
			return fresh;
		s->batch_frames[s->batch_frame_count++] = addr;
	}
	s->samples += sample->kind == SAMPLE_ON_CPU;
	s->switches += sample->kind == SAMPLE_SWITCH_OUT;
	return 0;
}

int sample_sink__drain(struct sample_sink *s, struct trace_writer *w)
{
	int err;

	if (!s->sampler)
		return 0;
	err = sampler__drain(s->sampler, on_sample, s);
	if (!err && s->maps_stale && monotonic_ns() - s->maps_read_ns >= MAPS_INTERVAL_NS) {
		/* best effort: a process that is gone keeps the mappings seen */
		frame_book__read_maps(s->frames, s->pid);
		s->maps_read_ns = monotonic_ns();
		s->maps_stale = false;
	}
	if (!err && s->batch_count >= BATCH_SAMPLES)
		err = flush_batch(s, w);
	return err;
}

int sample_sink__finish(struct sample_sink *s, struct trace_writer *w)
{
	struct trace_site *frames = NULL;
	size_t count = 0;
	int err;

	if (!s->sampler)
		return 0;
	err = sampler__drain(s->sampler, on_sample, s);
	if (!err)
		err = unwind_pending(s);
	if (!err)
		err = flush_batch(s, w);
	if (!err)
		err = frame_book__resolve(s->frames, &frames, &count);
	if (!err)
		err = trace_writer__write_frames(w, frames, count);
	for (size_t i = 0; i < count; i++)
		trace_site__free(&frames[i]);
	free(frames);
	return err;
}

void sample_sink__free(struct sample_sink *s)
{
	sampler__free(s->sampler);
	for (size_t i = 0; i < s->pending_count; i++)
		free(s->pending[i].stack);
	free(s->pending);
	u64map_free(&s->threads_seen);
	dwarf_unwinder__free(s->unwinder);
	frame_book__free(s->frames);
	free(s->batch);
	free(s->batch_frames);
	memset(s, 0, sizeof(*s));
}
