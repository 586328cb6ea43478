/* Which functions may take arguments on the stack (x86-64: six integer
 * argument registers), counted from the DWARF of their parameters.
 *
 * Rust CUs, the Rust ABI as rustc 1.95 lowers it: a zero-sized argument
 * takes no register (rustc ignores it); up to 8 bytes one; 9..16 bytes
 * two (a scalar pair or u128; other aggregates of that size go by
 * reference, so two is an upper bound); larger ones go by reference: one.
 * A hidden return pointer takes one more. DWARF leaves out arguments
 * rustc passes: the `&Location` of a #[track_caller] function (last); the
 * resume argument of a coroutine body (`_task_context`, which DWARF
 * describes as a variable); the environment of a closure body (its
 * captures are variables): one register is kept for the first in every
 * Rust function, one more for the others in rustc's `{...}` bodies
 * (closures, async fns and blocks: one or the other).
 *
 * C and C++ CUs (and any other language), SysV: a value larger than 16
 * bytes, or holding an x87 long double or a misaligned (packed) member,
 * is MEMORY class, passed on the stack (returned through a hidden
 * pointer, whatever its size: gcc returns a packed 5-byte struct so).
 *
 * Float arguments go to xmm registers but are counted as integer ones:
 * an upper bound, as are the reserved registers. An `extern "C"` function
 * in a Rust CU follows the C rules, which DWARF does not say: only its
 * aggregates over 16 bytes are told apart, by their location.
 *
 * Checked against machine code (rustc 1.95, x86-64) by following %rsp and
 * %rbp from the entry to the first ret and looking for accesses above the
 * return address: of the 23,034 functions with DWARF in six debug targets
 * of tests/targets (tokio_mt, async_std_tasks, futures_exec, join_tokio,
 * spawn_async_std, demo), none of the 19,065 counted NONE has one; 55 of
 * those counted SOME do (e.g. tokio::util::trace::task, 7 registers with
 * its hidden pointer), the other SOME ones are the upper bounds' doing. A
 * throwaway crate of 27 signatures, at opt-level 0 and 2, showed:
 * - on the stack: the 7th of seven u64; the u8 after three &str/&[u8];
 *   the u64 after three (u64, u64); the last u64 after &dyn Trait and
 *   five u64; a u128 after five u64 (not split between register and
 *   stack); the 6th u64 of functions returning [u32; 3] or [u64; 2] (12-
 *   and 16-byte aggregates: hidden pointer in %rdi) or a 24-byte struct;
 *   the 6th u64 of a #[track_caller] function (its Location is in %r9);
 * - in registers: six u64; a [u64; 4] by value and five u64; three
 *   [u32; 3] and three u64; three u128; ZSTs beside six u64; six u64
 *   returning (u64, u64) or u128 (rax:rdx);
 * - in the targets, tokio's #[track_caller] task::spawn(future) reads its
 *   Location in %rsi with one DWARF parameter, core::panicking::
 *   assert_failed (#[track_caller]) uses all six registers for 4 DWARF
 *   parameters counted 5, an async fn body its Context in %rsi (%rdx
 *   after the hidden pointer of a Poll<Big>), and a closure body its
 *   environment in %rdi (with six arguments, the sixth is on the stack);
 * - at opt-level 2, LLVM drops and rewrites arguments of internal
 *   functions and marks them DW_CC_nocall: those are left unknown. */
#include "elf/stack_args.h"

#include <dwarf.h>

#include "elf/poll_layout.h"

#define INT_ARG_REGS 6
#define MAX_DEPTH 16

struct arg_count {
	unsigned regs;
	bool stack;   /* an argument is passed on the stack whatever the count */
	bool unknown; /* an argument's size is unknown */
};

static bool die_type(Dwarf_Die *die, Dwarf_Die *type)
{
	Dwarf_Attribute attr;

	return dwarf_attr_integrate(die, DW_AT_type, &attr) && dwarf_formref_die(&attr, type);
}

static bool die_udata(Dwarf_Die *die, unsigned name, Dwarf_Word *value)
{
	Dwarf_Attribute attr;

	return dwarf_attr_integrate(die, name, &attr) && dwarf_formudata(&attr, value) == 0;
}

/* Bytes of a value of `type`. rustc gives its pointer types no
 * DW_AT_byte_size: libdw (0.188) sizes them from the unit's address size. */
