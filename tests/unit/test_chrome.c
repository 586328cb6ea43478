/* The Chrome export's own text: a function name longer than one buffer
 * room (Rust generics make names of many kilobytes) and one that needs
 * escaping come out whole; default fields are left out, the others are
 * there; a memory stream (no descriptor) works as a file does; a filter
 * keeps only what it names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "export/filter.h"
#include "trace/reader.h"
#include "trace_fixture.h"
#include "unit.h"
#include "util/outbuf.h"

enum { LONG_NAME, QUOTED, FUNCTION_COUNT };

static size_t count(const char *haystack, const char *needle)
{
	size_t n = 0;

	for (const char *p = haystack; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static char *export_chrome(struct trace_file *t, const struct export_filter *filter)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	int err;

	if (!out)
		return NULL;
	err = export_format__find("chrome")->write(t, filter, out);
	fclose(out);
	if (err) {
		free(buf);
		return NULL;
	}
	return buf;
}

UNIT_TEST(chrome_long_and_quoted_names)
{
	size_t long_len = 3 * OUTBUF_MAX_ROOM;
	char *long_name = malloc(long_len + 1);
	struct trace_function fns[FUNCTION_COUNT] = {
		[LONG_NAME] = { .context = CONTEXT_COMPILER, .name = long_name, .source_file = "src/a.rs",
				.source_line = 7, .result = { RESULT_IN_REGS, 1, 0, 1 } },
		[QUOTED] = { .context = CONTEXT_USER, .name = "<\"q\" as Future>::poll" },
	};
	struct trace_event ev[] = {
		{ .ts = 1000, .sp = 0x900, .arg0 = 0xf1, .pid = 1, .tid = 1, .func_id = LONG_NAME, .kind = TRACE_EVENT_ENTRY },
		{ .ts = 1100, .sp = 0x800, .arg0 = 0xf2, .pid = 1, .tid = 1, .func_id = QUOTED, .kind = TRACE_EVENT_ENTRY },
		{ .ts = 1200, .sp = 0x800, .pid = 1, .tid = 1, .func_id = QUOTED, .kind = TRACE_EVENT_EXIT },
		{ .ts = 3000, .sp = 0x900, .arg0 = 1, .pid = 1, .tid = 1, .func_id = LONG_NAME, .kind = TRACE_EVENT_EXIT },
		{ .ts = 5000, .sp = 0x800, .arg0 = 0xf2, .pid = 1, .tid = 1, .func_id = QUOTED, .kind = TRACE_EVENT_ENTRY },
		{ .ts = 5100, .sp = 0x800, .pid = 1, .tid = 1, .func_id = QUOTED, .kind = TRACE_EVENT_EXIT },
	};
	struct trace_file *t;
	struct export_filter filter;
	char *json;

	memset(long_name, 'n', long_len);
	long_name[long_len] = '\0';
	t = trace_fixture__open(fns, FUNCTION_COUNT, ev, sizeof(ev) / sizeof(ev[0]));
	CHECK(t != NULL);
	json = t ? export_chrome(t, NULL) : NULL;
	CHECK(json != NULL);
	if (json) {
		/* 3 polls, each also on the thread's block_on task track */
		CHECK(count(json, "\"ph\":\"X\"") == 6);
		/* 2 slices and its location (the task's label is cut short) */
		CHECK(count(json, long_name) == 3);
		CHECK(count(json, "\"name\":\"<\\\"q\\\" as Future>::poll\"") == 4);
		CHECK(count(json, "[\"") == 1 && strstr(json, "\",\"src/a.rs:7\"]"));
		CHECK(!strstr(json, "\"end\":") && !strstr(json, "\"cname\""));
		CHECK(count(json, "\"result\":\"Pending\"") == 2);
		CHECK(!strstr(json, "\"result\":\"?\"")); /* QUOTED has no Poll<T> layout */
		CHECK(strlen(json) > 4 && !strcmp(json + strlen(json) - 4, "\n]}\n"));
	}
	free(json);
	/* From 3.5 us after the first poll: only QUOTED's second poll (at
	 * 4 us since the origin, the first event). */
	export_filter__init(&filter);
	CHECK(export_filter__parse_time("3.5us", &filter.from_ns) == 0);
	CHECK(t && export_filter__bind(&filter, t) == 0);
	json = t ? export_chrome(t, &filter) : NULL;
	CHECK(json != NULL);
	if (json) {
		CHECK(count(json, "\"ph\":\"X\"") == 2 && count(json, "\"ts\":4.000") == 2);
		CHECK(count(json, long_name) == 1); /* its location, no slice */
	}
	free(json);
	export_filter__free(&filter);
	trace_file__close(t);
	free(long_name);
}
