#include <errno.h>
#include <string.h>

#include "export/perfetto_seq.h"
#include "trace/function_kinds.h"
#include "trace/polls.h"

/* TracePacket */
#define PF_CLOCK_SNAPSHOT 6
#define PF_SEQUENCE_ID 10
#define PF_INTERNED_DATA 12
#define PF_SEQUENCE_FLAGS 13
#define PF_TIMESTAMP_CLOCK_ID 58
#define PF_DEFAULTS 59
/* TracePacketDefaults, TrackEventDefaults */
#define PF_DEFAULTS_TRACK_EVENT 11
#define PF_DEFAULTS_CLOCK_ID 58
#define PF_TE_DEFAULTS_TRACK_UUID 11
/* ClockSnapshot, ClockSnapshot.Clock */
#define PF_CS_CLOCKS 1
#define PF_CS_PRIMARY_TRACE_CLOCK 2
#define PF_CLOCK_ID 1
#define PF_CLOCK_TIMESTAMP 2
#define PF_CLOCK_IS_INCREMENTAL 3
/* InternedData: entries are {iid = 1, name (or str) = 2} */
#define PF_ID_EVENT_CATEGORIES 1
#define PF_ID_EVENT_NAMES 2
#define PF_ID_ANNOTATION_NAMES 3
#define PF_ID_ANNOTATION_STRINGS 29

#define SEQ_INCREMENTAL_STATE_CLEARED 1
#define SEQ_NEEDS_INCREMENTAL_STATE 2

static const char *const arg_names[] = {
	[PF_ARG_FUTURE] = "future",
	[PF_ARG_RESULT] = "result",
	[PF_ARG_END] = "end",
	[PF_ARG_DEPTH] = "depth",
	[PF_ARG_CPU] = "cpu",
	[PF_ARG_PARKED_AT_LINE] = "parked_at_line",
	[PF_ARG_LOCATION] = "location",
	[PF_ARG_TASK] = "task",
};

void pf_seq__init(struct pf_seq *s, uint32_t id)
{
	*s = (struct pf_seq){ .id = id, .value_count = PF_VALUE_FIRST_FREE - 1 };
}

void pf_seq__free(struct pf_seq *s)
{
	u64map_free(&s->names);
	u64map_free(&s->values);
	buf_free(&s->interned);
}

static void intern_entry(struct buf *b, uint32_t field, uint64_t iid, const char *str)
{
	size_t m = pb_begin(b, field);

	pb_uint(b, 1, iid);
	pb_string(b, 2, str);
	pb_end(b, m);
}

static void fixed_interned(struct buf *b)
{
	size_t m = pb_begin(b, PF_INTERNED_DATA);

	for (unsigned c = CONTEXT_TASK; c <= CONTEXT_FUNCTION; c++)
		intern_entry(b, PF_ID_EVENT_CATEGORIES, PF_CAT_CONTEXT + c, context_class__name(c));
	intern_entry(b, PF_ID_EVENT_CATEGORIES, PF_CAT_WAKE, "wake");
	intern_entry(b, PF_ID_EVENT_CATEGORIES, PF_CAT_CANCEL, "cancel");
	intern_entry(b, PF_ID_EVENT_CATEGORIES, PF_CAT_UNKNOWN, "unknown");
	for (unsigned a = PF_ARG_FUTURE; a <= PF_ARG_TASK; a++)
		intern_entry(b, PF_ID_ANNOTATION_NAMES, a, arg_names[a]);
	for (unsigned r = POLL_RESULT_UNKNOWN; r <= POLL_RESULT_PENDING; r++)
		intern_entry(b, PF_ID_ANNOTATION_STRINGS, PF_VALUE_RESULT + r, poll_result__name(r));
	for (unsigned e = POLL_END_RETURNED; e <= POLL_END_UNFINISHED; e++)
		intern_entry(b, PF_ID_ANNOTATION_STRINGS, PF_VALUE_END + e, poll_end__name(e));
	pb_end(b, m);
}

size_t pf_seq__begin_packet(struct pf_seq *s, struct pb_writer *w)
{
	size_t mark = pb_writer__begin_packet(w);

	pb_uint(&w->bundle, PF_SEQUENCE_ID, s->id);
	return mark;
}

size_t pf_seq__begin_first(struct pf_seq *s, struct pb_writer *w, uint64_t default_track)
{
	struct buf *b = &w->bundle;
	size_t mark = pf_seq__begin_packet(s, w), defaults;

	pb_uint(b, PF_SEQUENCE_FLAGS, SEQ_INCREMENTAL_STATE_CLEARED);
	defaults = pb_begin(b, PF_DEFAULTS);
	pb_uint(b, PF_DEFAULTS_CLOCK_ID, PF_CLOCK_INCREMENTAL);
	if (default_track) {
		size_t te = pb_begin(b, PF_DEFAULTS_TRACK_EVENT);

		pb_uint(b, PF_TE_DEFAULTS_TRACK_UUID, default_track);
		pb_end(b, te);
	}
	pb_end(b, defaults);
	fixed_interned(b);
	s->started = true;
	return mark;
}

