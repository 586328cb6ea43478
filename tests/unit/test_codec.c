/* The STREAM chunk event encoding (trace/codec.h): round trips of random
 * and structured streams (every role and flag, unwound frames, nesting
 * deeper than the shadow stack, cpu changes, huge and backward ts steps),
 * the analyses seeing the same polls and hooks through it, its size on a
 * realistic stream, and bytes no encoder wrote. */
#include <stdlib.h>
#include <string.h>

#include "trace/codec.h"
#include "trace/polls.h"
#include "unit.h"

enum { F_TASK, F_OUTER, F_MIDDLE, F_LEAF, F_YIELD, F_WAKE, F_WAKE_REF, F_SPAWN, F_TASK_NEW,
       F_TASK_FREE, F_DROP, F_PLAIN, F_COUNT };

/* One function of each role, and each result layout the encoding treats
 * apart: in arg0, in arg1 (disc_offset 8), in memory, 8 bytes, unknown. */
static const struct trace_function functions[F_COUNT] = {
	[F_TASK] = { .context = CONTEXT_TASK, .name = "tokio::runtime::task::raw::RawTask::poll" },
	[F_OUTER] = { .context = CONTEXT_COMPILER, .name = "demo::outer::{{closure}}",
		      .result = { RESULT_IN_REGS, 1, 0, 1 }, .state_size = 1 },
	[F_MIDDLE] = { .context = CONTEXT_COMPILER, .name = "demo::middle::{{closure}}",
		       .result = { RESULT_IN_REGS, 4, 8, 0x80000001 } },
	[F_LEAF] = { .context = CONTEXT_COMPILER, .name = "demo::leaf::{{closure}}", .self_arg = 1,
		     .result = { RESULT_IN_MEMORY, 2, 24, 7 } },
	[F_YIELD] = { .context = CONTEXT_USER, .name = "<demo::YieldNow as Future>::poll",
		      .result = { RESULT_IN_REGS, 8, 0, 1 } },
	[F_WAKE] = { .role = ROLE_WAKE, .name = "wake" },
	[F_WAKE_REF] = { .role = ROLE_WAKE_BY_REF, .name = "wake_by_ref" },
	[F_SPAWN] = { .role = ROLE_SPAWN, .name = "tokio::task::spawn::spawn" },
	[F_TASK_NEW] = { .role = ROLE_TASK_NEW, .name = "tokio::runtime::task::raw::RawTask::new" },
	[F_TASK_FREE] = { .role = ROLE_TASK_FREE, .name = "tokio::runtime::task::raw::dealloc" },
	[F_DROP] = { .role = ROLE_DROP, .target = F_OUTER, .name = "drop_in_place<outer>" },
	[F_PLAIN] = { .context = CONTEXT_FUNCTION, .name = "recurse" },
};

struct workload {
	struct trace_event *e;
	size_t n;
	size_t capacity;
	uint64_t rng;
	uint64_t ts;
	uint16_t cpu;
};

static uint64_t next_random(struct workload *w)
{
	/* xorshift64*: fixed seeds make every run the same stream */
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 0x2545f4914f6cdd1dULL;
}

static uint64_t below(struct workload *w, uint64_t n)
{
	return next_random(w) % n;
}

/* Time between events on a thread: µs apart as uprobes make them, now and
 * then a long idle gap, or a step back (clocks read on another cpu). */
static void step_time(struct workload *w)
{
	uint64_t r = below(w, 1000);

	if (r == 0)
		w->ts += 1ULL << 40;
	else if (r < 5 && w->ts > 100)
		w->ts -= below(w, 100);
	else
		w->ts += 1000 + below(w, 19000);
	if (below(w, 300) == 0)
		w->cpu = (uint16_t)below(w, 64);
}

static void emit(struct workload *w, uint8_t kind, uint32_t func, uint64_t sp, uint64_t arg0, uint64_t arg1,
		 uint64_t aux, uint8_t flags)
{
	if (w->n == w->capacity) {
		w->capacity = w->capacity ? w->capacity * 2 : 4096;
		w->e = realloc(w->e, w->capacity * sizeof(*w->e));
	}
	step_time(w);
	w->e[w->n++] = (struct trace_event){ .ts = w->ts, .sp = sp, .arg0 = arg0, .arg1 = arg1, .aux = aux,
					     .pid = 7, .tid = 8, .func_id = func, .cpu = w->cpu,
					     .kind = kind, .flags = flags };
}

