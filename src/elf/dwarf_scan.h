/* Looking functions up in DWARF (libdw): rustc's name for the body
 * (`{async_fn#0}`, `{closure#0}`, `poll`), the declaration's file and line,
 * and the layout of a Poll<T> return value. */
#ifndef ASYNCTRACE_ELF_DWARF_SCAN_H
#define ASYNCTRACE_ELF_DWARF_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <elfutils/libdw.h>

#include "elf/elf_image.h"
#include "elf/pollfn.h"

struct dwarf_query {
	uint64_t addr;       /* symbol address, for DIEs without a linkage name */
	const char *linkage; /* mangled symbol name, matched to DW_AT_linkage_name */
	/* results, valid when found */
	bool found;
	bool returns_poll;   /* DW_AT_type is Poll<T>: `result` tells its layout */
	char *dw_name;       /* DW_AT_name, malloc'd (may be NULL) */
	char *file;          /* DW_AT_decl_file, malloc'd (may be NULL) */
	unsigned line;       /* DW_AT_decl_line, or 0 */
	struct poll_result_layout result;
	uint8_t stack_args;  /* enum stack_args (x86-64; else unknown) */
	/* self: Pin<&mut T>: T's name (malloc'd, or NULL) and, when T is a
	 * coroutine, its state layout (see state_layout.h) */
	char *future_type;
	struct state_layout state;
};

/* Resolve the queries against the concrete subprograms of every unit.
 * A DIE with a linkage name only matches queries of that name; one without
 * matches by address, except in ET_REL files (their DWARF addresses are
 * section-relative). *has_dwarf tells whether the file had any DWARF unit.
 * Returns 0 or -ENOMEM. */
int dwarf_scan(struct elf_image *img, struct dwarf_query *queries, size_t count,
	       bool *has_dwarf);

/* The name DW_AT_linkage_name has for a symbol: LLVM renames internal
 * symbols it promotes across (Thin)LTO or codegen units `<name>.llvm.<n>`
 * (common in release builds) but keeps the linkage name unchanged. Sets
 * *linkage to the symbol name, or to a copy without the suffix stored in
 * *copy (the caller frees it). Returns 0 or -ENOMEM. */
int dwarf_linkage_name(const char *symbol, char **copy, const char **linkage);

/* The file declaring die (following its abstract origin) as an absolute
 * path, malloc'd: line tables name a crate's own files relative to the
 * unit's DW_AT_comp_dir (`src/main.rs`) as often as not. NULL when it has
 * none, or out of memory (*oom set). */
char *dwarf_decl_path(Dwarf_Die *die, bool *oom);

/* Free the strings of one query (the struct itself belongs to the caller). */
void dwarf_query__release(struct dwarf_query *q);

#endif
