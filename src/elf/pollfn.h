/* The functions that poll futures in one ELF file: what `symbols` lists and
 * what `record` probes. Built from .symtab/.dynsym (libelf), demangled with
 * libiberty, refined with DWARF (libdw) where the file has it. */
#ifndef ASYNCTRACE_ELF_POLLFN_H
#define ASYNCTRACE_ELF_POLLFN_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
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

/* How the Poll<T> returned by the function is laid out, so a raw return
 * value can be turned into Ready/Pending. Values are stored in trace files. */
enum result_mode {
	RESULT_UNKNOWN = 0, /* no DWARF, or not a Poll<T>: result not decoded */
	RESULT_IN_REGS = 1, /* returned in the two integer return registers, seen as
			     * one little-endian value: bytes 0..7 in rax, 8..15 in rdx */
	RESULT_IN_MEMORY = 2, /* returned through a hidden pointer; the callee returns it in rax */
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

/* Where an async body's state machine keeps its discriminant (`__state`),
 * and which value is which await (from the DWARF of {async_fn_env#N}). */
struct state_layout {
	uint16_t offset;        /* byte offset of __state in the state machine */
	uint8_t size;           /* 0: unknown (no DWARF types); else 1, 2 or 4 */
	struct await_point *awaits; /* malloc'd, sorted by state */
	size_t await_count;
};

/* Whether the function may take arguments on the stack (x86-64 only;
 * src/elf/stack_args.c has the rules and how they were checked). The
 * in-process agent's call-through trampoline shifts the stack by its own
 * frame, so only STACK_ARGS_NONE functions may be called through. */
enum stack_args {
	STACK_ARGS_UNKNOWN = 0, /* no DWARF types (release builds), another machine, or a
				 * signature the optimiser changed */
	STACK_ARGS_NONE = 1,    /* every argument in registers */
	STACK_ARGS_SOME = 2,    /* some argument may be on the stack, or variadic */
};

struct poll_fn {
	uint64_t addr;        /* st_value */
	uint64_t size;        /* st_size */
	uint64_t file_offset; /* where uprobes attach: st_value - p_vaddr + p_offset */
	char *mangled;
	char *demangled;      /* hash suffix removed, as `rustfilt` prints it */
	uint8_t context;      /* enum context_class */
	uint8_t body;         /* enum body_kind */
	/* Index of the argument holding the future (`self`): 1 when the result
	 * is returned through a hidden pointer passed as argument 0. */
	uint8_t self_arg;
	struct poll_result_layout result;
	char *source_file;    /* from DWARF decl_file, or NULL */
	unsigned source_line; /* from DWARF decl_line, or 0 */
	uint8_t role;         /* enum function_role */
	uint8_t runtime;      /* enum runtime_kind, for task polls and hooks */
	/* ROLE_DROP: index in the list of the poll function whose future this
	 * glue drops (all poll functions of one state-machine type share it: the
	 * glue is listed once per type, with the first). */
	uint32_t target;
	/* enum stack_args, from DWARF (poll functions, hooks, and functions
	 * added with poll_fn_list__add_functions) */
	uint8_t stack_args;
	struct state_layout state; /* async bodies (BODY_ASYNC_FN/BLOCK) */
	/* The polled future's type as DWARF names it (`crate::f::{async_fn_env#0}`,
	 * `targets::YieldNow`): T of the `self: Pin<&mut T>` parameter; for drop
	 * glue, T of drop_in_place<T>. NULL without DWARF types. */
	char *future_type;
};

enum runtime_kind {
	RUNTIME_NONE = 0,
	RUNTIME_TOKIO = 1,
	RUNTIME_ASYNC_TASK = 2, /* async-task: smol, async-executor, async-std */
	RUNTIME_ASYNC_STD = 3,
	RUNTIME_FUTURES = 4,    /* futures-executor */
};

struct poll_fn_list {
	struct poll_fn *fns;  /* sorted by address, unique addresses (ET_REL:
			       * by section, then offset in it) */
	size_t count;
	uint16_t machine;     /* e_machine (EM_X86_64, EM_RISCV, ...) */
	uint8_t elf_class;    /* ELFCLASS32 / ELFCLASS64 */
	bool has_dwarf;       /* false: classification used symbol heuristics only */
	uint8_t build_id[20]; /* GNU build-id, build_id_len bytes valid */
	size_t build_id_len;
	/* Without DWARF: whether `{{closure}}` bodies were told apart by the
	 * calls in their code (x86_64, i386, riscv, relocatable files; rustc
	 * with core::panicking::panic_const). When false, every `{{closure}}`
	 * without DWARF was listed, as compiler-generated (anonymous when
	 * nested in another closure). */
	bool code_scanned;
	size_t filtered_out;  /* poll functions dropped by `match` */
};

/* Find the poll functions of the ELF file at `path`. When `match` is given,
 * keep only those whose demangled name it matches. Returns 0 or a negative
 * errno: -ENOENT (missing), -EACCES, -EISDIR, -ENOEXEC (not an ELF file or
 * corrupt), -ENOMEM. */
int poll_fn_list__load(struct poll_fn_list *list, const char *path, const regex_t *match);
/* Adds every other function of the ELF at `path` whose demangled name
 * matches `names` (plain C or Rust functions, for `record --function`),
 * as CONTEXT_FUNCTION, keeping the list sorted and addresses unique.
 * Returns 0 or a negative errno as poll_fn_list__load. */
int poll_fn_list__add_functions(struct poll_fn_list *list, const char *path, const regex_t *names);
/* Adds the functions to probe besides the poll functions: the runtimes'
 * waker, spawn and task-allocation hooks found in the file, and the drop
 * glue of every listed poll function's future (core::ptr::drop_in_place<T>
 * of its state-machine or Future type), with their roles. Keeps the list
 * sorted by address; sets `target` of drop glue. Does nothing for
 * relocatable files. Returns 0 or a negative errno as poll_fn_list__load. */
int poll_fn_list__add_hooks(struct poll_fn_list *list, const char *path);
void poll_fn_list__free(struct poll_fn_list *list);

const char *context_class__name(enum context_class context); /* "task", "compiler-generated", ... */
const char *body_kind__name(enum body_kind body);
const char *function_role__name(enum function_role role);  /* "poll", "wake", ... */
const char *runtime_kind__name(enum runtime_kind runtime); /* "tokio", ...; NULL for none */
const char *stack_args__name(enum stack_args stack_args);   /* "none", "some", "unknown" */

#endif
