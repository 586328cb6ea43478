/* The zCore log reader: each line shape, the console noise around it,
 * the chatty form's address lines, GDB's seconds and cut names, and the
 * switch split. */
#include <stdlib.h>
#include <string.h>

#include "import/zcore.h"
#include "trace/trace.h"
#include "unit.h"

static int parse(struct zcore_log *log, const char *bytes, size_t len)
{
	char *text = malloc(len + 1);

	if (!text)
		return -1;
	memcpy(text, bytes, len);
	return zcore_log__parse(log, text, len);
}

#define PARSE(log, literal) parse((log), (literal), sizeof(literal) - 1)

UNIT_TEST(zcore_ebpf_lines_among_console_noise)
{
	static const char bytes[] =
		"[  1.9 WARN  0 0:0 zircon_object::probe] exiting fn, a0 = 100\r\n"
		"[ 12.4 WARN  0 0:0 zircon_object::ebpf::tracepoints] trace point symbol resolved, "
		"symbol:<a::B as core::future::future::Future>::poll addr: ffffffc08020483a\r\n"
		"[ 12.5 WARN ] trace point symbol resolved, symbol: addr: 0\r\n"
		"time-threadID-entry/exit-addr-depth: 12945196400\0 1073 entry 18446743800981243962 3\r\n"
		"\0time-threadID-entry/exit-addr-depth: 12947486900\0 18446744073709551615 exit 18446743800981243962 3\r\n"
		"time-threadID-entry/exit-addr-depth: 1294";
	struct zcore_log log;

	zcore_log__init(&log);
	CHECK(PARSE(&log, bytes) == 0);
	CHECK(log.record_count == 2);
	CHECK(log.symbol_count == 1); /* the unresolved `symbol: addr: 0` adds none */
	CHECK(log.unknown.count == 1 && log.unknown.lines[0] == 6); /* cut mid-line */
	CHECK(log.other_lines == 1);
	if (log.record_count == 2) {
		struct zcore_record *a = &log.records[0], *b = &log.records[1];

		CHECK(a->ts == 12945196400ull && a->tid == 1073 && a->kind == TRACE_EVENT_ENTRY);
		CHECK(a->addr == 0xffffffc08020483aull && a->depth == 3 && a->line == 4 && !a->name);
		CHECK(b->tid == ZCORE_EXECUTOR_TID && b->kind == TRACE_EVENT_EXIT && b->line == 5);
	}
	CHECK(zcore_log__resolve(&log) == 0);
	if (log.record_count)
		CHECK_STR(log.records[0].name, "<a::B as core::future::future::Future>::poll");
	zcore_log__free(&log);
}

UNIT_TEST(zcore_chatty_and_dumped_forms)
{
	static const char chatty[] =
		"\x1b[m\x1b[37m[169.2 \x1b[93mWARN \x1b[m] \x1b[33mtrace point symbol resolved, symbol:f::g addr: "
		"ffffffc0802f485c\x1b[m\r\n"
		"\0" "169657113400 1: [entry] FUNCTION_NAME(18446743800982227036) \0depth: 3\r\n"
		"\0\taddr = 18446743800982227036\r\n"
		"\0print registers\r\n"
		"\0kretprobe@exit\0" "169676930800 1: [exit ] FUNCTION_NAME(FUNCTION_ADDR) \0depth: 3\r\n"
		"\0\taddr = 18446743800982227036\r\n";
	static const char dumped[] =
		"reading 1.dat\n\n"
		"12945196400   1073: [entry] a::b(ffffffc0802254ae) depth: 3\n\n"
		"12947486900   1073: [exit] a::b(ffffffc0802254ae) depth: 3\n";
	struct zcore_log log;

	zcore_log__init(&log);
	CHECK(PARSE(&log, chatty) == 0);
	CHECK(log.record_count == 2 && log.unknown.count == 0);
	for (size_t i = 0; i < log.record_count; i++)
		CHECK(log.records[i].addr_known && log.records[i].addr == 0xffffffc0802f485cull &&
		      log.records[i].depth == 3 && log.records[i].tid == 1 && !log.records[i].name);
	CHECK(log.symbol_count == 1 && log.symbols[0].addr == 0xffffffc0802f485cull);
	if (log.symbol_count)
		CHECK_STR(log.symbols[0].name, "f::g");
	zcore_log__free(&log);

	zcore_log__init(&log);
	CHECK(PARSE(&log, dumped) == 0);
	CHECK(log.record_count == 2 && log.hex_addresses);
	if (log.record_count == 2) {
		CHECK(log.records[0].addr == 0xffffffc0802254aeull && log.records[1].kind == TRACE_EVENT_EXIT);
		CHECK_STR(log.records[1].name, "a::b");
	}
	zcore_log__free(&log);
}

