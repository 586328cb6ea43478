/* perf_event cpu-clock sampling (sampler.h). One ring buffer per CPU:
 * inherited events must be per CPU to be mmapped, and the events of the
 * other threads on a CPU write into its first event's buffer
 * (PERF_EVENT_IOC_SET_OUTPUT), as perf record does. */
#include "probe/sampler.h"

#include <dirent.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* 2^6 data pages (256 KiB) per CPU: at 999 Hz, samples of 128 frames
 * (1 KiB) fill it in a quarter of a second; record drains every few ms. */
#define RING_DATA_PAGES 64
#define MAX_FRAMES 127

struct ring {
	int fd;            /* the event whose buffer it is */
	bool switches;     /* the context-switch event's: its samples are stacks at a switch-out */
	void *base;        /* metadata page, then the data pages */
	size_t data_size;
};

struct sampler {
	int *fds;          /* every event */
	size_t fd_count, fd_capacity;
	struct ring *rings; /* one per CPU, and one more per CPU with switches */
	size_t ring_count;
	uint64_t regs_mask; /* DWARF mode: the user registers sampled */
	unsigned reg_count;
	size_t data_pages;
	pid_t *tids;       /* what the events were opened for */
	size_t tid_count;
	int on_exec;
	int cpus;
	size_t page_size;
	uint64_t lost;
	uint8_t *scratch;  /* a record that wraps around the buffer's end */
	size_t scratch_size;
	uint64_t frames[MAX_FRAMES + 1];
};

static int perf_event_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group, unsigned long flags)
{
	return (int)syscall(SYS_perf_event_open, attr, pid, cpu, group, flags);
}

static void sampling_attr(struct perf_event_attr *attr, unsigned hz, int on_exec, uint64_t regs_mask)
{
	memset(attr, 0, sizeof(*attr));
	attr->size = sizeof(*attr);
	attr->type = PERF_TYPE_SOFTWARE;
	attr->config = PERF_COUNT_SW_CPU_CLOCK;
	attr->freq = 1;
	attr->sample_freq = hz;
	attr->sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CALLCHAIN;
	attr->inherit = 1;
	attr->disabled = on_exec ? 1 : 0;
	attr->enable_on_exec = on_exec ? 1 : 0;
	attr->exclude_kernel = 1;   /* what paranoid 2 allows, and the target's code is in user space */
	attr->exclude_hv = 1;
	attr->exclude_callchain_kernel = 1;
	attr->use_clockid = 1;
	attr->clockid = CLOCK_MONOTONIC;
	attr->sample_max_stack = MAX_FRAMES;
	if (regs_mask) {
		attr->sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER;
		attr->sample_regs_user = regs_mask;
		attr->sample_stack_user = SAMPLER_STACK_COPY;
		attr->exclude_callchain_kernel = 0;
		attr->sample_max_stack = 0;
	}
}

/* Context switches, each a sample (period 1) whose user stack is where the
 * thread left the CPU, and PERF_RECORD_SWITCH records with their times. */
static void switch_attr(struct perf_event_attr *attr, int on_exec, uint64_t regs_mask)
{
	sampling_attr(attr, 1, on_exec, regs_mask);
	attr->config = PERF_COUNT_SW_CONTEXT_SWITCHES;
	attr->freq = 0;
	attr->sample_period = 1;
	attr->exclude_kernel = 0; /* the switch happens there */
	attr->context_switch = 1;
	attr->sample_id_all = 1;  /* the switch records carry tid and time */
}

static int online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);

	return n > 0 ? (int)n : 1;
}

/* The threads to open events for: the pid alone when it is a held child
 * (inherit follows what it starts), every thread of a running process. */
static int thread_list(pid_t pid, int on_exec, pid_t **tids, size_t *count)
{
	char path[64];
	struct dirent *d;
	size_t n = 0, cap = 16;
	DIR *dir;

	*tids = malloc(cap * sizeof(**tids));
	if (!*tids)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (on_exec || !(dir = opendir(path))) {
		(*tids)[0] = pid;
		*count = 1;
		return 0;
	}
	while ((d = readdir(dir))) {
		pid_t tid = (pid_t)atoi(d->d_name);

		if (tid <= 0)
			continue;
		if (n == cap) {
			pid_t *more = realloc(*tids, (cap *= 2) * sizeof(*more));

			if (!more) {
				closedir(dir);
				return -ENOMEM;
			}
			*tids = more;
		}
		(*tids)[n++] = tid;
	}
	closedir(dir);
	*count = n;
	return n ? 0 : -ESRCH;
}

static int map_ring(struct sampler *s, struct ring *r, int fd)
{
	size_t len = (s->data_pages + 1) * s->page_size;

	r->base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r->base == MAP_FAILED) {
		r->base = NULL;
		return -errno;
	}
	r->fd = fd;
	r->data_size = s->data_pages * s->page_size;
	return 0;
}

