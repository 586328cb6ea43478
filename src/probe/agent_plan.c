#include "probe/agent_plan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/arch.h"
#include "elf/pollfn_cache.h"
#include "elf/elf_image.h"
#include "probe/plan.h"
#include "util/array.h"

_Static_assert(PATCH_MAX_MOVED == AGENT_MAX_MOVED, "moved bytes: arch and agent agree");
_Static_assert(PATCH_MAX_RELOCS == AGENT_MAX_RELOCS, "relocations: arch and agent agree");
_Static_assert((int)PATCH_REFUSAL_COUNT < (int)INPROC_STACK_ARGUMENTS, "refusal numbers do not overlap");

const char *inproc_refusal__name(int refusal)
{
	switch (refusal) {
	case INPROC_PATCHABLE: return "patchable";
	case INPROC_STACK_ARGUMENTS: return "may take arguments on the stack (cannot be called through)";
	case INPROC_SIGNATURE_UNKNOWN: return "no DWARF types to rule out stack arguments";
	case INPROC_NOT_IN_FILE: return "code not in the file";
	case INPROC_COLD_PART: return "a split-off part of another function";
	case INPROC_INLINED: return "an async body inlined into another function (its site is mid-function)";
	case INPROC_NO_ARCH: return "no in-process patcher for this instruction set";
	case INPROC_AGENT: return "refused by the agent";
	case INPROC_SITE_HOST_UNKNOWN: return "no decoded instruction of its host function is there";
	case INPROC_SITE_TARGETS_UNKNOWN: return "its host has an indirect jump whose targets are not known";
	case INPROC_SITE_DISPATCH: return "a poll start whose dispatch load cannot stand for its jump";
	case INPROC_SITE_OVERLAP: return "its bytes overlap another patch (or another site's uprobe)";
	case INPROC_SITE_TOO_MANY: return "too many sites for the records' 24-bit ids";
	case INPROC_SITE_LEFT_OUT: return "left out: tracing its inlined body would need uprobes (record --inlined)";
	default:
		if (refusal > 0 && refusal < PATCH_REFUSAL_COUNT)
			return patch_refusal__name(refusal);
		return "unknown reason";
	}
}

const char *agent_patch_result__name(int result)
{
	switch (result) {
	case AGENT_PATCH_APPLIED: return "patched";
	case AGENT_PATCH_BYTES_DIFFER: return "its code in memory differs from the file";
	case AGENT_PATCH_OUT_OF_REACH: return "no stub memory within reach of a 32-bit jump";
	case AGENT_PATCH_FAILED: return "the code could not be made writable";
	default: return "not applied";
	}
}

static bool is_split_part(const struct poll_fn *fn)
{
	return fn->mangled && (strstr(fn->mangled, ".cold") || strstr(fn->mangled, ".part."));
}

/* The trampoline's values for a poll: the future (self), and the word of
 * the result that holds Poll<T>'s discriminant. */
static void plan_poll(struct agent_plan_function *f, const struct poll_fn *fn)
{
	f->flags = AGENT_FN_ENTRY | AGENT_FN_EXIT;
	f->entry_value = fn->self_arg == 1 ? AGENT_VALUE_ARG1 : AGENT_VALUE_ARG0;
	f->exit_value = AGENT_VALUE_RAX;
	if (fn->result.mode == RESULT_IN_REGS && fn->result.disc_offset >= 8)
		f->exit_value = AGENT_VALUE_RDX;
	if (fn->result.mode == RESULT_IN_MEMORY) {
		f->exit_value = AGENT_VALUE_MEMORY;
		f->memory_offset = fn->result.disc_offset;
		f->memory_size = fn->result.disc_size;
	}
	if (fn->state.size == 1 || fn->state.size == 2 || fn->state.size == 4) {
		f->state_size = fn->state.size;
		f->state_offset = fn->state.offset;
	}
}

/* What each role records (src/elf/pollfn.h), and whether it is called
 * through (then stack arguments rule it out). */
