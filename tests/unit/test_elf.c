/* elf/pollfn: loading real ELF files (fixtures built with clang for riscv64,
 * x86_64, big-endian and 32-bit targets; a Rust test target when built). */
#include <errno.h>
#include <gelf.h>
#include <stdlib.h>

#include "elf/pollfn.h"
#include "test_elf_fixture.h"
#include "unit.h"

/* What the fixture's functions must come out as (see fixtures/pollfns.ll). */
struct expect {
	const char *name;
	enum context_class context;
	enum body_kind body;
	enum result_mode mode;
	unsigned disc_offset, disc_size, pending, line;
};

static const struct poll_fn *find_fn(const struct poll_fn_list *l, const char *name)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->fns[i].demangled, name) == 0)
			return &l->fns[i];
	return NULL;
}

static const char LEAF[] = "demo::leaf::{{closure}}";
static const char BLOCK[] = "demo::main::{{closure}}";
static const char YIELD[] = "<demo::Yield as core::future::future::Future>::poll";
static const char TASK[] = "tokio::runtime::task::raw::poll";
static const char GENFUTURE[] =
	"<core::future::from_generator::GenFuture<T> as core::future::future::Future>::poll";
static const char OTHER[] = "demo::other::{closure#0}";
static const char INNER[] = "demo::inner::{{closure}}"; /* symbol ends in .llvm.<n> */

#define FIXTURE_FNS 7

/* With DWARF; `pair_reg` is the byte position of the second return register. */
static void expected_with_dwarf(struct expect e[FIXTURE_FNS], unsigned pair_reg)
{
	e[0] = (struct expect){ LEAF, CONTEXT_COMPILER, BODY_ASYNC_FN, RESULT_IN_REGS, 0, 1, 1, 10 };
	e[1] = (struct expect){ BLOCK, CONTEXT_ANONYMOUS, BODY_ASYNC_BLOCK, RESULT_IN_MEMORY, 0, 8, 1, 20 };
	e[2] = (struct expect){ YIELD, CONTEXT_USER, BODY_POLL_IMPL, RESULT_IN_REGS, pair_reg, 1, 2, 5 };
	e[3] = (struct expect){ TASK, CONTEXT_TASK, BODY_RUNTIME, RESULT_UNKNOWN, 0, 0, 0, 0 };
	e[4] = (struct expect){ GENFUTURE, CONTEXT_COMPILER, BODY_ASYNC_FN, RESULT_UNKNOWN, 0, 0, 0, 0 };
	e[5] = (struct expect){ OTHER, CONTEXT_COMPILER, BODY_ASYNC_FN, RESULT_UNKNOWN, 0, 0, 0, 0 };
	e[6] = (struct expect){ INNER, CONTEXT_COMPILER, BODY_ASYNC_FN, RESULT_IN_REGS, 0, 1, 1, 30 };
}

/* Without DWARF, code tells async bodies from closures but not an async
 * block in a plain fn from an async fn, and results are not decoded. */
static void expected_without_dwarf(struct expect e[FIXTURE_FNS])
{
	expected_with_dwarf(e, 0);
	for (int i = 0; i < FIXTURE_FNS; i++) {
		e[i].mode = RESULT_UNKNOWN;
		e[i].disc_offset = e[i].disc_size = e[i].pending = e[i].line = 0;
	}
	e[1].context = CONTEXT_COMPILER;
	e[1].body = BODY_ASYNC_FN;
}

static void check_expected(int *unit_failures_, const struct poll_fn_list *l,
			   const struct expect e[FIXTURE_FNS])
{
	CHECK(l->count == FIXTURE_FNS);
	for (int i = 0; i < FIXTURE_FNS; i++) {
		const struct poll_fn *fn = find_fn(l, e[i].name);

		CHECK(fn != NULL);
		if (!fn) {
			fprintf(stderr, "  missing %s\n", e[i].name);
			continue;
		}
		CHECK(fn->context == e[i].context);
		CHECK(fn->body == e[i].body);
		CHECK(fn->size > 0);
		CHECK(fn->result.mode == e[i].mode);
		CHECK(fn->result.disc_offset == e[i].disc_offset);
		CHECK(fn->result.disc_size == e[i].disc_size);
		CHECK(fn->result.pending_value == e[i].pending);
		CHECK(fn->self_arg == (e[i].mode == RESULT_IN_MEMORY ? 1 : 0));
		CHECK(fn->source_line == e[i].line);
		if (e[i].line)
			CHECK_STR(fn->source_file, "/fixture/demo/src/main.rs");
	}
	/* sorted by address, one entry per address (the Yield2 alias folded) */
	for (size_t i = 1; i < l->count; i++)
		CHECK(l->fns[i - 1].addr < l->fns[i].addr);
	CHECK(find_fn(l, "<demo::Yield2 as core::future::future::Future>::poll") == NULL);
}

