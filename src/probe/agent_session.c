#include "probe/agent_session.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>

#include "bpf/poll.h"
#include "probe/tsc_clock.h"
#include "util/array.h"
#include "util/u64map.h"

#define AGENT_LIBRARY "libasynctrace-agent.so"
/* 128 KiB buffers: 4092 records each; a thread holds one at a time, so a
 * 64 MiB pool serves ~500 live threads. */
#define BUFFER_BYTES (128u << 10)
#define PREALLOCATED_BYTES (2u << 20) /* what the agent maps before main */
/* How often owned buffers of threads that died without handing them over
 * (exec, a killed thread) are looked for. */
#define DEAD_THREAD_CHECK_NS 250000000ull

extern char **environ;

struct agent_session {
	int fd;
	uint8_t *map;
	size_t map_len;
	struct agent_region *region;
	struct agent_plan *plan;
	uint8_t *pool;
	uint32_t buffer_count;
	uint32_t buffer_size;
	const struct poll_fn_list *fns;
	uint32_t *plan_index;        /* func_id (sites after the functions) -> index in plan + 1; 0: not in process */
	struct agent_site *sites;    /* the plan's (a copy): what each site's records mean */
	size_t site_count;
	struct agent_session_callbacks cb;
	struct tsc_clock clock;
	struct trace_event *events;  /* one buffer's worth */
	struct u64map next_sequence; /* stream -> next sequence + 1 */
	struct agent_buffer **ready; /* this drain's buffers */
	size_t ready_capacity;
	pid_t pid;
	uint64_t records;
	uint64_t incomplete;         /* reserved, never written: the thread died mid-record */
	uint64_t invalid;            /* not a record of ours (cannot happen; counted, not trusted) */
	uint64_t last_dead_check_ns;
	uint32_t seen_handovers;     /* the agent's count when the last drain began */
};

char *agent_session__find_library(void)
{
	char exe[PATH_MAX], *slash, *path;
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (len <= 0)
		return NULL;
	exe[len] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	if (asprintf(&path, "%s/%s", exe, AGENT_LIBRARY) < 0)
		return NULL;
	if (access(path, R_OK) == 0)
		return path;
	free(path);
	/* Installed: PREFIX/bin/asynctrace and PREFIX/lib/asynctrace/. */
	slash = strrchr(exe, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	if (asprintf(&path, "%s/lib/asynctrace/%s", exe, AGENT_LIBRARY) < 0)
		return NULL;
	if (access(path, R_OK) == 0)
		return path;
	free(path);
	return NULL;
}

/* LD_PRELOAD needs the dynamic loader: a static executable has no PT_INTERP. */
static int is_dynamically_linked(const char *path)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	int fd = open(path, O_RDONLY | O_CLOEXEC), found = 0;

	if (fd < 0)
		return 0;
	if (pread(fd, &eh, sizeof(eh), 0) == sizeof(eh) && eh.e_ident[EI_CLASS] == ELFCLASS64 &&
	    eh.e_phentsize == sizeof(ph))
		for (unsigned i = 0; i < eh.e_phnum && !found; i++)
			if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) == sizeof(ph))
				found = ph.p_type == PT_INTERP;
	close(fd);
	return found;
}

const char *agent_session__unsupported(const char *path, uint16_t machine)
{
	struct stat st;

	if (stat(path, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID)))
		return "the program is set-user-ID or set-group-ID (the loader ignores LD_PRELOAD)";
	if (machine != EM_X86_64)
		return "the in-process agent is x86_64-only";
	if (!is_dynamically_linked(path))
		return "the program is statically linked (LD_PRELOAD cannot load the agent)";
	if (!tsc_clock__usable())
		return "this CPU's time stamp counter is not invariant (no constant_tsc/nonstop_tsc)";
	return NULL;
}

static size_t page_round(size_t bytes)
{
	return (bytes + 4095) & ~(size_t)4095;
}

