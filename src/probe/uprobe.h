/* The eBPF uprobe capture backend: one BPF program (poll.bpf.c) attached to
 * every probe site of a plan, events drained from a BPF ring buffer. */
#ifndef ASYNCTRACE_PROBE_UPROBE_H
#define ASYNCTRACE_PROBE_UPROBE_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bpf/poll.h"
#include "elf/pollfn.h"
#include "probe/plan.h"

struct uprobe_session;

/* Called for each event in ring-buffer order; a non-zero return stops the
 * current drain and is returned by uprobe_session__poll. */
typedef int (*probe_event_fn)(const struct probe_event *event, void *ctx);

/* Opens and loads the BPF program for the functions fns (needs CAP_BPF +
 * CAP_PERFMON or root).
 * ringbuf_bytes: a power of two, multiple of the page size. Returns 0 or a
 * negative errno. verbose: let libbpf's own diagnostics through. */
int uprobe_session__open(struct uprobe_session **out, size_t ringbuf_bytes, int verbose,
			 const struct poll_fn_list *fns, probe_event_fn fn, void *ctx);
/* Only events of this process are recorded. */
int uprobe_session__set_target(struct uprobe_session *s, pid_t pid);
/* Attaches every site of the plan in the ELF at path, for process pid.
 * On failure *failed_site tells which site. */
int uprobe_session__attach(struct uprobe_session *s, const char *path, pid_t pid,
			   const struct probe_plan *plan, size_t *failed_site);
size_t uprobe_session__attached(const struct uprobe_session *s);
/* true: probes go through one uprobe_multi link; false: one link each. */
bool uprobe_session__uses_multi_link(const struct uprobe_session *s);
/* Waits up to timeout_ms for events and hands them to fn. Returns the
 * number consumed or a negative errno (-EINTR when a signal arrived). */
int uprobe_session__poll(struct uprobe_session *s, int timeout_ms);
/* Hands over whatever is in the ring buffer now, without waiting. */
int uprobe_session__drain(struct uprobe_session *s);
/* Records the BPF side could not reserve (ring buffer full). */
uint64_t uprobe_session__lost(const struct uprobe_session *s);
/* Removes every probe: the target runs untraced from here on. */
void uprobe_session__detach(struct uprobe_session *s);
void uprobe_session__free(struct uprobe_session *s);

#endif
