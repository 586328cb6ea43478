/* The Perfetto export on synthetic traces, read back with the generated
 * unpacker and replayed as trace_processor replays a packet sequence
 * (defaults, interned strings, the incremental clock): tracks, slices
 * nested per track even for zero-length polls at a parent's end, a
 * wake's flow from thread to task, every iid defined before use, the
 * sequence flags, timestamps back to the recorded nanoseconds, the
 * deflated bundles holding exactly the plain packets, and the size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "export/export.h"
#include "export/perfetto.h"
#include "export/perfetto_trace.pb-c.h"
#include "trace/reader.h"
#include "trace_fixture.h"
#include "unit.h"

enum { RAW_POLL, OUTER, INNER, WAKE_BY_REF, WORKER, FUNCTION_COUNT };

static struct trace_function functions[FUNCTION_COUNT] = {
	[RAW_POLL] = { .context = CONTEXT_TASK, .name = "tokio::runtime::task::raw::RawTask::poll" },
	[OUTER] = { .context = CONTEXT_COMPILER, .name = "demo::outer::{{closure}}",
		    .result = { RESULT_IN_REGS, 1, 0, 1 } },
	[INNER] = { .context = CONTEXT_COMPILER, .name = "demo::inner::{{closure}}",
		    .result = { RESULT_IN_REGS, 1, 0, 1 } },
	[WAKE_BY_REF] = { .role = ROLE_WAKE_BY_REF, .name = "tokio::runtime::task::waker::wake_by_ref" },
	/* a worker loop that is itself a probed poll, as tokio's multi-thread
	 * workers run inside a blocking task's poll */
	[WORKER] = { .context = CONTEXT_USER, .name = "<demo::Worker as core::future::future::Future>::poll" },
};

#define THREAD_TRACK ((1ULL << 32) + 1) /* tid 1 */
#define TASK_TRACK (2 + 1)              /* task 1 */

struct events {
	struct trace_event *e;
	size_t n, cap;
};

static void add(struct events *ev, uint8_t kind, uint32_t func, uint64_t ts, uint64_t sp, uint64_t arg0)
{
	if (ev->n == ev->cap) {
		ev->cap = ev->cap ? 2 * ev->cap : 64;
		ev->e = realloc(ev->e, ev->cap * sizeof(*ev->e));
		if (!ev->e)
			abort();
	}
	ev->e[ev->n++] = (struct trace_event){ .ts = ts, .sp = sp, .arg0 = arg0, .pid = 1, .tid = 1,
					       .func_id = func, .kind = kind };
}

/* A task poll: outer around a zero-length inner poll at inner_ts (outer
 * ends at outer_end, possibly the same moment), then a self-wake if asked. */
static void task_poll_of(struct events *ev, uint64_t task, uint64_t ts, uint64_t inner_ts, uint64_t outer_end,
			 int wake)
{
	add(ev, TRACE_EVENT_ENTRY, RAW_POLL, ts, 0x9000, task);
	add(ev, TRACE_EVENT_ENTRY, OUTER, ts + 1, 0x8f00, task << 8 | 0xf1);
	add(ev, TRACE_EVENT_ENTRY, INNER, inner_ts, 0x8e00, task << 8 | 0xf2);
	add(ev, TRACE_EVENT_EXIT, INNER, inner_ts, 0x8e00, 0);
	if (wake)
		add(ev, TRACE_EVENT_ENTRY, WAKE_BY_REF, inner_ts + 1, 0x8e00, task);
	add(ev, TRACE_EVENT_EXIT, OUTER, outer_end, 0x8f00, wake ? 1 : 0);
	add(ev, TRACE_EVENT_EXIT, RAW_POLL, outer_end + 1, 0x9000, 0);
}

static void task_poll(struct events *ev, uint64_t ts, uint64_t inner_ts, uint64_t outer_end, int wake)
{
	task_poll_of(ev, 0x7a5c, ts, inner_ts, outer_end, wake);
}

/* ---- reading an export back --------------------------------------------- */

#define MAX_SEQS 8
#define MAX_IIDS 64

