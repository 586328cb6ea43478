/* x86_64: which first instructions of a function the in-process agent may
 * move out for its 5-byte jump, decoded with capstone in `record` (never in
 * the target). The checks are those of uftrace's dynamic patching
 * (arch/x86_64/mcount-insn.c: whole instructions, no branches among them,
 * no branch back into them, rip-relative operands relocated), stricter
 * where our trampoline needs it: it calls the function through its own
 * frame, so nothing moved may look at the caller's frame, and nothing
 * moved may branch or fault (the relocated copy has no unwind info). */
#include "arch/x86_64_patch.h"

#include <capstone/capstone.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* Longest x86 instruction: capstone refuses longer ones, as the CPU does. */
#define X86_MAX_INSN 15
_Static_assert(PATCH_JUMP_SIZE - 1 + X86_MAX_INSN <= PATCH_MAX_MOVED,
	       "the instructions covering the jump must fit the agent's copy");

static const uint8_t endbr64[] = { 0xf3, 0x0f, 0x1e, 0xfa };

#define GPR_COUNT 16
#define GPR_SP 4
#define GPR_BP 5

/* The general registers by index (rax 0 .. r15 15), in every width. */
static const uint16_t gpr_names[GPR_COUNT][5] = {
	{ X86_REG_RAX, X86_REG_EAX, X86_REG_AX, X86_REG_AL, X86_REG_AH },
	{ X86_REG_RCX, X86_REG_ECX, X86_REG_CX, X86_REG_CL, X86_REG_CH },
	{ X86_REG_RDX, X86_REG_EDX, X86_REG_DX, X86_REG_DL, X86_REG_DH },
	{ X86_REG_RBX, X86_REG_EBX, X86_REG_BX, X86_REG_BL, X86_REG_BH },
	{ X86_REG_RSP, X86_REG_ESP, X86_REG_SP, X86_REG_SPL, X86_REG_INVALID },
	{ X86_REG_RBP, X86_REG_EBP, X86_REG_BP, X86_REG_BPL, X86_REG_INVALID },
	{ X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL, X86_REG_INVALID },
	{ X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL, X86_REG_INVALID },
	{ X86_REG_R8, X86_REG_R8D, X86_REG_R8W, X86_REG_R8B, X86_REG_INVALID },
	{ X86_REG_R9, X86_REG_R9D, X86_REG_R9W, X86_REG_R9B, X86_REG_INVALID },
	{ X86_REG_R10, X86_REG_R10D, X86_REG_R10W, X86_REG_R10B, X86_REG_INVALID },
	{ X86_REG_R11, X86_REG_R11D, X86_REG_R11W, X86_REG_R11B, X86_REG_INVALID },
	{ X86_REG_R12, X86_REG_R12D, X86_REG_R12W, X86_REG_R12B, X86_REG_INVALID },
	{ X86_REG_R13, X86_REG_R13D, X86_REG_R13W, X86_REG_R13B, X86_REG_INVALID },
	{ X86_REG_R14, X86_REG_R14D, X86_REG_R14W, X86_REG_R14B, X86_REG_INVALID },
	{ X86_REG_R15, X86_REG_R15D, X86_REG_R15W, X86_REG_R15B, X86_REG_INVALID },
};

/* The index of the general register `reg` names, or -1. *width: 0 for
 * the 64-bit name, 1 for the 32-bit one (a write zero-extends: the whole
 * register), 2..4 for the partial ones. */
int x86_64_gpr_of(unsigned reg, int *width)
{
	if (reg == X86_REG_INVALID)
		return -1;
	for (int i = 0; i < GPR_COUNT; i++)
		for (int w = 0; w < 5; w++)
			if (gpr_names[i][w] == reg) {
				*width = w;
				return i;
			}
	return -1;
}

static int gpr64(unsigned reg)
{
	int width, i = x86_64_gpr_of(reg, &width);

	return i >= 0 && width == 0 ? i : -1;
}

/* Which general registers hold stack addresses while the moved
 * instructions run. A register in `frame` holds at most entry %rsp +
 * bound[i]: exact, but after `and $-N,%rsp`, which only lowers it; only
 * the upper end matters, since what must not be reached is at and above
 * the entry %rsp. %rsp is always in `frame`. A register in `opaque` may
 * point into the caller's frame in a way not followed: %rbp until set
 * from %rsp (it may be the caller's frame pointer: strict, since rustc
 * and C compilers never address through it before), and anything
 * computed from a stack address or loaded from the stack. */
