#include "elf/poll_layout.h"

#include <dwarf.h>
#include <string.h>

/* rustc (1.95) describes Poll<T> as a DW_TAG_structure_type "Poll<T>" with
 * a DW_TAG_variant_part whose DW_AT_discr names an artificial member (the
 * tag, or a niche inside T), and two DW_TAG_variant children holding the
 * members "Ready" and "Pending". A tagged layout gives both variants a
 * DW_AT_discr_value (Ready 0, Pending 1: Poll<()> is one byte); a niche
 * layout gives one only to Pending (Poll<Option<u64>>: u64 at 0, Pending
 * 2; Poll<char>: Pending 0x110000), Ready being "any other value". */

/* At most two scalars ("leaves") matter: rustc returns Scalar and
 * ScalarPair values in registers, one scalar per register. */
struct leaf {
	uint64_t off, size;
	bool is_float;
};

struct flat {
	struct leaf leaf[2];
	int count;
	bool aggregate; /* more than two scalars, arrays, overlapping fields */
	bool variants;  /* an enum's variant part was seen */
};

static bool die_type(Dwarf_Die *die, Dwarf_Die *type)
{
	Dwarf_Attribute attr;

	return dwarf_attr_integrate(die, DW_AT_type, &attr) && dwarf_formref_die(&attr, type);
}

static bool die_udata(Dwarf_Die *die, unsigned name, uint64_t *value)
{
	Dwarf_Attribute attr;
	Dwarf_Word w;

	if (!dwarf_attr_integrate(die, name, &attr) || dwarf_formudata(&attr, &w) != 0)
		return false;
	*value = w;
	return true;
}

static bool die_size(Dwarf_Die *die, uint64_t *size)
{
	Dwarf_Word w;

	if (dwarf_aggregate_size(die, &w) != 0)
		return false;
	*size = w;
	return true;
}

static void flat_add(struct flat *f, uint64_t off, uint64_t size, bool is_float)
{
	if (size == 0)
		return;
	for (int i = 0; i < f->count; i++) {
		if (f->leaf[i].off == off && f->leaf[i].size == size &&
		    f->leaf[i].is_float == is_float)
			return; /* the niche seen both as discriminant and as field */
		if (off < f->leaf[i].off + f->leaf[i].size && f->leaf[i].off < off + size) {
			f->aggregate = true;
			return;
		}
	}
	if (f->count == 2) {
		f->aggregate = true;
		return;
	}
	f->leaf[f->count++] = (struct leaf){ .off = off, .size = size, .is_float = is_float };
}

static void flatten(Dwarf_Die *type, uint64_t base, struct flat *f, int depth);

/* Members of a struct, of a variant part, or of one of its variants. */
static void flatten_members(Dwarf_Die *parent, uint64_t base, struct flat *f, int depth)
{
	Dwarf_Die child, type;

	if (dwarf_child(parent, &child) != 0)
		return;
	do {
		uint64_t off = 0;
		int tag = dwarf_tag(&child);

		if (tag == DW_TAG_variant_part || tag == DW_TAG_variant) {
			f->variants = true;
			flatten_members(&child, base, f, depth + 1);
			continue;
		}
		if (tag != DW_TAG_member || dwarf_hasattr(&child, DW_AT_external))
			continue;
		if (dwarf_hasattr(&child, DW_AT_data_member_location) &&
		    !die_udata(&child, DW_AT_data_member_location, &off)) {
			f->aggregate = true; /* a location expression */
			continue;
		}
		if (die_type(&child, &type))
			flatten(&type, base + off, f, depth + 1);
	} while (!f->aggregate && dwarf_siblingof(&child, &child) == 0);
}

/* Unions: rustc treats one with a single non-empty field (MaybeUninit<T>)
 * like that field; anything else as an opaque aggregate. */
static void flatten_union(Dwarf_Die *u, uint64_t base, struct flat *f, int depth)
{
	Dwarf_Die child, type, only;
	int nonempty = 0;
	uint64_t size;

	if (dwarf_child(u, &child) != 0)
		return;
	do {
		if (dwarf_tag(&child) == DW_TAG_member && die_type(&child, &type) &&
		    die_size(&type, &size) && size > 0) {
			only = type;
			nonempty++;
		}
	} while (dwarf_siblingof(&child, &child) == 0);
	if (nonempty == 1)
		flatten(&only, base, f, depth + 1);
	else if (nonempty > 1)
		f->aggregate = true;
}

static void flatten(Dwarf_Die *type, uint64_t base, struct flat *f, int depth)
{
	uint64_t size = 0, enc = 0;
	Dwarf_Die inner;

	if (depth > 32 || f->aggregate) {
		f->aggregate = true;
		return;
	}
	switch (dwarf_tag(type)) {
	case DW_TAG_typedef:
	case DW_TAG_const_type:
	case DW_TAG_volatile_type:
	case DW_TAG_restrict_type:
	case DW_TAG_atomic_type:
		if (die_type(type, &inner))
			flatten(&inner, base, f, depth + 1);
		return;
	case DW_TAG_base_type:
	case DW_TAG_pointer_type:
	case DW_TAG_reference_type:
	case DW_TAG_rvalue_reference_type:
	case DW_TAG_enumeration_type:
		if (!die_size(type, &size))
			size = 0;
		die_udata(type, DW_AT_encoding, &enc);
		flat_add(f, base, size, enc == DW_ATE_float);
		return;
	case DW_TAG_structure_type:
	case DW_TAG_class_type:
		flatten_members(type, base, f, depth);
		return;
	case DW_TAG_union_type:
		flatten_union(type, base, f, depth);
		return;
	default: /* arrays (always aggregates for rustc) and anything unknown */
		if (!die_size(type, &size) || size > 0)
			f->aggregate = true;
		return;
	}
}

