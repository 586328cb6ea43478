#include "elf/inlined_code.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <capstone/capstone.h>

#include "arch/x86_64_patch.h"
#include "util/array.h"

/* A u8 state indexes at most 256 entries. */
#define MAX_TABLE_ENTRIES 256
/* LLVM's dispatch is `movzbl off(%b),%i; lea tbl(%rip),%t; movslq
 * (%t,%i,4),%r; add %t,%r; jmp *%r`, sometimes with a move between. */
#define TABLE_LOOKBACK 8

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool has_u64(const uint64_t *v, size_t n, uint64_t x)
{
	return n && bsearch(&x, v, n, sizeof(*v), cmp_u64);
}

static int push_u64(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
	if (ARRAY_RESERVE(*v, *cap, *n + 1))
		return -ENOMEM;
	(*v)[(*n)++] = x;
	return 0;
}

/* The bytes at [addr, addr + size) of an allocated section, or NULL;
 * *avail (when given) is how many bytes the section has from addr on. */
static const uint8_t *bytes_at(struct elf_image *img, uint64_t addr, uint64_t size, uint64_t *avail)
{
	for (Elf_Scn *scn = NULL; (scn = elf_nextscn(img->elf, scn));) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_ALLOC) || sh.sh_type == SHT_NOBITS ||
		    addr < sh.sh_addr || addr - sh.sh_addr >= sh.sh_size)
			continue;
		d = elf_rawdata(scn, NULL);
		if (!d || addr - sh.sh_addr > d->d_size || size > d->d_size - (addr - sh.sh_addr))
			return NULL;
		if (avail)
			*avail = d->d_size - (addr - sh.sh_addr);
		return (const uint8_t *)d->d_buf + (addr - sh.sh_addr);
	}
	return NULL;
}

static int32_t le32s(const uint8_t *p)
{
	return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			 (uint32_t)p[3] << 24);
}

/* ---- functions that do not return ----------------------------------- */

/* rustc's diverging helpers and the unwinder, by mangled (or C) name. A
 * call to one ends its block: no fallthrough edge, no values carried on. */
static bool noreturn_name(const char *name)
{
	static const char *const marks[] = {
		"panic", "Unwind_Resume", "unwrap_failed", "expect_failed", "assert_failed",
		"capacity_overflow", "handle_alloc_error", "len_fail", "index_fail", "order_fail",
		"abort",
	};

	for (size_t i = 0; name && i < sizeof(marks) / sizeof(marks[0]); i++)
		if (strstr(name, marks[i]))
			return true;
	return false;
}

static const char *reloc_sym_name(Elf *elf, Elf_Scn *symscn, size_t symi)
{
	GElf_Shdr sh;
	GElf_Sym sym;
	Elf_Data *d;

	if (!symscn || !gelf_getshdr(symscn, &sh) || !(d = elf_getdata(symscn, NULL)) ||
	    !gelf_getsym(d, (int)symi, &sym))
		return NULL;
	return elf_strptr(elf, sh.sh_link, sym.st_name);
}

/* GOT slots filled with a diverging function: by symbol (GLOB_DAT,
 * JUMP_SLOT) or, in a PIE, by a RELATIVE addend (rustc calls other
 * codegen units' functions through the GOT). */
static int noreturn_slots(struct noreturn_set *nr, struct elf_image *img)
{
	size_t cap = 0;

	for (Elf_Scn *scn = NULL; (scn = elf_nextscn(img->elf, scn));) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !sh.sh_entsize ||
		    !(d = elf_getdata(scn, NULL)))
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Rela r;
			size_t symi;
			bool hit;

			if (!gelf_getrela(d, (int)i, &r))
				continue;
			symi = GELF_R_SYM(r.r_info);
			hit = symi ? noreturn_name(reloc_sym_name(img->elf, elf_getscn(img->elf, sh.sh_link), symi))
				   : has_u64(nr->addrs, nr->addr_count, (uint64_t)r.r_addend);
			if (hit && push_u64(&nr->slots, &nr->slot_count, &cap, r.r_offset) < 0)
				return -ENOMEM;
		}
	}
	if (nr->slot_count) /* slots is NULL then: qsort's is nonnull */
		qsort(nr->slots, nr->slot_count, sizeof(*nr->slots), cmp_u64);
	return 0;
}

