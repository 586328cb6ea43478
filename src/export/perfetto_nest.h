/* The Perfetto export's slice nesting, apart from its protobuf framing:
 * a group's polls (reaching the exporter at their end, inner first) as
 * slices per track, turned into BEGIN/END events that nest on each track
 * and sorted by time (the order a sequence's timestamps want). */
#ifndef ASYNCTRACE_EXPORT_PERFETTO_NEST_H
#define ASYNCTRACE_EXPORT_PERFETTO_NEST_H

#include <stddef.h>
#include <stdint.h>

#include "trace/polls.h"

enum pf_kind {
	PF_BEGIN,   /* a poll's slice on a thread or task track */
	PF_END,
};

struct pf_slice {
	uint64_t start;
	uint64_t end;
	uint64_t track;
	uint32_t poll;   /* index into the group's polls */
	uint16_t depth;
};

struct pf_event {
	uint64_t ts;
	uint64_t track;
	uint32_t order;  /* generation order: keeps each track's nesting at equal ts */
	uint32_t ref;    /* the slice's index */
	uint8_t kind;    /* enum pf_kind */
};

/* Slices and their events, reused from group to group. */
struct pf_nest {
	struct pf_slice *slices;
	size_t slice_count, slice_cap;
	struct pf_event *events;
	size_t event_count, event_cap;
	uint32_t *stack;
	size_t stack_cap;
};

/* A poll's slice on a track (poll: its index in the caller's group).
 * Returns 0 or -ENOMEM. */
int pf_nest__add_slice(struct pf_nest *n, const struct poll *p, uint32_t poll, uint64_t track);
/* The slices as events: per track nested (a child recorded as outliving
 * its parent ends with it), then all by time. Returns 0 or -ENOMEM. */
int pf_nest__events(struct pf_nest *n);
void pf_nest__free(struct pf_nest *n);

#endif
