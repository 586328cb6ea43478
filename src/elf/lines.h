/* Address -> source line and function of one ELF file (libdw), for spawn
 * sites: where in the program's own code an address lies, looking
 * through functions that other crates' generic code inlined there. */
#ifndef ASYNCTRACE_ELF_LINES_H
#define ASYNCTRACE_ELF_LINES_H

#include <stdint.h>

struct addr_lines;

/* Open the ELF file at `path`. A file without DWARF opens too: lookups
 * then name functions from the symbol table only. Returns 0 or -errno as
 * elf_image__open (-ENOENT, -EACCES, -ENOEXEC, -ENOMEM). */
int addr_lines__open(struct addr_lines **out, const char *path);

/* Where `vaddr` (a link-time address: runtime address minus load bias;
 * for a return address pass it minus 1, inside the call) is in the source.
 * Of the frames at vaddr (the function and the functions inlined into it,
 * innermost first, each at the line the next inner one was called from),
 * the innermost one from the code unit's own source tree (under its
 * DW_AT_comp_dir: the crate being compiled, not the generic code of
 * std or of a dependency it instantiated), else the innermost: *file and
 * *line are that frame's line, *function its demangled name (from DWARF,
 * else the symbol containing vaddr). Strings are malloc'd; unknown ones
 * are NULL, an unknown line 0. Returns 0, -ENOENT when nothing is known
 * about vaddr, -ENOMEM. */
int addr_lines__lookup(struct addr_lines *al, uint64_t vaddr, char **file, unsigned *line,
		       char **function);

void addr_lines__free(struct addr_lines *al);

#endif
