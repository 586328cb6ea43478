/* asynctrace tree: each task's async call tree — which future polled which,
 * join!/select! children as siblings, cancelled futures — with counts, busy
 * time and wait time per node, like `uftrace graph` but per task. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "trace/forest.h"
#include "trace/tasks.h"
#include "util/error.h"
#include "util/format.h"
#include "util/json.h"

struct tree_options {
	const char *path;
	long task;   /* 0: every kind of task, merged */
	int json;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: asynctrace tree [--task ID] [--json] TRACE\n"
		"  --task ID   the tree of one task instance (ids as in `report --tasks`)\n"
		"  --json      nested objects {\"name\", \"polls\", \"busy_ns\", \"children\": [...]}\n"
		"Without --task, tasks whose root futures run the same function are merged.\n");
}

static int parse_options(struct tree_options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "task", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char *end;
	int c;

	optind = 1;
	opterr = 0; /* report_bad_option says it, in one line */
	while ((c = getopt_long(argc, argv, ":t:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			o->task = strtol(optarg, &end, 10);
			if (*end || o->task <= 0) {
				report_error("tree: --task wants a task id (see `report --tasks`), not '%s'", optarg);
				return -1;
			}
			break;
		case 'j': o->json = 1; break;
		case 'h': usage(stdout); return 1;
		default: report_bad_option("tree", c, argv); return -1;
		}
	}
	if (optind != argc - 1) {
		report_error("tree: give exactly one trace file (see --help)");
		return -1;
	}
	o->path = argv[optind];
	return 0;
}

static void print_node(const struct task_forest *f, uint32_t index, const char *prefix, int last, int root)
{
	const struct forest_node *m = &f->nodes[index];
	const struct trace_function *fn = &f->model->trace->functions[m->sum.func_id];
	char busy[16], wait[16], child_prefix[512];

	printf("%s%s%s", prefix, root ? "" : last ? "└─ " : "├─ ", fn->name);
	if (fn->flags & TRACE_FUNCTION_INLINED)
		printf("  [inlined]");
	if (root && m->tasks > 1)
		printf("  [%u tasks]", m->tasks);
	printf("  polls %llu (%llu ready, %llu pending", (unsigned long long)m->sum.polls,
	       (unsigned long long)m->sum.ready, (unsigned long long)m->sum.pending);
	if (m->sum.unwound)
		printf(", %llu unwound", (unsigned long long)m->sum.unwound);
	printf(")  busy %s  wait %s", format_duration(m->sum.busy_ns, busy, sizeof(busy)),
	       format_duration(m->sum.wait_ns, wait, sizeof(wait)));
	if (m->tasks == 1 && m->sum.last_ready)
		printf("  done +%s", format_duration(task_forest__done_after(f, m), busy, sizeof(busy)));
	if (m->sum.instances > 1 || m->sum.cancelled)
		printf("  instances %llu", (unsigned long long)m->sum.instances);
	if (m->sum.cancelled)
		printf("  CANCELLED %llu", (unsigned long long)m->sum.cancelled);
	if (tree_node__top_park_line(&m->sum)) {
		/* The .await's line, in the function's own file (a macro's
		 * .await, in join!/select!, is in the macro's file instead). */
		uint32_t line = tree_node__top_park_line(&m->sum);
		const char *path = trace_function__await_file(fn, line);
		const char *file = path ? strrchr(path, '/') : NULL;

		printf("  parked at %s:%u", file ? file + 1 : path ? path : "line", line);
	}
	putchar('\n');
	snprintf(child_prefix, sizeof(child_prefix), "%s%s", prefix, root ? "" : last ? "   " : "│  ");
	for (uint32_t c = m->sum.first_child; c != NO_FUNCTION; c = f->nodes[c].sum.next)
		print_node(f, c, child_prefix, f->nodes[c].sum.next == NO_FUNCTION, 0);
}

static void json_node(struct json_writer *w, const struct task_forest *f, uint32_t index)
{
	const struct forest_node *m = &f->nodes[index];

	json_writer__object_begin(w);
	json_writer__key(w, "name");
	json_writer__string(w, f->model->trace->functions[m->sum.func_id].name);
	json_writer__key(w, "inlined");
	json_writer__bool(w, (f->model->trace->functions[m->sum.func_id].flags & TRACE_FUNCTION_INLINED) != 0);
	json_writer__key(w, "tasks"); json_writer__uint(w, m->tasks);
	json_writer__key(w, "polls"); json_writer__uint(w, m->sum.polls);
	json_writer__key(w, "ready"); json_writer__uint(w, m->sum.ready);
	json_writer__key(w, "pending"); json_writer__uint(w, m->sum.pending);
	json_writer__key(w, "unwound"); json_writer__uint(w, m->sum.unwound);
	json_writer__key(w, "instances"); json_writer__uint(w, m->sum.instances);
	json_writer__key(w, "cancelled"); json_writer__uint(w, m->sum.cancelled);
	json_writer__key(w, "busy_ns"); json_writer__uint(w, m->sum.busy_ns);
	json_writer__key(w, "wait_ns"); json_writer__uint(w, m->sum.wait_ns);
	json_writer__key(w, "parked_line"); json_writer__uint(w, tree_node__top_park_line(&m->sum));
	/* ns from the root's first poll to this node's last Ready (0: none) */
	json_writer__key(w, "done_after_ns"); json_writer__uint(w, m->sum.last_ready ? task_forest__done_after(f, m) : 0);
	json_writer__key(w, "children");
	json_writer__array_begin(w);
	for (uint32_t c = m->sum.first_child; c != NO_FUNCTION; c = f->nodes[c].sum.next)
		json_node(w, f, c);
	json_writer__array_end(w);
	json_writer__object_end(w);
}

static int print_forest(const struct task_forest *f, int json)
{
	struct json_writer w;

	if (!json) {
		for (size_t i = 0; i < f->root_count; i++) {
			if (i)
				putchar('\n');
			print_node(f, f->roots[i], "", 1, 1);
		}
		return 0;
	}
	json_writer__init(&w, stdout, 2);
	json_writer__object_begin(&w);
	json_writer__key(&w, "trees");
	json_writer__array_begin(&w);
	for (size_t i = 0; i < f->root_count; i++)
		json_node(&w, f, f->roots[i]);
	json_writer__array_end(&w);
	json_writer__object_end(&w);
	return json_writer__finish(&w);
}

int cmd_tree(int argc, char **argv)
{
	struct tree_options o = { 0 };
	struct task_model model;
	struct trace_file *trace;
	struct task_forest forest = { 0 };
	int rc = parse_options(&o, argc, argv);

	if (rc)
		return rc > 0 ? 0 : EXIT_USAGE;
	if (open_trace_for("tree", o.path, &trace))
		return 1;
	rc = task_model__build(&model, trace, 0);
	if (!rc)
		rc = task_forest__build(&forest, &model, (uint32_t)o.task);
	if (rc) {
		report_trace_error("tree", o.path, rc);
	} else if (o.task && !forest.root_count) {
		report_error("tree: %s: no task %ld with polls (see `report --tasks`)", o.path, o.task);
		rc = -ENOENT;
	} else {
		rc = print_forest(&forest, o.json);
	}
	task_forest__free(&forest);
	task_model__free(&model);
	trace_file__close(trace);
	return rc ? 1 : 0;
}
