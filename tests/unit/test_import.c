/* The import builder: pairs across threads, drops doubled exits, leaves
 * cut polls open, and the trace it writes replays to exactly those polls. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "import/import.h"
#include "trace/polls.h"
#include "trace/reader.h"
#include "unit.h"

struct seen {
	int polls[4];      /* by function id */
	int unfinished;
	int unwound;
	uint32_t tid_of_outer_end;
	uint64_t outer_duration;
};

static void on_poll(const struct poll *p, void *ctx)
{
	struct seen *s = ctx;

	if (p->func_id < 4)
		s->polls[p->func_id]++;
	s->unfinished += p->end_kind == POLL_END_UNFINISHED;
	s->unwound += p->end_kind == POLL_END_UNWOUND;
	if (p->func_id == 0 && p->end_kind == POLL_END_RETURNED) {
		s->tid_of_outer_end = p->tid;
		s->outer_duration = p->end - p->start;
	}
}

static void add(struct import_builder *b, uint64_t ts, uint32_t tid, uint8_t kind, uint64_t addr, int depth)
{
	struct import_record r = { .ts = ts, .tid = tid, .kind = kind, .addr = addr, .depth = depth };

	import_builder__add(b, &r);
}

static int sym(const struct import_symbol *s, void *ctx)
{
	return import_builder__add_symbol(ctx, s->addr, s->name);
}

UNIT_TEST(import_builder_pairs_like_a_kernel_log)
{
	struct import_options o = { .capture = "import-test", .source = "test", .clock = CLOCK_BOOTTIME,
				    .drop_doubled_exits = true };
	char path[] = "/tmp/asynctrace-import-XXXXXX", syms[] = "/tmp/asynctrace-syms-XXXXXX", err[128];
	struct import_unknown unknown = { 0 };
	struct import_builder *b;
	struct import_stats st;
	struct trace_file *t;
	struct seen seen = { 0 };
	int fd = mkstemp(path), sfd = mkstemp(syms);
	FILE *f = fdopen(sfd, "w");

	CHECK(fd >= 0 && sfd >= 0 && f);
	close(fd);
	fprintf(f, "# a comment\n0x100 outer::{{closure}}\n0000000000000200 t _ZN5inner4poll17h0123456789abcdefE\n"
		   "not a symbol\n0x300 <leaf as core::future::future::Future>::poll\n");
	fclose(f);
	CHECK(import_builder__new(&b, &o) == 0);
	CHECK(import_read_symbol_file(syms, sym, b, &unknown) == 0);
	CHECK(unknown.count == 1 && unknown.lines[0] == 4);
	/* thread 1: outer enters, inner polls twice (its second exit doubled),
	 * leaf enters and is never left; outer's exit is logged on thread 7. */
	add(b, 10, 1, TRACE_EVENT_ENTRY, 0x100, 1);
	add(b, 20, 1, TRACE_EVENT_ENTRY, 0x200, 2);
	add(b, 30, 1, TRACE_EVENT_EXIT, 0x200, 2);
	add(b, 40, 1, TRACE_EVENT_ENTRY, 0x200, 2);
	add(b, 50, 1, TRACE_EVENT_EXIT, 0x200, 2);
	add(b, 51, 1, TRACE_EVENT_EXIT, 0x200, 2);
	add(b, 60, 1, TRACE_EVENT_ENTRY, 0x300, 2);
	add(b, 90, 7, TRACE_EVENT_EXIT, 0x100, 1);
	add(b, 95, 7, TRACE_EVENT_EXIT, 0x999, 0); /* no entry anywhere */
	add(b, 99, 7, TRACE_EVENT_ENTRY, 0x100, 0);
	CHECK(import_builder__name_thread(b, 7, "executor") == 0);
	CHECK(import_builder__write(b, path, &st) == 0);
	CHECK(st.records == 10 && st.entries == 5 && st.exits == 5);
	CHECK(st.pairs == 2 && st.cross_thread == 1 && st.doubled_exits == 1 && st.orphan_exits == 1);
	CHECK(st.left_open == 2 && st.functions == 4 && st.threads == 2 && st.unnamed == 1);
	import_builder__free(b);

	CHECK(trace_file__open(&t, path, err, sizeof(err)) == 0);
	if (t) {
		CHECK(t->function_count == 4);
		CHECK_STR(t->functions[0].name, "outer::{{closure}}");
		CHECK_STR(t->functions[1].name, "inner::poll");
		CHECK(t->functions[0].context == CONTEXT_COMPILER && t->functions[2].context == CONTEXT_USER);
		CHECK_STR(t->functions[3].name, "0x999");
		CHECK(t->trailer.end_reason == TRACE_END_IMPORTED);
		CHECK(trace_file__replay_polls(t, on_poll, &seen, NULL) == 0);
		CHECK(seen.polls[0] == 2 && seen.polls[1] == 2 && seen.polls[2] == 1 && seen.polls[3] == 0);
		/* the cross-thread exit closes the poll where it was entered */
		CHECK(seen.tid_of_outer_end == 1 && seen.outer_duration == 80);
		/* leaf: left open inside outer, closed as unwound at outer's exit;
		 * outer on thread 7: cut by the end */
		CHECK(seen.unwound == 1 && seen.unfinished == 1);
		trace_file__close(t);
	}
	unlink(path);
	unlink(syms);
}

UNIT_TEST(import_symbol_file_errors)
{
	struct import_unknown unknown = { 0 };

	CHECK(import_read_symbol_file("/nonexistent/x.sym", sym, NULL, &unknown) == -ENOENT);
	CHECK(import_read_symbol_file("/tmp", sym, NULL, &unknown) == -EISDIR);
}
