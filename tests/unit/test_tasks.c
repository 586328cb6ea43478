/* The task model on synthetic traces: spawn, polls, wakes, completion,
 * cancellation by drop, address reuse, await points. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "trace/reader.h"
#include "trace/tasks.h"
#include "trace_fixture.h"
#include "unit.h"

enum { RAW_POLL, OUTER, WAKE_BY_REF, TASK_NEW, SPAWN, DROP_OUTER, TASK_FREE, CHILD, DROP_CHILD, WAKE,
       FUNCTION_COUNT };

static struct await_point outer_awaits[] = { { 3, 42, NULL } };

static struct trace_function functions[FUNCTION_COUNT] = {
	[RAW_POLL] = { .context = CONTEXT_TASK, .name = "tokio::runtime::task::raw::RawTask::poll" },
	[OUTER] = { .context = CONTEXT_COMPILER, .name = "demo::outer::{{closure}}",
		    .result = { RESULT_IN_REGS, 1, 0, 1 }, .state_size = 1, .await_count = 1,
		    .awaits = outer_awaits },
	[WAKE_BY_REF] = { .role = ROLE_WAKE_BY_REF, .name = "tokio::runtime::task::waker::wake_by_ref" },
	[TASK_NEW] = { .role = ROLE_TASK_NEW, .name = "tokio::runtime::task::raw::RawTask::new" },
	[SPAWN] = { .role = ROLE_SPAWN, .name = "tokio::task::spawn::spawn" },
	[DROP_OUTER] = { .role = ROLE_DROP, .target = OUTER,
			 .name = "core::ptr::drop_in_place<demo::outer::{{closure}}>" },
	[TASK_FREE] = { .role = ROLE_TASK_FREE, .name = "tokio::runtime::task::raw::dealloc" },
	[CHILD] = { .context = CONTEXT_USER, .name = "<tokio::future::maybe_done::MaybeDone<Fut> as core::future::future::Future>::poll",
		    .result = { RESULT_IN_REGS, 1, 0, 1 } },
	[DROP_CHILD] = { .role = ROLE_DROP, .target = CHILD,
			 .name = "core::ptr::drop_in_place<tokio::future::maybe_done::MaybeDone<Fut>>" },
	[WAKE] = { .role = ROLE_WAKE, .name = "async_task::raw::RawTask::wake" },
};

struct events {
	struct trace_event e[64];
	size_t n;
};

static void add(struct events *ev, uint8_t kind, uint32_t func, uint64_t ts, uint64_t sp, uint64_t arg0,
		uint64_t aux, uint8_t flags)
{
	ev->e[ev->n++] = (struct trace_event){ .ts = ts, .sp = sp, .arg0 = arg0, .aux = aux, .pid = 1,
					       .tid = 1, .func_id = func, .kind = kind, .flags = flags };
}

/* One task poll of `outer` at future 0xf1: Pending (state 3) or Ready. */
static void task_poll(struct events *ev, uint64_t ts, uint64_t task, int pending, int self_wake)
{
	add(ev, TRACE_EVENT_ENTRY, RAW_POLL, ts, 0x9000, task, 0, 0);
	add(ev, TRACE_EVENT_ENTRY, OUTER, ts + 1, 0x8f00, 0xf1, 0, 0);
	if (self_wake)
		add(ev, TRACE_EVENT_ENTRY, WAKE_BY_REF, ts + 2, 0x8e00, task, 0, 0);
	add(ev, TRACE_EVENT_EXIT, OUTER, ts + 3, 0x8f00, pending ? 1 : 0, pending ? 3 : 0,
	    pending ? TRACE_EVENT_STATE : 0);
	add(ev, TRACE_EVENT_EXIT, RAW_POLL, ts + 4, 0x9000, 0, 0, 0);
}

/* Everything but the private fields that differ by design (the waiting
 * wakes' slot numbers). */
static bool same_task(const struct task *a, const struct task *b)
{
	struct task x = *a, y = *b;

	x.waiting_head = y.waiting_head = x.waiting_tail = y.waiting_tail = 0;
	return !memcmp(&x, &y, sizeof(x));
}

