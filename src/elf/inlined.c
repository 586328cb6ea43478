#include "elf/inlined.h"

#include <dwarf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <capstone/capstone.h>
#include <elfutils/libdw.h>

#include "elf/classify.h"
#include "elf/demangle.h"
#include "elf/dwarf_scan.h"
#include "elf/inlined_code.h"
#include "trace/function_kinds.h"
#include "util/array.h"

#define MAX_DEPTH 256

/* ---- DWARF: the host's inlined frames ---------------------------------- */

/* One DW_TAG_inlined_subroutine of the host being scanned, async or not:
 * the lines of a body's frame are the call lines of the frames inlined
 * into it. */
struct frame {
	struct inlined_range *ranges;
	size_t range_count;
	uint32_t parent;   /* frame index, or INLINED_NO_PARENT */
	unsigned call_line;
	int32_t body;      /* index in host->bodies, or -1 */
};

struct host_scan {
	struct inlined_host *host;
	Dwarf_Die cudie;
	struct frame *frames;
	size_t frame_count, frame_cap, body_cap;
	bool oom;
};

static int read_ranges(Dwarf_Die *die, struct inlined_range **out, size_t *count)
{
	Dwarf_Addr base, start, end;
	ptrdiff_t off = 0;
	size_t cap = 0;

	*out = NULL;
	*count = 0;
	while ((off = dwarf_ranges(die, off, &base, &start, &end)) > 0) {
		if (end <= start)
			continue;
		if (ARRAY_RESERVE(*out, cap, *count + 1))
			return -ENOMEM;
		(*out)[(*count)++] = (struct inlined_range){ start, end };
	}
	return 0;
}

static bool in_ranges(const struct inlined_range *r, size_t n, uint64_t addr)
{
	for (size_t i = 0; i < n; i++)
		if (addr >= r[i].lo && addr < r[i].hi)
			return true;
	return false;
}

/* BODY_ASYNC_FN/BLOCK from rustc's DW_AT_name of the body's subprogram. */
static uint8_t body_kind_of(Dwarf_Die *subprogram)
{
	Dwarf_Attribute attr;
	const char *name = NULL;

	if (dwarf_attr_integrate(subprogram, DW_AT_name, &attr))
		name = dwarf_formstring(&attr);
	switch (closure_kind_from_dwarf_name(name)) {
	case CLOSURE_ASYNC_FN:
		return BODY_ASYNC_FN;
	case CLOSURE_ASYNC_BLOCK:
		return BODY_ASYNC_BLOCK;
	default:
		return BODY_UNKNOWN;
	}
}

/* The symbol's name as pollfn.c prints it: rustc gives even inlined-only
 * closures a linkage name. */
static char *demangled_linkage(Dwarf_Die *die, bool *oom)
{
	Dwarf_Attribute attr;
	const char *name = NULL;
	char *out;

	if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
	    dwarf_attr_integrate(die, DW_AT_name, &attr))
		name = dwarf_formstring(&attr);
	if (!name)
		return NULL;
	if (!(out = demangle_symbol(name)))
		*oom = true;
	return out;
}

static char *strdup_or_null(const char *s, bool *oom)
{
	char *copy;

	if (!s)
		return NULL;
	if (!(copy = strdup(s)))
		*oom = true;
	return copy;
}

static unsigned udata_attr(Dwarf_Die *die, unsigned name)
{
	Dwarf_Attribute attr;
	Dwarf_Word value;

	if (!dwarf_attr(die, name, &attr) || dwarf_formudata(&attr, &value) != 0)
		return 0;
	return (unsigned)value;
}

/* As an absolute path, like decl files: line tables name the crate's own
 * files relative to the unit's DW_AT_comp_dir (`src/bin/x.rs`). */
static char *call_file(Dwarf_Die *cudie, Dwarf_Die *die, bool *oom)
{
	Dwarf_Files *files;
	Dwarf_Attribute attr;
	const char *file, *dir = NULL;
	size_t count;
	unsigned index = udata_attr(die, DW_AT_call_file);
	char *path;

	if (index == 0 || dwarf_getsrcfiles(cudie, &files, &count) != 0 || index >= count ||
	    !(file = dwarf_filesrc(files, index, NULL, NULL)))
		return NULL;
	if (file[0] != '/' && dwarf_attr(cudie, DW_AT_comp_dir, &attr))
		dir = dwarf_formstring(&attr);
	if (!dir || !*dir)
		return strdup_or_null(file, oom);
	if (asprintf(&path, "%s/%s", dir, file) < 0) {
		*oom = true;
		return NULL;
	}
	return path;
}