/* The events of one CPU: the first owns the ring, the rest write to it.
 * A thread that exited meanwhile (-ESRCH) is skipped. */
static int open_cpu(struct sampler *s, int cpu, struct perf_event_attr *attr, bool switches)
{
	const pid_t *tids = s->tids;
	size_t count = s->tid_count;
	struct ring *ring = &s->rings[s->ring_count];

	ring->switches = switches;
	for (size_t i = 0; i < count; i++) {
		int fd = perf_event_open(attr, tids[i], cpu, -1, PERF_FLAG_FD_CLOEXEC);
		int err;

		if (fd < 0) {
			if (errno == ESRCH && count > 1)
				continue;
			return -errno;
		}
		s->fds[s->fd_count++] = fd;
		if (!ring->base) {
			err = map_ring(s, ring, fd);
			s->ring_count += !err;
		} else {
			err = ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, ring->fd) < 0 ? -errno : 0;
		}
		if (err)
			return err;
	}
	return 0;
}

int sampler__open(struct sampler **out, pid_t pid, unsigned hz, int on_exec, uint64_t regs_mask)
{
	struct perf_event_attr attr;
	struct sampler *s = calloc(1, sizeof(*s));
	int err;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->page_size = (size_t)sysconf(_SC_PAGESIZE);
	s->cpus = online_cpus();
	s->on_exec = on_exec;
	s->regs_mask = regs_mask;
	s->reg_count = (unsigned)__builtin_popcountll(regs_mask);
	/* A stack copy per sample: room for a quarter second at 999 Hz. */
	s->data_pages = regs_mask ? RING_DATA_PAGES * 16 : RING_DATA_PAGES;
	err = thread_list(pid, on_exec, &s->tids, &s->tid_count);
	if (!err) {
		s->fd_capacity = 2 * (size_t)s->cpus * s->tid_count;
		s->fds = calloc(s->fd_capacity, sizeof(*s->fds));
		s->rings = calloc(2 * (size_t)s->cpus, sizeof(*s->rings));
		if (!s->fds || !s->rings)
			err = -ENOMEM;
	}
	sampling_attr(&attr, hz, on_exec, regs_mask);
	for (int cpu = 0; cpu < s->cpus && !err; cpu++)
		err = open_cpu(s, cpu, &attr, false);
	if (err) {
		sampler__free(s);
		return err;
	}
	*out = s;
	return 0;
}

int sampler__add_switches(struct sampler *s)
{
	struct perf_event_attr attr;
	size_t rings = s->ring_count, fds = s->fd_count;
	int err = 0;

	switch_attr(&attr, s->on_exec, s->regs_mask);
	for (int cpu = 0; cpu < s->cpus && !err; cpu++)
		err = open_cpu(s, cpu, &attr, true);
	if (!err)
		return 0;
	/* none, rather than some CPUs' */
	while (s->ring_count > rings)
		munmap(s->rings[--s->ring_count].base, (s->data_pages + 1) * s->page_size);
	while (s->fd_count > fds)
		close(s->fds[--s->fd_count]);
	return err;
}

/* A record's bytes, contiguous: in place, or copied when it wraps. */
static const uint8_t *record_at(struct sampler *s, const struct ring *r, uint64_t pos, size_t size)
{
	const uint8_t *data = (const uint8_t *)r->base + s->page_size;
	size_t off = pos % r->data_size, first = r->data_size - off;

	if (size <= first)
		return data + off;
	if (size > s->scratch_size) {
		uint8_t *more = realloc(s->scratch, size);

		if (!more)
			return NULL;
		s->scratch = more;
		s->scratch_size = size;
	}
	memcpy(s->scratch, data + off, first);
	memcpy(s->scratch + first, data, size - first);
	return s->scratch;
}

/* DWARF mode's PERF_RECORD_SAMPLE after pid, tid, time: u64 abi, the
 * registers when abi is not 0 (the sample was in user space), u64 size,
 * size bytes of stack, and when size is not 0 u64 dyn_size: how many of
 * them were copied. */
static int one_stack_sample(struct sampler *s, const uint8_t *p, size_t left, struct cpu_sample *sample,
			    cpu_sample_fn fn, void *ctx)
{
	uint64_t abi, size, dyn_size = 0;

	if (left < 8)
		return 0;
	memcpy(&abi, p, 8);
	p += 8, left -= 8;
	if (abi) {
		if (left < 8ULL * s->reg_count)
			return 0;
		sample->regs = (const uint64_t *)(const void *)p; /* records are 8-byte aligned */
		sample->reg_count = s->reg_count;
		p += 8ULL * s->reg_count, left -= 8ULL * s->reg_count;
	}
	if (left < 8)
		return 0;
	memcpy(&size, p, 8);
	p += 8, left -= 8;
	if (size > left || (size && left - size < 8))
		return 0;
	if (size)
		memcpy(&dyn_size, p + size, 8);
	sample->stack = p;
	sample->stack_len = dyn_size < size ? dyn_size : size;
	if (!sample->regs)
		sample->stack = NULL;
	return fn(sample, ctx);
}

