/* import cat's reader: both JSON forms, thread ids and names, nesting of
 * X events that start or end together, the ts unit, and every way an
 * input is refused (with where and why). */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "elf/classify.h"
#include "import/cat.h"
#include "trace/polls.h"
#include "trace/reader.h"
#include "unit.h"

struct polls_seen {
	int returned, unwound, unfinished;
	uint64_t duration[8]; /* of returned polls, by function id */
	uint32_t tid[8];
	uint32_t parent[8];   /* enclosing function's id, UINT32_MAX at the top */
};

static void on_poll(const struct poll *p, void *ctx)
{
	struct polls_seen *s = ctx;

	s->returned += p->end_kind == POLL_END_RETURNED;
	s->unwound += p->end_kind == POLL_END_UNWOUND;
	s->unfinished += p->end_kind == POLL_END_UNFINISHED;
	if (p->func_id < 8 && p->end_kind == POLL_END_RETURNED) {
		s->duration[p->func_id] += p->end - p->start;
		s->tid[p->func_id] = p->tid;
		s->parent[p->func_id] = p->parent_func;
	}
}

/* `json` in a new temp file; its path in `path` (a mkstemp template). */
static void write_temp(char *path, const char *json)
{
	int fd = mkstemp(path);
	size_t len = strlen(json);

	if (fd >= 0) {
		if (write(fd, json, len) != (ssize_t)len)
			path[0] = '\0';
		close(fd);
	}
}

static int open_json(const char *json, enum cat_ts_unit unit, struct cat_input **in, struct cat_error *err)
{
	char path[] = "/tmp/asynctrace-cat-XXXXXX";
	int e;

	write_temp(path, json);
	e = cat_input__open(in, path, unit, err);
	unlink(path);
	return e;
}

/* The input through the builder into a trace, opened; NULL on failure. */
static struct trace_file *import_json(const char *json, struct import_stats *st, const struct cat_stats **cs,
				      struct cat_input **keep)
{
	struct import_options o = { .capture = "import-cat", .source = "test.json", .clock = CLOCK_MONOTONIC,
				    .match_by_name = true, .drop_doubled_exits = true };
	char path[] = "/tmp/asynctrace-cat-trace-XXXXXX", msg[128];
	struct import_builder *b = NULL;
	struct trace_file *t = NULL;
	struct cat_error err;
	int fd = mkstemp(path);

	if (fd < 0 || open_json(json, CAT_TS_AUTO, keep, &err) || import_builder__new(&b, &o) ||
	    cat_input__add_to(*keep, b) || import_builder__write(b, path, st) ||
	    trace_file__open(&t, path, msg, sizeof(msg)))
		t = NULL;
	*cs = *keep ? cat_input__stats(*keep) : NULL;
	import_builder__free(b);
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	return t;
}

UNIT_TEST(import_cat_normalises_closure_names)
{
	char buf[128];
	uint8_t context, body;

	cat_normalise_name("mutex_example::main::_{{closure}}::_{{closure}}", buf, sizeof(buf));
	CHECK_STR(buf, "mutex_example::main::{{closure}}::{{closure}}");
	classify_by_name(buf, &context, &body);
	CHECK(context == CONTEXT_COMPILER || context == CONTEXT_ANONYMOUS);
	cat_normalise_name("_{{closure}}::a::b_{{closure}}", buf, sizeof(buf));
	CHECK_STR(buf, "_{{closure}}::a::b_{{closure}}");
	cat_normalise_name("x::_{{closure}}", buf, 5); /* truncated, still terminated */
	CHECK_STR(buf, "x::{");
	CHECK(cat_ts_unit_parse("ns") == CAT_TS_NS && cat_ts_unit_parse("s") == CAT_TS_S);
	CHECK(cat_ts_unit_parse("auto") == CAT_TS_AUTO && cat_ts_unit_parse("min") == -1);
	CHECK_STR(cat_ts_unit_name(CAT_TS_US), "us");
}