struct stack_model {
	int64_t bound[GPR_COUNT];
	uint16_t frame, opaque;
};

#define BIT(i) ((uint16_t)(1u << (i)))

struct insn_regs {
	cs_regs read, write;
	uint8_t nread, nwrite;
};

static bool is_sp(unsigned reg)
{
	int width;

	return x86_64_gpr_of(reg, &width) == GPR_SP;
}

static bool is_ip(unsigned reg)
{
	return reg == X86_REG_RIP || reg == X86_REG_EIP || reg == X86_REG_IP;
}

static bool regs_have(const uint16_t *regs, uint8_t n, bool (*pred)(unsigned))
{
	for (uint8_t i = 0; i < n; i++)
		if (pred(regs[i]))
			return true;
	return false;
}

static bool in_group(const cs_insn *insn, uint8_t group)
{
	for (uint8_t i = 0; i < insn->detail->groups_count; i++)
		if (insn->detail->groups[i] == group)
			return true;
	return false;
}

/* Anything that may leave the straight line: branches, calls, returns,
 * interrupts and traps, and what faults in user mode (privileged,
 * virtualisation, SGX, transactional memory). capstone 4 puts ud2/ud0 in
 * no group: named here. */
static bool is_control_flow(const cs_insn *insn)
{
	static const uint8_t groups[] = {
		CS_GRP_JUMP, CS_GRP_CALL, CS_GRP_RET, CS_GRP_INT, CS_GRP_IRET, CS_GRP_PRIVILEGE,
		CS_GRP_BRANCH_RELATIVE, X86_GRP_VM, X86_GRP_RTM, X86_GRP_SGX,
	};

	for (size_t i = 0; i < sizeof(groups); i++)
		if (in_group(insn, groups[i]))
			return true;
	switch (insn->id) {
	case X86_INS_UD0: case X86_INS_UD2: case X86_INS_UD2B:
	case X86_INS_SYSCALL: case X86_INS_SYSENTER: case X86_INS_SYSEXIT: case X86_INS_SYSRET:
	case X86_INS_INT: case X86_INS_INT1: case X86_INS_INT3: case X86_INS_INTO:
	case X86_INS_LOOP: case X86_INS_LOOPE: case X86_INS_LOOPNE:
	case X86_INS_JRCXZ: case X86_INS_JECXZ: case X86_INS_HLT:
		return true;
	default:
		return false;
	}
}

/* Rip-relative addressing is ModRM mod 00, r/m 101, then a disp32.
 * capstone 4.0.2 says disp_size 2 when a 0x66 prefix (or VEX.pp 66) is
 * present (`movdqa 0x10(%rip),%xmm0`), so the encoding is checked from the
 * bytes; its modrm and disp offsets are right. */
static bool has_rip_disp32(const cs_insn *insn, int32_t disp)
{
	const cs_x86_encoding *enc = &insn->detail->x86.encoding;
	int32_t bytes;

	if (enc->modrm_offset == 0 || enc->disp_offset != enc->modrm_offset + 1 ||
	    enc->disp_offset + sizeof(bytes) > insn->size || (insn->bytes[enc->modrm_offset] & 0xc7) != 0x05)
		return false;
	memcpy(&bytes, insn->bytes + enc->disp_offset, sizeof(bytes)); /* little-endian, as the host */
	return bytes == disp; /* else the bytes are not where capstone says */
}

/* A rip-relative operand with a 32-bit displacement becomes a reloc; any
 * other use of the instruction pointer (eip-relative through an address
 * size prefix, an implicit read) cannot be moved. */
static int relocate_rip(const cs_insn *insn, const struct insn_regs *regs, unsigned offset,
			struct patch_plan *plan)
{
	const cs_x86 *x86 = &insn->detail->x86;
	const cs_x86_op *rip = NULL;
	uint8_t at = x86->encoding.disp_offset;
	int32_t disp;

