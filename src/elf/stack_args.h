/* Whether a function may take arguments on the stack, from its DWARF
 * (x86-64). The in-process agent calls a traced function through a
 * trampoline whose frame shifts the stack: only a function with every
 * argument in registers can be called through (see PLATFORM.md). */
#ifndef ASYNCTRACE_ELF_STACK_ARGS_H
#define ASYNCTRACE_ELF_STACK_ARGS_H

#include <elfutils/libdw.h>

#include "elf/pollfn.h"

/* enum stack_args for the concrete subprogram `fn` (its parameters may be
 * on its abstract origin). `poll_result`: its Poll<T> layout when it
 * returns one, else NULL. `reg_size`: the ELF address size. */
uint8_t stack_args_of_subprogram(Dwarf_Die *fn, const struct poll_result_layout *poll_result,
				 unsigned reg_size);

#endif
