/* Reading on-CPU samples (samples.h). Samples stay in memory: at a
 * profiler's rates (99-999 Hz per CPU) a minute is tens of thousands, and
 * attributing them to polls (trace/profile.c) wants them by thread and
 * time. */
#include "trace/samples.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "trace/format.h"
#include "trace/reader.h"
#include "util/array.h"

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static int reserve_samples(struct trace_file *t, size_t samples, size_t frames)
{
	if (ARRAY_RESERVE(t->samples, t->sample_cap, t->sample_count + samples) ||
	    ARRAY_RESERVE(t->sample_frames, t->sample_frame_cap, t->sample_frame_count + frames + 1))
		return -ENOMEM;
	return 0;
}

static int parse_samples(struct trace_file *t, const uint8_t *p, size_t left, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		struct trace_sample s;

		if (left < 16)
			return -EINVAL;
		s.ts = get_u64(p);
		s.tid = get_u32(p + 8);
		memcpy(&s.kind, p + 12, 2);
		memcpy(&s.frame_count, p + 14, 2);
		if (s.kind >= TRACE_SAMPLE_KINDS)
			return -EINVAL;
		p += 16;
		left -= 16;
		if (s.frame_count > TRACE_MAX_SAMPLE_FRAMES || s.frame_count > left / 8)
			return -EINVAL;
		if (reserve_samples(t, 1, s.frame_count))
			return -ENOMEM;
		s.first_frame = t->sample_frame_count;
		for (uint32_t f = 0; f < s.frame_count; f++)
			t->sample_frames[t->sample_frame_count++] = get_u64(p + 8 * f);
		p += 8 * (size_t)s.frame_count;
		left -= 8 * (size_t)s.frame_count;
		t->samples[t->sample_count++] = s;
	}
	return left ? -EINVAL : 0;
}

int trace_samples__add_chunk(struct trace_file *t, const uint8_t *payload, size_t size)
{
	struct trace_samples_header h;
	size_t body;
	size_t before = t->sample_count, frames_before = t->sample_frame_count;
	int err;

	if (size < sizeof(h))
		return -EINVAL;
	memcpy(&h, payload, sizeof(h));
	if (h.flags)
		return -ENOTSUP;
	body = size - sizeof(h);
	/* The chunk is padded to 8 bytes: the samples are a multiple of 8. */
	if ((uint32_t)crc32(0, payload + sizeof(h), (uInt)body) != h.crc32)
		return -EBADMSG;
	err = parse_samples(t, payload + sizeof(h), body, h.count);
	if (err) {
		t->sample_count = before;
		t->sample_frame_count = frames_before;
		return err;
	}
	t->samples_lost += h.lost;
	if (h.hz)
		t->sample_hz = h.hz;
	return 0;
}

static int cmp_samples(const void *a, const void *b)
{
	const struct trace_sample *x = a, *y = b;

	if (x->tid != y->tid)
		return x->tid < y->tid ? -1 : 1;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->first_frame < y->first_frame ? -1 : x->first_frame > y->first_frame;
}

static int cmp_frames(const void *a, const void *b)
{
	const struct trace_site *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

int trace_samples__finish(struct trace_file *t)
{
	if (t->sample_count)
		qsort(t->samples, t->sample_count, sizeof(*t->samples), cmp_samples);
	if (t->frame_count)
		qsort(t->frames, t->frame_count, sizeof(*t->frames), cmp_frames);
	return 0;
}

const struct trace_site *trace_file__frame(const struct trace_file *t, uint64_t addr)
{
	struct trace_site key = { .addr = addr };

	return t->frame_count ? bsearch(&key, t->frames, t->frame_count, sizeof(key), cmp_frames) : NULL;
}
