/* The task side of `report`: one row per task instance, the wake -> poll
 * latency histogram, and the warnings tokio-console users know. */
#include "cmd/report_tasks.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/format.h"

static uint64_t lifetime(const struct task *t, uint64_t end)
{
	uint64_t stop = t->ended ? t->ended : end;

	return stop > t->created ? stop - t->created : 0;
}

/* "src/bin/demo.rs:42": the last two components of the file are enough to
 * read; JSON keeps the whole path. */
static const char *short_site(const struct trace_file *trace, uint64_t addr, char *buf, size_t len)
{
	const struct trace_site *site = addr ? trace_file__site(trace, addr) : NULL;
	const char *file, *cut;

	if (!site || !site->file) {
		snprintf(buf, len, addr ? "0x%llx" : "-", (unsigned long long)addr);
		return buf;
	}
	file = site->file;
	cut = strrchr(file, '/');
	if (cut && cut > file) {
		const char *before = cut - 1;

		while (before > file && *before != '/')
			before--;
		file = *before == '/' ? before + 1 : before;
	}
	snprintf(buf, len, "%s:%u", file, site->line);
	return buf;
}

static const char *root_name(const struct task_model *m, const struct task *t)
{
	return t->name_func == NO_FUNCTION ? "?" : m->trace->functions[t->name_func].name;
}

/* Neither running nor scheduled: waiting for a wake. */
static uint64_t idle(const struct task *t, uint64_t end)
{
	uint64_t life = lifetime(t, end), used = t->busy_ns + t->sched_wait_ns;

	return life > used ? life - used : 0;
}

/* Where a task waits (pending) or waited when it was cancelled (aborted,
 * dropped at shutdown): the .await its last Pending poll stopped at. */
static bool parked(const struct task *t)
{
	return (t->state == TASK_PENDING || t->state == TASK_CANCELLED) && t->park_func != NO_FUNCTION;
}

static void print_task_row(const struct task_model *m, const struct task *t, uint64_t end)
{
	char busy[16], wait[16], idle_time[16], life[16], site[96];

	printf("%5u %6u %-9s %7llu %6llu %9s %9s %9s %9s  %-24s %s", t->id, t->parent, task_state__name(t->state),
	       (unsigned long long)t->polls, (unsigned long long)t->wakes,
	       format_duration(t->busy_ns, busy, sizeof(busy)),
	       format_duration(t->sched_wait_ns, wait, sizeof(wait)),
	       format_duration(idle(t, end), idle_time, sizeof(idle_time)),
	       format_duration(lifetime(t, end), life, sizeof(life)),
	       short_site(m->trace, t->spawn_site, site, sizeof(site)), root_name(m, t));
	if (parked(t))
		printf("  parked at %s line %u", m->trace->functions[t->park_func].name, t->park_line);
	putchar('\n');
}

void report_tasks__print(const struct task_model *m, const struct trace_summary *s, size_t top)
{
	size_t rows = top && top < m->task_count ? top : m->task_count;

	printf("\nTasks: %zu (%llu spawned while tracing)\n", m->task_count, (unsigned long long)m->spawns);
	printf("%5s %6s %-9s %7s %6s %9s %9s %9s %9s  %-24s %s\n", "TASK", "PARENT", "STATE", "POLLS", "WAKES",
	       "BUSY", "SCHEDULED", "IDLE", "LIFETIME", "SPAWNED AT", "FUTURE");
	for (size_t i = 0; i < rows; i++)
		print_task_row(m, &m->tasks[i], s->last_ts);
	if (rows < m->task_count)
		printf("  ... %zu more (--top)\n", m->task_count - rows);
}