/* CAT's shape: the object form, ids as strings, the main thread by pid
 * only, "[TID] COMMAND" names, ts in µs with fractions. */
UNIT_TEST(import_cat_reads_cat_shape)
{
	static const char json[] =
		"{\"traceEvents\": [\n"
		"{\"ts\": 0, \"ph\": \"M\", \"pid\": \"10\", \"name\": \"process_name\", \"args\": {\"name\": \"[10] demo\"}},\n"
		"{\"ts\": 0, \"ph\": \"M\", \"pid\": \"11\", \"name\": \"thread_name\", \"args\": {\"name\": \"[11] worker\"}},\n"
		"{\"ts\": 0, \"ph\": \"M\", \"pid\": \"99\", \"name\": \"thread_name\", \"args\": {\"name\": \"idle\"}},\n"
		"{\"ts\": 1.5, \"ph\": \"B\", \"pid\": \"10\", \"name\": \"demo::main\"},\n"
		"{\"ts\": 2, \"ph\": \"B\", \"pid\": \"10\", \"tid\": \" 11\", \"name\": \"demo::main::_{{closure}}\"},\n"
		"{\"ts\": 3, \"ph\": \"i\", \"pid\": \"10\", \"name\": \"mark\"},\n"
		"{\"ts\": 3, \"ph\": \"C\", \"pid\": \"10\", \"name\": \"counter\"},\n"
		"{\"ts\": 4.25, \"ph\": \"E\", \"pid\": \"10\", \"tid\": 11, \"name\": \"demo::main::_{{closure}}\"},\n"
		"{\"ts\": 9.5, \"ph\": \"E\", \"pid\": \"10\", \"name\": \"demo::main\"}\n"
		"], \"displayTimeUnit\": \"ms\"}\n";
	struct polls_seen seen = { 0 };
	const struct cat_stats *cs;
	struct cat_input *in = NULL;
	struct import_stats st;
	struct trace_file *t = import_json(json, &st, &cs, &in);

	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(cs->events == 9 && cs->begins == 2 && cs->ends == 2 && cs->metadata == 3 && cs->ignored == 2);
	CHECK_STR(cs->ignored_phases, "i, C");
	CHECK(cs->unit == CAT_TS_US && !cs->from_dump_py);
	CHECK(st.pairs == 2 && st.left_open == 0 && st.orphan_exits == 0 && st.functions == 2);
	CHECK(st.threads == 2); /* thread 99 has no events: not named into the trace */
	CHECK_STR(t->functions[1].name, "demo::main::{{closure}}");
	CHECK(t->functions[1].context == CONTEXT_COMPILER);
	for (size_t i = 0; i < t->thread_count; i++)
		CHECK_STR(t->threads[i].name, t->threads[i].tid == 10 ? "demo" : "worker");
	CHECK(trace_file__replay_polls(t, on_poll, &seen, NULL) == 0);
	CHECK(seen.returned == 2 && seen.unwound == 0 && seen.unfinished == 0);
	CHECK(seen.duration[0] == 8000 && seen.duration[1] == 2250);
	CHECK(seen.tid[0] == 10 && seen.tid[1] == 11);
	trace_file__close(t);
	cat_input__free(in);
}

/* X events: nested ones sharing a start and an end, a sibling starting
 * as the other ends, a 0-length one; in an array, with a file order that
 * is not time order. */
