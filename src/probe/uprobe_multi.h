/* The uprobe_multi link (Linux 6.6+): one bpf(BPF_LINK_CREATE) attaches a
 * program to many offsets of one file, and closing it detaches them all
 * with a single synchronisation, where single uprobes pay ~0.1 s each on
 * detach. libbpf 1.1 predates it, so this is the raw syscall. */
#ifndef ASYNCTRACE_PROBE_UPROBE_MULTI_H
#define ASYNCTRACE_PROBE_UPROBE_MULTI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The attach type a program must be loaded with to use the link. */
#define UPROBE_MULTI_ATTACH_TYPE 48 /* BPF_TRACE_UPROBE_MULTI */

/* Returns the link fd, or a negative errno. pid 0: every process. */
int uprobe_multi_attach(int prog_fd, const char *path, const uint64_t *offsets,
			const uint64_t *cookies, size_t count, pid_t pid);

#endif