static void clock(struct buf *b, uint32_t id, uint64_t ts, bool incremental)
{
	size_t m = pb_begin(b, PF_CS_CLOCKS);

	pb_uint(b, PF_CLOCK_ID, id);
	pb_uint(b, PF_CLOCK_TIMESTAMP, ts);
	if (incremental)
		pb_uint(b, PF_CLOCK_IS_INCREMENTAL, 1);
	pb_end(b, m);
}

int pf_seq__start_clock(struct pf_seq *s, struct pb_writer *w, uint64_t origin, bool primary)
{
	struct buf *b = &w->bundle;
	size_t mark = pf_seq__begin_packet(s, w);
	size_t snapshot = pb_begin(b, PF_CLOCK_SNAPSHOT);

	clock(b, PF_CLOCK_MONOTONIC, origin, false);
	clock(b, PF_CLOCK_INCREMENTAL, origin, true);
	if (primary)
		pb_uint(b, PF_CS_PRIMARY_TRACE_CLOCK, PF_CLOCK_MONOTONIC);
	pb_end(b, snapshot);
	s->clock_started = true;
	s->last_ts = origin;
	return pb_writer__end_packet(w, mark);
}

int pf_seq__begin_event(struct pf_seq *s, struct pb_writer *w, uint64_t ts)
{
	struct buf *b = &w->bundle;
	int err = s->clock_started ? 0 : pf_seq__start_clock(s, w, ts, false);

	if (err)
		return err;
	s->packet_mark = pf_seq__begin_packet(s, w);
	pb_uint(b, PF_SEQUENCE_FLAGS, SEQ_NEEDS_INCREMENTAL_STATE);
	if (ts >= s->last_ts) {
		pb_uint(b, PF_TIMESTAMP, ts - s->last_ts);
		s->last_ts = ts;
	} else {
		/* An event before the previous one has no delta: its absolute
		 * time, on the clock the deltas are defined against. */
		pb_uint(b, PF_TIMESTAMP, ts);
		pb_uint(b, PF_TIMESTAMP_CLOCK_ID, PF_CLOCK_MONOTONIC);
	}
	s->event_mark = pb_begin(b, PF_TRACK_EVENT);
	return b->err;
}

static uint64_t intern(struct pf_seq *s, struct u64map *map, uint64_t *count, uint32_t field, uint64_t key,
		       const char *str)
{
	uintptr_t iid = (uintptr_t)u64map_get(map, key + 1);

	if (iid)
		return iid;
	iid = (uintptr_t)++*count;
	if (u64map_put(map, key + 1, (void *)iid)) {
		s->interned.err = -ENOMEM;
		return 0;
	}
	intern_entry(&s->interned, field, iid, str);
	return iid;
}

uint64_t pf_seq__name(struct pf_seq *s, uint64_t key, const char *name)
{
	return intern(s, &s->names, &s->name_count, PF_ID_EVENT_NAMES, key, name);
}

uint64_t pf_seq__value(struct pf_seq *s, uint64_t key, const char *value)
{
	return intern(s, &s->values, &s->value_count, PF_ID_ANNOTATION_STRINGS, key, value);
}

uint64_t pf_seq__value_iid(const struct pf_seq *s, uint64_t key)
{
	return (uintptr_t)u64map_get(&s->values, key + 1);
}

int pf_seq__end_event(struct pf_seq *s, struct pb_writer *w)
{
	struct buf *b = &w->bundle;

	pb_end(b, s->event_mark);
	if (s->interned.err)
		return s->interned.err;
	if (s->interned.len) {
		pb_bytes(b, PF_INTERNED_DATA, s->interned.data, s->interned.len);
		s->interned.len = 0;
	}
	return pb_writer__end_packet(w, s->packet_mark);
}

static void arg(struct buf *b, enum pf_arg name, uint32_t field, uint64_t value)
{
	size_t m = pb_begin(b, PF_TE_DEBUG_ANNOTATIONS);

	pb_uint(b, PF_DA_NAME_IID, name);
	pb_uint(b, field, value);
	pb_end(b, m);
}

void pf_arg_uint(struct buf *b, enum pf_arg name, uint64_t value)
{
	arg(b, name, PF_DA_UINT_VALUE, value);
}

void pf_arg_pointer(struct buf *b, enum pf_arg name, uint64_t value)
{
	arg(b, name, PF_DA_POINTER_VALUE, value);
}

void pf_arg_value(struct buf *b, enum pf_arg name, uint64_t value_iid)
{
	arg(b, name, PF_DA_STRING_VALUE_IID, value_iid);
}