static bool same_groups(const struct task_model *a, const struct task_model *b)
{
	struct wake_group *ga = NULL, *gb = NULL;
	size_t na = 0, nb = 0;
	bool same = !task_model__wake_groups(a, &ga, &na) && !task_model__wake_groups(b, &gb, &nb) && na == nb &&
		    (!na || !memcmp(ga, gb, na * sizeof(*ga)));

	free(ga);
	free(gb);
	return same;
}

/* A model that folds released tasks must give the same warnings, wake
 * counts and latencies as the full one. */
static int check_folding_agrees(const struct task_model *full, const struct trace_file *t)
{
	struct task_warnings want, got;
	struct task_model m;
	bool same;
	int err = task_model__build(&m, t, TASK_MODEL_FOLD);

	if (err)
		return err;
	task_model__warnings(full, 0, &want);
	task_model__warnings(&m, 0, &got);
	same = !err && !memcmp(&want, &got, sizeof(want)) && m.spawns == full->spawns &&
	       m.wakes_unknown == full->wakes_unknown && m.wake_total == full->wake_count &&
	       m.cancelled_total == full->cancellation_count &&
	       !memcmp(m.wake_latency, full->wake_latency, sizeof(m.wake_latency));
	task_model__free(&m);
	return err ? err : same ? 0 : -EDOM;
}

/* A model fed by a pass without history must agree with the full one on
 * everything it reports, while keeping none of the events. */
static int check_streaming_agrees(const struct task_model *full, const struct trace_file *t)
{
	struct task_model m;
	bool same;
	int err = task_model__build(&m, t, 0);

	if (err)
		return err;
	same = !err && m.task_count == full->task_count && m.node_count == full->node_count &&
	       m.spawns == full->spawns && m.wakes_unknown == full->wakes_unknown &&
	       m.wake_total == full->wake_count && m.cancelled_total == full->cancellation_count &&
	       !m.cancellation_count && !memcmp(m.wake_latency, full->wake_latency, sizeof(m.wake_latency)) &&
	       (!m.node_count || !memcmp(m.nodes, full->nodes, m.node_count * sizeof(*m.nodes))) &&
	       same_groups(&m, full);
	for (size_t i = 0; same && i < m.task_count; i++)
		same = same_task(&m.tasks[i], &full->tasks[i]);
	task_model__free(&m);
	if (!err && same)
		err = check_folding_agrees(full, t);
	return err ? err : same ? 0 : -EDOM;
}

/* The synthetic events as a trace file; the model built from it (with
 * history), checked against one built without. */
static int build(struct task_model *m, struct trace_file **t, struct events *ev)
{
	int err;

	*t = trace_fixture__open(functions, FUNCTION_COUNT, ev->e, ev->n);
	if (!*t)
		return -EIO;
	err = task_model__build(m, *t, TASK_MODEL_KEEP_HISTORY);
	if (!err && (err = check_streaming_agrees(m, *t)))
		task_model__free(m);
	return err;
}

UNIT_TEST(tasks_spawn_poll_wake_complete)
{
	struct events ev = { .n = 0 };
	struct trace_file *trace = NULL;
	struct task_model m;

	add(&ev, TRACE_EVENT_ENTRY, SPAWN, 10, 0x9500, 0, 0x5555, TRACE_EVENT_RETURN_ADDRESS);
	add(&ev, TRACE_EVENT_EXIT, TASK_NEW, 11, 0x9400, 0x7a5c, 0, 0);
	task_poll(&ev, 100, 0x7a5c, 1, 1);
	task_poll(&ev, 200, 0x7a5c, 0, 0);
	add(&ev, TRACE_EVENT_ENTRY, TASK_FREE, 300, 0x9000, 0x7a5c, 0, 0);
	CHECK(build(&m, &trace, &ev) == 0);
	CHECK(m.task_count == 1);
	if (m.task_count == 1) {
		const struct task *t = &m.tasks[0];

		CHECK(t->spawn_site == 0x5555 && t->parent == 0 && t->created == 11);
		CHECK(t->polls == 2 && t->busy_ns == 8);
		CHECK(t->wakes == 1 && t->self_wakes == 1 && t->wakes_by_ref == 1);
		CHECK(t->sched_wait_ns == 200 - 102);
		CHECK(t->state == TASK_COMPLETED && t->ended == 203);
		CHECK(t->root_func == OUTER && t->first_node != NO_FUNCTION);
	}
	CHECK(m.node_count == 1);
	if (m.node_count == 1) {
		CHECK(m.nodes[0].polls == 2 && m.nodes[0].ready == 1 && m.nodes[0].pending == 1);
		CHECK(m.nodes[0].instances == 1 && m.nodes[0].cancelled == 0);
		CHECK(m.nodes[0].wait_ns == 201 - 103);
		CHECK(tree_node__top_park_line(&m.nodes[0]) == 42);
	}
	CHECK(m.wake_count == 1 && m.wakes[0].poll_ts == 200 && m.wakes[0].self);
	task_model__free(&m);
	trace_file__close(trace);
}