UNIT_TEST(elf_riscv64_pie_with_dwarf)
{
	struct elf_fixture fx;
	struct poll_fn_list l;
	struct expect e[FIXTURE_FNS];
	char path[PATH_MAX];

	if (elf_fixture__init(&fx) < 0)
		return;
	if (elf_fixture__build(&fx, "riscv64-linux-gnu", FIXTURE_PIE, path, sizeof(path)) == 0) {
		CHECK(poll_fn_list__load(&l, path, NULL) == 0);
		CHECK(l.machine == EM_RISCV && l.elf_class == ELFCLASS64);
		CHECK(l.has_dwarf && l.code_scanned);
		CHECK(l.build_id_len == 20);
		expected_with_dwarf(e, 8);
		check_expected(unit_failures_, &l, e);
		for (size_t i = 0; i < l.count; i++) {
			/* lld puts .text one page above its file offset */
			CHECK(l.fns[i].file_offset != l.fns[i].addr);
			CHECK(l.fns[i].file_offset == elf_fixture__file_offset(path, l.fns[i].addr));
		}
		poll_fn_list__free(&l);
	}
	elf_fixture__cleanup(&fx);
}

UNIT_TEST(elf_riscv64_without_dwarf)
{
	struct elf_fixture fx;
	struct poll_fn_list l;
	struct expect e[FIXTURE_FNS];
	char path[PATH_MAX];

	if (elf_fixture__init(&fx) < 0)
		return;
	/* a linked file: calls decoded by the RISC-V decoder */
	if (elf_fixture__build(&fx, "riscv64-linux-gnu", FIXTURE_PIE_NODEBUG, path, sizeof(path)) == 0) {
		CHECK(poll_fn_list__load(&l, path, NULL) == 0);
		CHECK(!l.has_dwarf && l.code_scanned);
		expected_without_dwarf(e);
		check_expected(unit_failures_, &l, e);
		CHECK(find_fn(&l, "demo::main::{{closure}}::{{closure}}") == NULL);
		poll_fn_list__free(&l);
	}
	elf_fixture__cleanup(&fx);
}

UNIT_TEST(elf_riscv64_kernel_layout)
{
	struct elf_fixture fx;
	struct poll_fn_list l;
	struct expect e[FIXTURE_FNS];
	char path[PATH_MAX];

	if (elf_fixture__init(&fx) < 0)
		return;
	/* linked like the zCore kernel: ET_EXEC, text at 0xffffffc080200000 */
	if (elf_fixture__build(&fx, "riscv64-linux-gnu", FIXTURE_KERNEL, path, sizeof(path)) == 0) {
		CHECK(poll_fn_list__load(&l, path, NULL) == 0);
		CHECK(!l.has_dwarf && l.code_scanned);
		expected_without_dwarf(e);
		check_expected(unit_failures_, &l, e);
		for (size_t i = 0; i < l.count; i++) {
			CHECK(l.fns[i].addr >= 0xffffffc080200000ull);
			CHECK(l.fns[i].file_offset == elf_fixture__file_offset(path, l.fns[i].addr));
			CHECK(l.fns[i].file_offset < 0x100000);
		}
		poll_fn_list__free(&l);
	}
	elf_fixture__cleanup(&fx);
}

UNIT_TEST(elf_riscv64_relocatable)
{
	struct elf_fixture fx;
	struct poll_fn_list l;
	struct expect e[FIXTURE_FNS];
	char path[PATH_MAX];

	if (elf_fixture__init(&fx) < 0)
		return;
	if (elf_fixture__build(&fx, "riscv64-linux-gnu", FIXTURE_OBJECT, path, sizeof(path)) == 0) {
		CHECK(poll_fn_list__load(&l, path, NULL) == 0);
		CHECK(l.has_dwarf);
		expected_with_dwarf(e, 8);
		check_expected(unit_failures_, &l, e);
		for (size_t i = 0; i < l.count; i++)
			CHECK(l.fns[i].file_offset == 0);
		poll_fn_list__free(&l);
	}
	elf_fixture__cleanup(&fx);
}

UNIT_TEST(elf_x86_64_without_dwarf)
{
	struct elf_fixture fx;
	struct poll_fn_list l;
	struct expect e[FIXTURE_FNS];
	char path[PATH_MAX];

	if (elf_fixture__init(&fx) < 0)
		return;
	/* calls decoded with capstone */
	if (elf_fixture__build(&fx, "x86_64-linux-gnu", FIXTURE_PIE_NODEBUG, path, sizeof(path)) == 0) {
		CHECK(poll_fn_list__load(&l, path, NULL) == 0);
		CHECK(l.machine == EM_X86_64 && !l.has_dwarf && l.code_scanned);
		expected_without_dwarf(e);
		check_expected(unit_failures_, &l, e);
		poll_fn_list__free(&l);
	}
	elf_fixture__cleanup(&fx);
}

