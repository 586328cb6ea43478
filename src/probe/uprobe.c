#include "probe/uprobe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "poll.skel.h"
#include "probe/uprobe_multi.h"

struct uprobe_session {
	struct poll_bpf *skel;
	struct ring_buffer *ring;
	struct bpf_link **links;     /* single uprobes (kernels before 6.6) */
	size_t link_count;
	/* uprobe_multi links, or -1: [0] the exits, armed first; [1] the
	 * entries, armed last and removed first, so every recorded entry has
	 * its exits armed until it returns. */
	int multi_link_fds[2];
	size_t multi_count;
	bool multi;                  /* program loaded for uprobe_multi */
	probe_event_fn fn;
	void *ctx;
};

static int quiet_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level, (void)fmt, (void)ap;
	return 0;
}

static int verbose_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static int on_ring_record(void *ctx, void *data, size_t size)
{
	struct uprobe_session *s = ctx;

	if (size < sizeof(struct probe_event))
		return 0; /* cannot happen with our program; never stop the drain for it */
	return s->fn(data, s->ctx);
}

static int load_program(struct uprobe_session *s, size_t ringbuf_bytes, size_t functions, bool multi)
{
	int err;

	poll_bpf__destroy(s->skel);
	s->skel = poll_bpf__open();
	if (!s->skel)
		return -errno;
	err = bpf_map__set_max_entries(s->skel->maps.events, (__u32)ringbuf_bytes);
	if (!err)
		err = bpf_map__set_max_entries(s->skel->maps.func_config, functions ? (__u32)functions : 1);
	/* A quarter full wakes the reader: room for bursts while it runs. */
	s->skel->rodata->targ_wakeup_bytes = ringbuf_bytes / 4;
	if (!err && multi)
		err = bpf_program__set_expected_attach_type(s->skel->progs.poll_probe,
							    (enum bpf_attach_type)UPROBE_MULTI_ATTACH_TYPE);
	if (!err)
		err = poll_bpf__load(s->skel);
	s->multi = multi && !err;
	return err;
}

/* Where each async body keeps its state discriminant (see read_state). */
static int configure_functions(struct uprobe_session *s, const struct poll_fn_list *fns)
{
	int map_fd = bpf_map__fd(s->skel->maps.func_config);

	for (__u32 i = 0; i < fns->count; i++) {
		struct func_config config = {
			.state_offset = fns->fns[i].state.offset,
			.state_size = fns->fns[i].state.size,
		};

		if (config.state_size && bpf_map_update_elem(map_fd, &i, &config, BPF_ANY))
			return -errno;
	}
	return 0;
}

int uprobe_session__open(struct uprobe_session **out, size_t ringbuf_bytes, int verbose,
			 const struct poll_fn_list *fns, probe_event_fn fn, void *ctx)
{
	struct uprobe_session *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return -ENOMEM;
	s->fn = fn;
	s->ctx = ctx;
	s->multi_link_fds[0] = s->multi_link_fds[1] = -1;
	libbpf_set_print(verbose ? verbose_libbpf : quiet_libbpf);
	/* A kernel without uprobe_multi refuses the attach type at load:
	 * then load for single uprobes. Permission errors are final. */
	err = load_program(s, ringbuf_bytes, fns->count, true);
	if (err && err != -EPERM && err != -EACCES)
		err = load_program(s, ringbuf_bytes, fns->count, false);
	if (!err)
		err = configure_functions(s, fns);
	if (err)
		goto fail;
	s->ring = ring_buffer__new(bpf_map__fd(s->skel->maps.events), on_ring_record, s, NULL);
	if (!s->ring) {
		err = -errno;
		goto fail;
	}
	*out = s;
	return 0;
fail:
	uprobe_session__free(s);
	return err ? err : -EINVAL;
}

/* Inside a pid namespace, bpf_get_current_pid_tgid() returns the initial
 * namespace's ids while fork() and /proc give ours: ask BPF for ours. */
static void set_pid_namespace(struct uprobe_session *s)
{
	char line[256];
	struct stat st;
	FILE *status = fopen("/proc/self/status", "re");
	int levels = 0;

	if (!status)
		return;
	while (fgets(line, sizeof(line), status)) {
		if (strncmp(line, "NSpid:", 6) != 0)
			continue;
		/* One pid per namespace level: more than one means we are nested. */
		for (char *tok = strtok(line + 6, " \t\n"); tok; tok = strtok(NULL, " \t\n"))
			levels++;
	}
	fclose(status);
	if (levels > 1 && stat("/proc/self/ns/pid", &st) == 0) {
		s->skel->bss->targ_pidns_dev = st.st_dev;
		s->skel->bss->targ_pidns_ino = st.st_ino;
	}
}

