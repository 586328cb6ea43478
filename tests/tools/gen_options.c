/* gen-trace's command line: options, their limits, --events as tasks. */
#include "gen_options.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(FILE *out)
{
	fprintf(out,
		"usage: gen-trace -o FILE [--events N | --tasks N] [options]\n"
		"  -o, --output FILE   the trace to write (format 3)\n"
		"  --events N          about N events (tasks chosen to fit; the exact count is in --truth)\n"
		"  --tasks N           N spawned tasks in all (default 100)\n"
		"  --polls P           polls per task, the last one Ready (default 10)\n"
		"  --threads T         worker threads, one event stream each (default 1)\n"
		"  --concurrent W      tasks alive at once on a thread (default 64)\n"
		"  --seed S            varies the durations (default 1)\n"
		"  --shell             tokio multi-thread style: each wave's task polls run inside the poll of a\n"
		"                      worker loop (BlockingTask), a runtime shell\n"
		"  --truth             print what report must find, as JSON, on stdout\n");
}

static int parse_number(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_option(struct options *o, int c, const char *arg)
{
	uint64_t v = 0;
	int err = c == 'o' || c == 't' || c == 'L' ? 0 : parse_number(arg, c == 'S' ? UINT64_MAX : 1ULL << 40, &v);

	if (err)
		return err;
	switch (c) {
	case 'o': o->out = arg; break;
	case 't': o->truth = true; break;
	case 'L': o->shell = true; break;
	case 'e': o->events = v; break;
	case 'n': o->tasks = v; break;
	case 'S': o->seed = v; break;
	case 'p': case 'T': case 'w':
		if (v == 0 || v > 1u << 24)
			return -EINVAL;
		*(c == 'p' ? &o->polls : c == 'T' ? &o->threads : &o->concurrent) = (uint32_t)v;
		break;
	default: return -EINVAL;
	}
	return 0;
}

/* Tasks for about `events` events: each task takes 13 events per poll
 * (12 of the chain, one wake when Pending, none on the last) + 3 (spawn,
 * allocation, free); each wave's main poll 2. */
static uint64_t tasks_for_events(const struct options *o)
{
	uint64_t per_task = 13ULL * o->polls + 2;
	uint64_t tasks = o->events / per_task;

	return tasks > o->threads ? tasks : o->threads;
}

int gen_options__parse(struct options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' }, { "events", required_argument, NULL, 'e' },
		{ "tasks", required_argument, NULL, 'n' }, { "polls", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 'T' }, { "concurrent", required_argument, NULL, 'w' },
		{ "seed", required_argument, NULL, 'S' }, { "truth", no_argument, NULL, 't' },
		{ "shell", no_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	int c, index = -1;

	*o = (struct options){ .tasks = 100, .polls = 10, .threads = 1, .concurrent = 64, .seed = 1 };
	opterr = 0;
	while ((c = getopt_long(argc, argv, "o:h", longopts, &index)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 1;
		}
		if (c == '?' || parse_option(o, c, optarg)) {
			if (c == '?')
				fprintf(stderr, "gen-trace: unknown option or missing value: %s", argv[optind - 1]);
			else
				fprintf(stderr, "gen-trace: bad value for --%s: %s", index >= 0 ? longopts[index].name : "?",
					optarg);
			fprintf(stderr, " (see gen-trace --help)\n");
			return -EINVAL;
		}
		index = -1;
	}
	if (!o->out || optind != argc) {
		fprintf(stderr, "gen-trace: %s (see gen-trace --help)\n", o->out ? "unexpected argument" : "-o FILE is required");
		return -EINVAL;
	}
	if (o->events)
		o->tasks = tasks_for_events(o);
	return 0;
}