/* PERF_RECORD_SAMPLE with TID | TIME | CALLCHAIN: pid, tid, time, nr,
 * ips[nr]; the chain starts with a PERF_CONTEXT_USER marker. */
static int one_sample(struct sampler *s, const uint8_t *rec, size_t size, bool switches, cpu_sample_fn fn,
		      void *ctx)
{
	const struct perf_event_header *h = (const void *)rec;
	struct cpu_sample sample = { .kind = switches ? SAMPLE_BLOCKED_AT : SAMPLE_ON_CPU };
	uint64_t nr;
	const uint8_t *p = rec + sizeof(*h);

	if (size < sizeof(*h) + 24)
		return 0;
	memcpy(&sample.pid, p, 4);
	memcpy(&sample.tid, p + 4, 4);
	memcpy(&sample.ts, p + 8, 8);
	if (s->regs_mask)
		return one_stack_sample(s, p + 16, size - sizeof(*h) - 16, &sample, fn, ctx);
	memcpy(&nr, p + 16, 8);
	p += 24;
	if (nr > (size - sizeof(*h) - 24) / 8)
		return 0;
	for (uint64_t i = 0; i < nr; i++) {
		uint64_t ip;

		memcpy(&ip, p + i * 8, 8);
		if (ip >= PERF_CONTEXT_MAX)
			continue; /* a context marker */
		if (ip < 4096)
			break; /* a frame-pointer walk that ran into zeros or garbage */
		if (sample.frame_count < MAX_FRAMES + 1)
			s->frames[sample.frame_count++] = ip;
	}
	sample.frames = s->frames;
	return fn(&sample, ctx);
}

/* PERF_RECORD_SWITCH: no body, then the sample_id fields (TID, TIME). */
static int one_switch(const uint8_t *rec, size_t size, cpu_sample_fn fn, void *ctx)
{
	const struct perf_event_header *h = (const void *)rec;
	struct cpu_sample sample = { 0 };

	if (size < sizeof(*h) + 16)
		return 0;
	memcpy(&sample.pid, rec + sizeof(*h), 4);
	memcpy(&sample.tid, rec + sizeof(*h) + 4, 4);
	memcpy(&sample.ts, rec + sizeof(*h) + 8, 8);
	if (!(h->misc & PERF_RECORD_MISC_SWITCH_OUT))
		sample.kind = SAMPLE_SWITCH_IN;
	else
		sample.kind = h->misc & PERF_RECORD_MISC_SWITCH_OUT_PREEMPT ? SAMPLE_PREEMPTED : SAMPLE_SWITCH_OUT;
	return fn(&sample, ctx);
}

static int drain_ring(struct sampler *s, struct ring *r, cpu_sample_fn fn, void *ctx)
{
	struct perf_event_mmap_page *meta = r->base;
	uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
	uint64_t tail = meta->data_tail;
	int err = 0;

	while (tail < head && !err) {
		struct perf_event_header h;
		const uint8_t *rec = record_at(s, r, tail, sizeof(h));

		if (!rec)
			return -ENOMEM;
		memcpy(&h, rec, sizeof(h));
		if (h.size < sizeof(h) || tail + h.size > head)
			break;
		rec = record_at(s, r, tail, h.size);
		if (!rec)
			return -ENOMEM;
		if (h.type == PERF_RECORD_SAMPLE)
			err = one_sample(s, rec, h.size, r->switches, fn, ctx);
		else if (h.type == PERF_RECORD_SWITCH)
			err = one_switch(rec, h.size, fn, ctx);
		else if (h.type == PERF_RECORD_LOST && h.size >= sizeof(h) + 16) {
			uint64_t lost;

			memcpy(&lost, rec + sizeof(h) + 8, 8);
			s->lost += lost;
		}
		tail += h.size;
	}
	__atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
	return err;
}

int sampler__drain(struct sampler *s, cpu_sample_fn fn, void *ctx)
{
	int err = 0;

	for (size_t i = 0; s && i < s->ring_count && !err; i++)
		err = drain_ring(s, &s->rings[i], fn, ctx);
	return err;
}

uint64_t sampler__lost(const struct sampler *s)
{
	return s ? s->lost : 0;
}

void sampler__free(struct sampler *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->ring_count; i++)
		munmap(s->rings[i].base, (s->data_pages + 1) * s->page_size);
	for (size_t i = 0; i < s->fd_count; i++)
		close(s->fds[i]);
	free(s->fds);
	free(s->rings);
	free(s->tids);
	free(s->scratch);
	free(s);
}
