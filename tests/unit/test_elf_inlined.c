/* elf/inlined on release builds of tests/targets (`debug = 1`): the async
 * fns rustc inlined into the poll functions that survive, their call lines
 * and the places where each poll enters them. Lines come from the target
 * sources, so editing a target does not break the test. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "elf/elf_image.h"
#include "elf/inlined.h"
#include "trace/function_kinds.h"
#include "unit.h"

#define SOURCES "tests/targets/rust/src/bin/"

/* Where `make targets` put the binaries (unit_build_path: the build
 * directory the tests run against). */
static void target_path(char *out, size_t len, const char *mode, const char *name)
{
	char rel[256];

	snprintf(rel, sizeof(rel), "targets/rust/%s/%s", mode, name);
	snprintf(out, len, "%s", unit_build_path(rel));
}

/* The 1-based line of the source holding `text`, 0 when none. */
static unsigned source_line(const char *path, const char *text)
{
	FILE *f = fopen(path, "r");
	char buf[512];
	unsigned line = 0, found = 0;

	while (f && !found && fgets(buf, sizeof(buf), f)) {
		line++;
		if (strstr(buf, text))
			found = line;
	}
	if (f)
		fclose(f);
	return found;
}

static int load(struct inlined_set *set, const char *path)
{
	struct elf_image img = { .fd = -1 };
	int err = elf_image__open(&img, path);

	if (!err)
		err = inlined_scan(&img, set);
	elf_image__close(&img);
	return err;
}

/* The first inlined instance of `name` (and its host). */
static const struct inlined_body *find_body(const struct inlined_set *set, const char *name,
					    const struct inlined_host **host)
{
	for (size_t i = 0; i < set->count; i++)
		for (size_t b = 0; b < set->hosts[i].body_count; b++)
			if (set->hosts[i].bodies[b].name && strcmp(set->hosts[i].bodies[b].name, name) == 0) {
				*host = &set->hosts[i];
				return &set->hosts[i].bodies[b];
			}
	return NULL;
}

static const struct inlined_entry *resume_entry(const struct inlined_body *b, int state)
{
	for (size_t i = 0; i < b->entry_count; i++)
		if (b->entries[i].kind == INLINED_ENTRY_RESUME && b->entries[i].state == state)
			return &b->entries[i];
	return NULL;
}

static bool has_exit_storing(const struct inlined_body *b, int state)
{
	for (size_t i = 0; i < b->exit_count; i++)
		if (b->exits[i].stored_state == state)
			return true;
	return false;
}

static bool entries_inside(const struct inlined_body *b)
{
	for (size_t i = 0; i < b->entry_count; i++) {
		bool in = false;

		for (size_t r = 0; r < b->range_count; r++)
			in |= b->entries[i].addr >= b->ranges[r].lo && b->entries[i].addr < b->ranges[r].hi;
		if (!in)
			return false;
	}
	return b->entry_count > 0;
}

/* An async fn with `awaits` awaits on `lines`: one resume entry for the
 * start (state 0) and one per await (3 + n) at the await's line. */
static void check_states(int *unit_failures_, const struct inlined_body *b, const unsigned *lines,
			 size_t awaits)
{
	const struct inlined_entry *start = resume_entry(b, 0);

	CHECK(b->state.found && b->state.states == 3 + awaits);
	CHECK(start != NULL);
	for (size_t n = 0; n < awaits; n++) {
		const struct inlined_entry *e = resume_entry(b, 3 + (int)n);

		CHECK(e && e->line == lines[n]);
	}
	CHECK(entries_inside(b));
	CHECK(b->exit_count > 0);
}

