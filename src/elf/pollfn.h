/* The functions that poll futures in one ELF file: what `symbols` lists and
 * what `record` probes. Built from .symtab/.dynsym (libelf), demangled with
 * libiberty, refined with DWARF (libdw) where the file has it. */
#ifndef ASYNCTRACE_ELF_POLLFN_H
#define ASYNCTRACE_ELF_POLLFN_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/function_kinds.h"

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
	/* An async body inlined into another function (release builds), listed
	 * at the address of its state dispatch, which runs once per poll: an
	 * entry probe there, no exits. The future is in register base_reg
	 * (x86 numbering); `level` counts the inlined bodies around it in its
	 * host (0: directly in the host). */
	struct {
		bool is;
		int8_t base_reg;
		uint8_t level;
		/* A loop of its host branches back into its code past its
		 * dispatch: polls that begin there are not counted */
		bool approximate;
		/* a plain function listed only because inlined bodies live in
		 * it (its exits end their polls); `is` is false then */
		bool host;
		/* left out of this recording (never cached): in process, some
		 * of its sites (or its host) would need uprobes and --inlined
		 * was not given; a host all of whose bodies are left out, too */
		bool left_out;
	} inlined;
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
	/* Release builds: inlined async bodies found without a state dispatch
	 * (their polls cannot be counted), and those left unprobed: named, so
	 * reports can say so */
	struct uncounted_bodies *uncounted;
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
/* Inlined async bodies whose state dispatch was not found (names):
 * their polls cannot be counted; and those that could be but were not
 * asked for (unprobed: poll_fn_list__add_inlined without bodies). Names
 * malloc'd. */
struct uncounted_bodies {
	char **names;
	size_t count;
	char **unprobed;
	size_t unprobed_count;
};
void uncounted_bodies__free(struct uncounted_bodies *u);
/* Appends a copy of name to (*names, *count). 0 or -ENOMEM. */
int uncounted_bodies__add(char ***names, size_t *count, const char *name);

/* Release builds (elf/inlined.h): the surviving async fns' results and
 * awaits from their own state dispatch; and with `bodies`, the async
 * bodies inlined into the file's functions whose state dispatch was
 * found, matched by `match` when given, as ROLE_POLL functions marked
 * `inlined`, and their host functions that are not listed yet (as
 * CONTEXT_FUNCTION: their exits end those polls). Names in *uncounted
 * the bodies found without a dispatch, and without `bodies` the others
 * (unprobed). Before poll_fn_list__add_hooks. x86-64 with DWARF only
 * (else nothing is added). Returns 0 or a negative errno. */
int poll_fn_list__add_inlined(struct poll_fn_list *list, const char *path, const regex_t *match, bool bodies,
			      struct uncounted_bodies *uncounted);
void poll_fn_list__free(struct poll_fn_list *list);

const char *body_kind__name(enum body_kind body);
const char *function_role__name(enum function_role role);  /* "poll", "wake", ... */
const char *runtime_kind__name(enum runtime_kind runtime); /* "tokio", ...; NULL for none */
const char *stack_args__name(enum stack_args stack_args);   /* "none", "some", "unknown" */

#endif
