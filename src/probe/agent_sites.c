/* The in-process agent's mid-function sites: the uprobe sites that
 * probe_plan__build gives the async bodies rustc inlined into other
 * functions (dispatch jumps, resume points, exits with a known state),
 * patched in process instead where that is safe, each falling back to its
 * uprobe alone where not.
 *
 * Mid-function, a 5-byte jump over whole instructions is only safe when
 * nothing but running on enters the bytes after its first: the planner
 * refuses any branch or table target of the host there, any return
 * address (the instruction after a call), and the host's entry. Landing
 * pads need no list of their own: LLVM never runs on into one (only the
 * unwinder enters it), so the instruction before it is a jump, a return,
 * a trap or a call, and a moved instruction after the first always runs
 * on from a moved instruction that is none of those. A host with an
 * indirect jump whose table is not decoded has targets we cannot see: its
 * sites keep their uprobes. */
#include "probe/agent_plan.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/arch.h"
#include <linux/types.h>

#include "bpf/poll.h"
#include "elf/elf_image.h"
#include "elf/inlined.h"
#include "elf/inlined_code.h"
#include "probe/plan.h"
#include "util/array.h"

#define GPR_SP 4

/* Where control may reach in a host other than by running on. */
struct host_targets {
	uint64_t *addrs; /* sorted */
	size_t count, cap;
	bool unknown;    /* an indirect jump whose targets are not known */
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int add_target(struct host_targets *t, uint64_t addr)
{
	if (ARRAY_RESERVE(t->addrs, t->cap, t->count + 1))
		return -ENOMEM;
	t->addrs[t->count++] = addr;
	return 0;
}

static bool is_target(const struct host_targets *t, uint64_t addr)
{
	return t->count && bsearch(&addr, t->addrs, t->count, sizeof(*t->addrs), cmp_u64);
}

/* An indirect jump through a decoded table has its targets among the
 * joins; one through a GOT slot (`jmp *slot(%rip)`) is a tail call. Any
 * other (`jmp *%rax` without a table, `jmp *8(%rax)`) may go anywhere. */
static bool jump_is_unknown(const struct code *c, const struct insn *in)
{
	if (in->kind != INSN_JMP_INDIRECT || in->slot)
		return false;
	return in->table < 0 || !c->tables[in->table].count;
}

static int collect_targets(struct host_targets *t, const struct code *c, const struct inlined_host *h)
{
	int err = add_target(t, h->addr);

	for (size_t i = 0; !err && i < c->join_count; i++)
		err = add_target(t, c->joins[i]);
	for (size_t i = 0; !err && i < c->count; i++) {
		const struct insn *in = &c->insns[i];

		if (in->kind == INSN_CALL || in->kind == INSN_NORETURN_CALL) /* its return address */
			err = add_target(t, in->addr + in->len);
		t->unknown |= jump_is_unknown(c, in);
	}
	if (!err && t->count)
		qsort(t->addrs, t->count, sizeof(*t->addrs), cmp_u64);
	return err;
}

/* A site may move back over the instructions before it when that keeps
 * what it records: every run of the earlier instruction runs on to the
 * site and every run of the site came from there (straight line, nothing
 * entering in between), the stack pointer and the recorded register are
 * the same at both, and no other site lies in between (the order of the
 * records stays the uprobes'). A poll start must: it is probed at the
 * body's dispatch jump (`jmp *%rax`, which cannot move), and its dispatch
 * load (`movzbl disp(%reg)`, `lea tbl(%rip)`, ...) stands for it; an exit
 * may, when bytes after its own are a join. The candidates, nearest first:
 * returns how many (at most max) went to addrs. */
static size_t earlier_sites(const struct code *c, const struct host_targets *t, const uint64_t *others,
			    size_t other_count, uint64_t site, uint16_t keep, uint64_t *addrs, size_t max)
{
	size_t k = code__index_of(c, site), n = 0;

	if (k == c->count)
		return 0;
	for (size_t same = 0; same < other_count; same++)
		if (others[same] == site && ++n > 1)
			return 0; /* another site here: their order is the uprobes' */
	n = 0;
	while (n < max && k > 0) {
		const struct insn *in = &c->insns[k - 1];

		if (in->kind != INSN_OTHER || in->addr + in->len != c->insns[k].addr || (in->writes & keep) ||
		    is_target(t, c->insns[k].addr))
			break;
		for (size_t o = 0; o < other_count; o++)
			if (others[o] >= in->addr && others[o] < site)
				return n;
		addrs[n++] = in->addr;
		k--;
	}
	return n;
}

static bool is_start(const struct agent_site *s)
{
	return ((s->cookie >> COOKIE_KIND_SHIFT) & COOKIE_KIND_MASK) == PROBE_KIND_ENTRY &&
	       !(s->cookie >> COOKIE_OFFSET_SHIFT);
}

static const struct inlined_range *range_of(const struct inlined_host *h, uint64_t addr)
{
	for (size_t r = 0; r < h->range_count; r++)
		if (addr >= h->ranges[r].lo && addr < h->ranges[r].hi)
			return &h->ranges[r];
	return NULL;
}

/* The moved bytes at `at`, when arch's planner takes them there. */
static int plan_at(struct agent_plan_function *f, const struct arch_ops *arch, const struct elf_image *img,
		   const struct inlined_host *h, const struct host_targets *t, uint64_t at, unsigned reg)
{
	const struct inlined_range *range = range_of(h, at);
	struct patch_plan patch;
	uint64_t offset;
	uint8_t *bytes;
	int rc;

	if (!range || !(offset = elf_image__file_offset(img, range->lo)))
		return INPROC_SITE_HOST_UNKNOWN;
	if (!(bytes = malloc(range->hi - range->lo)))
		return -ENOMEM;
	rc = pread(img->fd, bytes, range->hi - range->lo, (off_t)offset) == (ssize_t)(range->hi - range->lo)
		     ? arch->plan_site(bytes, range->hi - range->lo, range->lo, at, t->addrs, t->count, &patch)
		     : INPROC_NOT_IN_FILE;
	if (rc == PATCH_OK) {
		*f = (struct agent_plan_function){ .addr = at, .length = patch.length, .flags = AGENT_FN_SITE,
						   .entry_value = AGENT_VALUE_REGISTER, .value_reg = (uint8_t)reg,
						   .reloc_count = patch.reloc_count };
		memcpy(f->original, bytes + (at - range->lo), patch.length);
		for (unsigned i = 0; i < patch.reloc_count; i++)
			f->relocs[i] = (struct agent_plan_reloc){ .disp_offset = patch.relocs[i].disp_offset,
								  .insn_end = patch.relocs[i].insn_end,
								  .target = patch.relocs[i].target };
	}
	free(bytes);
	return rc;
}

#define MAX_MOVE_BACK 6 /* instructions: a dispatch load is 4 before its jump */

/* Plans one site of host h into f: where its uprobe is, else at an
 * earlier instruction that stands for it. Returns an inproc_refusal (the
 * one at the uprobe's own place). */
static int plan_site(struct agent_site *s, struct agent_plan_function *f, const struct arch_ops *arch,
		     const struct elf_image *img, const struct inlined_host *h, const struct code *c,
		     const struct host_targets *t, const uint64_t *others, size_t other_count)
{
	unsigned reg = (s->cookie >> COOKIE_REG_SHIFT) & COOKIE_REG_MASK;
	bool exit = ((s->cookie >> COOKIE_KIND_SHIFT) & COOKIE_KIND_MASK) == PROBE_KIND_EXIT;
	uint16_t keep = (uint16_t)(1u << GPR_SP | (exit ? 0 : 1u << reg));
	uint64_t earlier[MAX_MOVE_BACK];
	size_t n;
	int rc, first;

	if (t->unknown)
		return INPROC_SITE_TARGETS_UNKNOWN;
	if (code__index_of(c, s->uprobe_addr) == c->count)
		return INPROC_SITE_HOST_UNKNOWN;
	n = earlier_sites(c, t, others, other_count, s->uprobe_addr, keep, earlier, MAX_MOVE_BACK);
	s->addr = s->uprobe_addr;
	first = rc = plan_at(f, arch, img, h, t, s->addr, reg);
	for (size_t i = 0; rc > 0 && i < n; i++)
		if ((rc = plan_at(f, arch, img, h, t, earlier[i], reg)) == PATCH_OK)
			s->addr = earlier[i];
	if (rc == PATCH_OK)
		s->length = f->length;
	if (rc > 0 && is_start(s) && first == PATCH_CONTROL_FLOW)
		return INPROC_SITE_DISPATCH;
	return rc > 0 ? first : rc;
}

/* The sites inside host h: decoded once, planned one by one. */
static int plan_host(struct agent_site *sites, struct agent_plan_function *planned, size_t count,
		     const struct arch_ops *arch, struct elf_image *img, const struct noreturn_set *nr,
		     const struct inlined_host *h, bool *done)
{
	struct host_targets t = { 0 };
	uint64_t *others = malloc((count ? count : 1) * sizeof(*others));
	struct code c;
	int err = others ? code__decode(&c, img, nr, h) : -ENOMEM;

	for (size_t i = 0; others && i < count; i++)
		others[i] = sites[i].uprobe_addr;
	if (!err)
		err = collect_targets(&t, &c, h);
	for (size_t i = 0; !err && i < count; i++) {
		int rc;

		if (done[i] || !range_of(h, sites[i].uprobe_addr))
			continue;
		done[i] = true;
		rc = plan_site(&sites[i], &planned[i], arch, img, h, &c, &t, others, count);
		if (rc < 0)
			err = rc;
		else
			sites[i].refusal = (uint8_t)rc;
	}
	free(t.addrs);
	free(others);
	if (others)
		code__free(&c);
	return err;
}

static bool overlaps(uint64_t lo, uint64_t hi, uint64_t other_lo, uint64_t other_hi)
{
	return lo < other_hi && other_lo < hi;
}

/* Two patches may not share a byte; and a site left to its uprobe must not
 * lie in another's patch (the uprobe would single-step the file's
 * instruction, then run into what the patch left). Of two overlapping
 * sites the later one stays (the earlier one's uprobe is before it); of two
 * at one address, neither. Refusing a site adds its uprobe: repeated until
 * nothing changes. */
void agent_sites__refuse_overlaps(struct agent_site *sites, size_t count, const struct agent_plan_set *set)
{
	bool changed = true;

	for (size_t i = 0; i < count; i++)
		for (size_t k = 0; !sites[i].refusal && k < set->count; k++)
			if (overlaps(sites[i].addr, sites[i].addr + sites[i].length,
				     set->functions[k].addr - set->functions[k].pad,
				     set->functions[k].addr + set->functions[k].length))
				sites[i].refusal = INPROC_SITE_OVERLAP;
	for (size_t i = 0; i < count; i++)
		for (size_t k = 0; !sites[i].refusal && k < count; k++)
			if (k != i && !sites[k].refusal && sites[k].addr >= sites[i].addr &&
			    overlaps(sites[i].addr, sites[i].addr + sites[i].length, sites[k].addr,
				     sites[k].addr + sites[k].length) &&
			    (sites[k].addr > sites[i].addr || k < i))
				sites[i].refusal = INPROC_SITE_OVERLAP;
	while (changed) {
		changed = false;
		for (size_t i = 0; i < count; i++)
			for (size_t k = 0; !sites[i].refusal && k < count; k++)
				if (sites[k].refusal && sites[k].uprobe_addr >= sites[i].addr &&
				    sites[k].uprobe_addr < sites[i].addr + sites[i].length)
					sites[i].refusal = INPROC_SITE_OVERLAP, changed = true;
	}
}

static int plan_sites(struct agent_plan_set *set, struct agent_plan_function *planned, const struct arch_ops *arch,
		      struct elf_image *img, const struct inlined_set *inl)
{
	struct noreturn_set nr = { 0 };
	bool *done = calloc(set->site_count ? set->site_count : 1, sizeof(*done));
	int err = done ? noreturn_set__build(&nr, img) : -ENOMEM;

