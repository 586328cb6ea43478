/* ELF symbols and DWARF: what `symbols` and `record` read from the binary
 * they are given (symtab, demangling, classification, DWARF types and
 * lines, inlined bodies, hooks and drop glue, the code scans), and the
 * line table the profile resolves frames with. A binary is untrusted: a
 * download, a core of another build. */
#include <regex.h>
#include <stdlib.h>

#include "elf/lines.h"
#include "elf/pollfn.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* record --function: every other function too. */
static const regex_t *any_name(void)
{
	static regex_t re;
	static int compiled;

	if (!compiled && regcomp(&re, "::|main", REG_EXTENDED | REG_NOSUB))
		abort();
	compiled = 1;
	return &re;
}

/* What record asks of the file, in record's order. */
static void load_poll_fns(const char *path)
{
	struct poll_fn_list list = { 0 };
	struct uncounted_bodies uncounted = { 0 };

	if (poll_fn_list__load(&list, path, NULL))
		return;
	if (!poll_fn_list__add_functions(&list, path, any_name()) &&
	    !poll_fn_list__add_inlined(&list, path, NULL, true, &uncounted))
		poll_fn_list__add_hooks(&list, path);
	uncounted_bodies__free(&uncounted);
	poll_fn_list__free(&list);
}

/* A profile's frames: a few addresses of each listed function. */
static void lookup_lines(const char *path)
{
	struct poll_fn_list list = { 0 };
	struct addr_lines *al;
	char *file, *function;
	unsigned line;

	if (addr_lines__open(&al, path))
		return;
	if (!poll_fn_list__load(&list, path, NULL)) {
		for (size_t i = 0; i < list.count && i < 16; i++)
			if (!addr_lines__lookup(al, list.fns[i].addr + list.fns[i].size / 2, &file, &line,
						&function)) {
				free(file);
				free(function);
			}
		poll_fn_list__free(&list);
	}
	addr_lines__free(al);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_memfd_path(data, size);

	load_poll_fns(path);
	lookup_lines(path);
	return 0;
}