UNIT_TEST(tasks_drop_before_ready_cancels)
{
	struct events ev = { .n = 0 };
	struct trace_file *trace = NULL;
	struct task_model m;

	task_poll(&ev, 100, 0x7a5c, 1, 0);
	add(&ev, TRACE_EVENT_ENTRY, DROP_OUTER, 150, 0x9000, 0xf1, 0, 0);
	add(&ev, TRACE_EVENT_ENTRY, TASK_FREE, 160, 0x9000, 0x7a5c, 0, 0);
	CHECK(build(&m, &trace, &ev) == 0);
	CHECK(m.task_count == 1 && m.tasks[0].state == TASK_CANCELLED && m.tasks[0].ended == 150);
	CHECK(m.node_count == 1 && m.nodes[0].cancelled == 1);
	CHECK(m.cancellation_count == 1 && m.cancellations[0].func_id == OUTER);
	task_model__free(&m);
	trace_file__close(trace);
}

UNIT_TEST(tasks_address_reuse_makes_new_instances)
{
	struct events ev = { .n = 0 };
	struct trace_file *trace = NULL;
	struct task_model m;

	for (int i = 0; i < 3; i++) {
		uint64_t ts = 1000 * (uint64_t)(i + 1);

		add(&ev, TRACE_EVENT_EXIT, TASK_NEW, ts, 0x9400, 0x7a5c, 0, 0);
		task_poll(&ev, ts + 10, 0x7a5c, 0, 0);
		add(&ev, TRACE_EVENT_ENTRY, TASK_FREE, ts + 100, 0x9000, 0x7a5c, 0, 0);
	}
	CHECK(build(&m, &trace, &ev) == 0);
	CHECK(m.task_count == 3);
	for (size_t i = 0; i < m.task_count; i++)
		CHECK(m.tasks[i].polls == 1 && m.tasks[i].state == TASK_COMPLETED);
	CHECK(task_model__find(&m, 0x7a5c, 1, 2015) == &m.tasks[1]);
	CHECK(m.node_count == 3 && m.nodes[2].instances == 1);
	task_model__free(&m);
	trace_file__close(trace);
}

UNIT_TEST(tasks_woken_from_another_thread_and_parked)
{
	struct events ev = { .n = 0 };
	struct trace_file *trace = NULL;
	struct task_model m;

	task_poll(&ev, 100, 0x7a5c, 1, 0);
	add(&ev, TRACE_EVENT_ENTRY, WAKE_BY_REF, 150, 0x5000, 0x7a5c, 0, 0);
	ev.e[ev.n - 1].tid = 2; /* a plain thread: no task of its own */
	task_poll(&ev, 170, 0x7a5c, 1, 0);
	CHECK(build(&m, &trace, &ev) == 0);
	CHECK(m.task_count == 1 && m.tasks[0].state == TASK_PENDING);
	CHECK(m.wake_count == 1 && m.wakes[0].waker == 0 && !m.wakes[0].self && m.wakes[0].tid == 2);
	CHECK(m.tasks[0].park_func == OUTER && m.tasks[0].park_line == 42);
	CHECK(m.wake_latency[4] == 1); /* 20 ns: [16, 32) */
	task_model__free(&m);
	trace_file__close(trace);
}