static void check_tokio_ct(int *unit_failures_, const struct inlined_set *set)
{
	const char *src = SOURCES "tokio_ct.rs";
	unsigned middle_call = source_line(src, "middle(id, yields).await");
	unsigned leaf_call = source_line(src, "leaf(yields).await");
	unsigned yield_line = source_line(src, "YieldNow::new(yields).await");
	const struct inlined_host *host = NULL, *leaf_host = NULL;
	const struct inlined_body *middle = find_body(set, "tokio_ct::middle::{{closure}}", &host);
	const struct inlined_body *leaf = find_body(set, "tokio_ct::leaf::{{closure}}", &leaf_host);

	CHECK(middle_call && leaf_call && yield_line);
	CHECK(middle && leaf && host == leaf_host);
	if (!middle || !leaf || host != leaf_host)
		return;
	/* outer survives as the poll function; middle and leaf live in it */
	CHECK_STR(host->name, "tokio_ct::outer::{{closure}}");
	CHECK(host->body == BODY_ASYNC_FN && host->decoded);
	CHECK(host->state.found && host->state.arg == 0 && host->state.states == 4);
	CHECK(middle->body == BODY_ASYNC_FN && middle->parent == INLINED_NO_PARENT);
	CHECK(middle->call_line == middle_call);
	CHECK(leaf->parent == (uint32_t)(middle - host->bodies) && leaf->call_line == leaf_call);
	check_states(unit_failures_, middle, &leaf_call, 1);
	check_states(unit_failures_, leaf, &yield_line, 1);
	/* outer's own dispatch resumes middle where outer awaits it */
	CHECK(middle->entry_count > 0);
	{
		bool from_outer = false;

		for (size_t i = 0; i < middle->entry_count; i++)
			from_outer |= middle->entries[i].kind == INLINED_ENTRY_TABLE &&
				      middle->entries[i].state == 3;
		CHECK(from_outer);
	}
	/* each level's state is a byte of outer's future (self = rdi) */
	CHECK(middle->state.arg == 0 && leaf->state.arg == 0);
	CHECK(middle->state.offset != leaf->state.offset && middle->state.offset != host->state.offset);
	/* leaving with Pending stores Suspend0 (3), with Ready Returned (1) */
	CHECK(has_exit_storing(middle, 3) && has_exit_storing(middle, 1));
	CHECK(has_exit_storing(leaf, 3) && has_exit_storing(leaf, 1));
}

static void check_join_tokio(int *unit_failures_, const struct inlined_set *set)
{
	const char *src = SOURCES "join_tokio.rs";
	unsigned a_lines[2] = { source_line(src, "// @a1"), source_line(src, "// @a2") };
	unsigned b_line = source_line(src, "// @b");
	const struct inlined_host *ha = NULL, *hb = NULL;
	const struct inlined_body *a = find_body(set, "join_tokio::a::{{closure}}", &ha);
	const struct inlined_body *b = find_body(set, "join_tokio::b::{{closure}}", &hb);

	CHECK(a_lines[0] && a_lines[1] && b_line);
	CHECK(a && b);
	if (!a || !b)
		return;
	/* join! polls them through MaybeDone, where they were inlined */
	CHECK(ha->name && strstr(ha->name, "MaybeDone") && hb->name && strstr(hb->name, "MaybeDone"));
	CHECK(a->call_file && strstr(a->call_file, "maybe_done.rs"));
	CHECK(a->decl_line > 0 && a->decl_line < a_lines[0]);
	check_states(unit_failures_, a, a_lines, 2);
	check_states(unit_failures_, b, &b_line, 1);
}

UNIT_TEST(elf_inlined_release_targets)
{
	char ct[512], join[512], debug[512];
	struct inlined_set set;

	target_path(ct, sizeof(ct), "release", "tokio_ct");
	target_path(join, sizeof(join), "release", "join_tokio");
	target_path(debug, sizeof(debug), "debug", "tokio_ct");
	if (access(ct, R_OK) != 0 || access(join, R_OK) != 0) {
		unit_skip("%s not built (make targets): inlined async body checks skipped\n", ct);
		return;
	}
	CHECK(load(&set, ct) == 0 && set.has_dwarf);
	check_tokio_ct(unit_failures_, &set);
	inlined_set__free(&set);
	CHECK(load(&set, join) == 0);
	check_join_tokio(unit_failures_, &set);
	inlined_set__free(&set);
	/* debug builds inline no async fn of the program */
	if (access(debug, R_OK) == 0 && load(&set, debug) == 0) {
		const struct inlined_host *h;

		CHECK(find_body(&set, "tokio_ct::middle::{{closure}}", &h) == NULL);
		inlined_set__free(&set);
	}
}

UNIT_TEST(elf_inlined_names)
{
	CHECK_STR(inlined_entry_kind__name(INLINED_ENTRY_RESUME), "resume");
	CHECK_STR(inlined_entry_kind__name(INLINED_ENTRY_FALLTHROUGH), "fallthrough");
	CHECK_STR(inlined_exit_kind__name(INLINED_EXIT_RETURN), "return");
	CHECK_STR(inlined_exit_kind__name(99), "unknown");
	CHECK_STR(inlined_entry_kind__name(0), "unknown");
}