	for (uint8_t i = 0; i < x86->op_count; i++)
		if (x86->operands[i].type == X86_OP_MEM &&
		    (is_ip(x86->operands[i].mem.base) || is_ip(x86->operands[i].mem.index)))
			rip = &x86->operands[i];
	if (!rip)
		return regs_have(regs->read, regs->nread, is_ip) ? PATCH_RIP_RELATIVE : PATCH_OK;
	disp = (int32_t)rip->mem.disp;
	if (rip->mem.base != X86_REG_RIP || rip->mem.index != X86_REG_INVALID ||
	    disp != rip->mem.disp || !has_rip_disp32(insn, disp))
		return PATCH_RIP_RELATIVE;
	if (plan->reloc_count == PATCH_MAX_RELOCS)
		return PATCH_TOO_MANY_RELOCS;
	plan->relocs[plan->reloc_count++] = (struct patch_reloc){
		.disp_offset = (uint16_t)(offset + at),
		.insn_end = (uint16_t)(offset + insn->size),
		.target = insn->address + insn->size + (uint64_t)(int64_t)disp,
	};
	return PATCH_OK;
}

/* A memory operand through a stack address must stay below the entry
 * %rsp; lea accesses nothing, but the address it makes must be below too,
 * except when it sets %rsp or %rbp (followed from there, as `mov
 * %rsp,%rbp` is). Operands on other registers are the program's data, not
 * the stack's layout. */
static bool memory_operand_ok(const cs_insn *insn, const cs_x86_op *op, const struct stack_model *m)
{
	const x86_op_mem *mem = &op->mem;
	int width, base = x86_64_gpr_of(mem->base, &width), index = x86_64_gpr_of(mem->index, &width);
	const cs_x86_op *dst = &insn->detail->x86.operands[0];
	int64_t end;

	if (index >= 0 && ((m->frame | m->opaque) & BIT(index)))
		return false;
	if (base < 0 || !((m->frame | m->opaque) & BIT(base)))
		return true;
	if ((m->opaque & BIT(base)) || gpr64(mem->base) < 0 || index >= 0)
		return false;
	end = m->bound[base] + mem->disp;
	if (insn->id != X86_INS_LEA)
		return op->size > 0 && end + op->size <= 0;
	return end < 0 || gpr64(dst->reg) == GPR_SP || gpr64(dst->reg) == GPR_BP;
}

static bool memory_operands_ok(const cs_insn *insn, const struct stack_model *m)
{
	const cs_x86 *x86 = &insn->detail->x86;

	for (uint8_t i = 0; i < x86->op_count; i++)
		if (x86->operands[i].type == X86_OP_MEM && !memory_operand_ok(insn, &x86->operands[i], m))
			return false;
	return true;
}

static void set_frame(struct stack_model *m, int reg, int64_t bound)
{
	m->frame |= BIT(reg);
	m->opaque &= (uint16_t)~BIT(reg);
	m->bound[reg] = bound;
}

/* push/pop, of a register, memory or the flags: an implicit 8-byte access
 * at the stack top. 16-bit forms, `push %rsp` (its value), `pop %rsp` and
 * `pop` into memory (addressed after the increment) are refused: no
 * compiler puts them in a prologue. */
static int push_pop(const cs_insn *insn, struct stack_model *m, bool push)
{
	const cs_x86 *x86 = &insn->detail->x86;
	const cs_x86_op *op = &x86->operands[0];
	bool has_op = x86->op_count == 1;
	int width, reg = has_op && op->type == X86_OP_REG ? x86_64_gpr_of(op->reg, &width) : -1;

	if (x86->prefix[2] == X86_PREFIX_OPSIZE || reg == GPR_SP || (!push && has_op && op->type == X86_OP_MEM))
		return PATCH_CALLER_FRAME;
	if (push) {
		if (m->bound[GPR_SP] > 0)
			return PATCH_CALLER_FRAME; /* would write over the return address */
		m->bound[GPR_SP] -= 8;
		return PATCH_OK;
	}
	if (m->bound[GPR_SP] + 8 > 0)
		return PATCH_CALLER_FRAME; /* would read the return address or above */
	m->bound[GPR_SP] += 8;
	if (reg >= 0) {
		/* a value from the stack: perhaps the caller's frame pointer again */
		m->frame &= (uint16_t)~BIT(reg);
		m->opaque |= BIT(reg);
	}
	return PATCH_OK;
}