static int plan_role(struct agent_plan_function *f, const struct poll_fn *fn)
{
	switch (fn->role) {
	case ROLE_POLL:
		plan_poll(f, fn);
		/* A poll is (self, cx[, sret]): registers only. Another function
		 * probed on request needs its DWARF to say so. */
		if (fn->context == CONTEXT_FUNCTION && fn->stack_args != STACK_ARGS_NONE)
			return fn->stack_args == STACK_ARGS_SOME ? INPROC_STACK_ARGUMENTS : INPROC_SIGNATURE_UNKNOWN;
		return fn->stack_args == STACK_ARGS_SOME ? INPROC_STACK_ARGUMENTS : INPROC_PATCHABLE;
	case ROLE_TASK_NEW:
		f->flags = AGENT_FN_EXIT;
		f->exit_value = AGENT_VALUE_RAX;
		return fn->stack_args == STACK_ARGS_SOME ? INPROC_STACK_ARGUMENTS : INPROC_PATCHABLE;
	case ROLE_SPAWN:
		f->flags = AGENT_FN_ENTRY;
		f->entry_value = AGENT_VALUE_RETURN_ADDRESS;
		return INPROC_PATCHABLE;
	default: /* wakes, task release, drop glue: their first argument */
		f->flags = AGENT_FN_ENTRY;
		f->entry_value = AGENT_VALUE_ARG0;
		return INPROC_PATCHABLE;
	}
}

/* Function symbols' ranges, sorted by start, with the running maximum of
 * their ends: padding must lie outside all of them. */
struct code_map {
	struct range { uint64_t start, end, max_end; } *ranges;
	size_t count;
	struct elf_image img;
};

