#include "probe/plan.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/types.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/arch.h"
#include "bpf/poll.h"
#include "elf/elf_image.h"
#include "elf/inlined.h"
#include "util/array.h"

/* Poll functions larger than this are not decoded (exits unknown): no real
 * poll function comes close, and it bounds a corrupt symbol's damage. */
#define MAX_FUNCTION_BYTES (16u << 20)

static int add_site(struct probe_plan *plan, size_t *capacity, uint64_t offset, uint64_t addr, uint64_t cookie,
		    uint32_t func_id, uint8_t kind)
{
	if (ARRAY_RESERVE(plan->sites, *capacity, plan->count + 1))
		return -ENOMEM;
	plan->sites[plan->count++] = (struct probe_site){ offset, cookie, func_id, kind, addr };
	return 0;
}

/* Async bodies whose state machine DWARF describes: the exit reads where
 * the future stopped. */
static bool tracks_state(const struct poll_fn *fn)
{
	return fn->role == ROLE_POLL && fn->state.size > 0;
}

static uint64_t entry_cookie(uint32_t func_id, const struct poll_fn *fn)
{
	uint64_t cookie = func_id | (uint64_t)PROBE_KIND_ENTRY << COOKIE_KIND_SHIFT;

	if (tracks_state(fn))
		cookie |= COOKIE_TRACK_STATE | (fn->self_arg == 1 ? COOKIE_SELF_ARG1 : 0);
	return cookie;
}

/* An inlined body's resume point: an entry site, its future in a
 * register, the state it resumes in the event (0: the first poll). */
static uint64_t inlined_cookie(uint32_t func_id, const struct poll_fn *fn, uint16_t state)
{
	return func_id | (uint64_t)PROBE_KIND_ENTRY << COOKIE_KIND_SHIFT | COOKIE_INLINED |
	       ((uint64_t)fn->inlined.base_reg & COOKIE_REG_MASK) << COOKIE_REG_SHIFT |
	       ((uint64_t)fn->inlined.level & COOKIE_LEVEL_MASK) << COOKIE_LEVEL_SHIFT |
	       (uint64_t)state << COOKIE_OFFSET_SHIFT;
}

static uint64_t exit_cookie(uint32_t func_id, const struct poll_fn *fn)
{
	uint64_t cookie = func_id | (uint64_t)PROBE_KIND_EXIT << COOKIE_KIND_SHIFT;

	if (fn->role == ROLE_POLL && fn->result.mode == RESULT_IN_MEMORY)
		cookie |= COOKIE_READ_MEMORY | (uint64_t)fn->result.disc_offset << COOKIE_OFFSET_SHIFT;
	if (tracks_state(fn))
		cookie |= COOKIE_TRACK_STATE;
	return cookie;
}

/* Polls need both ends; a task allocation only its result; the other
 * hooks only their arguments. */
static bool wants_entry(const struct poll_fn *fn)
{
	return fn->role != ROLE_TASK_NEW;
}

static bool wants_exits(const struct poll_fn *fn)
{
	return fn->role == ROLE_POLL || fn->role == ROLE_TASK_NEW;
}

int probe_read_code(int fd, off_t file_size, const struct poll_fn *fn, uint8_t **code)
{
	ssize_t got;

	if (fn->size == 0 || fn->size > MAX_FUNCTION_BYTES || fn->file_offset == 0 ||
	    (off_t)(fn->file_offset + fn->size) > file_size)
		return -EINVAL;
	*code = malloc(fn->size);
	if (!*code)
		return -ENOMEM;
	got = pread(fd, *code, fn->size, (off_t)fn->file_offset);
	if (got != (ssize_t)fn->size) {
		free(*code);
		*code = NULL;
		return got < 0 ? -errno : -EIO;
	}
	return 0;
}