UNIT_TEST(tasks_future_replacing_itself_is_not_cancelled)
{
	struct events ev = { .n = 0 };
	struct trace_file *trace = NULL;
	struct task_model m;

	task_poll(&ev, 100, 0x7a5c, 1, 0);
	/* Second poll: outer drops its own old value in place (Pin::set). */
	add(&ev, TRACE_EVENT_ENTRY, RAW_POLL, 200, 0x9000, 0x7a5c, 0, 0);
	add(&ev, TRACE_EVENT_ENTRY, OUTER, 201, 0x8f00, 0xf1, 0, 0);
	add(&ev, TRACE_EVENT_ENTRY, DROP_OUTER, 202, 0x8e00, 0xf1, 0, 0);
	add(&ev, TRACE_EVENT_EXIT, OUTER, 203, 0x8f00, 0, 0, 0);
	add(&ev, TRACE_EVENT_EXIT, RAW_POLL, 204, 0x9000, 0, 0, 0);
	CHECK(build(&m, &trace, &ev) == 0);
	CHECK(m.node_count == 1 && m.nodes[0].cancelled == 0 && m.nodes[0].instances == 1);
	CHECK(m.task_count == 1 && m.tasks[0].state == TASK_COMPLETED);
	task_model__free(&m);
	trace_file__close(trace);
}

/* One poll of `task`: its outer future (Pending unless last) polls a
 * child at 0xc1, Ready unless child_pending. */
static void task_poll_with_child(struct events *ev, uint64_t ts, uint64_t task, uint64_t outer, int child_pending,
				 int last)
{
	add(ev, TRACE_EVENT_ENTRY, RAW_POLL, ts, 0x9000, task, 0, 0);
	add(ev, TRACE_EVENT_ENTRY, OUTER, ts + 1, 0x8f00, outer, 0, 0);
	add(ev, TRACE_EVENT_ENTRY, CHILD, ts + 2, 0x8e00, 0xc1, 0, 0);
	add(ev, TRACE_EVENT_EXIT, CHILD, ts + 3, 0x8e00, child_pending, 0, 0);
	add(ev, TRACE_EVENT_EXIT, OUTER, ts + 4, 0x8f00, last ? 0 : 1, 0, 0);
	add(ev, TRACE_EVENT_EXIT, RAW_POLL, ts + 5, 0x9000, 0, 0, 0);
}

/* One task poll: outer (Pending unless last) polls a child at 0xc1 that
 * returns Ready each time. */
static void poll_with_child(struct events *ev, uint64_t ts, int last)
{
	task_poll_with_child(ev, ts, 0x7a5c, 0xf1, 0, last);
}

static uint64_t child_instances(int drop_between)
{
	struct events ev = { .n = 0 };
	struct trace_file *trace = NULL;
	struct task_model m;
	uint64_t instances = 0;

	poll_with_child(&ev, 100, 0);
	if (drop_between)
		add(&ev, TRACE_EVENT_ENTRY, DROP_CHILD, 150, 0x8000, 0xc1, 0, 0);
	poll_with_child(&ev, 200, 1);
	if (build(&m, &trace, &ev) == 0) {
		for (size_t i = 0; i < m.node_count; i++)
			if (m.nodes[i].func_id == CHILD)
				instances += m.nodes[i].instances;
		task_model__free(&m);
	}
	trace_file__close(trace);
	return instances;
}

UNIT_TEST(tasks_fused_future_polled_after_ready_is_one_instance)
{
	/* join!'s MaybeDone is polled after its Ready: still one future ... */
	CHECK(child_instances(0) == 1);
	/* ... unless it was dropped between: then a new one took its place. */
	CHECK(child_instances(1) == 2);
}

/* A fused future's Ready is forgotten once another instance took its
 * address (in another task's tree, its drop not seen): polled there again,
 * it is a new instance, not the old one come back. */