/* Nearest enclosing frame that is an async body. */
static uint32_t parent_body(const struct host_scan *hs, uint32_t frame)
{
	while (frame != INLINED_NO_PARENT) {
		if (hs->frames[frame].body >= 0)
			return (uint32_t)hs->frames[frame].body;
		frame = hs->frames[frame].parent;
	}
	return INLINED_NO_PARENT;
}

static void add_body(struct host_scan *hs, struct frame *f, Dwarf_Die *die, Dwarf_Die *origin,
		     uint8_t kind)
{
	struct inlined_host *h = hs->host;
	struct inlined_body *b;
	int line = 0;

	if (ARRAY_RESERVE(h->bodies, hs->body_cap, h->body_count + 1)) {
		hs->oom = true;
		return;
	}
	b = &h->bodies[h->body_count];
	memset(b, 0, sizeof(*b));
	f->body = (int32_t)h->body_count++;
	b->body = kind;
	b->parent = parent_body(hs, f->parent);
	b->name = demangled_linkage(origin, &hs->oom);
	b->decl_file = dwarf_decl_path(origin, &hs->oom);
	if (dwarf_decl_line(origin, &line) == 0 && line > 0)
		b->decl_line = (unsigned)line;
	b->call_file = call_file(&hs->cudie, die, &hs->oom);
	b->call_line = f->call_line;
	b->ranges = malloc((f->range_count ? f->range_count : 1) * sizeof(*b->ranges));
	if (!b->ranges) {
		hs->oom = true;
		return;
	}
	memcpy(b->ranges, f->ranges, f->range_count * sizeof(*b->ranges));
	b->range_count = f->range_count;
}

static uint32_t add_frame(struct host_scan *hs, Dwarf_Die *die, uint32_t parent)
{
	Dwarf_Attribute attr;
	Dwarf_Die origin;
	struct frame *f;
	uint8_t kind = BODY_UNKNOWN;

	if (ARRAY_RESERVE(hs->frames, hs->frame_cap, hs->frame_count + 1)) {
		hs->oom = true;
		return INLINED_NO_PARENT;
	}
	f = &hs->frames[hs->frame_count];
	*f = (struct frame){ .parent = parent, .call_line = udata_attr(die, DW_AT_call_line), .body = -1 };
	if (read_ranges(die, &f->ranges, &f->range_count) < 0) {
		hs->oom = true;
		return INLINED_NO_PARENT;
	}
	if (dwarf_attr(die, DW_AT_abstract_origin, &attr) && dwarf_formref_die(&attr, &origin))
		kind = body_kind_of(&origin);
	if (kind != BODY_UNKNOWN && f->range_count > 0)
		add_body(hs, f, die, &origin, kind);
	return (uint32_t)hs->frame_count++;
}

/* Inlined calls nest in lexical blocks and in each other. */
static void walk_frames(struct host_scan *hs, Dwarf_Die *parent_die, uint32_t parent, int depth)
{
	Dwarf_Die child;

	if (depth > MAX_DEPTH || dwarf_child(parent_die, &child) != 0)
		return;
	do {
		int tag = dwarf_tag(&child);

		if (tag == DW_TAG_inlined_subroutine) {
			uint32_t index = add_frame(hs, &child, parent);

			if (!hs->oom)
				walk_frames(hs, &child, index, depth + 1);
		} else if (tag == DW_TAG_lexical_block) {
			walk_frames(hs, &child, parent, depth + 1);
		}
	} while (!hs->oom && dwarf_siblingof(&child, &child) == 0);
}

/* ---- one body's entries and exits --------------------------------------- */

struct body_view {
	const struct host_scan *hs;
	const struct code *c;
	uint32_t index;  /* in host->bodies */
	uint32_t frame;  /* its frame */
	size_t entry_cap, exit_cap;
};

static bool is_descendant(const struct inlined_host *h, uint32_t b, uint32_t ancestor)
{
	for (uint32_t p = h->bodies[b].parent; p != INLINED_NO_PARENT; p = h->bodies[p].parent)
		if (p == ancestor)
			return true;
	return false;
}

