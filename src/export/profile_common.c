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

bool export_profile__keeps(const struct profile *p, const struct export_filter *filter, size_t sample)
{
	const struct trace_sample *s = &p->trace->samples[sample];

	return s->kind == TRACE_SAMPLE_ON_CPU && export_filter__keeps_sample(filter, s->tid, s->ts, p->contexts[sample].task);
}
