#include "util/array.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_CAPACITY 16

int array_reserve(void *items_ptr, size_t *capacity, size_t needed, size_t item_size)
{
	size_t grown = *capacity ? *capacity : FIRST_CAPACITY;
	void *items;

	if (needed <= *capacity)
		return 0;
	while (grown < needed)
		grown *= 2;
	if (grown > SIZE_MAX / item_size)
		return -ENOMEM;
	/* items_ptr holds a `T *`: read and write it without type punning. */
	memcpy(&items, items_ptr, sizeof(items));
	items = realloc(items, grown * item_size);
	if (!items)
		return -ENOMEM;
	memcpy(items_ptr, &items, sizeof(items));
	*capacity = grown;
	return 0;
}