/* Entries carry their return address, as the BPF side records them. */
static void enter(struct workload *w, uint32_t func, uint64_t sp, uint64_t arg0, uint64_t arg1)
{
	emit(w, TRACE_EVENT_ENTRY, func, sp, arg0, arg1, 0x555555550000ULL + func * 0x140 + 0x2b,
	     TRACE_EVENT_RETURN_ADDRESS);
}

/* Registers hold more than the discriminant: garbage the encoding drops. */
static uint64_t garbage(struct workload *w)
{
	return next_random(w) & 0xffffffffffff0000ULL;
}

static void leave_yield(struct workload *w, uint64_t sp, int pending)
{
	emit(w, TRACE_EVENT_EXIT, F_YIELD, sp, pending ? 1 : 0, garbage(w), 0, 0);
}

/* One task poll: task > outer > middle > leaf > yield, Pending most of
 * the time, waking itself; now and then a panic unwinds the inner three. */
static void task_poll(struct workload *w, uint64_t task)
{
	uint64_t sp = 0x7fffe0009000ULL, future = task + 0x80, ret = sp - 0x600;
	int pending = below(w, 10) != 0, panic = below(w, 40) == 0;

	enter(w, F_TASK, sp, task, 0);
	enter(w, F_OUTER, sp - 0x100, future, 0);
	enter(w, F_MIDDLE, sp - 0x1a0, future + 0x40, 0);
	enter(w, F_LEAF, sp - 0x260, ret, future + 0x58);
	enter(w, F_YIELD, sp - 0x300, future + 0x70, 0);
	if (pending)
		emit(w, TRACE_EVENT_ENTRY, below(w, 2) ? F_WAKE_REF : F_WAKE, sp - 0x380, task, 0, 0, 0);
	leave_yield(w, sp - 0x300, pending);
	if (!panic) {
		uint8_t mem = TRACE_EVENT_ARG1_FROM_MEMORY | (below(w, 20) ? 0 : TRACE_EVENT_READ_FAILED);

		emit(w, TRACE_EVENT_EXIT, F_LEAF, sp - 0x260, ret, garbage(w) | (pending ? 7 : 2), 0, mem);
		emit(w, TRACE_EVENT_EXIT, F_MIDDLE, sp - 0x1a0, garbage(w),
		     garbage(w) | (pending ? 0x80000001 : 0x5), 0, 0);
	}
	emit(w, TRACE_EVENT_EXIT, F_OUTER, sp - 0x100, garbage(w) | (pending ? 1 : 0), garbage(w),
	     pending ? 3 + below(w, 3) : 1, TRACE_EVENT_STATE);
	emit(w, TRACE_EVENT_EXIT, F_TASK, sp, below(w, 2) ? task : 0, garbage(w), 0, 0);
}

static void spawn_and_free(struct workload *w, uint64_t task)
{
	uint64_t sp = 0x7fffe0008000ULL;

	enter(w, F_SPAWN, sp, 0x7fffe0008800ULL, 0);
	emit(w, TRACE_EVENT_EXIT, F_TASK_NEW, sp - 0x90, task, garbage(w), 0, 0);
	emit(w, TRACE_EVENT_ENTRY, F_DROP, sp - 0x40, task + 0x80, 0, 0, 0);
	emit(w, TRACE_EVENT_ENTRY, F_TASK_FREE, sp - 0x40, task, 0, 0, 0);
}

/* A plain function recursing deeper than the shadow stack follows; half
 * the time a panic unwinds it all and a new call lands at its base. */
static void recursion(struct workload *w, unsigned depth)
{
	uint64_t base = 0x7fffe0007000ULL;
	int unwind = below(w, 2);

	for (unsigned i = 0; i < depth; i++)
		emit(w, TRACE_EVENT_ENTRY, F_PLAIN, base - i * 0x30, depth - i, 0, 0, 0);
	if (unwind) {
		emit(w, TRACE_EVENT_ENTRY, F_PLAIN, base, 1, 0, 0, 0);
		emit(w, TRACE_EVENT_EXIT, F_PLAIN, base, 0, 0, 0, 0);
		return;
	}
	for (unsigned i = depth; i-- > 0;)
		emit(w, TRACE_EVENT_EXIT, F_PLAIN, base - i * 0x30, i, 0, 0, 0);
}

/* Events no function table explains, which the encoding keeps whole. */
static void odd_events(struct workload *w)
{
	emit(w, TRACE_EVENT_ENTRY, F_COUNT + 5, 0x7fffe0006000ULL, 1, 2, 3, 0);
	emit(w, 7, F_OUTER, 0x7fffe0006000ULL, 4, 5, 6, 0);
	emit(w, TRACE_EVENT_EXIT, F_OUTER, 0x7fffe0006000ULL, 7, 8, 9, 0x30);
}