/* `sub/add $imm,%rsp` and `and $-N,%rsp`. */
static int adjust_sp(const cs_insn *insn, struct stack_model *m)
{
	const cs_x86 *x86 = &insn->detail->x86;
	int64_t imm;

	if (x86->op_count != 2 || x86->operands[1].type != X86_OP_IMM)
		return PATCH_CALLER_FRAME;
	imm = x86->operands[1].imm;
	if (insn->id == X86_INS_SUB)
		m->bound[GPR_SP] -= imm;
	else if (insn->id == X86_INS_ADD)
		m->bound[GPR_SP] += imm;
	else if (imm >= 0)
		return PATCH_CALLER_FRAME; /* clears the high bits: not an alignment */
	return PATCH_OK;
}

/* `lea disp(%reg),%dst` or `mov %reg,%dst` from a register holding a stack
 * address: dst holds one too (memory_operands_ok checked a lea's address).
 * A copy of %rsp into another register than %rbp must point below the
 * entry %rsp: at it, it would expose the return address and stack
 * arguments to code we do not see. */
static int copy_frame(const cs_insn *insn, struct stack_model *m, int dst, int src, int64_t disp)
{
	int64_t bound = m->bound[src] + disp;

	if (insn->id == X86_INS_MOV && dst != GPR_BP && dst != GPR_SP && bound >= 0)
		return PATCH_CALLER_FRAME;
	set_frame(m, dst, bound);
	return PATCH_OK;
}

/* The source register and displacement of a copy between 64-bit
 * registers, when the source holds a stack address; -1 otherwise. */
static int frame_copy_source(const cs_insn *insn, const struct stack_model *m, int *dst,
			     int64_t *disp)
{
	const cs_x86 *x86 = &insn->detail->x86;
	const cs_x86_op *to = &x86->operands[0], *from = &x86->operands[1];
	int src;

	if (x86->op_count != 2 || to->type != X86_OP_REG || (*dst = gpr64(to->reg)) < 0)
		return -1;
	if (insn->id == X86_INS_MOV && from->type == X86_OP_REG) {
		*disp = 0;
		src = gpr64(from->reg);
	} else if (insn->id == X86_INS_LEA && from->mem.index == X86_REG_INVALID) {
		*disp = from->mem.disp;
		src = gpr64(from->mem.base);
	} else {
		return -1;
	}
	return src >= 0 && (m->frame & BIT(src)) ? src : -1;
}

/* A register written by an instruction not modelled: a stack address or
 * the caller's frame among its inputs (or a partial write over one) makes
 * it opaque; else it holds data. */
static void note_write(struct stack_model *m, const struct insn_regs *regs, unsigned reg)
{
	int width, input_width, i = x86_64_gpr_of(reg, &width), input;
	bool tracked = false;

	if (i < 0)
		return;
	for (uint8_t r = 0; r < regs->nread; r++)
		if ((input = x86_64_gpr_of(regs->read[r], &input_width)) >= 0 &&
		    ((m->frame | m->opaque) & BIT(input)))
			tracked = true;
	if (width > 1 && ((m->frame | m->opaque) & BIT(i)))
		tracked = true;
	m->frame &= (uint16_t)~BIT(i);
	if (tracked)
		m->opaque |= BIT(i);
	else
		m->opaque &= (uint16_t)~BIT(i);
}

/* An instruction not modelled must leave %rsp alone: no register operand
 * (its value) and no implicit write (push/pop-like, enter, leave: capstone
 * 4 reports none for enter). x86-64 has no instruction reading %rsp
 * implicitly without writing it, so the reads left are memory addressing,
 * which memory_operands_ok has checked. */
static int other_insn(const cs_insn *insn, const struct insn_regs *regs, struct stack_model *m)
{
	const cs_x86 *x86 = &insn->detail->x86;

	for (uint8_t i = 0; i < x86->op_count; i++)
		if (x86->operands[i].type == X86_OP_REG && is_sp(x86->operands[i].reg))
			return PATCH_CALLER_FRAME;
	if (insn->id == X86_INS_ENTER || insn->id == X86_INS_LEAVE ||
	    regs_have(regs->write, regs->nwrite, is_sp))
		return PATCH_CALLER_FRAME;
	for (uint8_t i = 0; i < regs->nwrite; i++)
		note_write(m, regs, regs->write[i]);
	return PATCH_OK;
}

