/* x86_64's planner for the in-process agent's patch (x86_64_patch.c):
 * x86_64.c puts it in the arch_ops; the tests call the general form. */
#ifndef ASYNCTRACE_ARCH_X86_64_PATCH_H
#define ASYNCTRACE_ARCH_X86_64_PATCH_H

#include "arch/arch.h"

/* arch_ops.plan_patch: the instructions covering a PATCH_JUMP_SIZE jump. */
int x86_64_plan_patch(const uint8_t *code, size_t size, uint64_t addr, struct patch_plan *out);
/* arch_ops.plan_short_patch: the instructions covering a 2-byte jmp rel8. */
int x86_64_plan_short_patch(const uint8_t *code, size_t size, uint64_t addr, struct patch_plan *out);

/* The same for a jump of `cover` bytes (1..PATCH_MAX_MOVED, else -EINVAL).
 * With the 5-byte jump, PATCH_TOO_LONG and PATCH_TOO_MANY_RELOCS cannot
 * happen: an instruction has at most 15 bytes (4 + 15 <= 32 moved), and a
 * rip-relative one at least 6, so it is the last moved. They guard the
 * agent's fixed arrays all the same; a wider cover lets the tests reach
 * them. */
int x86_64_plan_patch_covering(const uint8_t *code, size_t size, uint64_t addr, unsigned cover,
			       struct patch_plan *out);

/* arch_ops.plan_site: a mid-function site at `site` inside the host's
 * code[0..size) at address addr: the whole instructions from `site`
 * covering a PATCH_JUMP_SIZE jump. Refused when they branch, call, return
 * or trap (except a `jmp rel32` to inside the host that is the whole
 * range: relocated), use rip other than through a relocatable disp32, or
 * when one of targets[0..target_count) (sorted: every address control may
 * reach other than by running on — branch and table targets, return
 * addresses, landing pads) is a moved byte after the first. */
int x86_64_plan_site(const uint8_t *code, size_t size, uint64_t addr, uint64_t site, const uint64_t *targets,
		     size_t target_count, struct patch_plan *out);

/* The general register (rax 0 .. r15 15) a capstone x86 register is part
 * of, and in *width which form it is (0 the 64-bit one, 1 32-bit, 2 16-bit,
 * 3 low byte, 4 high byte); -1 for none. */
int x86_64_gpr_of(unsigned reg, int *width);

#endif