UNIT_TEST(import_cat_nests_complete_events)
{
	static const char json[] =
		"[{\"ph\": \"X\", \"name\": \"sib\", \"tid\": 1, \"ts\": 10, \"dur\": 10},\n"
		" {\"ph\": \"X\", \"name\": \"outer\", \"tid\": 1, \"ts\": 0, \"dur\": 10},\n"
		" {\"ph\": \"X\", \"name\": \"mid\", \"tid\": 1, \"ts\": 0, \"dur\": 10},\n"
		" {\"ph\": \"X\", \"name\": \"inner\", \"tid\": 1, \"ts\": 2, \"dur\": 8},\n"
		" {\"ph\": \"X\", \"name\": \"zero\", \"tid\": 1, \"ts\": 20, \"dur\": 0}]";
	struct polls_seen seen = { 0 };
	const struct cat_stats *cs;
	struct cat_input *in = NULL;
	struct import_stats st;
	struct trace_file *t = import_json(json, &st, &cs, &in);

	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(cs->completes == 5 && st.entries == 5 && st.exits == 5);
	CHECK(st.pairs == 5 && st.left_open == 0 && st.orphan_exits == 0 && st.doubled_exits == 0);
	CHECK(trace_file__replay_polls(t, on_poll, &seen, NULL) == 0);
	CHECK(seen.returned == 5 && seen.unwound == 0 && seen.unfinished == 0);
	/* function ids in time order: outer, mid, inner, sib, zero */
	CHECK(seen.duration[0] == 10000 && seen.duration[1] == 10000 && seen.duration[2] == 8000);
	CHECK(seen.duration[3] == 10000 && seen.duration[4] == 0);
	CHECK(seen.parent[0] == UINT32_MAX && seen.parent[1] == 0 && seen.parent[2] == 1);
	CHECK(seen.parent[3] == UINT32_MAX && seen.parent[4] == UINT32_MAX);
	trace_file__close(t);
	cat_input__free(in);
}

/* zCore dump.py: ns as integers (eBPF), s as fractions (GDB); --ts-unit
 * overrides; u64 -1 pids keep 32 bits. */
UNIT_TEST(import_cat_ts_unit_of_dump_py)
{
	static const char ebpf[] =
		"{\"traceEvents\": [{\"ts\": 100, \"ph\": \"B\", \"pid\": \"18446744073709551615\", "
		"\"tid\": \" 18446744073709551615\", \"name\": \"f\"}, {\"ts\": 250, \"ph\": \"E\", \"tid\": \" 18446744073709551615\", "
		"\"name\": \"f\", \"args\": {\"Function address (For recognizing anonymous type)\": \"0xffffffc0802254ae\"}}]}";
	static const char gdb[] =
		"{\"traceEvents\": [{\"ts\": 1744349307.5, \"ph\": \"B\", \"tid\": \" 1\", \"name\": \"f\"}, "
		"{\"ts\": 1744349308.25, \"ph\": \"E\", \"tid\": \" 1\", \"name\": \"f\", "
		"\"args\": {\"Function address (For recognizing anonymous type)\": \"0x18446743800981937842\"}},"
		"{\"ts\": 1744349308.5, \"ph\": \"E\", \"tid\": \" 1\", \"name\": \"f\"}]}";
	struct polls_seen seen = { 0 };
	const struct cat_stats *cs;
	struct cat_input *in = NULL;
	struct cat_error err;
	struct import_stats st;
	struct trace_file *t = import_json(ebpf, &st, &cs, &in);

	CHECK(t != NULL);
	if (t) {
		CHECK(cs->unit == CAT_TS_NS && cs->from_dump_py);
		CHECK(t->thread_count == 1 && t->threads[0].tid == UINT32_MAX);
		CHECK(trace_file__replay_polls(t, on_poll, &seen, NULL) == 0 && seen.duration[0] == 150);
		trace_file__close(t);
	}
	cat_input__free(in);
	in = NULL;
	memset(&seen, 0, sizeof(seen));
	t = import_json(gdb, &st, &cs, &in);
	CHECK(t != NULL);
	if (t) {
		CHECK(cs->unit == CAT_TS_S && st.pairs == 1 && st.doubled_exits == 1);
		CHECK(trace_file__replay_polls(t, on_poll, &seen, NULL) == 0);
		CHECK(seen.duration[0] - 749999000 < 2000); /* 1.7e18 ns in a double: steps of 256 */
		trace_file__close(t);
	}
	cat_input__free(in);
	in = NULL;
	CHECK(open_json(ebpf, CAT_TS_US, &in, &err) == 0 && in && cat_input__stats(in)->unit == CAT_TS_US);
	cat_input__free(in);
}

