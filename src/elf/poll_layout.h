/* Decoding Poll<T> from DWARF: where the discriminant is, which value means
 * Pending, and how rustc returns the value (registers or memory). */
#ifndef ASYNCTRACE_ELF_POLL_LAYOUT_H
#define ASYNCTRACE_ELF_POLL_LAYOUT_H

#include <stdbool.h>

#include <elfutils/libdw.h>

#include "elf/pollfn.h"

/* When `type` (a function's DW_AT_type) is core::task::poll::Poll<T>, fill
 * *out and return true; out->mode stays RESULT_UNKNOWN when the layout
 * cannot be decoded. `reg_size` is the size of a general register (the
 * ELF address size). Returns false for other types. */
bool poll_layout_from_type(Dwarf_Die *type, unsigned reg_size, struct poll_result_layout *out);

/* Whether rustc returns a value of `type` through a hidden pointer: 1
 * when larger than two registers, or than one unless it is one or two
 * scalars (u128, (u64, u64), &str: in registers; [u64; 2], [u32; 3]: in
 * memory, measured on rustc 1.95 code). An enum of 9..16 bytes counts as
 * memory: whether rustc makes it a scalar pair depends on its variants'
 * primitives, which are not worth guessing. 0 when in registers, -1 when
 * the size is unknown. */
int rust_return_in_memory(Dwarf_Die *type, unsigned reg_size);

#endif
