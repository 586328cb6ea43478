/* What differs between instruction sets, behind one small interface:
 * finding the instructions where a function hands control back (returns or
 * tail calls), and planning the in-process agent's patch of a function's
 * first instructions. x86_64 now; RISC-V kernels fit beside it. */
#ifndef ASYNCTRACE_ARCH_ARCH_H
#define ASYNCTRACE_ARCH_ARCH_H

#include <stdbool.h>
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

/* The in-process agent (src/agent/) replaces the first bytes of a function
 * with a `jmp rel32` to a stub and runs a relocated copy of the
 * instructions it overwrote. The plan is made here, in `record`, from the
 * file; the agent only applies it. */
#define PATCH_JUMP_SIZE 5
#define PATCH_SHORT_JUMP_SIZE 2 /* jmp rel8, back into the padding before the function */
#define PATCH_MAX_MOVED 32  /* must equal AGENT_MAX_MOVED in src/agent/agent_abi.h */
#define PATCH_MAX_RELOCS 4  /* must equal AGENT_MAX_RELOCS */

/* A rip-relative disp32 among the moved bytes, which the agent rewrites
 * for the copy's address (the copy lives within +-2 GiB of the target). */
struct patch_reloc {
	uint16_t disp_offset; /* offset of the rel32 displacement inside the moved bytes */
	uint16_t insn_end;    /* offset of the end of the instruction holding it (its rip) */
	uint64_t target;      /* absolute address the operand refers to */
};

struct patch_plan {
	uint8_t skip;         /* bytes left in place before the patch (an endbr64: 4) */
	uint8_t length;       /* bytes moved: whole instructions, >= PATCH_JUMP_SIZE */
	uint8_t reloc_count;
	struct patch_reloc relocs[PATCH_MAX_RELOCS];
};

/* Why a function cannot be patched (plan_patch's positive results). */
enum patch_refusal {
	PATCH_OK = 0,
	PATCH_TOO_SHORT,         /* the function is smaller than skip + the jump */
	PATCH_UNDECODABLE,       /* an instruction of the prologue does not decode */
	PATCH_CONTROL_FLOW,      /* a branch, call, return, loop, syscall or trap among the moved
				  * instructions (privileged ones included: they fault) */
	PATCH_BRANCH_INTO_PATCH, /* a direct branch in the function targets a moved byte other than the first */
	PATCH_RIP_RELATIVE,      /* a rip-relative operand that cannot be relocated */
	PATCH_CALLER_FRAME,      /* a moved instruction accesses memory at or above the entry stack pointer
				  * (the return address or stack arguments), or reads %rsp's value in a way
				  * that would expose the shifted stack before the frame is set up */
	PATCH_TOO_MANY_RELOCS,
	PATCH_TOO_LONG,          /* the instructions covering the jump exceed PATCH_MAX_MOVED */
	PATCH_REFUSAL_COUNT
};

/* Short, human: "branch into the patched bytes"; "unknown" out of range. */
const char *patch_refusal__name(int refusal);

struct arch_ops {
	const char *name;
	uint16_t machine; /* e_machine */
	/* Append the exits of the function whose code is code[0..size) at
	 * virtual address addr. Returns 0 or a negative errno. */
	int (*find_exits)(const uint8_t *code, size_t size, uint64_t addr,
			  struct exit_site_list *out);
	/* Plans moving the first instructions of the function code[0..size) at
	 * address addr. Returns PATCH_OK with *out filled, a refusal (> 0,
	 * *out zeroed), or a negative errno. NULL when the architecture has no
	 * in-process patching: callers check before calling. */
	int (*plan_patch)(const uint8_t *code, size_t size, uint64_t addr, struct patch_plan *out);
	/* The same for the padded layout: a short jump (PATCH_SHORT_JUMP_SIZE
	 * bytes) at the entry reaches a full jump written into the padding
	 * before the function, so fewer instructions move (those before a call
	 * near the entry, or all of a tiny function). NULL when unsupported. */
	int (*plan_short_patch)(const uint8_t *code, size_t size, uint64_t addr, struct patch_plan *out);
	/* The same for a mid-function site (an inlined async body's): see
	 * x86_64_plan_site. NULL when unsupported. */
	int (*plan_site)(const uint8_t *code, size_t size, uint64_t addr, uint64_t site, const uint64_t *targets,
			 size_t target_count, struct patch_plan *out);
	uint8_t padding_byte;   /* what compilers put between functions (x86: int3) */
	/* DWARF unwinding of sampled user stacks: the perf_event user
	 * registers to sample (sample_regs_user), and those registers, in the
	 * kernel's order of the mask's bits, as DWARF registers 0..count-1
	 * (*pc and *sp said apart). 0 / NULL: no DWARF unwinding. */
	uint64_t perf_user_regs;
	/* Whether a function's first instructions set up a frame pointer (for
	 * --call-graph auto). NULL: never assumed. */
	bool (*sets_frame_pointer)(const uint8_t *code, size_t size);
	unsigned (*perf_regs_to_dwarf)(const uint64_t *perf, uint64_t *dwarf, uint64_t *pc, uint64_t *sp);
};

/* NULL when the machine has no probe support (its symbols still load). */
const struct arch_ops *arch_for_machine(uint16_t machine);
/* "x86_64", "riscv64", ... or "unknown". */
const char *arch_machine_name(uint16_t machine);

int exit_site_list__append(struct exit_site_list *list, uint64_t addr, uint8_t kind);
void exit_site_list__free(struct exit_site_list *list);

#endif
