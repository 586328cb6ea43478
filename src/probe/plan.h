/* Where to put probes: for every poll function, its entry and each
 * instruction that leaves it (found by the arch's decoder), as file
 * offsets with the cookie the BPF program decodes. */
#ifndef ASYNCTRACE_PROBE_PLAN_H
#define ASYNCTRACE_PROBE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

#include "elf/pollfn.h"

struct probe_site {
	uint64_t file_offset;
	uint64_t cookie;
	uint32_t func_id;
	uint8_t kind;      /* PROBE_KIND_ENTRY / PROBE_KIND_EXIT */
	uint64_t addr;     /* the probed instruction's address in the file */
};

struct probe_plan {
	struct probe_site *sites;
	size_t count;
	uint32_t *exits_per_function;  /* indexed by function id */
	uint32_t *unsupported_per_function; /* exits left unprobed, by function id */
	size_t function_count;
	size_t functions_without_exits; /* poll functions that never return: closed as unwound */
	size_t unsupported_exits;       /* conditional tail calls: not probed */
};

/* Plans probes for fns->fns[0..count) of the ELF at path; function ids are
 * indexes into fns. Returns 0 or a negative errno (-ENOTSUP: no probe
 * support for this architecture). */
int probe_plan__build(struct probe_plan *plan, const char *path, const struct poll_fn_list *fns);
void probe_plan__free(struct probe_plan *plan);
/* Keeps only the sites of functions with keep[func_id] set (the others are
 * traced in process), less the sites drop[0..drop_count) names (same file
 * offset and cookie: an inlined body's sites the agent patched). */
void probe_plan__keep(struct probe_plan *plan, const bool *keep, const struct probe_site *drop, size_t drop_count);
/* Only the inlined bodies' sites of fns (as probe_plan__build plans them),
 * from an analysis already made. 0 or a negative errno. */
struct elf_image;
struct inlined_set;
int probe_plan__inlined(struct probe_plan *plan, const struct elf_image *img, const struct inlined_set *set,
			const struct poll_fn_list *fns);
/* The bytes of fn's code from the open ELF file fd (malloc'ed into *code).
 * Returns 0, -EINVAL when the symbol's range is not in the file, or another
 * negative errno. */
int probe_read_code(int fd, off_t file_size, const struct poll_fn *fn, uint8_t **code);

#endif