	for (size_t h = 0; !err && h < inl->count; h++)
		err = plan_host(set->sites, planned, set->site_count, arch, img, &nr, &inl->hosts[h], done);
	for (size_t i = 0; !err && i < set->site_count; i++)
		if (!done[i])
			set->sites[i].refusal = INPROC_SITE_HOST_UNKNOWN;
	noreturn_set__free(&nr);
	free(done);
	return err;
}

static int append_planned(struct agent_plan_set *set, size_t *capacity, const struct agent_plan_function *planned)
{
	for (size_t i = 0; i < set->site_count; i++) {
		if (set->sites[i].refusal)
			continue;
		if (ARRAY_RESERVE(set->functions, *capacity, set->count + 1))
			return -ENOMEM;
		set->functions[set->count] = planned[i];
		set->functions[set->count++].func_id = (uint32_t)(set->function_count + i);
		set->sites_planned++;
	}
	return 0;
}

static int sites_from(struct agent_plan_set *set, const struct probe_plan *uprobes)
{
	set->sites = calloc(uprobes->count ? uprobes->count : 1, sizeof(*set->sites));
	if (!set->sites)
		return -ENOMEM;
	set->site_count = uprobes->count;
	for (size_t i = 0; i < uprobes->count; i++)
		set->sites[i] = (struct agent_site){ .uprobe_offset = uprobes->sites[i].file_offset,
						     .cookie = uprobes->sites[i].cookie,
						     .uprobe_addr = uprobes->sites[i].addr,
						     .func_id = uprobes->sites[i].func_id,
						     .refusal = INPROC_SITE_HOST_UNKNOWN };
	return 0;
}

static bool lists_inlined(const struct poll_fn_list *fns)
{
	for (size_t i = 0; i < fns->count; i++)
		if (fns->fns[i].inlined.is)
			return true;
	return false;
}

int agent_sites__plan(struct agent_plan_set *set, size_t *capacity, const char *path,
		      const struct poll_fn_list *fns, const struct arch_ops *arch)
{
	struct elf_image img = { .fd = -1 };
	struct inlined_set inl = { 0 };
	struct probe_plan uprobes = { 0 };
	struct agent_plan_function *planned = NULL;
	int err;

	if (!lists_inlined(fns))
		return 0;
	if ((err = elf_image__open(&img, path)))
		return err;
	if (!(err = inlined_scan(&img, &inl)) && !(err = probe_plan__inlined(&uprobes, &img, &inl, fns)))
		err = sites_from(set, &uprobes);
	if (!err && !(planned = calloc(set->site_count ? set->site_count : 1, sizeof(*planned))))
		err = -ENOMEM;
	if (!err && arch->plan_site && set->function_count + set->site_count <= AGENT_MAX_FUNCTIONS)
		err = plan_sites(set, planned, arch, &img, &inl);
	else if (!err && arch->plan_site)
		for (size_t i = 0; i < set->site_count; i++)
			set->sites[i].refusal = INPROC_SITE_TOO_MANY;
	if (!err) {
		agent_sites__refuse_overlaps(set->sites, set->site_count, set);
		err = append_planned(set, capacity, planned);
	}
	free(planned);
	probe_plan__free(&uprobes);
	inlined_set__free(&inl);
	elf_image__close(&img);
	return err;
}
