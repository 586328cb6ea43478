/* The in-process agent's patch plans (arch->plan_patch, x86_64): which
 * first instructions move, their rip-relative operands, and every refusal,
 * on hand-made byte sequences. */
#include <elf.h>
#include <errno.h>
#include <stdbool.h>

#include "arch/arch.h"
#include "arch/x86_64_patch.h"
#include "probe/agent_plan.h"
#include "unit.h"

#define BASE 0x401000

static int plan(const uint8_t *code, size_t size, struct patch_plan *out)
{
	const struct arch_ops *arch = arch_for_machine(EM_X86_64);

	return arch && arch->plan_patch ? arch->plan_patch(code, size, BASE, out) : -ENOSYS;
}

#define PLAN(code, out) plan(code, sizeof(code), out)

/* A plan that moves `length` bytes after `skip`, without relocations. */
static bool moves(const uint8_t *code, size_t size, unsigned skip, unsigned length)
{
	struct patch_plan p;

	return plan(code, size, &p) == PATCH_OK && p.skip == skip && p.length == length &&
	       p.reloc_count == 0;
}

#define MOVES(code, skip, length) moves(code, sizeof(code), skip, length)

static int refusal(const uint8_t *code, size_t size)
{
	struct patch_plan p;

	return plan(code, size, &p);
}

#define REFUSAL(code) refusal(code, sizeof(code))

UNIT_TEST(patch_x86_has_a_planner)
{
	const struct arch_ops *arch = arch_for_machine(EM_X86_64);

	CHECK(arch && arch->plan_patch == x86_64_plan_patch);
}

UNIT_TEST(patch_prologues_of_rust_and_c)
{
	/* debug Rust: the imm32 `sub` alone covers the jump (7 bytes) */
	static const uint8_t debug_big[] = {
		0x48, 0x81, 0xec, 0x88, 0x00, 0x00, 0x00, /* sub $0x88,%rsp */
		0x48, 0x89, 0x7c, 0x24, 0x28,             /* mov %rdi,0x28(%rsp) */
		0xc3,
	};
	/* with an imm8 `sub` the spill moves too: below the entry %rsp */
	static const uint8_t debug_small[] = {
		0x48, 0x83, 0xec, 0x68,       /* sub $0x68,%rsp */
		0x48, 0x89, 0x7c, 0x24, 0x28, /* mov %rdi,0x28(%rsp) */
		0xc3,
	};
	static const uint8_t frame_pointer[] = {
		0x55,                   /* push %rbp */
		0x48, 0x89, 0xe5,       /* mov %rsp,%rbp */
		0x48, 0x83, 0xec, 0x10, /* sub $0x10,%rsp */
		0xc9, 0xc3,             /* leave; ret */
	};
	static const uint8_t release[] = {
		0x41, 0x57,             /* push %r15 */
		0x41, 0x56,             /* push %r14 */
		0x53,                   /* push %rbx */
		0x48, 0x83, 0xec, 0x20, /* sub $0x20,%rsp */
		0xc3,
	};
	static const uint8_t aligned[] = {
		0x55, 0x48, 0x89, 0xe5, /* push %rbp; mov %rsp,%rbp */
		0x48, 0x83, 0xe4, 0xf0, /* and $-16,%rsp */
		0xc9, 0xc3,
	};

	CHECK(MOVES(debug_big, 0, 7));
	CHECK(MOVES(debug_small, 0, 9));
	CHECK(MOVES(frame_pointer, 0, 8));
	CHECK(MOVES(release, 0, 5));
	CHECK(MOVES(aligned, 0, 8));
}

UNIT_TEST(patch_endbr64_stays)
{
	static const uint8_t endbr_push[] = {
		0xf3, 0x0f, 0x1e, 0xfa, /* endbr64 */
		0x55,                   /* push %rbp */
		0x48, 0x89, 0xe5,       /* mov %rsp,%rbp */
		0x53,                   /* push %rbx */
		0x5b, 0x5d, 0xc3,
	};
	static const uint8_t endbr_only_room_for_4[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x41, 0x57, 0x41, 0x56 };
	static const uint8_t endbr_room_for_5[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x41, 0x57, 0x41, 0x56, 0x53 };

	CHECK(MOVES(endbr_push, 4, 5));
	CHECK(REFUSAL(endbr_only_room_for_4) == PATCH_TOO_SHORT);
	CHECK(MOVES(endbr_room_for_5, 4, 5));
}

static bool one_reloc(const uint8_t *code, size_t size, unsigned skip, unsigned length,
		      unsigned disp_offset, unsigned insn_end, uint64_t target)
{
	struct patch_plan p;

	return plan(code, size, &p) == PATCH_OK && p.skip == skip && p.length == length &&
	       p.reloc_count == 1 && p.relocs[0].disp_offset == disp_offset &&
	       p.relocs[0].insn_end == insn_end && p.relocs[0].target == target;
}