static void structured_workload(struct workload *w, size_t polls)
{
	for (size_t i = 0; i < polls; i++) {
		uint64_t task = 0x55555a000000ULL + below(w, 50) * 0x480;

		task_poll(w, task);
		if (below(w, 100) == 0)
			spawn_and_free(w, task);
		if (below(w, 500) == 0)
			recursion(w, 200 + (unsigned)below(w, 150));
		if (below(w, 700) == 0)
			odd_events(w);
	}
}

/* Encodes in chunks as the writer does; returns the encoded bytes. */
static size_t encode_all(const struct event_codec *codec, const struct trace_event *e, size_t n,
			 uint8_t *out, size_t chunk_events)
{
	static struct codec_state state;
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		if (i % chunk_events == 0)
			codec_state__reset(&state, e[i].ts);
		len += event_codec__encode(codec, &state, &e[i], out + len);
	}
	return len;
}

/* Decodes what encode_all wrote; 0 when every event equals what the
 * encoding keeps of the original. */
static int decode_and_compare(const struct event_codec *codec, const struct trace_event *e, size_t n,
			      const uint8_t *bytes, size_t len, size_t chunk_events, struct trace_event *decoded)
{
	static struct codec_state state;
	const uint8_t *p = bytes, *end = bytes + len;

	for (size_t i = 0; i < n; i++) {
		struct trace_event kept = event_codec__kept(codec, &e[i]);

		if (i % chunk_events == 0)
			codec_state__reset(&state, e[i].ts);
		decoded[i] = (struct trace_event){ .pid = e[i].pid, .tid = e[i].tid };
		if (event_codec__decode(codec, &state, &p, end, &decoded[i]) ||
		    memcmp(&decoded[i], &kept, sizeof(kept)) != 0)
			return -1;
	}
	return p == end ? 0 : -1;
}

static int round_trip(const struct trace_event *e, size_t n, size_t chunk_events, struct trace_event **decoded)
{
	struct event_codec codec;
	uint8_t *bytes = malloc(n * CODEC_MAX_EVENT_BYTES + 1);
	int rc = -1;

	*decoded = malloc((n + 1) * sizeof(**decoded));
	if (bytes && *decoded && event_codec__init(&codec, functions, F_COUNT) == 0) {
		size_t len = encode_all(&codec, e, n, bytes, chunk_events);

		rc = decode_and_compare(&codec, e, n, bytes, len, chunk_events, *decoded);
		event_codec__free(&codec);
	}
	free(bytes);
	return rc;
}

/* What the analyses read of an event (docs/trace-format.md, "What an
 * event keeps") is the same after the round trip. */
static int analysis_fields_equal(const struct trace_event *a, const struct trace_event *b)
{
	const struct trace_function *fn = a->func_id < F_COUNT ? &functions[a->func_id] : NULL;

	if (a->ts != b->ts || a->sp != b->sp || a->func_id != b->func_id || a->kind != b->kind ||
	    a->flags != b->flags || a->cpu != b->cpu || a->tid != b->tid || a->pid != b->pid)
		return 0;
	if (!fn || (a->kind != TRACE_EVENT_ENTRY && a->kind != TRACE_EVENT_EXIT) || a->flags > 0xf)
		return !memcmp(a, b, sizeof(*a)); /* kept whole */
	if (a->kind == TRACE_EVENT_ENTRY)
		return (fn->role == ROLE_POLL && fn->self_arg == 1 ? a->arg1 == b->arg1 : a->arg0 == b->arg0) &&
		       (!(a->flags & TRACE_EVENT_RETURN_ADDRESS) || a->aux == b->aux);
	if ((a->flags & TRACE_EVENT_STATE) && a->aux != b->aux)
		return 0;
	if (fn->role != ROLE_POLL || fn->result.mode == RESULT_UNKNOWN)
		return a->arg0 == b->arg0;
	return poll_result__decode(fn, a) == poll_result__decode(fn, b);
}

