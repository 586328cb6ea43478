/* A Perfetto packet sequence as the Perfetto SDK writes one per thread:
 * its first packet clears the incremental state and sets the sequence's
 * defaults (timestamps on a sequence-scoped incremental clock, the default
 * track); strings are interned (InternedData) the first time a packet
 * uses them and referred to by iid afterwards; each timestamp is the
 * delta from the previous packet's. Field numbers are upstream's (see
 * perfetto_trace.proto). */
#ifndef ASYNCTRACE_EXPORT_PERFETTO_SEQ_H
#define ASYNCTRACE_EXPORT_PERFETTO_SEQ_H

#include <stdbool.h>
#include <stdint.h>

#include "export/perfetto_pack.h"
#include "util/u64map.h"

/* TracePacket */
#define PF_TIMESTAMP 8
#define PF_TRACK_EVENT 11
#define PF_TRACK_DESCRIPTOR 60
/* TrackEvent */
#define PF_TE_CATEGORY_IIDS 3
#define PF_TE_DEBUG_ANNOTATIONS 4
#define PF_TE_TYPE 9
#define PF_TE_NAME_IID 10
#define PF_TE_TRACK_UUID 11
#define PF_TE_FLOW_IDS 47
#define PF_TE_TERMINATING_FLOW_IDS 48
/* DebugAnnotation */
#define PF_DA_NAME_IID 1
#define PF_DA_UINT_VALUE 3
#define PF_DA_POINTER_VALUE 7
#define PF_DA_STRING_VALUE_IID 17

enum pf_event_type { PF_SLICE_BEGIN = 1, PF_SLICE_END = 2, PF_INSTANT = 3 };

/* Interned on every sequence's first packet, so their iids are fixed. */
enum pf_category {
	PF_CAT_CONTEXT = 1, /* + enum context_class */
	PF_CAT_WAKE = 6,
	PF_CAT_CANCEL = 7,
	PF_CAT_UNKNOWN = 8, /* a context class this build does not know */
};
enum pf_arg {
	PF_ARG_FUTURE = 1,
	PF_ARG_RESULT,
	PF_ARG_END,
	PF_ARG_DEPTH,
	PF_ARG_CPU,
	PF_ARG_PARKED_AT_LINE,
	PF_ARG_LOCATION,
	PF_ARG_TASK,
};
enum pf_value {
	PF_VALUE_RESULT = 1, /* + enum poll_result */
	PF_VALUE_END = 4,    /* + enum poll_end */
	PF_VALUE_FIRST_FREE = 7,
};

/* The sequence-scoped clock our timestamps are deltas on (ids 64..127
 * are the sequence's own), defined against CLOCK_MONOTONIC: the clock
 * the recording's timestamps are in. */
#define PF_CLOCK_INCREMENTAL 64
#define PF_CLOCK_MONOTONIC 3

struct pf_seq {
	uint32_t id;          /* trusted_packet_sequence_id, nonzero */
	bool started;         /* its first packet is written */
	bool clock_started;   /* its ClockSnapshot is written */
	uint64_t last_ts;     /* the incremental clock's value */
	struct u64map names;  /* key + 1 -> event name iid */
	struct u64map values; /* key + 1 -> debug annotation string iid */
	uint64_t name_count, value_count;
	struct buf interned; /* this packet's new InternedData entries */
	size_t packet_mark, event_mark;
};

void pf_seq__init(struct pf_seq *s, uint32_t id);
void pf_seq__free(struct pf_seq *s);
/* The sequence's first packet: SEQ_INCREMENTAL_STATE_CLEARED, the
 * defaults (default_track 0: none) and the fixed interned strings. The
 * caller may add fields (a track descriptor) before ending it with
 * pb_writer__end_packet. Returns the packet's mark. */
size_t pf_seq__begin_first(struct pf_seq *s, struct pb_writer *w, uint64_t default_track);
/* A packet of the sequence without timestamp (a track descriptor). */
size_t pf_seq__begin_packet(struct pf_seq *s, struct pb_writer *w);
/* The incremental clock's origin; primary: make CLOCK_MONOTONIC the
 * trace's clock (once per trace, before any timestamp is converted).
 * begin_event writes it at the first event when not done. */
int pf_seq__start_clock(struct pf_seq *s, struct pb_writer *w, uint64_t origin, bool primary);
/* A TrackEvent packet at ts: its fields go into w->bundle until
 * end_event. Returns 0 or a negative errno. */
int pf_seq__begin_event(struct pf_seq *s, struct pb_writer *w, uint64_t ts);
/* Iids of strings interned on first use, by the caller's key (unique
 * per string); the entry goes into the current packet. */
uint64_t pf_seq__name(struct pf_seq *s, uint64_t key, const char *name);
uint64_t pf_seq__value(struct pf_seq *s, uint64_t key, const char *value);
/* The iid of a string interned under key, or 0: lets a caller skip
 * building a string that is already interned. */
uint64_t pf_seq__value_iid(const struct pf_seq *s, uint64_t key);
int pf_seq__end_event(struct pf_seq *s, struct pb_writer *w);

/* Debug annotations, by fixed name iid. */
void pf_arg_uint(struct buf *b, enum pf_arg name, uint64_t value);
void pf_arg_pointer(struct buf *b, enum pf_arg name, uint64_t value);
void pf_arg_value(struct buf *b, enum pf_arg name, uint64_t value_iid);

#endif