UNIT_TEST(zcore_gdb_seconds_and_cut_names)
{
	static const char gdb[] =
		"1744298439.077273   1: [entry] ore::ptr::drop_in_place::<X>(4096) depth: 24\n"
		"1744298439.5   1: [exit ] ore::ptr::drop_in_place::<X>(8000) depth: 6\n"
		"1744298440.000000001   1: [exit ] ore::ptr::drop_in_place::<X>(8000) depth: 6\n";
	struct zcore_log log;

	zcore_log__init(&log);
	CHECK(PARSE(&log, gdb) == 0);
	CHECK(log.record_count == 3 && zcore_log__is_gdb(&log));
	if (log.record_count == 3) {
		CHECK(log.records[0].ts == 1744298439077273000ull);
		CHECK(log.records[1].ts == 1744298439500000000ull);
		CHECK(log.records[2].ts == 1744298440000000001ull);
		CHECK(log.records[1].addr == 8000); /* decimal: no hex letters seen */
	}
	CHECK(zcore_log__add_symbol_copy(&log, 4096, "core::ptr::drop_in_place::<X>") == 0);
	CHECK(zcore_log__add_symbol_copy(&log, 8000, "caller") == 0);
	CHECK(zcore_log__resolve(&log) == 0);
	for (size_t i = 0; i < log.record_count; i++) /* exits too, though 8000 names another function */
		CHECK_STR(log.records[i].name, "core::ptr::drop_in_place::<X>");
	CHECK(log.repaired_names == 3);
	zcore_log__free(&log);
}

UNIT_TEST(zcore_split_at_switch_calls)
{
	/* tid 1: outer, switch{a}, switch{b}, after; tid 2: one switch call */
	static const char lines[] =
		"10 1: [entry] outer(1) depth: 0\n"
		"20 1: [entry] sched::switch(2) depth: 1\n"
		"30 1: [entry] a(3) depth: 2\n"
		"40 1: [exit] a(3) depth: 2\n"
		"50 1: [exit] sched::switch(2) depth: 1\n"
		"55 2: [entry] sched::switch(2) depth: 0\n"
		"60 1: [entry] sched::switch(2) depth: 1\n"
		"65 2: [exit] sched::switch(2) depth: 0\n"
		"70 1: [exit] sched::switch(2) depth: 1\n"
		"80 1: [exit] outer(1) depth: 0\n";
	static const uint32_t want[] = { 1, 100, 100, 100, 100, 101, 102, 101, 102, 1 };
	struct zcore_log log;
	size_t calls = 0;

	zcore_log__init(&log);
	CHECK(PARSE(&log, lines) == 0 && log.record_count == 10);
	CHECK(zcore_log__resolve(&log) == 0);
	CHECK(zcore_log__split_at_calls(&log, "switch", 100, &calls) == 0);
	CHECK(calls == 3);
	for (size_t i = 0; i < log.record_count && i < 10; i++)
		CHECK(log.records[i].tid == want[i]);
	zcore_log__free(&log);
}

UNIT_TEST(zcore_malformed_probe_lines_counted)
{
	static const char lines[] =
		"12 1: [entry] f(1) depth: x\n"           /* depth not a number */
		"12 1: [entry] f 1 depth: 3\n"            /* no (ADDR) */
		"1: [entry] f(1) depth: 3\n"              /* no timestamp */
		"12 1: [entry] f(zz) depth: 3\n"          /* address not a number */
		"time-threadID-entry/exit-addr-depth: 1 2 both 3 4\n"
		"time-threadID-entry/exit-addr-depth: 1 2 entry 3 99999999999\n"
		"time-threadID-entry/exit-addr-depth: 99999999999999999999999 2 entry 3 4\n"
		"trace point symbol resolved, symbol:f addr: nothex\n"
		"12 1: [entry] f(1) depth: 3\n";
	struct zcore_log log;

	zcore_log__init(&log);
	CHECK(PARSE(&log, lines) == 0);
	CHECK(log.record_count == 1 && log.unknown.count == 8);
	CHECK(log.unknown.lines[0] == 1 && log.unknown.lines[4] == 5);
	zcore_log__free(&log);
}
