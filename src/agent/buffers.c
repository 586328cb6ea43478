/* The slow path of the trampoline: a thread's first record, a full buffer,
 * records dropped when no buffer is free. Runs in the middle of arbitrary
 * program code (even in a signal handler), so it allocates nothing, takes
 * no lock, leaves errno and every vector register alone (this file is
 * compiled with -mgeneral-regs-only and calls no libc function that could
 * use them), and blocks signals while it changes the thread's buffer. */
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "agent/agent.h"

#define TLS_INITIAL_EXEC __attribute__((tls_model("initial-exec")))

/* While dropping, try the pool again every this many records. */
#define DROP_RETRY_INTERVAL 256

/* Stream ids of the agent start here; the uprobe backend's are thread ids. */
#define AGENT_FIRST_STREAM (1ull << 32)

/* What the trampoline reads: the buffer this thread writes into. */
__thread struct agent_buffer *asynctrace_tls_buffer TLS_INITIAL_EXEC AGENT_HIDDEN;

struct agent_thread {
	uint64_t stream;            /* 0 until the thread's first record */
	uint64_t next_sequence;
	uint32_t tid;
	uint32_t drops_since_try;
	int exit_hook_set;
	/* Capacity 0: every record reserved in it goes to the slow path, which
	 * counts it as lost. */
	struct agent_buffer drop;
};

static __thread struct agent_thread thread_state TLS_INITIAL_EXEC;

struct agent_buffer *asynctrace_agent_refill(struct agent_buffer *current) AGENT_HIDDEN;

long agent_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

static void block_signals(uint64_t *old)
{
	uint64_t all = ~0ull;

	agent_syscall6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&all, (long)old, sizeof(all), 0, 0);
}

static void restore_signals(const uint64_t *old)
{
	agent_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)old, 0, sizeof(*old), 0, 0);
}

static int is_pool_buffer(const struct agent *a, const struct agent_buffer *b)
{
	uintptr_t offset = (uintptr_t)b - (uintptr_t)a->pool;

	return (uintptr_t)b >= (uintptr_t)a->pool && offset < (uintptr_t)a->buffer_count * a->buffer_size &&
	       offset % a->buffer_size == 0;
}

/* The buffer goes to record, which is woken when it sleeps: prompt drains
 * keep the pool's working set small and its pages mapped. */
static void hand_over(struct agent *a, struct agent_buffer *b)
{
	uint32_t owned = AGENT_BUFFER_OWNED;

	if (!__atomic_compare_exchange_n(&b->state, &owned, AGENT_BUFFER_FULL, 0, __ATOMIC_RELEASE,
					 __ATOMIC_RELAXED))
		return;
	__atomic_add_fetch(&a->region->handovers, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&a->region->recorder_waiting, __ATOMIC_SEQ_CST))
		agent_syscall6(SYS_futex, (long)&a->region->handovers, FUTEX_WAKE, 1, 0, 0, 0);
}

static void name_buffer(struct agent_buffer *b)
{
	char name[16] = { 0 };

	agent_syscall6(SYS_prctl, PR_GET_NAME, (long)name, 0, 0, 0, 0);
	for (int i = 0; i < 16; i++)
		b->comm[i] = name[i];
}

static void start_thread(struct agent *a, struct agent_thread *t)
{
	if (t->stream)
		return;
	t->stream = AGENT_FIRST_STREAM + __atomic_fetch_add(&a->region->next_stream, 1, __ATOMIC_RELAXED);
	t->tid = (uint32_t)agent_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0);
}

/* A buffer's first use maps all its pages in one call, rather than one
 * page fault at a time in the middle of the program's polls (record
 * allocated them: no zeroing here). They stay mapped for later uses. */
static void prefault(const struct agent *a, struct agent_buffer *b)
{
	if (b->mapped)
		return;
	agent_syscall6(SYS_madvise, (long)b, a->buffer_size, MADV_POPULATE_WRITE, 0, 0, 0);
	b->mapped = 1;
}

