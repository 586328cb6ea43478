/* The Perfetto export on a synthetic trace, read back with the generated
 * unpacker: tracks, slices nested per track even for zero-length polls at
 * a parent's end, and a wake's flow from thread to task. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "export/perfetto_trace.pb-c.h"
#include "trace/reader.h"
#include "trace_fixture.h"
#include "unit.h"

enum { RAW_POLL, OUTER, INNER, WAKE_BY_REF, FUNCTION_COUNT };

static struct trace_function functions[FUNCTION_COUNT] = {
	[RAW_POLL] = { .context = CONTEXT_TASK, .name = "tokio::runtime::task::raw::RawTask::poll" },
	[OUTER] = { .context = CONTEXT_COMPILER, .name = "demo::outer::{{closure}}",
		    .result = { RESULT_IN_REGS, 1, 0, 1 } },
	[INNER] = { .context = CONTEXT_COMPILER, .name = "demo::inner::{{closure}}",
		    .result = { RESULT_IN_REGS, 1, 0, 1 } },
	[WAKE_BY_REF] = { .role = ROLE_WAKE_BY_REF, .name = "tokio::runtime::task::waker::wake_by_ref" },
};

struct events {
	struct trace_event e[32];
	size_t n;
};

static void add(struct events *ev, uint8_t kind, uint32_t func, uint64_t ts, uint64_t sp, uint64_t arg0)
{
	ev->e[ev->n++] = (struct trace_event){ .ts = ts, .sp = sp, .arg0 = arg0, .pid = 1, .tid = 1,
					       .func_id = func, .kind = kind };
}

/* A task poll: outer around a zero-length inner poll at inner_ts (outer
 * ends at outer_end, possibly the same moment), then a self-wake if asked. */
static void task_poll(struct events *ev, uint64_t ts, uint64_t inner_ts, uint64_t outer_end, int wake)
{
	add(ev, TRACE_EVENT_ENTRY, RAW_POLL, ts, 0x9000, 0x7a5c);
	add(ev, TRACE_EVENT_ENTRY, OUTER, ts + 1, 0x8f00, 0xf1);
	add(ev, TRACE_EVENT_ENTRY, INNER, inner_ts, 0x8e00, 0xf2);
	add(ev, TRACE_EVENT_EXIT, INNER, inner_ts, 0x8e00, 0);
	if (wake)
		add(ev, TRACE_EVENT_ENTRY, WAKE_BY_REF, inner_ts + 1, 0x8e00, 0x7a5c);
	add(ev, TRACE_EVENT_EXIT, OUTER, outer_end, 0x8f00, wake ? 1 : 0);
	add(ev, TRACE_EVENT_EXIT, RAW_POLL, outer_end + 1, 0x9000, 0);
}

static Perfetto__Protos__Trace *export_and_decode(struct events *ev)
{
	struct trace_file *t = trace_fixture__open(functions, FUNCTION_COUNT, ev->e, ev->n);
	Perfetto__Protos__Trace *decoded = NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = t ? open_memstream(&buf, &len) : NULL;
	int err;

	if (!out) {
		trace_file__close(t);
		return NULL;
	}
	err = export_format__find("perfetto")->write(t, NULL, out);
	fclose(out);
	trace_file__close(t);
	if (!err)
		decoded = perfetto__protos__trace__unpack(NULL, len, (const uint8_t *)buf);
	free(buf);
	return decoded;
}

struct track_walk {
	uint64_t uuid;
	int open;
	int begins;
	int max_depth;
	int inner_depth; /* stack depth under each inner poll: always outer's + 1 */
	int unbalanced;
};

