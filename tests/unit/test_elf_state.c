/* State layouts (await points) of async bodies, from DWARF, against the
 * source of tests/targets: each SuspendN is declared at its `.await`. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "elf/pollfn.h"
#include "unit.h"

#define SOURCE "tests/targets/rust/src/bin/tokio_mt.rs"

/* The lines holding `.await` in `async fn <name>(` of the source, up to
 * the closing `}` in column 0. Returns how many (at most cap). */
static size_t await_lines(const char *source, const char *name, unsigned *lines, size_t cap)
{
	FILE *f = fopen(source, "r");
	char buf[512], head[128];
	unsigned line = 0;
	size_t n = 0;
	bool inside = false;

	if (!f)
		return 0;
	snprintf(head, sizeof(head), "async fn %s(", name);
	while (fgets(buf, sizeof(buf), f)) {
		line++;
		if (!inside) {
			inside = strstr(buf, head) != NULL;
			continue;
		}
		if (buf[0] == '}')
			break;
		if (strstr(buf, ".await") && n < cap)
			lines[n++] = line;
	}
	fclose(f);
	return n;
}

static const struct poll_fn *by_name(const struct poll_fn_list *l, const char *name)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->fns[i].demangled, name) == 0)
			return &l->fns[i];
	return NULL;
}

static void check_awaits(int *unit_failures_, const struct poll_fn_list *l, const char *fn_name)
{
	char name[128], type[128];
	unsigned want[8];
	size_t n = await_lines(SOURCE, fn_name, want, 8);
	const struct poll_fn *fn;

	snprintf(name, sizeof(name), "tokio_mt::%s::{{closure}}", fn_name);
	snprintf(type, sizeof(type), "tokio_mt::%s::{async_fn_env#0}", fn_name);
	fn = by_name(l, name);
	CHECK(fn != NULL && n > 0);
	if (!fn)
		return;
	CHECK_STR(fn->future_type, type);
	/* __state is a u8; Unresumed, Returned, Panicked are 0..2, awaits 3.. */
	CHECK(fn->state.size == 1 && fn->state.offset > 0);
	CHECK(fn->state.await_count == n);
	for (size_t i = 0; i < n && i < fn->state.await_count; i++) {
		CHECK(fn->state.awaits[i].state == 3 + i);
		CHECK(fn->state.awaits[i].line == want[i]);
	}
}

UNIT_TEST(elf_state_layout_tokio_mt)
{
	const char *debug = unit_build_path("targets/rust/debug/tokio_mt");
	const char *release = unit_build_path("targets/rust/release/tokio_mt");
	struct poll_fn_list l;

	if (access(debug, R_OK) != 0 || access(SOURCE, R_OK) != 0) {
		unit_skip("%s not built (make targets): state layout checks skipped\n", debug);
		return;
	}
	CHECK(poll_fn_list__load(&l, debug, NULL) == 0);
	check_awaits(unit_failures_, &l, "outer");
	check_awaits(unit_failures_, &l, "middle");
	check_awaits(unit_failures_, &l, "leaf");
	{
		/* outer's machine: llvm-dwarfdump --name='{async_fn_env#0}' shows
		 * __state at DW_AT_data_member_location 0x50 */
		const struct poll_fn *outer = by_name(&l, "tokio_mt::outer::{{closure}}");
		const struct poll_fn *block = by_name(&l, "tokio_mt::main::{{closure}}");
		const struct poll_fn *yield = by_name(&l, "<targets::YieldNow as core::future::future::Future>::poll");

		CHECK(outer && outer->state.offset == 0x50);
		/* the async block awaits the join handles once */
		CHECK(block && block->body == BODY_ASYNC_BLOCK && block->state.await_count == 1);
		/* a hand-written future has a type, no state machine */
		CHECK(yield && yield->state.size == 0 && yield->state.awaits == NULL);
		CHECK(yield && yield->future_type && strcmp(yield->future_type, "targets::YieldNow") == 0);
	}
	poll_fn_list__free(&l);
	/* release builds (debug = 1) have no types: layout unknown */
	if (access(release, R_OK) == 0 && poll_fn_list__load(&l, release, NULL) == 0) {
		const struct poll_fn *outer = by_name(&l, "tokio_mt::outer::{{closure}}");

		CHECK(outer && outer->state.size == 0 && outer->state.await_count == 0);
		CHECK(outer && outer->future_type == NULL);
		poll_fn_list__free(&l);
	}
}
