/* Test-time ELF fixtures: tests/unit/fixtures/pollfns.ll compiled with clang
 * (and linked with ld.lld) for any target clang knows, so riscv64, big-endian
 * and 32-bit files can be tested on an x86_64 machine without new packages. */
#ifndef ASYNCTRACE_TESTS_ELF_FIXTURE_H
#define ASYNCTRACE_TESTS_ELF_FIXTURE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

enum elf_fixture_kind {
	FIXTURE_OBJECT,       /* clang -c: ET_REL with DWARF */
	FIXTURE_PIE,          /* ld.lld -pie --build-id: ET_DYN with DWARF */
	FIXTURE_PIE_NODEBUG,  /* the same without DWARF (ld.lld --strip-debug) */
	FIXTURE_KERNEL,       /* riscv only: ET_EXEC at zCore's 0xffffffc080200000,
			       * -mcmodel=medany, without DWARF */
};

struct elf_fixture {
	char dir[PATH_MAX];
	char source[PATH_MAX];
};

/* 0, or -1 after printing a note (no clang, no fixture source). */
int elf_fixture__init(struct elf_fixture *fx);
/* Build the fixture for a clang --target into fx->dir; the path goes to
 * `out`. 0 or -1 (note printed). */
int elf_fixture__build(struct elf_fixture *fx, const char *target, enum elf_fixture_kind kind,
		       char *out, size_t len);
/* Write a file of `len` bytes into fx->dir; path to `out`. */
int elf_fixture__write(struct elf_fixture *fx, const char *name, const void *data, size_t len,
		       char *out, size_t outlen);
/* Run a command, 0 when it exits 0 (its output is discarded). */
int elf_fixture__run(char *const argv[]);
void elf_fixture__cleanup(struct elf_fixture *fx);
/* File offset of `addr` from the program headers, computed apart from the
 * code under test; 0 when no PT_LOAD holds it. */
uint64_t elf_fixture__file_offset(const char *path, uint64_t addr);

#endif
