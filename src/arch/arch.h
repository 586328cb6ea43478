/* What differs between instruction sets, behind one small interface:
 * finding the instructions where a function hands control back (returns or
 * tail calls). x86_64 now; RISC-V kernels fit beside it. */
#ifndef ASYNCTRACE_ARCH_ARCH_H
#define ASYNCTRACE_ARCH_ARCH_H

#include <stddef.h>
#include <stdint.h>

enum exit_kind {
	EXIT_RETURN = 1,    /* ret */
	EXIT_TAIL_CALL = 2, /* jmp to outside the function */
};

struct exit_site {
	uint64_t addr; /* virtual address of the instruction */
	uint8_t kind;  /* enum exit_kind */
};

struct exit_site_list {
	struct exit_site *sites;
	size_t count;
	size_t capacity;
	/* Exits that a probe cannot observe faithfully (a conditional branch
	 * to another function fires the probe whether taken or not): skipped,
	 * counted so the caller can say so. */
	size_t unsupported;
};

/* In-process patching (the agent's call-through): which leading
 * instructions of a function can move out to make room for a jump. */
#define PATCH_JUMP_SIZE 5
#define PATCH_MAX_MOVED 32
#define PATCH_MAX_RELOCS 4

struct patch_reloc {
	uint16_t disp_offset;
	uint16_t insn_end;
	uint64_t target;
};

struct patch_plan {
	uint8_t skip;
	uint8_t length;
	uint8_t reloc_count;
	struct patch_reloc relocs[PATCH_MAX_RELOCS];
};

enum patch_refusal {
	PATCH_OK = 0,
	PATCH_TOO_SHORT,
	PATCH_UNDECODABLE,
	PATCH_CONTROL_FLOW,
	PATCH_BRANCH_INTO_PATCH,
	PATCH_RIP_RELATIVE,
	PATCH_CALLER_FRAME,
	PATCH_TOO_MANY_RELOCS,
	PATCH_TOO_LONG,
	PATCH_REFUSAL_COUNT
};

const char *patch_refusal__name(int refusal);

struct arch_ops {
	const char *name;
	uint16_t machine; /* e_machine */
	/* Append the exits of the function whose code is code[0..size) at
	 * virtual address addr. Returns 0 or a negative errno. */
	int (*find_exits)(const uint8_t *code, size_t size, uint64_t addr,
			  struct exit_site_list *out);
	int (*plan_patch)(const uint8_t *code, size_t size, uint64_t addr, struct patch_plan *out);
};

/* NULL when the machine has no probe support (its symbols still load). */
const struct arch_ops *arch_for_machine(uint16_t machine);
/* "x86_64", "riscv64", ... or "unknown". */
const char *arch_machine_name(uint16_t machine);

int exit_site_list__append(struct exit_site_list *list, uint64_t addr, uint8_t kind);
void exit_site_list__free(struct exit_site_list *list);

#endif