UNIT_TEST(patch_rip_relative_operands_are_relocated)
{
	static const uint8_t lea[] = { 0x48, 0x8d, 0x05, 0x00, 0x01, 0x00, 0x00, 0xc3 };
	static const uint8_t lea_back[] = { 0x48, 0x8d, 0x05, 0xe0, 0xff, 0xff, 0xff, 0xc3 };
	static const uint8_t push_mov[] = {
		0x53,                                     /* push %rbx */
		0x48, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00, /* mov 0x10(%rip),%rax */
		0x5b, 0xc3,
	};
	/* the immediate follows the displacement: rip is past it */
	static const uint8_t cmpb[] = { 0x80, 0x3d, 0x20, 0x00, 0x00, 0x00, 0x00, 0xc3 };
	/* endbr64 stays: offsets count from the first moved byte */
	static const uint8_t endbr_lea[] = {
		0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x8d, 0x05, 0x00, 0x01, 0x00, 0x00, 0xc3,
	};
	/* capstone 4 misreports this displacement's size (0x66 prefix) */
	static const uint8_t movdqa[] = { 0x66, 0x0f, 0x6f, 0x05, 0xe8, 0x72, 0x09, 0x00, 0xc3 };

	CHECK(one_reloc(lea, sizeof(lea), 0, 7, 3, 7, BASE + 7 + 0x100));
	CHECK(one_reloc(lea_back, sizeof(lea_back), 0, 7, 3, 7, BASE + 7 - 0x20));
	CHECK(one_reloc(push_mov, sizeof(push_mov), 0, 8, 4, 8, BASE + 8 + 0x10));
	CHECK(one_reloc(cmpb, sizeof(cmpb), 0, 7, 2, 7, BASE + 7 + 0x20));
	CHECK(one_reloc(endbr_lea, sizeof(endbr_lea), 4, 7, 3, 7, BASE + 4 + 7 + 0x100));
	CHECK(one_reloc(movdqa, sizeof(movdqa), 0, 8, 4, 8, BASE + 8 + 0x972e8));
}

UNIT_TEST(patch_other_rip_uses_are_refused)
{
	/* eip-relative (address-size prefix): the target is truncated to 32 bits */
	static const uint8_t eip[] = { 0x67, 0x48, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00, 0xc3 };
	/* a call through memory: control flow, whatever its addressing */
	static const uint8_t call_rip[] = { 0xff, 0x15, 0x00, 0x00, 0x00, 0x00, 0xc3 };

	CHECK(REFUSAL(eip) == PATCH_RIP_RELATIVE);
	CHECK(REFUSAL(call_rip) == PATCH_CONTROL_FLOW);
}

UNIT_TEST(patch_too_short)
{
	static const uint8_t three[] = { 0x31, 0xc0, 0xc3 };
	static const uint8_t four[] = { 0x53, 0x31, 0xc0, 0x5b };
	struct patch_plan p = { .skip = 9, .length = 9 };

	CHECK(plan(three, sizeof(three), &p) == PATCH_TOO_SHORT);
	CHECK(p.skip == 0 && p.length == 0 && p.reloc_count == 0); /* zeroed on refusal */
	CHECK(REFUSAL(four) == PATCH_TOO_SHORT);
	CHECK(plan(three, 0, &p) == PATCH_TOO_SHORT);
}

UNIT_TEST(patch_control_flow_in_the_first_bytes)
{
	static const uint8_t call[] = { 0xe8, 0x00, 0x10, 0x00, 0x00, 0xc3 };
	static const uint8_t jmp_short[] = { 0xeb, 0x03, 0x90, 0x90, 0x90, 0xc3 };
	static const uint8_t ret[] = { 0x53, 0x5b, 0xc3, 0xcc, 0xcc, 0xcc };
	static const uint8_t jne[] = { 0x48, 0x85, 0xff, 0x75, 0x01, 0xc3, 0xc3 };
	static const uint8_t call_reg[] = { 0x53, 0xff, 0xd0, 0x5b, 0xc3, 0xcc };
	static const uint8_t ud2[] = { 0x53, 0x0f, 0x0b, 0x90, 0x90, 0xc3 };
	static const uint8_t int3[] = { 0x53, 0xcc, 0x90, 0x90, 0x90, 0xc3 };
	static const uint8_t syscall[] = { 0x53, 0x0f, 0x05, 0x90, 0x90, 0xc3 };
	static const uint8_t loop[] = { 0x53, 0xe2, 0xfe, 0x90, 0x90, 0xc3 };
	static const uint8_t jrcxz[] = { 0x53, 0xe3, 0xfe, 0x90, 0x90, 0xc3 };
	static const uint8_t hlt[] = { 0x53, 0xf4, 0x90, 0x90, 0x90, 0xc3 };
	static const uint8_t xbegin[] = { 0xc7, 0xf8, 0x00, 0x00, 0x00, 0x00, 0xc3 };
	/* a call after the moved bytes is fine */
	static const uint8_t later_call[] = { 0x41, 0x57, 0x41, 0x56, 0x53, 0xe8, 0x00, 0x10, 0x00, 0x00, 0xc3 };

	CHECK(REFUSAL(call) == PATCH_CONTROL_FLOW);
	CHECK(REFUSAL(jmp_short) == PATCH_CONTROL_FLOW);
	CHECK(REFUSAL(ret) == PATCH_CONTROL_FLOW);
	CHECK(REFUSAL(jne) == PATCH_CONTROL_FLOW);
	CHECK(REFUSAL(call_reg) == PATCH_CONTROL_FLOW);
	CHECK(REFUSAL(ud2) == PATCH_CONTROL_FLOW);
	CHECK(REFUSAL(int3) == PATCH_CONTROL_FLOW);
	CHECK(REFUSAL(syscall) == PATCH_CONTROL_FLOW);
	CHECK(REFUSAL(loop) == PATCH_CONTROL_FLOW);
	CHECK(REFUSAL(jrcxz) == PATCH_CONTROL_FLOW);
	CHECK(REFUSAL(hlt) == PATCH_CONTROL_FLOW);
	CHECK(REFUSAL(xbegin) == PATCH_CONTROL_FLOW);
	CHECK(MOVES(later_call, 0, 5));
}

/* A tail call that ends the moved bytes moves with them (release Rust:
 * tokio's raw::poll is one `jmp`, RawTask::poll a load and `jmp *(%rax)`). */
