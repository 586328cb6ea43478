/* The one layout shared by the in-process agent (libasynctrace-agent.so,
 * src/agent/) and `record` (src/probe/agent_session.c): a memfd that record
 * creates and the agent maps, holding
 *
 *   [ struct agent_region | plan (agent_plan + functions) | buffer pool ]
 *
 * The plan says what to patch; the pool is where the target's threads write
 * their records, handed over buffer by buffer without locks. Fixed-width
 * types only; offsets the assembly trampoline uses are #defines checked by
 * _Static_assert in agent.c. */
#ifndef ASYNCTRACE_AGENT_ABI_H
#define ASYNCTRACE_AGENT_ABI_H

/* Offsets used by trampoline_x86_64.S (checked against the structs). */
#define AGENT_BUFFER_USED 0       /* reservation cursor, bytes */
#define AGENT_BUFFER_COMMITTED 8  /* bytes of records fully written */
#define AGENT_BUFFER_CAPACITY 16  /* data bytes, a multiple of the record size */
#define AGENT_BUFFER_HEADER_SIZE 128 /* data follows the header */

#define AGENT_DESC_RELOCATED 0    /* where the moved prologue runs */
#define AGENT_DESC_ENTRY_HEADER 8 /* last word of an entry record */
#define AGENT_DESC_EXIT_HEADER 16 /* last word of an exit record (state added) */
#define AGENT_DESC_ENTRY_VALUE 24 /* u8 AGENT_VALUE_* */
#define AGENT_DESC_EXIT_VALUE 25  /* u8 AGENT_VALUE_* */
#define AGENT_DESC_STATE_SIZE 26  /* u8: 0 none, 1, 2 or 4 */
#define AGENT_DESC_MEMORY_SIZE 27 /* u8: bytes of the Poll<T> discriminant read at rax + memory_offset */
#define AGENT_DESC_STATE_OFFSET 28 /* u16 */
#define AGENT_DESC_MEMORY_OFFSET 30 /* u16 */
#define AGENT_DESC_REGISTER 32    /* u8: AGENT_VALUE_REGISTER's register */
#define AGENT_DESC_SIZE 40

#define AGENT_RECORD_SIZE 32

/* Which register or memory word a record's value is. */
#define AGENT_VALUE_NONE 0
#define AGENT_VALUE_ARG0 1        /* entry: rdi */
#define AGENT_VALUE_ARG1 2        /* entry: rsi */
#define AGENT_VALUE_RETURN_ADDRESS 3 /* entry: the caller's return address */
#define AGENT_VALUE_RAX 4         /* exit */
#define AGENT_VALUE_RDX 5         /* exit */
#define AGENT_VALUE_MEMORY 6      /* exit: memory_size bytes at rax + memory_offset */
#define AGENT_VALUE_REGISTER 7    /* site: the register `value_reg` as the code there sees it
				   * (x86 encoding numbers: 0 rax, 1 rcx, 2 rdx, 3 rbx, 4 rsp,
				   * 5 rbp, 6 rsi, 7 rdi, 8..15 r8..r15) */

/* Record kinds (bits 24..27 of the header word). */
#define AGENT_KIND_ENTRY 1
#define AGENT_KIND_EXIT 2

/* Record flags (bits 28..31 of the header word). */
#define AGENT_FLAG_STATE 0x1      /* exit: bits 32..47 hold the state discriminant */

#ifndef __ASSEMBLER__
#include <stdint.h>

#define AGENT_REGION_MAGIC 0x54474154434e5941ULL /* "AYNCTATG" */
#define AGENT_ABI_VERSION 2 /* 2: mid-function sites (AGENT_FN_SITE) */

/* Where the agent is (agent_region.agent_state). */
enum agent_state {
	AGENT_NOT_LOADED = 0,   /* record waits for this to change */
	AGENT_PATCHED = 1,      /* plan applied; per-function results in agent_plan_function.result */
	AGENT_REFUSED = 2,      /* nothing patched; message says why */
};

/* What became of one planned function (agent_plan_function.result). */
enum agent_patch_result {
	AGENT_PATCH_PENDING = 0,
	AGENT_PATCH_APPLIED = 1,
	AGENT_PATCH_BYTES_DIFFER = 2,  /* the code in memory is not what was planned */
	AGENT_PATCH_OUT_OF_REACH = 3,  /* no stub memory within a 32-bit jump */
	AGENT_PATCH_FAILED = 4,        /* mprotect refused */
};

/* Buffer states (agent_buffer.state). */
#define AGENT_BUFFER_FREE 0
#define AGENT_BUFFER_OWNED 1      /* a thread writes into it */
#define AGENT_BUFFER_FULL 2       /* handed over; record writes it out and frees it */

/* Written by record before exec; the agent writes back the fields marked
 * "agent". 4096 bytes. */
struct agent_region {
	uint64_t magic;
	uint32_t abi_version;
	uint32_t region_size_pages;
	uint64_t plan_offset;
	uint64_t plan_size;
	uint64_t buffers_offset;
	uint32_t buffer_count;
	uint32_t buffer_size;       /* bytes, header included */
	uint32_t target_pid;        /* the process record started: a fork's child is not it */
	uint32_t reserved0;
	/* agent */
	uint32_t agent_state;       /* enum agent_state; written last (release) */
	uint32_t go;                /* record -> agent: 1 = run main (futex word) */
	uint32_t patched;
	uint32_t refused;
	uint64_t lost;              /* records dropped: no free buffer */
	uint64_t next_stream;       /* stream ids handed to threads */
	uint64_t load_bias;         /* address in the process - address in the file */
	uint64_t agent_tsc;         /* rdtsc when the agent started */
	uint32_t handovers;         /* buffers handed over (futex word record sleeps on) */
	uint32_t recorder_waiting;  /* record sleeps on handovers: wake it */
	char message[256];          /* why the agent refused, for record to print */
	uint8_t pad[4096 - 112 - 256];
};

