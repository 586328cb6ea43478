/* What the files building a poll_fn_list share (pollfn.c, hooks.c); not
 * for callers of the list. */
#ifndef ASYNCTRACE_ELF_POLLFN_PRIVATE_H
#define ASYNCTRACE_ELF_POLLFN_PRIVATE_H

#include "elf/pollfn.h"

/* Free what one entry owns and zero it. */
void poll_fn__release(struct poll_fn *fn);
/* Sorts the list by address; of functions sharing one (aliases), keeps
 * the first. */
void poll_fn_list__sort_unique(struct poll_fn_list *list);

#endif