UNIT_TEST(patch_tail_jump_ends_the_moved_bytes)
{
	struct patch_plan p;
	static const uint8_t jmp[] = { 0xe9, 0x00, 0x10, 0x00, 0x00, 0xcc };          /* jmp BASE+0x1005 */
	static const uint8_t load_jmp[] = { 0x48, 0x8b, 0x36, 0xe9, 0xf8, 0xff, 0xff, 0xff }; /* mov (%rsi),%rsi; jmp BASE */
	static const uint8_t indirect[] = { 0x48, 0x8b, 0x47, 0x10, 0xff, 0x20, 0xcc }; /* mov 0x10(%rdi),%rax; jmp *(%rax) */
	static const uint8_t via_reg[] = { 0x48, 0x89, 0xf8, 0x90, 0xff, 0xe0 };       /* mov %rdi,%rax; nop; jmp *%rax */
	static const uint8_t rip_jmp[] = { 0xff, 0x25, 0x10, 0x00, 0x00, 0x00, 0xcc }; /* jmp *0x10(%rip) */
	/* not allowed: with more to move after it, a short jump, after a push, to a stack address */
	static const uint8_t jmp_then_more[] = { 0x53, 0xff, 0xe0, 0x90, 0x90, 0x90, 0xc3 }; /* push; jmp *%rax; ... */
	static const uint8_t short_tail[] = { 0x48, 0x8b, 0x36, 0x90, 0xeb, 0xf0 };   /* mov; nop; jmp rel8 */
	static const uint8_t pushed[] = { 0x53, 0x5b, 0x53, 0xe9, 0x00, 0x10, 0x00, 0x00 }; /* push; pop; push; jmp */
	static const uint8_t stack_target[] = { 0x48, 0x8d, 0x04, 0x24, 0x90, 0xff, 0xe0 }; /* lea (%rsp),%rax; nop; jmp *%rax */
	static const uint8_t jmp_rsp_slot[] = { 0x90, 0x90, 0x90, 0xff, 0x24, 0x24 };   /* jmp *(%rsp): the return address */

	CHECK(plan(jmp, sizeof(jmp), &p) == PATCH_OK && p.length == 5 && p.reloc_count == 1);
	CHECK(p.relocs[0].disp_offset == 1 && p.relocs[0].insn_end == 5 && p.relocs[0].target == BASE + 0x1005);
	CHECK(plan(load_jmp, sizeof(load_jmp), &p) == PATCH_OK && p.length == 8 && p.reloc_count == 1);
	CHECK(p.relocs[0].disp_offset == 4 && p.relocs[0].insn_end == 8 && p.relocs[0].target == BASE);
	CHECK(MOVES(indirect, 0, 6));
	CHECK(MOVES(via_reg, 0, 6));
	CHECK(plan(rip_jmp, sizeof(rip_jmp), &p) == PATCH_OK && p.length == 6 && p.reloc_count == 1);
	CHECK(p.relocs[0].disp_offset == 2 && p.relocs[0].target == BASE + 6 + 0x10);
	CHECK(REFUSAL(jmp_then_more) == PATCH_CONTROL_FLOW);
	CHECK(REFUSAL(short_tail) == PATCH_CONTROL_FLOW);
	CHECK(REFUSAL(pushed) == PATCH_CONTROL_FLOW);
	CHECK(REFUSAL(stack_target) == PATCH_CALLER_FRAME);
	CHECK(REFUSAL(jmp_rsp_slot) == PATCH_CALLER_FRAME);
}

/* The padded layout moves only what covers a 2-byte jump: tokio's
 * wake_by_val (push; mov; call) and tiny functions. */
UNIT_TEST(patch_short_covers_two_bytes)
{
	const struct arch_ops *arch = arch_for_machine(EM_X86_64);
	static const uint8_t call_at_4[] = { 0x53, 0x48, 0x89, 0xfb, 0xe8, 0x00, 0x10, 0x00, 0x00, 0x5b, 0xc3 };
	static const uint8_t tiny[] = { 0x31, 0xc0, 0xc3 };                 /* xor %eax,%eax; ret */
	static const uint8_t call_first[] = { 0xe8, 0x00, 0x10, 0x00, 0x00, 0xc3 };
	static const uint8_t endbr_push[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x53, 0xe8, 0, 0, 0, 0, 0xc3 };
	static const uint8_t one[] = { 0xc3 };
	struct patch_plan p;

	CHECK(arch->plan_short_patch == x86_64_plan_short_patch && arch->padding_byte == 0xcc);
	CHECK(x86_64_plan_patch(call_at_4, sizeof(call_at_4), BASE, &p) == PATCH_CONTROL_FLOW);
	CHECK(x86_64_plan_short_patch(call_at_4, sizeof(call_at_4), BASE, &p) == PATCH_OK && p.length == 4);
	CHECK(x86_64_plan_patch(tiny, sizeof(tiny), BASE, &p) == PATCH_TOO_SHORT);
	CHECK(x86_64_plan_short_patch(tiny, sizeof(tiny), BASE, &p) == PATCH_OK && p.length == 2);
	CHECK(x86_64_plan_short_patch(call_first, sizeof(call_first), BASE, &p) == PATCH_CONTROL_FLOW);
	CHECK(x86_64_plan_short_patch(endbr_push, sizeof(endbr_push), BASE, &p) == PATCH_OK && p.skip == 4 &&
	      p.length == 2);
	CHECK(x86_64_plan_short_patch(one, sizeof(one), BASE, &p) == PATCH_TOO_SHORT);
}

