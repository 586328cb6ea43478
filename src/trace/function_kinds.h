/* What a probed function is, as the trace format stores it: its context
 * class, how its Poll<T> result is laid out, its role, its await points,
 * its runtime. The ELF/DWARF reader (src/elf/) finds these, every capture
 * backend records them, the analyses read them. Values are stored in trace
 * files: never renumber. */
#ifndef ASYNCTRACE_TRACE_FUNCTION_KINDS_H
#define ASYNCTRACE_TRACE_FUNCTION_KINDS_H

#include <stdint.h>

/* Context classes of the CAT design (seed 001). Values are stored in trace
 * files: never renumber. */
enum context_class {
	CONTEXT_TASK = 0,      /* the runtime's task poll (tokio Harness::poll, ...) */
	CONTEXT_COMPILER = 1,  /* poll of an `async fn` state machine */
	CONTEXT_USER = 2,      /* hand-written `impl Future for X { fn poll }` */
	CONTEXT_ANONYMOUS = 3, /* `async {}` blocks, async closures: no name of their own */
	CONTEXT_FUNCTION = 4,  /* any other function, probed on request (record --function) */
};
/* "task", "compiler-generated", "user-implemented", "anonymous", "function". */
const char *context_class__name(enum context_class context);

/* How the Poll<T> returned by the function is laid out, so a raw return
 * value can be turned into Ready/Pending. Values are stored in trace files. */
enum result_mode {
	RESULT_UNKNOWN = 0, /* no DWARF, or not a Poll<T>: result not decoded */
	RESULT_IN_REGS = 1, /* returned in the two integer return registers, seen as
			     * one little-endian value: bytes 0..7 in rax, 8..15 in rdx */
	RESULT_IN_MEMORY = 2, /* returned through a hidden pointer; the callee returns it in rax */
	/* Release builds (no Poll<T> type in DWARF): an async body's state byte
	 * after the poll says, 1 (Returned) Ready, 3 + N (at await N) Pending;
	 * its place comes from the code's state dispatch. */
	RESULT_FROM_STATE = 3,
};

/* Which mode rustc uses (measured on x86_64 code of rustc 1.95; the rule is
 * rustc's target-independent Rust-ABI adjustment, so riscv64's a0:a1 work
 * alike): Poll<T> of one scalar (Poll<()>, Poll<bool>: 1 byte) or of two
 * scalars (Poll<u32>: tag + value, Poll<Option<u64>>) is returned in
 * registers, one scalar per register whatever its offset in memory (a float
 * scalar goes to xmm0 and takes no integer register); other aggregates are
 * returned in rax when they fit in 8 bytes, else in memory (also 16-byte
 * ones such as Poll<(u32, u32, u32)>). Hence disc_offset is a position in
 * the register pair, not always the offset in memory: Poll<(u32, bool)> has
 * its niche at offset 4 but returns it in dl, so disc_offset is 8. */
struct poll_result_layout {
	uint8_t mode;           /* enum result_mode */
	uint8_t disc_size;      /* bytes of the discriminant (1, 2, 4 or 8) */
	uint16_t disc_offset;   /* REGS: byte position in rax:rdx; MEMORY: offset in Poll<T> */
	uint64_t pending_value; /* discriminant value meaning Poll::Pending */
};
/* Left RESULT_UNKNOWN: functions not returning Poll<T>, Poll<!>-like types
 * (no Pending value in DWARF; rustc always gives Pending one when Ready can
 * exist), u128 tags (Poll<u128>) and discriminants that are not a scalar of
 * their own. */

/* What DWARF (or, without it, the code) says the symbol's body is. */
enum body_kind {
	BODY_UNKNOWN = 0,
	BODY_ASYNC_FN = 1,    /* {async_fn#N} */
	BODY_ASYNC_BLOCK = 2, /* {async_block#N} */
	BODY_POLL_IMPL = 3,   /* a `Future::poll` method */
	BODY_RUNTIME = 4,     /* a runtime's task-poll function */
};

/* What probing a function tells. Poll functions get entry and exit probes;
 * the others (runtime hooks, drop glue) are probed to follow tasks and
 * future instances. Values are stored in trace files: never renumber. */
enum function_role {
	ROLE_POLL = 0,         /* polls a future: entry + every exit */
	ROLE_WAKE = 1,         /* a waker vtable's wake (by value): entry; arg 0 = waker data (the task) */
	ROLE_WAKE_BY_REF = 2,  /* a waker vtable's wake_by_ref: entry; arg 0 = waker data */
	ROLE_SPAWN = 3,        /* a runtime's public spawn, called from user code: entry; the
				* return address (read at the entry's stack pointer) is the spawn site */
	ROLE_TASK_NEW = 4,     /* allocates a task: exits; the return value is the task pointer */
	ROLE_TASK_FREE = 5,    /* frees a task: entry; arg 0 = the task pointer */
	ROLE_DROP = 6,         /* drop glue of the future a poll function polls: entry;
				* arg 0 = the future (the poll function's self) */
};

/* An `.await` of an async fn/block body: while suspended there, the state
 * machine's discriminant holds `state` (the SuspendN variant's value). */
struct await_point {
	uint64_t state;
	uint32_t line;          /* DW_AT_decl_line of the SuspendN variant member */
	char *file;             /* its DW_AT_decl_file when not the async body's own
				 * (an .await inside join!/select!: the macro's file) */
};

enum runtime_kind {
	RUNTIME_NONE = 0,
	RUNTIME_TOKIO = 1,
	RUNTIME_ASYNC_TASK = 2, /* async-task: smol, async-executor, async-std */
	RUNTIME_ASYNC_STD = 3,
	RUNTIME_FUTURES = 4,    /* futures-executor */
};

#endif