int noreturn_set__build(struct noreturn_set *nr, struct elf_image *img)
{
	struct elf_sym *syms = NULL;
	size_t count = 0, cap = 0;
	int err;

	memset(nr, 0, sizeof(*nr));
	if ((err = elf_image__functions(img, &syms, &count)) < 0)
		return err;
	for (size_t i = 0; i < count && !err; i++)
		if (noreturn_name(syms[i].name))
			err = push_u64(&nr->addrs, &nr->addr_count, &cap, syms[i].addr);
	free(syms);
	if (!err) {
		if (nr->addr_count) /* addrs is NULL then: qsort's is nonnull */
			qsort(nr->addrs, nr->addr_count, sizeof(*nr->addrs), cmp_u64);
		err = noreturn_slots(nr, img);
	}
	if (err)
		noreturn_set__free(nr);
	return err;
}

void noreturn_set__free(struct noreturn_set *nr)
{
	free(nr->addrs);
	free(nr->slots);
	memset(nr, 0, sizeof(*nr));
}

/* A PLT stub is `[endbr64] [bnd] jmp *slot(%rip)`. */
static uint64_t plt_slot(struct elf_image *img, uint64_t stub)
{
	const uint8_t *p = bytes_at(img, stub, 16, NULL);
	size_t i = 0;

	if (!p)
		return 0;
	if (p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa)
		i = 4;
	if (p[i] == 0xf2)
		i++;
	if (p[i] != 0xff || p[i + 1] != 0x25)
		return 0;
	return stub + i + 6 + (uint64_t)(int64_t)le32s(p + i + 2);
}

static bool calls_noreturn(const struct noreturn_set *nr, struct elf_image *img, const struct insn *in)
{
	if (in->slot)
		return has_u64(nr->slots, nr->slot_count, in->slot);
	return in->target && (has_u64(nr->addrs, nr->addr_count, in->target) ||
			      has_u64(nr->slots, nr->slot_count, plt_slot(img, in->target)));
}

/* ---- decoding -------------------------------------------------------- */


/* The general-purpose register a capstone register is part of, or -1
 * (the arch's table: arch/x86_64_patch.h). */
static int8_t gpr(unsigned reg)
{
	int width;

	return (int8_t)x86_64_gpr_of(reg, &width);
}

static bool is_wide(unsigned reg)
{
	int width;

	return x86_64_gpr_of(reg, &width) >= 0 && width == 0;
}

/* capstone 4 numbers the jumps contiguously: JAE .. JS, JMP among them. */
static uint8_t insn_kind(const cs_insn *insn)
{
	const cs_x86 *x = &insn->detail->x86;
	bool imm = x->op_count == 1 && x->operands[0].type == X86_OP_IMM;

	if (insn->id == X86_INS_JMP)
		return imm ? INSN_JMP : INSN_JMP_INDIRECT;
	if (insn->id >= X86_INS_JAE && insn->id <= X86_INS_JS)
		return imm ? INSN_JCC : INSN_OTHER;
	if (insn->id == X86_INS_RET || insn->id == X86_INS_RETF)
		return INSN_RET;
	if (insn->id == X86_INS_CALL)
		return INSN_CALL;
	if (insn->id == X86_INS_INT3 || insn->id == X86_INS_UD2 || insn->id == X86_INS_HLT)
		return INSN_TRAP;
	return INSN_OTHER;
}

static void lea_shape(const cs_insn *insn, const cs_x86_op *a, const cs_x86_op *b, struct insn *in)
{
	if (b->mem.index != X86_REG_INVALID || !is_wide(a->reg))
		return;
	in->r0 = gpr(a->reg);
	if (b->mem.base == X86_REG_RIP) {
		in->shape = SHAPE_LEA_RIP;
		in->target = insn->address + insn->size + (uint64_t)b->mem.disp;
	} else if ((in->r1 = gpr(b->mem.base)) >= 0) {
		in->shape = SHAPE_LEA_REG;
		in->disp = b->mem.disp;
	}
}