static bool writes_sp(const cs_insn *insn)
{
	const cs_x86 *x86 = &insn->detail->x86;

	return x86->op_count == 2 && x86->operands[0].type == X86_OP_REG &&
	       x86->operands[0].reg == X86_REG_RSP;
}

/* Follows the stack addresses through one moved instruction. */
static int track_stack(const cs_insn *insn, const struct insn_regs *regs, struct stack_model *m)
{
	int64_t disp;
	int dst, src;

	if (!memory_operands_ok(insn, m))
		return PATCH_CALLER_FRAME;
	switch (insn->id) {
	case X86_INS_PUSH: case X86_INS_PUSHFQ:
		return push_pop(insn, m, true);
	case X86_INS_POP: case X86_INS_POPFQ:
		return push_pop(insn, m, false);
	case X86_INS_SUB: case X86_INS_ADD: case X86_INS_AND:
		if (writes_sp(insn))
			return adjust_sp(insn, m);
		break;
	case X86_INS_MOV: case X86_INS_LEA:
		if ((src = frame_copy_source(insn, m, &dst, &disp)) >= 0)
			return copy_frame(insn, m, dst, src, disp);
		break;
	default:
		break;
	}
	return other_insn(insn, regs, m);
}

/* A tail call may end the moved bytes (`jmp other_fn`, `jmp *(%rax)`): the
 * copy jumps where the function would have, and nothing comes back to the
 * copy, so a call-through's `call` returns from the function jumped to, as
 * the original's caller would have. A direct jump is relocated (rel32 only:
 * a rel8 could not reach from the copy); an indirect one moves as it is.
 * The stack must be as at entry (a tail call leaves no frame behind). */
static int check_tail_jump(const cs_insn *insn, const struct insn_regs *regs, unsigned offset,
			   const struct stack_model *m, struct patch_plan *plan)
{
	const cs_x86 *x86 = &insn->detail->x86;
	const cs_x86_op *op = &x86->operands[0];

	if (insn->id != X86_INS_JMP || x86->op_count != 1 || m->bound[GPR_SP] != 0)
		return PATCH_CONTROL_FLOW;
	if (op->type == X86_OP_IMM) {
		if (insn->size != 5 || insn->bytes[0] != 0xe9)
			return PATCH_CONTROL_FLOW;
		if (plan->reloc_count == PATCH_MAX_RELOCS)
			return PATCH_TOO_MANY_RELOCS;
		plan->relocs[plan->reloc_count++] = (struct patch_reloc){
			.disp_offset = (uint16_t)(offset + 1),
			.insn_end = (uint16_t)(offset + insn->size),
			.target = (uint64_t)op->imm,
		};
		return PATCH_OK;
	}
	if (op->type == X86_OP_REG) {
		int reg = gpr64(op->reg);

		/* a stack address differs in the copy's shifted frame */
		return reg < 0 || ((m->frame | m->opaque) & BIT(reg)) ? PATCH_CALLER_FRAME : PATCH_OK;
	}
	if (!memory_operands_ok(insn, m))
		return PATCH_CALLER_FRAME;
	return relocate_rip(insn, regs, offset, plan);
}

/* One instruction to move, at `offset` in the moved bytes; `last`: it
 * completes the bytes to cover. */
static int check_moved(csh handle, const cs_insn *insn, unsigned offset, bool last, struct stack_model *m,
		       struct patch_plan *plan)
{
	struct insn_regs regs;
	int refusal;

	if (is_control_flow(insn) && !last)
		return PATCH_CONTROL_FLOW;
	if (cs_regs_access(handle, insn, regs.read, &regs.nread, regs.write, &regs.nwrite) != CS_ERR_OK)
		return PATCH_UNDECODABLE;
	if (is_control_flow(insn))
		return check_tail_jump(insn, &regs, offset, m, plan);
	if ((refusal = relocate_rip(insn, &regs, offset, plan)) != PATCH_OK)
		return refusal;
	return track_stack(insn, &regs, m);
}

