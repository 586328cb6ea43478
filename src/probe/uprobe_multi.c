#include "probe/uprobe_multi.h"

#include <errno.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The BPF_LINK_CREATE member of union bpf_attr as Linux 6.6 defines it;
 * Debian 12's <linux/bpf.h> (6.1) has no uprobe_multi member. */
struct link_create_uprobe_multi {
	uint32_t prog_fd;
	uint32_t target_fd;
	uint32_t attach_type;
	uint32_t flags;
	uint64_t path;
	uint64_t offsets;
	uint64_t ref_ctr_offsets;
	uint64_t cookies;
	uint32_t cnt;
	uint32_t multi_flags;
	uint32_t pid;
};

int uprobe_multi_attach(int prog_fd, const char *path, const uint64_t *offsets,
			const uint64_t *cookies, size_t count, pid_t pid)
{
	/* The kernel requires every byte past what it knows to be zero. */
	union {
		struct link_create_uprobe_multi link;
		union bpf_attr whole;
	} attr;
	long fd;

	memset(&attr, 0, sizeof(attr));
	attr.link.prog_fd = (uint32_t)prog_fd;
	attr.link.attach_type = UPROBE_MULTI_ATTACH_TYPE;
	attr.link.path = (uint64_t)(uintptr_t)path;
	attr.link.offsets = (uint64_t)(uintptr_t)offsets;
	attr.link.cookies = (uint64_t)(uintptr_t)cookies;
	attr.link.cnt = (uint32_t)count;
	attr.link.pid = (uint32_t)pid;
	fd = syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
	return fd < 0 ? -errno : (int)fd;
}