static void mov_shape(const cs_x86_op *a, const cs_x86_op *b, struct insn *in)
{
	if (a->type == X86_OP_MEM && a->size == 1 && a->mem.index == X86_REG_INVALID) {
		in->shape = SHAPE_STORE_BYTE;
		in->r1 = gpr(a->mem.base);
		in->disp = a->mem.disp;
		in->r2 = b->type == X86_OP_REG ? gpr(b->reg) : -1;
		in->value = b->type == X86_OP_IMM ? (int16_t)(uint8_t)b->imm : -1;
	} else if (a->type == X86_OP_REG && b->type == X86_OP_REG) {
		in->shape = SHAPE_MOV_RR;
		in->r0 = gpr(a->reg), in->r1 = gpr(b->reg);
		in->wide = is_wide(a->reg) && is_wide(b->reg);
	} else if (a->type == X86_OP_REG && b->type == X86_OP_IMM) {
		in->shape = SHAPE_MOV_IMM;
		in->r0 = gpr(a->reg);
		in->disp = b->imm;
	}
}

static void shape_of(const cs_insn *insn, struct insn *in)
{
	const cs_x86 *x = &insn->detail->x86;
	const cs_x86_op *a = &x->operands[0], *b = &x->operands[1];

	if (x->op_count == 1 && a->type == X86_OP_REG && in->kind == INSN_JMP_INDIRECT)
		in->r0 = gpr(a->reg);
	if (x->op_count == 1 && a->type == X86_OP_MEM && a->mem.base == X86_REG_RIP &&
	    a->mem.index == X86_REG_INVALID)
		in->slot = insn->address + insn->size + (uint64_t)a->mem.disp;
	if (x->op_count != 2)
		return;
	if (insn->id == X86_INS_LEA) {
		lea_shape(insn, a, b, in);
	} else if (insn->id == X86_INS_MOVSXD && a->type == X86_OP_REG && b->type == X86_OP_MEM &&
		   b->mem.scale == 4) {
		in->shape = SHAPE_TABLE_LOAD;
		in->r0 = gpr(a->reg), in->r1 = gpr(b->mem.base), in->r2 = gpr(b->mem.index);
	} else if (insn->id == X86_INS_ADD && a->type == X86_OP_REG && b->type == X86_OP_REG) {
		in->shape = SHAPE_ADD_RR;
		in->r0 = gpr(a->reg), in->r1 = gpr(b->reg);
	} else if (insn->id == X86_INS_MOVZX && b->type == X86_OP_MEM && b->size == 1) {
		in->shape = SHAPE_LOAD_BYTE;
		in->r0 = gpr(a->reg), in->r1 = gpr(b->mem.base);
		in->disp = b->mem.disp;
	} else if (insn->id == X86_INS_MOV) {
		mov_shape(a, b, in);
	}
}

static uint16_t written_gprs(csh cs, const cs_insn *insn)
{
	cs_regs read, write;
	uint8_t nread, nwrite;
	uint16_t mask = 0;

	if (cs_regs_access(cs, insn, read, &nread, write, &nwrite) != CS_ERR_OK)
		return 0xffff; /* unknown: assume everything changed */
	for (unsigned i = 0; i < nwrite; i++)
		if (gpr(write[i]) >= 0)
			mask |= (uint16_t)(1u << gpr(write[i]));
	return mask;
}

struct decoder {
	struct code *c;
	struct elf_image *img;
	const struct noreturn_set *nr;
	csh cs;
};

static int add_insn(struct decoder *d, const cs_insn *insn)
{
	struct code *c = d->c;
	const cs_x86 *x = &insn->detail->x86;
	struct insn *in;

	if (ARRAY_RESERVE(c->insns, c->cap, c->count + 1))
		return -ENOMEM;
	in = &c->insns[c->count++];
	*in = (struct insn){ .addr = insn->address, .len = (uint8_t)insn->size, .r0 = -1, .r1 = -1,
			     .r2 = -1, .table = -1, .value = -1, .mem = { -1, 0 } };
	in->kind = insn_kind(insn);
	if (in->kind != INSN_OTHER && x->op_count == 1 && x->operands[0].type == X86_OP_IMM)
		in->target = (uint64_t)x->operands[0].imm;
	shape_of(insn, in);
	in->writes = written_gprs(d->cs, insn);
	if (in->kind == INSN_CALL && calls_noreturn(d->nr, d->img, in))
		in->kind = INSN_NORETURN_CALL;
	if (in->kind == INSN_JMP || in->kind == INSN_JCC)
		return push_u64(&c->joins, &c->join_count, &c->join_cap, in->target);
	return 0;
}