/* In the body or a body inlined into it (DWARF nests their ranges, but
 * nothing requires it). */
static bool inside(const struct inlined_host *h, uint32_t b, uint64_t addr, bool children_only)
{
	if (!children_only && in_ranges(h->bodies[b].ranges, h->bodies[b].range_count, addr))
		return true;
	for (uint32_t k = 0; k < h->body_count; k++)
		if (k != b && is_descendant(h, k, b) &&
		    in_ranges(h->bodies[k].ranges, h->bodies[k].range_count, addr))
			return true;
	return false;
}

static unsigned line_at(const struct body_view *v, uint64_t addr)
{
	const struct host_scan *hs = v->hs;
	Dwarf_Die cudie = hs->cudie;
	Dwarf_Line *row;
	int line = 0;

	for (size_t f = 0; f < hs->frame_count; f++)
		if (hs->frames[f].parent == v->frame &&
		    in_ranges(hs->frames[f].ranges, hs->frames[f].range_count, addr))
			return hs->frames[f].call_line;
	row = dwarf_getsrc_die(&cudie, addr);
	return row && dwarf_lineno(row, &line) == 0 && line > 0 ? (unsigned)line : 0;
}

static int add_entry(struct body_view *v, uint64_t addr, uint64_t from, uint8_t kind, int state)
{
	struct inlined_body *b = &v->hs->host->bodies[v->index];

	for (size_t i = 0; i < b->entry_count; i++)
		if (b->entries[i].addr == addr && b->entries[i].kind == kind &&
		    b->entries[i].state == state)
			return 0; /* two dispatches through one table */
	if (ARRAY_RESERVE(b->entries, v->entry_cap, b->entry_count + 1))
		return -ENOMEM;
	b->entries[b->entry_count++] = (struct inlined_entry){
		.addr = addr, .from = from, .kind = kind, .state = (int16_t)state, .line = line_at(v, addr)
	};
	return 0;
}

static bool same_loc(struct loc a, struct loc b)
{
	return a.arg >= 0 && a.arg == b.arg && a.off == b.off;
}

/* Without a tracked `self`, the dispatch's own addressing: rustc keeps
 * the future's pointer in one callee-saved register (rbx, rbp, r12-r15). */
static bool same_register_slot(const struct inlined_state *st, const struct insn *in)
{
	bool callee_saved = st->base_reg == 3 || st->base_reg == 5 || st->base_reg >= 12;

	return st->found && callee_saved && in->r1 == st->base_reg && in->disp == st->disp;
}

/* The state stored last before insns[i] on its straight line. */
static int stored_state(const struct body_view *v, size_t i)
{
	const struct inlined_state *st = &v->hs->host->bodies[v->index].state;
	struct loc want = { st->arg, st->offset };

	for (size_t k = i + 1; k-- > 0;) {
		const struct insn *in = &v->c->insns[k];
		const struct insn *prev = k ? &v->c->insns[k - 1] : NULL;

		if (in->shape == SHAPE_STORE_BYTE &&
		    (same_loc(in->mem, want) || same_register_slot(st, in)))
			return in->value;
		if (!prev || prev->addr + prev->len != in->addr || code__is_join(v->c, in->addr) ||
		    !code__falls_through(v->c, k - 1, &prev))
			return -1;
	}
	return -1;
}

static int add_exit(struct body_view *v, size_t i, uint64_t to, uint8_t kind)
{
	struct inlined_body *b = &v->hs->host->bodies[v->index];

	if (ARRAY_RESERVE(b->exits, v->exit_cap, b->exit_count + 1))
		return -ENOMEM;
	b->exits[b->exit_count++] = (struct inlined_exit){
		.from = v->c->insns[i].addr, .to = to, .kind = kind, .stored_state = (int16_t)stored_state(v, i)
	};
	return 0;
}

/* A transfer from outside the body at insns[i] into it. */
static int entries_from(struct body_view *v, size_t i)
{
	const struct inlined_host *h = v->hs->host;
	const struct insn *in = &v->c->insns[i], *next;
	int err = 0;

	if ((in->kind == INSN_JMP || in->kind == INSN_JCC) && inside(h, v->index, in->target, false))
		err = add_entry(v, in->target, in->addr, INLINED_ENTRY_BRANCH, -1);
	if (!err && in->table >= 0) {
		const struct jump_table *t = &v->c->tables[in->table];

		for (size_t k = 0; !err && k < t->count; k++)
			if (inside(h, v->index, t->targets[k], false))
				err = add_entry(v, t->targets[k], in->addr, INLINED_ENTRY_TABLE, (int)k);
	}
	if (!err && code__falls_through(v->c, i, &next) && next && inside(h, v->index, next->addr, false))
		err = add_entry(v, next->addr, in->addr, INLINED_ENTRY_FALLTHROUGH, -1);
	return err;
}