static int by_start(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int code_map__load(struct code_map *map, const char *path)
{
	struct elf_sym *syms = NULL;
	size_t count = 0;
	int err = elf_image__open(&map->img, path);

	if (!err)
		err = elf_image__functions(&map->img, &syms, &count);
	if (!err && !(map->ranges = calloc(count ? count : 1, sizeof(*map->ranges))))
		err = -ENOMEM;
	for (size_t i = 0; !err && i < count; i++)
		map->ranges[map->count++] = (struct range){ syms[i].addr, syms[i].addr + syms[i].size, 0 };
	free(syms);
	if (err)
		return err;
	qsort(map->ranges, map->count, sizeof(*map->ranges), by_start);
	for (size_t i = 0; i < map->count; i++)
		map->ranges[i].max_end = i && map->ranges[i - 1].max_end > map->ranges[i].end ?
						 map->ranges[i - 1].max_end : map->ranges[i].end;
	return 0;
}

/* Does any function overlap [lo, hi)? */
static bool code_map__covers(const struct code_map *map, uint64_t lo, uint64_t hi)
{
	size_t a = 0, b = map->count;

	while (a < b) { /* the ranges before a start below hi */
		size_t mid = a + (b - a) / 2;

		if (map->ranges[mid].start < hi)
			a = mid + 1;
		else
			b = mid;
	}
	return a > 0 && map->ranges[a - 1].max_end > lo;
}

static void code_map__free(struct code_map *map)
{
	free(map->ranges);
	if (map->img.elf || map->img.fd >= 0)
		elf_image__close(&map->img);
}

/* The AGENT_PAD_SIZE bytes before the function: padding, in no function,
 * in the same segment? */
static bool has_padding(const struct code_map *map, int fd, const struct arch_ops *arch, const struct poll_fn *fn)
{
	uint8_t pad[AGENT_PAD_SIZE];
	uint64_t start = fn->addr - AGENT_PAD_SIZE;

	if (!map || fn->addr < AGENT_PAD_SIZE || fn->file_offset < AGENT_PAD_SIZE ||
	    elf_image__file_offset(&map->img, start) != fn->file_offset - AGENT_PAD_SIZE ||
	    pread(fd, pad, sizeof(pad), (off_t)(fn->file_offset - AGENT_PAD_SIZE)) != sizeof(pad))
		return false;
	for (size_t i = 0; i < sizeof(pad); i++)
		if (pad[i] != arch->padding_byte)
			return false;
	return !code_map__covers(map, start, fn->addr);
}

static int plan_code(struct agent_plan_function *f, const struct arch_ops *arch, const uint8_t *code,
		     const struct poll_fn *fn, const struct code_map *map, int fd)
{
	struct patch_plan patch;
	int rc = arch->plan_patch(code, fn->size, fn->addr, &patch);

	/* A call near the entry, or a tiny function: the padded layout moves less. */
	if ((rc == PATCH_CONTROL_FLOW || rc == PATCH_TOO_SHORT) && arch->plan_short_patch &&
	    has_padding(map, fd, arch, fn)) {
		int short_rc = arch->plan_short_patch(code, fn->size, fn->addr, &patch);

		if (short_rc < 0)
			return short_rc;
		if (short_rc == PATCH_OK) {
			rc = PATCH_OK;
			f->pad = (uint8_t)(patch.skip + AGENT_PAD_SIZE);
		}
	}
	if (rc != PATCH_OK)
		return rc;
	f->addr = fn->addr + patch.skip;
	f->length = patch.length;
	memcpy(f->original, code + patch.skip, patch.length);
	f->reloc_count = patch.reloc_count;
	for (unsigned i = 0; i < patch.reloc_count; i++) {
		f->relocs[i].disp_offset = patch.relocs[i].disp_offset;
		f->relocs[i].insn_end = patch.relocs[i].insn_end;
		f->relocs[i].target = patch.relocs[i].target;
	}
	return PATCH_OK;
}

static int plan_function(struct agent_plan_set *set, size_t *capacity, const struct arch_ops *arch,
			 int fd, off_t file_size, uint32_t func_id, const struct poll_fn *fn,
			 const struct code_map *map)
{
	struct agent_plan_function f = { .func_id = func_id };
	uint8_t *code = NULL;
	int rc;

	if (is_split_part(fn)) {
		set->refusal[func_id] = INPROC_COLD_PART;
		return 0;
	}
	if (fn->inlined.is) {
		set->refusal[func_id] = INPROC_INLINED;
		return 0;
	}
	rc = plan_role(&f, fn);
	if (rc == INPROC_PATCHABLE) {
		int err = probe_read_code(fd, file_size, fn, &code);

		if (err == -ENOMEM)
			return err;
		rc = err ? INPROC_NOT_IN_FILE : plan_code(&f, arch, code, fn, map, fd);
		free(code);
		if (rc < 0)
			return rc;
	}
	set->refusal[func_id] = (uint8_t)rc;
	if (rc != INPROC_PATCHABLE)
		return 0;
	if (ARRAY_RESERVE(set->functions, *capacity, set->count + 1))
		return -ENOMEM;
	set->functions[set->count++] = f;
	return 0;
}

/* An inlined body is patched in process when every one of its sites is;
 * else (some go to uprobes) it stays refused as INPROC_INLINED. */
static void count_refused(struct agent_plan_set *set, const struct poll_fn_list *fns)
{
	uint8_t *sites = calloc(fns->count ? fns->count : 1, 1); /* 1: has sites, 2: one is refused */

	for (size_t i = 0; sites && i < set->site_count; i++)
		sites[set->sites[i].func_id] |= set->sites[i].refusal ? 3 : 1;
	set->refused = 0;
	for (size_t i = 0; i < fns->count; i++) {
		if (sites && fns->fns[i].inlined.is && sites[i] == 1)
			set->refusal[i] = INPROC_PATCHABLE;
		set->refused += set->refusal[i] != INPROC_PATCHABLE;
	}
	free(sites);
}

static int by_address(const void *a, const void *b)
{
	const struct agent_plan_function *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

int agent_plan__build(struct agent_plan_set *set, const char *path, const struct poll_fn_list *fns)
{
	const struct arch_ops *arch = arch_for_machine(fns->machine);
	struct code_map map = { .img = { .fd = -1 } };
	size_t capacity = 0;
	struct stat st;
	int fd, err = 0;

	*set = (struct agent_plan_set){ .function_count = fns->count };
	set->refusal = calloc(fns->count ? fns->count : 1, 1);
	if (!set->refusal)
		return -ENOMEM;
	if (!arch || !arch->plan_patch) {
		memset(set->refusal, INPROC_NO_ARCH, fns->count);
		set->refused = fns->count;
		return 0;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		err = -errno;
		if (fd >= 0)
			close(fd);
		agent_plan__free(set);
		return err;
	}
	/* Without the symbol table, no padded layout (nothing else changes). */
	bool have_map = code_map__load(&map, path) == 0;

	for (size_t i = 0; i < fns->count && !err; i++)
		err = plan_function(set, &capacity, arch, fd, st.st_size, (uint32_t)i, &fns->fns[i],
				    have_map ? &map : NULL);
	code_map__free(&map);
	close(fd);
	if (!err)
		err = agent_sites__plan(set, &capacity, path, fns, arch);
	if (err) {
		agent_plan__free(set);
		return err;
	}
	qsort(set->functions, set->count, sizeof(*set->functions), by_address);
	count_refused(set, fns);
	return 0;
}

void agent_plan__free(struct agent_plan_set *set)
{
	free(set->functions);
	free(set->refusal);
	free(set->sites);
	*set = (struct agent_plan_set){ 0 };
}

#define PLAN_CACHE_MAGIC "ATPLAN02" /* 02: inlined bodies' sites */

/* Every planned entry names a function patched whole, or a site. */
static bool cached_plan_is_sane(const struct agent_plan_set *set, const struct poll_fn_list *fns)
{
	for (size_t i = 0; i < set->count; i++) {
		uint32_t id = set->functions[i].func_id;
		bool site = set->functions[i].flags & AGENT_FN_SITE;

		if (site ? id < fns->count || id - fns->count >= set->site_count || set->sites[id - fns->count].refusal
			 : id >= fns->count || set->refusal[id])
			return false;
	}
	for (size_t i = 0; i < set->site_count; i++)
		if (set->sites[i].func_id >= fns->count || !fns->fns[set->sites[i].func_id].inlined.is)
			return false;
	return true;
}

/* On disk: magic, u64 function, planned, refused, site and planned-site
 * counts, a refusal byte per function, the planned functions and sites
 * (plain structs: the agent checks the bytes they name against memory
 * before it patches), the site table. */
static int plan_from_cache(struct agent_plan_set *set, const struct poll_fn_list *fns, const uint8_t *data,
			   size_t len)
{
	uint64_t counts[5];
	size_t head = 8 + sizeof(counts);

	if (len < head || memcmp(data, PLAN_CACHE_MAGIC, 8))
		return -EINVAL;
	memcpy(counts, data + 8, sizeof(counts));
	if (counts[0] != fns->count || counts[1] > counts[0] + counts[3] || counts[2] > counts[0] ||
	    counts[3] > AGENT_MAX_FUNCTIONS || counts[4] > counts[3] ||
	    len != head + counts[0] + counts[1] * sizeof(struct agent_plan_function) +
			   counts[3] * sizeof(struct agent_site))
		return -EINVAL;
	*set = (struct agent_plan_set){ .function_count = fns->count, .count = counts[1], .refused = counts[2],
					.site_count = counts[3], .sites_planned = counts[4] };
	set->refusal = malloc(fns->count ? fns->count : 1);
	set->functions = malloc(counts[1] ? counts[1] * sizeof(*set->functions) : 1);
	set->sites = malloc(counts[3] ? counts[3] * sizeof(*set->sites) : 1);
	if (!set->refusal || !set->functions || !set->sites) {
		agent_plan__free(set);
		return -ENOMEM;
	}
	memcpy(set->refusal, data + head, fns->count);
	memcpy(set->functions, data + head + fns->count, counts[1] * sizeof(*set->functions));
	memcpy(set->sites, data + head + fns->count + counts[1] * sizeof(*set->functions),
	       counts[3] * sizeof(*set->sites));
	if (!cached_plan_is_sane(set, fns)) {
		agent_plan__free(set);
		return -EINVAL;
	}
	return 0;
}

static void plan_to_cache(const struct agent_plan_set *set, const char *path)
{
	uint64_t counts[5] = { set->function_count, set->count, set->refused, set->site_count, set->sites_planned };
	size_t functions = set->count * sizeof(*set->functions), sites = set->site_count * sizeof(*set->sites);
	size_t head = 8 + sizeof(counts), len = head + set->function_count + functions + sites;
	uint8_t *data = malloc(len);

	if (!data)
		return;
	memcpy(data, PLAN_CACHE_MAGIC, 8);
	memcpy(data + 8, counts, sizeof(counts));
	memcpy(data + head, set->refusal, set->function_count);
	if (functions) /* else functions may be NULL: memcpy's source is nonnull */
		memcpy(data + head + set->function_count, set->functions, functions);
	if (sites) /* a build without inlined bodies has no site array */
		memcpy(data + head + set->function_count + functions, set->sites, sites);
	pollfn_cache__write(path, data, len);
	free(data);
}

int agent_plan__build_cached(struct agent_plan_set *set, const struct poll_fn_list *fns,
			     const struct pollfn_cache_key *key)
{
	char path[4096];
	void *map;
	size_t len;
	int err, cached = key && pollfn_cache__path(key, ".plan", path, sizeof(path)) == 0;

	if (cached && pollfn_cache__read(path, &map, &len) == 0) {
		err = plan_from_cache(set, fns, map, len);
		munmap(map, len);
		if (err != -EINVAL)
			return err;
	}
	err = agent_plan__build(set, key ? key->path : NULL, fns);
	if (!err && cached)
		plan_to_cache(set, path);
	return err;
}

/* The listed function (not an inlined body) whose code holds addr. */
static const struct poll_fn *host_of(const struct poll_fn_list *fns, uint64_t addr, size_t *index)
{
	for (size_t i = 0; i < fns->count; i++)
		if (!fns->fns[i].inlined.is && fns->fns[i].addr <= addr && addr - fns->fns[i].addr < fns->fns[i].size) {
			*index = i;
			return &fns->fns[i];
		}
	return NULL;
}

static void leave_out(struct agent_plan_set *set, struct poll_fn_list *fns, size_t i)
{
	if (fns->fns[i].inlined.left_out)
		return;
	fns->fns[i].inlined.left_out = true;
	/* no longer a function for uprobes */
	set->refused -= set->refusal[i] != INPROC_PATCHABLE;
	set->refusal[i] = INPROC_SITE_LEFT_OUT;
}

/* Bodies with a refused site or a host the agent cannot patch (its exits
 * end their polls); then the hosts-only functions none of whose bodies is
 * left. */
static size_t mark_left_out(struct agent_plan_set *set, struct poll_fn_list *fns)
{
	size_t bodies = 0, host;
	bool *kept_host = calloc(fns->count ? fns->count : 1, sizeof(*kept_host));

	for (size_t i = 0; i < set->site_count; i++)
		if (set->sites[i].refusal && set->sites[i].func_id < fns->count &&
		    !fns->fns[set->sites[i].func_id].inlined.left_out) {
			leave_out(set, fns, set->sites[i].func_id);
			bodies++;
		}
	for (size_t i = 0; i < fns->count; i++) {
		const struct poll_fn *h;

		if (!fns->fns[i].inlined.is || !(h = host_of(fns, fns->fns[i].addr, &host)))
			continue;
		if (!fns->fns[i].inlined.left_out && set->refusal[host] != INPROC_PATCHABLE) {
			leave_out(set, fns, i);
			bodies++;
		}
		if (kept_host && !fns->fns[i].inlined.left_out)
			kept_host[host] = true;
	}
	for (size_t i = 0; kept_host && bodies && i < fns->count; i++)
		if (fns->fns[i].inlined.host && !kept_host[i])
			leave_out(set, fns, i);
	free(kept_host);
	return bodies;
}

size_t agent_plan__leave_out_partial_bodies(struct agent_plan_set *set, struct poll_fn_list *fns)
{
	size_t bodies = mark_left_out(set, fns), kept = 0;

	if (!bodies)
		return 0;
	for (size_t i = 0; i < set->site_count; i++)
		if (set->sites[i].func_id < fns->count && fns->fns[set->sites[i].func_id].inlined.left_out)
			set->sites[i].refusal = INPROC_SITE_LEFT_OUT;
	/* what of them was planned is no longer patched */
	for (size_t i = 0; i < set->count; i++) {
		uint64_t id = set->functions[i].func_id, site = id - (uint64_t)set->function_count;
		bool is_site = id >= set->function_count && site < set->site_count;

		if (is_site ? set->sites[site].refusal == INPROC_SITE_LEFT_OUT
			    : id < fns->count && fns->fns[id].inlined.left_out) {
			set->sites_planned -= is_site;
			continue;
		}
		set->functions[kept++] = set->functions[i];
	}
	set->count = kept;
	return bodies;
}