static int decode_range(struct decoder *d, const struct inlined_range *r)
{
	const uint8_t *p = bytes_at(d->img, r->lo, r->hi - r->lo, NULL);
	size_t left = r->hi - r->lo;
	uint64_t pc = r->lo;
	cs_insn *insn;
	int err = 0;

	if (!p)
		return 0; /* not in the file: nothing to decode */
	if (!(insn = cs_malloc(d->cs)))
		return -ENOMEM;
	while (left > 0 && !err) {
		if (!cs_disasm_iter(d->cs, &p, &left, &pc, insn)) {
			p++, left--, pc++; /* padding or data: resynchronise */
			continue;
		}
		err = add_insn(d, insn);
	}
	cs_free(insn, 1);
	return err;
}

bool code__is_join(const struct code *c, uint64_t addr)
{
	return has_u64(c->joins, c->join_count, addr);
}

bool code__falls_through(const struct code *c, size_t i, const struct insn **next)
{
	const struct insn *in = &c->insns[i];
	bool goes_on = in->kind == INSN_OTHER || in->kind == INSN_JCC || in->kind == INSN_CALL;

	*next = i + 1 < c->count && c->insns[i + 1].addr == in->addr + in->len ? &c->insns[i + 1] : NULL;
	return goes_on && (!*next || (*next)->kind != INSN_TRAP);
}

/* ---- register values --------------------------------------------------- */

/* "Argument k + offset" (a pointer into the future being polled) or a
 * small immediate, per general-purpose register. */
enum val_kind { VAL_UNKNOWN, VAL_ARG, VAL_IMM };

struct val {
	uint8_t kind;
	int8_t arg;
	int64_t v;
};

struct regs {
	struct val v[16];
	bool set;
};

static struct loc loc_of(const struct val *regs, int base, int64_t disp)
{
	if (base >= 0 && regs[base].kind == VAL_ARG)
		return (struct loc){ regs[base].arg, regs[base].v + disp };
	return (struct loc){ -1, disp };
}

static void track_one(struct insn *in, struct val *regs)
{
	struct val src = in->r1 >= 0 ? regs[in->r1] : (struct val){ 0 };

	if (in->shape == SHAPE_LOAD_BYTE || in->shape == SHAPE_STORE_BYTE)
		in->mem = loc_of(regs, in->r1, in->disp);
	if (in->shape == SHAPE_STORE_BYTE && in->r2 >= 0)
		in->value = regs[in->r2].kind == VAL_IMM ? (int16_t)(uint8_t)regs[in->r2].v : -1;
	for (int r = 0; r < 16; r++)
		if (in->writes & (1u << r))
			regs[r].kind = VAL_UNKNOWN;
	if (in->kind == INSN_CALL) /* SysV caller-saved: all but rbx, rsp, rbp, r12-r15 */
		for (int r = 0; r < 12; r++)
			if (r != 3 && r != 4 && r != 5)
				regs[r].kind = VAL_UNKNOWN;
	if (in->r0 < 0)
		return;
	if (in->shape == SHAPE_MOV_RR && (in->wide || src.kind == VAL_IMM))
		regs[in->r0] = src;
	else if (in->shape == SHAPE_LEA_REG && src.kind == VAL_ARG)
		regs[in->r0] = (struct val){ VAL_ARG, src.arg, src.v + in->disp };
	else if (in->shape == SHAPE_MOV_IMM)
		regs[in->r0] = (struct val){ VAL_IMM, 0, in->disp };
}

static void meet(struct regs *into, const struct val *from)
{
	if (!into->set) {
		memcpy(into->v, from, sizeof(into->v));
		into->set = true;
		return;
	}
	for (int r = 0; r < 16; r++)
		if (into->v[r].kind != from[r].kind || into->v[r].arg != from[r].arg ||
		    into->v[r].v != from[r].v)
			into->v[r].kind = VAL_UNKNOWN;
}

