/* The plan the in-process agent applies: for each function record traces,
 * whether it can be patched (and how: which instructions move, which
 * values the trampoline records), or why not. Functions refused here are
 * traced by uprobes in the same session. */
#ifndef ASYNCTRACE_PROBE_AGENT_PLAN_H
#define ASYNCTRACE_PROBE_AGENT_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "agent/agent_abi.h"
#include "elf/pollfn.h"

/* Why a function is not patched (beyond the arch's patch_refusal values,
 * which come first, numbered as in arch/arch.h). */
enum inproc_refusal {
	INPROC_PATCHABLE = 0,
	/* 1 .. PATCH_REFUSAL_COUNT - 1: the arch planner's reasons */
	INPROC_STACK_ARGUMENTS = 64, /* it may take arguments on the stack: cannot be called through */
	INPROC_SIGNATURE_UNKNOWN,    /* no DWARF types to rule out stack arguments */
	INPROC_NOT_IN_FILE,          /* its bytes are not in the file (or the symbol is bogus) */
	INPROC_COLD_PART,            /* a .cold/.part piece of another function */
	INPROC_INLINED,              /* an async body inlined into another function: a mid-function site */
	INPROC_NO_ARCH,              /* no patcher for this instruction set */
	INPROC_AGENT,                /* the agent could not apply it (its result says why) */
};

struct agent_plan_set {
	struct agent_plan_function *functions; /* the patchable ones, sorted by address */
	size_t count;
	uint8_t *refusal;          /* per func_id: enum inproc_refusal */
	size_t function_count;     /* of the poll_fn_list */
	size_t refused;
};

/* Plans every function of fns (ids = indexes) in the ELF at path.
 * Returns 0 or a negative errno. */
int agent_plan__build(struct agent_plan_set *set, const char *path, const struct poll_fn_list *fns);
/* The same, reusing the plan cached beside the analysis of `key` (see
 * elf/pollfn_cache.h) when there is one for exactly these functions, and
 * caching a new one (best effort). */
struct pollfn_cache_key;
int agent_plan__build_cached(struct agent_plan_set *set, const struct poll_fn_list *fns,
			     const struct pollfn_cache_key *key);
void agent_plan__free(struct agent_plan_set *set);
const char *inproc_refusal__name(int refusal);
/* What the agent reported for one planned function, as a refusal reason
 * for people ("bytes in memory differ from the file", ...). */
const char *agent_patch_result__name(int result);

#endif