static int plan_function(struct probe_plan *plan, size_t *capacity, const struct arch_ops *arch,
			 int fd, off_t file_size, uint32_t func_id, const struct poll_fn *fn)
{
	struct exit_site_list exits = { 0 };
	uint8_t *code = NULL;
	int err;

	err = probe_read_code(fd, file_size, fn, &code);
	if (err == -ENOMEM)
		return err;
	if (err)
		return 0; /* not in the file: leave the function out */
	if (wants_exits(fn))
		err = arch->find_exits(code, fn->size, fn->addr, &exits);
	free(code);
	if (!err && wants_entry(fn))
		err = add_site(plan, capacity, fn->file_offset, fn->addr, entry_cookie(func_id, fn), func_id,
			       PROBE_KIND_ENTRY);
	for (size_t i = 0; !err && i < exits.count; i++)
		err = add_site(plan, capacity, fn->file_offset + (exits.sites[i].addr - fn->addr), exits.sites[i].addr,
			       exit_cookie(func_id, fn), func_id, PROBE_KIND_EXIT);
	plan->exits_per_function[func_id] = (uint32_t)exits.count;
	plan->unsupported_per_function[func_id] = (uint32_t)exits.unsupported;
	plan->unsupported_exits += exits.unsupported;
	if (!exits.count && fn->role == ROLE_POLL)
		plan->functions_without_exits++;
	exit_site_list__free(&exits);
	return err;
}

/* Probes go live in plan order. Exits first: once an entry probe fires,
 * its exits are armed, so attaching to a running process can only produce
 * exits without entries (counted as orphans and ignored), never entries
 * without exits, which would read as polls a panic unwound. (Detaching
 * goes the other way: entries first.) */
static int exits_first(struct probe_plan *plan)
{
	struct probe_site *ordered = malloc((plan->count ? plan->count : 1) * sizeof(*ordered));
	size_t n = 0;

	if (!ordered)
		return -ENOMEM;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < plan->count; i++)
			if ((plan->sites[i].kind == PROBE_KIND_EXIT) == (pass == 0))
				ordered[n++] = plan->sites[i];
	free(plan->sites);
	plan->sites = ordered;
	return 0;
}

/* An inlined body's poll begins at its own state dispatch (the indirect
 * jump: a new poll, which ends the previous poll of the same body still
 * open there, as when a host polls it in a loop), or, when an enclosing
 * machine jumps past that dispatch straight into its resume code, at one
 * of the dispatch's targets. So both are probed: the jumps as starts, the
 * targets (its resume points, and those LLVM merged with the host's code
 * outside its ranges) as "resumed" entries, which the poll builder takes
 * as the same poll when that body's frame is already on top (reached
 * through the dispatch, or run on into from the start or an earlier
 * await). No exits: its polls end with what encloses them. */
static bool own_dispatch(const struct inlined_body *body, uint64_t from)
{
	for (size_t i = 0; i < body->entry_count; i++)
		if (body->entries[i].kind == INLINED_ENTRY_RESUME && body->entries[i].from == from)
			return true;
	return false;
}

/* An inlined body's exit whose state store is seen (1: it returned, 3 + N:
 * it parked at await N): probed there, it ends the poll with its result.
 * Only where the leaving instruction always leaves: the last instruction of
 * a range (run on out of it), or an unconditional jmp (a probe on a jcc
 * fires whichever way it goes). */
static bool probeable_exit(const struct elf_image *img, const struct inlined_exit *x, uint64_t offset)
{
	uint8_t op = 0;

	if (x->stored_state != 1 && x->stored_state < 3)
		return false;
	if (x->kind == INLINED_EXIT_FALLTHROUGH)
		return true;
	return x->kind == INLINED_EXIT_BRANCH && pread(img->fd, &op, 1, (off_t)offset) == 1 && (op == 0xeb || op == 0xe9);
}