static void check_refused(int *unit_failures_, const char *json, int want, uint64_t line, uint64_t event,
			  const char *what)
{
	struct cat_input *in = NULL;
	struct cat_error err;
	int e = open_json(json, CAT_TS_AUTO, &in, &err);

	if (e != want || in || err.line != line || err.event != event || !strstr(err.what, what)) {
		fprintf(stderr, "  input %.40s: got %d line %llu event %llu \"%s\"\n", json, e,
			(unsigned long long)err.line, (unsigned long long)err.event, err.what);
		(*unit_failures_)++;
	}
	cat_input__free(in);
}

UNIT_TEST(import_cat_refuses_bad_input)
{
	struct cat_input *in = NULL;
	struct cat_error err;

	check_refused(unit_failures_, "", -EBADMSG, 1, 0, "empty file");
	check_refused(unit_failures_, "hello", -EBADMSG, 1, 0, "");
	check_refused(unit_failures_, "[\n{\"ph\": \"B\",\n \"ts\": 1", -EBADMSG, 3, 0, "truncated");
	check_refused(unit_failures_, "[\n {\"ph\": \"B\" \"ts\": 1}]", -EBADMSG, 2, 0, "");
	check_refused(unit_failures_, "[] []", -EBADMSG, 1, 0, "");
	check_refused(unit_failures_, "[\"\\u00e9\xff\"]", -EBADMSG, 1, 0, "");
	check_refused(unit_failures_, "{\"events\": []}", -EINVAL, 0, 0, "not a Chrome trace");
	check_refused(unit_failures_, "42", -EINVAL, 0, 0, "not a Chrome trace");
	check_refused(unit_failures_, "[]", -ENODATA, 0, 0, "no B, E or X events (0 events");
	check_refused(unit_failures_, "[{\"ph\": \"M\", \"name\": \"thread_name\"}]", -ENODATA, 0, 0, "1 event read");
	check_refused(unit_failures_, "[{\"ph\": \"B\", \"ts\": 1, \"name\": \"f\"}, 7]", -EINVAL, 0, 2, "not a JSON object");
	check_refused(unit_failures_, "[{\"ts\": 1, \"name\": \"f\"}]", -EINVAL, 0, 1, "no \"ph\"");
	check_refused(unit_failures_, "[{\"ph\": \"B\", \"name\": \"f\"}]", -EINVAL, 0, 1, "B event without \"ts\"");
	check_refused(unit_failures_, "[{\"ph\": \"E\", \"ts\": \"1\", \"name\": \"f\"}]", -EINVAL, 0, 1, "non-numeric \"ts\"");
	check_refused(unit_failures_, "[{\"ph\": \"B\", \"ts\": -1, \"name\": \"f\"}]", -EINVAL, 0, 1, "out-of-range \"ts\"");
	check_refused(unit_failures_, "[{\"ph\": \"B\", \"ts\": 1e300, \"name\": \"f\"}]", -EINVAL, 0, 1, "out-of-range");
	check_refused(unit_failures_, "[{\"ph\": \"B\", \"ts\": 1}]", -EINVAL, 0, 1, "B event without a \"name\"");
	check_refused(unit_failures_, "[{\"ph\": \"X\", \"ts\": 1, \"name\": \"f\"}]", -EINVAL, 0, 1, "X event without \"dur\"");
	CHECK(cat_input__open(&in, "/nonexistent/x.json", CAT_TS_AUTO, &err) == -ENOENT && !in);
	CHECK(cat_input__open(&in, "/tmp", CAT_TS_AUTO, &err) == -EISDIR && !in);
}
