#include "arch/arch.h"
#include "agent/agent_abi.h"
#include "util/array.h"

#include <elf.h>
#include <errno.h>
#include <stdlib.h>

extern const struct arch_ops x86_64_arch_ops;

/* A plan is copied into the agent's fixed-size arrays as is. */
_Static_assert(PATCH_MAX_MOVED == AGENT_MAX_MOVED, "moved bytes: plan and agent ABI differ");
_Static_assert(PATCH_MAX_RELOCS == AGENT_MAX_RELOCS, "relocations: plan and agent ABI differ");

const struct arch_ops *arch_for_machine(uint16_t machine)
{
	switch (machine) {
	case EM_X86_64:
		return &x86_64_arch_ops;
	default:
		return NULL;
	}
}

const char *arch_machine_name(uint16_t machine)
{
	switch (machine) {
	case EM_X86_64: return "x86_64";
	case EM_386: return "i386";
	case EM_AARCH64: return "aarch64";
	case EM_ARM: return "arm";
	case EM_RISCV: return "riscv";
	case EM_LOONGARCH: return "loongarch";
	case EM_MIPS: return "mips";
	case EM_PPC64: return "ppc64";
	case EM_S390: return "s390";
	default: return "unknown";
	}
}

int exit_site_list__append(struct exit_site_list *list, uint64_t addr, uint8_t kind)
{
	if (ARRAY_RESERVE(list->sites, list->capacity, list->count + 1))
		return -ENOMEM;
	list->sites[list->count].addr = addr;
	list->sites[list->count].kind = kind;
	list->count++;
	return 0;
}

void exit_site_list__free(struct exit_site_list *list)
{
	free(list->sites);
	list->sites = NULL;
	list->count = list->capacity = list->unsupported = 0;
}

const char *patch_refusal__name(int refusal)
{
	static const char *const names[PATCH_REFUSAL_COUNT] = {
		[PATCH_OK] = "patchable",
		[PATCH_TOO_SHORT] = "function too short for the jump",
		[PATCH_UNDECODABLE] = "undecodable instruction",
		[PATCH_CONTROL_FLOW] = "control flow in the patched bytes",
		[PATCH_BRANCH_INTO_PATCH] = "branch into the patched bytes",
		[PATCH_RIP_RELATIVE] = "rip-relative operand that cannot be relocated",
		[PATCH_CALLER_FRAME] = "reads the caller's frame",
		[PATCH_TOO_MANY_RELOCS] = "too many rip-relative operands",
		[PATCH_TOO_LONG] = "patched instructions too long",
	};

	if (refusal < 0 || refusal >= PATCH_REFUSAL_COUNT)
		return "unknown";
	return names[refusal];
}
