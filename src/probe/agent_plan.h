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
	/* mid-function sites of inlined bodies (agent_sites.c) */
	INPROC_SITE_HOST_UNKNOWN,    /* no decoded host function holds it */
	INPROC_SITE_TARGETS_UNKNOWN, /* its host has an indirect jump whose targets are not known */
	INPROC_SITE_DISPATCH,        /* a poll start at a dispatch jump whose load cannot stand for it */
	INPROC_SITE_OVERLAP,         /* its moved bytes overlap another site's or a function's patch */
	INPROC_SITE_TOO_MANY,        /* site ids would not fit the records' 24 bits */
	INPROC_SITE_LEFT_OUT,        /* its body is left out: another of its sites needs a uprobe */
};

/* A mid-function site of an inlined async body: one uprobe site of
 * probe_plan__build (its file offset and cookie, which say what it
 * records), and whether the agent patches it instead. Planned sites are
 * in agent_plan_set.functions with func_id = function_count + index. */
struct agent_site {
	uint64_t uprobe_offset;     /* the uprobe site it stands for */
	uint64_t cookie;            /* its cookie (bpf/poll.h): body, kind, register, level, state */
	uint64_t uprobe_addr;       /* the uprobe's address in the file */
	uint64_t addr;              /* where the agent patches: uprobe_addr, or a poll start's dispatch load */
	uint32_t func_id;           /* the body */
	uint8_t refusal;            /* enum inproc_refusal: 0 planned */
	uint8_t length;             /* bytes moved, when planned */
	uint8_t reserved[2];
};

struct agent_plan_set {
	struct agent_plan_function *functions; /* the patchable ones, sorted by address */
	size_t count;
	uint8_t *refusal;          /* per func_id: enum inproc_refusal */
	size_t function_count;     /* of the poll_fn_list */
	size_t refused;            /* functions (not sites) */
	struct agent_site *sites;  /* every uprobe site of the list's inlined bodies */
	size_t site_count;
	size_t sites_planned;
};

/* Plans the inlined bodies' sites of fns into set (sites, and the planned
 * ones appended to functions; *capacity is functions'), checking them
 * against the functions planned already. 0 or a negative errno. */
struct arch_ops;
int agent_sites__plan(struct agent_plan_set *set, size_t *capacity, const char *path,
		      const struct poll_fn_list *fns, const struct arch_ops *arch);
/* Refuses (INPROC_SITE_OVERLAP) the planned sites (refusal 0, addr and
 * length set) whose bytes overlap another's or one of set's functions'
 * patches, or hold a refused site's uprobe. (agent_sites__plan's last
 * step; the tests call it alone.) */
void agent_sites__refuse_overlaps(struct agent_site *sites, size_t count, const struct agent_plan_set *set);

/* Leaves out of the plan every inlined body of fns that has a site the
 * agent cannot patch (so tracing it would need uprobes): its planned sites
 * are taken out of the functions to patch, all of its sites are refused
 * INPROC_SITE_LEFT_OUT, and its poll_fn is marked inlined.left_out.
 * Returns how many bodies were left out. */
size_t agent_plan__leave_out_partial_bodies(struct agent_plan_set *set, struct poll_fn_list *fns);

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