/* One function (or mid-function site) to patch. addr is the first patched byte, after any
 * endbr64 that stays in place; `length` whole instructions are moved to a
 * stub near the code and replaced by a 5-byte jump. */
struct agent_plan_reloc {
	uint16_t disp_offset;       /* of the rel32 inside the moved bytes */
	uint16_t insn_end;          /* offset of the end of its instruction (rip at execution) */
	uint32_t reserved;
	uint64_t target;            /* absolute target address in the file */
};

#define AGENT_MAX_MOVED 32
#define AGENT_MAX_RELOCS 4
/* The padded layout: the AGENT_PAD_SIZE bytes before the function (before
 * any endbr64: at addr - pad) are padding, all AGENT_PAD_BYTE and in no
 * function. The full jump goes there, and a 2-byte `jmp rel8` at addr
 * reaches it; at least 2 bytes move. */
#define AGENT_PAD_SIZE 5
#define AGENT_PAD_BYTE 0xcc

/* Per-function flags. */
#define AGENT_FN_ENTRY 0x1          /* write an entry record */
#define AGENT_FN_EXIT 0x2           /* call through and write an exit record */
/* A mid-function site (an inlined async body's dispatch, resume point or
 * exit): one record (kind entry, func_id = the site's id, which record maps
 * to what it means), every register and the flags kept, the red zone left
 * alone; then the moved instructions run where the code would have. Alone:
 * never with AGENT_FN_ENTRY/EXIT, never padded. */
#define AGENT_FN_SITE 0x4

struct agent_plan_function {
	uint64_t addr;              /* file address (st_value-based) of the first patched byte */
	uint32_t func_id;           /* index in the trace's function table */
	uint8_t length;             /* bytes moved */
	uint8_t reloc_count;
	uint8_t flags;              /* AGENT_FN_* */
	uint8_t entry_value;        /* AGENT_VALUE_* */
	uint8_t exit_value;         /* AGENT_VALUE_* */
	uint8_t state_size;         /* 0, 1, 2 or 4: read at self + state_offset at exit */
	uint8_t memory_size;        /* AGENT_VALUE_MEMORY: 1, 2, 4 or 8 */
	uint8_t result;             /* agent: enum agent_patch_result */
	uint16_t state_offset;
	uint16_t memory_offset;
	uint8_t pad;                /* padded layout: the full jump is at addr - pad (0: at addr) */
	uint8_t value_reg;          /* AGENT_VALUE_REGISTER: which register (0..15) */
	uint8_t reserved[6];
	uint8_t original[AGENT_MAX_MOVED]; /* the moved instructions, as in the file */
	struct agent_plan_reloc relocs[AGENT_MAX_RELOCS];
};

struct agent_plan {
	uint32_t function_count;
	uint32_t reserved;
	uint64_t anchor_addr;       /* a file address the agent checks is mapped (the first function) */
	struct agent_plan_function functions[];
};

/* A pool buffer: 128-byte header, then records. The owning thread is the
 * only writer of used/committed; record only reads them, and resets them
 * before freeing the buffer. */
struct agent_buffer {
	uint64_t used;              /* reservation cursor: a single xadd reserves a record */
	uint64_t committed;         /* bytes of records completely written */
	uint64_t capacity;
	uint32_t state;             /* AGENT_BUFFER_*; changed by compare-and-swap */
	uint32_t tid;
	uint64_t stream;            /* the writing thread instance (ids are never reused) */
	uint64_t sequence;          /* this buffer's place in its stream */
	char comm[16];              /* the thread's name when it took the buffer */
	uint32_t mapped;            /* the agent prefaulted its pages (they stay mapped in the target) */
	uint32_t thread_exited;     /* handed over by the thread's exit: its stream ends here */
	uint8_t pad[128 - 72];
};

/* A record: 32 bytes, header word last, so a record whose header is 0 was
 * never completed (buffers are zeroed before reuse). */
struct agent_record {
	uint64_t tsc;               /* rdtsc */
	uint64_t sp;                /* the stack pointer at the function's entry */
	uint64_t value;             /* the value the plan asked for (AGENT_VALUE_*) */
	uint64_t header;            /* func_id (bits 0..23) | kind << 24 | flags << 28 | state << 32 */
};

#define AGENT_HEADER_FUNC(h) ((uint32_t)((h) & 0xffffff))
#define AGENT_HEADER_KIND(h) ((unsigned)(((h) >> 24) & 0xf))
#define AGENT_HEADER_FLAGS(h) ((unsigned)(((h) >> 28) & 0xf))
#define AGENT_HEADER_STATE(h) ((uint32_t)(((h) >> 32) & 0xffff))
#define AGENT_MAX_FUNCTIONS (1u << 24)

/* Environment of the target (removed by the agent before main). */
#define AGENT_ENV_FD "ASYNCTRACE_AGENT_FD"
#define AGENT_ENV_PRELOAD "ASYNCTRACE_LD_PRELOAD" /* the user's LD_PRELOAD, restored; unset: none */

#endif /* __ASSEMBLER__ */
#endif
