#include "elf/lines.h"

#include <dwarf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <elfutils/libdw.h>

#include "elf/demangle.h"
#include "elf/elf_image.h"

struct addr_lines {
	struct elf_image img;
	Dwarf *dw;             /* NULL without DWARF */
	struct elf_sym *syms;  /* sorted by address: names without DWARF */
	size_t sym_count;
};

/* Deeper nesting of inlined calls than this is cut at the outer end. */
#define MAX_FRAMES 64

/* The functions at one address, outermost (the subprogram) first. */
struct chain {
	Dwarf_Die dies[MAX_FRAMES];
	int count;
};

/* One frame's place in the source. */
struct place {
	const char *file; /* libdw's string, relative or absolute */
	unsigned line;
};

static int cmp_syms(const void *a, const void *b)
{
	const struct elf_sym *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return (int)x->dynamic - (int)y->dynamic; /* .symtab names first */
}

int addr_lines__open(struct addr_lines **out, const char *path)
{
	struct addr_lines *al = calloc(1, sizeof(*al));
	int err;

	*out = NULL;
	if (!al)
		return -ENOMEM;
	err = elf_image__open(&al->img, path);
	if (!err)
		err = elf_image__functions(&al->img, &al->syms, &al->sym_count);
	if (err) {
		addr_lines__free(al);
		return err;
	}
	if (al->sym_count) /* syms is NULL then: qsort's is nonnull */
		qsort(al->syms, al->sym_count, sizeof(*al->syms), cmp_syms);
	/* Relocatable files would need libdwfl's relocation: they are not
	 * run, so they have no addresses to look up. */
	if (al->img.type != ET_REL)
		al->dw = dwarf_begin_elf(al->img.elf, DWARF_C_READ, NULL);
	*out = al;
	return 0;
}

void addr_lines__free(struct addr_lines *al)
{
	if (!al)
		return;
	if (al->dw)
		dwarf_end(al->dw);
	free(al->syms);
	elf_image__close(&al->img);
	free(al);
}

/* Whether vaddr is in code: DWARF keeps the functions the linker threw
 * away at address 0 and up, which would otherwise answer for the ELF
 * header. */
static bool in_code(const struct addr_lines *al, uint64_t vaddr)
{
	size_t phnum;

	for (Elf_Scn *scn = NULL; (scn = elf_nextscn(al->img.elf, scn));) {
		GElf_Shdr sh;

		if (gelf_getshdr(scn, &sh) && (sh.sh_flags & SHF_EXECINSTR) && sh.sh_type != SHT_NOBITS &&
		    vaddr >= sh.sh_addr && vaddr - sh.sh_addr < sh.sh_size)
			return true;
	}
	if (elf_getshdrnum(al->img.elf, &phnum) == 0 && phnum > 0)
		return false;
	/* no section headers (stripped hard): executable segments */
	if (elf_getphdrnum(al->img.elf, &phnum) != 0)
		return false;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(al->img.elf, (int)i, &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_X) &&
		    vaddr >= ph.p_vaddr && vaddr - ph.p_vaddr < ph.p_memsz)
			return true;
	}
	return false;
}

/* .debug_aranges first; without it, the units' own ranges. */
static bool unit_of(Dwarf *dw, uint64_t vaddr, Dwarf_Die *cudie)
{
	Dwarf_Off off = 0, next;
	size_t header_size;

	if (dwarf_addrdie(dw, vaddr, cudie))
		return true;
	while (dwarf_nextcu(dw, off, &next, &header_size, NULL, NULL, NULL) == 0) {
		if (dwarf_offdie(dw, off + header_size, cudie) && dwarf_haspc(cudie, vaddr) == 1)
			return true;
		off = next;
	}
	return false;
}

/* Collect the subprogram and inlined calls containing pc. Rust nests
 * functions in namespaces (crate, module, `{impl#0}`) and types. */
static bool descend(Dwarf_Die *parent, uint64_t pc, struct chain *c, int depth)
{
	Dwarf_Die child;

	if (depth > 256 || dwarf_child(parent, &child) != 0)
		return false;
	do {
		int tag = dwarf_tag(&child);

		switch (tag) {
		case DW_TAG_namespace:
		case DW_TAG_structure_type:
		case DW_TAG_class_type:
		case DW_TAG_union_type:
		case DW_TAG_enumeration_type:
			if (c->count == 0 && descend(&child, pc, c, depth + 1))
				return true;
			break;
		case DW_TAG_subprogram:
		case DW_TAG_inlined_subroutine:
		case DW_TAG_lexical_block:
			if (dwarf_haspc(&child, pc) != 1)
				break;
			if (tag != DW_TAG_lexical_block && c->count < MAX_FRAMES)
				c->dies[c->count++] = child;
			descend(&child, pc, c, depth + 1);
			return true;
		default:
			break;
		}
	} while (dwarf_siblingof(&child, &child) == 0);
	return false;
}

static bool attr_unsigned(Dwarf_Die *die, unsigned name, Dwarf_Word *value)
{
	Dwarf_Attribute attr;

	return dwarf_attr(die, name, &attr) && dwarf_formudata(&attr, value) == 0;
}

/* Where an inlined call was made: the place in the caller's frame. */
static struct place call_site(Dwarf_Die *cudie, Dwarf_Die *inlined)
{
	struct place p = { NULL, 0 };
	Dwarf_Word file, line;
	Dwarf_Files *files;
	size_t count;

