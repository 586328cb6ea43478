/* elf/pollfn on a real Rust program: tests/targets' tokio_mt (debug build),
 * whose poll functions are documented in tests/targets/README.md. */
#include <elf.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "elf/pollfn.h"
#include "test_elf_fixture.h"
#include "unit.h"

#define TOKIO_MT unit_build_path("targets/rust/debug/tokio_mt")

static const struct poll_fn *by_name(const struct poll_fn_list *l, const char *name)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->fns[i].demangled, name) == 0)
			return &l->fns[i];
	return NULL;
}

static const struct poll_fn *by_addr(const struct poll_fn_list *l, uint64_t addr)
{
	for (size_t i = 0; i < l->count; i++)
		if (l->fns[i].addr == addr)
			return &l->fns[i];
	return NULL;
}

static bool from_source(const struct poll_fn *fn, const char *suffix)
{
	size_t n, m = strlen(suffix);

	if (!fn || !fn->source_file || fn->source_line == 0)
		return false;
	n = strlen(fn->source_file);
	return n >= m && strcmp(fn->source_file + n - m, suffix) == 0;
}

static void check_tokio_mt(int *unit_failures_, const struct poll_fn_list *l)
{
	const struct poll_fn *outer = by_name(l, "tokio_mt::outer::{{closure}}");
	const struct poll_fn *middle = by_name(l, "tokio_mt::middle::{{closure}}");
	const struct poll_fn *leaf = by_name(l, "tokio_mt::leaf::{{closure}}");
	const struct poll_fn *block = by_name(l, "tokio_mt::main::{{closure}}");
	const struct poll_fn *yield = by_name(l, "<targets::YieldNow as core::future::future::Future>::poll");
	const struct poll_fn *harness = by_name(l, "tokio::runtime::task::harness::Harness<T,S>::poll");

	CHECK(outer && middle && leaf && block && yield && harness);
	if (!outer || !middle || !leaf || !block || !yield || !harness)
		return;
	CHECK(outer->context == CONTEXT_COMPILER && outer->body == BODY_ASYNC_FN);
	CHECK(block->context == CONTEXT_ANONYMOUS && block->body == BODY_ASYNC_BLOCK);
	CHECK(yield->context == CONTEXT_USER && harness->context == CONTEXT_TASK);
	CHECK(from_source(outer, "src/bin/tokio_mt.rs") && from_source(yield, "src/lib.rs"));
	/* Poll<()>: one byte, Ready 0, Pending 1, in al */
	CHECK(outer->result.mode == RESULT_IN_REGS && outer->result.disc_size == 1 &&
	      outer->result.disc_offset == 0 && outer->result.pending_value == 1);
	CHECK(yield->result.mode == RESULT_IN_REGS && yield->result.pending_value == 1);
	/* Poll<u64>: a u64 tag in rax, the value in rdx */
	CHECK(leaf->result.mode == RESULT_IN_REGS && leaf->result.disc_size == 8 &&
	      leaf->result.pending_value == 1 && leaf->self_arg == 0);
	/* the 24-byte Poll<Big> goes through a hidden pointer (argument 0) */
	CHECK(middle->result.mode == RESULT_IN_MEMORY && middle->self_arg == 1);
	for (size_t i = 0; i < l->count; i++)
		CHECK(l->fns[i].file_offset == elf_fixture__file_offset(TOKIO_MT, l->fns[i].addr));
}

/* Without DWARF the same functions must be found (by their calls to the
 * async-resume panics); only async blocks in plain fns read as async fns. */
static void check_stripped(int *unit_failures_, const struct poll_fn_list *with,
			   const struct poll_fn_list *without)
{
	CHECK(!without->has_dwarf && without->code_scanned);
	CHECK(without->count == with->count);
	for (size_t i = 0; i < with->count; i++) {
		const struct poll_fn *a = &with->fns[i], *b = by_addr(without, a->addr);

		CHECK(b != NULL);
		if (!b)
			continue;
		CHECK_STR(b->demangled, a->demangled);
		CHECK(b->context == a->context ||
		      (a->context == CONTEXT_ANONYMOUS && b->context == CONTEXT_COMPILER));
		CHECK(b->result.mode == RESULT_UNKNOWN && b->source_file == NULL);
	}
}

UNIT_TEST(elf_rust_tokio_mt)
{
	struct poll_fn_list with, without;
	struct elf_fixture fx;
	char stripped[PATH_MAX + 64];

	if (access(TOKIO_MT, R_OK) != 0) {
		unit_skip("%s not built (make targets): Rust target checks skipped\n", TOKIO_MT);
		return;
	}
	CHECK(poll_fn_list__load(&with, TOKIO_MT, NULL) == 0);
	CHECK(with.has_dwarf && with.machine == EM_X86_64 && with.build_id_len == 20);
	check_tokio_mt(unit_failures_, &with);
	if (elf_fixture__init(&fx) == 0) {
		char *objcopy[] = { "objcopy", "--strip-debug", (char *)TOKIO_MT, stripped, NULL };

		snprintf(stripped, sizeof(stripped), "%s/tokio_mt.nodebug", fx.dir);
		if (elf_fixture__run(objcopy) != 0) {
			objcopy[0] = "llvm-objcopy";
			if (elf_fixture__run(objcopy) != 0)
				unit_skip("no objcopy: stripped Rust target check skipped\n");
		}
		if (access(stripped, R_OK) == 0 && poll_fn_list__load(&without, stripped, NULL) == 0) {
			check_stripped(unit_failures_, &with, &without);
			poll_fn_list__free(&without);
		}
		elf_fixture__cleanup(&fx);
	}
	poll_fn_list__free(&with);
}