/* The whole instructions from code[skip] covering `cover` bytes. */
static int plan_moved(csh handle, cs_insn *insn, const uint8_t *code, size_t size, uint64_t addr,
		      unsigned cover, struct patch_plan *plan)
{
	struct stack_model m = { .frame = BIT(GPR_SP), .opaque = BIT(GPR_BP) };
	const uint8_t *cursor = code + plan->skip;
	size_t left = size - plan->skip;
	uint64_t pc = addr + plan->skip;
	unsigned offset = 0;
	int refusal;

	while (offset < cover) {
		/* Also when the function ends inside the instruction. */
		if (!cs_disasm_iter(handle, &cursor, &left, &pc, insn))
			return PATCH_UNDECODABLE;
		if (offset + insn->size > PATCH_MAX_MOVED)
			return PATCH_TOO_LONG;
		if ((refusal = check_moved(handle, insn, offset, offset + insn->size >= cover, &m, plan)) != PATCH_OK)
			return refusal;
		offset += insn->size;
	}
	plan->length = (uint8_t)offset;
	return PATCH_OK;
}

static bool direct_branch_target(const cs_insn *insn, uint64_t *target)
{
	const cs_x86 *x86 = &insn->detail->x86;

	if (!in_group(insn, CS_GRP_JUMP) && !in_group(insn, CS_GRP_CALL) &&
	    !in_group(insn, CS_GRP_BRANCH_RELATIVE))
		return false;
	if (x86->op_count != 1 || x86->operands[0].type != X86_OP_IMM)
		return false;
	*target = (uint64_t)x86->operands[0].imm;
	return true;
}

/* A branch to a moved byte after the first would land in the jump (a
 * branch to the first runs the jump: fine). Linear sweep of the whole
 * function, resynchronising on undecodable bytes as find_exits does. */
static int scan_branches(csh handle, cs_insn *insn, const uint8_t *code, size_t size,
			 uint64_t addr, const struct patch_plan *plan)
{
	uint64_t lo = addr + plan->skip + 1, hi = addr + plan->skip + plan->length, target;
	const uint8_t *cursor = code;
	size_t left = size;
	uint64_t pc = addr;

	while (left > 0) {
		if (!cs_disasm_iter(handle, &cursor, &left, &pc, insn)) {
			cursor++, left--, pc++;
			continue;
		}
		if (direct_branch_target(insn, &target) && target >= lo && target < hi)
			return PATCH_BRANCH_INTO_PATCH;
	}
	return PATCH_OK;
}

static int plan_with(csh handle, const uint8_t *code, size_t size, uint64_t addr, unsigned cover,
		     struct patch_plan *out)
{
	cs_insn *insn = cs_malloc(handle);
	int result;

	if (!insn)
		return -ENOMEM;
	result = plan_moved(handle, insn, code, size, addr, cover, out);
	if (result == PATCH_OK)
		result = scan_branches(handle, insn, code, size, addr, out);
	cs_free(insn, 1);
	return result;
}

int x86_64_plan_patch_covering(const uint8_t *code, size_t size, uint64_t addr, unsigned cover,
			       struct patch_plan *out)
{
	csh handle;
	int result;

	if (!code || !out || cover == 0 || cover > PATCH_MAX_MOVED)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	/* An endbr64 stays: indirect branches land on it under CET. */
	if (size >= sizeof(endbr64) && memcmp(code, endbr64, sizeof(endbr64)) == 0)
		out->skip = sizeof(endbr64);
	if (size < out->skip + (size_t)cover) {
		memset(out, 0, sizeof(*out));
		return PATCH_TOO_SHORT;
	}
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK)
		return -ENOMEM;
	cs_option(handle, CS_OPT_DETAIL, CS_OPT_ON);
	result = plan_with(handle, code, size, addr, cover, out);
	cs_close(&handle);
	if (result != PATCH_OK)
		memset(out, 0, sizeof(*out));
	return result;
}

int x86_64_plan_patch(const uint8_t *code, size_t size, uint64_t addr, struct patch_plan *out)
{
	return x86_64_plan_patch_covering(code, size, addr, PATCH_JUMP_SIZE, out);
}

int x86_64_plan_short_patch(const uint8_t *code, size_t size, uint64_t addr, struct patch_plan *out)
{
	return x86_64_plan_patch_covering(code, size, addr, PATCH_SHORT_JUMP_SIZE, out);
}

