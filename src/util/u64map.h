/* Open-addressing hash map from a nonzero 64-bit key to a pointer. Small,
 * fast, and enough for per-thread and per-address state. */
#ifndef ASYNCTRACE_UTIL_U64MAP_H
#define ASYNCTRACE_UTIL_U64MAP_H

#include <stddef.h>
#include <stdint.h>

struct u64map_slot {
	uint64_t key; /* 0 = empty */
	void *value;
};

struct u64map {
	struct u64map_slot *slots;
	size_t count;
	size_t mask; /* capacity - 1; capacity is a power of two */
};

/* The value stored under key, or NULL. */
void *u64map_get(const struct u64map *map, uint64_t key);
/* Stores value (non-NULL) under key, replacing. Returns 0, -ENOMEM, or
 * -EINVAL for key 0. */
int u64map_put(struct u64map *map, uint64_t key, void *value);
/* Removes key, if present. */
void u64map_remove(struct u64map *map, uint64_t key);
/* Iteration: for (size_t i = 0; i <= map->mask && map->slots; i++) if (map->slots[i].key) ... */
void u64map_free(struct u64map *map);

#endif
