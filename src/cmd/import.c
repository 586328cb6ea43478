/* asynctrace import FORMAT: the format table, and the summary every format
 * ends with. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/import.h"
#include "util/error.h"
#include "util/private_file.h"

struct import_format {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct import_format formats[] = {
	{ "zcore", cmd_import_zcore, "zCore kernel probe logs (eBPF serial console, GDB), with a symbol file" },
	{ "uftrace", cmd_import_uftrace, "a uftrace.data directory (uftrace record)" },
	{ "cat", cmd_import_cat, "CAT's Chrome JSON (B/E events)" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: asynctrace import FORMAT [options] INPUT... -o TRACE\n\nformats:\n");
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		fprintf(out, "  %-8s  %s\n", formats[i].name, formats[i].summary);
	fprintf(out, "\n'asynctrace import FORMAT --help' shows a format's options.\n");
}

int cmd_import(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (!strcmp(argv[1], formats[i].name))
			return formats[i].run(argc - 1, argv + 1);
	report_error("import: unknown format '%s' (zcore, uftrace or cat)", argv[1]);
	return EXIT_USAGE;
}

void import_say_unknown(const char *format, const struct import_unknown *u, const char *input)
{
	char lines[128] = "";
	size_t kept = u->count < IMPORT_UNKNOWN_KEPT ? u->count : IMPORT_UNKNOWN_KEPT;

	if (!u->count)
		return;
	for (size_t i = 0, n = 0; i < kept && n < sizeof(lines); i++)
		n += (size_t)snprintf(lines + n, sizeof(lines) - n, "%s%" PRIu64, i ? ", " : "", u->lines[i]);
	report_warning("import %s: %s: %" PRIu64 " line%s not understood and skipped (line%s %s%s)", format,
		       input, u->count, u->count == 1 ? "" : "s", kept == 1 ? "" : "s", lines,
		       u->count > kept ? ", ..." : "");
}

int import_finish(const char *format, struct import_builder *b, const char *out,
		  const struct import_unknown *unknown, const char *input)
{
	struct import_stats st;
	int err;

	import_say_unknown(format, unknown, input);
	err = import_builder__write(b, out, &st);
	if (err == -ENODATA) {
		report_error("import %s: %s: no probe records found", format, input);
		return 1;
	}
	if (err) {
		report_error("import %s: cannot write %s: %s", format, out, private_file__strerror(err));
		return 1;
	}
	report_info("import %s: %" PRIu64 " records (%" PRIu64 " entries, %" PRIu64 " exits), %" PRIu64
		    " functions, %" PRIu64 " threads -> %s", format, st.records, st.entries, st.exits,
		    st.functions, st.threads, out);
	report_info("import %s: %" PRIu64 " polls paired on their thread, %" PRIu64 " across threads, %" PRIu64
		    " left open; %" PRIu64 " exits without an entry, %" PRIu64 " doubled exits dropped",
		    format, st.pairs, st.cross_thread, st.left_open, st.orphan_exits, st.doubled_exits);
	if (st.late_exits)
		report_info("import %s: %" PRIu64 " exits came after their caller's exit, which ended those polls",
			    format, st.late_exits);
	if (st.depth_mismatches)
		report_warning("import %s: %" PRIu64 " polls paired with different entry and exit depths", format,
			       st.depth_mismatches);
	if (st.unnamed)
		report_warning("import %s: %" PRIu64 " addresses have no symbol (named by address; give --sym)",
			       format, st.unnamed);
	return 0;
}
