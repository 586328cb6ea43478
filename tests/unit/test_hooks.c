/* elf/hooks and poll_fn_list__add_hooks: the runtime hook table, drop glue
 * pairing, on names and on the test targets (debug and release builds). */
#include <stdlib.h>
#include <unistd.h>

#include "elf/hooks.h"
#include "elf/pollfn.h"
#include "test_elf_fixture.h"
#include "unit.h"

#define TARGET(mode, name) unit_build_path("targets/rust/" mode "/" name)

UNIT_TEST(hooks_find_by_demangled_name)
{
	bool oom = false;
	const struct hook_spec *s;

	s = hook_find("tokio::runtime::task::waker::wake_by_val", &oom);
	CHECK(s && s->role == ROLE_WAKE && s->runtime == RUNTIME_TOKIO);
	/* generic arguments, in either demangling, do not matter */
	s = hook_find("async_task::raw::RawTask<F,T,S>::wake_by_ref", &oom);
	CHECK(s && s->role == ROLE_WAKE_BY_REF && s->runtime == RUNTIME_ASYNC_TASK);
	s = hook_find("<async_task::raw::RawTask<F, (), S>>::destroy", &oom);
	CHECK(s && s->role == ROLE_TASK_FREE);
	s = hook_find("<futures_executor::local_pool::LocalSpawner as "
		      "futures_task::spawn::LocalSpawn>::spawn_local_obj", &oom);
	CHECK(s && s->role == ROLE_SPAWN && s->runtime == RUNTIME_FUTURES);
	s = hook_find("alloc::task::raw_waker::wake::<my::W>", &oom);
	CHECK(s && s->role == ROLE_WAKE && s->runtime == RUNTIME_NONE);
	CHECK(hook_find("tokio::runtime::task::waker::waker_ref", &oom) == NULL);
	CHECK(hook_find("tokio::task::spawn::spawn::{{closure}}", &oom) == NULL);
	/* a fallback names what it stands in for, and yields to the next entry */
	s = hook_find("async_task::runnable::spawn_unchecked", &oom);
	CHECK(s && s->role == ROLE_TASK_NEW && s->unless);
	CHECK(s && hook_next(s) && hook_next(s)->role == ROLE_SPAWN && !hook_next(s)->unless);
	CHECK(!oom);
}

UNIT_TEST(hooks_matcher_skips_other_symbols)
{
	struct hook_matcher *m;

	CHECK(hook_matcher__new(&m) == 0);
	if (!m)
		return;
	CHECK(hook_matcher__may_match(m, "_ZN5tokio7runtime4task5waker11wake_by_val17h0123456789abcdefE"));
	CHECK(hook_matcher__may_match(m, "_ZN10async_task3raw28RawTask$LT$F$C$T$C$S$GT$4wake17h0123456789abcdefE"));
	CHECK(hook_matcher__may_match(m, "_RNvNtNtCs1234_5alloc4task9raw_waker4wake"));
	CHECK(!hook_matcher__may_match(m, "_ZN4core3fmt9Formatter3pad17h0123456789abcdefE"));
	CHECK(!hook_matcher__may_match(m, "main"));
	hook_matcher__free(m);
}

static void check_key(int *unit_failures_, int (*fn)(const char *, char **), const char *name,
		      const char *want)
{
	char *key = NULL;

	CHECK(fn(name, &key) == 0);
	if (want)
		CHECK_STR(key, want);
	else
		CHECK(key == NULL);
	free(key);
}

UNIT_TEST(hooks_future_keys_pair_polls_with_glue)
{
	check_key(unit_failures_, future_key_of_poll, "tokio_mt::leaf::{{closure}}",
		  "tokio_mt::leaf::{{closure}}");
	check_key(unit_failures_, future_key_of_glue, "core::ptr::drop_in_place<tokio_mt::leaf::{{closure}}>",
		  "tokio_mt::leaf::{{closure}}");
	/* v0 closures and turbofish, legacy closures: one key */
	check_key(unit_failures_, future_key_of_glue, "core::ptr::drop_in_place::<app::f::{closure#1}>",
		  "app::f::{{closure}}");
	check_key(unit_failures_, future_key_of_poll,
		  "<tokio::sync::oneshot::Receiver<T> as core::future::future::Future>::poll",
		  "tokio::sync::oneshot::Receiver");
	check_key(unit_failures_, future_key_of_glue, "core::ptr::drop_in_place<tokio::sync::oneshot::Receiver<()>>",
		  "tokio::sync::oneshot::Receiver");
	check_key(unit_failures_, future_key_of_poll, "<futures_util::future::Map<A, B> as "
		  "core::future::future::Future>::poll", "futures_util::future::Map");
	check_key(unit_failures_, future_key_of_poll, "tokio::runtime::task::raw::poll", NULL);
	check_key(unit_failures_, future_key_of_glue, "core::ptr::drop_in_place", NULL);
	check_key(unit_failures_, future_key_of_glue, "core::ptr::read<u8>", NULL);
}

