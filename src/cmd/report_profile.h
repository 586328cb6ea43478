/* The profile part of `report`: what the on-CPU samples say (see
 * report_profile.c). */
#ifndef ASYNCTRACE_CMD_REPORT_PROFILE_H
#define ASYNCTRACE_CMD_REPORT_PROFILE_H

#include <stddef.h>

#include "trace/profile.h"
#include "util/json.h"

/* A "Profile" section: samples by task and by innermost future, `top` rows
 * each (0: all). */
void report_profile__print(const struct profile *p, const struct profile_summary *s, size_t top);
/* The "blocking" and "cpu_heavy" members of the report object: polls that
 * made their thread wait, and that ran on the CPU for long (only when the
 * trace recorded context switches). */
void report_profile__json_blocking(struct json_writer *w, const struct profile *p);
/* The "profile" member of the report object. */
void report_profile__json(struct json_writer *w, const struct profile *p, const struct profile_summary *s);

#endif
