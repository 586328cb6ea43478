/* Without DWARF, an async body is recognised by its code: the state
 * machine of an `async fn`, async block or async closure calls
 * core::panicking::panic_const::panic_const_async_fn_resumed (and/or its
 * `_panic` twin) when polled after completion; rustc 1.95 uses the
 * `async_fn` ones for async blocks too. A plain closure does not. */
#ifndef ASYNCTRACE_ELF_CODE_SCAN_H
#define ASYNCTRACE_ELF_CODE_SCAN_H

#include "elf/elf_image.h"

struct code_scan;

/* Prepare for scanning functions of `img` (its function symbols `syms`
 * locate the panic functions). 0 or -ENOMEM; *out is NULL when the file
 * cannot be scanned (machine without a decoder), see code_scan__supported. */
int code_scan__new(struct code_scan **out, struct elf_image *img, const struct elf_sym *syms,
		   size_t count);
void code_scan__free(struct code_scan *cs);

/* Whether functions of this file can be scanned: relocatable files of any
 * machine (through their relocations); linked x86_64/i386 (capstone) and
 * riscv32/64 (a small decoder: capstone 4 has no RISC-V). */
bool code_scan__supported(const struct elf_image *img);

/* Whether scanning can tell anything: a linked file without the panic
 * functions gives no answer (older rustc, before panic_const (2024),
 * panicked through core::panicking::panic with a message; or .symtab is
 * gone). Relocatable files name them as undefined symbols when they have
 * async code. */
bool code_scan__can_tell(const struct code_scan *cs);

/* 1 when `fn` calls (or jumps to) an async "resumed" panic, 0 when not,
 * negative errno when its code cannot be read. */
int code_scan__calls_async_panic(struct code_scan *cs, const struct elf_sym *fn);

/* The substring naming those panic functions, in either mangling. */
#define ASYNC_RESUMED_PANIC_MARK "panic_const_async"

#endif