UNIT_TEST(codec_structured_stream_round_trip)
{
	struct workload w = { .rng = 0x9e3779b97f4a7c15ULL, .ts = 1000000 };
	struct trace_event *decoded = NULL;
	size_t mismatches = 0;

	structured_workload(&w, 20000);
	CHECK(round_trip(w.e, w.n, 8192, &decoded) == 0);
	for (size_t i = 0; decoded && i < w.n; i++)
		mismatches += !analysis_fields_equal(&w.e[i], &decoded[i]);
	CHECK(mismatches == 0);
	/* one chunk per event: every event decodes from a fresh state */
	free(decoded);
	CHECK(round_trip(w.e, 5000, 1, &decoded) == 0);
	free(decoded);
	free(w.e);
}

static void random_event(struct workload *w)
{
	static const uint64_t sps[] = { 0x7fffe0009000ULL, 0x7fffe0008f00ULL, 0x7fffe0008e00ULL, 0x10, 0 };
	uint8_t kind = below(w, 20) ? (uint8_t)(1 + below(w, 2)) : (uint8_t)below(w, 256);
	uint32_t func = below(w, 20) ? (uint32_t)below(w, F_COUNT) : (uint32_t)next_random(w);
	uint64_t sp = below(w, 8) ? sps[below(w, 3)] - below(w, 4) * 0x100 : next_random(w);
	uint8_t flags = below(w, 10) ? (uint8_t)below(w, 16) : (uint8_t)below(w, 256);

	emit(w, kind, func, below(w, 50) ? sp : sps[3 + below(w, 2)], next_random(w) >> below(w, 64),
	     next_random(w), next_random(w) >> below(w, 64), flags);
	if (below(w, 50) == 0)
		w->e[w->n - 1].ts = next_random(w); /* anywhere, forwards or back */
	if (below(w, 50) == 0)
		w->e[w->n - 1].cpu = (uint16_t)next_random(w);
}

UNIT_TEST(codec_random_stream_round_trip)
{
	struct workload w = { .rng = 12345, .ts = 1 };
	struct trace_event *decoded = NULL;

	for (size_t i = 0; i < 200000; i++)
		random_event(&w);
	CHECK(round_trip(w.e, w.n, 8192, &decoded) == 0);
	free(decoded);
	CHECK(round_trip(w.e, w.n, 7, &decoded) == 0);
	free(decoded);
	free(w.e);
}

struct replayed {
	struct poll *polls;
	size_t poll_count;
	struct hook *hooks;
	struct trace_event *hook_events;
	size_t hook_count;
};

static void keep_poll(const struct poll *p, void *ctx)
{
	struct replayed *r = ctx;

	r->polls = realloc(r->polls, (r->poll_count + 1) * sizeof(*r->polls));
	r->polls[r->poll_count++] = *p;
}

static void keep_hook(const struct hook *h, void *ctx)
{
	struct replayed *r = ctx;

	r->hooks = realloc(r->hooks, (r->hook_count + 1) * sizeof(*r->hooks));
	r->hook_events = realloc(r->hook_events, (r->hook_count + 1) * sizeof(*r->hook_events));
	r->hooks[r->hook_count] = *h;
	r->hooks[r->hook_count].event = NULL;
	r->hook_events[r->hook_count++] = *h->event;
}

static void replay(const struct trace_event *e, size_t n, struct replayed *r)
{
	struct poll_builder *b = poll_builder__new(functions, F_COUNT, keep_poll, r);

	poll_builder__set_hook_callback(b, keep_hook, r);
	for (size_t i = 0; i < n; i++)
		poll_builder__add(b, &e[i]);
	poll_builder__finish(b, e[n - 1].ts);
	poll_builder__free(b);
}

static int polls_equal(const struct poll *a, const struct poll *b)
{
	return a->start == b->start && a->end == b->end && a->future == b->future &&
	       a->parent_future == b->parent_future && a->task == b->task && a->path == b->path &&
	       a->parent_path == b->parent_path && a->state == b->state && a->func_id == b->func_id &&
	       a->tid == b->tid && a->pid == b->pid && a->parent_func == b->parent_func && a->cpu == b->cpu &&
	       a->depth == b->depth && a->result == b->result && a->end_kind == b->end_kind &&
	       a->runs_tasks == b->runs_tasks && a->parent_runs_tasks == b->parent_runs_tasks &&
	       a->has_state == b->has_state && a->forwarding == b->forwarding;
}

static int hooks_equal(const struct hook *a, const struct hook *b)
{
	return a->role == b->role && a->in_poll == b->in_poll && a->nested == b->nested &&
	       a->func_id == b->func_id && a->task == b->task && a->future == b->future;
}

/* The observable test: the poll builder makes the same polls (durations,
 * futures, results, states, unwinding, nesting) and hooks from decoded
 * events as from the originals. */
