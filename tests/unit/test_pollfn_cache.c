/* The analysis cache: what comes back is what went in, field for field, and
 * damaged entries are refused, never trusted. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "elf/pollfn_cache.h"
#include "unit.h"

/* A debug Rust target of tests/targets, in the configured build directory. */
static const char *rust_target_path(const char *profile, const char *name)
{
	static char path[4096];
	const char *build = getenv("ASYNCTRACE_BUILD");

	snprintf(path, sizeof(path), "%s/targets/rust/%s/%s", build ? build : "build", profile, name);
	return access(path, R_OK) == 0 ? path : NULL;
}

static int same_string(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static int same_fn(const struct poll_fn *a, const struct poll_fn *b)
{
	if (a->addr != b->addr || a->size != b->size || a->file_offset != b->file_offset ||
	    !same_string(a->mangled, b->mangled) || !same_string(a->demangled, b->demangled) ||
	    a->context != b->context || a->body != b->body || a->self_arg != b->self_arg ||
	    memcmp(&a->result, &b->result, sizeof(a->result)) || !same_string(a->source_file, b->source_file) ||
	    a->source_line != b->source_line || a->role != b->role || a->runtime != b->runtime ||
	    a->target != b->target || a->stack_args != b->stack_args || a->state.offset != b->state.offset ||
	    a->state.size != b->state.size || a->state.await_count != b->state.await_count ||
	    !same_string(a->future_type, b->future_type))
		return 0;
	for (size_t i = 0; i < a->state.await_count; i++)
		if (a->state.awaits[i].state != b->state.awaits[i].state ||
		    a->state.awaits[i].line != b->state.awaits[i].line ||
		    !same_string(a->state.awaits[i].file, b->state.awaits[i].file))
			return 0;
	return 1;
}

UNIT_TEST(pollfn_cache_round_trip)
{
	const char *binary = rust_target_path("debug", "join_tokio");
	struct poll_fn_list list, back;
	uint8_t *data;
	size_t len, awaits = 0;

	if (!binary) {
		unit_skip("join_tokio not built (make targets)\n");
		return;
	}
	CHECK(poll_fn_list__load(&list, binary, NULL) == 0);
	CHECK(poll_fn_list__add_hooks(&list, binary) == 0);
	CHECK(poll_fn_list__serialize(&list, &data, &len) == 0);
	CHECK(poll_fn_list__deserialize(&back, data, len) == 0);
	CHECK(back.count == list.count && back.machine == list.machine && back.has_dwarf == list.has_dwarf &&
	      back.build_id_len == list.build_id_len && !memcmp(back.build_id, list.build_id, sizeof(back.build_id)));
	for (size_t i = 0; i < list.count && i < back.count; i++) {
		CHECK(same_fn(&list.fns[i], &back.fns[i]));
		awaits += list.fns[i].state.await_count;
	}
	CHECK(awaits > 0); /* the fields that matter were there to compare */
	poll_fn_list__free(&back);
	/* Cut short or flipped: refused (or, for a flip in a value, still a
	 * well-formed list), never a crash. */
	for (size_t cut = 0; cut < len; cut += 97)
		CHECK(poll_fn_list__deserialize(&back, data, cut) != 0);
	data[8] ^= 0xff; /* the version */
	CHECK(poll_fn_list__deserialize(&back, data, len) != 0);
	free(data);
	poll_fn_list__free(&list);
}

static int same_names(char *const *a, size_t a_count, char *const *b, size_t b_count)
{
	if (a_count != b_count)
		return 0;
	for (size_t i = 0; i < a_count; i++)
		if (!same_string(a[i], b[i]))
			return 0;
	return 1;
}

/* A release build analysed without its inlined bodies: they are named as
 * unprobed (not added), and the names survive the cache; with them, none
 * is unprobed and they are listed as functions. */
UNIT_TEST(pollfn_cache_keeps_unprobed_inlined_names)
{
	const char *binary = rust_target_path("release", "tokio_ct");
	struct poll_fn_list list, back, probed;
	struct uncounted_bodies u, v;
	uint8_t *data;
	size_t len, inlined = 0;

	if (!binary) {
		unit_skip("tokio_ct (release) not built (make targets)\n");
		return;
	}
	CHECK(poll_fn_list__load(&list, binary, NULL) == 0);
	CHECK(poll_fn_list__add_inlined(&list, binary, NULL, false, &u) == 0);
	CHECK(u.unprobed_count >= 2 && list.uncounted && list.uncounted->unprobed_count == u.unprobed_count);
	for (size_t i = 0; i < list.count; i++)
		CHECK(!list.fns[i].inlined.is);
	CHECK(poll_fn_list__serialize(&list, &data, &len) == 0);
	CHECK(poll_fn_list__deserialize(&back, data, len) == 0);
	CHECK(back.uncounted && same_names(back.uncounted->unprobed, back.uncounted->unprobed_count,
					   list.uncounted->unprobed, list.uncounted->unprobed_count) &&
	      same_names(back.uncounted->names, back.uncounted->count, list.uncounted->names,
			 list.uncounted->count));
	CHECK(poll_fn_list__load(&probed, binary, NULL) == 0);
	CHECK(poll_fn_list__add_inlined(&probed, binary, NULL, true, &v) == 0);
	CHECK(v.unprobed_count == 0 && v.count == u.count);
	for (size_t i = 0; i < probed.count; i++)
		inlined += probed.fns[i].inlined.is;
	CHECK(inlined == u.unprobed_count);
	uncounted_bodies__free(&u);
	uncounted_bodies__free(&v);
	free(data);
	poll_fn_list__free(&back);
	poll_fn_list__free(&list);
	poll_fn_list__free(&probed);
}
