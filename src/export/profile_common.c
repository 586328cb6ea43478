/* The profile formats' common start (profile_common.h). */
#include "export/profile_common.h"

#include <errno.h>

int export_profile__begin(struct profile *p, struct task_model *model, const struct trace_file *t,
			  const struct export_filter *filter)
{
	int err = profile__build(p, model, t);

	if (err)
		return err;
	if (export_filter__missing_task(filter, model))
		err = -ESRCH;
	else if (!t->sample_hz)
		err = -ENODATA; /* recorded without samples */
	if (err)
		export_profile__end(p, model);
	return err;
}

void export_profile__end(struct profile *p, struct task_model *model)
{
	profile__free(p);
	task_model__free(model);
}

int export_poll_stacks__begin(struct poll_stacks *s, struct task_model *model, const struct trace_file *t,
			      const struct export_filter *filter, int group_by)
{
	int err = poll_stacks__build(s, model, t, (enum profile_group)group_by, export_filter__keeps_poll_of, filter);

	if (!err && export_filter__missing_task(filter, model)) {
		export_poll_stacks__end(s, model);
		err = -ESRCH;
	}
	return err;
}

void export_poll_stacks__end(struct poll_stacks *s, struct task_model *model)
{
	poll_stacks__free(s);
	task_model__free(model);
}

bool export_profile__keeps(const struct profile *p, const struct export_filter *filter, size_t sample)
{
	const struct trace_sample *s = &p->trace->samples[sample];

	return s->kind == TRACE_SAMPLE_ON_CPU && export_filter__keeps_sample(filter, s->tid, s->ts, p->contexts[sample].task);
}
