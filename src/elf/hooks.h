/* The functions besides poll functions that tell what tasks and futures
 * do: the runtimes' waker, spawn and task-allocation functions (one table
 * in hooks.c), and the drop glue of futures. Pure functions over names;
 * pollfn_hooks.c finds them in a file. */
#ifndef ASYNCTRACE_ELF_HOOKS_H
#define ASYNCTRACE_ELF_HOOKS_H

#include <stdbool.h>
#include <stdint.h>

#include "elf/pollfn.h"

struct hook_spec {
	const char *name;   /* in name_normalize() form */
	uint8_t role;       /* enum function_role */
	uint8_t runtime;    /* enum runtime_kind */
	/* When set: a fallback, used only in files without a function of
	 * that name (its job was inlined away, as in release builds); else
	 * the next entry of the same name, if any, applies. */
	const char *unless;
};

/* Precomputed identifiers of the table's names, to skip most symbols
 * without demangling them. */
struct hook_matcher;

int hook_matcher__new(struct hook_matcher **out); /* 0 or -ENOMEM */
void hook_matcher__free(struct hook_matcher *m);

/* Whether the mangled symbol may be one of the table's functions: the
 * last two identifiers of a table name appear in it verbatim (both
 * manglings store identifiers as <length><text>). */
bool hook_matcher__may_match(const struct hook_matcher *m, const char *mangled);

/* The table entry for a demangled name (legacy or v0), or NULL. Sets
 * *oom when out of memory. */
const struct hook_spec *hook_find(const char *demangled, bool *oom);

/* The next entry of the same name (what applies when `spec`'s `unless`
 * function exists), or NULL. */
const struct hook_spec *hook_next(const struct hook_spec *spec);

/* Whether the mangled symbol may be drop glue (core::ptr::drop_in_place). */
bool drop_glue_may_match(const char *mangled);

/* Names to pair a poll function with the drop glue of its future: the
 * future type of `crate::f::{{closure}}` is itself, of `<X as
 * core::future::future::Future>::poll` X; glue `core::ptr::drop_in_place<T>`
 * drops T. Keys are the types in name_normalize() form with closures
 * spelled `{{closure}}` in either mangling, so legacy and v0 names of one
 * type agree (and monomorphised copies share a key: DWARF tells those
 * apart). *key is malloc'd, or NULL when the name has no such type.
 * Return 0 or -ENOMEM. */
int future_key_of_poll(const char *demangled, char **key);
int future_key_of_glue(const char *demangled, char **key);

#endif