static bool is_poll_type(Dwarf_Die *type)
{
	const char *name = dwarf_diename(type);

	return dwarf_tag(type) == DW_TAG_structure_type && name &&
	       (strncmp(name, "Poll<", 5) == 0 || strcmp(name, "Poll") == 0);
}

/* The variant whose member has this name ("Pending"), and its discr value. */
static bool find_variant(Dwarf_Die *part, const char *member, bool *has_value, uint64_t *value)
{
	Dwarf_Die var, m;

	if (dwarf_child(part, &var) != 0)
		return false;
	do {
		if (dwarf_tag(&var) != DW_TAG_variant || dwarf_child(&var, &m) != 0)
			continue;
		do {
			const char *name = dwarf_diename(&m);

			if (dwarf_tag(&m) == DW_TAG_member && name && strcmp(name, member) == 0) {
				*has_value = die_udata(&var, DW_AT_discr_value, value);
				return true;
			}
		} while (dwarf_siblingof(&m, &m) == 0);
	} while (dwarf_siblingof(&var, &var) == 0);
	return false;
}

/* Discriminant of the variant part: its offset and size in Poll<T>. */
static bool find_discriminant(Dwarf_Die *poll, Dwarf_Die *part, uint64_t *off, uint64_t *size)
{
	Dwarf_Attribute attr;
	Dwarf_Die disc, type;

	if (dwarf_child(poll, part) != 0)
		return false;
	while (dwarf_tag(part) != DW_TAG_variant_part)
		if (dwarf_siblingof(part, part) != 0)
			return false;
	*off = 0;
	if (!dwarf_attr(part, DW_AT_discr, &attr) || !dwarf_formref_die(&attr, &disc) ||
	    !die_type(&disc, &type) || !die_size(&type, size))
		return false;
	if (dwarf_hasattr(&disc, DW_AT_data_member_location) &&
	    !die_udata(&disc, DW_AT_data_member_location, off))
		return false;
	return *size == 1 || *size == 2 || *size == 4 || *size == 8;
}

/* Where the discriminant is returned, from the Rust ABI rules (rustc
 * callconv adjust_for_rust_abi, checked on x86_64 code): more than two
 * registers -> memory; one or two scalars -> one register each, floats in
 * FP registers; other aggregates -> one integer register if they fit. */
static void place_result(Dwarf_Die *poll, uint64_t size, uint64_t disc_off, unsigned reg_size,
			 struct poll_result_layout *out)
{
	struct flat f = { .count = 0 };
	int k = 0;

	if (size > 2ull * reg_size) {
		out->mode = RESULT_IN_MEMORY;
		out->disc_offset = (uint16_t)disc_off;
		return;
	}
	flatten(poll, 0, &f, 0);
	if (f.aggregate || f.count == 0) {
		out->mode = size <= reg_size ? RESULT_IN_REGS : RESULT_IN_MEMORY;
		out->disc_offset = (uint16_t)disc_off;
		return;
	}
	if (f.count == 2 && f.leaf[1].off < f.leaf[0].off) {
		struct leaf first = f.leaf[1];

		f.leaf[1] = f.leaf[0];
		f.leaf[0] = first;
	}
	for (int i = 0; i < f.count; i++) {
		bool inside = disc_off >= f.leaf[i].off && disc_off < f.leaf[i].off + f.leaf[i].size;

		if (inside && !f.leaf[i].is_float && f.leaf[i].size <= reg_size) {
			out->mode = RESULT_IN_REGS;
			out->disc_offset = (uint16_t)(k * reg_size + (disc_off - f.leaf[i].off));
			return;
		}
		if (!f.leaf[i].is_float)
			k++;
	}
	/* the discriminant is not a scalar of its own: leave it undecoded */
}

bool poll_layout_from_type(Dwarf_Die *type, unsigned reg_size, struct poll_result_layout *out)
{
	Dwarf_Die part;
	uint64_t size = 0, disc_off, disc_size, pending;
	bool has_pending = false;

	memset(out, 0, sizeof(*out));
	if (!is_poll_type(type))
		return false;
	if (!die_size(type, &size) || size == 0 ||
	    !find_discriminant(type, &part, &disc_off, &disc_size) || disc_off > UINT16_MAX ||
	    !find_variant(&part, "Pending", &has_pending, &pending) || !has_pending)
		return true; /* Poll<!>-like, or a layout we do not know: undecoded */
	out->disc_size = (uint8_t)disc_size;
	out->pending_value = disc_size == 8 ? pending : pending & ((1ull << (8 * disc_size)) - 1);
	place_result(type, size, disc_off, reg_size, out);
	if (out->mode == RESULT_UNKNOWN) {
		out->disc_size = 0;
		out->pending_value = 0;
	}
	return true;
}

int rust_return_in_memory(Dwarf_Die *type, unsigned reg_size)
{
	struct flat f = { .count = 0 };
	uint64_t size;

	if (!die_size(type, &size))
		return -1;
	if (size <= reg_size || size > 2ull * reg_size)
		return size > reg_size;
	flatten(type, 0, &f, 0);
	return f.aggregate || f.variants || f.count == 0;
}
