/* What a function's (demangled) name, or its DWARF name, says about it.
 * Pure functions over strings: the tables of runtimes live here. */
#ifndef ASYNCTRACE_ELF_CLASSIFY_H
#define ASYNCTRACE_ELF_CLASSIFY_H

#include "elf/pollfn.h"

enum name_kind {
	NAME_OTHER = 0,  /* not a poll function */
	NAME_TASK,       /* a runtime's task poll (the task table) */
	NAME_GENFUTURE,  /* old rustc: <GenFuture<T> as Future>::poll, an async fn's poll */
	NAME_POLL_IMPL,  /* any other <X as Future>::poll: a hand-written impl */
	NAME_CLOSURE,    /* `{{closure}}` / `{closure#N}` last: an async body or a plain closure */
};

/* What a closure-like body is, from DWARF or from heuristics. */
enum closure_kind {
	CLOSURE_UNKNOWN = 0, /* the name does not say */
	CLOSURE_ASYNC_FN,    /* {async_fn#N}: the state machine of an `async fn` */
	CLOSURE_ASYNC_BLOCK, /* {async_block#N}, {async_closure#N} */
	CLOSURE_PLAIN,       /* {closure#N} and sync coroutines: not a poll function */
	CLOSURE_GENERATOR,   /* {generator#N} of old rustc: async, fn or block unknown */
};

/* Classify a demangled symbol name (legacy or v0 demangling). */
enum name_kind classify_name(const char *demangled);

/* The name as the tables spell it: generic arguments removed (`Harness<T,S>`
 * -> `Harness`, `poll::<F>` -> `poll`) and inherent-impl brackets dropped
 * (`<X>::f` -> `X::f`), so legacy and v0 demanglings of one function agree.
 * `<X as Trait>` is kept. malloc'd; NULL when out of memory. */
char *name_normalize(const char *demangled);

/* The runtime whose task-poll function this is ("tokio", ...), or NULL. */
const char *task_runtime_of(const char *demangled);
/* The same as an enum runtime_kind (RUNTIME_NONE when NULL or unknown). */
enum runtime_kind runtime_kind_from_name(const char *runtime);

/* From the DW_AT_name rustc gives the subprogram (`{async_fn#0}`, ...). */
enum closure_kind closure_kind_from_dwarf_name(const char *dw_name);

/* Without DWARF, for a closure known to be an async body: an async block or
 * closure nested in another closure-like body (`f::{{closure}}::{{closure}}`)
 * is anonymous; otherwise assume `async fn f` (an async block directly in a
 * plain fn looks the same and is misclassified). */
enum closure_kind closure_kind_from_name(const char *demangled);

/* From the name alone (no code, no DWARF: a symbol file, an imported
 * log): its context class and body kind; any function that is no poll
 * function is CONTEXT_FUNCTION, BODY_UNKNOWN. */
void classify_by_name(const char *demangled, uint8_t *context, uint8_t *body);

#endif
