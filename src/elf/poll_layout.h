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

#endif