UNIT_TEST(tasks_fused_future_replaced_elsewhere_is_a_new_instance)
{
	struct events ev = { .n = 0 };
	struct trace_file *trace = NULL;
	struct task_model m;
	uint64_t instances[2] = { 0, 0 };

	task_poll_with_child(&ev, 100, 0x7a5c, 0xf1, 0, 0);
	task_poll_with_child(&ev, 150, 0x7b00, 0xf2, 1, 0);
	task_poll_with_child(&ev, 200, 0x7a5c, 0xf1, 0, 1);
	CHECK(build(&m, &trace, &ev) == 0);
	for (size_t i = 0; i < m.node_count; i++)
		if (m.nodes[i].func_id == CHILD && m.nodes[i].task >= 1 && m.nodes[i].task <= 2)
			instances[m.nodes[i].task - 1] += m.nodes[i].instances;
	CHECK(m.task_count == 2);
	CHECK(instances[0] == 2 && instances[1] == 1);
	task_model__free(&m);
	trace_file__close(trace);
}

/* Freed while its root future was last Pending, with no drop seen (drop glue
 * not probed, or inlined): cancelled at the free, never completed; a task
 * reallocated at the same address ends the same way. */
UNIT_TEST(tasks_freed_or_reused_while_pending_are_cancelled)
{
	struct events ev = { .n = 0 };
	struct trace_file *trace = NULL;
	struct task_model m;

	add(&ev, TRACE_EVENT_EXIT, TASK_NEW, 10, 0x9400, 0x7a5c, 0, 0);
	task_poll(&ev, 100, 0x7a5c, 1, 0);
	add(&ev, TRACE_EVENT_ENTRY, TASK_FREE, 170, 0x9000, 0x7a5c, 0, 0);
	add(&ev, TRACE_EVENT_EXIT, TASK_NEW, 200, 0x9400, 0x8b00, 0, 0);
	task_poll(&ev, 300, 0x8b00, 1, 0);
	add(&ev, TRACE_EVENT_EXIT, TASK_NEW, 400, 0x9400, 0x8b00, 0, 0);
	CHECK(build(&m, &trace, &ev) == 0);
	CHECK(m.task_count == 3);
	if (m.task_count == 3) {
		CHECK(m.tasks[0].state == TASK_CANCELLED && m.tasks[0].ended == 170);
		CHECK(m.tasks[1].state == TASK_CANCELLED && m.tasks[1].ended == 400);
		CHECK(m.tasks[2].state == TASK_PENDING && m.tasks[2].polls == 0);
		CHECK_STR(task_state__name(m.tasks[0].state), "cancelled");
		CHECK_STR(task_state__name(m.tasks[2].state), "pending");
	}
	task_model__free(&m);
	trace_file__close(trace);
}

/* Two wakes before one poll: the poll answers both, and the time the task
 * waited to be scheduled runs from the first wake, counted once. */
UNIT_TEST(tasks_two_wakes_before_a_poll_wait_from_the_first)
{
	struct events ev = { .n = 0 };
	struct trace_file *trace = NULL;
	struct task_model m;

	add(&ev, TRACE_EVENT_EXIT, TASK_NEW, 10, 0x9400, 0x7a5c, 0, 0);
	task_poll(&ev, 100, 0x7a5c, 1, 0);
	add(&ev, TRACE_EVENT_ENTRY, WAKE_BY_REF, 150, 0x9000, 0x7a5c, 0, 0);
	add(&ev, TRACE_EVENT_ENTRY, WAKE_BY_REF, 180, 0x9000, 0x7a5c, 0, 0);
	task_poll(&ev, 250, 0x7a5c, 0, 0);
	CHECK(build(&m, &trace, &ev) == 0);
	CHECK(m.task_count == 1 && m.wake_count == 2);
	if (m.task_count == 1 && m.wake_count == 2) {
		CHECK(m.tasks[0].wakes == 2 && m.tasks[0].sched_wait_ns == 250 - 150);
		CHECK(m.wakes[0].poll_ts == 250 && m.wakes[1].poll_ts == 250);
		CHECK(m.tasks[0].state == TASK_COMPLETED && m.tasks[0].ended == 253);
	}
	task_model__free(&m);
	trace_file__close(trace);
}

