#include "elf/classify.h"

#include <stdlib.h>
#include <string.h>

/* Task-poll functions of the runtimes, in name_normalize() form: one entry
 * per function that polls one task once. Add a runtime with one line. */
static const struct {
	const char *name;
	const char *runtime;
} task_table[] = {
	{ "tokio::runtime::task::raw::poll", "tokio" },
	{ "tokio::runtime::task::raw::RawTask::poll", "tokio" },
	{ "tokio::runtime::task::harness::Harness::poll", "tokio" },
	{ "<async_std::task::builder::SupportTaskLocals as core::future::future::Future>::poll",
	  "async-std" },
	/* smol, async-executor and async-std's executor run tasks through it */
	{ "async_task::raw::RawTask::run", "async-task" },
	/* async-executor wraps every spawned future in an async block that
	 * keeps the executor's bookkeeping: part of the task's poll, not one of
	 * its futures */
	{ "async_executor::Executor::spawn::{{closure}}", "async-task" },
	{ "async_executor::LocalExecutor::spawn::{{closure}}", "async-task" },
	{ "futures_executor::thread_pool::Task::run", "futures" },
	/* what futures' LocalPool and FuturesUnordered-based spawners poll */
	{ "<futures_task::future_obj::LocalFutureObj as core::future::future::Future>::poll",
	  "futures" },
	{ "<futures_task::future_obj::FutureObj as core::future::future::Future>::poll",
	  "futures" },
};

/* Before rustc 1.67 an async fn's future was GenFuture<generator>; its poll
 * is the async fn's poll. */
static const char *const genfuture_table[] = {
	"<core::future::from_generator::GenFuture as core::future::future::Future>::poll",
};

static const char future_poll_suffix[] = " as core::future::future::Future>::poll";

static bool is_ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '}';
}

/* A '>' closes a bracket unless it is the arrow of `fn() -> T`. */
static bool is_closer(const char *s, size_t i)
{
	return s[i] == '>' && !(i > 0 && s[i - 1] == '-');
}

/* Skip the generic arguments opening at s[i] == '<'; returns the index
 * after the matching '>' (or the end of the string). */
static size_t skip_generic_args(const char *s, size_t i)
{
	int depth = 0;

	for (; s[i]; i++) {
		if (s[i] == '<')
			depth++;
		else if (is_closer(s, i) && --depth == 0)
			return i + 1;
	}
	return i;
}

static char *strip_generic_args(const char *in)
{
	size_t len = strlen(in), o = 0;
	char *out = malloc(len + 1);

	if (!out)
		return NULL;
	for (size_t i = 0; in[i];) {
		bool turbofish = o >= 2 && out[o - 1] == ':' && out[o - 2] == ':';

		if (in[i] == '<' && (turbofish || (o > 0 && is_ident_char(out[o - 1])))) {
			if (turbofish)
				o -= 2;
			i = skip_generic_args(in, i);
			continue;
		}
		out[o++] = in[i++];
	}
	out[o] = '\0';
	return out;
}

/* Drop the brackets of `<X>::f` (inherent impls, printed so by v0) but keep
 * those of `<X as Trait>::f`. Works in place. */
static int drop_inherent_brackets(char *s)
{
	size_t len = strlen(s), top = 0, o = 0;
	size_t *open = malloc((len + 1) * sizeof(*open));
	bool *has_as = malloc(len + 1);

	if (!open || !has_as) {
		free(open);
		free(has_as);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '<') {
			open[top] = i;
			has_as[top++] = false;
		} else if (top && is_closer(s, i)) {
			top--;
			if (!has_as[top])
				s[open[top]] = s[i] = '\1';
		} else if (top && strncmp(s + i, " as ", 4) == 0) {
			has_as[top - 1] = true;
		}
	}
	for (size_t i = 0; i < len; i++)
		if (s[i] != '\1')
			s[o++] = s[i];
	s[o] = '\0';
	free(open);
	free(has_as);
	return 0;
}

