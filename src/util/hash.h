/* String hashing, the one place it is done. */
#ifndef ASYNCTRACE_UTIL_HASH_H
#define ASYNCTRACE_UTIL_HASH_H

#include <stdint.h>

/* FNV-1a of a NUL-terminated string (NULL hashes as ""): stable across runs
 * and machines. */
static inline uint64_t hash_string(const char *s)
{
	uint64_t hash = 1469598103934665603ULL;

	for (; s && *s; s++)
		hash = (hash ^ (unsigned char)*s) * 1099511628211ULL;
	return hash;
}

#endif
