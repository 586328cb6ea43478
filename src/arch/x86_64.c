/* x86_64: exits found by decoding the function with capstone; the patch
 * planner is in x86_64_patch.c. */
#include "arch/arch.h"
#include "arch/x86_64_patch.h"

#include <capstone/capstone.h>
#include <elf.h>
#include <errno.h>
#include <stdbool.h>

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

const struct arch_ops x86_64_arch_ops = {
	.name = "x86_64",
	.machine = EM_X86_64,
	.find_exits = x86_64_find_exits,
	.plan_patch = x86_64_plan_patch,
	.plan_short_patch = x86_64_plan_short_patch,
	.padding_byte = 0xcc,
};
