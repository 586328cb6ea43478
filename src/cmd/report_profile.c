/* The profile part of `report` (report_profile.h). */
#include "cmd/report_profile.h"

#include <stdio.h>

#define DEFAULT_ROWS 10

static double percent(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static const char *task_name(const struct profile *p, uint32_t id)
{
	const struct task *t = p->model && id && id <= p->model->task_count ? &p->model->tasks[id - 1] : NULL;

	return t && t->name_func != NO_FUNCTION ? p->trace->functions[t->name_func].name : "?";
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