UNIT_TEST(patch_branches_into_the_moved_bytes)
{
	/* push %r15; push %r14; push %rbx (moved: 0..4); xor %eax,%eax; jmp back */
#define PUSHES_THEN_JMP(rel) { 0x41, 0x57, 0x41, 0x56, 0x53, 0x31, 0xc0, 0xeb, (rel), 0xc3 }
	static const uint8_t to_byte_2[] = PUSHES_THEN_JMP(0xf9);
	static const uint8_t to_byte_4[] = PUSHES_THEN_JMP(0xfb);
	static const uint8_t to_byte_0[] = PUSHES_THEN_JMP(0xf7);
	static const uint8_t to_byte_5[] = PUSHES_THEN_JMP(0xfc);
	/* a conditional branch, found past an undecodable byte */
	static const uint8_t past_junk[] = {
		0x41, 0x57, 0x41, 0x56, 0x53, 0x06, 0x0f, 0x84, 0xf6, 0xff, 0xff, 0xff, 0xc3,
	};
	/* after an endbr64, a branch to the first patched byte is fine, not to the next */
	static const uint8_t endbr_to_4[] = {
		0xf3, 0x0f, 0x1e, 0xfa, 0x41, 0x57, 0x41, 0x56, 0x53, 0xeb, 0xf9, 0xc3,
	};
	static const uint8_t endbr_to_5[] = {
		0xf3, 0x0f, 0x1e, 0xfa, 0x41, 0x57, 0x41, 0x56, 0x53, 0xeb, 0xfa, 0xc3,
	};
	/* a call back into the moved bytes */
	static const uint8_t call_to_1[] = {
		0x53, 0x48, 0x89, 0xfb, 0x90, 0xe8, 0xf7, 0xff, 0xff, 0xff, 0xc3,
	};

	CHECK(REFUSAL(to_byte_2) == PATCH_BRANCH_INTO_PATCH);
	CHECK(REFUSAL(to_byte_4) == PATCH_BRANCH_INTO_PATCH);
	CHECK(MOVES(to_byte_0, 0, 5));
	CHECK(MOVES(to_byte_5, 0, 5));
	CHECK(REFUSAL(past_junk) == PATCH_BRANCH_INTO_PATCH);
	CHECK(MOVES(endbr_to_4, 4, 5));
	CHECK(REFUSAL(endbr_to_5) == PATCH_BRANCH_INTO_PATCH);
	CHECK(REFUSAL(call_to_1) == PATCH_BRANCH_INTO_PATCH);
	{
		/* jmp *%rax: no target, whatever capstone's operand union holds
		 * (X86_REG_RAX, 35, is inside the moved bytes at address 32) */
		static const uint8_t indirect[] = { 0x41, 0x57, 0x41, 0x56, 0x53, 0xff, 0xe0 };
		const struct arch_ops *arch = arch_for_machine(EM_X86_64);
		struct patch_plan p;

		CHECK(arch && arch->plan_patch(indirect, sizeof(indirect), 32, &p) == PATCH_OK);
	}
#undef PUSHES_THEN_JMP
}

