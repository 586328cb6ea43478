/* Release builds (`debug = 1`): the async bodies rustc inlined into the
 * functions that survive, found from DWARF (DW_TAG_inlined_subroutine whose
 * abstract origin is an `{async_fn#N}` / `{async_block#N}` subprogram), with
 * where control enters and leaves their code, found by decoding the host
 * function (x86-64, capstone). Analysis only: nothing here places probes.
 * docs/release-mode.md has the design and what was measured. */
#ifndef ASYNCTRACE_ELF_INLINED_H
#define ASYNCTRACE_ELF_INLINED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "elf/elf_image.h"

struct inlined_range {
	uint64_t lo, hi; /* [lo, hi) */
};

enum inlined_entry_kind {
	INLINED_ENTRY_FUNCTION = 1, /* the host function's own entry lies in the body */
	INLINED_ENTRY_FALLTHROUGH,  /* the instruction before, outside, runs on into it */
	INLINED_ENTRY_BRANCH,       /* a direct jmp/jcc from outside */
	INLINED_ENTRY_TABLE,        /* a jump table dispatched outside (an enclosing state machine) */
	INLINED_ENTRY_RESUME,       /* the body's own state dispatch: one target per state */
};

struct inlined_entry {
	uint64_t addr;  /* first instruction run inside the body */
	uint64_t from;  /* the transferring instruction (0 for INLINED_ENTRY_FUNCTION) */
	uint8_t kind;   /* enum inlined_entry_kind */
	/* TABLE, RESUME: the table index, which is the dispatching machine's
	 * state (rustc: 0 Unresumed, 1 Returned, 2 Panicked, 3 + N the Nth
	 * await); -1 otherwise */
	int16_t state;
	/* The body's own source line at addr: the call line of the innermost
	 * frame inlined into the body there, else the line table's; 0 unknown. */
	unsigned line;
};

enum inlined_exit_kind {
	INLINED_EXIT_BRANCH = 1,   /* a direct jmp/jcc to outside the body */
	INLINED_EXIT_FALLTHROUGH,  /* the last instruction of a range runs on out of it */
	INLINED_EXIT_RETURN,       /* a `ret` inside the body (the host returns from it) */
	INLINED_EXIT_TABLE,        /* a jump-table target outside the body */
};

struct inlined_exit {
	uint64_t from; /* the leaving instruction */
	uint64_t to;   /* where control goes (0 for a return) */
	uint8_t kind;  /* enum inlined_exit_kind */
	/* The last immediate stored to the body's state byte in the straight
	 * line before `from` (3 + N: parks at await N; 1: Returned, so Ready),
	 * -1 when none is seen (a computed value, or another block stores it). */
	int16_t stored_state;
};

/* Where the machine's state byte lies, read by its dispatch
 * (`movzbl off(%reg)` feeding the jump table). */
struct inlined_state {
	bool found;        /* a dispatch was decoded */
	/* At load_addr, the byte at base_reg + disp is read: a probe there
	 * reads the state a poll starts from, and base_reg names the future.
	 * base_reg is an x86 register number (0 rax, 1 rcx, 2 rdx, 3 rbx,
	 * 4 rsp, 5 rbp, 6 rsi, 7 rdi, 8..15 r8..r15), -1 for none (rip). */
	uint64_t load_addr;
	int8_t base_reg;
	int32_t disp;
	/* The same byte as host argument `arg` + offset at entry (0 rdi,
	 * 1 rsi), when the pointer is the argument itself plus constants;
	 * arg -1 otherwise (it is loaded from memory: a closure's capture). */
	int8_t arg;
	int32_t offset;
	uint16_t states;   /* entries of the table: 3 + the number of awaits */
};

struct inlined_body {
	char *name;          /* demangled linkage name: `crate::f::{{closure}}`, as poll_fn names it */
	uint8_t body;        /* enum body_kind: BODY_ASYNC_FN or BODY_ASYNC_BLOCK */
	uint32_t parent;     /* index of the enclosing inlined body, or INLINED_NO_PARENT */
	char *decl_file;     /* where the async fn / block is (abstract origin) */
	unsigned decl_line;
	char *call_file;     /* DW_AT_call_file/line: where it was inlined (the `.await` */
	unsigned call_line;  /* or, for join!, the runtime's macro code) */
	struct inlined_range *ranges;
	size_t range_count;
	struct inlined_entry *entries; /* sorted by address, then kind */
	size_t entry_count;
	struct inlined_exit *exits;    /* sorted by from */
	size_t exit_count;
	struct inlined_state state;
};

#define INLINED_NO_PARENT UINT32_MAX

/* A function with code (a symbol survives) that is an async body itself
 * (body_count may then be 0: its own dispatch is what is wanted) or holds
 * at least one inlined
 * async body. */
struct inlined_host {
	uint64_t addr;       /* entry (DW_AT_low_pc, or the first range) */
	char *name;          /* demangled linkage name; NULL when DWARF has none */
	uint8_t body;        /* BODY_ASYNC_FN/BLOCK when the host is an async body itself, else 0 */
	struct inlined_state state; /* the host's own dispatch, when it is an async body */
	/* ... and where each suspended state (3 + N) of it resumes: the line
	 * (of the `.await`: an inlined child's call line, else the line
	 * table's), by state; NULL without a dispatch */
	struct inlined_await {
		uint16_t state;
		unsigned line;
	} *awaits;
	size_t await_count;
	struct inlined_range *ranges;
	size_t range_count;
	struct inlined_body *bodies; /* DWARF order: a parent before its children */
	size_t body_count;
	bool decoded;        /* entries and exits were computed (x86-64, code in the file) */
};

struct inlined_set {
	struct inlined_host *hosts; /* sorted by addr */
	size_t count;
	bool has_dwarf;
};

/* Find every inlined async body in the linked ELF `img` (relocatable files
 * give an empty set: their DWARF addresses are section-relative). Entries
 * and exits are computed on x86-64 only (else hosts are not `decoded`).
 * Returns 0, or -ENOMEM; DWARF or code it cannot read is skipped. */
int inlined_scan(struct elf_image *img, struct inlined_set *set);
void inlined_set__free(struct inlined_set *set);

/* The host whose entry is addr (a poll_fn's addr), or NULL. */
const struct inlined_host *inlined_set__host(const struct inlined_set *set, uint64_t addr);

const char *inlined_entry_kind__name(int kind); /* "fallthrough", ... */
const char *inlined_exit_kind__name(int kind);

#endif
