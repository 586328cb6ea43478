/* asynctrace export: write a trace in another tool's format. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "export/export.h"
#include "util/error.h"

struct export_options {
	const char *path;
	const char *output; /* NULL: standard output */
	const struct export_format *format;
};

static void usage(FILE *out)
{
	const struct export_format *const *formats = export_formats();

	fprintf(out, "usage: asynctrace export --format FORMAT [-o OUT] TRACE\n"
		     "  -f, --format FORMAT   one of:\n");
	for (size_t i = 0; formats[i]; i++)
		fprintf(out, "                          %-8s %s\n", formats[i]->name, formats[i]->description);
	fprintf(out, "  -o, --output OUT      write to OUT instead of standard output\n");
}

static int parse_options(struct export_options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	optind = 1;
	opterr = 0; /* report_bad_option says it, in one line */
	while ((c = getopt_long(argc, argv, ":f:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o->format = export_format__find(optarg);
			if (!o->format) {
				report_error("export: unknown format '%s' (see --help)", optarg);
				return -1;
			}
			break;
		case 'o': o->output = optarg; break;
		case 'h': usage(stdout); return 1;
		default: report_bad_option("export", c, argv); return -1;
		}
	}
	if (!o->format) {
		report_error("export: --format is required (see --help)");
		return -1;
	}
	if (optind != argc - 1) {
		report_error("export: give exactly one trace file (see --help)");
		return -1;
	}
	o->path = argv[optind];
	return 0;
}

/* Said before writing: a file no viewer opens is minutes of work wasted. */
static void warn_if_too_big(const struct export_format *format, const struct trace_file *trace)
{
	uint64_t estimate = format->bytes_per_event * trace->event_count;

	if (format->viewer_limit_bytes && estimate > format->viewer_limit_bytes)
		report_warning("export: %s output of %llu events will be about %llu MB, more than its viewers open "
			       "(%llu MB): --format perfetto is smaller and opens in ui.perfetto.dev",
			       format->name, (unsigned long long)trace->event_count,
			       (unsigned long long)(estimate >> 20),
			       (unsigned long long)(format->viewer_limit_bytes >> 20));
}

int cmd_export(int argc, char **argv)
{
	struct export_options o = { 0 };
	struct trace_file *trace;
	FILE *out = stdout;
	int rc = parse_options(&o, argc, argv);

	if (rc)
		return rc > 0 ? 0 : EXIT_USAGE;
	if (open_trace_for("export", o.path, &trace))
		return 1;
	warn_if_too_big(o.format, trace);
	if (o.output && !(out = fopen(o.output, "w"))) {
		report_error("export: cannot create %s: %s", o.output, strerror(errno));
		trace_file__close(trace);
		return 1;
	}
	rc = o.format->write(trace, out);
	if (out != stdout && fclose(out) != 0 && !rc)
		rc = -errno;
	/* The formats read the events as they write: a trace that does not
	 * decode, or memory running out, is not the output's fault. */
	if (rc == -EBADMSG || rc == -ENOMEM)
		report_trace_error("export", o.path, rc);
	else if (rc)
		report_error("export: cannot write %s: %s", o.output ? o.output : "standard output", strerror(-rc));
	trace_file__close(trace);
	return rc ? 1 : 0;
}
