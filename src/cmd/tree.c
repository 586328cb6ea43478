/* asynctrace tree: each task's async call tree — which future polled which,
 * join!/select! children as siblings, cancelled futures — with counts, busy
 * time and wait time per node, like `uftrace graph` but per task. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "trace/tasks.h"
#include "util/array.h"
#include "util/error.h"
#include "util/format.h"
#include "util/json.h"
#include "util/hash.h"

struct tree_options {
	const char *path;
	long task;   /* 0: every kind of task, merged */
	int json;
};

/* Trees of several tasks merged by position: tasks whose root futures run
 * the same function form one group. */
struct merged {
	struct tree_node sum;  /* counts summed; parent/first_child/next index merged nodes */
	uint32_t tasks;        /* tasks that reached this node */
	uint32_t last_task;
	uint32_t last_child;
};

struct forest {
	const struct task_model *model;
	struct merged *nodes;
	size_t count;
	size_t capacity;
	struct u64map index;   /* mix(group root func name, path) -> index + 1 */
	uint32_t *roots;       /* one per group */
	size_t root_count;
	size_t root_capacity;
	uint64_t group;        /* while merging one task: its group key */
	uint32_t task;
	uint32_t *stack;       /* merged index per depth while walking */
	size_t stack_capacity;
	int err;
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

static uint64_t name_key(const struct task_model *m, uint32_t func_id)
{
	return hash_string(m->trace->functions[func_id].name) | 1;
}

static void add_counts(struct tree_node *sum, const struct tree_node *n)
{
	sum->polls += n->polls;
	sum->ready += n->ready;
	sum->pending += n->pending;
	sum->unwound += n->unwound;
	sum->busy_ns += n->busy_ns;
	sum->wait_ns += n->wait_ns;
	sum->instances += n->instances;
	sum->cancelled += n->cancelled;
	if (n->last_ready > sum->last_ready)
		sum->last_ready = n->last_ready;
	if (!sum->first_start || n->first_start < sum->first_start)
		sum->first_start = n->first_start;
	for (unsigned i = 0; i < 4; i++)
		if (n->park_counts[i] && n->park_counts[i] >= sum->park_counts[0]) {
			sum->park_lines[0] = n->park_lines[i];
			sum->park_counts[0] = n->park_counts[i];
		}
}

static struct merged *merged_node(struct forest *f, const struct tree_node *n, unsigned depth)
{
	uint64_t key = (f->group * 0x9e3779b97f4a7c15ULL) ^ n->path;
	uintptr_t index = (uintptr_t)u64map_get(&f->index, key | 1);
	struct merged *m;

