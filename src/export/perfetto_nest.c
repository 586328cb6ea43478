/* Slices into properly nested BEGIN/END events (perfetto_nest.h). */
#include "export/perfetto_nest.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/array.h"

int pf_nest__add_slice(struct pf_nest *w, const struct poll *p, uint32_t poll, uint64_t track)
{
	if (ARRAY_RESERVE(w->slices, w->slice_cap, w->slice_count + 1))
		return -ENOMEM;
	w->slices[w->slice_count++] = (struct pf_slice){ p->start, p->end, track, poll, p->depth };
	return 0;
}

static int add_event(struct pf_nest *w, uint64_t ts, uint64_t track, uint32_t ref, enum pf_kind kind)
{
	if (ARRAY_RESERVE(w->events, w->event_cap, w->event_count + 1))
		return -ENOMEM;
	w->events[w->event_count] = (struct pf_event){ ts, track, (uint32_t)w->event_count, ref, kind };
	w->event_count++;
	return 0;
}

/* A group is a task poll and the handful of polls inside it: insertion
 * sort (stable, as glibc's qsort is) beats qsort's set-up there, which was
 * a sixth of the export. Larger groups (a worker loop's) go to qsort. */
#define SORT_FEW_MAX 24

static void sort_few(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	uint8_t *items = base, tmp[64];

	if (n > SORT_FEW_MAX || size > sizeof(tmp)) {
		qsort(base, n, size, cmp);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		size_t j = i;

		if (cmp(items + (i - 1) * size, items + i * size) <= 0)
			continue;
		memcpy(tmp, items + i * size, size);
		while (j > 0 && cmp(items + (j - 1) * size, tmp) > 0) {
			memcpy(items + j * size, items + (j - 1) * size, size);
			j--;
		}
		memcpy(items + j * size, tmp, size);
	}
}

static int cmp_slices(const void *a, const void *b)
{
	const struct pf_slice *x = a, *y = b;

	if (x->track != y->track)
		return x->track < y->track ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end) /* the outer of two slices starting together first */
		return x->end > y->end ? -1 : 1;
	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;
	return x->poll < y->poll ? -1 : x->poll > y->poll;
}

/* Whether s, starting when top ends, is top's child rather than its next
 * sibling: only a zero-length slice deeper on the stack can be. */
static bool nests_at_end(const struct pf_slice *top, const struct pf_slice *s)
{
	return s->start == top->end && s->end == top->end && s->depth > top->depth;
}

/* One track's slices (sorted) into BEGIN/END events, properly nested. */
static int track_events(struct pf_nest *w, size_t from, size_t to)
{
	uint32_t *stack = w->stack;
	size_t depth = 0;
	int err = 0;

	for (size_t i = from; i < to && !err; i++) {
		struct pf_slice *s = &w->slices[i];

		while (depth && !err) {
			const struct pf_slice *top = &w->slices[stack[depth - 1]];

			if (top->end > s->start || nests_at_end(top, s))
				break;
			err = add_event(w, top->end, top->track, stack[--depth], PF_END);
		}
		/* A child recorded as outliving its parent (an unwound frame
		 * closed late) would break every later slice on the track:
		 * it ends with its parent here. */
		if (depth && s->end > w->slices[stack[depth - 1]].end)
			s->end = w->slices[stack[depth - 1]].end;
		if (!err)
			err = add_event(w, s->start, s->track, (uint32_t)i, PF_BEGIN);
		stack[depth++] = (uint32_t)i;
	}
	while (depth && !err) {
		uint32_t top = stack[--depth];

		err = add_event(w, w->slices[top].end, w->slices[top].track, top, PF_END);
	}
	return err;
}

static int cmp_events(const void *a, const void *b)
{
	const struct pf_event *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

int pf_nest__events(struct pf_nest *w)
{
	size_t from = 0;
	int err = 0;

	w->event_count = 0;
	if (!w->slice_count)
		return 0;
	if (w->slice_count >= UINT32_MAX / 2 || ARRAY_RESERVE(w->stack, w->stack_cap, w->slice_count))
		return -ENOMEM;
	sort_few(w->slices, w->slice_count, sizeof(*w->slices), cmp_slices);
	for (size_t i = 1; i <= w->slice_count && !err; i++) {
		if (i < w->slice_count && w->slices[i].track == w->slices[from].track)
			continue;
		err = track_events(w, from, i);
		from = i;
	}
	if (!err)
		sort_few(w->events, w->event_count, sizeof(*w->events), cmp_events);
	return err;
}

void pf_nest__free(struct pf_nest *w)
{
	free(w->slices);
	free(w->events);
	free(w->stack);
	memset(w, 0, sizeof(*w));
}