	if (attr_unsigned(inlined, DW_AT_call_file, &file) &&
	    dwarf_getsrcfiles(cudie, &files, &count) == 0 && file < count)
		p.file = dwarf_filesrc(files, file, NULL, NULL);
	if (attr_unsigned(inlined, DW_AT_call_line, &line) && line <= UINT32_MAX)
		p.line = (unsigned)line;
	return p;
}

/* The innermost frame's place: the line table's row for pc. */
static struct place line_at(Dwarf_Die *cudie, uint64_t pc)
{
	struct place p = { NULL, 0 };
	Dwarf_Line *row = dwarf_getsrc_die(cudie, pc);
	int line = 0;

	if (row) {
		p.file = dwarf_linesrc(row, NULL, NULL);
		if (dwarf_lineno(row, &line) == 0 && line > 0)
			p.line = (unsigned)line;
	}
	return p;
}

static const char *comp_dir(Dwarf_Die *cudie)
{
	Dwarf_Attribute attr;
	const char *dir;

	if (!dwarf_attr(cudie, DW_AT_comp_dir, &attr) || !(dir = dwarf_formstring(&attr)) || !*dir)
		return NULL;
	return dir;
}

/* Line tables name files relative to the compilation directory as often
 * as not. */
static char *absolute(const char *file, const char *dir)
{
	char *path;

	if (!file)
		return NULL;
	if (file[0] == '/' || !dir)
		return strdup(file);
	return asprintf(&path, "%s/%s", dir, file) < 0 ? NULL : path;
}

static bool own_source(const char *path, const char *dir)
{
	size_t n = dir ? strlen(dir) : 0;

	return !dir || (path && strncmp(path, dir, n) == 0 && path[n] == '/');
}

/* The linkage name says more than DW_AT_name (`{closure#0}`, `poll`). */
static int frame_name(Dwarf_Die *die, char **function)
{
	Dwarf_Attribute attr;
	const char *name = NULL;

	if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
	    dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
		name = dwarf_formstring(&attr);
	if (name)
		*function = demangle_symbol(name);
	else if (dwarf_attr_integrate(die, DW_AT_name, &attr) && (name = dwarf_formstring(&attr)))
		*function = strdup(name);
	return name && !*function ? -ENOMEM : 0;
}

/* Pick the frame (see lines.h) and fill the results; 0 or -ENOMEM. */
static int pick_frame(Dwarf_Die *cudie, struct chain *c, uint64_t pc, char **file,
		      unsigned *line, char **function)
{
	const char *dir = comp_dir(cudie);
	struct place p = line_at(cudie, pc), first = p;
	int pick = c->count - 1, first_pick = pick;

	for (; pick >= 0; pick--) {
		if (!(*file = absolute(p.file, dir)) && p.file)
			return -ENOMEM;
		if (own_source(*file, dir))
			break;
		free(*file);
		*file = NULL;
		if (pick > 0)
			p = call_site(cudie, &c->dies[pick]);
	}
	if (pick < 0) { /* no frame of the unit's own source: the innermost */
		pick = first_pick;
		p = first;
		if (!(*file = absolute(p.file, dir)) && p.file)
			return -ENOMEM;
	}
	*line = p.line;
	return pick >= 0 ? frame_name(&c->dies[pick], function) : 0;
}

static int lookup_dwarf(struct addr_lines *al, uint64_t vaddr, char **file, unsigned *line,
			char **function)
{
	struct chain *c;
	Dwarf_Die cudie;
	int err;

	if (!al->dw || !unit_of(al->dw, vaddr, &cudie))
		return 0;
	c = calloc(1, sizeof(*c)); /* 64 DIEs: too large for some stacks */
	if (!c)
		return -ENOMEM;
	descend(&cudie, vaddr, c, 0);
	err = pick_frame(&cudie, c, vaddr, file, line, function);
	free(c);
	return err;
}

/* The symbol containing vaddr, demangled. */
static int lookup_symbol(const struct addr_lines *al, uint64_t vaddr, char **function)
{
	size_t lo = 0, hi = al->sym_count;

	while (lo < hi) { /* first symbol above vaddr */
		size_t mid = lo + (hi - lo) / 2;

		if (al->syms[mid].addr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* symbols may nest or overlap: look back over those starting lower */
	for (size_t i = lo; i-- > 0;) {
		const struct elf_sym *s = &al->syms[i];

		if (vaddr - s->addr < s->size) {
			*function = demangle_symbol(s->name);
			return *function ? 0 : -ENOMEM;
		}
		if (lo - i > 16)
			break;
	}
	return 0;
}

int addr_lines__lookup(struct addr_lines *al, uint64_t vaddr, char **file, unsigned *line,
		       char **function)
{
	int err;

	*file = *function = NULL;
	*line = 0;
	if (!in_code(al, vaddr))
		return -ENOENT;
	err = lookup_dwarf(al, vaddr, file, line, function);
	if (!err && !*function)
		err = lookup_symbol(al, vaddr, function);
	if (err) {
		free(*file);
		free(*function);
		*file = *function = NULL;
		*line = 0;
		return err;
	}
	return *file || *function ? 0 : -ENOENT;
}
