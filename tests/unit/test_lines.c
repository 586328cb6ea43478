/* elf/lines: a spawn call's return address resolves to the `tokio::spawn(`
 * line of tests/targets' tokio_mt, in the debug build (a plain call) and
 * in the release build (tokio::spawn and the closure inlined into Vec's
 * collect: the user's frame is picked out of the inlined ones). */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <capstone/capstone.h>

#include "elf/demangle.h"
#include "elf/elf_image.h"
#include "elf/lines.h"
#include "test_elf_fixture.h"
#include "unit.h"

#define SOURCE "tests/targets/rust/src/bin/tokio_mt.rs"

static unsigned line_of(const char *source, const char *text)
{
	FILE *f = fopen(source, "r");
	char buf[512];
	unsigned line = 0;

	if (!f)
		return 0;
	while (fgets(buf, sizeof(buf), f)) {
		line++;
		if (strstr(buf, text)) {
			fclose(f);
			return line;
		}
	}
	fclose(f);
	return 0;
}

static bool named(const char *mangled, const char *name)
{
	char *d = strstr(mangled, "spawn") || strstr(mangled, "closure") ? demangle_symbol(mangled) : NULL;
	bool same = d && strcmp(d, name) == 0;

	free(d);
	return same;
}

/* The return address of a direct call from `caller` (any function when
 * NULL) to a function named `callee`; 0 when there is none. */
static uint64_t call_return(struct elf_image *img, const struct elf_sym *syms, size_t n,
			    const char *caller, const char *callee, csh cs)
{
	for (size_t i = 0; i < n; i++) {
		const uint8_t *code;
		cs_insn *insn;
		size_t count;
		uint64_t found = 0;

		if ((caller && !named(syms[i].name, caller)) ||
		    !(code = elf_image__code(img, syms[i].shndx, syms[i].addr, syms[i].size)))
			continue;
		count = cs_disasm(cs, code, syms[i].size, syms[i].addr, 0, &insn);
		for (size_t k = 0; k < count && !found; k++) {
			cs_x86_op *op = &insn[k].detail->x86.operands[0];

			if (insn[k].id != X86_INS_CALL || insn[k].detail->x86.op_count != 1 ||
			    op->type != X86_OP_IMM)
				continue;
			for (size_t j = 0; j < n && !found; j++)
				if (syms[j].addr == (uint64_t)op->imm && named(syms[j].name, callee))
					found = insn[k].address + insn[k].size;
		}
		cs_free(insn, count);
		if (found)
			return found;
	}
	return 0;
}

static uint64_t find_call(const char *path, const char *caller, const char *callee)
{
	struct elf_image img;
	struct elf_sym *syms = NULL;
	size_t n = 0;
	uint64_t ret = 0;
	csh cs;

	if (elf_image__open(&img, path) != 0)
		return 0;
	if (elf_image__functions(&img, &syms, &n) == 0 &&
	    cs_open(CS_ARCH_X86, CS_MODE_64, &cs) == CS_ERR_OK) {
		cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
		ret = call_return(&img, syms, n, caller, callee, cs);
		cs_close(&cs);
	}
	free(syms);
	elf_image__close(&img);
	return ret;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = s ? strlen(s) : 0, m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void check_spawn_site(int *unit_failures_, const char *path, const char *caller,
			     const char *callee)
{
	struct addr_lines *al;
	uint64_t ret = find_call(path, caller, callee);
	unsigned want = line_of(SOURCE, "tokio::spawn("), line = 0;
	char *file = NULL, *function = NULL;

	CHECK(ret != 0 && want != 0);
	if (!ret || addr_lines__open(&al, path) != 0)
		return;
	CHECK(addr_lines__lookup(al, ret - 1, &file, &line, &function) == 0);
	CHECK(ends_with(file, "/src/bin/tokio_mt.rs"));
	CHECK(line == want);
	CHECK_STR(function, "tokio_mt::main::{{closure}}::{{closure}}");
	free(file);
	free(function);
	/* nothing is at address 0 */
	CHECK(addr_lines__lookup(al, 0, &file, &line, &function) == -ENOENT);
	CHECK(file == NULL && function == NULL && line == 0);
	addr_lines__free(al);
}

UNIT_TEST(lines_spawn_site_tokio_mt)
{
	const char *debug = unit_build_path("targets/rust/debug/tokio_mt");
	const char *release = unit_build_path("targets/rust/release/tokio_mt");

	if (access(debug, R_OK) != 0 || access(release, R_OK) != 0 || access(SOURCE, R_OK) != 0) {
		unit_skip("%s not built (make targets): line checks skipped\n", debug);
		return;
	}
	/* `.map(|id| tokio::spawn(...))`: the call is in the map closure */
	check_spawn_site(unit_failures_, debug, "tokio_mt::main::{{closure}}::{{closure}}",
			 "tokio::task::spawn::spawn");
	/* release: spawn and the closure are inlined into Vec::from_iter */
	check_spawn_site(unit_failures_, release, NULL, "tokio::task::spawn::spawn_inner");
}

UNIT_TEST(lines_without_dwarf_name_the_symbol)
{
	const char *debug = unit_build_path("targets/rust/debug/tokio_mt");
	char dir[] = "/tmp/asynctrace-lines-XXXXXX", stripped[64];
	char *objcopy[] = { "objcopy", "--strip-debug", (char *)debug, stripped, NULL };
	struct addr_lines *al;
	uint64_t ret = access(debug, R_OK) == 0 ? find_call(debug, NULL, "tokio::task::spawn::spawn") : 0;
	char *file = NULL, *function = NULL;
	unsigned line = 1;

	if (!ret) {
		unit_skip("%s not built (make targets): stripped line check skipped\n", debug);
		return;
	}
	if (!mkdtemp(dir)) { /* a failure of the test's own, not a skip */
		CHECK(!"mkdtemp failed");
		return;
	}
	snprintf(stripped, sizeof(stripped), "%s/tokio_mt", dir);
	if (elf_fixture__run(objcopy) == 0 && addr_lines__open(&al, stripped) == 0) {
		CHECK(addr_lines__lookup(al, ret - 1, &file, &line, &function) == 0);
		CHECK(file == NULL && line == 0);
		CHECK_STR(function, "tokio_mt::main::{{closure}}::{{closure}}");
		free(file);
		free(function);
		addr_lines__free(al);
	} else {
		unit_skip("no objcopy: stripped line check skipped\n");
	}
	unlink(stripped);
	rmdir(dir);
}