/* A wake by value that calls wake_by_ref on the same task (async-task in
 * debug builds) is one wake; any poll or other hook in between ends that
 * nesting, so the wakes after it count. */
UNIT_TEST(tasks_a_wake_calling_wake_by_ref_is_one_wake)
{
	struct events ev = { .n = 0 };
	struct trace_file *trace = NULL;
	struct task_model m;

	add(&ev, TRACE_EVENT_EXIT, TASK_NEW, 10, 0x9400, 0x7a5c, 0, 0);
	task_poll(&ev, 100, 0x7a5c, 1, 0);
	add(&ev, TRACE_EVENT_ENTRY, WAKE, 150, 0x9000, 0x7a5c, 0, 0);
	add(&ev, TRACE_EVENT_ENTRY, WAKE_BY_REF, 151, 0x8f00, 0x7a5c, 0, 0);
	task_poll(&ev, 200, 0x7a5c, 1, 0);
	add(&ev, TRACE_EVENT_ENTRY, WAKE_BY_REF, 250, 0x8f00, 0x7a5c, 0, 0);
	add(&ev, TRACE_EVENT_ENTRY, TASK_FREE, 260, 0x9000, 0x1234, 0, 0);
	add(&ev, TRACE_EVENT_ENTRY, WAKE_BY_REF, 270, 0x8e00, 0x7a5c, 0, 0);
	task_poll(&ev, 300, 0x7a5c, 0, 0);
	CHECK(build(&m, &trace, &ev) == 0);
	CHECK(m.task_count == 1 && m.wake_count == 3);
	if (m.task_count == 1)
		CHECK(m.tasks[0].wakes == 3 && m.tasks[0].polls == 3 && m.tasks[0].state == TASK_COMPLETED);
	task_model__free(&m);
	trace_file__close(trace);
}

/* The call tree's links: outer is the task's root node, the child its only
 * child, each pointing at the other. */
UNIT_TEST(tasks_tree_nodes_link_parent_and_children)
{
	struct events ev = { .n = 0 };
	struct trace_file *trace = NULL;
	struct task_model m;

	poll_with_child(&ev, 100, 0);
	poll_with_child(&ev, 200, 1);
	CHECK(build(&m, &trace, &ev) == 0);
	CHECK(m.node_count == 2);
	if (m.node_count == 2) {
		uint32_t root = m.nodes[0].func_id == OUTER ? 0 : 1, child = 1 - root;

		CHECK(m.nodes[root].func_id == OUTER && m.nodes[child].func_id == CHILD);
		CHECK(m.nodes[root].parent == NO_FUNCTION && m.nodes[child].parent == root);
		CHECK(m.nodes[root].first_child == child && m.nodes[child].next == NO_FUNCTION);
		CHECK(m.nodes[child].first_child == NO_FUNCTION && m.nodes[child].polls == 2);
		CHECK(m.task_count == 1 && m.tasks[0].first_node == root);
	}
	task_model__free(&m);
	trace_file__close(trace);
}

/* Which spawn call made a task: the outermost one in progress, though the
 * runtime polls something of its own inside it before the inner call
 * (async-std's first spawn); a spawn left open earlier (no allocation
 * seen for it) is not in progress once a poll began after it. */
