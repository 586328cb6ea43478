/* The analysis of a binary (its poll functions, hooks and requested
 * functions, with everything DWARF said of them) costs tens of
 * milliseconds, most of `record`'s start-up; recording the same binary
 * again reuses it. Entries live in $XDG_CACHE_HOME/asynctrace (or
 * ~/.cache/asynctrace), mode 0600, one file per binary and options, keyed
 * by the file's identity (device, inode, size, modification and change
 * times), the options and the asynctrace build; a changed binary, option or
 * asynctrace is a miss. A cache
 * that cannot be read or written is no error: the analysis runs again. */
#ifndef ASYNCTRACE_ELF_POLLFN_CACHE_H
#define ASYNCTRACE_ELF_POLLFN_CACHE_H

#include "elf/pollfn.h"

/* What an analysis was made of: the file and the options that shaped it. */
struct pollfn_cache_key {
	const char *path;       /* the binary */
	const char *match;      /* --match alternation, or NULL */
	const char *functions;  /* --function alternation, or NULL */
	int hooks;              /* bit 0: runtime hooks and drop glue added; bit 1: inlined bodies */
};

/* 0 and *list filled on a hit; -ENOENT on a miss (or an unusable entry). */
int pollfn_cache__load(struct poll_fn_list *list, const struct pollfn_cache_key *key);
/* Best effort: 0 or a negative errno, which callers may ignore. */
int pollfn_cache__store(const struct poll_fn_list *list, const struct pollfn_cache_key *key);

/* The path of the key's entry with another suffix (".plan": what later
 * stages derive from the same analysis), the cache directory created.
 * Returns 0 or a negative errno. */
int pollfn_cache__path(const struct pollfn_cache_key *key, const char *suffix, char *out, size_t out_len);

/* A cache file: mapped read-only (munmap it) when it is ours and not a
 * symlink; written whole, mode 0600, through a rename. 0 or -errno. */
int pollfn_cache__read(const char *path, void **map, size_t *len);
int pollfn_cache__write(const char *path, const void *data, size_t len);

/* The serialized form, for the cache and its tests: malloc'd bytes. */
int poll_fn_list__serialize(const struct poll_fn_list *list, uint8_t **data, size_t *len);
int poll_fn_list__deserialize(struct poll_fn_list *list, const uint8_t *data, size_t len);

#endif
