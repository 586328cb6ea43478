/* The x86-64 side of elf/inlined: a host function decoded once
 * (capstone) into the facts its inlined bodies' entries and exits are
 * computed from: branches, the jump tables of state dispatches, and
 * which register holds a pointer into the polled future. Private to
 * inlined.c. */
#ifndef ASYNCTRACE_ELF_INLINED_CODE_H
#define ASYNCTRACE_ELF_INLINED_CODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "elf/elf_image.h"
#include "elf/inlined.h"

enum insn_kind {
	INSN_OTHER, INSN_JMP, INSN_JCC, INSN_JMP_INDIRECT, INSN_RET, INSN_CALL,
	INSN_NORETURN_CALL, /* a call to a function that never returns (panics, _Unwind_Resume) */
	INSN_TRAP,          /* int3, ud2, hlt */
};

/* Instruction shapes the dispatch and state-store matching need. */
enum insn_shape {
	SHAPE_NONE, SHAPE_LEA_RIP, SHAPE_LEA_REG, SHAPE_TABLE_LOAD, SHAPE_ADD_RR,
	SHAPE_MOV_RR, SHAPE_MOV_IMM, SHAPE_LOAD_BYTE, SHAPE_STORE_BYTE,
};

/* A memory location as "host argument arg + off" (arg -1: base unknown). */
struct loc {
	int8_t arg;
	int64_t off;
};

struct insn {
	uint64_t addr, target; /* target: direct branch or call, or LEA_RIP's address */
	uint64_t slot;         /* call *slot(%rip): the slot, else 0 */
	int64_t disp;          /* LEA_REG, LOAD/STORE_BYTE displacement; MOV_IMM value */
	uint8_t len, kind, shape;
	int8_t r0, r1, r2;     /* shape registers (gpr numbers 0 rax .. 15 r15), -1 none */
	bool wide;             /* MOV_RR: 64-bit */
	uint16_t writes;       /* gprs written (bit per gpr) */
	int32_t table;         /* INSN_JMP_INDIRECT through a known table, else -1 */
	struct loc mem;        /* LOAD/STORE_BYTE: tracked address */
	int16_t value;         /* STORE_BYTE: the byte stored when known, else -1 */
};

struct jump_table {
	uint64_t base;
	uint64_t *targets;     /* targets[i]: where state i resumes */
	size_t count;
	struct loc state;      /* the byte the index was loaded from, arg -1 unknown */
	size_t state_load;     /* the instruction loading it */
	bool state_found;
};

struct code {
	struct insn *insns;    /* in address order over the host's ranges */
	size_t count, cap;
	struct jump_table *tables;
	size_t table_count, table_cap;
	uint64_t *joins;       /* sorted branch and table targets */
	size_t join_count, join_cap;
};

/* Functions that never return, by address and by the GOT slot that holds
 * their address: a call to one has no fallthrough. */
struct noreturn_set {
	uint64_t *addrs, *slots; /* sorted */
	size_t addr_count, slot_count;
};

/* 0 or -ENOMEM; an ELF without symbols or relocations gives an empty set. */
int noreturn_set__build(struct noreturn_set *nr, struct elf_image *img);
void noreturn_set__free(struct noreturn_set *nr);

/* Decode the ranges of `h` (sorted by address) and resolve its dispatch
 * tables. 0 or -ENOMEM; bytes not in the file are skipped. */
int code__decode(struct code *c, struct elf_image *img, const struct noreturn_set *nr,
		 const struct inlined_host *h);
void code__free(struct code *c);

/* Whether addr is a branch or table target in the decoded code. */
bool code__is_join(const struct code *c, uint64_t addr);
/* The index of the instruction that starts at addr, or c->count. */
size_t code__index_of(const struct code *c, uint64_t addr);

/* Where control goes on from insns[i] without branching: false when it
 * does not (jumps, returns, traps, calls that do not return, the
 * instruction before a trap); *next is the following instruction, or
 * NULL at the end of a range. */
bool code__falls_through(const struct code *c, size_t i, const struct insn **next);

#endif