UNIT_TEST(tasks_spawn_site_is_the_outermost_spawn_in_progress)
{
	struct events ev = { .n = 0 };
	struct trace_file *trace = NULL;
	struct task_model m;

	add(&ev, TRACE_EVENT_EXIT, TASK_NEW, 5, 0x9600, 0x7a5c, 0, 0);
	add(&ev, TRACE_EVENT_ENTRY, SPAWN, 10, 0x9500, 0, 0x5555, TRACE_EVENT_RETURN_ADDRESS);
	add(&ev, TRACE_EVENT_ENTRY, RAW_POLL, 100, 0x9000, 0x7a5c, 0, 0);
	add(&ev, TRACE_EVENT_ENTRY, OUTER, 101, 0x8f00, 0xf1, 0, 0);
	add(&ev, TRACE_EVENT_ENTRY, SPAWN, 102, 0x8d00, 0, 0x6666, TRACE_EVENT_RETURN_ADDRESS);
	add(&ev, TRACE_EVENT_ENTRY, CHILD, 103, 0x8c80, 0xc1, 0, 0);
	add(&ev, TRACE_EVENT_EXIT, CHILD, 104, 0x8c80, 0, 0, 0);
	add(&ev, TRACE_EVENT_ENTRY, SPAWN, 105, 0x8c00, 0, 0x7777, TRACE_EVENT_RETURN_ADDRESS);
	add(&ev, TRACE_EVENT_EXIT, TASK_NEW, 106, 0x8b00, 0x8b00, 0, 0);
	add(&ev, TRACE_EVENT_EXIT, OUTER, 110, 0x8f00, 0, 0, 0);
	add(&ev, TRACE_EVENT_EXIT, RAW_POLL, 111, 0x9000, 0, 0, 0);
	CHECK(build(&m, &trace, &ev) == 0);
	CHECK(m.task_count == 2);
	if (m.task_count == 2) {
		CHECK(m.tasks[0].ptr == 0x7a5c && m.tasks[0].spawn_site == 0);
		CHECK(m.tasks[1].ptr == 0x8b00 && m.tasks[1].spawn_site == 0x6666);
		CHECK(m.tasks[1].parent == m.tasks[0].id);
	}
	task_model__free(&m);
	trace_file__close(trace);
}

/* A task's root future whose address another task's inner future took
 * (the first one's drop not seen): dropping the newer one cancels it, not
 * the first task. */
UNIT_TEST(tasks_root_slot_taken_by_an_inner_future_forgets_its_task)
{
	struct events ev = { .n = 0 };
	struct trace_file *trace = NULL;
	struct task_model m;

	task_poll(&ev, 100, 0x7a5c, 1, 0);
	add(&ev, TRACE_EVENT_ENTRY, RAW_POLL, 200, 0x9000, 0x7b00, 0, 0);
	add(&ev, TRACE_EVENT_ENTRY, OUTER, 201, 0x8f00, 0xf2, 0, 0);
	add(&ev, TRACE_EVENT_ENTRY, OUTER, 202, 0x8e00, 0xf1, 0, 0);
	add(&ev, TRACE_EVENT_EXIT, OUTER, 203, 0x8e00, 1, 3, TRACE_EVENT_STATE);
	add(&ev, TRACE_EVENT_EXIT, OUTER, 204, 0x8f00, 1, 3, TRACE_EVENT_STATE);
	add(&ev, TRACE_EVENT_EXIT, RAW_POLL, 205, 0x9000, 0, 0, 0);
	add(&ev, TRACE_EVENT_ENTRY, DROP_OUTER, 300, 0x8000, 0xf1, 0, 0);
	CHECK(build(&m, &trace, &ev) == 0);
	CHECK(m.task_count == 2 && m.cancellation_count == 1);
	if (m.task_count == 2) {
		CHECK(m.tasks[0].ptr == 0x7a5c && m.tasks[0].state == TASK_PENDING);
		CHECK(m.tasks[1].ptr == 0x7b00 && m.tasks[1].state == TASK_PENDING);
	}
	if (m.cancellation_count == 1)
		CHECK(m.cancellations[0].task == m.tasks[1].id);
	task_model__free(&m);
	trace_file__close(trace);
}

/* A spawn in flight on one thread (its allocation comes next, there) is
 * not taken by a task another thread meets first at its poll (allocated
 * before the trace began): the allocation takes it. */
UNIT_TEST(tasks_spawn_in_flight_elsewhere_is_not_adopted)
{
	struct events ev = { .n = 0 };
	struct trace_file *trace = NULL;
	struct task_model m;

	add(&ev, TRACE_EVENT_EXIT, TASK_NEW, 5, 0x9600, 0x7a5c, 0, 0);
	add(&ev, TRACE_EVENT_ENTRY, SPAWN, 10, 0x9500, 0, 0x6666, TRACE_EVENT_RETURN_ADDRESS);
	ev.e[ev.n - 1].tid = 2;
	task_poll(&ev, 20, 0xa000, 1, 0);
	add(&ev, TRACE_EVENT_EXIT, TASK_NEW, 30, 0x9400, 0xb000, 0, 0);
	ev.e[ev.n - 1].tid = 2;
	CHECK(build(&m, &trace, &ev) == 0);
	CHECK(m.task_count == 3);
	if (m.task_count == 3) {
		CHECK(m.tasks[1].ptr == 0xa000 && m.tasks[1].spawn_site == 0);
		CHECK(m.tasks[2].ptr == 0xb000 && m.tasks[2].spawn_site == 0x6666);
	}
	CHECK(m.spawns == 1);
	task_model__free(&m);
	trace_file__close(trace);
}

