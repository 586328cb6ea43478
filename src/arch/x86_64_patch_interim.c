/* INTERIM (replaced by the real planner): moves whole instructions until 5
 * bytes are covered; refuses control flow and rip-relative operands. */
#include "arch/arch.h"

#include <capstone/capstone.h>
#include <errno.h>
#include <string.h>

const char *patch_refusal__name(int refusal)
{
	return refusal == PATCH_OK ? "ok" : "refused (interim planner)";
}

int x86_64_plan_patch(const uint8_t *code, size_t size, uint64_t addr, struct patch_plan *out);

int x86_64_plan_patch(const uint8_t *code, size_t size, uint64_t addr, struct patch_plan *out)
{
	const uint8_t *cursor = code;
	size_t left = size;
	uint64_t pc = addr;
	cs_insn *insn;
	csh handle;
	int rc = PATCH_OK;

	memset(out, 0, sizeof(*out));
	if (size >= 4 && !memcmp(code, "\xf3\x0f\x1e\xfa", 4)) {
		out->skip = 4;
		cursor += 4, left -= 4, pc += 4;
	}
	if (left < PATCH_JUMP_SIZE)
		return PATCH_TOO_SHORT;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK)
		return -ENOMEM;
	cs_option(handle, CS_OPT_DETAIL, CS_OPT_ON);
	insn = cs_malloc(handle);
	while (out->length < PATCH_JUMP_SIZE && rc == PATCH_OK) {
		if (!cs_disasm_iter(handle, &cursor, &left, &pc, insn)) {
			rc = PATCH_UNDECODABLE;
			break;
		}
		for (int g = 0; g < insn->detail->groups_count; g++)
			if (insn->detail->groups[g] == CS_GRP_JUMP || insn->detail->groups[g] == CS_GRP_CALL ||
			    insn->detail->groups[g] == CS_GRP_RET || insn->detail->groups[g] == CS_GRP_INT)
				rc = PATCH_CONTROL_FLOW;
		for (int o = 0; o < insn->detail->x86.op_count; o++)
			if (insn->detail->x86.operands[o].type == X86_OP_MEM &&
			    insn->detail->x86.operands[o].mem.base == X86_REG_RIP)
				rc = PATCH_RIP_RELATIVE;
		out->length += insn->size;
	}
	cs_free(insn, 1);
	cs_close(&handle);
	return rc;
}
