#include "export/filter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace/reader.h"
#include "util/array.h"

void export_filter__init(struct export_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->to_ns = UINT64_MAX;
	f->to_abs = UINT64_MAX;
}

void export_filter__free(struct export_filter *f)
{
	free(f->tasks);
	free(f->threads);
	export_filter__init(f);
}

static uint64_t unit_scale(const char *unit)
{
	static const struct { const char *name; uint64_t ns; } units[] = {
		{ "s", 1000000000ULL }, { "ms", 1000000ULL }, { "us", 1000ULL },
		{ "\xc2\xb5s", 1000ULL }, { "ns", 1ULL },
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(unit, units[i].name))
			return units[i].ns;
	return 0;
}

/* Decimal digits at *p into *v (v * 10 + digit, overflow checked). */
static int add_digit(uint64_t *v, char c)
{
	if (*v > (UINT64_MAX - (uint64_t)(c - '0')) / 10)
		return -ERANGE;
	*v = *v * 10 + (uint64_t)(c - '0');
	return 0;
}

/* Exactly, in integers: 1.5s is 1500000000 ns, not what a double makes of
 * it; digits past the nanosecond are refused rather than dropped. */
int export_filter__parse_time(const char *text, uint64_t *ns)
{
	const char *p = text, *unit;
	uint64_t whole = 0, frac = 0, scale, frac_scale = 1;
	size_t frac_digits = 0;

	for (; *p >= '0' && *p <= '9'; p++)
		if (add_digit(&whole, *p))
			return -ERANGE;
	if (p == text && *p != '.')
		return -EINVAL;
	unit = p;
	if (*p == '.') {
		for (unit = ++p; *unit >= '0' && *unit <= '9'; unit++)
			frac_digits++;
		if (!frac_digits && p - 1 == text)
			return -EINVAL;
	}
	scale = *unit ? unit_scale(unit) : (whole == 0 && frac_digits == 0 ? 1 : 0);
	if (!scale)
		return -EINVAL;
	for (size_t i = 0; i < frac_digits; i++) {
		if (frac_scale < scale) {
			frac = frac * 10 + (uint64_t)(p[i] - '0');
			frac_scale *= 10;
		} else if (p[i] != '0') {
			return -EINVAL;
		}
	}
	if (whole > UINT64_MAX / scale)
		return -ERANGE;
	if (frac * (scale / frac_scale) > UINT64_MAX - whole * scale)
		return -ERANGE;
	*ns = whole * scale + frac * (scale / frac_scale);
	return 0;
}

static int parse_id(const char *text, uint32_t *id)
{
	uint64_t v = 0;

	if (!*text)
		return -EINVAL;
	for (const char *p = text; *p; p++) {
		if (*p < '0' || *p > '9' || add_digit(&v, *p) || v > UINT32_MAX)
			return -EINVAL;
	}
	if (!v)
		return -EINVAL;
	*id = (uint32_t)v;
	return 0;
}

static int add_id(uint32_t **ids, size_t *count, const char *text)
{
	size_t capacity = *count;
	uint32_t id;

	if (parse_id(text, &id))
		return -EINVAL;
	if (ARRAY_RESERVE(*ids, capacity, *count + 1))
		return -ENOMEM;
	(*ids)[(*count)++] = id;
	return 0;
}

int export_filter__add_task(struct export_filter *f, const char *text)
{
	return add_id(&f->tasks, &f->task_count, text);
}

int export_filter__add_thread(struct export_filter *f, const char *text)
{
	return add_id(&f->threads, &f->thread_count, text);
}

struct first_poll {
	const struct trace_file *trace;
	uint64_t ts;
};

/* Stops the replay at the first poll's entry: report's "since the start". */
static int find_first_poll(const struct trace_event *e, void *ctx)
{
	struct first_poll *fp = ctx;

	if (e->kind != TRACE_EVENT_ENTRY || e->func_id >= fp->trace->function_count ||
	    fp->trace->functions[e->func_id].role != ROLE_POLL)
		return 0;
	fp->ts = e->ts;
	return 1;
}

int export_filter__bind(struct export_filter *f, const struct trace_file *trace)
{
	struct first_poll fp = { trace, trace->first_ts };
	int err;

	f->timed = f->from_ns || f->to_ns != UINT64_MAX;
	if (!f->timed)
		return 0;
	err = trace_file__for_each_event(trace, find_first_poll, &fp);
	if (err < 0)
		return err;
	f->from_abs = f->from_ns > UINT64_MAX - fp.ts ? UINT64_MAX : fp.ts + f->from_ns;
	f->to_abs = f->to_ns > UINT64_MAX - fp.ts ? UINT64_MAX : fp.ts + f->to_ns;
	return 0;
}

uint32_t export_filter__missing_task(const struct export_filter *f, const struct task_model *model)
{
	for (size_t i = 0; f && i < f->task_count; i++)
		if (f->tasks[i] > model->task_count)
			return f->tasks[i];
	return 0;
}

static bool has_id(const uint32_t *ids, size_t count, uint32_t id)
{
	for (size_t i = 0; i < count; i++)
		if (ids[i] == id)
			return true;
	return false;
}

bool export_filter__keeps_task(const struct export_filter *f, uint32_t id)
{
	return !f || !f->task_count || has_id(f->tasks, f->task_count, id);
}

bool export_filter__keeps_thread(const struct export_filter *f, uint32_t tid)
{
	return !f || !f->thread_count || has_id(f->threads, f->thread_count, tid);
}

static bool keeps_span(const struct export_filter *f, uint64_t start, uint64_t end)
{
	return !f || !f->timed || (start >= f->from_abs && end <= f->to_abs);
}

bool export_filter__keeps_task_track(const struct export_filter *f, const struct task *t)
{
	uint64_t last = t->ended > t->last_seen ? t->ended : t->last_seen;

	return export_filter__keeps_task(f, t->id) &&
	       (!f || !f->timed || (t->created <= f->to_abs && last >= f->from_abs));
}

bool export_filter__keeps_poll(const struct export_filter *f, const struct task_model *model,
			       const struct poll *p)
{
	const struct task *task;

	if (!f)
		return true;
	if (!keeps_span(f, p->start, p->end) || !export_filter__keeps_thread(f, p->tid))
		return false;
	if (!f->task_count)
		return true;
	task = task_model__find(model, p->task, p->tid, p->start);
	return task && has_id(f->tasks, f->task_count, task->id);
}

bool export_filter__keeps_sample(const struct export_filter *f, uint32_t tid, uint64_t ts, uint32_t task)
{
	if (!f)
		return true;
	if (!keeps_span(f, ts, ts) || !export_filter__keeps_thread(f, tid))
		return false;
	return !f->task_count || (task && has_id(f->tasks, f->task_count, task));
}

bool export_filter__keeps_poll_of(const struct poll *p, const struct task_model *model, const void *filter)
{
	return export_filter__keeps_poll(filter, model, p);
}

bool export_filter__keeps_wake(const struct export_filter *f, const struct wake *w)
{
	if (!keeps_span(f, w->ts, w->ts) || !export_filter__keeps_thread(f, w->tid) ||
	    !export_filter__keeps_task(f, w->target))
		return false;
	return !w->poll_ts || (keeps_span(f, w->poll_ts, w->poll_ts) && export_filter__keeps_thread(f, w->poll_tid));
}

bool export_filter__keeps_cancellation(const struct export_filter *f, const struct cancellation *c)
{
	return keeps_span(f, c->ts, c->ts) && export_filter__keeps_task(f, c->task);
}