static int map_region(struct agent_session *s, const struct agent_plan_set *set, size_t pool_bytes)
{
	size_t plan_bytes = sizeof(struct agent_plan) + set->count * sizeof(struct agent_plan_function);
	size_t plan_offset = sizeof(struct agent_region);
	size_t buffers_offset = page_round(plan_offset + plan_bytes);

	s->buffer_size = BUFFER_BYTES;
	s->buffer_count = (uint32_t)(pool_bytes / BUFFER_BYTES);
	if (s->buffer_count < 2)
		s->buffer_count = 2;
	s->map_len = buffers_offset + (size_t)s->buffer_count * s->buffer_size;
	s->fd = (int)syscall(SYS_memfd_create, "asynctrace-agent", 0);
	if (s->fd < 0)
		return -errno;
	if (ftruncate(s->fd, (off_t)s->map_len) < 0)
		return -errno;
	s->map = mmap(NULL, s->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
	if (s->map == MAP_FAILED) {
		s->map = NULL;
		return -errno;
	}
	s->region = (struct agent_region *)s->map;
	s->region->magic = AGENT_REGION_MAGIC;
	s->region->abi_version = AGENT_ABI_VERSION;
	s->region->region_size_pages = (uint32_t)(s->map_len / 4096);
	s->region->plan_offset = plan_offset;
	s->region->plan_size = plan_bytes;
	s->region->buffers_offset = buffers_offset;
	s->region->buffer_count = s->buffer_count;
	s->region->buffer_size = s->buffer_size;
	s->plan = (struct agent_plan *)(s->map + plan_offset);
	s->plan->function_count = (uint32_t)set->count;
	s->plan->anchor_addr = set->count ? set->functions[0].addr : 0;
	memcpy(s->plan->functions, set->functions, set->count * sizeof(*set->functions));
	s->pool = s->map + buffers_offset;
	/* Pages allocated now cost the target a mapping, not an allocation and
	 * a zeroing, when it first writes a buffer (the pool's first ones are
	 * taken first, and reused). */
	fallocate(s->fd, 0, (off_t)buffers_offset,
		  (off_t)(s->map_len - buffers_offset < PREALLOCATED_BYTES ? s->map_len - buffers_offset : PREALLOCATED_BYTES));
	for (uint32_t i = 0; i < s->buffer_count; i++) {
		struct agent_buffer *b = (struct agent_buffer *)(s->pool + (size_t)i * s->buffer_size);

		b->capacity = (s->buffer_size - sizeof(*b)) / AGENT_RECORD_SIZE * AGENT_RECORD_SIZE;
	}
	return 0;
}

int agent_session__create(struct agent_session **out, const struct agent_plan_set *set,
			  const struct poll_fn_list *fns, size_t pool_bytes,
			  const struct agent_session_callbacks *callbacks)
{
	struct agent_session *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return -ENOMEM;
	s->fd = -1;
	s->fns = fns;
	s->cb = *callbacks;
	s->plan_index = calloc(fns->count + set->site_count + 1, sizeof(*s->plan_index));
	s->sites = malloc((set->site_count ? set->site_count : 1) * sizeof(*s->sites));
	err = s->plan_index && s->sites ? map_region(s, set, pool_bytes) : -ENOMEM;
	if (!err) {
		if (set->site_count) /* else set->sites may be NULL */
			memcpy(s->sites, set->sites, set->site_count * sizeof(*s->sites));
		s->site_count = set->site_count;
	}
	for (size_t i = 0; !err && i < set->count; i++)
		if (set->functions[i].func_id < fns->count + set->site_count)
			s->plan_index[set->functions[i].func_id] = (uint32_t)i + 1;
	if (!err) {
		s->events = malloc((s->buffer_size / AGENT_RECORD_SIZE) * sizeof(*s->events));
		err = s->events ? tsc_clock__sample(&s->clock) : -ENOMEM;
	}
	if (err) {
		agent_session__free(s);
		return err;
	}
	*out = s;
	return 0;
}

static int env_append(char ***env, size_t *count, size_t *capacity, char *entry)
{
	if (!entry || ARRAY_RESERVE(*env, *capacity, *count + 2)) {
		free(entry);
		return -ENOMEM;
	}
	(*env)[(*count)++] = entry;
	(*env)[*count] = NULL;
	return 0;
}

static int is_our_variable(const char *entry)
{
	return !strncmp(entry, "LD_PRELOAD=", 11) || !strncmp(entry, AGENT_ENV_FD "=", strlen(AGENT_ENV_FD) + 1) ||
	       !strncmp(entry, AGENT_ENV_PRELOAD "=", strlen(AGENT_ENV_PRELOAD) + 1);
}

char **agent_session__child_env(struct agent_session *s, const char *agent_path)
{
	const char *user_preload = getenv("LD_PRELOAD");
	char **env = NULL, *entry;
	size_t count = 0, capacity = 0;
	int err = 0;

	for (char **e = environ; *e && !err; e++)
		if (!is_our_variable(*e))
			err = env_append(&env, &count, &capacity, strdup(*e));
	if (!err && user_preload && *user_preload)
		err = env_append(&env, &count, &capacity,
				 asprintf(&entry, "LD_PRELOAD=%s:%s", user_preload, agent_path) < 0 ? NULL : entry);
	else if (!err)
		err = env_append(&env, &count, &capacity,
				 asprintf(&entry, "LD_PRELOAD=%s", agent_path) < 0 ? NULL : entry);
	if (!err && user_preload)
		err = env_append(&env, &count, &capacity,
				 asprintf(&entry, AGENT_ENV_PRELOAD "=%s", user_preload) < 0 ? NULL : entry);
	if (!err)
		err = env_append(&env, &count, &capacity,
				 asprintf(&entry, AGENT_ENV_FD "=%d", s->fd) < 0 ? NULL : entry);
	if (err) {
		agent_session__free_env(env);
		return NULL;
	}
	return env;
}

void agent_session__free_env(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

int agent_session__fd(const struct agent_session *s)
{
	return s->fd;
}

void agent_session__set_target(struct agent_session *s, pid_t pid)
{
	s->pid = pid;
	s->region->target_pid = (uint32_t)pid;
}

static int child_gone(pid_t pid)
{
	siginfo_t info = { 0 };

	if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
		return errno == ECHILD;
	return info.si_pid == pid;
}

int agent_session__wait_agent(struct agent_session *s, int timeout_ms, const char **why)
{
	struct timespec step = { 0, 1000000 };

	for (int waited = 0; waited < timeout_ms; waited++) {
		uint32_t state = __atomic_load_n(&s->region->agent_state, __ATOMIC_ACQUIRE);

		if (state == AGENT_REFUSED) {
			s->region->message[sizeof(s->region->message) - 1] = '\0';
			*why = s->region->message;
			return AGENT_REFUSED;
		}
		if (state == AGENT_PATCHED)
			return AGENT_PATCHED;
		if (child_gone(s->pid))
			return -ESRCH;
		nanosleep(&step, NULL);
	}
	return -ETIMEDOUT;
}

int agent_session__result(const struct agent_session *s, uint32_t func_id)
{
	uint32_t index = func_id < s->fns->count ? s->plan_index[func_id] : 0;

	return index ? s->plan->functions[index - 1].result : AGENT_PATCH_PENDING;
}

int agent_session__site_result(const struct agent_session *s, size_t site)
{
	uint32_t index = site < s->site_count ? s->plan_index[s->fns->count + site] : 0;

	return index ? s->plan->functions[index - 1].result : AGENT_PATCH_PENDING;
}

uint64_t agent_session__load_bias(const struct agent_session *s)
{
	return s->region->load_bias;
}

void agent_session__go(struct agent_session *s)
{
	__atomic_store_n(&s->region->go, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &s->region->go, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

uint64_t agent_session__lost(const struct agent_session *s)
{
	return __atomic_load_n(&s->region->lost, __ATOMIC_RELAXED) + s->incomplete + s->invalid;
}

uint64_t agent_session__records(const struct agent_session *s)
{
	return s->records;
}

void agent_session__free(struct agent_session *s)
{
	if (!s)
		return;
	if (s->map)
		munmap(s->map, s->map_len);
	if (s->fd >= 0)
		close(s->fd);
	tsc_clock__free(&s->clock);
	u64map_free(&s->next_sequence);
	free(s->ready);
	free(s->events);
	free(s->plan_index);
	free(s->sites);
	free(s);
}

static struct agent_buffer *buffer_at(const struct agent_session *s, uint32_t i)
{
	return (struct agent_buffer *)(s->pool + (size_t)i * s->buffer_size);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int thread_is_gone(pid_t pid, uint32_t tid)
{
	return syscall(SYS_tgkill, pid, tid, 0) < 0 && errno == ESRCH;
}

/* Buffers to write now: every full one; with `final`, every used one; and
 * now and then those owned by threads that died without handing them over. */
static int collect_ready(struct agent_session *s, bool final, size_t *count)
{
	bool check_dead = !final && now_ns() - s->last_dead_check_ns > DEAD_THREAD_CHECK_NS;

	if (check_dead)
		s->last_dead_check_ns = now_ns();
	*count = 0;
	for (uint32_t i = 0; i < s->buffer_count; i++) {
		struct agent_buffer *b = buffer_at(s, i);
		uint32_t state = __atomic_load_n(&b->state, __ATOMIC_ACQUIRE);
		bool take = state == AGENT_BUFFER_FULL ||
			    (state == AGENT_BUFFER_OWNED && (final || (check_dead && thread_is_gone(s->pid, b->tid))));

		if (!take)
			continue;
		if (ARRAY_RESERVE(s->ready, s->ready_capacity, *count + 1))
			return -ENOMEM;
		s->ready[(*count)++] = b;
	}
	return 0;
}

static int by_stream_then_sequence(const void *x, const void *y)
{
	const struct agent_buffer *a = *(struct agent_buffer *const *)x, *b = *(struct agent_buffer *const *)y;

	if (a->stream != b->stream)
		return a->stream < b->stream ? -1 : 1;
	return a->sequence < b->sequence ? -1 : a->sequence > b->sequence;
}

/* A site's record as the event its uprobe gives (bpf/poll.bpf.c's
 * fill_inlined and fill_inlined_exit, from the same cookie): the body's
 * entry (its future in a register; RESUMED at a resume point) or its exit
 * with the state it stored, the stack pointer moved into the host's frame
 * by the body's level. */
static void site_event(const struct agent_site *site, const struct agent_record *r, struct trace_event *e)
{
	uint64_t cookie = site->cookie, state = cookie >> COOKIE_OFFSET_SHIFT;

	e->func_id = site->func_id;
	e->sp = r->sp + 7 - ((cookie >> COOKIE_LEVEL_SHIFT) & COOKIE_LEVEL_MASK);
	if (((cookie >> COOKIE_KIND_SHIFT) & COOKIE_KIND_MASK) == PROBE_KIND_EXIT) {
		e->kind = TRACE_EVENT_EXIT;
		e->aux = state, e->flags |= TRACE_EVENT_STATE;
		return;
	}
	e->arg0 = r->value;
	if (state)
		e->flags |= TRACE_EVENT_RESUMED;
}

/* A record of the agent as a trace event, or 0 when it is not one. */
static int to_event(struct agent_session *s, const struct agent_record *r, struct trace_event *e,
		    size_t *hint)
{
	uint32_t func_id = AGENT_HEADER_FUNC(r->header);
	unsigned kind = AGENT_HEADER_KIND(r->header);
	const struct agent_plan_function *f;

	if (func_id >= s->fns->count + s->site_count || !s->plan_index[func_id] ||
	    (kind != AGENT_KIND_ENTRY && kind != AGENT_KIND_EXIT))
		return 0;
	f = &s->plan->functions[s->plan_index[func_id] - 1];
	*e = (struct trace_event){
		.ts = tsc_clock__ns(&s->clock, r->tsc, hint),
		.sp = r->sp,
		.func_id = func_id,
		.pid = (uint32_t)s->pid,
		.kind = kind == AGENT_KIND_ENTRY ? TRACE_EVENT_ENTRY : TRACE_EVENT_EXIT,
	};
	if (f->flags & AGENT_FN_SITE) {
		if (kind != AGENT_KIND_ENTRY)
			return 0;
		site_event(&s->sites[func_id - s->fns->count], r, e);
		return 1;
	}
	if (kind == AGENT_KIND_ENTRY) {
		if (f->entry_value == AGENT_VALUE_ARG1)
			e->arg1 = r->value;
		else if (f->entry_value == AGENT_VALUE_RETURN_ADDRESS)
			e->aux = r->value, e->flags |= TRACE_EVENT_RETURN_ADDRESS;
		else
			e->arg0 = r->value;
		return 1;
	}
	if (f->exit_value == AGENT_VALUE_RDX)
		e->arg1 = r->value;
	else if (f->exit_value == AGENT_VALUE_MEMORY)
		e->arg1 = r->value, e->flags |= TRACE_EVENT_ARG1_FROM_MEMORY;
	else
		e->arg0 = r->value;
	if (AGENT_HEADER_FLAGS(r->header) & AGENT_FLAG_STATE)
		e->aux = AGENT_HEADER_STATE(r->header), e->flags |= TRACE_EVENT_STATE;
	return 1;
}

/* Converts buffer b. A record whose header is 0 is still being written
 * (a signal handler interrupted it): then the buffer waits, unless the
 * writer is gone (`final`), when the record is counted as lost. Returns
 * the number of events, or -EAGAIN. */
static ssize_t convert_buffer(struct agent_session *s, const struct agent_buffer *b, bool final)
{
	const struct agent_record *records = (const void *)((const uint8_t *)b + sizeof(*b));
	uint64_t used = __atomic_load_n(&b->used, __ATOMIC_ACQUIRE);
	size_t count = (used < b->capacity ? used : b->capacity) / AGENT_RECORD_SIZE, n = 0, hint = 0;
	uint64_t incomplete = 0, invalid = 0;

	for (size_t i = 0; i < count; i++) {
		uint64_t header = __atomic_load_n(&records[i].header, __ATOMIC_ACQUIRE);

		if (!header) {
			if (!final)
				return -EAGAIN;
			incomplete++;
			continue;
		}
		if (to_event(s, &records[i], &s->events[n], &hint))
			n++;
		else
			invalid++;
	}
	s->incomplete += incomplete;
	s->invalid += invalid;
	return (ssize_t)n;
}

/* Back to the pool, zeroed: a header of 0 must mean "not written". */
static void recycle(struct agent_buffer *b)
{
	uint64_t used = b->used < b->capacity ? b->used : b->capacity;

	memset((uint8_t *)b + sizeof(*b), 0, used);
	b->used = 0;
	b->tid = 0;
	b->stream = 0;
	__atomic_store_n(&b->state, AGENT_BUFFER_FREE, __ATOMIC_RELEASE);
}

static int write_buffer(struct agent_session *s, struct agent_buffer *b, ssize_t n, bool thread_gone)
{
	int err = 0;

	if (b->comm[0] && s->cb.on_thread) {
		char comm[17];

		memcpy(comm, b->comm, 16);
		comm[16] = '\0';
		s->cb.on_thread(b->tid, comm, s->cb.ctx);
	}
	if (n > 0)
		err = s->cb.on_events(b->stream, b->tid, s->events, (size_t)n, s->cb.ctx);
	if (!err && thread_gone && s->cb.on_stream_end)
		err = s->cb.on_stream_end(b->stream, s->cb.ctx);
	s->records += (uint64_t)n;
	return err;
}

/* Writes b if it is its stream's next buffer; then the stream's next one
 * may follow in this drain. Returns 1 when written, 0 when it waits. */
static int drain_buffer(struct agent_session *s, struct agent_buffer *b, bool final)
{
	uintptr_t expected = (uintptr_t)u64map_get(&s->next_sequence, b->stream);
	ssize_t n;
	int err;

	if (!final && expected && b->sequence != expected - 1)
		return 0;
	n = convert_buffer(s, b, final);
	if (n == -EAGAIN)
		return 0;
	err = write_buffer(s, b, n, b->thread_exited || __atomic_load_n(&b->state, __ATOMIC_ACQUIRE) == AGENT_BUFFER_OWNED);
	if (b->stream && u64map_put(&s->next_sequence, b->stream, (void *)(uintptr_t)(b->sequence + 2)))
		err = err ? err : -ENOMEM;
	recycle(b);
	return err < 0 ? err : 1;
}

void agent_session__wait(struct agent_session *s, int timeout_ms)
{
	struct timespec timeout = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000 };
	uint32_t seen = s->seen_handovers;

	/* The agent adds to handovers, then looks at recorder_waiting; we set
	 * it, then look at handovers: one of us sees the other. */
	__atomic_store_n(&s->region->recorder_waiting, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&s->region->handovers, __ATOMIC_SEQ_CST) == seen)
		syscall(SYS_futex, &s->region->handovers, FUTEX_WAIT, seen, &timeout, NULL, 0);
	__atomic_store_n(&s->region->recorder_waiting, 0, __ATOMIC_SEQ_CST);
}

int agent_session__drain(struct agent_session *s, bool final)
{
	size_t count;
	uint64_t blocked_stream = 0;
	int err;

	s->seen_handovers = __atomic_load_n(&s->region->handovers, __ATOMIC_SEQ_CST);
	err = collect_ready(s, final, &count);

	if (err || !count)
		return err;
	/* Every record of these buffers was stamped before this pair. */
	err = tsc_clock__sample(&s->clock);
	if (err)
		return err;
	qsort(s->ready, count, sizeof(*s->ready), by_stream_then_sequence);
	for (size_t i = 0; i < count; i++) {
		struct agent_buffer *b = s->ready[i];
		int rc;

		if (blocked_stream && b->stream == blocked_stream)
			continue; /* an earlier buffer of its stream waits */
		rc = drain_buffer(s, b, final);
		if (rc < 0)
			return rc;
		blocked_stream = rc ? 0 : b->stream;
	}
	return 0;
}
