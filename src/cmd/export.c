/* asynctrace export: write a trace in another tool's format. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "export/export.h"
#include "export/filter.h"
#include "trace/profile.h"
#include "util/error.h"
#include "util/private_file.h"

struct export_options {
	const char *path;
	const char *output; /* NULL: standard output */
	const struct export_format *format;
	struct export_filter filter;
	bool filtered; /* any of --from, --to, --task, --thread */
	int level;     /* --compression-level, or -1: the format's default */
	int group_by;  /* --group-by (enum profile_group), or -1: the format's default */
	bool poll_time; /* --weight poll-time */
};

static void usage(FILE *out)
{
	const struct export_format *const *formats = export_formats();

	fprintf(out, "usage: asynctrace export --format FORMAT [-o OUT] [--from TIME] [--to TIME]\n"
		     "                        [--task ID]... [--thread TID]... TRACE\n"
		     "  -f, --format FORMAT   one of:\n");
	for (size_t i = 0; formats[i]; i++)
		fprintf(out, "                          %-8s %s\n", formats[i]->name, formats[i]->description);
	fprintf(out, "  -o, --output OUT      write to OUT instead of standard output\n"
		     "      --from TIME       only polls starting at TIME or later (since the first poll,\n"
		     "                        as report counts: 1.5s, 200ms, 30us, 100ns)\n"
		     "      --to TIME         only polls ending by TIME\n"
		     "      --task ID         only this task's polls and track (ids of report --tasks; repeatable)\n"
		     "      --thread TID      only polls on this thread (repeatable)\n"
		     "      --compression-level N  perfetto: deflate level of the packet bundles, 0 (plain\n"
		     "                        packets) to 12 (smallest, slowest); default 1\n"
		     "      --group-by KIND   profiles: what the stacks are rooted at: task (default), function\n"
		     "                        (the outermost future) or thread\n"
		     "      --weight KIND     folded, svg: samples (default: the on-CPU samples of `asynctrace\n"
		     "                        profile`) or poll-time (each poll's own time, in ns; any trace)\n"
		     "  Wakes are kept when both their ends are; cancellations when their task and time are.\n");
}

/* --from, --to, --task, --thread. Returns 0, or -1 after saying why. */
static int parse_filter_option(struct export_options *o, int c, const char *arg)
{
	static const char *const names[] = { [0] = "from", [1] = "to", [2] = "task", [3] = "thread" };
	int err;

	switch (c) {
	case 0: err = export_filter__parse_time(arg, &o->filter.from_ns); break;
	case 1: err = export_filter__parse_time(arg, &o->filter.to_ns); break;
	case 2: err = export_filter__add_task(&o->filter, arg); break;
	default: err = export_filter__add_thread(&o->filter, arg); break;
	}
	o->filtered = true;
	if (err == -ENOMEM)
		report_error("export: out of memory");
	else if (err && c <= 1)
		report_error("export: --%s wants a time since the first poll with its unit (1.5s, 200ms, 30us, "
			     "100ns), not '%s'", names[c], arg);
	else if (err)
		report_error("export: --%s wants a positive integer id, not '%s'", names[c], arg);
	return err ? -1 : 0;
}

static int parse_group_by(struct export_options *o, const char *arg)
{
	static const char *const kinds[] = {
		[PROFILE_BY_TASK] = "task", [PROFILE_BY_FUNCTION] = "function", [PROFILE_BY_THREAD] = "thread",
	};

	for (int i = 0; i < (int)(sizeof(kinds) / sizeof(kinds[0])); i++)
		if (!strcmp(arg, kinds[i])) {
			o->group_by = i;
			return 0;
		}
	report_error("export: --group-by wants task, function or thread, not '%s'", arg);
	return -1;
}

/* The level itself; its range is the format's, checked once both are known. */
static int parse_level(struct export_options *o, const char *arg)
{
	char *end;
	long level;

	errno = 0;
	level = strtol(arg, &end, 10);
	if (errno || end == arg || *end || level < 0 || level > 99) {
		report_error("export: --compression-level wants a level from 0 (none), not '%s'", arg);
		return -1;
	}
	o->level = (int)level;
	return 0;
}