static const struct poll_fn *find(const struct poll_fn_list *l, const char *name, uint8_t role)
{
	for (size_t i = 0; i < l->count; i++)
		if (l->fns[i].role == role && strcmp(l->fns[i].demangled, name) == 0)
			return &l->fns[i];
	return NULL;
}

static size_t count_role(const struct poll_fn_list *l, uint8_t role)
{
	size_t n = 0;

	for (size_t i = 0; i < l->count; i++)
		n += l->fns[i].role == role;
	return n;
}

/* Sorted and unique, offsets right, every glue pointing at a poll
 * function of its own type. */
static void check_list(int *unit_failures_, const struct poll_fn_list *l, const char *path)
{
	for (size_t i = 0; i < l->count; i++) {
		const struct poll_fn *fn = &l->fns[i];

		CHECK(i == 0 || l->fns[i - 1].addr < fn->addr);
		CHECK(fn->file_offset == elf_fixture__file_offset(path, fn->addr));
		if (fn->role != ROLE_DROP)
			continue;
		CHECK(fn->target < l->count && l->fns[fn->target].role == ROLE_POLL);
		if (fn->target < l->count && fn->future_type && l->fns[fn->target].future_type)
			CHECK_STR(fn->future_type, l->fns[fn->target].future_type);
	}
}

static int load_all(const char *path, struct poll_fn_list *l, const regex_t *match)
{
	if (access(path, R_OK) != 0) {
		unit_skip("%s not built (make targets): hook checks skipped\n", path);
		return -1;
	}
	if (poll_fn_list__load(l, path, match) != 0)
		return -1;
	if (poll_fn_list__add_hooks(l, path) != 0) {
		poll_fn_list__free(l);
		return -1;
	}
	return 0;
}

/* Each async fn's glue drops exactly its future, and names it so. */
static void check_chain_glue(int *unit_failures_, const struct poll_fn_list *l, const char *krate)
{
	static const char *const fns[] = { "outer", "middle", "leaf" };

	for (size_t i = 0; i < 3; i++) {
		char poll[128], glue[160];
		const struct poll_fn *g;

		snprintf(poll, sizeof(poll), "%s::%s::{{closure}}", krate, fns[i]);
		snprintf(glue, sizeof(glue), "core::ptr::drop_in_place<%s>", poll);
		g = find(l, glue, ROLE_DROP);
		CHECK(g != NULL);
		if (!g)
			continue;
		CHECK_STR(l->fns[g->target].demangled, poll);
		CHECK(g->context == CONTEXT_COMPILER);
		if (l->has_dwarf) {
			char type[160];

			snprintf(type, sizeof(type), "%s::%s::{async_fn_env#0}", krate, fns[i]);
			CHECK_STR(g->future_type, type);
		}
	}
}

UNIT_TEST(hooks_tokio_debug)
{
	const char *path = TARGET("debug", "tokio_mt");
	struct poll_fn_list l;
	const struct poll_fn *f;

	if (load_all(path, &l, NULL) != 0)
		return;
	check_list(unit_failures_, &l, path);
	f = find(&l, "tokio::runtime::task::waker::wake_by_val", ROLE_WAKE);
	CHECK(f && f->runtime == RUNTIME_TOKIO && f->context == CONTEXT_TASK);
	CHECK(find(&l, "tokio::runtime::task::waker::wake_by_ref", ROLE_WAKE_BY_REF));
	CHECK(find(&l, "tokio::runtime::task::raw::RawTask::new", ROLE_TASK_NEW));
	CHECK(find(&l, "tokio::runtime::task::raw::dealloc", ROLE_TASK_FREE));
	CHECK(find(&l, "tokio::task::spawn::spawn", ROLE_SPAWN));
	CHECK(find(&l, "tokio::task::spawn::spawn_inner", ROLE_SPAWN));
	/* bind only stands in for RawTask::new where that is inlined */
	CHECK(!find(&l, "tokio::runtime::task::list::OwnedTasks<S>::bind", ROLE_TASK_NEW));
	check_chain_glue(unit_failures_, &l, "tokio_mt");
	f = find(&l, "core::ptr::drop_in_place<tokio_mt::main::{{closure}}>", ROLE_DROP);
	CHECK(f && f->context == CONTEXT_ANONYMOUS);
	/* YieldNow needs no drop glue: none is made up */
	CHECK(!find(&l, "core::ptr::drop_in_place<targets::YieldNow>", ROLE_DROP));
	poll_fn_list__free(&l);
}

