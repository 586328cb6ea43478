/* asynctrace report: per-function poll counts and durations, per-thread
 * busy time, the longest polls. */
#include <getopt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "arch/arch.h"
#include "cmd/cmd.h"
#include "cmd/report_profile.h"
#include "cmd/report_tasks.h"
#include "trace/reader.h"
#include "trace/summary.h"
#include "util/error.h"
#include "util/format.h"
#include "util/json.h"

#define DEFAULT_LONGEST 10
#define DEFAULT_LONG_POLL_MS ((int)(LONG_POLL_NS_DEFAULT / 1000000))

struct report_options {
	const char *path;
	int json;
	int tasks;           /* the per-task section in text output */
	enum summary_sort sort;
	long top;            /* function rows; 0 = all */
	uint64_t long_poll_ns;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: asynctrace report [options] TRACE\n"
		"  --json         one JSON object instead of tables\n"
		"  --sort KEY     order functions by total (default), polls, mean, max, p99 or name\n"
		"  --top N        show the first N functions (and tasks) and the N longest polls\n"
		"  --tasks        one row per task: spawn site, polls, wakes, busy, waiting, lifetime,\n"
		"                 state, where a pending (or cancelled) task is parked; wake -> poll latency\n"
		"  --long-poll MS polls longer than this are warned about (default %d)\n",
		DEFAULT_LONG_POLL_MS);
}