char *name_normalize(const char *demangled)
{
	char *s = strip_generic_args(demangled);

	if (s && drop_inherent_brackets(s) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

/* The last `::`-separated segment outside any <...>. */
static const char *last_segment(const char *s)
{
	const char *last = s;
	int depth = 0;

	for (size_t i = 0; s[i]; i++) {
		if (s[i] == '<')
			depth++;
		else if (is_closer(s, i) && depth > 0)
			depth--;
		else if (depth == 0 && s[i] == ':' && s[i + 1] == ':')
			last = s + i + 2;
	}
	return last;
}

static bool is_closure_segment(const char *seg, size_t len)
{
	if (len == 11 && strncmp(seg, "{{closure}}", 11) == 0)
		return true;
	return len > 10 && strncmp(seg, "{closure#", 9) == 0 && seg[len - 1] == '}';
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const char *task_runtime_of_normalized(const char *norm)
{
	for (size_t i = 0; i < sizeof(task_table) / sizeof(task_table[0]); i++)
		if (strcmp(norm, task_table[i].name) == 0)
			return task_table[i].runtime;
	return NULL;
}

const char *task_runtime_of(const char *demangled)
{
	char *norm = name_normalize(demangled);
	const char *runtime = norm ? task_runtime_of_normalized(norm) : NULL;

	free(norm);
	return runtime;
}

enum runtime_kind runtime_kind_from_name(const char *runtime)
{
	for (int k = RUNTIME_TOKIO; runtime && k <= RUNTIME_FUTURES; k++)
		if (strcmp(runtime, runtime_kind__name((enum runtime_kind)k)) == 0)
			return (enum runtime_kind)k;
	return RUNTIME_NONE;
}

static enum name_kind classify_normalized(const char *norm)
{
	const char *seg = last_segment(norm);

	if (task_runtime_of_normalized(norm))
		return NAME_TASK;
	for (size_t i = 0; i < sizeof(genfuture_table) / sizeof(genfuture_table[0]); i++)
		if (strcmp(norm, genfuture_table[i]) == 0)
			return NAME_GENFUTURE;
	if (is_closure_segment(seg, strlen(seg)))
		return NAME_CLOSURE;
	if (norm[0] == '<' && ends_with(norm, future_poll_suffix))
		return NAME_POLL_IMPL;
	return NAME_OTHER;
}

enum name_kind classify_name(const char *demangled)
{
	enum name_kind kind;
	char *norm;

	/* Most symbols are none of these: skip the copy for them. */
	if (!strstr(demangled, "poll") && !strstr(demangled, "run") &&
	    !strstr(demangled, "closure"))
		return NAME_OTHER;
	norm = name_normalize(demangled);
	if (!norm)
		return NAME_OTHER;
	kind = classify_normalized(norm);
	free(norm);
	return kind;
}

enum closure_kind closure_kind_from_dwarf_name(const char *dw_name)
{
	static const struct {
		const char *prefix;
		enum closure_kind kind;
	} kinds[] = {
		{ "{async_fn#", CLOSURE_ASYNC_FN },
		{ "{async_gen_fn#", CLOSURE_ASYNC_FN },
		{ "{async_block#", CLOSURE_ASYNC_BLOCK },
		{ "{async_closure#", CLOSURE_ASYNC_BLOCK },
		{ "{async_gen_block#", CLOSURE_ASYNC_BLOCK },
		{ "{async_gen_closure#", CLOSURE_ASYNC_BLOCK },
		{ "{closure#", CLOSURE_PLAIN },
		{ "{gen_fn#", CLOSURE_PLAIN },
		{ "{gen_block#", CLOSURE_PLAIN },
		{ "{gen_closure#", CLOSURE_PLAIN },
		{ "{coroutine#", CLOSURE_PLAIN },
		{ "{generator#", CLOSURE_GENERATOR },
	};

	if (!dw_name)
		return CLOSURE_UNKNOWN;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strncmp(dw_name, kinds[i].prefix, strlen(kinds[i].prefix)) == 0)
			return kinds[i].kind;
	return CLOSURE_UNKNOWN;
}

enum closure_kind closure_kind_from_name(const char *demangled)
{
	char *norm = name_normalize(demangled);
	enum closure_kind kind = CLOSURE_ASYNC_FN;
	const char *seg, *parent;

	if (!norm)
		return kind;
	seg = last_segment(norm);
	if (seg - norm >= 2) {
		norm[seg - norm - 2] = '\0'; /* cut "::<last>" */
		parent = last_segment(norm);
		if (is_closure_segment(parent, strlen(parent)))
			kind = CLOSURE_ASYNC_BLOCK;
	}
	free(norm);
	return kind;
}

const char *body_kind__name(enum body_kind body)
{
	switch (body) {
	case BODY_UNKNOWN: return "unknown";
	case BODY_ASYNC_FN: return "async-fn";
	case BODY_ASYNC_BLOCK: return "async-block";
	case BODY_POLL_IMPL: return "poll-impl";
	case BODY_RUNTIME: return "runtime";
	}
	return "unknown";
}

const char *function_role__name(enum function_role role)
{
	switch (role) {
	case ROLE_POLL: return "poll";
	case ROLE_WAKE: return "wake";
	case ROLE_WAKE_BY_REF: return "wake_by_ref";
	case ROLE_SPAWN: return "spawn";
	case ROLE_TASK_NEW: return "task_new";
	case ROLE_TASK_FREE: return "task_free";
	case ROLE_DROP: return "drop";
	}
	return "unknown";
}

const char *runtime_kind__name(enum runtime_kind runtime)
{
	switch (runtime) {
	case RUNTIME_NONE: return NULL;
	case RUNTIME_TOKIO: return "tokio";
	case RUNTIME_ASYNC_TASK: return "async-task";
	case RUNTIME_ASYNC_STD: return "async-std";
	case RUNTIME_FUTURES: return "futures";
	}
	return NULL;
}

void classify_by_name(const char *demangled, uint8_t *context, uint8_t *body)
{
	*context = CONTEXT_FUNCTION;
	*body = BODY_UNKNOWN;
	switch (classify_name(demangled)) {
	case NAME_TASK:
		*context = CONTEXT_TASK;
		*body = BODY_RUNTIME;
		break;
	case NAME_GENFUTURE:
		*context = CONTEXT_COMPILER;
		*body = BODY_ASYNC_FN;
		break;
	case NAME_POLL_IMPL:
		*context = CONTEXT_USER;
		*body = BODY_POLL_IMPL;
		break;
	case NAME_CLOSURE:
		if (closure_kind_from_name(demangled) == CLOSURE_ASYNC_BLOCK) {
			*context = CONTEXT_ANONYMOUS;
			*body = BODY_ASYNC_BLOCK;
		} else {
			*context = CONTEXT_COMPILER;
			*body = BODY_ASYNC_FN;
		}
		break;
	default:
		break;
	}
}