static bool value_size(Dwarf_Die *type, uint64_t *size)
{
	Dwarf_Word w;

	if (dwarf_aggregate_size(type, &w) != 0)
		return false;
	*size = w;
	return true;
}

/* SysV's MEMORY class below 17 bytes: an x87 long double among the
 * scalars of `type` at `offset`, or a scalar not at a multiple of its size
 * (packed). Bit-fields are left out; anything unreadable counts. */
static bool sysv_memory_class(Dwarf_Die *type, uint64_t offset, int depth)
{
	Dwarf_Die peeled, child, member_type;
	Dwarf_Word enc = 0, location;
	uint64_t size;
	int tag;

	if (depth > MAX_DEPTH || dwarf_peel_type(type, &peeled) != 0)
		return true;
	tag = dwarf_tag(&peeled);
	if (tag == DW_TAG_array_type)
		return !die_type(&peeled, &member_type) ||
		       sysv_memory_class(&member_type, offset, depth + 1);
	if (tag != DW_TAG_structure_type && tag != DW_TAG_class_type && tag != DW_TAG_union_type) {
		if (!value_size(&peeled, &size))
			return true;
		die_udata(&peeled, DW_AT_encoding, &enc);
		return (enc == DW_ATE_float && size > 8) || (size && offset % size != 0);
	}
	if (dwarf_child(&peeled, &child) != 0)
		return false;
	do {
		if (dwarf_tag(&child) != DW_TAG_member || dwarf_hasattr(&child, DW_AT_bit_size) ||
		    dwarf_hasattr(&child, DW_AT_external))
			continue;
		location = 0;
		if ((dwarf_hasattr(&child, DW_AT_data_member_location) &&
		     !die_udata(&child, DW_AT_data_member_location, &location)) ||
		    !die_type(&child, &member_type) ||
		    sysv_memory_class(&member_type, offset + location, depth + 1))
			return true;
	} while (dwarf_siblingof(&child, &child) == 0);
	return false;
}

/* rustc passes an aggregate over 16 bytes by reference and locates the
 * parameter at the pointer (DW_OP_breg5 RDI+0, or a spilled pointer and
 * DW_OP_deref); an `extern "C"` function takes it by value on its stack,
 * located there directly (DW_OP_fbreg +8). Measured at opt-level 0 and 2;
 * without a location, the Rust ABI is assumed. */
static bool located_in_stack_memory(Dwarf_Die *param)
{
	Dwarf_Attribute attr;
	Dwarf_Addr base, start, end;
	Dwarf_Op *expr;
	size_t len;

	if (!dwarf_attr(param, DW_AT_location, &attr) ||
	    dwarf_getlocations(&attr, 0, &base, &start, &end, &expr, &len) <= 0 || len == 0 ||
	    (expr[0].atom != DW_OP_fbreg && expr[0].atom != DW_OP_breg7))
		return false;
	for (size_t i = 1; i < len; i++)
		if (expr[i].atom == DW_OP_deref)
			return false;
	return true;
}

static void count_argument(Dwarf_Die *param, Dwarf_Die *type, bool rust, unsigned reg_size,
			   struct arg_count *c)
{
	uint64_t size;

	if (!value_size(type, &size)) {
		c->unknown = true;
		return;
	}
	if (size == 0)
		return;
	if (size > 2ull * reg_size && (!rust || located_in_stack_memory(param))) {
		c->stack = true;
		return;
	}
	if (!rust && sysv_memory_class(type, 0, 0)) {
		c->stack = true;
		return;
	}
	c->regs += size > reg_size && size <= 2ull * reg_size ? 2 : 1;
}

/* 1 when the result goes through a hidden pointer (an argument register),
 * 0 when not, -1 when unknown. */
static int hidden_result_pointer(Dwarf_Die *fn, const struct poll_result_layout *poll, bool rust,
				 unsigned reg_size)
{
	Dwarf_Die type;
	uint64_t size;

	if (!die_type(fn, &type))
		return 0; /* returns nothing: () */
	if (poll && poll->mode != RESULT_UNKNOWN)
		return poll->mode == RESULT_IN_MEMORY; /* poll_layout.c's measured rule */
	if (rust)
		return rust_return_in_memory(&type, reg_size);
	if (!value_size(&type, &size))
		return -1;
	/* SysV: MEMORY class at any size, a packed 5-byte struct too */
	return size > 2ull * reg_size || (size > 0 && sysv_memory_class(&type, 0, 0));
}