	if (index)
		return &f->nodes[index - 1];
	if (ARRAY_RESERVE(f->nodes, f->capacity, f->count + 1) ||
	    u64map_put(&f->index, key | 1, (void *)(uintptr_t)(f->count + 1))) {
		f->err = -ENOMEM;
		return NULL;
	}
	m = &f->nodes[f->count];
	memset(m, 0, sizeof(*m));
	m->sum.func_id = n->func_id;
	m->sum.parent = m->sum.first_child = m->sum.next = m->last_child = NO_FUNCTION;
	if (depth == 0) {
		if (ARRAY_RESERVE(f->roots, f->root_capacity, f->root_count + 1)) {
			f->err = -ENOMEM;
			return NULL;
		}
		f->roots[f->root_count++] = (uint32_t)f->count;
	} else {
		struct merged *parent = &f->nodes[f->stack[depth - 1]];

		m->sum.parent = f->stack[depth - 1];
		if (parent->last_child == NO_FUNCTION)
			parent->sum.first_child = (uint32_t)f->count;
		else
			f->nodes[parent->last_child].sum.next = (uint32_t)f->count;
		parent->last_child = (uint32_t)f->count;
	}
	return &f->nodes[f->count++];
}

static void merge_node(const struct tree_node *n, unsigned depth, void *ctx)
{
	struct forest *f = ctx;
	struct merged *m;

	if (f->err || ARRAY_RESERVE(f->stack, f->stack_capacity, depth + 1)) {
		f->err = f->err ? f->err : -ENOMEM;
		return;
	}
	m = merged_node(f, n, depth);
	if (!m)
		return;
	f->stack[depth] = (uint32_t)(m - f->nodes);
	add_counts(&m->sum, n);
	if (m->last_task != f->task) {
		m->tasks++;
		m->last_task = f->task;
	}
}

static int build_forest(struct forest *f, const struct task_model *model, long only_task)
{
	memset(f, 0, sizeof(*f));
	f->model = model;
	for (size_t i = 0; i < model->task_count && !f->err; i++) {
		const struct task *t = &model->tasks[i];

		if ((only_task && t->id != (uint32_t)only_task) || t->first_node == NO_FUNCTION)
			continue;
		f->task = t->id;
		/* One group per root function, or per task when one is asked for. */
		f->group = only_task ? t->id : name_key(model, model->nodes[t->first_node].func_id);
		task_model__walk_tree(model, t, merge_node, f);
	}
	return f->err;
}

static void free_forest(struct forest *f)
{
	free(f->nodes);
	free(f->roots);
	free(f->stack);
	u64map_free(&f->index);
}

/* When a node's last Ready came, from the start of its tree's root: in one
 * task's tree, which join! branch finished last. */
static uint64_t done_after(const struct forest *f, const struct merged *m)
{
	const struct merged *root = m;

	while (root->sum.parent != NO_FUNCTION)
		root = &f->nodes[root->sum.parent];
	return m->sum.last_ready > root->sum.first_start ? m->sum.last_ready - root->sum.first_start : 0;
}

static void print_node(const struct forest *f, uint32_t index, const char *prefix, int last, int root)
{
	const struct merged *m = &f->nodes[index];
	const struct trace_function *fn = &f->model->trace->functions[m->sum.func_id];
	char busy[16], wait[16], child_prefix[512];

	printf("%s%s%s", prefix, root ? "" : last ? "└─ " : "├─ ", fn->name);
	if (root && m->tasks > 1)
		printf("  [%u tasks]", m->tasks);
	printf("  polls %llu (%llu ready, %llu pending", (unsigned long long)m->sum.polls,
	       (unsigned long long)m->sum.ready, (unsigned long long)m->sum.pending);
	if (m->sum.unwound)
		printf(", %llu unwound", (unsigned long long)m->sum.unwound);
	printf(")  busy %s  wait %s", format_duration(m->sum.busy_ns, busy, sizeof(busy)),
	       format_duration(m->sum.wait_ns, wait, sizeof(wait)));
	if (m->tasks == 1 && m->sum.last_ready)
		printf("  done +%s", format_duration(done_after(f, m), busy, sizeof(busy)));
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

static void json_node(struct json_writer *w, const struct forest *f, uint32_t index)
{
	const struct merged *m = &f->nodes[index];

	json_writer__object_begin(w);
	json_writer__key(w, "name");
	json_writer__string(w, f->model->trace->functions[m->sum.func_id].name);
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
	json_writer__key(w, "done_after_ns"); json_writer__uint(w, m->sum.last_ready ? done_after(f, m) : 0);
	json_writer__key(w, "children");
	json_writer__array_begin(w);
	for (uint32_t c = m->sum.first_child; c != NO_FUNCTION; c = f->nodes[c].sum.next)
		json_node(w, f, c);
	json_writer__array_end(w);
	json_writer__object_end(w);
}

static int print_forest(const struct forest *f, int json)
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
	struct forest forest = { 0 };
	int rc = parse_options(&o, argc, argv);

	if (rc)
		return rc > 0 ? 0 : EXIT_USAGE;
	if (open_trace_for("tree", o.path, &trace))
		return 1;
	rc = task_model__build(&model, trace, 0);
	if (!rc)
		rc = build_forest(&forest, &model, o.task);
	if (rc) {
		report_trace_error("tree", o.path, rc);
	} else if (o.task && !forest.root_count) {
		report_error("tree: %s: no task %ld with polls (see `report --tasks`)", o.path, o.task);
		rc = -ENOENT;
	} else {
		rc = print_forest(&forest, o.json);
	}
	free_forest(&forest);
	task_model__free(&model);
	trace_file__close(trace);
	return rc ? 1 : 0;
}