size_t code__index_of(const struct code *c, uint64_t addr)
{
	size_t lo = 0, hi = c->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->insns[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->count && c->insns[lo].addr == addr ? lo : c->count;
}

static void pass_forward(const struct code *c, size_t i, const struct val *cur, struct regs *pending)
{
	const struct insn *in = &c->insns[i];
	size_t t;

	if ((in->kind == INSN_JMP || in->kind == INSN_JCC) && (t = code__index_of(c, in->target)) > i &&
	    t < c->count)
		meet(&pending[t], cur);
	for (size_t k = 0; in->table >= 0 && k < c->tables[in->table].count; k++)
		if ((t = code__index_of(c, c->tables[in->table].targets[k])) > i && t < c->count)
			meet(&pending[t], cur);
}

/* Forward edges only, in address order: a loop's back edge is not met.
 * An instruction reached by no decoded edge (a landing pad) starts with
 * nothing known. */
/* Instructions a branch from later in the code reaches (loops): the pass
 * goes forward only, so what such an edge brings is not met there. */
static bool *back_edge_targets(const struct code *c)
{
	bool *back = calloc(c->count + 1, sizeof(*back));
	size_t t;

	for (size_t i = 0; back && i < c->count; i++) {
		const struct insn *in = &c->insns[i];

		if ((in->kind == INSN_JMP || in->kind == INSN_JCC) && (t = code__index_of(c, in->target)) <= i)
			back[t] = true;
		for (size_t k = 0; in->table >= 0 && k < c->tables[in->table].count; k++)
			if ((t = code__index_of(c, c->tables[in->table].targets[k])) <= i)
				back[t] = true;
	}
	return back;
}

static int track_registers(struct code *c)
{
	struct regs *pending = calloc(c->count + 1, sizeof(*pending));
	bool *back = back_edge_targets(c);
	struct val cur[16] = { [7] = { VAL_ARG, 0, 0 }, [6] = { VAL_ARG, 1, 0 } };
	const struct insn *next;
	bool reached = true;

	if (!pending || !back) {
		free(pending);
		free(back);
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->count; i++) {
		if (reached && pending[i].set)
			meet(&pending[i], cur);
		if (!reached && !pending[i].set)
			memset(cur, 0, sizeof(cur));
		else if (pending[i].set)
			memcpy(cur, pending[i].v, sizeof(cur));
		/* a loop may bring any immediate here (the state a store then
		 * writes: 1 on one path, 3 on the loop's); pointers into the
		 * future stay (loops do not move it) */
		for (int r = 0; back[i] && r < 16; r++)
			if (cur[r].kind == VAL_IMM)
				cur[r].kind = VAL_UNKNOWN;
		track_one(&c->insns[i], cur);
		pass_forward(c, i, cur, pending);
		reached = code__falls_through(c, i, &next) && next;
	}
	free(pending);
	free(back);
	return 0;
}

/* ---- dispatch tables ----------------------------------------------------- */

/* The shape writing `reg` among the few instructions before insns[i]. */
static const struct insn *recent_shape(const struct code *c, size_t i, uint8_t shape, int reg)
{
	for (size_t k = 1; k <= TABLE_LOOKBACK && k <= i; k++) {
		const struct insn *in = &c->insns[i - k];

		if (in->addr + in->len != c->insns[i - k + 1].addr)
			return NULL; /* a gap between ranges */
		if (in->shape == shape && in->r0 == reg && reg >= 0)
			return in;
	}
	return NULL;
}

/* The table base the indirect jump at insns[i] dispatches through, and
 * its index's load; false for other indirect jumps (tail calls). */
static bool match_dispatch(const struct code *c, size_t i, uint64_t *base, const struct insn **index_load)
{
	const struct insn *add = recent_shape(c, i, SHAPE_ADD_RR, c->insns[i].r0), *load, *lea;

	if (!add || !(load = recent_shape(c, i, SHAPE_TABLE_LOAD, add->r0)) || load->r1 != add->r1 ||
	    !(lea = recent_shape(c, i, SHAPE_LEA_RIP, add->r1)))
		return false;
	*base = lea->target;
	*index_load = recent_shape(c, i, SHAPE_LOAD_BYTE, load->r2);
	return true;
}

static bool insn_starts_at(const struct code *c, uint64_t addr)
{
	return code__index_of(c, addr) < c->count;
}

/* Entries are rel32 offsets from the base. The table's size is not in the
 * code (LLVM knows the state's range): it ends at the next table of this
 * function, or at the first entry not pointing at one of the function's
 * instructions (the bytes after a table may be another function's table:
 * their "targets" land mid-instruction, where a probe would corrupt the
 * code). */
static int read_table(const struct code *c, struct elf_image *img, const struct inlined_host *h,
		      struct jump_table *t, uint64_t limit)
{
	uint64_t avail = 0;
	const uint8_t *p = bytes_at(img, t->base, 4, &avail);
	size_t cap = 0;

	for (size_t i = 0; p && i < MAX_TABLE_ENTRIES && 4 * (i + 1) <= avail; i++) {
		uint64_t target = t->base + (uint64_t)(int64_t)le32s(p + 4 * i);
		bool in_host = false;

		for (size_t r = 0; r < h->range_count; r++)
			in_host |= target >= h->ranges[r].lo && target < h->ranges[r].hi;
		if (t->base + 4 * i >= limit || !in_host || !insn_starts_at(c, target))
			break;
		if (push_u64(&t->targets, &t->count, &cap, target) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int32_t table_for(struct code *c, uint64_t base, const struct insn *index_load)
{
	struct jump_table *t;

	for (size_t k = 0; k < c->table_count; k++)
		if (c->tables[k].base == base)
			return (int32_t)k;
	if (ARRAY_RESERVE(c->tables, c->table_cap, c->table_count + 1))
		return -ENOMEM;
	t = &c->tables[c->table_count];
	*t = (struct jump_table){ .base = base, .state = { -1, 0 } };
	if (index_load) {
		t->state_load = (size_t)(index_load - c->insns);
		t->state_found = true;
	}
	return (int32_t)c->table_count++;
}

static uint64_t next_base(const struct code *c, uint64_t base)
{
	uint64_t limit = UINT64_MAX;

	for (size_t k = 0; k < c->table_count; k++)
		if (c->tables[k].base > base && c->tables[k].base < limit)
			limit = c->tables[k].base;
	return limit;
}

static int resolve_tables(struct code *c, struct elf_image *img, const struct inlined_host *h)
{
	int err = 0;

	for (size_t i = 0; i < c->count; i++) {
		const struct insn *index_load = NULL;
		uint64_t base;
		int32_t t;

		if (c->insns[i].kind != INSN_JMP_INDIRECT || !match_dispatch(c, i, &base, &index_load))
			continue;
		if ((t = table_for(c, base, index_load)) < 0)
			return t;
		c->insns[i].table = t;
	}
	for (size_t t = 0; t < c->table_count && !err; t++) {
		err = read_table(c, img, h, &c->tables[t], next_base(c, c->tables[t].base));
		for (size_t k = 0; !err && k < c->tables[t].count; k++)
			err = push_u64(&c->joins, &c->join_count, &c->join_cap, c->tables[t].targets[k]);
	}
	if (c->join_count) /* joins is NULL then: qsort's is nonnull */
		qsort(c->joins, c->join_count, sizeof(*c->joins), cmp_u64);
	return err;
}

int code__decode(struct code *c, struct elf_image *img, const struct noreturn_set *nr,
		 const struct inlined_host *h)
{
	struct decoder d = { .c = c, .img = img, .nr = nr };
	int err = 0;

	memset(c, 0, sizeof(*c));
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &d.cs) != CS_ERR_OK)
		return -ENOMEM;
	cs_option(d.cs, CS_OPT_DETAIL, CS_OPT_ON); /* operands and written registers */
	for (size_t r = 0; r < h->range_count && !err; r++)
		err = decode_range(&d, &h->ranges[r]);
	cs_close(&d.cs);
	/* twice: table index loads need `self` tracked, and table targets
	 * are edges the second pass follows */
	if (!err)
		err = track_registers(c);
	if (!err)
		err = resolve_tables(c, img, h);
	if (!err)
		err = track_registers(c);
	for (size_t t = 0; !err && t < c->table_count; t++)
		if (c->tables[t].state_found)
			c->tables[t].state = c->insns[c->tables[t].state_load].mem;
	if (err)
		code__free(c);
	return err;
}

void code__free(struct code *c)
{
	for (size_t t = 0; t < c->table_count; t++)
		free(c->tables[t].targets);
	free(c->tables);
	free(c->insns);
	free(c->joins);
	memset(c, 0, sizeof(*c));
}
