/* Code addresses seen while recording (spawn sites: the return address at
 * a spawn function's entry), turned into source lines before the trace is
 * closed, while the binary and the process are at hand. */
#ifndef ASYNCTRACE_PROBE_ADDRESSES_H
#define ASYNCTRACE_PROBE_ADDRESSES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "trace/trace.h"
#include "util/u64map.h"

struct address_book {
	struct u64map seen;   /* address -> 1 */
	uint64_t *addrs;
	size_t count;
	size_t capacity;
	uint64_t load_bias;   /* address in the process - address in the file */
	bool have_bias;
};

/* A line of /proc/PID/maps: "start-end perms offset major:minor inode path". */
struct proc_mapping {
	uint64_t start, end, offset;
	dev_t dev;
	ino_t inode;
	bool executable;
	const char *path; /* into the line: to its end, newline included; "" anonymous */
};

bool proc_mapping__parse(const char *line, struct proc_mapping *m);

/* Remembers a code address of the process (once). Returns 0 or -ENOMEM. */
int address_book__note(struct address_book *book, uint64_t addr);
/* Finds the load bias from /proc/PID/maps: where the bytes at file_offset
 * of the file at path (whose address in the file is vaddr) are mapped.
 * Returns 0, or a negative errno (the process is gone, or maps nothing of
 * the file). */
int address_book__find_bias(struct address_book *book, pid_t pid, const char *path,
			    uint64_t file_offset, uint64_t vaddr);
/* Resolves every noted address with the file's DWARF line tables, or from
 * `cache` (a file of sites resolved before for this binary, NULL for none;
 * new ones are added to it). Returns 0 or a negative errno; *sites
 * (malloc'd) may be empty. */
int address_book__resolve(const struct address_book *book, const char *path, const char *cache,
			  struct trace_site **sites, size_t *count);
void address_book__free(struct address_book *book);

#endif