UNIT_TEST(hooks_tokio_release)
{
	const char *path = TARGET("release", "tokio_mt");
	struct poll_fn_list l;

	if (load_all(path, &l, NULL) != 0)
		return;
	check_list(unit_failures_, &l, path);
	CHECK(find(&l, "tokio::runtime::task::waker::wake_by_val", ROLE_WAKE));
	CHECK(find(&l, "tokio::runtime::task::waker::wake_by_ref", ROLE_WAKE_BY_REF));
	CHECK(find(&l, "tokio::runtime::task::list::OwnedTasks<S>::bind", ROLE_TASK_NEW));
	CHECK(find(&l, "tokio::runtime::task::raw::dealloc", ROLE_TASK_FREE));
	CHECK(find(&l, "tokio::task::spawn::spawn_inner", ROLE_SPAWN));
	poll_fn_list__free(&l);
}

UNIT_TEST(hooks_async_std)
{
	const char *debug = TARGET("debug", "async_std_tasks");
	const char *release = TARGET("release", "async_std_tasks");
	struct poll_fn_list l;
	const struct poll_fn *f;

	if (load_all(debug, &l, NULL) == 0) {
		check_list(unit_failures_, &l, debug);
		f = find(&l, "async_task::raw::RawTask<F,T,S>::wake", ROLE_WAKE);
		CHECK(f && f->runtime == RUNTIME_ASYNC_TASK);
		CHECK(find(&l, "async_task::raw::RawTask<F,T,S>::wake_by_ref", ROLE_WAKE_BY_REF));
		CHECK(find(&l, "async_task::raw::RawTask<F,T,S>::allocate", ROLE_TASK_NEW));
		CHECK(find(&l, "async_task::raw::RawTask<F,T,S>::destroy", ROLE_TASK_FREE));
		f = find(&l, "async_std::task::builder::Builder::spawn", ROLE_SPAWN);
		CHECK(f && f->runtime == RUNTIME_ASYNC_STD);
		CHECK(find(&l, "async_executor::Executor::spawn", ROLE_SPAWN));
		CHECK(find(&l, "async_task::runnable::spawn_unchecked", ROLE_SPAWN));
		check_chain_glue(unit_failures_, &l, "async_std_tasks");
		poll_fn_list__free(&l);
	}
	if (load_all(release, &l, NULL) == 0) {
		check_list(unit_failures_, &l, release);
		/* allocate is inlined: spawn_unchecked returns the task instead */
		CHECK(find(&l, "async_task::runnable::spawn_unchecked", ROLE_TASK_NEW));
		CHECK(find(&l, "async_task::raw::RawTask<F,T,S>::destroy", ROLE_TASK_FREE));
		CHECK(find(&l, "async_std::task::builder::Builder::spawn", ROLE_SPAWN));
		poll_fn_list__free(&l);
	}
}

UNIT_TEST(hooks_futures)
{
	const char *path = TARGET("debug", "futures_exec");
	struct poll_fn_list l;
	const struct poll_fn *f;

	if (load_all(path, &l, NULL) != 0)
		return;
	check_list(unit_failures_, &l, path);
	f = find(&l, "futures_task::waker::wake_arc_raw", ROLE_WAKE);
	CHECK(f && f->runtime == RUNTIME_FUTURES);
	CHECK(find(&l, "futures_task::waker::wake_by_ref_arc_raw", ROLE_WAKE_BY_REF));
	CHECK(find(&l, "futures_util::task::spawn::LocalSpawnExt::spawn_local", ROLE_SPAWN));
	CHECK(find(&l, "<futures_executor::local_pool::LocalSpawner as futures_task::spawn::LocalSpawn>"
		       "::spawn_local_obj", ROLE_SPAWN));
	CHECK(count_role(&l, ROLE_TASK_NEW) == 0); /* futures has no task allocation hook */
	check_chain_glue(unit_failures_, &l, "futures_exec");
	poll_fn_list__free(&l);
}

/* With --match, only the kept poll functions' glue comes along, and the
 * targets are indexes of the merged list. */
UNIT_TEST(hooks_glue_follows_match)
{
	const char *path = TARGET("debug", "tokio_mt");
	struct poll_fn_list l;
	regex_t re;

	if (regcomp(&re, "^tokio_mt::leaf::", REG_EXTENDED | REG_NOSUB) != 0)
		return;
	if (load_all(path, &l, &re) == 0) {
		const struct poll_fn *g = find(&l, "core::ptr::drop_in_place<tokio_mt::leaf::{{closure}}>",
					       ROLE_DROP);

		CHECK(count_role(&l, ROLE_POLL) == 1 && count_role(&l, ROLE_DROP) == 1);
		CHECK(g && strcmp(l.fns[g->target].demangled, "tokio_mt::leaf::{{closure}}") == 0);
		CHECK(count_role(&l, ROLE_WAKE) == 1);
		poll_fn_list__free(&l);
	}
	regfree(&re);
}