/* The body's own dispatch (not that of a body inlined into it). */
static int dispatch_of(struct body_view *v, size_t i)
{
	const struct inlined_host *h = v->hs->host;
	const struct jump_table *t = &v->c->tables[v->c->insns[i].table];
	int err = 0;

	if (inside(h, v->index, v->c->insns[i].addr, true))
		return 0;
	for (size_t k = 0; !err && k < t->count; k++)
		err = inside(h, v->index, t->targets[k], false) ?
			      add_entry(v, t->targets[k], v->c->insns[i].addr, INLINED_ENTRY_RESUME, (int)k) :
			      add_exit(v, i, t->targets[k], INLINED_EXIT_TABLE);
	return err;
}

/* A transfer at insns[i], inside the body, out of it. */
static int exits_from(struct body_view *v, size_t i)
{
	const struct inlined_host *h = v->hs->host;
	const struct insn *in = &v->c->insns[i], *next;

	int err;

	if ((in->kind == INSN_JMP || in->kind == INSN_JCC) && !inside(h, v->index, in->target, false) &&
	    (err = add_exit(v, i, in->target, INLINED_EXIT_BRANCH)) < 0)
		return err;
	if (in->kind == INSN_JMP_INDIRECT)
		return in->table >= 0 ? dispatch_of(v, i) : add_exit(v, i, 0, INLINED_EXIT_BRANCH);
	if (in->kind == INSN_RET)
		return add_exit(v, i, 0, INLINED_EXIT_RETURN);
	if (code__falls_through(v->c, i, &next) && (!next || !inside(h, v->index, next->addr, false)))
		return add_exit(v, i, in->addr + in->len, INLINED_EXIT_FALLTHROUGH);
	return 0;
}

static int cmp_entries(const void *a, const void *b)
{
	const struct inlined_entry *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return (int)x->kind - (int)y->kind;
}

static struct inlined_state state_of(const struct code *c, const struct jump_table *t)
{
	const struct insn *load = &c->insns[t->state_load];

	return (struct inlined_state){ .found = true, .load_addr = load->addr, .base_reg = load->r1,
				       .disp = (int32_t)load->disp, .arg = t->state.arg,
				       .offset = (int32_t)t->state.off, .states = (uint16_t)t->count };
}

static int analyse_body(struct host_scan *hs, const struct code *c, uint32_t index)
{
	struct body_view v = { .hs = hs, .c = c, .index = index };
	struct inlined_host *h = hs->host;
	struct inlined_body *b = &h->bodies[index];
	int err = 0;

	for (size_t f = 0; f < hs->frame_count; f++)
		if (hs->frames[f].body == (int32_t)index)
			v.frame = (uint32_t)f;
	/* exits look for stores to the state: find the dispatch first */
	for (size_t i = 0; i < c->count && !b->state.found; i++)
		if (c->insns[i].table >= 0 && inside(h, index, c->insns[i].addr, false) &&
		    !inside(h, index, c->insns[i].addr, true) && c->tables[c->insns[i].table].state_found) {
			const struct jump_table *t = &c->tables[c->insns[i].table];

			b->state = state_of(c, t);
		}
	if (inside(h, index, h->addr, false))
		err = add_entry(&v, h->addr, 0, INLINED_ENTRY_FUNCTION, -1);
	for (size_t i = 0; i < c->count && !err; i++)
		err = inside(h, index, c->insns[i].addr, false) ? exits_from(&v, i) : entries_from(&v, i);
	if (b->entries)
		qsort(b->entries, b->entry_count, sizeof(*b->entries), cmp_entries);
	return err;
}

/* The host's line at addr: the call line of a body inlined straight into
 * it there (the `.await` of an inlined child), else the line table's. */
