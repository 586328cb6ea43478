/* util/u64map: lookups survive removals (backward-shift deletion keeps
 * every probe chain whole). */
#include <stdint.h>

#include "unit.h"
#include "util/u64map.h"

UNIT_TEST(u64map_remove_keeps_the_others_reachable)
{
	struct u64map map = { 0 };
	size_t missing = 0, wrong = 0;

	/* Keys that collide a lot: multiples of a power of two. */
	for (uint64_t k = 1; k <= 5000; k++)
		CHECK(u64map_put(&map, k << 12, (void *)(uintptr_t)k) == 0);
	for (uint64_t k = 1; k <= 5000; k += 2)
		u64map_remove(&map, k << 12);
	u64map_remove(&map, 123456789); /* absent: nothing happens */
	CHECK(map.count == 2500);
	for (uint64_t k = 1; k <= 5000; k++) {
		void *v = u64map_get(&map, k << 12);

		if (k % 2)
			wrong += v != NULL;
		else
			missing += v != (void *)(uintptr_t)k;
	}
	CHECK(missing == 0 && wrong == 0);
	for (uint64_t k = 1; k <= 5000; k += 2)
		CHECK(u64map_put(&map, k << 12, (void *)(uintptr_t)k) == 0);
	CHECK(map.count == 5000 && u64map_get(&map, 4999ULL << 12) == (void *)(uintptr_t)4999);
	u64map_free(&map);
}