int uprobe_session__set_target(struct uprobe_session *s, pid_t pid)
{
	set_pid_namespace(s);
	s->skel->bss->targ_tgid = (__u32)pid;
	return 0;
}

/* One link for the plan's sites of one kind. */
static int attach_multi_kind(struct uprobe_session *s, const char *path, pid_t pid,
			     const struct probe_plan *plan, uint8_t kind, int *link_fd)
{
	uint64_t *offsets = malloc((plan->count + 1) * sizeof(*offsets));
	uint64_t *cookies = malloc((plan->count + 1) * sizeof(*cookies));
	size_t n = 0;
	int fd = -ENOMEM;

	if (offsets && cookies) {
		for (size_t i = 0; i < plan->count; i++) {
			if (plan->sites[i].kind != kind)
				continue;
			offsets[n] = plan->sites[i].file_offset;
			cookies[n++] = plan->sites[i].cookie;
		}
		fd = n ? uprobe_multi_attach(bpf_program__fd(s->skel->progs.poll_probe), path, offsets,
					     cookies, n, pid)
		       : -1;
	}
	free(offsets);
	free(cookies);
	if (fd < -1)
		return fd;
	*link_fd = fd;
	s->multi_count += n;
	return 0;
}

static int attach_multi(struct uprobe_session *s, const char *path, pid_t pid,
			const struct probe_plan *plan)
{
	int err = attach_multi_kind(s, path, pid, plan, PROBE_KIND_EXIT, &s->multi_link_fds[0]);

	return err ? err : attach_multi_kind(s, path, pid, plan, PROBE_KIND_ENTRY, &s->multi_link_fds[1]);
}

static int attach_single(struct uprobe_session *s, const char *path, pid_t pid,
			 const struct probe_plan *plan, size_t *failed_site)
{
	struct bpf_link **links = realloc(s->links, (s->link_count + plan->count) * sizeof(*links));

	if (!links)
		return -ENOMEM;
	s->links = links;
	for (size_t i = 0; i < plan->count; i++) {
		LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = plan->sites[i].cookie);
		struct bpf_link *link = bpf_program__attach_uprobe_opts(
			s->skel->progs.poll_probe, pid, path, plan->sites[i].file_offset, &opts);

		if (!link) {
			*failed_site = i;
			return -errno;
		}
		s->links[s->link_count++] = link;
	}
	return 0;
}

int uprobe_session__attach(struct uprobe_session *s, const char *path, pid_t pid,
			   const struct probe_plan *plan, size_t *failed_site)
{
	if (!s->multi)
		return attach_single(s, path, pid, plan, failed_site);
	/* The link does not say which offset it refused. */
	*failed_site = 0;
	return attach_multi(s, path, pid, plan);
}

size_t uprobe_session__attached(const struct uprobe_session *s)
{
	return s->link_count + s->multi_count;
}

bool uprobe_session__uses_multi_link(const struct uprobe_session *s)
{
	return s->multi;
}

int uprobe_session__poll(struct uprobe_session *s, int timeout_ms)
{
	int woken = ring_buffer__poll(s->ring, timeout_ms), more;

	/* Records submitted without a wakeup are there all the same. */
	if (woken < 0)
		return woken;
	more = ring_buffer__consume(s->ring);
	return more < 0 ? more : woken + more;
}

int uprobe_session__drain(struct uprobe_session *s)
{
	return ring_buffer__consume(s->ring);
}

uint64_t uprobe_session__lost(const struct uprobe_session *s)
{
	int ncpus = libbpf_num_possible_cpus();
	uint64_t total = 0, *values;
	__u32 zero = 0;

	if (ncpus <= 0)
		return 0;
	values = calloc(ncpus, sizeof(*values));
	if (!values)
		return 0;
	if (bpf_map_lookup_elem(bpf_map__fd(s->skel->maps.lost_events), &zero, values) == 0)
		for (int i = 0; i < ncpus; i++)
			total += values[i];
	free(values);
	return total;
}

void uprobe_session__detach(struct uprobe_session *s)
{
	/* Entries go first (see multi_link_fds; single links were made in plan
	 * order, exits first, so they go in reverse). */
	for (int i = 1; i >= 0; i--) {
		if (s->multi_link_fds[i] >= 0)
			close(s->multi_link_fds[i]);
		s->multi_link_fds[i] = -1;
	}
	s->multi_count = 0;
	while (s->link_count)
		bpf_link__destroy(s->links[--s->link_count]);
}

void uprobe_session__free(struct uprobe_session *s)
{
	if (!s)
		return;
	uprobe_session__detach(s);
	free(s->links);
	ring_buffer__free(s->ring);
	poll_bpf__destroy(s->skel);
	free(s);
}
