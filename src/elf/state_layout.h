/* What DWARF says about the future a poll function polls: the name of its
 * type (to pair it with its drop glue) and, for async bodies, where the
 * state machine keeps its discriminant and which value is which `.await`. */
#ifndef ASYNCTRACE_ELF_STATE_LAYOUT_H
#define ASYNCTRACE_ELF_STATE_LAYOUT_H

#include <elfutils/libdw.h>

#include "elf/pollfn.h"

/* From a poll function's subprogram DIE, whose first parameter is
 * `self: Pin<&mut T>`: *future_type = the name of T as rustc spells type
 * names in DWARF (`tokio_mt::leaf::{async_fn_env#0}`, `targets::YieldNow`),
 * malloc'd; *state = T's discriminant and await points when T is a
 * coroutine (a DW_TAG_variant_part with SuspendN variants). Both stay
 * empty when DWARF has no types (release builds with `debug = 1`) or the
 * first parameter is not a Pin<&mut T>. Returns 0 or -ENOMEM. */
int future_from_subprogram(Dwarf_Die *fn, char **future_type, struct state_layout *state);

/* The T of a `drop_in_place<T>` DW_AT_name, malloc'd; NULL when the name
 * has another shape or out of memory (*oom tells). */
char *drop_glue_type(const char *dw_name, bool *oom);

void state_layout__release(struct state_layout *state);

#endif
