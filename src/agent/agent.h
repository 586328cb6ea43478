/* The in-process agent's own state and its parts: the constructor
 * (agent.c), the patcher (patch.c) and the buffers (buffers.c). One agent
 * per process, hence one global: it is reached from the trampoline, which
 * has no arguments to spare. Everything is hidden: the agent exports no
 * symbol the program could bind to. */
#ifndef ASYNCTRACE_AGENT_AGENT_H
#define ASYNCTRACE_AGENT_AGENT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/agent_abi.h"

#define AGENT_HIDDEN __attribute__((visibility("hidden")))

/* Per function, at run time: what the trampoline reads (40 bytes, the
 * AGENT_DESC_* offsets). */
struct agent_descriptor {
	uint64_t relocated;         /* the moved instructions, followed by a jump back */
	uint64_t entry_header;      /* 0: no entry record */
	uint64_t exit_header;       /* 0: no exit record */
	uint8_t entry_value;
	uint8_t exit_value;
	uint8_t state_size;
	uint8_t memory_size;
	uint16_t state_offset;
	uint16_t memory_offset;
	uint8_t value_reg;          /* AGENT_VALUE_REGISTER */
	uint8_t reserved[7];
};

/* Where the main executable's code is, from its program headers. */
struct agent_image {
	uintptr_t bias;             /* address in memory - address in the file */
	uintptr_t start, end;       /* lowest and highest mapped address of its PT_LOADs */
};

struct agent {
	struct agent_region *region;
	size_t region_size;
	struct agent_plan *plan;
	uint8_t *pool;              /* the first buffer */
	uint32_t buffer_count;
	uint32_t buffer_size;
	int active;                 /* records go to the pool; 0 in a fork's child */
	pthread_key_t thread_key;   /* its destructor hands a thread's last buffer over */
	int thread_key_ok;
	struct agent_image image;
	uint8_t *stubs;             /* stubs and relocated prologues (anonymous, near the code) */
	size_t stubs_size;
};

extern struct agent asynctrace_agent AGENT_HIDDEN;

/* patch.c: applies the plan; per-function results go to the plan entries.
 * Returns the number of functions patched, or a negative errno with
 * `why` filled when nothing could be done. */
int agent_patch_apply(struct agent *a, char *why, size_t why_len) AGENT_HIDDEN;
/* In a fork's child: puts the original bytes back (single-threaded). */
void agent_patch_revert(struct agent *a) AGENT_HIDDEN;
int agent_find_image(struct agent_image *image) AGENT_HIDDEN;

/* buffers.c */
void agent_buffers_init(struct agent *a) AGENT_HIDDEN;
/* The calling thread records nothing more (fork's child). */
void agent_buffers_detach_thread(void) AGENT_HIDDEN;

/* Raw system calls: the slow path must not touch errno or call into libc
 * code that may use vector registers. */
long agent_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6) AGENT_HIDDEN;

#endif