static int parse_options(struct report_options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "sort", required_argument, NULL, 's' },
		{ "top", required_argument, NULL, 'n' },
		{ "tasks", no_argument, NULL, 'T' },
		{ "long-poll", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char *end;
	double ms;
	int c, key;

	o->sort = SORT_TOTAL;
	o->long_poll_ns = DEFAULT_LONG_POLL_MS * 1000000ULL;
	optind = 1;
	opterr = 0; /* report_bad_option says it, in one line */
	while ((c = getopt_long(argc, argv, ":js:n:hTL:", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': o->json = 1; break;
		case 's':
			key = summary_sort__parse(optarg);
			if (key < 0) {
				report_error("report: unknown sort key '%s' (total, polls, mean, max, p99, name)", optarg);
				return -1;
			}
			o->sort = key;
			break;
		case 'n':
			o->top = strtol(optarg, &end, 10);
			if (*end || o->top <= 0) {
				report_error("report: --top wants a positive number, not '%s'", optarg);
				return -1;
			}
			break;
		case 'T': o->tasks = 1; break;
		case 'L':
			ms = strtod(optarg, &end);
			if (*end || !(ms > 0) || ms > 1e9) {
				report_error("report: --long-poll wants milliseconds, not '%s'", optarg);
				return -1;
			}
			o->long_poll_ns = (uint64_t)(ms * 1e6);
			break;
		case 'h': usage(stdout); return 1;
		default: report_bad_option("report", c, argv); return -1;
		}
	}
	if (optind != argc - 1) {
		report_error("report: give exactly one trace file (see --help)");
		return -1;
	}
	o->path = argv[optind];
	return 0;
}

static const char *short_context(uint8_t context)
{
	static const char *const names[] = { "task", "compiler", "user", "anon", "function" };

	return context < sizeof(names) / sizeof(names[0]) ? names[context] : "?";
}

static const char *thread_label(const struct trace_file *t, uint32_t tid, char *buf, size_t len)
{
	const char *name = trace_file__thread_name(t, tid);

	snprintf(buf, len, "%s/%u", name ? name : "?", tid);
	return buf;
}

static void print_exit_status(int32_t status)
{
	if (status < 0)
		return;
	if (WIFEXITED(status))
		printf(", exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		printf(", killed by signal %d", WTERMSIG(status));
}

/* Inlined async bodies this recording left out (in process, without
 * --inlined): named on one line, with how to count them. */
static void print_unprobed(const struct trace_file *t)
{
	size_t count = 0;

	for (size_t i = 0; i < t->function_count; i++)
		if (t->functions[i].flags & TRACE_FUNCTION_UNPROBED)
			printf("%s%s", count++ ? ", " : "Unprobed: ", t->functions[i].name);
	if (count)
		printf("\n          %zu async fn%s inlined into other functions (release build) not traced: record "
		       "--inlined counts %s (uprobes: root, ~5 us a poll each)\n", count, count == 1 ? "" : "s",
		       count == 1 ? "it" : "them");
}

/* Release builds: what the [inlined] rows' numbers mean. */
static void print_inlined_note(const struct trace_file *t, const struct trace_summary *s)
{
	uint64_t polls = 0;
	size_t rows = 0;

	for (size_t i = 0; i < s->function_count; i++)
		if (s->functions[i].inlined && s->functions[i].polls) {
			polls += s->functions[i].polls;
			rows++;
		}
	if (rows)
		printf("Inlined:  %zu async fn%s inlined into other functions (release build), %llu polls: counted at "
		       "their state dispatch; each ends at an exit that shows the state it stored (Ready or "
		       "Pending), else with what encloses it (a duration bound, result unknown)\n", rows, rows == 1 ? "" : "s", (unsigned long long)polls);
	/* in process they are patched (cheap) unless record had to use uprobes */
	if (rows && t->meta.capture && strstr(t->meta.capture, "uprobe"))
		printf("          where their probes are uprobes (a kernel trap each), the polls around them last "
		       "that much longer; record --no-inlined for the program's own durations\n");
	for (size_t i = 0; i < t->function_count; i++)
		if (t->functions[i].flags & TRACE_FUNCTION_UNCOUNTED)
			printf("Uncounted: %s: inlined, and no state dispatch found in the release code: its polls are "
			       "not counted\n", t->functions[i].name);
	print_unprobed(t);
	for (size_t i = 0; i < s->function_count; i++)
		if (s->functions[i].approximate && s->functions[i].polls)
			printf("Approx.:  %s: a loop in the function it is inlined into re-enters it past its state "
			       "dispatch: polls that begin there are not counted\n", s->functions[i].name);
}

static void print_header(const struct trace_file *t, const struct trace_summary *s)
{
	const struct poll_builder_stats *st = &s->stats;
	char span[32];

	if (t->meta.command && *t->meta.command)
		printf("Command:  %s\n", t->meta.command);
	printf("Target:   %s (pid %u, %s)\n", t->meta.target_path ? t->meta.target_path : "?",
	       t->meta.pid, arch_machine_name(t->meta.machine));
	if (t->meta.capture && *t->meta.capture)
		printf("Capture:  %s\n", t->meta.capture);
	printf("Recorded: %llu events", (unsigned long long)t->trailer.events);
	if (t->cut_short) /* no trailer: neither the loss nor the exit is known */
		printf(" kept, loss unknown");
	else
		printf(", %llu lost", (unsigned long long)t->trailer.lost);
	printf(", polls spanning %s; ended: %s", format_duration(s->last_ts - s->first_ts, span, sizeof(span)),
	       trace_end_reason__name(t->trailer.end_reason));
	if (!t->cut_short)
		print_exit_status(t->trailer.exit_status);
	/* In an import, an unwound poll is one whose caller's exit ended it
	 * (a log missing its exit), not a panic. */
	printf("\nPolls:    %llu (%llu %s, %llu unfinished)\n", (unsigned long long)st->polls,
	       (unsigned long long)st->unwound,
	       t->trailer.end_reason == TRACE_END_IMPORTED ? "ended with their caller" : "unwound by panics",
	       (unsigned long long)st->unfinished);
	print_inlined_note(t, s);
	if (t->trailer.lost)
		printf("WARNING:  %llu events were lost while recording: counts below are too low\n",
		       (unsigned long long)t->trailer.lost);
	if (st->orphan_exits || st->bad_events)
		printf("Note:     %llu exits without an entry (probes attached mid-poll), %llu malformed events skipped\n",
		       (unsigned long long)st->orphan_exits, (unsigned long long)st->bad_events);
}

static void print_functions(const struct trace_file *t, const struct trace_summary *s, size_t rows)
{
	char total[16], mean[16], p50[16], p99[16], max[16];

	printf("\n%8s %7s %8s %7s %9s %9s %9s %9s %9s  %-8s %s\n", "POLLS", "READY", "PENDING",
	       "UNWOUND", "TOTAL", "MEAN", "P50", "P99", "MAX", "CONTEXT", "FUNCTION");
	for (size_t i = 0; i < rows; i++) {
		const struct function_summary *f = &s->functions[i];
		const struct trace_function *fn = &t->functions[f->first_func_id];

		if (!f->polls)
			continue;
		printf("%8llu %7llu %8llu %7llu %9s %9s %9s %9s %9s  %-8s %s",
		       (unsigned long long)f->polls, (unsigned long long)f->ready,
		       (unsigned long long)f->pending, (unsigned long long)f->unwound,
		       format_duration(f->total_ns, total, sizeof(total)),
		       format_duration(f->mean_ns, mean, sizeof(mean)),
		       format_duration(f->p50_ns, p50, sizeof(p50)),
		       format_duration(f->p99_ns, p99, sizeof(p99)),
		       format_duration(f->max_ns, max, sizeof(max)), short_context(fn->context), f->name);
		if (fn->source_file)
			printf("  (%s:%u)", fn->source_file, fn->source_line);
		if (f->inlined)
			printf("  [inlined%s%s]", f->inlined < f->copies ? " in part" : "",
			       f->approximate ? ", count approximate" : "");
		putchar('\n');
	}
}

static void print_threads(const struct trace_file *t, const struct trace_summary *s)
{
	char busy[16], label[48];

	printf("\n%-28s %8s %9s\n", "THREAD", "POLLS", "BUSY");
	for (size_t i = 0; i < s->thread_count; i++)
		printf("%-28s %8llu %9s\n", thread_label(t, s->threads[i].tid, label, sizeof(label)),
		       (unsigned long long)s->threads[i].polls,
		       format_duration(s->threads[i].busy_ns, busy, sizeof(busy)));
}

static void print_longest(const struct trace_file *t, const struct trace_summary *s)
{
	char duration[16], at[16], label[48];

	printf("\n%9s %10s %-8s %-24s %s\n", "DURATION", "AT", "RESULT", "THREAD", "FUNCTION");
	for (size_t i = 0; i < s->longest_count; i++) {
		const struct longest_poll *l = &s->longest[i];

		printf("%9s %10s %-8s %-24s %s\n", format_duration(l->duration_ns, duration, sizeof(duration)),
		       format_duration(l->poll.start - s->first_ts, at, sizeof(at)),
		       l->poll.end_kind == POLL_END_UNWOUND ? "unwound" : poll_result__name(l->poll.result),
		       thread_label(t, l->poll.tid, label, sizeof(label)), t->functions[l->poll.func_id].name);
	}
}

static void json_function(struct json_writer *w, const struct trace_file *t, const struct function_summary *f,
			  const struct future_summary *futures, const struct task_model *m)
{
	const struct trace_function *fn = &t->functions[f->first_func_id];

	json_writer__object_begin(w);
	json_writer__key(w, "name"); json_writer__string(w, f->name);
	json_writer__key(w, "context"); json_writer__string(w, context_class__name(fn->context));
	json_writer__key(w, "address"); json_writer__hex(w, fn->addr);
	json_writer__key(w, "copies"); json_writer__uint(w, f->copies);
	json_writer__key(w, "inlined_copies"); json_writer__uint(w, f->inlined);
	json_writer__key(w, "approximate_copies"); json_writer__uint(w, f->approximate);
	json_writer__key(w, "polls"); json_writer__uint(w, f->polls);
	json_writer__key(w, "ready"); json_writer__uint(w, f->ready);
	json_writer__key(w, "pending"); json_writer__uint(w, f->pending);
	json_writer__key(w, "result_unknown"); json_writer__uint(w, f->unknown);
	json_writer__key(w, "unwound"); json_writer__uint(w, f->unwound);
	json_writer__key(w, "unfinished"); json_writer__uint(w, f->unfinished);
	json_writer__key(w, "total_ns"); json_writer__uint(w, f->total_ns);
	json_writer__key(w, "mean_ns"); json_writer__uint(w, f->mean_ns);
	json_writer__key(w, "p50_ns"); json_writer__uint(w, f->p50_ns);
	json_writer__key(w, "p99_ns"); json_writer__uint(w, f->p99_ns);
	json_writer__key(w, "max_ns"); json_writer__uint(w, f->max_ns);
	json_writer__key(w, "file"); json_writer__string(w, fn->source_file);
	json_writer__key(w, "line"); json_writer__uint(w, fn->source_line);
	report_tasks__json_function(w, m, &futures[f->first_func_id]);
	json_writer__object_end(w);
}

static void json_threads(struct json_writer *w, const struct trace_summary *s)
{
	json_writer__key(w, "threads");
	json_writer__array_begin(w);
	for (size_t i = 0; i < s->thread_count; i++) {
		json_writer__object_begin(w);
		json_writer__key(w, "tid"); json_writer__uint(w, s->threads[i].tid);
		json_writer__key(w, "name"); json_writer__string(w, s->threads[i].name);
		json_writer__key(w, "polls"); json_writer__uint(w, s->threads[i].polls);
		json_writer__key(w, "busy_ns"); json_writer__uint(w, s->threads[i].busy_ns);
		json_writer__object_end(w);
	}
	json_writer__array_end(w);
}

static void json_longest(struct json_writer *w, const struct trace_file *t, const struct trace_summary *s)
{
	json_writer__key(w, "longest");
	json_writer__array_begin(w);
	for (size_t i = 0; i < s->longest_count; i++) {
		const struct poll *p = &s->longest[i].poll;

		json_writer__object_begin(w);
		json_writer__key(w, "function"); json_writer__string(w, t->functions[p->func_id].name);
		json_writer__key(w, "tid"); json_writer__uint(w, p->tid);
		json_writer__key(w, "start_ns"); json_writer__uint(w, p->start - s->first_ts);
		json_writer__key(w, "duration_ns"); json_writer__uint(w, s->longest[i].duration_ns);
		json_writer__key(w, "result");
		json_writer__string(w, p->end_kind == POLL_END_UNWOUND ? "unwound" : poll_result__name(p->result));
		json_writer__object_end(w);
	}
	json_writer__array_end(w);
}

/* The samples of a profiled trace, joined with its polls in the same pass. */
struct report_profile {
	bool on;
	struct profile profile;
	struct profile_summary summary;
};

static int print_json(const struct report_profile *rp, const struct trace_file *t, const struct trace_summary *s, size_t rows,
		      const struct task_model *m, const struct task_warnings *warnings)
{
	struct future_summary *futures = NULL;
	struct json_writer w;
	int err;

	if (task_model__future_summaries(m, &futures))
		return -ENOMEM;

	json_writer__init(&w, stdout, 2);
	json_writer__object_begin(&w);
	json_writer__key(&w, "target"); json_writer__string(&w, t->meta.target_path);
	json_writer__key(&w, "command"); json_writer__string(&w, t->meta.command);
	json_writer__key(&w, "pid"); json_writer__uint(&w, t->meta.pid);
	json_writer__key(&w, "capture"); json_writer__string(&w, t->meta.capture);
	json_writer__key(&w, "events"); json_writer__uint(&w, t->trailer.events);
	json_writer__key(&w, "lost"); json_writer__uint(&w, t->trailer.lost);
	json_writer__key(&w, "cut_short"); json_writer__bool(&w, t->cut_short);
	json_writer__key(&w, "end_reason"); json_writer__string(&w, trace_end_reason__name(t->trailer.end_reason));
	json_writer__key(&w, "exit_status"); json_writer__int(&w, t->trailer.exit_status);
	json_writer__key(&w, "duration_ns"); json_writer__uint(&w, s->last_ts - s->first_ts);
	json_writer__key(&w, "polls"); json_writer__uint(&w, s->stats.polls);
	json_writer__key(&w, "unwound"); json_writer__uint(&w, s->stats.unwound);
	json_writer__key(&w, "unfinished"); json_writer__uint(&w, s->stats.unfinished);
	json_writer__key(&w, "orphan_exits"); json_writer__uint(&w, s->stats.orphan_exits);
	json_writer__key(&w, "uncounted_inlined");
	json_writer__array_begin(&w);
	for (size_t i = 0; i < t->function_count; i++)
		if (t->functions[i].flags & TRACE_FUNCTION_UNCOUNTED)
			json_writer__string(&w, t->functions[i].name);
	json_writer__array_end(&w);
	json_writer__key(&w, "unprobed_inlined");
	json_writer__array_begin(&w);
	for (size_t i = 0; i < t->function_count; i++)
		if (t->functions[i].flags & TRACE_FUNCTION_UNPROBED)
			json_writer__string(&w, t->functions[i].name);
	json_writer__array_end(&w);
	json_writer__key(&w, "functions");
	json_writer__array_begin(&w);
	for (size_t i = 0; i < rows; i++)
		if (s->functions[i].polls)
			json_function(&w, t, &s->functions[i], futures, m);
	json_writer__array_end(&w);
	json_threads(&w, s);
	json_longest(&w, t, s);
	report_tasks__json(&w, m, s, warnings);
	if (rp->on) {
		report_profile__json(&w, &rp->profile, &rp->summary);
		report_profile__json_blocking(&w, &rp->profile);
	}
	json_writer__object_end(&w);
	err = json_writer__finish(&w);
	free(futures);
	return err;
}

static int print_report(const struct report_options *o, const struct trace_file *trace,
			struct trace_summary *summary, const struct task_model *model, const struct report_profile *rp)
{
	struct task_warnings warnings;
	size_t rows;

	trace_summary__sort(summary, o->sort);
	rows = o->top && (size_t)o->top < summary->function_count ? (size_t)o->top : summary->function_count;
	task_model__warnings(model, summary->long_polls, &warnings);
	if (o->json)
		return print_json(rp, trace, summary, rows, model, &warnings);
	print_header(trace, summary);
	if (!summary->stats.polls) {
		printf("\nNo polls were recorded: the probed functions never ran while tracing.\n");
		return 0;
	}
	print_functions(trace, summary, rows);
	print_threads(trace, summary);
	print_longest(trace, summary);
	if (o->tasks) {
		report_tasks__print(model, summary, (size_t)o->top);
		report_tasks__print_latency(model);
	}
	report_tasks__print_warnings(&warnings, o->long_poll_ns);
	if (rp->on)
		report_profile__print(&rp->profile, &rp->summary, (size_t)o->top);
	return 0;
}

/* The summary and the task model from one pass over the events. */
static int analyse(const struct trace_file *trace, const struct report_options *o, struct trace_summary *summary,
		   struct task_model *model, struct report_profile *rp)
{
	struct trace_consumer consumers[3];
	struct poll_builder_stats stats;
	int rc = trace_summary__init(summary, trace, o->top ? (size_t)o->top : DEFAULT_LONGEST, o->long_poll_ns);

	if (rc)
		return rc;
	/* The summary lists no task: fold them as they go (memory follows
	 * live tasks); the task list and JSON keep every task. */
	/* Samples name their task by id: ids are not reused then. */
	rc = task_model__init(model, trace, o->tasks || o->json || trace->sample_hz ? 0 : TASK_MODEL_FOLD);
	if (rc) {
		trace_summary__free(summary);
		return rc;
	}
	if (trace->sample_hz && (rc = profile__init(&rp->profile, trace, model))) {
		task_model__free(model);
		trace_summary__free(summary);
		return rc;
	}
	rp->on = trace->sample_hz != 0;
	rp->profile.heavy_min_ns = o->long_poll_ns;
	consumers[0] = trace_summary__consumer(summary);
	consumers[1] = task_model__consumer(model);
	consumers[2] = profile__consumer(&rp->profile);
	rc = trace_file__pass(trace, consumers, rp->on ? 3 : 2, &stats);
	if (!rc)
		rc = trace_summary__finish(summary, &stats);
	if (!rc)
		rc = task_model__finish(model);
	if (!rc && rp->on)
		rc = profile__summarize(&rp->profile, &rp->summary);
	model->stats = stats;
	if (rc) {
		if (rp->on)
			profile__free(&rp->profile);
		rp->on = false;
		task_model__free(model);
		trace_summary__free(summary);
	}
	return rc;
}

int cmd_report(int argc, char **argv)
{
	struct report_options o = { 0 };
	struct trace_summary summary = { 0 };
	struct task_model model = { 0 };
	struct report_profile rp = { 0 };
	struct trace_file *trace;
	int rc = parse_options(&o, argc, argv);

	if (rc)
		return rc > 0 ? 0 : EXIT_USAGE;
	if (open_trace_for("report", o.path, &trace))
		return 1;
	rc = analyse(trace, &o, &summary, &model, &rp);
	if (rc)
		report_trace_error("report", o.path, rc);
	else if ((rc = print_report(&o, trace, &summary, &model, &rp)))
		report_error("report: cannot write the report: %s",
			     rc == -EINVAL ? "malformed JSON (a bug)" : strerror(rc == -EIO && errno ? errno : -rc));
	if (rp.on) {
		profile_summary__free(&rp.summary);
		profile__free(&rp.profile);
	}
	task_model__free(&model);
	trace_summary__free(&summary);
	trace_file__close(trace);
	return rc ? 1 : 0;
}
