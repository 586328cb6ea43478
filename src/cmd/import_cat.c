/* asynctrace import cat: CAT's Chrome trace JSON (and zCore dump.py's) to
 * a trace. The reader is import/cat.c; the pairing is the builder's. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmd/cmd.h"
#include "cmd/import.h"
#include "import/cat.h"
#include "util/error.h"

static const char import_cat_usage[] =
	"usage: asynctrace import cat [--ts-unit auto|ns|us|ms|s] FILE.json -o TRACE\n"
	"\n"
	"Import a Chrome trace JSON file as CAT (Rust-Async-Context-Tracer) writes it:\n"
	"an array of events or {\"traceEvents\": [...]}. B/E events (and X complete\n"
	"events) become polls, matched by name on their thread (tid, else pid);\n"
	"thread_name/process_name metadata names the threads; other phases are\n"
	"counted and skipped. CAT's `::_{{closure}}` is read as `::{{closure}}`.\n"
	"\n"
	"  -o, --output TRACE   the trace to write\n"
	"      --ts-unit UNIT   what ts and dur count: ns, us (Chrome's), ms or s.\n"
	"                       auto (the default): us, except in zCore dump.py output\n"
	"                       (E events with a \"Function address\" arg): ns when\n"
	"                       every ts is an integer (eBPF), s otherwise (GDB)\n"
	"  -h, --help           this text\n";

struct import_cat_opts {
	const char *input, *output;
	enum cat_ts_unit unit;
};

/* Returns -1 to continue, or the exit status. */
static int parse_options(int argc, char **argv, struct import_cat_opts *o)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "ts-unit", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, unit;

	optind = 0; /* glibc: full re-initialisation, main may have parsed before */
	opterr = 0; /* our own messages, with the program name */
	while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			o->output = optarg;
			break;
		case 'u':
			if ((unit = cat_ts_unit_parse(optarg)) < 0) {
				report_error("import cat: unknown --ts-unit '%s' (auto, ns, us, ms or s)", optarg);
				return EXIT_USAGE;
			}
			o->unit = (enum cat_ts_unit)unit;
			break;
		case 'h':
			fputs(import_cat_usage, stdout);
			return 0;
		default:
			report_bad_option("import cat", c, argv);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || !o->output) {
		report_error("import cat: %s (see 'asynctrace import cat --help')",
			     optind >= argc ? "missing FILE.json" : optind < argc - 1 ? "more than one FILE.json"
			     : "missing -o TRACE");
		return EXIT_USAGE;
	}
	o->input = argv[optind];
	return -1;
}

static void report_input_error(const char *path, int err, const struct cat_error *why)
{
	if (err == -EBADMSG)
		report_error("import cat: %s:%" PRIu64 ":%" PRIu64 ": not JSON: %s", path, why->line, why->column,
			     why->what);
	else if (err == -EINVAL && why->event)
		report_error("import cat: %s: event %" PRIu64 ": %s", path, why->event, why->what);
	else if (err == -EINVAL || err == -ENODATA || err == -EFBIG)
		report_error("import cat: %s: %s", path, why->what);
	else if (err == -ENOMEM)
		report_error("import cat: %s: out of memory", path);
	else
		report_error("import cat: cannot read %s: %s", path, strerror(-err));
}

/* What the summary of import_finish does not say: the unit taken and the
 * events that were no B/E/X. */
static void report_cat_stats(const struct cat_stats *st)
{
	report_info("import cat: ts read as %s%s; %" PRIu64 " B, %" PRIu64 " E, %" PRIu64 " X, %" PRIu64
		    " metadata events", cat_ts_unit_name(st->unit), st->from_dump_py ? " (zCore dump.py output)" : "",
		    st->begins, st->ends, st->completes, st->metadata);
	if (st->ignored)
		report_info("import cat: %" PRIu64 " events of other phases skipped (%s)", st->ignored,
			    st->ignored_phases);
}

static int import_cat(const struct import_cat_opts *o)
{
	/* Chrome JSON has no addresses: exits match by name. GDB's dump.py
	 * output doubles exits (a breakpoint hit twice at the return site):
	 * said so in the summary rather than counted as orphans. Seconds are a
	 * wall clock (GDB's time.time()); CAT's uftrace and zCore's
	 * bpf_ktime_get_ns count from boot. */
	struct import_options opts = { .capture = "import-cat", .source = o->input, .match_by_name = true,
				       .drop_doubled_exits = true };
	struct import_unknown unknown = { 0 };
	struct import_builder *b = NULL;
	struct cat_input *in;
	struct cat_error why;
	int err, status;

	if ((err = cat_input__open(&in, o->input, o->unit, &why))) {
		report_input_error(o->input, err, &why);
		return 1;
	}
	opts.clock = cat_input__stats(in)->unit == CAT_TS_S ? CLOCK_REALTIME : CLOCK_MONOTONIC;
	err = import_builder__new(&b, &opts);
	err = err ? err : cat_input__add_to(in, b);
	if (err) {
		report_error("import cat: %s: out of memory", o->input);
		status = 1;
	} else if (!(status = import_finish("cat", b, o->output, &unknown, o->input))) {
		report_cat_stats(cat_input__stats(in));
	}
	import_builder__free(b);
	cat_input__free(in);
	return status;
}

int cmd_import_cat(int argc, char **argv)
{
	struct import_cat_opts opts = { .unit = CAT_TS_AUTO };
	int status = parse_options(argc, argv, &opts);

	return status >= 0 ? status : import_cat(&opts);
}
