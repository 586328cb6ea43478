/* libasynctrace-agent.so: loaded into the target with LD_PRELOAD by
 * `asynctrace record`, it applies the plan record computed (which
 * functions to patch, how) in its constructor — before main, before any
 * runtime thread exists — then tells record how it went and waits until
 * record says go (record may still attach uprobes for functions it could
 * not patch). It restores the environment first, so the program and its
 * children see the environment they were given, and it never prints: the
 * target's output is its own. Links libc only. */
#include <dirent.h>
#include <errno.h>
#include <linux/futex.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/agent.h"

_Static_assert(sizeof(struct agent_region) == 4096, "agent_region is one page");
_Static_assert(sizeof(struct agent_buffer) == AGENT_BUFFER_HEADER_SIZE, "buffer header size");
_Static_assert(offsetof(struct agent_buffer, used) == AGENT_BUFFER_USED, "AGENT_BUFFER_USED");
_Static_assert(offsetof(struct agent_buffer, committed) == AGENT_BUFFER_COMMITTED, "AGENT_BUFFER_COMMITTED");
_Static_assert(offsetof(struct agent_buffer, capacity) == AGENT_BUFFER_CAPACITY, "AGENT_BUFFER_CAPACITY");
_Static_assert(sizeof(struct agent_record) == AGENT_RECORD_SIZE, "record size");
_Static_assert(sizeof(struct agent_descriptor) == AGENT_DESC_SIZE, "descriptor size");
_Static_assert(offsetof(struct agent_descriptor, relocated) == AGENT_DESC_RELOCATED, "AGENT_DESC_RELOCATED");
_Static_assert(offsetof(struct agent_descriptor, entry_header) == AGENT_DESC_ENTRY_HEADER, "AGENT_DESC_ENTRY_HEADER");
_Static_assert(offsetof(struct agent_descriptor, exit_header) == AGENT_DESC_EXIT_HEADER, "AGENT_DESC_EXIT_HEADER");
_Static_assert(offsetof(struct agent_descriptor, entry_value) == AGENT_DESC_ENTRY_VALUE, "AGENT_DESC_ENTRY_VALUE");
_Static_assert(offsetof(struct agent_descriptor, exit_value) == AGENT_DESC_EXIT_VALUE, "AGENT_DESC_EXIT_VALUE");
_Static_assert(offsetof(struct agent_descriptor, state_size) == AGENT_DESC_STATE_SIZE, "AGENT_DESC_STATE_SIZE");
_Static_assert(offsetof(struct agent_descriptor, memory_size) == AGENT_DESC_MEMORY_SIZE, "AGENT_DESC_MEMORY_SIZE");
_Static_assert(offsetof(struct agent_descriptor, state_offset) == AGENT_DESC_STATE_OFFSET, "AGENT_DESC_STATE_OFFSET");
_Static_assert(offsetof(struct agent_descriptor, memory_offset) == AGENT_DESC_MEMORY_OFFSET, "AGENT_DESC_MEMORY_OFFSET");
_Static_assert(offsetof(struct agent_descriptor, value_reg) == AGENT_DESC_REGISTER, "AGENT_DESC_REGISTER");

/* How long the agent waits for record's go before running the program
 * anyway (record died): the program must never hang on us. */
#define GO_TIMEOUT_SECONDS 10
/* The pool's first buffers get their pages mapped before main: threads take
 * the lowest free buffers, and record frees them as soon as they are handed
 * over, so these are the ones in use; mapping them later would stall a
 * traced poll for tens of microseconds. */
#define PREMAPPED_BYTES (2u << 20)

struct agent asynctrace_agent;

/* The user's LD_PRELOAD comes back (record saved it, or it had none), and
 * our variables go: children of the program are not traced. */
static int take_environment(void)
{
	const char *fd_text = getenv(AGENT_ENV_FD);
	const char *preload = getenv(AGENT_ENV_PRELOAD);
	char *end;
	long fd;

	if (!fd_text)
		return -1;
	fd = strtol(fd_text, &end, 10);
	if (preload)
		setenv("LD_PRELOAD", preload, 1);
	else
		unsetenv("LD_PRELOAD");
	unsetenv(AGENT_ENV_PRELOAD);
	unsetenv(AGENT_ENV_FD);
	return *end || fd < 0 || fd > 1 << 20 ? -1 : (int)fd;
}

static int map_region(struct agent *a, int fd)
{
	struct stat st;
	void *map;

	if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(struct agent_region))
		return -EINVAL;
	map = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd); /* the program's file descriptors stay its own */
	if (map == MAP_FAILED)
		return -errno;
	a->region = map;
	a->region_size = st.st_size;
	return 0;
}