UNIT_TEST(patch_caller_frame_through_rsp)
{
	static const uint8_t read_return_address[] = { 0x48, 0x8b, 0x44, 0x24, 0x08, 0xc3 };
	static const uint8_t push_then_read[] = { 0x50, 0x48, 0x8b, 0x44, 0x24, 0x10, 0x58, 0xc3 };
	static const uint8_t spill_below[] = { 0x48, 0x83, 0xec, 0x20, 0x48, 0x89, 0x7c, 0x24, 0x18, 0xc3 };
	/* the spill's 8 bytes reach the entry %rsp */
	static const uint8_t spill_at[] = { 0x48, 0x83, 0xec, 0x20, 0x48, 0x89, 0x7c, 0x24, 0x20, 0xc3 };
	static const uint8_t spill_across[] = { 0x48, 0x83, 0xec, 0x20, 0x48, 0x89, 0x7c, 0x24, 0x1c, 0xc3 };
	/* 4 bytes at -4: below */
	static const uint8_t spill_4_below[] = { 0x48, 0x83, 0xec, 0x20, 0x89, 0x7c, 0x24, 0x1c, 0xc3 };
	/* the red zone of a leaf, at entry */
	static const uint8_t red_zone[] = { 0x48, 0x89, 0x7c, 0x24, 0xf8, 0xc3 };
	static const uint8_t pop_return_address[] = { 0x5f, 0x57, 0x90, 0x90, 0x90, 0xc3 };
	static const uint8_t sub_reg[] = { 0x48, 0x29, 0xc4, 0x90, 0x90, 0xc3 };
	static const uint8_t leave[] = { 0xc9, 0x90, 0x90, 0x90, 0x90, 0xc3 };
	static const uint8_t enter[] = { 0xc8, 0x10, 0x00, 0x00, 0x90, 0xc3 };
	static const uint8_t push_rsp[] = { 0x54, 0x90, 0x90, 0x90, 0x90, 0xc3 };
	static const uint8_t indexed[] = { 0x48, 0x8b, 0x04, 0xc4, 0x90, 0xc3 };
	/* add $8,%rsp: above the entry %rsp, so a push writes over the return address */
	static const uint8_t above_then_push[] = { 0x48, 0x83, 0xc4, 0x08, 0x50, 0xc3 };
	static const uint8_t lea_down[] = { 0x48, 0x8d, 0x64, 0x24, 0xf0, 0xc3 };
	/* push and pop one byte across the entry %rsp */
	static const uint8_t push_across[] = { 0x48, 0x83, 0xc4, 0x01, 0x50, 0xc3 };
	static const uint8_t pop_across[] = { 0x48, 0x83, 0xec, 0x07, 0x58, 0xc3 };
	/* a byte just below the entry %rsp */
	static const uint8_t byte_below[] = { 0x48, 0x83, 0xec, 0x08, 0xc6, 0x44, 0x24, 0x07, 0x00, 0xc3 };
	/* an unknown index: the displacement says nothing */
	static const uint8_t indexed_low[] = { 0x48, 0x83, 0xec, 0x20, 0x48, 0x8b, 0x0c, 0xc4, 0xc3 };
	/* an index that is data is fine; %rbp as index is still the caller's */
	static const uint8_t data_index[] = { 0x48, 0x8b, 0x04, 0xf7, 0x53, 0x5b, 0xc3 };
	static const uint8_t rbp_index[] = { 0x48, 0x8b, 0x04, 0x2f, 0x53, 0x5b, 0xc3 };
	/* and $0,%rsp: not an alignment */
	static const uint8_t and_zero[] = { 0x48, 0x83, 0xe4, 0x00, 0x90, 0xc3 };
	/* after push and pop, %rsp is the entry one again */
	static const uint8_t pop_then_top[] = { 0x50, 0x58, 0x48, 0x8b, 0x04, 0x24, 0xc3 };
	static const uint8_t pop_then_red_zone[] = { 0x50, 0x58, 0x48, 0x89, 0x7c, 0x24, 0xf8, 0xc3 };
	/* pushfw: a 2-byte push capstone names apart */
	static const uint8_t pushfw[] = { 0x66, 0x9c, 0x90, 0x90, 0x90, 0xc3 };
	/* cmp %rsp,%rax: its value */
	static const uint8_t compare_rsp[] = { 0x48, 0x39, 0xe0, 0x90, 0x90, 0xc3 };

	CHECK(REFUSAL(read_return_address) == PATCH_CALLER_FRAME);
	CHECK(REFUSAL(push_then_read) == PATCH_CALLER_FRAME);
	CHECK(MOVES(spill_below, 0, 9));
	CHECK(REFUSAL(spill_at) == PATCH_CALLER_FRAME);
	CHECK(REFUSAL(spill_across) == PATCH_CALLER_FRAME);
	CHECK(MOVES(spill_4_below, 0, 8));
	CHECK(MOVES(red_zone, 0, 5));
	CHECK(REFUSAL(pop_return_address) == PATCH_CALLER_FRAME);
	CHECK(REFUSAL(sub_reg) == PATCH_CALLER_FRAME);
	CHECK(REFUSAL(leave) == PATCH_CALLER_FRAME);
	CHECK(REFUSAL(enter) == PATCH_CALLER_FRAME);
	CHECK(REFUSAL(push_rsp) == PATCH_CALLER_FRAME);
	CHECK(REFUSAL(indexed) == PATCH_CALLER_FRAME);
	CHECK(REFUSAL(above_then_push) == PATCH_CALLER_FRAME);
	CHECK(MOVES(lea_down, 0, 5));
	CHECK(REFUSAL(push_across) == PATCH_CALLER_FRAME);
	CHECK(REFUSAL(pop_across) == PATCH_CALLER_FRAME);
	CHECK(MOVES(byte_below, 0, 9));
	CHECK(REFUSAL(indexed_low) == PATCH_CALLER_FRAME);
	CHECK(MOVES(data_index, 0, 5));
	CHECK(REFUSAL(rbp_index) == PATCH_CALLER_FRAME);
	CHECK(REFUSAL(and_zero) == PATCH_CALLER_FRAME);
	CHECK(REFUSAL(compare_rsp) == PATCH_CALLER_FRAME);
	CHECK(REFUSAL(pop_then_top) == PATCH_CALLER_FRAME);
	CHECK(MOVES(pop_then_red_zone, 0, 7));
	CHECK(REFUSAL(pushfw) == PATCH_CALLER_FRAME);
}

