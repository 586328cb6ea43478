/* What the profile formats (folded, pprof, speedscope, svg) share: the
 * profile built and checked before anything is written, and which samples
 * a filter keeps. */
#ifndef ASYNCTRACE_EXPORT_PROFILE_COMMON_H
#define ASYNCTRACE_EXPORT_PROFILE_COMMON_H

#include <stdbool.h>
#include <stddef.h>

#include "export/filter.h"
#include "trace/poll_stacks.h"
#include "trace/profile.h"

/* The model and the profile in one pass; then -ESRCH when the filter names
 * a task the trace lacks, -ENODATA when it has no samples (nothing built
 * is left then). 0: both are the caller's, for export_profile__end. */
int export_profile__begin(struct profile *p, struct task_model *model, const struct trace_file *t,
			  const struct export_filter *filter);
void export_profile__end(struct profile *p, struct task_model *model);
/* --weight poll-time's start: the model and the polls' stacks (of the
 * polls the filter keeps) in one pass, then -ESRCH as above. 0: both are
 * the caller's, for export_poll_stacks__end. */
int export_poll_stacks__begin(struct poll_stacks *s, struct task_model *model, const struct trace_file *t,
			      const struct export_filter *filter, int group_by);
void export_poll_stacks__end(struct poll_stacks *s, struct task_model *model);
/* An on-CPU sample the filter keeps (switch records are not drawn). */
bool export_profile__keeps(const struct profile *p, const struct export_filter *filter, size_t sample);

#endif
