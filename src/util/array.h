/* Growing a heap array by doubling: the one place that does it. */
#ifndef ASYNCTRACE_UTIL_ARRAY_H
#define ASYNCTRACE_UTIL_ARRAY_H

#include <stddef.h>

/* Makes room for at least `needed` items of item_size bytes in the array
 * whose pointer is at items_ptr (a `T **`) and whose capacity is
 * *capacity. Returns 0, or -ENOMEM leaving the array as it was. */
int array_reserve(void *items_ptr, size_t *capacity, size_t needed, size_t item_size);

/* ARRAY_RESERVE(list->sites, list->capacity, list->count + 1). The test
 * for room is inline: it runs on every append, the call only to grow. */
#define ARRAY_RESERVE(items, capacity, needed) \
	((size_t)(needed) <= (capacity) ? 0 : array_reserve(&(items), &(capacity), (needed), sizeof(*(items))))

#endif