UNIT_TEST(elf_big_endian_and_32_bit)
{
	static const struct {
		const char *target;
		uint16_t machine;
		uint8_t elf_class;
		unsigned pair_reg;
	} cases[] = {
		{ "powerpc64-linux-gnu", EM_PPC64, ELFCLASS64, 8 }, /* big-endian */
		{ "riscv32-unknown-elf", EM_RISCV, ELFCLASS32, 4 },
	};
	struct elf_fixture fx;
	char path[PATH_MAX];

	if (elf_fixture__init(&fx) < 0)
		return;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct poll_fn_list l;
		struct expect e[FIXTURE_FNS];

		if (elf_fixture__build(&fx, cases[i].target, FIXTURE_OBJECT, path, sizeof(path)) < 0)
			continue;
		CHECK(poll_fn_list__load(&l, path, NULL) == 0);
		CHECK(l.machine == cases[i].machine && l.elf_class == cases[i].elf_class);
		expected_with_dwarf(e, cases[i].pair_reg);
		check_expected(unit_failures_, &l, e);
		poll_fn_list__free(&l);
	}
	elf_fixture__cleanup(&fx);
}

UNIT_TEST(elf_match_filter)
{
	struct elf_fixture fx;
	struct poll_fn_list l;
	char path[PATH_MAX];
	regex_t re;

	if (elf_fixture__init(&fx) < 0)
		return;
	CHECK(regcomp(&re, "^demo::", REG_EXTENDED | REG_NOSUB) == 0);
	if (elf_fixture__build(&fx, "riscv64-linux-gnu", FIXTURE_PIE, path, sizeof(path)) == 0) {
		CHECK(poll_fn_list__load(&l, path, &re) == 0);
		CHECK(l.count == 4 && l.filtered_out == 3);
		CHECK(find_fn(&l, LEAF) && find_fn(&l, BLOCK) && find_fn(&l, OTHER));
		poll_fn_list__free(&l);
	}
	regfree(&re);
	elf_fixture__cleanup(&fx);
}

UNIT_TEST(elf_load_errors)
{
	static const char text[] = "#!/bin/sh\necho not an ELF file\n";
	struct elf_fixture fx;
	struct poll_fn_list l;
	char path[PATH_MAX], cut[PATH_MAX];
	char head[64];
	FILE *f;

	CHECK(poll_fn_list__load(&l, "/nonexistent/asynctrace-test", NULL) == -ENOENT);
	CHECK(l.count == 0 && l.fns == NULL);
	CHECK(poll_fn_list__load(&l, "/", NULL) == -EISDIR);
	if (elf_fixture__init(&fx) < 0)
		return;
	CHECK(elf_fixture__write(&fx, "script", text, sizeof(text) - 1, path, sizeof(path)) == 0);
	CHECK(poll_fn_list__load(&l, path, NULL) == -ENOEXEC);
	CHECK(elf_fixture__write(&fx, "empty", "", 0, path, sizeof(path)) == 0);
	CHECK(poll_fn_list__load(&l, path, NULL) == -ENOEXEC);
	/* a truncated ELF: the header alone, its tables beyond the end */
	if (elf_fixture__build(&fx, "riscv64-linux-gnu", FIXTURE_PIE, path, sizeof(path)) == 0 &&
	    (f = fopen(path, "rb"))) {
		CHECK(fread(head, 1, sizeof(head), f) == sizeof(head));
		fclose(f);
		CHECK(elf_fixture__write(&fx, "truncated", head, sizeof(head), cut, sizeof(cut)) == 0);
		{
			int err = poll_fn_list__load(&l, cut, NULL);

			CHECK(err == -ENOEXEC || (err == 0 && l.count == 0));
			if (err == 0)
				poll_fn_list__free(&l);
		}
	}
	elf_fixture__cleanup(&fx);
}

UNIT_TEST(elf_no_decoder_lists_every_closure)
{
	struct elf_fixture fx;
	struct poll_fn_list l;
	char path[PATH_MAX];

	if (elf_fixture__init(&fx) < 0)
		return;
	/* aarch64, linked, no DWARF: no call decoder, so closures are kept */
	if (elf_fixture__build(&fx, "aarch64-linux-gnu", FIXTURE_PIE_NODEBUG, path, sizeof(path)) == 0) {
		const struct poll_fn *plain;

		CHECK(poll_fn_list__load(&l, path, NULL) == 0);
		CHECK(l.machine == EM_AARCH64 && !l.has_dwarf && !l.code_scanned);
		CHECK(l.count == FIXTURE_FNS + 1);
		plain = find_fn(&l, "demo::main::{{closure}}::{{closure}}");
		CHECK(plain && plain->context == CONTEXT_ANONYMOUS);
		CHECK(find_fn(&l, LEAF) && find_fn(&l, LEAF)->context == CONTEXT_COMPILER);
		poll_fn_list__free(&l);
	}
	elf_fixture__cleanup(&fx);
}