/* Folding: 50 tasks spawned, polled and freed one after another at their
 * own addresses take one task slot and the nodes of one, reused; the full
 * model keeps all 50. */
UNIT_TEST(tasks_folded_once_released)
{
	struct events ev = { .n = 0 };
	struct trace_file *trace = NULL;
	struct task_model full, folded;

	struct task_warnings warn_full, warn_folded;

	for (uint64_t i = 0; i < 10; i++) { /* 10 x 6 events, 4 more: 64 of the 64 */
		uint64_t task = 0x7a00 + i * 0x100, ts = 1000 + i * 100;
		int pending = i == 3; /* parks, is woken, then aborted: dropped and freed unpolled */

		add(&ev, TRACE_EVENT_EXIT, TASK_NEW, ts, 0x9400, task, 0, 0);
		add(&ev, TRACE_EVENT_ENTRY, RAW_POLL, ts + 10, 0x9000, task, 0, 0);
		add(&ev, TRACE_EVENT_ENTRY, OUTER, ts + 11, 0x8f00, 0xf1, 0, 0);
		if (i == 6) /* wakes itself in its last poll */
			add(&ev, TRACE_EVENT_ENTRY, WAKE_BY_REF, ts + 12, 0x8e00, task, 0, 0);
		add(&ev, TRACE_EVENT_EXIT, OUTER, ts + 13, 0x8f00, pending, pending ? 3 : 0,
		    pending ? TRACE_EVENT_STATE : 0);
		add(&ev, TRACE_EVENT_EXIT, RAW_POLL, ts + 14, 0x9000, 0, 0, 0);
		if (pending) {
			add(&ev, TRACE_EVENT_ENTRY, WAKE_BY_REF, ts + 15, 0x9000, task, 0, 0);
			add(&ev, TRACE_EVENT_ENTRY, DROP_OUTER, ts + 16, 0x9000, 0xf1, 0, 0);
		}
		if (i == 5) /* woken after it completed, before its memory goes */
			add(&ev, TRACE_EVENT_ENTRY, WAKE_BY_REF, ts + 15, 0x9000, task, 0, 0);
		add(&ev, TRACE_EVENT_ENTRY, TASK_FREE, ts + 20, 0x9000, task, 0, 0);
	}
	CHECK(build(&full, &trace, &ev) == 0);
	CHECK(full.task_count == 10 && full.node_count == 10);
	CHECK(full.cancellation_count == 1 && full.wake_count == 3 && full.tasks[3].waiting_head);
	CHECK(task_model__build(&folded, trace, TASK_MODEL_FOLD) == 0);
	CHECK(folded.task_count <= 2 && folded.node_count <= 2);
	CHECK(folded.tasks_folded >= 9 && folded.live_tasks.count <= 2);
	/* every task was released: none of their nodes is left indexed */
	CHECK(folded.node_index.count == 0 && folded.free_nodes != 0);
	CHECK(folded.free_wakes != 0); /* the aborted task's unanswered wake, given back */
	/* folded tasks' warnings are kept in sums */
	task_model__warnings(&full, 0, &warn_full);
	task_model__warnings(&folded, 0, &warn_folded);
	CHECK(warn_full.self_wakes == 1 && warn_full.wakes_after_end == 1);
	CHECK(warn_folded.self_wakes == warn_full.self_wakes && warn_folded.wakes_after_end == warn_full.wakes_after_end);
	task_model__free(&folded);
	task_model__free(&full);
	trace_file__close(trace);
}