static uint64_t inlined_exit_cookie(uint32_t func_id, const struct poll_fn *fn, int16_t state)
{
	return func_id | (uint64_t)PROBE_KIND_EXIT << COOKIE_KIND_SHIFT | COOKIE_INLINED |
	       ((uint64_t)fn->inlined.level & COOKIE_LEVEL_MASK) << COOKIE_LEVEL_SHIFT |
	       (uint64_t)(uint16_t)state << COOKIE_OFFSET_SHIFT;
}

static bool first_dispatch_at(const struct inlined_body *body, size_t i)
{
	for (size_t k = 0; k < i; k++)
		if (body->entries[k].kind == INLINED_ENTRY_RESUME && body->entries[k].from == body->entries[i].from)
			return false;
	return true;
}

static const struct inlined_body *body_at(const struct inlined_set *set, uint64_t load_addr)
{
	for (size_t h = 0; h < set->count; h++)
		for (size_t b = 0; b < set->hosts[h].body_count; b++)
			if (set->hosts[h].bodies[b].state.found && set->hosts[h].bodies[b].state.load_addr == load_addr)
				return &set->hosts[h].bodies[b];
	return NULL;
}

static int plan_inlined(struct probe_plan *plan, size_t *capacity, const struct elf_image *img,
			const struct inlined_set *set, uint32_t func_id, const struct poll_fn *fn)
{
	const struct inlined_body *body = body_at(set, fn->addr);
	uint64_t start = inlined_cookie(func_id, fn, 0), resumed = inlined_cookie(func_id, fn, 1);
	size_t starts = 0;
	int err = 0;

	for (size_t i = 0; body && !err && i < body->entry_count; i++) {
		const struct inlined_entry *en = &body->entries[i];
		uint64_t target = elf_image__file_offset(img, en->addr), jump = elf_image__file_offset(img, en->from);

		if (en->kind != INLINED_ENTRY_RESUME || !target || !jump)
			continue;
		if (first_dispatch_at(body, i) &&
		    !(err = add_site(plan, capacity, jump, en->from, start, func_id, PROBE_KIND_ENTRY)))
			starts++;
		if (!err)
			err = add_site(plan, capacity, target, en->addr, resumed, func_id, PROBE_KIND_ENTRY);
	}
	for (size_t i = 0; body && !err && starts && i < body->exit_count; i++) {
		uint64_t target = elf_image__file_offset(img, body->exits[i].to);

		if (body->exits[i].kind == INLINED_EXIT_TABLE && target && own_dispatch(body, body->exits[i].from))
			err = add_site(plan, capacity, target, body->exits[i].to, resumed, func_id, PROBE_KIND_ENTRY);
	}
	if (!err && !starts && fn->file_offset) /* no table decoded: the dispatch load */
		err = add_site(plan, capacity, fn->file_offset, fn->addr, start, func_id, PROBE_KIND_ENTRY);
	for (size_t i = 0; body && !err && i < body->exit_count; i++) {
		const struct inlined_exit *x = &body->exits[i];
		uint64_t offset = elf_image__file_offset(img, x->from);

		if (offset && probeable_exit(img, x, offset)) {
			err = add_site(plan, capacity, offset, x->from, inlined_exit_cookie(func_id, fn, x->stored_state),
				       func_id, PROBE_KIND_EXIT);
			plan->exits_per_function[func_id]++;
		}
	}
	return err;
}

static bool lists_inlined(const struct poll_fn_list *fns)
{
	for (size_t i = 0; i < fns->count; i++)
		if (fns->fns[i].inlined.is)
			return true;
	return false;
}

static int plan_inlined_of(struct probe_plan *plan, size_t *capacity, const struct elf_image *img,
			   const struct inlined_set *set, const struct poll_fn_list *fns)
{
	int err = 0;

	for (size_t i = 0; !err && i < fns->count; i++)
		if (fns->fns[i].inlined.is)
			err = plan_inlined(plan, capacity, img, set, (uint32_t)i, &fns->fns[i]);
	return err;
}

