#include "elf/hooks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "elf/classify.h"

/* The runtimes' functions worth a probe besides the task polls, in
 * name_normalize() form (generic arguments dropped). Add one with a line.
 * What the probe reads (verified on the test targets' disassembly):
 *   wake / wake_by_ref: RawWakerVTable functions, argument 0 = the waker's
 *     data pointer: tokio's task header (the argument of raw::poll,
 *     RawTask::poll and Harness::poll), async-task's task allocation (the
 *     argument of RawTask::run), futures' Arc<Task> data, std's Arc<W>.
 *   task_new: returns the same pointer in the first return register.
 *   task_free: argument 0 = that pointer.
 *   spawn: entry only; the return address is the spawn site. Public
 *     wrappers call inner spawns (tokio::spawn -> spawn_inner, smol and
 *     async-std -> Executor::spawn -> async_task::spawn_unchecked): an
 *     inner entry's return address lies in an outer spawn function, and
 *     release builds inline the outer ones into user code, which is why
 *     the inner ones are listed. */
static const struct hook_spec hook_table[] = {
	/* tokio 1.x: task/waker.rs, task/raw.rs, task/list.rs */
	{ "tokio::runtime::task::waker::wake_by_val", ROLE_WAKE, RUNTIME_TOKIO, NULL },
	{ "tokio::runtime::task::waker::wake_by_ref", ROLE_WAKE_BY_REF, RUNTIME_TOKIO, NULL },
	{ "tokio::runtime::task::raw::RawTask::new", ROLE_TASK_NEW, RUNTIME_TOKIO, NULL },
	/* Release builds inline RawTask::new into bind, which returns
	 * (JoinHandle, Option<Notified>): the header in rax (and rdx). */
	{ "tokio::runtime::task::list::OwnedTasks::bind", ROLE_TASK_NEW, RUNTIME_TOKIO,
	  "tokio::runtime::task::raw::RawTask::new" },
	{ "tokio::runtime::task::list::LocalOwnedTasks::bind", ROLE_TASK_NEW, RUNTIME_TOKIO,
	  "tokio::runtime::task::raw::RawTask::new" },
	{ "tokio::runtime::task::raw::dealloc", ROLE_TASK_FREE, RUNTIME_TOKIO, NULL },
	/* raw::dealloc is only the vtable's way in; a JoinHandle's drop, a
	 * completion and a shutdown free the task through Harness::dealloc
	 * directly (self: the cell, which begins with the header). */
	{ "tokio::runtime::task::harness::Harness::dealloc", ROLE_TASK_FREE, RUNTIME_TOKIO, NULL },
	{ "tokio::task::spawn::spawn", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::spawn::spawn_inner", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::local::spawn_local", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::local::spawn_local_inner", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::local::LocalSet::spawn_local", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::blocking::spawn_blocking", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::runtime::blocking::pool::spawn_blocking", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::runtime::runtime::Runtime::spawn", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::runtime::runtime::Runtime::spawn_blocking", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::runtime::handle::Handle::spawn", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::runtime::handle::Handle::spawn_blocking", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::join_set::JoinSet::spawn", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::join_set::JoinSet::spawn_on", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::join_set::JoinSet::spawn_local", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::join_set::JoinSet::spawn_local_on", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::join_set::Builder::spawn", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::join_set::Builder::spawn_on", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::join_set::Builder::spawn_local", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::join_set::Builder::spawn_local_on", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::builder::Builder::spawn", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::builder::Builder::spawn_on", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::builder::Builder::spawn_local", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::builder::Builder::spawn_local_on", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::builder::Builder::spawn_blocking", ROLE_SPAWN, RUNTIME_TOKIO, NULL },
	{ "tokio::task::builder::Builder::spawn_blocking_on", ROLE_SPAWN, RUNTIME_TOKIO, NULL },

	/* async-task 4.x (smol, async-executor, async-std): raw.rs, runnable.rs */
	{ "async_task::raw::RawTask::wake", ROLE_WAKE, RUNTIME_ASYNC_TASK, NULL },
	{ "async_task::raw::RawTask::wake_by_ref", ROLE_WAKE_BY_REF, RUNTIME_ASYNC_TASK, NULL },
	{ "async_task::raw::RawTask::allocate", ROLE_TASK_NEW, RUNTIME_ASYNC_TASK, NULL },
	{ "async_task::raw::RawTask::destroy", ROLE_TASK_FREE, RUNTIME_ASYNC_TASK, NULL },
	/* Release builds inline allocate into spawn_unchecked, which returns
	 * (Runnable, Task): the allocation in rax and rdx. Then it is the
	 * task_new hook, not a spawn one (the executors' spawns above it
	 * still give the site). */
	{ "async_task::runnable::spawn_unchecked", ROLE_TASK_NEW, RUNTIME_ASYNC_TASK,
	  "async_task::raw::RawTask::allocate" },
	/* async_task::spawn* are re-exports of these */
	{ "async_task::runnable::spawn", ROLE_SPAWN, RUNTIME_ASYNC_TASK, NULL },
	{ "async_task::runnable::spawn_local", ROLE_SPAWN, RUNTIME_ASYNC_TASK, NULL },
	{ "async_task::runnable::spawn_unchecked", ROLE_SPAWN, RUNTIME_ASYNC_TASK, NULL },
	{ "async_task::runnable::Builder::spawn", ROLE_SPAWN, RUNTIME_ASYNC_TASK, NULL },
	{ "async_task::runnable::Builder::spawn_local", ROLE_SPAWN, RUNTIME_ASYNC_TASK, NULL },
	{ "async_task::runnable::Builder::spawn_unchecked", ROLE_SPAWN, RUNTIME_ASYNC_TASK, NULL },
	{ "async_executor::Executor::spawn", ROLE_SPAWN, RUNTIME_ASYNC_TASK, NULL },
	{ "async_executor::LocalExecutor::spawn", ROLE_SPAWN, RUNTIME_ASYNC_TASK, NULL },
	{ "smol::spawn::spawn", ROLE_SPAWN, RUNTIME_ASYNC_TASK, NULL },
	{ "async_global_executor::executor::spawn", ROLE_SPAWN, RUNTIME_ASYNC_TASK, NULL },
	{ "async_global_executor::executor::spawn_local", ROLE_SPAWN, RUNTIME_ASYNC_TASK, NULL },

	/* async-std 1.x: task/builder.rs, task/spawn*.rs */
	{ "async_std::task::builder::Builder::spawn", ROLE_SPAWN, RUNTIME_ASYNC_STD, NULL },
	{ "async_std::task::builder::Builder::local", ROLE_SPAWN, RUNTIME_ASYNC_STD, NULL },
	{ "async_std::task::spawn::spawn", ROLE_SPAWN, RUNTIME_ASYNC_STD, NULL },
	{ "async_std::task::spawn_local::spawn_local", ROLE_SPAWN, RUNTIME_ASYNC_STD, NULL },
	{ "async_std::task::spawn_blocking::spawn_blocking", ROLE_SPAWN, RUNTIME_ASYNC_STD, NULL },

	/* futures 0.3: futures-task waker.rs (every ArcWake waker, which
	 * includes LocalPool's own thread waker), executor spawners */
	{ "futures_task::waker::wake_arc_raw", ROLE_WAKE, RUNTIME_FUTURES, NULL },
	{ "futures_task::waker::wake_by_ref_arc_raw", ROLE_WAKE_BY_REF, RUNTIME_FUTURES, NULL },
	{ "futures_util::task::spawn::SpawnExt::spawn", ROLE_SPAWN, RUNTIME_FUTURES, NULL },
	{ "futures_util::task::spawn::SpawnExt::spawn_with_handle", ROLE_SPAWN, RUNTIME_FUTURES, NULL },
	{ "futures_util::task::spawn::LocalSpawnExt::spawn_local", ROLE_SPAWN, RUNTIME_FUTURES, NULL },
	{ "futures_util::task::spawn::LocalSpawnExt::spawn_local_with_handle", ROLE_SPAWN,
	  RUNTIME_FUTURES, NULL },
	{ "<futures_executor::local_pool::LocalSpawner as futures_task::spawn::LocalSpawn>::spawn_local_obj",
	  ROLE_SPAWN, RUNTIME_FUTURES, NULL },
	{ "<futures_executor::local_pool::LocalSpawner as futures_task::spawn::Spawn>::spawn_obj",
	  ROLE_SPAWN, RUNTIME_FUTURES, NULL },
	{ "futures_executor::thread_pool::ThreadPool::spawn_ok", ROLE_SPAWN, RUNTIME_FUTURES, NULL },
	{ "futures_executor::thread_pool::ThreadPool::spawn_obj_ok", ROLE_SPAWN, RUNTIME_FUTURES, NULL },
	{ "<futures_executor::thread_pool::ThreadPool as futures_task::spawn::Spawn>::spawn_obj",
	  ROLE_SPAWN, RUNTIME_FUTURES, NULL },

	/* std: wakers made from Arc<impl std::task::Wake> (alloc/src/task.rs) */
	{ "alloc::task::raw_waker::wake", ROLE_WAKE, RUNTIME_NONE, NULL },
	{ "alloc::task::raw_waker::wake_by_ref", ROLE_WAKE_BY_REF, RUNTIME_NONE, NULL },
};

#define HOOK_COUNT (sizeof(hook_table) / sizeof(hook_table[0]))

/* A piece of a table name, for memmem. */
struct token {
	const char *text;
	size_t len;
};

struct hook_matcher {
	struct token last[HOOK_COUNT], prev[HOOK_COUNT];
};

static bool is_ident(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* The identifier ending just before `end` (skipping `>` of `<X as T>`). */
static struct token ident_before(const char *name, const char *end)
{
	const char *start;

	while (end > name && !is_ident(end[-1]))
		end--;
	start = end;
	while (start > name && is_ident(start[-1]))
		start--;
	return (struct token){ start, (size_t)(end - start) };
}

int hook_matcher__new(struct hook_matcher **out)
{
	struct hook_matcher *m = calloc(1, sizeof(*m));

	*out = m;
	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < HOOK_COUNT; i++) {
		const char *name = hook_table[i].name, *end = name + strlen(name);

		m->last[i] = ident_before(name, end);
		m->prev[i] = ident_before(name, m->last[i].text);
	}
	return 0;
}

void hook_matcher__free(struct hook_matcher *m)
{
	free(m);
}

bool hook_matcher__may_match(const struct hook_matcher *m, const char *mangled)
{
	size_t len = strlen(mangled);

	for (size_t i = 0; i < HOOK_COUNT; i++)
		if (memmem(mangled, len, m->last[i].text, m->last[i].len) &&
		    memmem(mangled, len, m->prev[i].text, m->prev[i].len))
			return true;
	return false;
}

const struct hook_spec *hook_next(const struct hook_spec *spec)
{
	for (const struct hook_spec *next = spec + 1; next < hook_table + HOOK_COUNT; next++)
		if (strcmp(next->name, spec->name) == 0)
			return next;
	return NULL;
}

const struct hook_spec *hook_find(const char *demangled, bool *oom)
{
	char *norm = name_normalize(demangled);
	const struct hook_spec *found = NULL;

	if (!norm) {
		*oom = true;
		return NULL;
	}
	for (size_t i = 0; i < HOOK_COUNT && !found; i++)
		if (strcmp(norm, hook_table[i].name) == 0)
			found = &hook_table[i];
	free(norm);
	return found;
}

static const char glue_path[] = "core::ptr::drop_in_place";
static const char future_poll_suffix[] = " as core::future::future::Future>::poll";

bool drop_glue_may_match(const char *mangled)
{
	return strstr(mangled, "drop_in_place") != NULL;
}

/* `{closure#N}` (v0) -> `{{closure}}` (legacy), in place. */
static void canonical_closures(char *s)
{
	char *in = s, *out = s;

	while (*in) {
		char *close = strncmp(in, "{closure#", 9) == 0 ? strchr(in + 9, '}') : NULL;

		if (close) {
			memcpy(out, "{{closure}}", 11);
			out += 11;
			in = close + 1;
			continue;
		}
		*out++ = *in++;
	}
	*out = '\0';
}

/* The key of the type spelled by s[0..len). */
static int type_key(const char *s, size_t len, char **key)
{
	char *type = strndup(s, len);

	*key = type ? name_normalize(type) : NULL;
	free(type);
	if (!*key)
		return -ENOMEM;
	/* "{{closure}}" is never longer than "{closure#N}": in place is safe */
	canonical_closures(*key);
	return 0;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

int future_key_of_poll(const char *demangled, char **key)
{
	char *norm = name_normalize(demangled);
	size_t n;
	int err = 0;

	*key = NULL;
	if (!norm)
		return -ENOMEM;
	n = strlen(norm);
	if (norm[0] == '<' && ends_with(norm, n, future_poll_suffix))
		err = type_key(norm + 1, n - 1 - strlen(future_poll_suffix), key);
	else if (n > 0 && norm[n - 1] == '}') /* an async body: its own type */
		err = type_key(norm, n, key);
	free(norm);
	return err;
}

int future_key_of_glue(const char *demangled, char **key)
{
	size_t plen = sizeof(glue_path) - 1, n = strlen(demangled);
	const char *p = demangled + plen;

	*key = NULL;
	if (strncmp(demangled, glue_path, plen) != 0)
		return 0;
	if (strncmp(p, "::", 2) == 0)
		p += 2; /* v0 prints the turbofish */
	if (*p != '<' || demangled[n - 1] != '>' || demangled + n - 1 <= p + 1)
		return 0;
	return type_key(p + 1, (size_t)(demangled + n - 1 - (p + 1)), key);
}