UNIT_TEST(codec_keeps_what_the_analyses_read)
{
	struct workload w = { .rng = 77, .ts = 5000 };
	struct trace_event *decoded = NULL;
	struct replayed a = { 0 }, b = { 0 };
	size_t poll_mismatches = 0, hook_mismatches = 0, results[3] = { 0 }, unwound = 0;

	structured_workload(&w, 5000);
	CHECK(round_trip(w.e, w.n, 8192, &decoded) == 0);
	if (decoded) {
		replay(w.e, w.n, &a);
		replay(decoded, w.n, &b);
	}
	CHECK(a.poll_count > 20000 && a.poll_count == b.poll_count);
	for (size_t i = 0; i < a.poll_count && i < b.poll_count; i++) {
		poll_mismatches += !polls_equal(&a.polls[i], &b.polls[i]);
		results[a.polls[i].result]++;
		unwound += a.polls[i].end_kind == POLL_END_UNWOUND;
	}
	CHECK(poll_mismatches == 0);
	/* the stream exercises what it should */
	CHECK(results[POLL_RESULT_READY] && results[POLL_RESULT_PENDING] && results[POLL_RESULT_UNKNOWN]);
	CHECK(unwound > 100);
	CHECK(a.hook_count > 4000 && a.hook_count == b.hook_count);
	for (size_t i = 0; i < a.hook_count && i < b.hook_count; i++)
		hook_mismatches += !hooks_equal(&a.hooks[i], &b.hooks[i]) ||
				   !analysis_fields_equal(&a.hook_events[i], &b.hook_events[i]);
	CHECK(hook_mismatches == 0);
	free(a.polls);
	free(a.hooks);
	free(a.hook_events);
	free(b.polls);
	free(b.hooks);
	free(b.hook_events);
	free(decoded);
	free(w.e);
}

/* The size the format promises, on the realistic stream: µs-apart
 * timestamps are most of what is left. */
UNIT_TEST(codec_bytes_per_event_on_a_realistic_stream)
{
	struct workload w = { .rng = 4242, .ts = 1000 };
	struct event_codec codec;
	uint8_t *bytes;
	size_t len = 0;
	double per_event;

	structured_workload(&w, 20000);
	bytes = malloc(w.n * CODEC_MAX_EVENT_BYTES);
	CHECK(bytes && event_codec__init(&codec, functions, F_COUNT) == 0);
	if (!bytes) {
		free(w.e);
		return;
	}
	len = encode_all(&codec, w.e, w.n, bytes, 8192);
	per_event = (double)len / (double)w.n;
	printf("measured: codec: %.2f bytes/event on %zu synthetic events (56 in format 2.0)\n", per_event, w.n);
	CHECK(per_event <= 6.0);
	event_codec__free(&codec);
	free(bytes);
	free(w.e);
}

/* Decoding bytes no encoder wrote (the crc32 check is skipped here):
 * every single-byte change and every truncation of a chunk is refused or
 * decodes to something, and never reads outside the chunk. */
UNIT_TEST(codec_survives_corrupt_bytes)
{
	struct workload w = { .rng = 99, .ts = 1000 };
	struct event_codec codec;
	static struct codec_state state;
	uint8_t bytes[64 * CODEC_MAX_EVENT_BYTES];
	size_t len, refused = 0, trials = 0;

	structured_workload(&w, 5);
	CHECK(w.n <= 64 && event_codec__init(&codec, functions, F_COUNT) == 0);
	len = encode_all(&codec, w.e, w.n, bytes, 8192);
	for (size_t at = 0; at <= len; at++) {
		for (unsigned change = 0; change < 256; change++) {
			/* at == len: truncations at every length instead */
			size_t end = at == len ? change % (len + 1) : len;
			uint8_t *copy = malloc(end + 1);
			const uint8_t *p = copy;
			struct trace_event e = { 0 };
			int err = 0;

			memcpy(copy, bytes, end);
			if (at < len)
				copy[at] ^= (uint8_t)(change ? change : 0xff);
			codec_state__reset(&state, w.e[0].ts);
			for (size_t i = 0; i < w.n && !err; i++)
				err = event_codec__decode(&codec, &state, &p, copy + end, &e);
			CHECK(p >= copy && p <= copy + end);
			refused += err != 0 || p != copy + end;
			trials++;
			free(copy);
		}
	}
	/* most changes show; a changed delta can decode to another stream */
	CHECK(refused > trials / 4);
	event_codec__free(&codec);
	free(w.e);
}