void report_tasks__print_latency(const struct task_model *m)
{
	uint64_t max = 0, total = 0;
	char lo[16], hi[16];

	for (unsigned i = 0; i < LATENCY_BUCKETS; i++) {
		total += m->wake_latency[i];
		if (m->wake_latency[i] > max)
			max = m->wake_latency[i];
	}
	if (!total)
		return;
	printf("\nWake -> poll latency (%llu wakes answered by a poll)\n", (unsigned long long)total);
	for (unsigned i = 0; i < LATENCY_BUCKETS; i++) {
		unsigned bar;

		if (!m->wake_latency[i])
			continue;
		bar = (unsigned)((m->wake_latency[i] * 40 + max - 1) / max);
		printf("  %8s .. %-8s %8llu  %.*s\n", format_duration(1ULL << i, lo, sizeof(lo)),
		       format_duration(2ULL << i, hi, sizeof(hi)), (unsigned long long)m->wake_latency[i], bar,
		       "########################################");
	}
}

void report_tasks__print_warnings(const struct task_warnings *w, uint64_t long_poll_ns)
{
	char threshold[16];

	if (!w->long_polls && !w->woken_not_polled && !w->never_woken && !w->wakes_after_end &&
	    !w->self_wakes)
		return;
	printf("\nWarnings\n");
	if (w->long_polls)
		printf("  %llu polls took longer than %s: they block their worker thread\n",
		       (unsigned long long)w->long_polls, format_duration(long_poll_ns, threshold, sizeof(threshold)));
	if (w->self_wakes)
		printf("  %llu self-wakes: futures that woke their own task (yield loops, busy polling)\n",
		       (unsigned long long)w->self_wakes);
	if (w->woken_not_polled)
		printf("  %llu tasks were woken but never polled again\n", (unsigned long long)w->woken_not_polled);
	if (w->never_woken)
		printf("  %llu tasks returned Pending and were never woken (a lost waker?)\n",
		       (unsigned long long)w->never_woken);
	if (w->wakes_after_end)
		printf("  %llu wakes of tasks that had already completed\n", (unsigned long long)w->wakes_after_end);
}

static void json_task(struct json_writer *w, const struct task_model *m, const struct task *t, uint64_t end)
{
	const struct trace_site *site = t->spawn_site ? trace_file__site(m->trace, t->spawn_site) : NULL;

	json_writer__object_begin(w);
	json_writer__key(w, "id"); json_writer__uint(w, t->id);
	/* A runtime task, or the future a thread's block_on drives. */
	json_writer__key(w, "kind"); json_writer__string(w, t->ptr ? "task" : "block_on");
	json_writer__key(w, "parent"); json_writer__uint(w, t->parent);
	json_writer__key(w, "root"); json_writer__string(w, t->name_func == NO_FUNCTION ? NULL : root_name(m, t));
	json_writer__key(w, "outermost");
	json_writer__string(w, t->root_func == NO_FUNCTION ? NULL : m->trace->functions[t->root_func].name);
	json_writer__key(w, "spawn_site");
	if (site && site->file) {
		char location[4096];

		snprintf(location, sizeof(location), "%s:%u", site->file, site->line);
		json_writer__string(w, location);
	} else {
		json_writer__null(w);
	}
	json_writer__key(w, "polls"); json_writer__uint(w, t->polls);
	json_writer__key(w, "wakes"); json_writer__uint(w, t->wakes);
	json_writer__key(w, "wakes_by_ref"); json_writer__uint(w, t->wakes_by_ref);
	json_writer__key(w, "self_wakes"); json_writer__uint(w, t->self_wakes);
	json_writer__key(w, "busy_ns"); json_writer__uint(w, t->busy_ns);
	json_writer__key(w, "wait_ns"); json_writer__uint(w, t->sched_wait_ns);
	json_writer__key(w, "idle_ns"); json_writer__uint(w, idle(t, end));
	json_writer__key(w, "lifetime_ns"); json_writer__uint(w, lifetime(t, end));
	json_writer__key(w, "state"); json_writer__string(w, task_state__name(t->state));
	json_writer__key(w, "parked_at");
	if (parked(t)) {
		json_writer__object_begin(w);
		json_writer__key(w, "function"); json_writer__string(w, m->trace->functions[t->park_func].name);
		json_writer__key(w, "line"); json_writer__uint(w, t->park_line);
		json_writer__object_end(w);
	} else {
		json_writer__null(w);
	}
	json_writer__object_end(w);
}

