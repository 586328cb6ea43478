/* Rust symbol demangling (legacy `_ZN...17h<hash>E` and v0 `_R...`) through
 * libiberty, printed the way `rustfilt` and `nm -C` print them. */
#ifndef ASYNCTRACE_ELF_DEMANGLE_H
#define ASYNCTRACE_ELF_DEMANGLE_H

#include <stdbool.h>

/* True when `name` has the shape of a Rust legacy or v0 mangled symbol. */
bool rust_is_mangled(const char *name);

/* The demangled name, malloc'd (not named rust_demangle: libiberty
 * exports that name and calls it from cplus_demangle): legacy names lose their `::h<hash>` suffix,
 * v0 names lose their crate disambiguators (`core[c1f1..]` -> `core`).
 * Names that are not Rust-mangled (C symbols, or garbage) are returned
 * unchanged, as a copy. NULL only when out of memory. */
char *demangle_symbol(const char *mangled);

#endif