struct seq_state {
	int seen, has_clock;
	uint64_t track, clock;
	uint32_t clock_id;
	const char *names[MAX_IIDS], *categories[MAX_IIDS], *arg_names[MAX_IIDS];
	const ProtobufCBinaryData *values[MAX_IIDS];
};

struct rev { /* a resolved TrackEvent */
	uint32_t seq;
	uint64_t ts, track;
	int type;
	const char *name, *category;
	const ProtobufCBinaryData *result, *end;
	int has_future;
	size_t flows, terminating_flows;
	uint64_t flow;
};

struct decoded {
	Perfetto__Protos__Trace *trace;
	struct rev *ev;
	size_t n;
	size_t descriptors;
	int problems; /* what trace_processor would reject or misread */
	struct seq_state seqs[MAX_SEQS];
};

static const char *lookup(struct decoded *d, const char *const *table, uint64_t iid)
{
	if (iid && iid < MAX_IIDS && table[iid])
		return table[iid];
	d->problems++;
	return "";
}

static const ProtobufCBinaryData *lookup_value(struct decoded *d, struct seq_state *s, uint64_t iid)
{
	if (iid && iid < MAX_IIDS && s->values[iid])
		return s->values[iid];
	d->problems++;
	return NULL;
}

#define INTERN(d, table, list, count, field)                                \
	for (size_t i_ = 0; i_ < (count); i_++) {                           \
		uint64_t iid_ = (list)[i_]->iid;                            \
		if (!iid_ || iid_ >= MAX_IIDS || (table)[iid_])             \
			(d)->problems++; /* out of range or redefined */     \
		else                                                        \
			(table)[iid_] = (list)[i_]->field;                  \
	}

static void intern_all(struct decoded *d, struct seq_state *s, const Perfetto__Protos__InternedData *in)
{
	INTERN(d, s->names, in->event_names, in->n_event_names, name);
	INTERN(d, s->categories, in->event_categories, in->n_event_categories, name);
	INTERN(d, s->arg_names, in->debug_annotation_names, in->n_debug_annotation_names, name);
	for (size_t i = 0; i < in->n_debug_annotation_string_values; i++) {
		uint64_t iid = in->debug_annotation_string_values[i]->iid;

		if (!iid || iid >= MAX_IIDS || s->values[iid])
			d->problems++;
		else
			s->values[iid] = &in->debug_annotation_string_values[i]->str;
	}
}

static void start_sequence(struct decoded *d, struct seq_state *s, const Perfetto__Protos__TracePacket *p)
{
	const Perfetto__Protos__TracePacketDefaults *def = p->trace_packet_defaults;

	if (!(p->sequence_flags & 1)) {
		d->problems += !s->seen; /* the first packet must clear the state */
		return;
	}
	memset(s, 0, sizeof(*s));
	s->seen = 1;
	if (def) {
		s->clock_id = def->timestamp_clock_id;
		s->track = def->track_event_defaults ? def->track_event_defaults->track_uuid : 0;
	}
}

static void clock_snapshot(struct seq_state *s, const Perfetto__Protos__ClockSnapshot *cs)
{
	for (size_t i = 0; i < cs->n_clocks; i++)
		if (cs->clocks[i]->is_incremental) {
			s->clock = cs->clocks[i]->timestamp;
			s->has_clock = 1;
		}
}

static uint64_t event_time(struct decoded *d, struct seq_state *s, const Perfetto__Protos__TracePacket *p)
{
	uint32_t clock = p->has_timestamp_clock_id ? p->timestamp_clock_id : s->clock_id;

	if (clock < 64 || clock >= 128)
		return p->timestamp;
	if (!s->has_clock)
		d->problems++;
	return s->clock += p->timestamp;
}

static void resolve_args(struct decoded *d, struct seq_state *s, const Perfetto__Protos__TrackEvent *e,
			 struct rev *r)
{
	for (size_t i = 0; i < e->n_debug_annotations; i++) {
		const Perfetto__Protos__DebugAnnotation *a = e->debug_annotations[i];
		const char *name = lookup(d, s->arg_names, a->name_iid);

		if (!strcmp(name, "future"))
			r->has_future = a->has_pointer_value;
		else if (!strcmp(name, "result"))
			r->result = lookup_value(d, s, a->string_value_iid);
		else if (!strcmp(name, "end"))
			r->end = lookup_value(d, s, a->string_value_iid);
	}
}

