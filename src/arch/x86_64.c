/* x86_64: exits found by decoding the function with capstone; the patch
 * planner is in x86_64_patch.c. */
#include <string.h>
#include "arch/arch.h"
#include "arch/x86_64_patch.h"

#include <capstone/capstone.h>
#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* How many preceding instructions to search for the table arithmetic that
 * feeds an indirect `jmp *%reg`. */
#define JUMP_TABLE_LOOKBACK 4

static bool is_outside(uint64_t target, uint64_t start, size_t size)
{
	return target < start || target >= start + size;
}

/* LLVM and GCC dispatch switch statements (and Rust state machines) as
 * `movslq (%tbl,%idx,4),%reg; add %tbl,%reg; jmp *%reg`: an indirect jump
 * through a register written by such arithmetic stays in the function. A
 * register jump without it is an indirect tail call. */
static bool is_jump_table_dispatch(const cs_insn *recent, size_t nrecent, x86_reg reg)
{
	for (size_t i = 0; i < nrecent; i++) {
		const cs_x86 *x86 = &recent[i].detail->x86;

		if (recent[i].id != X86_INS_MOVSXD && recent[i].id != X86_INS_ADD &&
		    recent[i].id != X86_INS_MOV)
			continue;
		if (x86->op_count >= 1 && x86->operands[0].type == X86_OP_REG &&
		    x86->operands[0].reg == reg)
			return recent[i].id != X86_INS_MOV || x86->operands[1].type == X86_OP_MEM;
	}
	return false;
}

static int classify_jump(const cs_insn *insn, const cs_insn *recent, size_t nrecent,
			 uint64_t start, size_t size, struct exit_site_list *out)
{
	const cs_x86 *x86 = &insn->detail->x86;
	const cs_x86_op *op = &x86->operands[0];
	bool conditional = insn->id != X86_INS_JMP;

	if (x86->op_count < 1)
		return 0;
	if (op->type == X86_OP_IMM) {
		if (!is_outside((uint64_t)op->imm, start, size))
			return 0;
		if (conditional) {
			out->unsupported++;
			return 0;
		}
		return exit_site_list__append(out, insn->address, EXIT_TAIL_CALL);
	}
	if (conditional)
		return 0;
	/* `notrack jmp *%reg` (a 0x3e prefix, which capstone 4 reports as a DS
	 * override) is how CET-enabled compilers mark jump tables. */
	if (op->type == X86_OP_REG &&
	    (x86->prefix[1] == X86_PREFIX_DS || is_jump_table_dispatch(recent, nrecent, op->reg)))
		return 0;
	return exit_site_list__append(out, insn->address, EXIT_TAIL_CALL);
}

/* capstone 4 numbers the jumps contiguously: JAE .. JS, JMP among them. */
static bool is_jump(unsigned id)
{
	return id >= X86_INS_JAE && id <= X86_INS_JS;
}

static int x86_64_find_exits(const uint8_t *code, size_t size, uint64_t addr,
			     struct exit_site_list *out)
{
	cs_insn recent[JUMP_TABLE_LOOKBACK];
	cs_detail recent_detail[JUMP_TABLE_LOOKBACK];
	size_t nrecent = 0;
	const uint8_t *cursor = code;
	size_t left = size;
	uint64_t pc = addr;
	cs_insn *insn;
	csh handle;
	int err = 0;

	if (cs_open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK)
		return -ENOMEM;
	cs_option(handle, CS_OPT_DETAIL, CS_OPT_ON);
	insn = cs_malloc(handle);
	if (!insn) {
		cs_close(&handle);
		return -ENOMEM;
	}
	while (left > 0 && !err) {
		if (!cs_disasm_iter(handle, &cursor, &left, &pc, insn)) {
			/* Padding or data: skip a byte and resynchronise. */
			cursor++, left--, pc++;
			continue;
		}
		if (insn->id == X86_INS_RET || insn->id == X86_INS_RETF)
			err = exit_site_list__append(out, insn->address, EXIT_RETURN);
		else if (is_jump(insn->id))
			err = classify_jump(insn, recent, nrecent, addr, size, out);
		/* Keep the last few instructions, newest first. */
		for (size_t i = (nrecent < JUMP_TABLE_LOOKBACK ? nrecent : JUMP_TABLE_LOOKBACK - 1); i > 0; i--) {
			recent[i] = recent[i - 1];
			recent_detail[i] = recent_detail[i - 1];
			recent[i].detail = &recent_detail[i];
		}
		recent[0] = *insn;
		recent_detail[0] = *insn->detail;
		recent[0].detail = &recent_detail[0];
		if (nrecent < JUMP_TABLE_LOOKBACK)
			nrecent++;
	}
	cs_free(insn, 1);
	cs_close(&handle);
	return err;
}

/* perf's x86 register numbers (asm/perf_regs.h) and the System V ABI's
 * DWARF numbers: 0 rax, 1 rdx, 2 rcx, 3 rbx, 4 rsi, 5 rdi, 6 rbp, 7 rsp,
 * 8-15 r8-r15, 16 the return address (rip). */
enum { P_AX, P_BX, P_CX, P_DX, P_SI, P_DI, P_BP, P_SP, P_IP, P_R8 = 16 };
#define PERF_GENERAL_REGS ((1ULL << P_AX) | (1ULL << P_BX) | (1ULL << P_CX) | (1ULL << P_DX) | (1ULL << P_SI) | \
			   (1ULL << P_DI) | (1ULL << P_BP) | (1ULL << P_SP) | (1ULL << P_IP) | (0xffULL << P_R8))

static unsigned x86_64_perf_regs_to_dwarf(const uint64_t *perf, uint64_t *dwarf, uint64_t *pc, uint64_t *sp)
{
	/* the mask's bits in order: ax bx cx dx si di bp sp ip r8..r15 */
	static const uint8_t dwarf_of[17] = { 0, 3, 2, 1, 4, 5, 6, 7, 16, 8, 9, 10, 11, 12, 13, 14, 15 };

	for (unsigned i = 0; i < 17; i++)
		dwarf[dwarf_of[i]] = perf[i];
	*pc = perf[8];
	*sp = perf[7];
	return 17;
}

/* [endbr64] push %rbp; mov %rsp,%rbp */
static bool x86_64_sets_frame_pointer(const uint8_t *code, size_t size)
{
	static const uint8_t endbr64[4] = { 0xf3, 0x0f, 0x1e, 0xfa }, prologue[4] = { 0x55, 0x48, 0x89, 0xe5 };

	if (size >= 4 && !memcmp(code, endbr64, 4)) {
		code += 4;
		size -= 4;
	}
	return size >= 4 && !memcmp(code, prologue, 4);
}

const struct arch_ops x86_64_arch_ops = {
	.name = "x86_64",
	.machine = EM_X86_64,
	.find_exits = x86_64_find_exits,
	.plan_patch = x86_64_plan_patch,
	.plan_short_patch = x86_64_plan_short_patch,
	.plan_site = x86_64_plan_site,
	.padding_byte = 0xcc,
	.perf_user_regs = PERF_GENERAL_REGS,
	.perf_regs_to_dwarf = x86_64_perf_regs_to_dwarf,
	.sets_frame_pointer = x86_64_sets_frame_pointer,
};
