/* asynctrace import uftrace DIR -o TRACE: a uftrace.data directory
 * (`uftrace record`) as a trace, every traced function a poll function. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/import.h"
#include "import/uftrace.h"
#include "util/error.h"

struct uftrace_opts {
	const char *dir;
	const char *out;
};

static const char uftrace_usage[] =
	"usage: asynctrace import uftrace DIR -o TRACE\n"
	"\n"
	"Read a uftrace.data directory written by `uftrace record` (file versions 3\n"
	"and 4): one thread per TID.dat, the functions named from the recording's\n"
	"*.sym files and sid-*.map load addresses (Rust names demangled), thread\n"
	"names from its perf COMM records, times on the recording's clock\n"
	"(--clock, CLOCK_MONOTONIC by default). Every function uftrace traced\n"
	"becomes a poll function; its calls are its polls. EVENT records are\n"
	"skipped; LOST records are counted and reported. Recordings with arguments\n"
	"or return values (-A, -R, -a) are refused.\n"
	"\n"
	"  -o, --output TRACE   the trace to write (required)\n"
	"  -h, --help           show this help\n";

/* Returns -1 to continue, or the exit status. */
static int parse_args(int argc, char **argv, struct uftrace_opts *o)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct uftrace_opts){ 0 };
	optind = 0; /* glibc: full re-initialisation, main may have parsed before */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': o->out = optarg; break;
		case 'h': fputs(uftrace_usage, stdout); return 0;
		default: report_bad_option("import uftrace", c, argv); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || !o->out) {
		report_error("import uftrace: %s (see 'asynctrace import uftrace --help')",
			     optind >= argc ? "no DIR given" : optind < argc - 1 ? "more than one DIR given"
									  : "no output given (-o TRACE)");
		return EXIT_USAGE;
	}
	o->dir = argv[optind];
	return -1;
}

static void say_what_was_read(const struct uftrace_counts *c)
{
	report_info("import uftrace: %" PRIu64 " records in %" PRIu64 " thread files (%" PRIu64 " entries, %" PRIu64
		    " exits, %" PRIu64 " events skipped)", c->records, c->threads, c->entries, c->exits, c->events);
	if (c->lost_records)
		report_warning("import uftrace: %" PRIu64 " events lost by uftrace (%" PRIu64 " LOST record%s): "
			       "calls around them are cut", c->lost_events, c->lost_records,
			       c->lost_records == 1 ? "" : "s");
	if (c->unresolved)
		report_warning("import uftrace: %" PRIu64 " records at addresses no map or symbol covers",
			       c->unresolved);
}

static int import_dir(const struct uftrace_opts *o, struct uftrace_data *d)
{
	struct import_options io = {
		.capture = "import-uftrace",
		.source = o->dir,
		.machine = uftrace_data__machine(d),
		.clock = uftrace_data__clock(d),
	};
	struct import_unknown none = { 0 };
	struct uftrace_counts counts;
	struct import_builder *b;
	char why[UFTRACE_WHY_LEN];
	int err, status;

	if ((err = import_builder__new(&b, &io))) {
		report_error("import uftrace: %s", strerror(-err));
		return 1;
	}
	if ((err = uftrace_data__import(d, b, &counts, why, sizeof(why)))) {
		report_error("import uftrace: %s", why);
		import_builder__free(b);
		return 1;
	}
	if (!counts.entries && !counts.exits) { /* one line, not a summary of nothing */
		report_error("import uftrace: %s: no function entry or exit records (%" PRIu64 " thread files)",
			     o->dir, counts.threads);
		import_builder__free(b);
		return 1;
	}
	say_what_was_read(&counts);
	status = import_finish("uftrace", b, o->out, &none, o->dir);
	import_builder__free(b);
	return status;
}

int cmd_import_uftrace(int argc, char **argv)
{
	struct uftrace_opts o;
	struct uftrace_data *d;
	char why[UFTRACE_WHY_LEN];
	int status = parse_args(argc, argv, &o);

	if (status >= 0)
		return status;
	if (uftrace_data__open(&d, o.dir, why, sizeof(why))) {
		report_error("import uftrace: %s", why);
		return 1;
	}
	status = import_dir(&o, d);
	uftrace_data__free(d);
	return status;
}
