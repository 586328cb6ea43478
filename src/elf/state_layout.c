#include "elf/state_layout.h"

#include <dwarf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/array.h"

/* Rust emits no typedefs or qualifiers for these types, C compilers do:
 * look through them so a hand-built fixture reads the same. */
static bool strip_qualifiers(Dwarf_Die *type)
{
	Dwarf_Attribute attr;

	for (int i = 0; i < 8; i++) {
		int tag = dwarf_tag(type);

		if (tag != DW_TAG_typedef && tag != DW_TAG_const_type && tag != DW_TAG_volatile_type)
			return true;
		if (!dwarf_attr(type, DW_AT_type, &attr) || !dwarf_formref_die(&attr, type))
			return false;
	}
	return false;
}

static bool type_of(Dwarf_Die *die, Dwarf_Die *type)
{
	Dwarf_Attribute attr;

	return dwarf_attr_integrate(die, DW_AT_type, &attr) && dwarf_formref_die(&attr, type) &&
	       strip_qualifiers(type);
}

static bool first_child(Dwarf_Die *parent, int tag, Dwarf_Die *out)
{
	if (dwarf_child(parent, out) != 0)
		return false;
	do {
		if (dwarf_tag(out) == tag)
			return true;
	} while (dwarf_siblingof(out, out) == 0);
	return false;
}

/* The first parameter's type. An out-of-line copy of a function inlined
 * elsewhere may leave its parameters to the abstract instance. */
static bool first_parameter_type(Dwarf_Die *fn, Dwarf_Die *type)
{
	Dwarf_Attribute attr;
	Dwarf_Die param, origin;

	if (first_child(fn, DW_TAG_formal_parameter, &param))
		return type_of(&param, type);
	if ((dwarf_attr(fn, DW_AT_abstract_origin, &attr) || dwarf_attr(fn, DW_AT_specification, &attr)) &&
	    dwarf_formref_die(&attr, &origin) && first_child(&origin, DW_TAG_formal_parameter, &param))
		return type_of(&param, type);
	return false;
}

