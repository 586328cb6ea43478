/* The in-process backend's reading of machine code: the exits of a
 * function (record probes them) and the patch plans the agent applies to
 * a live process (function entries and mid-function sites), on arbitrary
 * bytes as code. A wrong plan corrupts the
 * traced program, so besides the sanitizers the plans are checked against
 * arch.h's promises: whole instructions within the function and the
 * agent's fixed arrays, relocations that name the bytes they rewrite. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <elf.h>

#include "arch/arch.h"
#include "arch/x86_64_patch.h"

#define CODE_ADDR 0x401000ULL /* where a small binary's .text starts */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, unsigned value)
{
	fprintf(stderr, "fuzz_patch: %s (%u)\n", what, value);
	abort();
}

static void check_exits(const struct arch_ops *ops, const uint8_t *code, size_t size)
{
	struct exit_site_list exits = { 0 };

	if (!ops->find_exits(code, size, CODE_ADDR, &exits))
		for (size_t i = 0; i < exits.count; i++) {
			if (exits.sites[i].addr < CODE_ADDR || exits.sites[i].addr - CODE_ADDR >= size)
				fail("exit outside the function", (unsigned)i);
			if (exits.sites[i].kind != EXIT_RETURN && exits.sites[i].kind != EXIT_TAIL_CALL)
				fail("exit of no kind", exits.sites[i].kind);
		}
	exit_site_list__free(&exits);
}

static uint64_t rel32_target(const uint8_t *code, const struct patch_plan *p, const struct patch_reloc *r)
{
	int32_t disp;

	memcpy(&disp, code + p->skip + r->disp_offset, sizeof(disp)); /* x86: little-endian */
	return CODE_ADDR + p->skip + r->insn_end + (uint64_t)(int64_t)disp;
}

/* What the agent relies on when it copies plan->length bytes and rewrites
 * each relocation's disp32. */
static void check_plan(int result, const struct patch_plan *p, const uint8_t *code, size_t size, unsigned cover)
{
	static const struct patch_plan zero;

	if (result < 0)
		return;
	if (result >= PATCH_REFUSAL_COUNT)
		fail("refusal out of range", (unsigned)result);
	if (result != PATCH_OK) {
		if (memcmp(p, &zero, sizeof(zero)))
			fail("refused plan not zeroed", (unsigned)result);
		return;
	}
	if (p->length < cover || p->length > PATCH_MAX_MOVED || (size_t)p->skip + p->length > size)
		fail("moved bytes out of bounds", p->length);
	if (p->reloc_count > PATCH_MAX_RELOCS)
		fail("too many relocations", p->reloc_count);
	for (unsigned i = 0; i < p->reloc_count; i++) {
		const struct patch_reloc *r = &p->relocs[i];

		if (r->disp_offset + 4u > r->insn_end || r->insn_end > p->length)
			fail("relocation outside the moved bytes", i);
		if (rel32_target(code, p, r) != r->target)
			fail("relocation target is not what its bytes say", i);
	}
}

/* A mid-function site at data[off] (at CODE_ADDR, the host starting off
 * bytes before), with two branch targets taken from the input: besides
 * check_plan's promises, no target may be a moved byte after the first. */
static void check_site(const struct arch_ops *ops, const uint8_t *data, size_t size)
{
	struct patch_plan plan;
	uint64_t targets[2];
	size_t off;
	int result;

	if (size < 4 || !ops->plan_site)
		return;
	off = 3 + data[0] % (size - 3);
	targets[0] = CODE_ADDR + data[1] % 16, targets[1] = CODE_ADDR + 16 + data[2] % 16;
	result = ops->plan_site(data, size, CODE_ADDR - off, CODE_ADDR, targets, 2, &plan);
	check_plan(result, &plan, data + off, size - off, PATCH_JUMP_SIZE);
	if (result == PATCH_OK && plan.skip)
		fail("a site skips bytes", plan.skip);
	for (int i = 0; result == PATCH_OK && i < 2; i++)
		if (targets[i] > CODE_ADDR && targets[i] < CODE_ADDR + plan.length)
			fail("a branch target inside a site's moved bytes", (unsigned)(targets[i] - CODE_ADDR));
	for (unsigned i = 0; result == PATCH_OK && i < plan.reloc_count; i++)
		if (plan.relocs[i].disp_offset == 1 && data[off] == 0xe9 &&
		    (plan.relocs[i].target < CODE_ADDR - off || plan.relocs[i].target >= CODE_ADDR - off + size))
			fail("a site's jump leaves the host", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct arch_ops *ops = arch_for_machine(EM_X86_64);
	struct patch_plan plan;
	unsigned cover;

	if (!ops)
		abort();
	check_exits(ops, data, size);
	check_plan(ops->plan_patch(data, size, CODE_ADDR, &plan), &plan, data, size, PATCH_JUMP_SIZE);
	check_plan(ops->plan_short_patch(data, size, CODE_ADDR, &plan), &plan, data, size, PATCH_SHORT_JUMP_SIZE);
	check_site(ops, data, size);
	if (ops->sets_frame_pointer)
		ops->sets_frame_pointer(data, size);
	/* the wider covers the tests use to reach the fixed arrays' limits */
	if (size > 1) {
		cover = 1 + data[0] % PATCH_MAX_MOVED;
		check_plan(x86_64_plan_patch_covering(data + 1, size - 1, CODE_ADDR, cover, &plan), &plan, data + 1,
			   size - 1, cover);
	}
	return 0;
}