UNIT_TEST(patch_caller_frame_through_copies_of_rsp)
{
	/* %rbp set from %rsp: followed */
	static const uint8_t rbp_local[] = { 0x55, 0x48, 0x89, 0xe5, 0x48, 0x89, 0x7d, 0xf8, 0xc9, 0xc3 };
	static const uint8_t rbp_argument[] = { 0x55, 0x48, 0x89, 0xe5, 0x48, 0x8b, 0x45, 0x10, 0xc9, 0xc3 };
	/* %rbp before it is set is the caller's */
	static const uint8_t rbp_unset[] = { 0x48, 0x89, 0x7d, 0xf8, 0x90, 0xc3 };
	/* ...but once loaded with an argument it is data */
	static const uint8_t rbp_data[] = { 0x48, 0x89, 0xfd, 0x48, 0x8b, 0x45, 0x10, 0xc3 };
	/* a partial write leaves the caller's upper bits; a 32-bit one clears them */
	static const uint8_t rbp_partial[] = { 0x40, 0x8a, 0x2f, 0x48, 0x8b, 0x45, 0x10, 0xc3 };
	static const uint8_t rbp_16_bits[] = { 0x66, 0x89, 0xfd, 0x48, 0x8b, 0x45, 0x10, 0xc3 };
	static const uint8_t rbp_whole[] = { 0x89, 0xfd, 0x48, 0x8b, 0x45, 0x10, 0xc3 };
	/* a copy in another register is followed too */
	static const uint8_t rbx_argument[] = { 0x53, 0x48, 0x89, 0xe3, 0x48, 0x8b, 0x43, 0x10, 0x5b, 0xc3 };
	static const uint8_t rbx_local[] = { 0x53, 0x48, 0x89, 0xe3, 0x48, 0x89, 0x7b, 0xf8, 0x5b, 0xc3 };
	/* %rbp set by lea is followed like mov's (only its uses are judged) */
	static const uint8_t lea_rbp_at_entry[] = { 0x48, 0x8d, 0x6c, 0x24, 0x08, 0xc3 };
	/* a copy in %rax (register 0) is followed too */
	static const uint8_t rax_local[] = { 0x53, 0x48, 0x89, 0xe0, 0x48, 0x89, 0x78, 0xf8, 0x5b, 0xc3 };
	static const uint8_t rax_argument[] = { 0x53, 0x48, 0x89, 0xe0, 0x48, 0x8b, 0x48, 0x10, 0x5b, 0xc3 };
	/* copying the entry %rsp itself elsewhere than %rbp exposes the return address */
	static const uint8_t copy_at_entry[] = { 0x48, 0x89, 0xe0, 0x90, 0x90, 0xc3 };
	static const uint8_t lea_above[] = { 0x4c, 0x8d, 0x54, 0x24, 0x08, 0xc3 };
	static const uint8_t lea_below[] = { 0x53, 0x48, 0x8d, 0x7c, 0x24, 0xf8, 0x5b, 0xc3 };
	/* lea of the entry %rsp itself: the return address */
	static const uint8_t lea_at_entry[] = { 0x53, 0x48, 0x8d, 0x44, 0x24, 0x08, 0x5b, 0xc3 };
	/* a copy of a copy (out of %rax, register 0) is followed as well */
	static const uint8_t copy_of_copy[] = {
		0x53,                   /* push %rbx */
		0x48, 0x89, 0xe0,       /* mov %rsp,%rax */
		0x48, 0x89, 0xc1,       /* mov %rax,%rcx */
		0x48, 0x89, 0x79, 0xf8, /* mov %rdi,-0x8(%rcx) */
		0x5b, 0xc3,
	};
	/* arithmetic on a copy: no longer followed, so refused when used */
	static const uint8_t changed_copy[] = {
		0x48, 0x83, 0xec, 0x08,       /* sub $8,%rsp */
		0x48, 0x89, 0xe0,             /* mov %rsp,%rax */
		0x48, 0x83, 0xc0, 0x10,       /* add $0x10,%rax */
		0x48, 0x8b, 0x00,             /* mov (%rax),%rax */
		0xc3,
	};

	CHECK(MOVES(rbp_local, 0, 8));
	CHECK(REFUSAL(rbp_argument) == PATCH_CALLER_FRAME);
	CHECK(REFUSAL(rbp_unset) == PATCH_CALLER_FRAME);
	CHECK(MOVES(rbp_data, 0, 7));
	CHECK(REFUSAL(rbp_partial) == PATCH_CALLER_FRAME);
	CHECK(REFUSAL(rbp_16_bits) == PATCH_CALLER_FRAME);
	CHECK(MOVES(rbp_whole, 0, 6));
	CHECK(REFUSAL(rbx_argument) == PATCH_CALLER_FRAME);
	CHECK(MOVES(rbx_local, 0, 8));
	CHECK(MOVES(lea_rbp_at_entry, 0, 5));
	CHECK(MOVES(rax_local, 0, 8));
	CHECK(REFUSAL(rax_argument) == PATCH_CALLER_FRAME);
	CHECK(REFUSAL(copy_at_entry) == PATCH_CALLER_FRAME);
	CHECK(REFUSAL(lea_above) == PATCH_CALLER_FRAME);
	CHECK(MOVES(lea_below, 0, 6));
	CHECK(REFUSAL(lea_at_entry) == PATCH_CALLER_FRAME);
	CHECK(MOVES(changed_copy, 0, 7));
	{
		struct patch_plan p;

		CHECK(x86_64_plan_patch_covering(changed_copy, sizeof(changed_copy), BASE, 12, &p) ==
		      PATCH_CALLER_FRAME);
		CHECK(x86_64_plan_patch_covering(copy_of_copy, sizeof(copy_of_copy), BASE, 11, &p) ==
		      PATCH_OK && p.length == 11);
	}
}

UNIT_TEST(patch_undecodable)
{
	static const uint8_t invalid[] = { 0x06, 0x90, 0x90, 0x90, 0x90, 0xc3 };
	/* the function ends inside its second instruction */
	static const uint8_t truncated[] = { 0x53, 0x48, 0x8b, 0x05, 0x00, 0x00 };
	/* 16 bytes: longer than any x86 instruction */
	static const uint8_t too_long[] = {
		0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x90, 0xc3,
	};

	CHECK(REFUSAL(invalid) == PATCH_UNDECODABLE);
	CHECK(REFUSAL(truncated) == PATCH_UNDECODABLE);
	CHECK(REFUSAL(too_long) == PATCH_UNDECODABLE);
}

/* The longest possible plan for the 5-byte jump: four 1-byte instructions
 * and a 15-byte one. */
UNIT_TEST(patch_longest_covering)
{
	static const uint8_t code[] = {
		0x90, 0x90, 0x90, 0x90,
		0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x90,
		0xc3,
	};

	CHECK(MOVES(code, 0, 19));
}

/* Unreachable with the 5-byte jump (see x86_64_patch.h): reached with a
 * wider cover. */
