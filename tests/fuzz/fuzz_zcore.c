/* zCore kernel probe logs: a serial console's bytes (any noise), parsed,
 * resolved, split at switch calls and imported as `import zcore` does.
 * An input may carry a symbol file after a line "#--sym--": it is read as
 * `--sym FILE` would be, so the symbol file reader is fuzzed with it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz_common.h"
#include "import/zcore.h"

#define SYM_SEPARATOR "\n#--sym--\n"
#define SWITCH_FIRST_TID 0x40000000u /* import_zcore.c's: above any pid a log prints */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int add_symbol(const struct import_symbol *sym, void *ctx)
{
	return zcore_log__add_symbol_copy(ctx, sym->addr, sym->name);
}

/* The symbol part through a file: import_read_symbol_file takes a path. */
static int read_symbols(struct zcore_log *log, const uint8_t *syms, size_t len)
{
	struct import_unknown unknown = { 0 };

	return import_read_symbol_file(fuzz_memfd_path(syms, len), add_symbol, log, &unknown);
}

/* The log's bytes in a buffer of its own, as zcore_log__parse owns it. */
static int parse_log(struct zcore_log *log, const uint8_t *text, size_t len)
{
	char *copy = malloc(len + 1);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, text, len);
	return zcore_log__parse(log, copy, len);
}

static void import_log(struct zcore_log *log)
{
	bool gdb = zcore_log__is_gdb(log);
	struct import_options io = {
		.capture = gdb ? "import-zcore-gdb" : "import-zcore", .source = "fuzz.log",
		.clock = gdb ? CLOCK_REALTIME : CLOCK_MONOTONIC,
		.match_by_name = gdb, .drop_doubled_exits = gdb, .allow_late_exits = gdb,
	};
	struct import_builder *b;
	char name[24];

	if (import_builder__new(&b, &io))
		return;
	for (size_t i = 0; i < log->record_count; i++) {
		snprintf(name, sizeof(name), "pid %u", log->records[i].tid);
		if (import_builder__name_thread(b, log->records[i].tid, name))
			goto out;
	}
	if (!zcore_log__feed(log, b))
		fuzz_import_finish(b);
out:
	import_builder__free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = memmem(data, size, SYM_SEPARATOR, strlen(SYM_SEPARATOR));
	size_t log_len = sep ? (size_t)(sep - data) : size;
	struct zcore_log log;
	size_t calls;

	zcore_log__init(&log);
	if (!parse_log(&log, data, log_len) &&
	    (!sep || !read_symbols(&log, sep + strlen(SYM_SEPARATOR), size - log_len - strlen(SYM_SEPARATOR))) &&
	    !zcore_log__resolve(&log) && !zcore_log__split_at_calls(&log, "switch", SWITCH_FIRST_TID, &calls))
		import_log(&log);
	zcore_log__free(&log);
	return 0;
}