static void walk_track(const Perfetto__Protos__Trace *trace, struct track_walk *w)
{
	uint64_t last = 0;

	w->inner_depth = -1;
	for (size_t i = 0; i < trace->n_packet; i++) {
		const Perfetto__Protos__TracePacket *p = trace->packet[i];
		const Perfetto__Protos__TrackEvent *e = p->track_event;

		if (p->timestamp < last)
			w->unbalanced++;
		last = p->timestamp;
		if (!e || e->track_uuid != w->uuid)
			continue;
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
	if (w->open)
		w->unbalanced++;
}

static int count_flows(const Perfetto__Protos__Trace *trace, int terminating)
{
	int n = 0;

	for (size_t i = 0; i < trace->n_packet; i++) {
		const Perfetto__Protos__TrackEvent *e = trace->packet[i]->track_event;

		if (e && (terminating ? e->n_terminating_flow_ids : e->n_flow_ids))
			n += (terminating ? e->terminating_flow_ids[0] : e->flow_ids[0]) == 1;
	}
	return n;
}

UNIT_TEST(perfetto_tracks_nesting_and_flows)
{
	struct events ev = { .n = 0 };
	Perfetto__Protos__Trace *trace;
	struct track_walk thread = { .uuid = (1ULL << 32) + 1 }, task = { .uuid = (2ULL << 32) + 1 };
	size_t descriptors = 0;

	task_poll(&ev, 100, 102, 104, 1); /* inner mid-poll, self-wake after it */
	task_poll(&ev, 200, 203, 203, 0); /* inner at the very end of outer */
	trace = export_and_decode(&ev);
	CHECK(trace != NULL);
	if (!trace)
		return;
	CHECK(trace->n_packet > 0 && trace->packet[0]->sequence_flags == 1);
	for (size_t i = 0; i < trace->n_packet; i++) {
		CHECK(trace->packet[i]->trusted_packet_sequence_id == 1);
		descriptors += trace->packet[i]->track_descriptor != NULL;
	}
	CHECK(descriptors == 4); /* target process, its thread, "tasks", task 1 */
	walk_track(trace, &thread);
	walk_track(trace, &task);
	CHECK(thread.begins == 6 && thread.max_depth == 3 && thread.inner_depth == 2 && !thread.unbalanced);
	CHECK(task.begins == 4 && task.max_depth == 2 && task.inner_depth == 1 && !task.unbalanced);
	CHECK(count_flows(trace, 0) == 1 && count_flows(trace, 1) == 1);
	perfetto__protos__trace__free_unpacked(trace, NULL);
}

/* A poll that starts the moment the previous one ended is its sibling,
 * not its child: depth stays 3 on the thread, nothing is cut short. */
UNIT_TEST(perfetto_back_to_back_polls_are_siblings)
{
	struct events ev = { .n = 0 };
	Perfetto__Protos__Trace *trace;
	struct track_walk thread = { .uuid = (1ULL << 32) + 1 };
	uint64_t last_end = 0;

	task_poll(&ev, 100, 102, 104, 0); /* the task poll ends at 105 ... */
	task_poll(&ev, 105, 107, 109, 0); /* ... and the next one starts there */
	trace = export_and_decode(&ev);
	CHECK(trace != NULL);
	if (!trace)
		return;
	walk_track(trace, &thread);
	CHECK(thread.begins == 6 && thread.max_depth == 3 && !thread.unbalanced);
	for (size_t i = 0; i < trace->n_packet; i++) {
		const Perfetto__Protos__TrackEvent *e = trace->packet[i]->track_event;

		if (e && e->track_uuid == thread.uuid && e->type == PERFETTO__PROTOS__TRACK_EVENT__TYPE__TYPE_SLICE_END)
			last_end = trace->packet[i]->timestamp;
	}
	CHECK(last_end == 110);
	perfetto__protos__trace__free_unpacked(trace, NULL);
}

/* A wake that no later poll answers (the task's last poll woke itself)
 * starts no flow and ends none. */
UNIT_TEST(perfetto_unanswered_wake_has_no_flow)
{
	struct events ev = { .n = 0 };
	Perfetto__Protos__Trace *trace;
	size_t starts = 0, ends = 0;

	task_poll(&ev, 100, 102, 104, 1);
	trace = export_and_decode(&ev);
	CHECK(trace != NULL);
	if (!trace)
		return;
	for (size_t i = 0; i < trace->n_packet; i++) {
		const Perfetto__Protos__TrackEvent *e = trace->packet[i]->track_event;

		starts += e ? e->n_flow_ids : 0;
		ends += e ? e->n_terminating_flow_ids : 0;
	}
	CHECK(starts == 0 && ends == 0);
	perfetto__protos__trace__free_unpacked(trace, NULL);
}