static void resolve_event(struct decoded *d, struct seq_state *s, const Perfetto__Protos__TracePacket *p)
{
	const Perfetto__Protos__TrackEvent *e = p->track_event;
	struct rev *r = &d->ev[d->n++];

	*r = (struct rev){ .seq = p->trusted_packet_sequence_id, .type = e->type, .name = e->name };
	if (!(p->sequence_flags & 2))
		d->problems++; /* uses interned data and the incremental clock */
	r->ts = event_time(d, s, p);
	r->track = e->has_track_uuid ? e->track_uuid : s->track;
	if (e->has_name_iid)
		r->name = lookup(d, s->names, e->name_iid);
	if (e->n_category_iids)
		r->category = lookup(d, s->categories, e->category_iids[0]);
	resolve_args(d, s, e, r);
	r->flows = e->n_flow_ids;
	r->terminating_flows = e->n_terminating_flow_ids;
	r->flow = e->n_flow_ids ? e->flow_ids[0] : e->n_terminating_flow_ids ? e->terminating_flow_ids[0] : 0;
}

static void resolve_packet(struct decoded *d, const Perfetto__Protos__TracePacket *p)
{
	struct seq_state *s;

	if (!p->has_trusted_packet_sequence_id || !p->trusted_packet_sequence_id ||
	    p->trusted_packet_sequence_id >= MAX_SEQS) {
		d->problems++;
		return;
	}
	s = &d->seqs[p->trusted_packet_sequence_id];
	start_sequence(d, s, p);
	if (p->interned_data)
		intern_all(d, s, p->interned_data);
	if (p->clock_snapshot)
		clock_snapshot(s, p->clock_snapshot);
	d->descriptors += p->track_descriptor != NULL;
	if (p->track_event)
		resolve_event(d, s, p);
}

static int decode(struct decoded *d, const uint8_t *buf, size_t len)
{
	memset(d, 0, sizeof(*d));
	d->trace = perfetto__protos__trace__unpack(NULL, len, buf);
	if (!d->trace)
		return -1;
	d->ev = calloc(d->trace->n_packet + 1, sizeof(*d->ev));
	for (size_t i = 0; d->ev && i < d->trace->n_packet; i++)
		resolve_packet(d, d->trace->packet[i]);
	return d->ev ? 0 : -1;
}

static void decoded_free(struct decoded *d)
{
	if (d->trace)
		perfetto__protos__trace__free_unpacked(d->trace, NULL);
	free(d->ev);
}

