/* Exit sites found by decoding x86_64 code: returns, tail calls, and the
 * indirect jumps that stay inside (jump tables). */
#include <elf.h>

#include "arch/arch.h"
#include "unit.h"

#define BASE 0x401000

static int find(const uint8_t *code, size_t size, struct exit_site_list *out)
{
	const struct arch_ops *arch = arch_for_machine(EM_X86_64);

	*out = (struct exit_site_list){ 0 };
	return arch ? arch->find_exits(code, size, BASE, out) : -1;
}

UNIT_TEST(x86_exits_returns_and_tail_calls)
{
	static const uint8_t code[] = {
		0x48, 0x85, 0xff,             /* 0: test %rdi,%rdi */
		0x74, 0x01,                   /* 3: je 6 */
		0xc3,                         /* 5: ret */
		0x48, 0x85, 0xf6,             /* 6: test %rsi,%rsi */
		0x75, 0x01,                   /* 9: jne c (inside) */
		0xc3,                         /* b: ret */
		0xe9, 0x00, 0x10, 0x00, 0x00, /* c: jmp BASE+0x1011: a tail call */
	};
	struct exit_site_list exits;

	CHECK(find(code, sizeof(code), &exits) == 0);
	CHECK(exits.count == 3);
	if (exits.count == 3) {
		CHECK(exits.sites[0].addr == BASE + 5 && exits.sites[0].kind == EXIT_RETURN);
		CHECK(exits.sites[1].addr == BASE + 0xb && exits.sites[1].kind == EXIT_RETURN);
		CHECK(exits.sites[2].addr == BASE + 0xc && exits.sites[2].kind == EXIT_TAIL_CALL);
	}
	CHECK(exits.unsupported == 0);
	exit_site_list__free(&exits);
}

UNIT_TEST(x86_exits_jump_tables_stay_inside)
{
	static const uint8_t code[] = {
		0x48, 0x8d, 0x0d, 0x00, 0x00, 0x00, 0x00, /* 0: lea table(%rip),%rcx */
		0x48, 0x63, 0x04, 0x81,                   /* 7: movslq (%rcx,%rax,4),%rax */
		0x48, 0x01, 0xc8,                         /* b: add %rcx,%rax */
		0xff, 0xe0,                               /* e: jmp *%rax: a jump table */
		0xc3,                                     /* 10: ret */
	};
	struct exit_site_list exits;

	CHECK(find(code, sizeof(code), &exits) == 0);
	CHECK(exits.count == 1 && exits.sites[0].addr == BASE + 0x10);
	exit_site_list__free(&exits);
}

UNIT_TEST(x86_exits_indirect_tail_calls_and_conditional_ones)
{
	static const uint8_t code[] = {
		0x48, 0x89, 0xf8,                         /* 0: mov %rdi,%rax */
		0x48, 0x85, 0xc0,                         /* 3: test %rax,%rax */
		0x0f, 0x84, 0x00, 0x20, 0x00, 0x00,       /* 6: je far away: conditional tail call */
		0x48, 0x85, 0xf6,                         /* c: test %rsi,%rsi */
		0x74, 0x02,                               /* f: je 13 */
		0xff, 0xe0,                               /* 11: jmp *%rax: tail call through a register */
		0xff, 0x60, 0x18,                         /* 13: jmp *0x18(%rax): through a vtable */
	};
	struct exit_site_list exits;

	CHECK(find(code, sizeof(code), &exits) == 0);
	CHECK(exits.count == 2);
	if (exits.count == 2) {
		CHECK(exits.sites[0].addr == BASE + 0x11 && exits.sites[0].kind == EXIT_TAIL_CALL);
		CHECK(exits.sites[1].addr == BASE + 0x13 && exits.sites[1].kind == EXIT_TAIL_CALL);
	}
	CHECK(exits.unsupported == 1);
	exit_site_list__free(&exits);
}

UNIT_TEST(x86_exits_survive_undecodable_bytes)
{
	static const uint8_t code[] = {
		0x06,       /* 0: not an instruction in 64-bit mode */
		0x90,       /* 1: nop */
		0xc3,       /* 2: ret */
	};
	struct exit_site_list exits;

	CHECK(find(code, sizeof(code), &exits) == 0);
	CHECK(exits.count == 1 && exits.sites[0].addr == BASE + 2);
	exit_site_list__free(&exits);
}

UNIT_TEST(arch_names_and_support)
{
	CHECK_STR(arch_machine_name(EM_X86_64), "x86_64");
	CHECK_STR(arch_machine_name(EM_RISCV), "riscv");
	CHECK(arch_for_machine(EM_RISCV) == NULL);
}
