#include "util/u64map.h"

#include <errno.h>
#include <stdlib.h>

static size_t hash_u64(uint64_t key)
{
	/* splitmix64 finaliser: thread ids and addresses are far from random. */
	key ^= key >> 30;
	key *= 0xbf58476d1ce4e5b9ULL;
	key ^= key >> 27;
	key *= 0x94d049bb133111ebULL;
	key ^= key >> 31;
	return (size_t)key;
}

void *u64map_get(const struct u64map *map, uint64_t key)
{
	if (!map->slots || !key)
		return NULL;
	for (size_t i = hash_u64(key) & map->mask;; i = (i + 1) & map->mask) {
		if (map->slots[i].key == key)
			return map->slots[i].value;
		if (!map->slots[i].key)
			return NULL;
	}
}

static void insert_slot(struct u64map_slot *slots, size_t mask, uint64_t key, void *value)
{
	size_t i = hash_u64(key) & mask;

	while (slots[i].key && slots[i].key != key)
		i = (i + 1) & mask;
	slots[i].key = key;
	slots[i].value = value;
}

static int grow(struct u64map *map)
{
	size_t capacity = map->slots ? (map->mask + 1) * 2 : 64;
	struct u64map_slot *slots = calloc(capacity, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; map->slots && i <= map->mask; i++)
		if (map->slots[i].key)
			insert_slot(slots, capacity - 1, map->slots[i].key, map->slots[i].value);
	free(map->slots);
	map->slots = slots;
	map->mask = capacity - 1;
	return 0;
}

int u64map_put(struct u64map *map, uint64_t key, void *value)
{
	if (!key)
		return -EINVAL;
	if (!map->slots || (map->count + 1) * 4 > (map->mask + 1) * 3) {
		int err = grow(map);

		if (err)
			return err;
	}
	if (!u64map_get(map, key))
		map->count++;
	insert_slot(map->slots, map->mask, key, value);
	return 0;
}

/* Linear probing without tombstones: the entries after the hole that
 * would no longer be found are moved back into it. */
void u64map_remove(struct u64map *map, uint64_t key)
{
	size_t hole, i;

	if (!map->slots || !key)
		return;
	for (hole = hash_u64(key) & map->mask; map->slots[hole].key != key; hole = (hole + 1) & map->mask)
		if (!map->slots[hole].key)
			return;
	for (i = (hole + 1) & map->mask; map->slots[i].key; i = (i + 1) & map->mask) {
		size_t home = hash_u64(map->slots[i].key) & map->mask;

		/* Stays unless its home lies cyclically outside (hole, i]. */
		if (((i - home) & map->mask) >= ((i - hole) & map->mask)) {
			map->slots[hole] = map->slots[i];
			hole = i;
		}
	}
	map->slots[hole].key = 0;
	map->slots[hole].value = NULL;
	map->count--;
}

void u64map_free(struct u64map *map)
{
	free(map->slots);
	map->slots = NULL;
	map->count = 0;
	map->mask = 0;
}