/* The export of the events at a zlib level (0: plain packets). */
static char *export_bytes(struct events *ev, int level, size_t *len)
{
	struct trace_file *t = trace_fixture__open(functions, FUNCTION_COUNT, ev->e, ev->n);
	char *buf = NULL;
	FILE *out = t ? open_memstream(&buf, len) : NULL;
	int err = -1;

	if (out) {
		err = perfetto_write_trace(t, NULL, out, level);
		fclose(out);
	}
	trace_file__close(t);
	if (err) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int export_and_decode(struct events *ev, struct decoded *d)
{
	size_t len = 0;
	char *buf = export_bytes(ev, 0, &len);
	int err = buf ? decode(d, (const uint8_t *)buf, len) : -1;

	free(buf);
	free(ev->e);
	ev->e = NULL;
	return err;
}

/* ---- checks --------------------------------------------------------------- */

struct track_walk {
	uint64_t track;
	int open;
	int begins;
	int max_depth;
	int inner_depth; /* stack depth under each inner poll: always outer's + 1 */
	int unbalanced;
	uint64_t ts[32]; /* the track's event times, in order */
	int types[32];
	size_t n;
};

static int cmp_by_time(const void *a, const void *b, void *ctx)
{
	const struct rev *ev = ctx;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	if (ev[x].ts != ev[y].ts)
		return ev[x].ts < ev[y].ts ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* A track's events as trace_processor sees them: all sequences merged by
 * time, each keeping its own order at equal times. */
static void walk_track(const struct decoded *d, struct track_walk *w)
{
	size_t *order = malloc((d->n + 1) * sizeof(*order));

	w->inner_depth = -1;
	for (size_t i = 0; order && i < d->n; i++)
		order[i] = i;
	if (order)
		qsort_r(order, d->n, sizeof(*order), cmp_by_time, d->ev);
	for (size_t i = 0; order && i < d->n; i++) {
		const struct rev *e = &d->ev[order[i]];

		if (e->track != w->track)
			continue;
		if (w->n < 32) {
			w->ts[w->n] = e->ts;
			w->types[w->n++] = e->type;
		}
		if (e->type == PERFETTO__PROTOS__TRACK_EVENT__TYPE__TYPE_SLICE_BEGIN) {
			if (!strcmp(e->name, functions[INNER].name))
				w->inner_depth = w->inner_depth < 0 || w->inner_depth == w->open ? w->open : 99;
			w->begins++;
			if (++w->open > w->max_depth)
				w->max_depth = w->open;
		} else if (e->type == PERFETTO__PROTOS__TRACK_EVENT__TYPE__TYPE_SLICE_END && --w->open < 0) {
			w->unbalanced++;
		}
	}
	if (w->open || !order)
		w->unbalanced++;
	free(order);
}

static int count_flows(const struct decoded *d, int terminating)
{
	int n = 0;

	for (size_t i = 0; i < d->n; i++)
		n += (terminating ? d->ev[i].terminating_flows : d->ev[i].flows) && d->ev[i].flow == 1;
	return n;
}

static int bytes_are(const ProtobufCBinaryData *b, const char *s)
{
	return b && b->len == strlen(s) && !memcmp(b->data, s, b->len);
}

UNIT_TEST(perfetto_tracks_nesting_and_flows)
{
	struct events ev = { 0 };
	struct decoded d;
	struct track_walk thread = { .track = THREAD_TRACK }, task = { .track = TASK_TRACK };

	task_poll(&ev, 100, 102, 104, 1); /* inner mid-poll, self-wake after it */
	task_poll(&ev, 200, 203, 203, 0); /* inner at the very end of outer */
	CHECK(export_and_decode(&ev, &d) == 0);
	if (!d.trace)
		return;
	CHECK(d.problems == 0);
	CHECK(d.descriptors == 4); /* target process, its thread, "tasks", task 1 */
	walk_track(&d, &thread);
	walk_track(&d, &task);
	CHECK(thread.begins == 6 && thread.max_depth == 3 && thread.inner_depth == 2 && !thread.unbalanced);
	CHECK(task.begins == 4 && task.max_depth == 2 && task.inner_depth == 1 && !task.unbalanced);
	CHECK(count_flows(&d, 0) == 1 && count_flows(&d, 1) == 1);
	decoded_free(&d);
}

/* Deltas on the incremental clock sum back to the recorded nanoseconds:
 * every event of the thread track at its time, in order, the wake in
 * between; the task track's copies at the same times, the flow's end
 * where the next task poll starts. */
UNIT_TEST(perfetto_timestamps_are_the_recorded_ns)
{
	static const uint64_t want[] = { 100, 101, 102, 102, 103, 104, 105, 1000, 1001, 70003, 70003, 70003, 70004 };
	static const uint64_t want_task[] = { 101, 102, 102, 104, 1000, 1001, 70003, 70003, 70003 };
	struct events ev = { 0 };
	struct decoded d;
	struct track_walk thread = { .track = THREAD_TRACK }, task = { .track = TASK_TRACK };

	task_poll(&ev, 100, 102, 104, 1);
	task_poll(&ev, 1000, 70003, 70003, 0); /* deltas of 1 and 2 varint bytes */
	CHECK(export_and_decode(&ev, &d) == 0);
	if (!d.trace)
		return;
	walk_track(&d, &thread);
	walk_track(&d, &task);
	CHECK(thread.n == sizeof(want) / sizeof(*want) && !memcmp(thread.ts, want, sizeof(want)));
	CHECK(thread.types[4] == PERFETTO__PROTOS__TRACK_EVENT__TYPE__TYPE_INSTANT);
	CHECK(task.n == sizeof(want_task) / sizeof(*want_task) && !memcmp(task.ts, want_task, sizeof(want_task)));
	decoded_free(&d);
}

/* Names, categories and arguments resolve through each sequence's own
 * interned tables to the right strings; every iid in use was defined
 * earlier on its sequence (decode counts a problem otherwise), every
 * sequence starts by clearing its state and every event says it needs it. */
UNIT_TEST(perfetto_interned_strings_resolve)
{
	struct events ev = { 0 };
	struct decoded d;
	int begins = 0, ends = 0, wakes = 0, seqs = 0;

	task_poll(&ev, 100, 102, 104, 1);
	task_poll(&ev, 200, 203, 203, 0);
	CHECK(export_and_decode(&ev, &d) == 0);
	if (!d.trace)
		return;
	CHECK(d.problems == 0);
	for (size_t i = 0; i < MAX_SEQS; i++)
		seqs += d.seqs[i].seen;
	CHECK(seqs == 2); /* the tasks sequence and thread 1's */
	CHECK(d.trace->packet[0]->sequence_flags == 1);
	for (size_t i = 0; i < d.n; i++) {
		const struct rev *e = &d.ev[i];

		if (e->type == PERFETTO__PROTOS__TRACK_EVENT__TYPE__TYPE_SLICE_BEGIN) {
			begins++;
			CHECK(!strcmp(e->name, functions[RAW_POLL].name) || !strcmp(e->name, functions[OUTER].name) ||
			      !strcmp(e->name, functions[INNER].name));
			CHECK(!strcmp(e->category, !strcmp(e->name, functions[RAW_POLL].name) ? "task"
								: "compiler-generated"));
		} else if (e->type == PERFETTO__PROTOS__TRACK_EVENT__TYPE__TYPE_SLICE_END) {
			ends++;
			CHECK(e->has_future && !e->end); /* returned: the default is left out */
			CHECK(bytes_are(e->result, "Ready") || bytes_are(e->result, "Pending") ||
			      bytes_are(e->result, "?"));
		} else {
			wakes++;
			CHECK(!strcmp(e->name, "self-wake") && !strcmp(e->category, "wake"));
		}
	}
	CHECK(begins == 10 && ends == 10 && wakes == 2); /* the wake on the thread, its flow's end on the task */
	decoded_free(&d);
}

/* A poll that starts the moment the previous one ended is its sibling,
 * not its child: depth stays 3 on the thread, nothing is cut short. */
UNIT_TEST(perfetto_back_to_back_polls_are_siblings)
{
	struct events ev = { 0 };
	struct decoded d;
	struct track_walk thread = { .track = THREAD_TRACK };

	task_poll(&ev, 100, 102, 104, 0); /* the task poll ends at 105 ... */
	task_poll(&ev, 105, 107, 109, 0); /* ... and the next one starts there */
	CHECK(export_and_decode(&ev, &d) == 0);
	if (!d.trace)
		return;
	walk_track(&d, &thread);
	CHECK(thread.begins == 6 && thread.max_depth == 3 && !thread.unbalanced);
	CHECK(thread.n && thread.ts[thread.n - 1] == 110);
	decoded_free(&d);
}

/* A wake that no later poll answers (the task's last poll woke itself)
 * starts no flow and ends none. */
UNIT_TEST(perfetto_unanswered_wake_has_no_flow)
{
	struct events ev = { 0 };
	struct decoded d;
	size_t starts = 0, ends = 0;

	task_poll(&ev, 100, 102, 104, 1);
	CHECK(export_and_decode(&ev, &d) == 0);
	if (!d.trace)
		return;
	for (size_t i = 0; i < d.n; i++) {
		starts += d.ev[i].flows;
		ends += d.ev[i].terminating_flows;
	}
	CHECK(starts == 0 && ends == 0);
	decoded_free(&d);
}

/* Task polls inside a runtime shell are written as each closes, not when
 * the shell does: the shell's BEGIN then comes after them in its sequence,
 * with its absolute time (clock 3); in time order, as viewers read, the
 * thread track still nests, the shell around both task polls. */
UNIT_TEST(perfetto_polls_inside_a_worker_loop_are_not_held)
{
	struct events ev = { 0 };
	struct decoded d;
	struct track_walk thread = { .track = THREAD_TRACK };
	size_t absolute = 0;

	add(&ev, TRACE_EVENT_ENTRY, WORKER, 50, 0x9100, 0x5000);
	task_poll(&ev, 100, 102, 104, 1);
	task_poll(&ev, 200, 203, 203, 0);
	add(&ev, TRACE_EVENT_EXIT, WORKER, 300, 0x9100, 0);
	CHECK(export_and_decode(&ev, &d) == 0);
	if (!d.trace)
		return;
	CHECK(d.problems == 0);
	for (size_t i = 0; i < d.trace->n_packet; i++)
		absolute += d.trace->packet[i]->has_timestamp_clock_id && d.trace->packet[i]->timestamp_clock_id == 3;
	CHECK(absolute >= 1); /* the shell's BEGIN (on its thread, and on a task track if drawn there) */
	walk_track(&d, &thread);
	CHECK(thread.begins == 7 && thread.max_depth == 4 && !thread.unbalanced);
	CHECK(thread.n && thread.ts[0] == 50 && thread.ts[thread.n - 1] == 300);
	decoded_free(&d);
}

/* ---- the deflated file and its size ------------------------------------- */

/* A trace of many polls: tasks polled round robin, a self-wake in every
 * poll, times advancing by irregular small steps as recorded ones do. */
static size_t many_polls(struct events *ev, unsigned tasks, unsigned rounds)
{
	uint64_t ts = 1000000, seed = 12345;

	for (unsigned r = 0; r < rounds; r++)
		for (unsigned t = 0; t < tasks; t++) {
			uint64_t step = 40 + (seed = seed * 6364136223846793005ULL + 1442695040888963407ULL) % 400;

			task_poll_of(ev, 0x7a5c00 + t * 0x40, ts, ts + step, ts + 2 * step, 1);
			ts += 3 * step;
		}
	return (size_t)tasks * rounds * 3;
}

static uint8_t *inflate_bundles(const uint8_t *file, size_t len, size_t *plain_len)
{
	Perfetto__Protos__Trace *outer = perfetto__protos__trace__unpack(NULL, len, file);
	size_t cap = 1 << 20, n = 0;
	uint8_t *plain = malloc(cap);

	for (size_t i = 0; outer && plain && i < outer->n_packet; i++) {
		const ProtobufCBinaryData *z = &outer->packet[i]->compressed_packets;
		uLongf got;

		while (z->len && (got = cap - n, uncompress(plain + n, &got, z->data, z->len)) == Z_BUF_ERROR)
			plain = realloc(plain, cap *= 2);
		n += z->len ? got : 0;
	}
	if (outer)
		perfetto__protos__trace__free_unpacked(outer, NULL);
	*plain_len = n;
	return plain;
}

UNIT_TEST(perfetto_bundles_inflate_to_the_plain_packets)
{
	struct events ev = { 0 };
	size_t plain_len = 0, deflated_len = 0, inflated_len = 0;
	char *plain, *deflated;
	uint8_t *inflated;

	many_polls(&ev, 10, 200);
	plain = export_bytes(&ev, 0, &plain_len);
	deflated = export_bytes(&ev, PERFETTO_DEFLATE_LEVEL, &deflated_len);
	free(ev.e);
	CHECK(plain && deflated);
	if (!plain || !deflated)
		goto out;
	inflated = inflate_bundles((const uint8_t *)deflated, deflated_len, &inflated_len);
	CHECK(inflated && inflated_len == plain_len && !memcmp(inflated, plain, plain_len));
	CHECK(deflated_len < plain_len / 4);
	free(inflated);
out:
	free(plain);
	free(deflated);
}

/* The goal of the format's encoding: at most 40 bytes per poll, each poll
 * being a slice on its thread and (futures) another on its task's track,
 * every task poll with a wake and its flow. */
UNIT_TEST(perfetto_at_most_40_bytes_per_poll)
{
	struct events ev = { 0 };
	size_t polls = many_polls(&ev, 50, 400), len = 0;
	char *buf = export_bytes(&ev, PERFETTO_DEFLATE_LEVEL, &len);

	free(ev.e);
	CHECK(buf != NULL);
	CHECK(len <= 40 * polls);
	if (len > 40 * polls)
		fprintf(stderr, "  %zu bytes for %zu polls: %.1f per poll\n", len, polls, (double)len / polls);
	free(buf);
}