static unsigned host_line_at(const struct host_scan *hs, uint64_t addr)
{
	Dwarf_Die cudie = hs->cudie;
	Dwarf_Line *row;
	int line = 0;

	for (size_t f = 0; f < hs->frame_count; f++)
		if (hs->frames[f].parent == INLINED_NO_PARENT &&
		    in_ranges(hs->frames[f].ranges, hs->frames[f].range_count, addr))
			return hs->frames[f].call_line;
	row = dwarf_getsrc_die(&cudie, addr);
	return row && dwarf_lineno(row, &line) == 0 && line > 0 ? (unsigned)line : 0;
}

/* Where the host's suspended states resume (3 + N: the Nth await). */
static int host_awaits(const struct host_scan *hs, const struct jump_table *t)
{
	struct inlined_host *h = hs->host;

	if (t->count <= 3)
		return 0;
	if (!(h->awaits = calloc(t->count - 3, sizeof(*h->awaits))))
		return -ENOMEM;
	for (size_t k = 3; k < t->count; k++) {
		unsigned line = host_line_at(hs, t->targets[k]);

		if (line)
			h->awaits[h->await_count++] = (struct inlined_await){ (uint16_t)k, line };
	}
	return 0;
}

/* The host's own machine, when it is an async body: the first dispatch in
 * none of its inlined bodies. */
static int host_state(const struct host_scan *hs, const struct code *c)
{
	struct inlined_host *h = hs->host;

	for (size_t i = 0; i < c->count && h->body; i++) {
		const struct jump_table *t;
		bool in_body = false;

		for (uint32_t b = 0; b < h->body_count && !in_body; b++)
			in_body = in_ranges(h->bodies[b].ranges, h->bodies[b].range_count, c->insns[i].addr);
		if (c->insns[i].table < 0 || in_body || !c->tables[c->insns[i].table].state_found)
			continue;
		t = &c->tables[c->insns[i].table];
		h->state = state_of(c, t);
		return host_awaits(hs, t);
	}
	return 0;
}

static int analyse_code(struct host_scan *hs, struct elf_image *img, const struct noreturn_set *nr)
{
	struct code c;
	int err;

	if (img->machine != EM_X86_64)
		return 0;
	err = code__decode(&c, img, nr, hs->host);
	for (uint32_t b = 0; !err && b < hs->host->body_count; b++)
		err = analyse_body(hs, &c, b);
	if (!err && !(err = host_state(hs, &c)))
		hs->host->decoded = c.count > 0;
	code__free(&c);
	return err;
}

/* ---- the set ----------------------------------------------------------- */

static void body__release(struct inlined_body *b)
{
	free(b->name);
	free(b->decl_file);
	free(b->call_file);
	free(b->ranges);
	free(b->entries);
	free(b->exits);
}

static void host__release(struct inlined_host *h)
{
	for (size_t i = 0; i < h->body_count; i++)
		body__release(&h->bodies[i]);
	free(h->bodies);
	free(h->ranges);
	free(h->name);
	free(h->awaits);
	memset(h, 0, sizeof(*h));
}