static int parse_options(struct export_options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "from", required_argument, NULL, 0x100 },
		{ "to", required_argument, NULL, 0x101 },
		{ "task", required_argument, NULL, 0x102 },
		{ "thread", required_argument, NULL, 0x103 },
		{ "compression-level", required_argument, NULL, 0x104 },
		{ "group-by", required_argument, NULL, 0x105 },
		{ "weight", required_argument, NULL, 0x106 },
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
		case 0x100: case 0x101: case 0x102: case 0x103:
			if (parse_filter_option(o, c - 0x100, optarg))
				return -1;
			break;
		case 0x104:
			if (parse_level(o, optarg))
				return -1;
			break;
		case 0x105:
			if (parse_group_by(o, optarg))
				return -1;
			break;
		case 0x106:
			if (strcmp(optarg, "samples") && strcmp(optarg, "poll-time")) {
				report_error("export: --weight wants samples or poll-time, not '%s'", optarg);
				return -1;
			}
			o->poll_time = !strcmp(optarg, "poll-time");
			break;
		default: report_bad_option("export", c, argv); return -1;
		}
	}
	if (!o->format) {
		report_error("export: --format is required (see --help)");
		return -1;
	}
	if (o->level >= 0 && !o->format->write_at_level) {
		report_error("export: --compression-level is for --format perfetto, not %s", o->format->name);
		return -1;
	}
	if (o->group_by >= 0 && !o->format->write_grouped) {
		report_error("export: --group-by is for the profile formats (folded, pprof, speedscope, svg), not %s", o->format->name);
		return -1;
	}
	if (o->poll_time && !o->format->write_poll_time) {
		report_error("export: --weight poll-time is for --format folded or svg, not %s", o->format->name);
		return -1;
	}
	if (o->level > o->format->max_level) {
		report_error("export: --compression-level %d: %s goes from 0 to %d", o->level, o->format->name,
			     o->format->max_level);
		return -1;
	}
	if (optind != argc - 1) {
		report_error("export: give exactly one trace file (see --help)");
		return -1;
	}
	if (o->filter.from_ns > o->filter.to_ns) {
		report_error("export: --from is after --to (see --help)");
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
			       "(%llu MB): ui.perfetto.dev opens --format perfetto at that size, or export a part "
			       "(--from, --to, --task, --thread)",
			       format->name, (unsigned long long)trace->event_count,
			       (unsigned long long)(estimate >> 20),
			       (unsigned long long)(format->viewer_limit_bytes >> 20));
}

/* A --thread the trace has no thread of is a typo, not an empty export. */
static int check_threads(const struct export_options *o, const struct trace_file *trace)
{
	for (size_t i = 0; i < o->filter.thread_count; i++) {
		size_t j = 0;

		while (j < trace->thread_count && trace->threads[j].tid != o->filter.threads[i])
			j++;
		if (j == trace->thread_count && trace->thread_count) {
			report_error("export: --thread %u: %s has no such thread (report lists its threads)",
				     o->filter.threads[i], o->path);
			return -1;
		}
	}
	return 0;
}

/* The filter's task list, for the message about one that does not exist. */
static void report_missing_task(const struct export_options *o)
{
	char ids[256];
	size_t at = 0;

	ids[0] = '\0';
	for (size_t i = 0; i < o->filter.task_count && at < sizeof(ids); i++)
		at += (size_t)snprintf(ids + at, sizeof(ids) - at, "%s%u", i ? ", " : "", o->filter.tasks[i]);
	report_error("export: --task %s: %s has no such task (report --tasks lists them)", ids, o->path);
}

/* Returns the exit status. */
static int export_trace(struct export_options *o, struct trace_file *trace)
{
	const struct export_filter *filter = o->filtered ? &o->filter : NULL;
	FILE *out = stdout;
	int rc;

	if (check_threads(o, trace))
		return EXIT_USAGE;
	rc = export_filter__bind(&o->filter, trace);
	if (rc) {
		report_trace_error("export", o->path, rc);
		return 1;
	}
	if (!filter)
		warn_if_too_big(o->format, trace);
	if (o->output && !(out = private_file__fopen(o->output))) {
		report_error("export: cannot create %s: %s", o->output, private_file__strerror(-errno));
		return 1;
	}
	if (o->poll_time)
		rc = o->format->write_poll_time(trace, filter, out, o->group_by >= 0 ? o->group_by : PROFILE_BY_TASK);
	else if (o->level >= 0)
		rc = o->format->write_at_level(trace, filter, out, o->level);
	else if (o->group_by >= 0)
		rc = o->format->write_grouped(trace, filter, out, o->group_by);
	else
		rc = o->format->write(trace, filter, out);
	if (out != stdout && fclose(out) != 0 && !rc)
		rc = -errno;
	/* The formats read the events as they write: a trace that does not
	 * decode, or memory running out, is not the output's fault. */
	if (rc == -ESRCH)
		report_missing_task(o);
	else if (rc == -ENODATA)
		report_error("export: %s has no on-CPU samples (record it with `asynctrace profile`)", o->path);
	else if (rc == -EBADMSG || rc == -ENOMEM)
		report_trace_error("export", o->path, rc);
	else if (rc)
		report_error("export: cannot write %s: %s", o->output ? o->output : "standard output", strerror(-rc));
	return rc == -ESRCH ? EXIT_USAGE : rc ? 1 : 0;
}

int cmd_export(int argc, char **argv)
{
	struct export_options o = { .level = -1, .group_by = -1 };
	struct trace_file *trace;
	int rc;

	export_filter__init(&o.filter);
	rc = parse_options(&o, argc, argv);
	if (!rc && open_trace_for("export", o.path, &trace))
		rc = -2;
	if (!rc) {
		rc = export_trace(&o, trace);
		trace_file__close(trace);
	} else {
		rc = rc > 0 ? 0 : rc == -2 ? 1 : EXIT_USAGE;
	}
	export_filter__free(&o.filter);
	return rc;
}