static const char *skip_prefix(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

/* `&mut T` (what rustc names the pointer type inside Pin) -> T. */
static const char *pointee_name(const char *pointer_name)
{
	static const char *const prefixes[] = { "&mut ", "*mut ", "&", "*const " };

	for (size_t i = 0; pointer_name && i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		const char *rest = skip_prefix(pointer_name, prefixes[i]);

		if (rest && *rest)
			return rest;
	}
	return NULL;
}

/* Pin<&mut T>: its one field `pointer` (`__pointer` in some rustc
 * versions) is the reference; rustc names it `&mut <T's full path>`, which
 * the type's own DW_AT_name (`{async_fn_env#0}`) is not. */
static bool pinned_pointee(Dwarf_Die *pin, const char **name, Dwarf_Die *pointee)
{
	const char *pin_name = dwarf_diename(pin);
	Dwarf_Die member, pointer;
	int tag;

	if (!pin_name || strncmp(pin_name, "Pin<", 4) != 0 || dwarf_tag(pin) != DW_TAG_structure_type)
		return false;
	if (!first_child(pin, DW_TAG_member, &member) || !type_of(&member, &pointer))
		return false;
	tag = dwarf_tag(&pointer);
	if (tag != DW_TAG_pointer_type && tag != DW_TAG_reference_type)
		return false;
	*name = pointee_name(dwarf_diename(&pointer));
	return *name && type_of(&pointer, pointee);
}

static bool member_offset(Dwarf_Die *member, uint64_t *offset)
{
	Dwarf_Attribute attr;
	Dwarf_Word value;

	if (!dwarf_attr(member, DW_AT_data_member_location, &attr) || dwarf_formudata(&attr, &value) != 0)
		return false;
	*offset = value;
	return true;
}

/* The discriminant: the member DW_AT_discr of the variant part names. */
static bool read_discriminant(Dwarf_Die *variant_part, struct state_layout *state)
{
	Dwarf_Attribute attr;
	Dwarf_Die member, type;
	uint64_t offset;
	int size;

	if (!dwarf_attr(variant_part, DW_AT_discr, &attr) || !dwarf_formref_die(&attr, &member) ||
	    !member_offset(&member, &offset) || !type_of(&member, &type))
		return false;
	size = dwarf_bytesize(&type);
	if (offset > UINT16_MAX || (size != 1 && size != 2 && size != 4 && size != 8))
		return false;
	state->offset = (uint16_t)offset;
	state->size = (uint8_t)size;
	return true;
}

/* One DW_TAG_variant: a SuspendN variant is an await point. Its member
 * (named "3", typed `...::Suspend0`) is declared at the `.await`. */
static int read_variant(Dwarf_Die *variant, const char *machine_file, struct state_layout *state,
			size_t *capacity)
{
	Dwarf_Attribute attr;
	Dwarf_Word value;
	Dwarf_Die member, type;
	const char *name, *member_file;
	int line = 0;

	if (!dwarf_attr(variant, DW_AT_discr_value, &attr) || dwarf_formudata(&attr, &value) != 0 ||
	    !first_child(variant, DW_TAG_member, &member) || !type_of(&member, &type))
		return 0;
	name = dwarf_diename(&type);
	if (!name || strncmp(name, "Suspend", 7) != 0)
		return 0; /* Unresumed, Returned, Panicked */
	dwarf_decl_line(&member, &line);
	if (ARRAY_RESERVE(state->awaits, *capacity, state->await_count + 1))
		return -ENOMEM;
	member_file = dwarf_decl_file(&member);
	state->awaits[state->await_count] = (struct await_point){
		.state = value, .line = line > 0 ? (uint32_t)line : 0,
	};
	if (member_file && (!machine_file || strcmp(member_file, machine_file) != 0) &&
	    !(state->awaits[state->await_count].file = strdup(member_file)))
		return -ENOMEM;
	state->await_count++;
	return 0;
}

static int cmp_awaits(const void *a, const void *b)
{
	uint64_t x = ((const struct await_point *)a)->state, y = ((const struct await_point *)b)->state;

	return x < y ? -1 : x > y;
}

static int read_state_layout(Dwarf_Die *machine, struct state_layout *state)
{
	Dwarf_Die part, variant;
	size_t capacity = 0;
	int err = 0;

	if (!first_child(machine, DW_TAG_variant_part, &part) || !read_discriminant(&part, state))
		return 0;
	if (dwarf_child(&part, &variant) == 0) {
		do {
			if (dwarf_tag(&variant) == DW_TAG_variant)
				err = read_variant(&variant, dwarf_decl_file(machine), state, &capacity);
		} while (!err && dwarf_siblingof(&variant, &variant) == 0);
	}
	if (err < 0) {
		state_layout__release(state);
		return err;
	}
	if (state->await_count > 1)
		qsort(state->awaits, state->await_count, sizeof(*state->awaits), cmp_awaits);
	return 0;
}

int future_from_subprogram(Dwarf_Die *fn, char **future_type, struct state_layout *state)
{
	Dwarf_Die pin, pointee;
	const char *name;

	*future_type = NULL;
	memset(state, 0, sizeof(*state));
	if (!first_parameter_type(fn, &pin) || !pinned_pointee(&pin, &name, &pointee))
		return 0;
	*future_type = strdup(name);
	if (!*future_type)
		return -ENOMEM;
	return read_state_layout(&pointee, state);
}

char *drop_glue_type(const char *dw_name, bool *oom)
{
	const char *inner = dw_name ? skip_prefix(dw_name, "drop_in_place<") : NULL;
	size_t len = inner ? strlen(inner) : 0;
	char *type;

	if (len < 2 || inner[len - 1] != '>')
		return NULL;
	type = strndup(inner, len - 1);
	if (!type)
		*oom = true;
	return type;
}

void state_layout__release(struct state_layout *state)
{
	for (size_t i = 0; state->awaits && i < state->await_count; i++)
		free(state->awaits[i].file);
	free(state->awaits);
	memset(state, 0, sizeof(*state));
}