/* Mid-function sites (an inlined async body's dispatch, resume point or
 * exit). The stack is exactly the site's when the moved copy runs (the
 * trampoline restores every register and the flags), so no stack model:
 * what matters is that the copy does what the original would, and that
 * nothing else enters the moved bytes. */

static bool has_target_in(const uint64_t *targets, size_t count, uint64_t lo, uint64_t hi)
{
	size_t a = 0, b = count;

	while (a < b) { /* the first target >= lo */
		size_t mid = a + (b - a) / 2;

		if (targets[mid] < lo)
			a = mid + 1;
		else
			b = mid;
	}
	return a < count && targets[a] < hi;
}

/* A `jmp rel32` that is the whole moved range: relocated, as a tail jump
 * is at an entry. Only to inside the host: a jump out of it may be the
 * host's exit, which a uprobe may probe (a uprobe inside patched bytes
 * would single-step the file's instruction, then run into the int3s). */
static int site_jump(const cs_insn *insn, uint64_t host_lo, uint64_t host_hi, struct patch_plan *plan)
{
	const cs_x86 *x86 = &insn->detail->x86;
	uint64_t target;

	if (insn->id != X86_INS_JMP || insn->size != PATCH_JUMP_SIZE || insn->bytes[0] != 0xe9 ||
	    x86->op_count != 1 || x86->operands[0].type != X86_OP_IMM)
		return PATCH_CONTROL_FLOW;
	target = (uint64_t)x86->operands[0].imm;
	if (target < host_lo || target >= host_hi)
		return PATCH_CONTROL_FLOW;
	plan->relocs[plan->reloc_count++] = (struct patch_reloc){ .disp_offset = 1, .insn_end = PATCH_JUMP_SIZE,
								  .target = target };
	return PATCH_OK;
}

static int plan_site_moved(csh handle, cs_insn *insn, const uint8_t *code, size_t size, uint64_t addr,
			   uint64_t site, struct patch_plan *plan)
{
	const uint8_t *cursor = code + (site - addr);
	size_t left = size - (site - addr);
	uint64_t pc = site;
	unsigned offset = 0;
	struct insn_regs regs;
	int refusal;

	while (offset < PATCH_JUMP_SIZE) {
		if (!cs_disasm_iter(handle, &cursor, &left, &pc, insn))
			return PATCH_UNDECODABLE;
		if (offset + insn->size > PATCH_MAX_MOVED)
			return PATCH_TOO_LONG;
		if (is_control_flow(insn)) {
			if (offset != 0 || site_jump(insn, addr, addr + size, plan) != PATCH_OK)
				return PATCH_CONTROL_FLOW;
		} else {
			if (cs_regs_access(handle, insn, regs.read, &regs.nread, regs.write, &regs.nwrite) != CS_ERR_OK)
				return PATCH_UNDECODABLE;
			if ((refusal = relocate_rip(insn, &regs, offset, plan)) != PATCH_OK)
				return refusal;
		}
		offset += insn->size;
	}
	plan->length = (uint8_t)offset;
	return PATCH_OK;
}

int x86_64_plan_site(const uint8_t *code, size_t size, uint64_t addr, uint64_t site, const uint64_t *targets,
		     size_t target_count, struct patch_plan *out)
{
	cs_insn *insn;
	csh handle;
	int result;

	if (!code || !out || (target_count && !targets))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (site < addr || site - addr >= size)
		return PATCH_TOO_SHORT;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK)
		return -ENOMEM;
	cs_option(handle, CS_OPT_DETAIL, CS_OPT_ON);
	insn = cs_malloc(handle);
	result = insn ? plan_site_moved(handle, insn, code, size, addr, site, out) : -ENOMEM;
	/* The jump covers the first byte; a branch, table, return or landing
	 * pad into any later one would run the int3s left there. */
	if (result == PATCH_OK && has_target_in(targets, target_count, site + 1, site + out->length))
		result = PATCH_BRANCH_INTO_PATCH;
	if (insn)
		cs_free(insn, 1);
	cs_close(&handle);
	if (result != PATCH_OK)
		memset(out, 0, sizeof(*out));
	return result;
}
