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
};

/* How the Poll<T> returned by the function is laid out, so a raw return
 * value can be turned into Ready/Pending. Values are stored in trace files. */
enum result_mode {
	RESULT_UNKNOWN = 0, /* no DWARF, or not a Poll<T>: result not decoded */
	RESULT_IN_REGS = 1, /* Poll<T> of <= 16 bytes: bytes 0..7 in rax, 8..15 in rdx */
	RESULT_IN_MEMORY = 2, /* returned through a hidden pointer; the callee returns it in rax */
};

struct poll_result_layout {
	uint8_t mode;           /* enum result_mode */
	uint8_t disc_size;      /* bytes of the discriminant (1, 2, 4 or 8) */
	uint16_t disc_offset;   /* byte offset of the discriminant in Poll<T> */
	uint64_t pending_value; /* discriminant value meaning Poll::Pending */
};

/* What DWARF (or, without it, the code) says the symbol's body is. */
enum body_kind {
	BODY_UNKNOWN = 0,
	BODY_ASYNC_FN = 1,    /* {async_fn#N} */
	BODY_ASYNC_BLOCK = 2, /* {async_block#N} */
	BODY_POLL_IMPL = 3,   /* a `Future::poll` method */
	BODY_RUNTIME = 4,     /* a runtime's task-poll function */
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
};

struct poll_fn_list {
	struct poll_fn *fns;  /* sorted by address, unique addresses */
	size_t count;
	uint16_t machine;     /* e_machine (EM_X86_64, EM_RISCV, ...) */
	uint8_t elf_class;    /* ELFCLASS32 / ELFCLASS64 */
	bool has_dwarf;       /* false: classification used symbol heuristics only */
	uint8_t build_id[20]; /* GNU build-id, build_id_len bytes valid */
	size_t build_id_len;
};

/* Find the poll functions of the ELF file at `path`. When `match` is given,
 * keep only those whose demangled name it matches. Returns 0 or a negative
 * errno: -ENOENT (missing), -EACCES, -ENOEXEC (not an ELF file or corrupt),
 * -ENOMEM. */
int poll_fn_list__load(struct poll_fn_list *list, const char *path, const regex_t *match);
void poll_fn_list__free(struct poll_fn_list *list);

const char *context_class__name(enum context_class context); /* "task", "compiler-generated", ... */
const char *body_kind__name(enum body_kind body);

#endif