/* The inlined bodies' resume points, when the list has any (scanned again:
 * the list keeps only each body's dispatch address). */
static int plan_all_inlined(struct probe_plan *plan, size_t *capacity, const char *path,
			    const struct poll_fn_list *fns)
{
	struct elf_image img = { .fd = -1 };
	struct inlined_set set = { 0 };
	int err;

	if (!lists_inlined(fns))
		return 0;
	if ((err = elf_image__open(&img, path)))
		return err;
	err = inlined_scan(&img, &set);
	if (!err)
		err = plan_inlined_of(plan, capacity, &img, &set, fns);
	inlined_set__free(&set);
	elf_image__close(&img);
	return err;
}

int probe_plan__inlined(struct probe_plan *plan, const struct elf_image *img, const struct inlined_set *set,
			const struct poll_fn_list *fns)
{
	size_t capacity = 0;
	int err;

	*plan = (struct probe_plan){ .function_count = fns->count };
	plan->exits_per_function = calloc(fns->count ? fns->count : 1, sizeof(uint32_t));
	plan->unsupported_per_function = calloc(fns->count ? fns->count : 1, sizeof(uint32_t));
	err = plan->exits_per_function && plan->unsupported_per_function ? 0 : -ENOMEM;
	if (!err)
		err = plan_inlined_of(plan, &capacity, img, set, fns);
	if (err)
		probe_plan__free(plan);
	return err;
}

int probe_plan__build(struct probe_plan *plan, const char *path, const struct poll_fn_list *fns)
{
	const struct arch_ops *arch = arch_for_machine(fns->machine);
	size_t capacity = 0;
	struct stat st;
	int fd, err = 0;

	*plan = (struct probe_plan){ 0 };
	if (!arch)
		return -ENOTSUP;
	plan->exits_per_function = calloc(fns->count ? fns->count : 1, sizeof(uint32_t));
	plan->unsupported_per_function = calloc(fns->count ? fns->count : 1, sizeof(uint32_t));
	if (!plan->exits_per_function || !plan->unsupported_per_function) {
		probe_plan__free(plan);
		return -ENOMEM;
	}
	plan->function_count = fns->count;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		err = -errno;
		if (fd >= 0)
			close(fd);
		probe_plan__free(plan);
		return err;
	}
	for (size_t i = 0; i < fns->count && !err; i++)
		if (!fns->fns[i].inlined.is)
			err = plan_function(plan, &capacity, arch, fd, st.st_size, (uint32_t)i, &fns->fns[i]);
	close(fd);
	if (!err)
		err = plan_all_inlined(plan, &capacity, path, fns);
	if (!err)
		err = exits_first(plan);
	if (err)
		probe_plan__free(plan);
	return err;
}

void probe_plan__free(struct probe_plan *plan)
{
	free(plan->sites);
	free(plan->exits_per_function);
	free(plan->unsupported_per_function);
	*plan = (struct probe_plan){ 0 };
}

static bool is_dropped(const struct probe_site *site, const struct probe_site *drop, size_t drop_count)
{
	for (size_t i = 0; i < drop_count; i++)
		if (drop[i].file_offset == site->file_offset && drop[i].cookie == site->cookie)
			return true;
	return false;
}

void probe_plan__keep(struct probe_plan *plan, const bool *keep, const struct probe_site *drop, size_t drop_count)
{
	size_t n = 0;

	for (size_t i = 0; i < plan->count; i++)
		if (keep[plan->sites[i].func_id] && !is_dropped(&plan->sites[i], drop, drop_count))
			plan->sites[n++] = plan->sites[i];
	plan->count = n;
	plan->unsupported_exits = 0;
	for (size_t id = 0; plan->exits_per_function && id < plan->function_count; id++) {
		if (!keep[id])
			plan->exits_per_function[id] = plan->unsupported_per_function[id] = 0;
		plan->unsupported_exits += plan->unsupported_per_function[id];
	}
}