static bool has_parameters(Dwarf_Die *die)
{
	Dwarf_Die child;

	if (dwarf_child(die, &child) != 0)
		return false;
	do {
		int tag = dwarf_tag(&child);

		if (tag == DW_TAG_formal_parameter || tag == DW_TAG_unspecified_parameters)
			return true;
	} while (dwarf_siblingof(&child, &child) == 0);
	return false;
}

/* An out-of-line copy of an inlined function may leave its parameters to
 * the abstract instance. */
static void parameter_owner(Dwarf_Die *fn, Dwarf_Die *owner)
{
	Dwarf_Attribute attr;

	*owner = *fn;
	if (has_parameters(fn))
		return;
	if ((dwarf_attr(fn, DW_AT_abstract_origin, &attr) || dwarf_attr(fn, DW_AT_specification, &attr)) &&
	    dwarf_formref_die(&attr, owner) && has_parameters(owner))
		return;
	*owner = *fn;
}

/* Counts the parameters; false when there are none. */
static bool count_parameters(Dwarf_Die *fn, bool rust, unsigned reg_size, struct arg_count *c)
{
	Dwarf_Die owner, child, type;
	bool any = false;

	parameter_owner(fn, &owner);
	if (dwarf_child(&owner, &child) != 0)
		return false;
	do {
		switch (dwarf_tag(&child)) {
		case DW_TAG_unspecified_parameters: /* variadic: the rest may be on the stack */
			c->stack = any = true;
			break;
		case DW_TAG_formal_parameter:
			any = true;
			if (die_type(&child, &type))
				count_argument(&child, &type, rust, reg_size, c);
			else
				c->unknown = true;
			break;
		default:
			break;
		}
	} while (dwarf_siblingof(&child, &child) == 0);
	return any;
}

/* rustc names closure and coroutine bodies `{closure#0}`, `{async_fn#0}`:
 * their environment or resume argument is not among DWARF's parameters. */
static bool is_rustc_body(Dwarf_Die *fn)
{
	Dwarf_Attribute attr;
	const char *name = NULL;

	if (dwarf_attr_integrate(fn, DW_AT_name, &attr))
		name = dwarf_formstring(&attr);
	return name && name[0] == '{';
}

static bool changed_convention(Dwarf_Die *fn)
{
	Dwarf_Word cc;

	if (!dwarf_hasattr_integrate(fn, DW_AT_calling_convention))
		return false;
	return !die_udata(fn, DW_AT_calling_convention, &cc) || cc != DW_CC_normal;
}

uint8_t stack_args_of_subprogram(Dwarf_Die *fn, const struct poll_result_layout *poll_result,
				 unsigned reg_size)
{
	struct arg_count c = { 0 };
	Dwarf_Die cudie;
	bool rust, described;
	int hidden;

	/* DW_CC_nocall: the optimiser changed the signature DWARF describes. */
	if (reg_size != 8 || changed_convention(fn))
		return STACK_ARGS_UNKNOWN;
	rust = dwarf_diecu(fn, &cudie, NULL, NULL) && dwarf_srclang(&cudie) == DW_LANG_Rust;
	described = count_parameters(fn, rust, reg_size, &c);
	/* DWARF without types (rustc debug = 1) describes every function so:
	 * a function of no arguments returning () reads as unknown too. */
	if (!described && !dwarf_hasattr_integrate(fn, DW_AT_type))
		return STACK_ARGS_UNKNOWN;
	hidden = hidden_result_pointer(fn, poll_result, rust, reg_size);
	c.regs += hidden > 0 ? 1 : 0;
	if (rust)
		c.regs += 1 + (is_rustc_body(fn) ? 1 : 0);
	if (c.stack || c.regs > INT_ARG_REGS)
		return STACK_ARGS_SOME;
	return c.unknown || hidden < 0 ? STACK_ARGS_UNKNOWN : STACK_ARGS_NONE;
}

const char *stack_args__name(enum stack_args stack_args)
{
	switch (stack_args) {
	case STACK_ARGS_NONE: return "none";
	case STACK_ARGS_SOME: return "some";
	case STACK_ARGS_UNKNOWN: return "unknown";
	}
	return "unknown";
}
