#include "elf/dwarf_scan.h"

#include <dwarf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <unistd.h>

#include "elf/poll_layout.h"
#include "elf/stack_args.h"
#include "elf/state_layout.h"

/* Indexes over the queries, sorted by name and by address. */
struct scan {
	struct dwarf_query *q;
	size_t count;
	size_t *by_name, *by_addr;
	bool match_addresses;
	bool x86_64;         /* stack_args has rules for it only */
	unsigned reg_size;
	bool oom;
};

/* qsort has no context argument: sort (key, index) pairs instead. */
struct name_key {
	const char *name;
	size_t index;
};

struct addr_key {
	uint64_t addr;
	size_t index;
};

static int cmp_name_key(const void *a, const void *b)
{
	return strcmp(((const struct name_key *)a)->name, ((const struct name_key *)b)->name);
}

static int cmp_addr_key(const void *a, const void *b)
{
	uint64_t x = ((const struct addr_key *)a)->addr, y = ((const struct addr_key *)b)->addr;

	return x < y ? -1 : x > y;
}

static int build_indexes(struct scan *s)
{
	struct name_key *names = malloc((s->count + 1) * sizeof(*names));
	struct addr_key *addrs = malloc((s->count + 1) * sizeof(*addrs));

	s->by_name = malloc((s->count + 1) * sizeof(size_t));
	s->by_addr = malloc((s->count + 1) * sizeof(size_t));
	if (!names || !addrs || !s->by_name || !s->by_addr) {
		free(names);
		free(addrs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->count; i++) {
		names[i] = (struct name_key){ s->q[i].linkage, i };
		addrs[i] = (struct addr_key){ s->q[i].addr, i };
	}
	qsort(names, s->count, sizeof(*names), cmp_name_key);
	qsort(addrs, s->count, sizeof(*addrs), cmp_addr_key);
	for (size_t i = 0; i < s->count; i++) {
		s->by_name[i] = names[i].index;
		s->by_addr[i] = addrs[i].index;
	}
	free(names);
	free(addrs);
	return 0;
}

/* First position in by_name whose name is >= `name`. */
static size_t lower_bound_name(const struct scan *s, const char *name)
{
	size_t lo = 0, hi = s->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(s->q[s->by_name[mid]].linkage, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t lower_bound_addr(const struct scan *s, uint64_t addr)
{
	size_t lo = 0, hi = s->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->q[s->by_addr[mid]].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static char *attr_string_dup(Dwarf_Die *die, unsigned name, bool *oom)
{
	Dwarf_Attribute attr;
	const char *str;
	char *copy;

	if (!dwarf_attr_integrate(die, name, &attr) || !(str = dwarf_formstring(&attr)))
		return NULL;
	copy = strdup(str);
	if (!copy)
		*oom = true;
	return copy;
}

char *dwarf_decl_path(Dwarf_Die *die, bool *oom)
{
	const char *file = dwarf_decl_file(die), *dir = NULL;
	Dwarf_Attribute attr;
	Dwarf_Die cudie;
	char *path;

	if (!file)
		return NULL;
	if (file[0] != '/' && dwarf_diecu(die, &cudie, NULL, NULL) &&
	    dwarf_attr(&cudie, DW_AT_comp_dir, &attr))
		dir = dwarf_formstring(&attr);
	if (!dir || !*dir)
		path = strdup(file);
	else if (asprintf(&path, "%s/%s", dir, file) < 0)
		path = NULL;
	if (!path)
		*oom = true;
	return path;
}

static void fill(struct scan *s, struct dwarf_query *q, Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	Dwarf_Die type;
	int line = 0;

	if (q->found)
		return;
	q->found = true;
	q->dw_name = attr_string_dup(die, DW_AT_name, &s->oom);
	/* dwarf_decl_file/line follow DW_AT_abstract_origin/specification */
	q->file = dwarf_decl_path(die, &s->oom);
	if (dwarf_decl_line(die, &line) == 0 && line > 0)
		q->line = (unsigned)line;
	if (dwarf_attr_integrate(die, DW_AT_type, &attr) && dwarf_formref_die(&attr, &type))
		q->returns_poll = poll_layout_from_type(&type, s->reg_size, &q->result);
	if (s->x86_64)
		q->stack_args = stack_args_of_subprogram(die, q->returns_poll ? &q->result : NULL,
							 s->reg_size);
	if (future_from_subprogram(die, &q->future_type, &q->state) < 0)
		s->oom = true;
}

static const char *linkage_name(Dwarf_Die *die)
{
	Dwarf_Attribute attr;

	if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
	    dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
		return dwarf_formstring(&attr);
	return NULL;
}

static void visit_subprogram(struct scan *s, Dwarf_Die *die)
{
	Dwarf_Addr pc;
	const char *name;

	/* Only concrete (out-of-line) instances have code. */
	if (!dwarf_hasattr(die, DW_AT_low_pc) && !dwarf_hasattr(die, DW_AT_ranges))
		return;
	name = linkage_name(die);
	if (name) {
		for (size_t i = lower_bound_name(s, name);
		     i < s->count && strcmp(s->q[s->by_name[i]].linkage, name) == 0; i++)
			fill(s, &s->q[s->by_name[i]], die);
		return;
	}
	if (!s->match_addresses || dwarf_entrypc(die, &pc) != 0)
		return;
	for (size_t i = lower_bound_addr(s, pc); i < s->count && s->q[s->by_addr[i]].addr == pc; i++)
		fill(s, &s->q[s->by_addr[i]], die);
}

/* Rust nests functions in namespaces (crate, module, type, `{impl#0}`);
 * C++ puts in-class definitions in classes. Function bodies are skipped:
 * they hold most DIEs (variables, scopes, inlined calls) and no
 * out-of-line functions. */
static void walk(struct scan *s, Dwarf_Die *parent, int depth)
{
	Dwarf_Die child;

	if (depth > 256 || dwarf_child(parent, &child) != 0)
		return;
	do {
		switch (dwarf_tag(&child)) {
		case DW_TAG_subprogram:
			visit_subprogram(s, &child);
			break;
		case DW_TAG_namespace:
		case DW_TAG_module:
		case DW_TAG_structure_type:
		case DW_TAG_class_type:
		case DW_TAG_union_type:
		case DW_TAG_enumeration_type:
			if (dwarf_haschildren(&child))
				walk(s, &child, depth + 1);
			break;
		default:
			break;
		}
	} while (!s->oom && dwarf_siblingof(&child, &child) == 0);
}

/* A relocatable file's DWARF needs its relocations applied (string
 * offsets, addresses): libdwfl's offline mode does that, plain libdw does
 * not. The debug info is the file's own: never search for another file. */
static int no_separate_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
				 Dwarf_Addr base, const char *file_name,
				 const char *debuglink_file, GElf_Word debuglink_crc,
				 char **debuginfo_file_name)
{
	(void)mod, (void)userdata, (void)modname, (void)base, (void)file_name;
	(void)debuglink_file, (void)debuglink_crc, (void)debuginfo_file_name;
	return -1;
}

static const Dwfl_Callbacks offline_callbacks = {
	.find_debuginfo = no_separate_debuginfo,
	.section_address = dwfl_offline_section_address,
};

static Dwarf *open_relocated_dwarf(struct elf_image *img, Dwfl **dwfl)
{
	Dwfl_Module *mod;
	Dwarf_Addr bias;
	int fd;

	*dwfl = dwfl_begin(&offline_callbacks);
	if (!*dwfl)
		return NULL;
	fd = dup(img->fd); /* libdwfl closes the descriptor it is given */
	mod = fd >= 0 ? dwfl_report_offline(*dwfl, "", "", fd) : NULL;
	if (!mod) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	dwfl_report_end(*dwfl, NULL, NULL);
	return dwfl_module_getdwarf(mod, &bias);
}

/* Whether a unit's code ranges hold a queried address. Walking a unit
 * costs time in proportion to all its DIEs (libdw parses a DIE's children
 * to reach its sibling), so units without candidates are skipped: about
 * half of a tokio debug binary's DWARF. */
static bool unit_may_match(const struct scan *s, Dwarf_Die *cudie)
{
	Dwarf_Addr base, start, end;
	ptrdiff_t off = 0;

	if (!s->match_addresses)
		return true; /* ET_REL: only names can match */
	while ((off = dwarf_ranges(cudie, off, &base, &start, &end)) > 0) {
		size_t i = lower_bound_addr(s, start);

		if (i < s->count && s->q[s->by_addr[i]].addr < end)
			return true;
	}
	return off < 0; /* unreadable ranges: look inside */
}

int dwarf_scan(struct elf_image *img, struct dwarf_query *queries, size_t count,
	       bool *has_dwarf)
{
	struct scan s = { .q = queries, .count = count, .match_addresses = img->type != ET_REL,
			  .x86_64 = img->machine == EM_X86_64, .reg_size = elf_image__addr_size(img) };
	Dwfl *dwfl = NULL;
	Dwarf *dw;
	Dwarf_CU *cu = NULL;
	Dwarf_Die cudie;
	uint8_t unit_type;
	int err = 0;

	*has_dwarf = false;
	if (img->type == ET_REL)
		dw = open_relocated_dwarf(img, &dwfl);
	else
		dw = dwarf_begin_elf(img->elf, DWARF_C_READ, NULL);
	if (!dw)
		goto out; /* no debug sections */
	if (build_indexes(&s) < 0) {
		err = -ENOMEM;
		goto out;
	}
	while (!s.oom && dwarf_get_units(dw, cu, &cu, NULL, &unit_type, &cudie, NULL) == 0) {
		*has_dwarf = true;
		if ((unit_type == DW_UT_compile || unit_type == DW_UT_partial) &&
		    unit_may_match(&s, &cudie))
			walk(&s, &cudie, 0);
	}
	if (s.oom)
		err = -ENOMEM;
out:
	free(s.by_name);
	free(s.by_addr);
	if (dwfl)
		dwfl_end(dwfl); /* owns dw */
	else if (dw)
		dwarf_end(dw);
	return err;
}

void dwarf_query__release(struct dwarf_query *q)
{
	free(q->dw_name);
	free(q->file);
	free(q->future_type);
	q->dw_name = q->file = q->future_type = NULL;
	state_layout__release(&q->state);
}

int dwarf_linkage_name(const char *symbol, char **copy, const char **linkage)
{
	const char *suffix = strstr(symbol, ".llvm.");

	*linkage = symbol;
	if (!suffix)
		return 0;
	*copy = strndup(symbol, (size_t)(suffix - symbol));
	if (!*copy)
		return -ENOMEM;
	*linkage = *copy;
	return 0;
}
