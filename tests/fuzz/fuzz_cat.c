/* CAT's (and zCore dump.py's) Chrome trace JSON, read and imported as
 * `import cat` does. */
#include <time.h>

#include "fuzz_common.h"
#include "import/cat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct import_options io = { .capture = "import-cat", .source = "fuzz.json", .match_by_name = true,
				     .drop_doubled_exits = true };
	struct import_builder *b;
	struct cat_input *in;
	struct cat_error why;

	if (cat_input__open(&in, fuzz_memfd_path(data, size), CAT_TS_AUTO, &why))
		return 0;
	io.clock = cat_input__stats(in)->unit == CAT_TS_S ? CLOCK_REALTIME : CLOCK_MONOTONIC;
	if (!import_builder__new(&b, &io)) {
		if (!cat_input__add_to(in, b))
			fuzz_import_finish(b);
		import_builder__free(b);
	}
	cat_input__free(in);
	return 0;
}