UNIT_TEST(patch_agent_limits)
{
	/* mov 0x0(%rip),%eax: 6 bytes, its disp32 at 2 */
#define RIP_LOAD 0x8b, 0x05, 0x00, 0x00, 0x00, 0x00
#define MOVABS 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8 /* 10 bytes */
	static const uint8_t four_loads[] = { RIP_LOAD, RIP_LOAD, RIP_LOAD, RIP_LOAD, 0xc3 };
	static const uint8_t five_loads[] = { RIP_LOAD, RIP_LOAD, RIP_LOAD, RIP_LOAD, RIP_LOAD, 0xc3 };
	static const uint8_t thirty_two[] = { MOVABS, MOVABS, MOVABS, 0x31, 0xc0, 0xc3 };
	static const uint8_t forty[] = { MOVABS, MOVABS, MOVABS, MOVABS, 0xc3 };
	struct patch_plan p;

	CHECK(x86_64_plan_patch_covering(four_loads, sizeof(four_loads), BASE, 24, &p) == PATCH_OK);
	CHECK(p.length == 24 && p.reloc_count == 4);
	for (unsigned i = 0; i < 4 && p.reloc_count == 4; i++)
		CHECK(p.relocs[i].disp_offset == 6 * i + 2 && p.relocs[i].insn_end == 6 * i + 6 &&
		      p.relocs[i].target == BASE + 6 * i + 6);
	CHECK(x86_64_plan_patch_covering(five_loads, sizeof(five_loads), BASE, 30, &p) ==
	      PATCH_TOO_MANY_RELOCS);
	CHECK(x86_64_plan_patch_covering(thirty_two, sizeof(thirty_two), BASE, 32, &p) == PATCH_OK);
	CHECK(p.length == 32);
	CHECK(x86_64_plan_patch_covering(forty, sizeof(forty), BASE, 32, &p) == PATCH_TOO_LONG);
	CHECK(x86_64_plan_patch_covering(forty, sizeof(forty), BASE, 33, &p) == -EINVAL);
	CHECK(x86_64_plan_patch_covering(forty, sizeof(forty), BASE, 0, &p) == -EINVAL);
#undef RIP_LOAD
#undef MOVABS
}

UNIT_TEST(patch_bad_arguments)
{
	static const uint8_t code[] = { 0x41, 0x57, 0x41, 0x56, 0x53, 0xc3 };
	struct patch_plan p;

	CHECK(plan(NULL, 6, &p) == -EINVAL);
	CHECK(plan(code, sizeof(code), NULL) == -EINVAL);
}

UNIT_TEST(patch_refusal_names)
{
	CHECK_STR(patch_refusal__name(PATCH_BRANCH_INTO_PATCH), "branch into the patched bytes");
	CHECK_STR(patch_refusal__name(PATCH_CALLER_FRAME), "reads the caller's frame");
	CHECK_STR(patch_refusal__name(-1), "unknown");
	CHECK_STR(patch_refusal__name(PATCH_REFUSAL_COUNT), "unknown");
	for (int i = 0; i < PATCH_REFUSAL_COUNT; i++) {
		CHECK(patch_refusal__name(i) && strcmp(patch_refusal__name(i), "unknown") != 0);
		for (int j = 0; j < i; j++)
			CHECK(strcmp(patch_refusal__name(i), patch_refusal__name(j)) != 0);
	}
}

/* Mid-function sites (arch->plan_site): an inlined async body's dispatch
 * load, resume point or exit, inside its host's code at BASE. */
static int plan_site_at(const uint8_t *code, size_t size, unsigned offset, const uint64_t *targets, size_t count,
			struct patch_plan *out)
{
	const struct arch_ops *arch = arch_for_machine(EM_X86_64);

	return arch && arch->plan_site ? arch->plan_site(code, size, BASE, BASE + offset, targets, count, out)
				       : -ENOSYS;
}

/* tokio_ct release, middle's dispatch: `movzbl 0x48(%rbx),%eax; lea
 * tbl(%rip),%rcx; movslq (%rcx,%rax,4),%rax; add %rcx,%rax; jmp *%rax`,
 * after a `mov %rdi,%rbx` of the host. */
static const uint8_t dispatch[] = {
	0x48, 0x89, 0xfb,                         /* 0: mov %rdi,%rbx */
	0x0f, 0xb6, 0x43, 0x48,                   /* 3: movzbl 0x48(%rbx),%eax */
	0x48, 0x8d, 0x0d, 0x10, 0x02, 0x00, 0x00, /* 7: lea 0x210(%rip),%rcx */
	0x48, 0x63, 0x04, 0x81,                   /* 14: movslq (%rcx,%rax,4),%rax */
	0x48, 0x01, 0xc8,                         /* 18: add %rcx,%rax */
	0xff, 0xe0,                               /* 21: jmp *%rax */
	0xb2, 0x03,                               /* 23: mov $3,%dl */
	0x88, 0x53, 0x48,                         /* 25: mov %dl,0x48(%rbx) */
	0xe9, 0x10, 0x00, 0x00, 0x00,             /* 28: jmp 33 + 0x10 (inside) */
	0xe9, 0x00, 0x10, 0x00, 0x00,             /* 33: jmp 38 + 0x1000 (outside the host) */
	0xe8, 0x00, 0x00, 0x00, 0x00,             /* 38: call 43 */
	0x48, 0x89, 0xc7,                         /* 43: mov %rax,%rdi */
	0xc3,                                     /* 46: ret */
	0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, /* 47: padding up to 57 */
	0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, /* 57: padding up to 67 */
};

UNIT_TEST(patch_site_relocates_the_dispatch_load)
{
	struct patch_plan p;

	CHECK(arch_for_machine(EM_X86_64)->plan_site == x86_64_plan_site);
	/* the load and the lea: 11 bytes, the lea's rip operand relocated */
	CHECK(plan_site_at(dispatch, sizeof(dispatch), 3, NULL, 0, &p) == PATCH_OK);
	CHECK(p.skip == 0 && p.length == 11 && p.reloc_count == 1);
	CHECK(p.relocs[0].disp_offset == 7 && p.relocs[0].insn_end == 11);
	CHECK(p.relocs[0].target == BASE + 14 + 0x210);
	/* a state store before an exit: two plain instructions and no more */
	CHECK(plan_site_at(dispatch, sizeof(dispatch), 23, NULL, 0, &p) == PATCH_OK);
	CHECK(p.length == 5 && p.reloc_count == 0);
	/* an exit's `jmp rel32` to inside the host is the whole range, relocated */
	CHECK(plan_site_at(dispatch, sizeof(dispatch), 28, NULL, 0, &p) == PATCH_OK);
	CHECK(p.length == 5 && p.reloc_count == 1 && p.relocs[0].disp_offset == 1 && p.relocs[0].insn_end == 5);
	CHECK(p.relocs[0].target == BASE + 33 + 0x10);
}