static void json_wake_groups(struct json_writer *w, const struct task_model *m);

void report_tasks__json(struct json_writer *w, const struct task_model *m, const struct trace_summary *s,
			const struct task_warnings *warnings)
{
	json_writer__key(w, "tasks");
	json_writer__array_begin(w);
	for (size_t i = 0; i < m->task_count; i++)
		json_task(w, m, &m->tasks[i], s->last_ts);
	json_writer__array_end(w);
	json_wake_groups(w, m);
	json_writer__key(w, "wake_latency");
	json_writer__array_begin(w);
	for (unsigned i = 0; i < LATENCY_BUCKETS; i++) {
		if (!m->wake_latency[i])
			continue;
		json_writer__object_begin(w);
		json_writer__key(w, "lt_ns"); json_writer__uint(w, 2ULL << i);
		json_writer__key(w, "count"); json_writer__uint(w, m->wake_latency[i]);
		json_writer__object_end(w);
	}
	json_writer__array_end(w);
	json_writer__key(w, "warnings");
	json_writer__object_begin(w);
	json_writer__key(w, "long_polls"); json_writer__uint(w, warnings->long_polls);
	json_writer__key(w, "self_wakes"); json_writer__uint(w, warnings->self_wakes);
	json_writer__key(w, "woken_not_polled"); json_writer__uint(w, warnings->woken_not_polled);
	json_writer__key(w, "never_woken"); json_writer__uint(w, warnings->never_woken);
	json_writer__key(w, "wakes_after_end"); json_writer__uint(w, warnings->wakes_after_end);
	json_writer__object_end(w);
}

void report_tasks__json_function(struct json_writer *w, const struct task_model *m,
				 const struct future_summary *f)
{
	const struct trace_function *fn = f->last_func == NO_FUNCTION ? NULL : &m->trace->functions[f->last_func];

	json_writer__key(w, "instances"); json_writer__uint(w, f->instances);
	json_writer__key(w, "cancelled"); json_writer__uint(w, f->cancelled);
	json_writer__key(w, "parked_at");
	json_writer__array_begin(w);
	for (size_t i = 0; i < f->park_count; i++) {
		const char *file = fn ? trace_function__await_file(fn, f->parks[i].line) : NULL;

		json_writer__object_begin(w);
		json_writer__key(w, "line"); json_writer__uint(w, f->parks[i].line);
		json_writer__key(w, "count"); json_writer__uint(w, f->parks[i].count);
		json_writer__key(w, "file");
		if (file)
			json_writer__string(w, file);
		else
			json_writer__null(w);
		json_writer__object_end(w);
	}
	json_writer__array_end(w);
}

static void json_wake_groups(struct json_writer *w, const struct task_model *m)
{
	struct wake_group *groups = NULL;
	size_t n = 0;

	json_writer__key(w, "wakes");
	json_writer__array_begin(w);
	if (task_model__wake_groups(m, &groups, &n))
		json_writer__fail(w, -ENOMEM);
	for (size_t g = 0; g < n; g++) {
		char from[4200];
		const char *thread = trace_file__thread_name(m->trace, groups[g].tid);

		if (groups[g].self)
			snprintf(from, sizeof(from), "self");
		else if (groups[g].waker_func != NO_FUNCTION)
			snprintf(from, sizeof(from), "task:%s", m->trace->functions[groups[g].waker_func].name);
		else
			snprintf(from, sizeof(from), "thread:%s", thread ? thread : "?");
		json_writer__object_begin(w);
		json_writer__key(w, "target");
		json_writer__string(w, groups[g].target_func == NO_FUNCTION ? NULL
						     : m->trace->functions[groups[g].target_func].name);
		json_writer__key(w, "from"); json_writer__string(w, from);
		json_writer__key(w, "kind"); json_writer__string(w, groups[g].by_ref ? "by_ref" : "by_val");
		json_writer__key(w, "count"); json_writer__uint(w, groups[g].count);
		json_writer__object_end(w);
	}
	json_writer__array_end(w);
	free(groups);
}