/* A free buffer of the pool, now the thread's, or NULL. */
static struct agent_buffer *take_free_buffer(struct agent *a, struct agent_thread *t)
{
	for (uint32_t i = 0; i < a->buffer_count; i++) {
		struct agent_buffer *b = (struct agent_buffer *)(a->pool + (size_t)i * a->buffer_size);
		uint32_t free_state = AGENT_BUFFER_FREE;

		if (__atomic_load_n(&b->state, __ATOMIC_RELAXED) != AGENT_BUFFER_FREE ||
		    !__atomic_compare_exchange_n(&b->state, &free_state, AGENT_BUFFER_OWNED, 0,
						 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			continue;
		b->tid = t->tid;
		b->stream = t->stream;
		b->sequence = t->next_sequence++;
		b->thread_exited = 0;
		name_buffer(b);
		prefault(a, b);
		return b;
	}
	return NULL;
}

/* The key's destructor runs at thread exit (after the program's own TLS
 * destructors, which may still be traced) and hands the last buffer over. */
static void set_exit_hook(struct agent *a, struct agent_thread *t)
{
	if (t->exit_hook_set || !a->thread_key_ok)
		return;
	if (pthread_setspecific(a->thread_key, t) == 0)
		t->exit_hook_set = 1;
}

static struct agent_buffer *drop_record(struct agent *a, struct agent_thread *t)
{
	__atomic_fetch_add(&a->region->lost, 1, __ATOMIC_RELAXED);
	t->drop.used = 0;
	asynctrace_tls_buffer = &t->drop;
	return NULL;
}

static struct agent_buffer *switch_buffer(struct agent *a, struct agent_thread *t,
					  struct agent_buffer *current)
{
	struct agent_buffer *next = asynctrace_tls_buffer;

	/* A signal handler may have switched buffers before we got here. */
	if (next != current && next && is_pool_buffer(a, next) && next->used < next->capacity)
		return next;
	if (current && is_pool_buffer(a, current))
		hand_over(a, current);
	start_thread(a, t);
	next = take_free_buffer(a, t);
	if (!next)
		return drop_record(a, t);
	asynctrace_tls_buffer = next;
	set_exit_hook(a, t);
	return next;
}

struct agent_buffer *asynctrace_agent_refill(struct agent_buffer *current)
{
	struct agent *a = &asynctrace_agent;
	struct agent_thread *t = &thread_state;
	struct agent_buffer *next;
	uint64_t old_mask;

	if (!__atomic_load_n(&a->active, __ATOMIC_ACQUIRE)) {
		t->drop.used = 0;
		asynctrace_tls_buffer = &t->drop;
		return NULL; /* not recording (a fork's child): nothing to count */
	}
	if (current == &t->drop && ++t->drops_since_try < DROP_RETRY_INTERVAL)
		return drop_record(a, t);
	t->drops_since_try = 0;
	block_signals(&old_mask);
	next = switch_buffer(a, t, current == &t->drop ? NULL : current);
	restore_signals(&old_mask);
	return next;
}

static void on_thread_exit(void *arg)
{
	struct agent *a = &asynctrace_agent;
	struct agent_thread *t = arg;
	struct agent_buffer *b;
	uint64_t old_mask;

	block_signals(&old_mask);
	b = asynctrace_tls_buffer;
	if (b && is_pool_buffer(a, b)) {
		b->thread_exited = 1;
		hand_over(a, b);
	}
	asynctrace_tls_buffer = NULL;
	t->exit_hook_set = 0; /* traced code in later destructors takes a buffer again */
	restore_signals(&old_mask);
}

void agent_buffers_init(struct agent *a)
{
	int saved = errno;

	a->thread_key_ok = pthread_key_create(&a->thread_key, on_thread_exit) == 0;
	errno = saved;
}

void agent_buffers_detach_thread(void)
{
	thread_state.drop.used = 0;
	asynctrace_tls_buffer = &thread_state.drop;
}
