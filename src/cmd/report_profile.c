/* The profile part of `report` (report_profile.h). */
#include "cmd/report_profile.h"

#include <stdio.h>
#include <string.h>

#include "util/format.h"

#define DEFAULT_ROWS 10

static double percent(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static const char *task_name(const struct profile *p, uint32_t id)
{
	return p->model && id && id <= p->model->task_count ? task_model__task_name(p->model, &p->model->tasks[id - 1])
							     : "?";
}

/* The wait's stack, from where it entered the kernel outwards, on one line
 * (the first frames: the rest is the runtime's). */
static void print_stack(const struct profile *p, int64_t stack)
{
	const struct trace_sample *s = stack >= 0 ? &p->trace->samples[stack] : NULL;
	char hex[24];

	if (!s || !s->frame_count)
		return;
	printf("           at");
	for (uint32_t i = 0; i < s->frame_count && i < 6; i++)
		printf("%s %s", i ? " <" : "", profile__frame_name(p, p->trace->sample_frames[s->first_frame + i], hex, sizeof(hex)));
	printf("\n");
}

static void print_blocking(const struct profile *p, size_t rows)
{
	char d[32], off[32], at[32];

	printf("\nBlocking polls: %zu poll%s made %s thread wait %s or more (nothing else ran on it meanwhile)\n",
	       p->blocking_count, p->blocking_count == 1 ? "" : "s", p->blocking_count == 1 ? "its" : "their",
	       format_duration(BLOCKING_MIN_NS, d, sizeof(d)));
	if (!p->blocking_count)
		return;
	printf("   OFF-CPU   DURATION         AT  SYSCALLS            TASK  FUNCTION\n");
	for (size_t i = 0; i < p->blocking_count && i < rows; i++) {
		const struct blocking_poll *b = &p->blocking[i];
		char calls[140] = "";

		for (int k = 0; k < 4 && b->syscalls[k][0]; k++)
			snprintf(calls + strlen(calls), sizeof(calls) - strlen(calls), "%s%s", k ? "," : "",
				 b->syscalls[k]);
		printf("%10s %10s %10s  %-18s %5u  %s\n", format_duration(b->offcpu_ns, off, sizeof(off)),
		       format_duration(b->end - b->start, d, sizeof(d)),
		       format_duration(b->start - p->trace->first_ts, at, sizeof(at)), calls[0] ? calls : "?", b->task,
		       p->trace->functions[b->func_id].name);
		print_stack(p, b->stack);
	}
}

static void print_heavy(const struct profile *p, size_t rows)
{
	char min[32], on[32], d[32], at[32];

	printf("\nCPU-heavy polls: %zu poll%s ran on the CPU for %s or more without a break\n", p->heavy_count,
	       p->heavy_count == 1 ? "" : "s", format_duration(p->heavy_min_ns, min, sizeof(min)));
	if (!p->heavy_count)
		return;
	printf("    ON-CPU   DURATION         AT   TASK  FUNCTION\n");
	for (size_t i = 0; i < p->heavy_count && i < rows; i++) {
		const struct heavy_poll *h = &p->heavy[i];

		printf("%10s %10s %10s  %5u  %s\n", format_duration(h->oncpu_ns, on, sizeof(on)),
		       format_duration(h->end - h->start, d, sizeof(d)),
		       format_duration(h->start - p->trace->first_ts, at, sizeof(at)), h->task,
		       p->trace->functions[h->func_id].name);
	}
}

void report_profile__print(const struct profile *p, const struct profile_summary *s, size_t top)
{
	size_t rows = top ? top : DEFAULT_ROWS;

	printf("\nProfile:  %llu on-CPU samples at %u Hz (%llu lost): %.1f%% in tasks, %.1f%% in polls of no task, "
	       "%.1f%% outside polls (the runtime)\n",
	       (unsigned long long)s->samples, p->trace->sample_hz, (unsigned long long)p->trace->samples_lost,
	       percent(s->samples - s->outside_polls - s->outside_tasks, s->samples),
	       percent(s->outside_tasks, s->samples), percent(s->outside_polls, s->samples));
	if (s->task_count)
		printf("\n  SAMPLES       %%  TASK\n");
	for (size_t i = 0; i < s->task_count && i < rows; i++)
		printf("%9llu  %5.1f%%  task %u: %s\n", (unsigned long long)s->tasks[i].samples,
		       percent(s->tasks[i].samples, s->samples), s->tasks[i].id, task_name(p, s->tasks[i].id));
	if (s->function_count)
		printf("\n  SAMPLES       %%  INNERMOST FUTURE BEING POLLED\n");
	for (size_t i = 0; i < s->function_count && i < rows; i++)
		printf("%9llu  %5.1f%%  %s\n", (unsigned long long)s->functions[i].samples,
		       percent(s->functions[i].samples, s->samples), p->trace->functions[s->functions[i].id].name);
	if (p->has_switches) {
		print_blocking(p, rows);
		print_heavy(p, rows);
	}
}

/* Opens a listed poll's object with what every list says of it. */
static void json_poll(struct json_writer *w, const struct profile *p, uint32_t func_id, uint32_t task, uint32_t tid,
		      uint64_t start, uint64_t end)
{
	json_writer__object_begin(w);
	json_writer__key(w, "function");
	json_writer__string(w, p->trace->functions[func_id].name);
	json_writer__key(w, "task");
	json_writer__uint(w, task);
	json_writer__key(w, "tid");
	json_writer__uint(w, tid);
	json_writer__key(w, "poll_start_ns");
	json_writer__uint(w, start - p->trace->first_ts);
	json_writer__key(w, "duration_ns");
	json_writer__uint(w, end - start);
}

void report_profile__json_blocking(struct json_writer *w, const struct profile *p)
{
	char hex[24];

	if (!p->has_switches)
		return;
	json_writer__key(w, "blocking");
	json_writer__array_begin(w);
	for (size_t i = 0; i < p->blocking_count; i++) {
		const struct blocking_poll *b = &p->blocking[i];
		const struct trace_sample *s = b->stack >= 0 ? &p->trace->samples[b->stack] : NULL;

		json_poll(w, p, b->func_id, b->task, b->tid, b->start, b->end);
		json_writer__key(w, "offcpu_ns");
		json_writer__uint(w, b->offcpu_ns);
		json_writer__key(w, "waits");
		json_writer__uint(w, b->waits);
		json_writer__key(w, "syscalls");
		json_writer__array_begin(w);
		for (int k = 0; k < 4 && b->syscalls[k][0]; k++)
			json_writer__string(w, b->syscalls[k]);
		json_writer__array_end(w);
		json_writer__key(w, "stack");
		json_writer__array_begin(w);
		for (uint32_t f = 0; s && f < s->frame_count; f++)
			json_writer__string(w, profile__frame_name(p, p->trace->sample_frames[s->first_frame + f], hex, sizeof(hex)));
		json_writer__array_end(w);
		json_writer__object_end(w);
	}
	json_writer__array_end(w);
	json_writer__key(w, "cpu_heavy");
	json_writer__array_begin(w);
	for (size_t i = 0; i < p->heavy_count; i++) {
		const struct heavy_poll *h = &p->heavy[i];

		json_poll(w, p, h->func_id, h->task, h->tid, h->start, h->end);
		json_writer__key(w, "oncpu_ns");
		json_writer__uint(w, h->oncpu_ns);
		json_writer__object_end(w);
	}
	json_writer__array_end(w);
}

void report_profile__json(struct json_writer *w, const struct profile *p, const struct profile_summary *s)
{
	json_writer__key(w, "profile");
	json_writer__object_begin(w);
	json_writer__key(w, "hz");
	json_writer__uint(w, p->trace->sample_hz);
	json_writer__key(w, "samples");
	json_writer__uint(w, s->samples);
	json_writer__key(w, "lost");
	json_writer__uint(w, p->trace->samples_lost);
	json_writer__key(w, "outside_polls");
	json_writer__uint(w, s->outside_polls);
	json_writer__key(w, "outside_tasks");
	json_writer__uint(w, s->outside_tasks);
	json_writer__key(w, "tasks");
	json_writer__array_begin(w);
	for (size_t i = 0; i < s->task_count; i++) {
		json_writer__object_begin(w);
		json_writer__key(w, "task");
		json_writer__uint(w, s->tasks[i].id);
		json_writer__key(w, "name");
		json_writer__string(w, task_name(p, s->tasks[i].id));
		json_writer__key(w, "samples");
		json_writer__uint(w, s->tasks[i].samples);
		json_writer__object_end(w);
	}
	json_writer__array_end(w);
	json_writer__key(w, "functions");
	json_writer__array_begin(w);
	for (size_t i = 0; i < s->function_count; i++) {
		json_writer__object_begin(w);
		json_writer__key(w, "function");
		json_writer__string(w, p->trace->functions[s->functions[i].id].name);
		json_writer__key(w, "samples");
		json_writer__uint(w, s->functions[i].samples);
		json_writer__object_end(w);
	}
	json_writer__array_end(w);
	json_writer__object_end(w);
}