/* The region's layout is record's word; still, check it fits. */
static int check_region(struct agent *a)
{
	struct agent_region *r = a->region;
	uint64_t pool_bytes = (uint64_t)r->buffer_count * r->buffer_size;

	if (r->magic != AGENT_REGION_MAGIC || r->abi_version != AGENT_ABI_VERSION)
		return -EPROTO;
	if (r->plan_offset < sizeof(*r) || r->plan_size < sizeof(struct agent_plan) ||
	    r->plan_offset + r->plan_size > a->region_size || r->buffer_size <= sizeof(struct agent_buffer) ||
	    r->buffers_offset + pool_bytes > a->region_size || r->buffers_offset % 4096)
		return -EINVAL;
	a->plan = (struct agent_plan *)((uint8_t *)r + r->plan_offset);
	if (a->plan->function_count > (r->plan_size - sizeof(struct agent_plan)) / sizeof(struct agent_plan_function))
		return -EINVAL;
	a->pool = (uint8_t *)r + r->buffers_offset;
	a->buffer_count = r->buffer_count;
	a->buffer_size = r->buffer_size;
	return 0;
}

/* Patching is only safe while no other thread can run the code being
 * rewritten; another preloaded library may have started one. */
static int count_threads(void)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *d;
	int n = 0;

	if (!dir)
		return -1;
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	closedir(dir);
	return n;
}

static void refuse(struct agent *a, const char *why)
{
	snprintf(a->region->message, sizeof(a->region->message), "%s", why);
	__atomic_store_n(&a->region->agent_state, AGENT_REFUSED, __ATOMIC_RELEASE);
}

static uint64_t read_tsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/* The child of a fork is not traced: its code goes back to what it was
 * and its records go nowhere (a call in flight still returns through the
 * trampoline, which stays mapped). */
static void on_fork_child(void)
{
	struct agent *a = &asynctrace_agent;

	if (!a->active)
		return;
	__atomic_store_n(&a->active, 0, __ATOMIC_RELEASE);
	agent_buffers_detach_thread();
	agent_patch_revert(a);
	munmap(a->region, a->region_size);
	a->region = NULL;
}

static void wait_for_go(struct agent *a)
{
	struct timespec step = { .tv_sec = 0, .tv_nsec = 100 * 1000 * 1000 };

	for (int i = 0; i < GO_TIMEOUT_SECONDS * 10; i++) {
		if (__atomic_load_n(&a->region->go, __ATOMIC_ACQUIRE))
			return;
		syscall(SYS_futex, &a->region->go, FUTEX_WAIT, 0, &step, NULL, 0);
	}
}

static void premap_buffers(struct agent *a)
{
	size_t bytes = (size_t)a->buffer_count * a->buffer_size;
	uint32_t count = a->buffer_count;

	if (bytes > PREMAPPED_BYTES) {
		count = PREMAPPED_BYTES / a->buffer_size;
		bytes = (size_t)count * a->buffer_size;
	}
	if (madvise(a->pool, bytes, MADV_POPULATE_WRITE) != 0)
		return;
	for (uint32_t i = 0; i < count; i++)
		((struct agent_buffer *)(a->pool + (size_t)i * a->buffer_size))->mapped = 1;
}

static void apply_plan(struct agent *a)
{
	struct agent_region *r = a->region;
	char why[sizeof(r->message)] = "";
	int threads = count_threads(), patched;

	if (threads != 1) {
		snprintf(why, sizeof(why), "the process already runs %d threads when the agent starts", threads);
		refuse(a, why);
		return;
	}
	if (agent_find_image(&a->image)) {
		refuse(a, "cannot find the program's code (dl_iterate_phdr)");
		return;
	}
	r->load_bias = a->image.bias;
	agent_buffers_init(a);
	patched = agent_patch_apply(a, why, sizeof(why));
	if (patched < 0) {
		refuse(a, why);
		return;
	}
	premap_buffers(a);
	r->patched = (uint32_t)patched;
	r->refused = a->plan->function_count - (uint32_t)patched;
	pthread_atfork(NULL, NULL, on_fork_child);
	r->agent_tsc = read_tsc();
	__atomic_store_n(&a->active, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&r->agent_state, AGENT_PATCHED, __ATOMIC_RELEASE);
}

__attribute__((constructor)) static void asynctrace_agent_start(void)
{
	struct agent *a = &asynctrace_agent;
	int saved_errno = errno;
	int fd = take_environment();

	if (fd < 0 || map_region(a, fd) < 0) {
		errno = saved_errno;
		return; /* record waits in vain for the agent and says so */
	}
	if (check_region(a) < 0) {
		refuse(a, "the agent and asynctrace do not agree on the shared layout (mismatched builds?)");
	} else if (a->region->target_pid != (uint32_t)getpid()) {
		refuse(a, "the agent was loaded into another process than the one record started");
	} else {
		apply_plan(a);
	}
	wait_for_go(a);
	errno = saved_errno;
}