UNIT_TEST(patch_site_refuses_a_branch_target_inside)
{
	/* joins, table targets and return addresses, sorted */
	const uint64_t at_lea[] = { BASE + 3, BASE + 7, BASE + 40 };
	const uint64_t at_first[] = { BASE + 3, BASE + 14 };
	const uint64_t mid_insn[] = { BASE + 9 };
	struct patch_plan p;

	CHECK(plan_site_at(dispatch, sizeof(dispatch), 3, at_lea, 3, &p) == PATCH_BRANCH_INTO_PATCH);
	CHECK(p.length == 0 && p.reloc_count == 0); /* zeroed */
	/* a target at the first byte runs the jump; one right after the moved bytes is untouched */
	CHECK(plan_site_at(dispatch, sizeof(dispatch), 3, at_first, 2, &p) == PATCH_OK && p.length == 11);
	CHECK(plan_site_at(dispatch, sizeof(dispatch), 3, mid_insn, 1, &p) == PATCH_BRANCH_INTO_PATCH);
}

UNIT_TEST(patch_site_refuses_control_flow)
{
	struct patch_plan p;

	/* the dispatch jump itself, and a range that reaches it */
	CHECK(plan_site_at(dispatch, sizeof(dispatch), 21, NULL, 0, &p) == PATCH_CONTROL_FLOW);
	CHECK(plan_site_at(dispatch, sizeof(dispatch), 18, NULL, 0, &p) == PATCH_CONTROL_FLOW);
	/* a jump out of the host (perhaps its exit, probed by a uprobe) */
	CHECK(plan_site_at(dispatch, sizeof(dispatch), 33, NULL, 0, &p) == PATCH_CONTROL_FLOW);
	/* a call (its return address would be the stub's), a ret, a jmp not first */
	CHECK(plan_site_at(dispatch, sizeof(dispatch), 38, NULL, 0, &p) == PATCH_CONTROL_FLOW);
	CHECK(plan_site_at(dispatch, sizeof(dispatch), 43, NULL, 0, &p) == PATCH_CONTROL_FLOW);
	CHECK(plan_site_at(dispatch, sizeof(dispatch), 25, NULL, 0, &p) == PATCH_CONTROL_FLOW);
	/* the host ends inside the range; the site outside the code */
	CHECK(plan_site_at(dispatch, 5, 3, NULL, 0, &p) == PATCH_UNDECODABLE);
	CHECK(plan_site_at(dispatch, sizeof(dispatch), sizeof(dispatch), NULL, 0, &p) == PATCH_TOO_SHORT);
	CHECK(plan_site_at(NULL, 0, 0, NULL, 0, &p) == -EINVAL);
}

static struct agent_site site_at(uint64_t addr, uint8_t length, uint8_t refusal)
{
	return (struct agent_site){ .addr = addr, .uprobe_addr = addr, .length = length, .refusal = refusal };
}

UNIT_TEST(patch_sites_that_overlap)
{
	struct agent_plan_function entry = { .addr = 0x2000, .length = 5 };
	struct agent_plan_set with_entry = { .functions = &entry, .count = 1 };
	struct agent_plan_set none = { 0 };
	struct agent_site s[6];

	/* the earlier of two overlapping sites goes to its uprobe (before the later one's patch) */
	s[0] = site_at(0x1000, 7, 0), s[1] = site_at(0x1004, 5, 0), s[2] = site_at(0x1009, 5, 0);
	agent_sites__refuse_overlaps(s, 3, &none);
	CHECK(s[0].refusal == INPROC_SITE_OVERLAP && !s[1].refusal && !s[2].refusal);
	/* two at one address: neither (a uprobe at the other's first byte is in its patch) */
	s[0] = site_at(0x1000, 5, 0), s[1] = site_at(0x1000, 6, 0);
	agent_sites__refuse_overlaps(s, 2, &none);
	CHECK(s[0].refusal == INPROC_SITE_OVERLAP && s[1].refusal == INPROC_SITE_OVERLAP);
	/* a refused site's uprobe inside a planned patch refuses that patch, and so on down the chain */
	s[0] = site_at(0x1000, 5, 0), s[1] = site_at(0x1003, 0, INPROC_SITE_DISPATCH);
	s[2] = site_at(0x0ffc, 5, 0);
	agent_sites__refuse_overlaps(s, 3, &none);
	CHECK(s[0].refusal == INPROC_SITE_OVERLAP && s[2].refusal == INPROC_SITE_OVERLAP);
	/* a poll start moved to its dispatch load: its uprobe would be at the jump */
	s[0] = site_at(0x1000, 11, 0), s[0].uprobe_addr = 0x1012;
	s[1] = site_at(0x100b, 5, 0);
	agent_sites__refuse_overlaps(s, 2, &none);
	CHECK(!s[0].refusal && !s[1].refusal);
	/* a function's patch (here its entry's 5 bytes) */
	s[0] = site_at(0x1ffe, 5, 0), s[1] = site_at(0x2005, 5, 0);
	agent_sites__refuse_overlaps(s, 2, &with_entry);
	CHECK(s[0].refusal == INPROC_SITE_OVERLAP && !s[1].refusal);
}