static int cmp_ranges(const void *a, const void *b)
{
	const struct inlined_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

struct set_scan {
	struct elf_image *img;
	struct noreturn_set noreturn;
	struct inlined_set *set;
	size_t cap;
	int err;
};

static int finish_host(struct set_scan *ss, struct host_scan *hs, Dwarf_Die *die)
{
	struct inlined_host *h = hs->host;
	Dwarf_Addr entry;
	int err;

	if ((err = read_ranges(die, &h->ranges, &h->range_count)) < 0)
		return err;
	/* instructions are kept in address order */
	if (h->range_count) /* ranges is NULL then: qsort's is nonnull */
		qsort(h->ranges, h->range_count, sizeof(*h->ranges), cmp_ranges);
	h->addr = dwarf_entrypc(die, &entry) == 0 ? entry : h->ranges ? h->ranges[0].lo : 0;
	h->name = demangled_linkage(die, &hs->oom);
	h->body = body_kind_of(die);
	if (hs->oom)
		return -ENOMEM;
	return analyse_code(hs, ss->img, &ss->noreturn);
}

static void scan_subprogram(struct set_scan *ss, Dwarf_Die *cudie, Dwarf_Die *die)
{
	struct inlined_host host = { 0 };
	struct host_scan hs = { .host = &host, .cudie = *cudie };
	Dwarf_Addr low;
	int err = 0;

	/* Only concrete instances have code; the linker leaves discarded
	 * functions' DWARF at address 0. */
	if ((!dwarf_hasattr(die, DW_AT_low_pc) && !dwarf_hasattr(die, DW_AT_ranges)) ||
	    (dwarf_lowpc(die, &low) == 0 && low == 0))
		return;
	walk_frames(&hs, die, INLINED_NO_PARENT, 0);
	if (hs.oom)
		err = -ENOMEM;
	/* hosts of inlined bodies; and async bodies of their own, whose state
	 * dispatch gives their results in release builds */
	else if ((host.body_count > 0 || body_kind_of(die)) && !(err = finish_host(ss, &hs, die)) &&
		 !(err = ARRAY_RESERVE(ss->set->hosts, ss->cap, ss->set->count + 1) ? -ENOMEM : 0)) {
		ss->set->hosts[ss->set->count++] = host;
		memset(&host, 0, sizeof(host));
	}
	for (size_t f = 0; f < hs.frame_count; f++)
		free(hs.frames[f].ranges);
	free(hs.frames);
	host__release(&host);
	if (err)
		ss->err = err;
}

/* Out-of-line functions sit in namespaces and types (as in dwarf_scan.c). */
static void walk_unit(struct set_scan *ss, Dwarf_Die *cudie, Dwarf_Die *parent, int depth)
{
	Dwarf_Die child;

	if (depth > MAX_DEPTH || dwarf_child(parent, &child) != 0)
		return;
	do {
		switch (dwarf_tag(&child)) {
		case DW_TAG_subprogram:
			scan_subprogram(ss, cudie, &child);
			break;
		case DW_TAG_namespace:
		case DW_TAG_module:
		case DW_TAG_structure_type:
		case DW_TAG_class_type:
		case DW_TAG_union_type:
		case DW_TAG_enumeration_type:
			walk_unit(ss, cudie, &child, depth + 1);
			break;
		default:
			break;
		}
	} while (!ss->err && dwarf_siblingof(&child, &child) == 0);
}

static int cmp_hosts(const void *a, const void *b)
{
	const struct inlined_host *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

int inlined_scan(struct elf_image *img, struct inlined_set *set)
{
	struct set_scan ss = { .img = img, .set = set };
	Dwarf_CU *cu = NULL;
	Dwarf_Die cudie;
	uint8_t unit_type;
	Dwarf *dw;

	memset(set, 0, sizeof(*set));
	if (img->type == ET_REL || !(dw = dwarf_begin_elf(img->elf, DWARF_C_READ, NULL)))
		return 0;
	if (img->machine == EM_X86_64 && (ss.err = noreturn_set__build(&ss.noreturn, img)) < 0) {
		dwarf_end(dw);
		return ss.err;
	}
	while (!ss.err && dwarf_get_units(dw, cu, &cu, NULL, &unit_type, &cudie, NULL) == 0) {
		set->has_dwarf = true;
		if (unit_type == DW_UT_compile || unit_type == DW_UT_partial)
			walk_unit(&ss, &cudie, &cudie, 0);
	}
	dwarf_end(dw);
	noreturn_set__free(&ss.noreturn);
	if (ss.err) {
		inlined_set__free(set);
		return ss.err;
	}
	if (set->count)
		qsort(set->hosts, set->count, sizeof(*set->hosts), cmp_hosts);
	return 0;
}

void inlined_set__free(struct inlined_set *set)
{
	for (size_t i = 0; i < set->count; i++)
		host__release(&set->hosts[i]);
	free(set->hosts);
	memset(set, 0, sizeof(*set));
}

const struct inlined_host *inlined_set__host(const struct inlined_set *set, uint64_t addr)
{
	for (size_t i = 0; i < set->count; i++)
		if (set->hosts[i].addr == addr)
			return &set->hosts[i];
	return NULL;
}

const char *inlined_entry_kind__name(int kind)
{
	static const char *const names[] = { "?", "function", "fallthrough", "branch", "table", "resume" };

	return kind > 0 && kind < (int)(sizeof(names) / sizeof(names[0])) ? names[kind] : "unknown";
}

const char *inlined_exit_kind__name(int kind)
{
	static const char *const names[] = { "?", "branch", "fallthrough", "return", "table" };

	return kind > 0 && kind < (int)(sizeof(names) / sizeof(names[0])) ? names[kind] : "unknown";
}
