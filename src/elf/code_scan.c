#include "elf/code_scan.h"
#include "util/array.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <capstone/capstone.h>

/* A relocation of a relocatable file that refers to a panic function. */
struct rel_site {
	uint32_t shndx;
	uint64_t offset;
};

struct code_scan {
	struct elf_image *img;
	uint64_t *panics;        /* addresses of the panic functions */
	size_t panic_count;
	uint64_t *slots;         /* GOT slots whose relocation targets one */
	size_t slot_count, slot_cap;
	struct rel_site *sites;  /* ET_REL: relocations naming one */
	size_t site_count, site_cap;
	csh cs;
	bool cs_open;
};

static bool is_x86(const struct elf_image *img)
{
	return img->machine == EM_X86_64 || img->machine == EM_386;
}

bool code_scan__supported(const struct elf_image *img)
{
	return img->type == ET_REL || is_x86(img) || img->machine == EM_RISCV;
}

static bool in_list(const uint64_t *v, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static int push_u64(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
	if (ARRAY_RESERVE(*v, *cap, *n + 1))
		return -ENOMEM;
	(*v)[(*n)++] = x;
	return 0;
}

static int push_site(struct code_scan *cs, uint32_t shndx, uint64_t offset)
{
	if (ARRAY_RESERVE(cs->sites, cs->site_cap, cs->site_count + 1))
		return -ENOMEM;
	cs->sites[cs->site_count++] = (struct rel_site){ shndx, offset };
	return 0;
}

static int find_panics(struct code_scan *cs, const struct elf_sym *syms, size_t count)
{
	size_t cap = 0;

	for (size_t i = 0; i < count; i++)
		if (strstr(syms[i].name, ASYNC_RESUMED_PANIC_MARK) &&
		    !in_list(cs->panics, cs->panic_count, syms[i].addr) &&
		    push_u64(&cs->panics, &cs->panic_count, &cap, syms[i].addr) < 0)
			return -ENOMEM;
	return 0;
}

static bool reloc_at(Elf_Data *data, bool rela, size_t i, GElf_Rela *r)
{
	GElf_Rel rel;

	if (rela)
		return gelf_getrela(data, (int)i, r) != NULL;
	if (!gelf_getrel(data, (int)i, &rel))
		return false;
	*r = (GElf_Rela){ .r_offset = rel.r_offset, .r_info = rel.r_info, .r_addend = 0 };
	return true;
}

static bool sym_is_panic(Elf *elf, Elf_Data *symdata, size_t strndx, size_t symi)
{
	GElf_Sym sym;
	const char *name;

	if (!symdata || !gelf_getsym(symdata, (int)symi, &sym))
		return false;
	name = elf_strptr(elf, strndx, sym.st_name);
	return name && strstr(name, ASYNC_RESUMED_PANIC_MARK);
}

/* One SHT_REL/SHT_RELA section: in a linked file its entries that fill a
 * GOT slot with a panic function's address; in a relocatable file those
 * that make code refer to a panic function. */
static int scan_relocs(struct code_scan *cs, Elf_Scn *scn, const GElf_Shdr *sh)
{
	Elf *elf = cs->img->elf;
	Elf_Data *data = elf_getdata(scn, NULL), *symdata = NULL;
	Elf_Scn *symscn = elf_getscn(elf, sh->sh_link);
	GElf_Shdr symsh;
	size_t n;

	if (!data || sh->sh_entsize == 0)
		return 0;
	if (symscn && gelf_getshdr(symscn, &symsh) && symsh.sh_entsize)
		symdata = elf_getdata(symscn, NULL);
	n = sh->sh_size / sh->sh_entsize;
	for (size_t i = 0; i < n; i++) {
		GElf_Rela r;
		size_t symi;
		bool hit;

		if (!reloc_at(data, sh->sh_type == SHT_RELA, i, &r))
			continue;
		symi = GELF_R_SYM(r.r_info);
		if (symi)
			hit = sym_is_panic(elf, symdata, symdata ? symsh.sh_link : 0, symi);
		else /* R_*_RELATIVE: the addend is the target */
			hit = in_list(cs->panics, cs->panic_count, (uint64_t)r.r_addend);
		if (!hit)
			continue;
		if ((cs->img->type == ET_REL ? push_site(cs, sh->sh_info, r.r_offset)
					     : push_u64(&cs->slots, &cs->slot_count, &cs->slot_cap,
							r.r_offset)) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int scan_all_relocs(struct code_scan *cs)
{
	for (Elf_Scn *scn = NULL; (scn = elf_nextscn(cs->img->elf, scn));) {
		GElf_Shdr sh;
		int err;

		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_RELA && sh.sh_type != SHT_REL))
			continue;
		if ((err = scan_relocs(cs, scn, &sh)) < 0)
			return err;
	}
	return 0;
}

static int open_capstone(struct code_scan *cs)
{
	cs_mode mode = cs->img->machine == EM_X86_64 ? CS_MODE_64 : CS_MODE_32;

	if (cs_open(CS_ARCH_X86, mode, &cs->cs) != CS_ERR_OK)
		return -ENOMEM;
	cs->cs_open = true;
	/* operands are needed to compute call targets */
	cs_option(cs->cs, CS_OPT_DETAIL, CS_OPT_ON);
	return 0;
}

int code_scan__new(struct code_scan **out, struct elf_image *img, const struct elf_sym *syms,
		   size_t count)
{
	struct code_scan *cs;
	int err;

	*out = NULL;
	if (!code_scan__supported(img))
		return 0;
	cs = calloc(1, sizeof(*cs));
	if (!cs)
		return -ENOMEM;
	cs->img = img;
	err = find_panics(cs, syms, count);
	if (!err)
		err = scan_all_relocs(cs);
	if (!err && img->type != ET_REL && is_x86(img))
		err = open_capstone(cs);
	if (err) {
		code_scan__free(cs);
		return err;
	}
	*out = cs;
	return 0;
}

bool code_scan__can_tell(const struct code_scan *cs)
{
	return cs->img->type == ET_REL || cs->panic_count > 0;
}

void code_scan__free(struct code_scan *cs)
{
	if (!cs)
		return;
	if (cs->cs_open)
		cs_close(&cs->cs);
	free(cs->panics);
	free(cs->slots);
	free(cs->sites);
	free(cs);
}

/* A non-PIE executable's GOT holds link-time addresses: read the slot. */
static bool slot_content(struct code_scan *cs, uint64_t slot, unsigned size, uint64_t *value)
{
	Elf *elf = cs->img->elf;

	for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn));) {
		GElf_Shdr sh;
		Elf_Data *d;
		const uint8_t *p;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    slot < sh.sh_addr || slot - sh.sh_addr + size > sh.sh_size)
			continue;
		d = elf_rawdata(scn, NULL);
		if (!d || slot - sh.sh_addr + size > d->d_size)
			return false;
		p = (const uint8_t *)d->d_buf + (slot - sh.sh_addr);
		*value = 0;
		for (unsigned i = 0; i < size; i++) /* x86 and RISC-V are little-endian */
			*value |= (uint64_t)p[i] << (8 * i);
		return true;
	}
	return false;
}

static bool is_panic_target(struct code_scan *cs, uint64_t target)
{
	return in_list(cs->panics, cs->panic_count, target);
}

static bool is_panic_slot(struct code_scan *cs, uint64_t slot, unsigned size)
{
	uint64_t value;

	if (in_list(cs->slots, cs->slot_count, slot))
		return true;
	return cs->img->type == ET_EXEC && slot_content(cs, slot, size, &value) &&
	       is_panic_target(cs, value);
}

static int32_t le32s(const uint8_t *p)
{
	return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			 (uint32_t)p[3] << 24);
}

/* Whether the bytes hold, at any offset, a call/jmp rel32 (E8/E9) to a
 * panic function or a call/jmp through a RIP-relative slot (FF 15/FF 25)
 * that holds one. Cheap, and never misses a real call; capstone then
 * rules out byte patterns that straddle instructions. Without it,
 * disassembling every closure of a large binary dominates the load time. */
static bool x86_may_call_panic(struct code_scan *cs, const uint8_t *code, size_t size,
			       uint64_t addr)
{
	bool rip = cs->img->machine == EM_X86_64;

	for (size_t i = 0; i + 5 <= size; i++) {
		if ((code[i] == 0xe8 || code[i] == 0xe9) &&
		    is_panic_target(cs, addr + i + 5 + (uint64_t)(int64_t)le32s(code + i + 1)))
			return true;
		if (code[i] == 0xff && i + 6 <= size && (code[i + 1] == 0x15 || code[i + 1] == 0x25)) {
			uint64_t disp = (uint64_t)(int64_t)le32s(code + i + 2);

			if (is_panic_slot(cs, rip ? addr + i + 6 + disp : (uint32_t)disp, rip ? 8 : 4))
				return true;
		}
	}
	return false;
}

static int scan_x86(struct code_scan *cs, const uint8_t *code, size_t size, uint64_t addr)
{
	cs_insn *insn = cs_malloc(cs->cs);
	unsigned slot_size = cs->img->machine == EM_X86_64 ? 8 : 4;
	int found = 0;

	if (!insn)
		return -ENOMEM;
	while (size > 0 && !found) {
		const cs_x86_op *op;

		if (!cs_disasm_iter(cs->cs, &code, &size, &addr, insn)) {
			code++; /* data or an unknown opcode: resynchronise */
			size--;
			addr++;
			continue;
		}
		if ((insn->id != X86_INS_CALL && insn->id != X86_INS_JMP) ||
		    insn->detail->x86.op_count != 1)
			continue;
		op = &insn->detail->x86.operands[0];
		if (op->type == X86_OP_IMM)
			found = is_panic_target(cs, (uint64_t)op->imm);
		else if (op->type == X86_OP_MEM && op->mem.base == X86_REG_RIP &&
			 op->mem.index == X86_REG_INVALID)
			found = is_panic_slot(cs, addr + (uint64_t)op->mem.disp, slot_size);
		else if (op->type == X86_OP_MEM && op->mem.base == X86_REG_INVALID &&
			 op->mem.index == X86_REG_INVALID)
			found = is_panic_slot(cs, (uint64_t)op->mem.disp, slot_size);
	}
	cs_free(insn, 1);
	return found;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int64_t jal_offset(uint32_t insn)
{
	uint32_t imm = ((insn >> 31) & 1) << 20 | ((insn >> 21) & 0x3ff) << 1 |
		       ((insn >> 20) & 1) << 11 | ((insn >> 12) & 0xff) << 12;

	return (int64_t)((int32_t)(imm << 11) >> 11); /* sign-extend bit 20 */
}

/* RISC-V calls are `jal ra, f` or `auipc rX, hi; jalr ra, lo(rX)`, and
 * through the GOT `auipc rX, hi; ld rX, lo(rX); jalr rX`. Compressed
 * (16-bit) instructions are skipped. */
static int scan_riscv(struct code_scan *cs, const uint8_t *code, size_t size, uint64_t addr)
{
	unsigned slot_size = elf_image__addr_size(cs->img);
	uint64_t hi_value = 0, slot = 0;
	int hi_reg = -1, slot_reg = -1;

	for (size_t i = 0; i + 2 <= size;) {
		uint32_t insn, op, rd, rs1;
		int32_t imm12;

		if ((code[i] & 3) != 3) {
			i += 2;
			hi_reg = slot_reg = -1;
			continue;
		}
		if (i + 4 > size)
			break;
		insn = le32(code + i);
		op = insn & 0x7f;
		rd = (insn >> 7) & 31;
		rs1 = (insn >> 15) & 31;
		imm12 = (int32_t)insn >> 20;
		if (op == 0x6f && is_panic_target(cs, addr + i + (uint64_t)jal_offset(insn)))
			return 1;
		if (op == 0x67 && (int)rs1 == hi_reg &&
		    is_panic_target(cs, hi_value + (uint64_t)(int64_t)imm12))
			return 1;
		if (op == 0x67 && (int)rs1 == slot_reg && is_panic_slot(cs, slot, slot_size))
			return 1;
		slot_reg = -1;
		if (op == 0x03 && (int)rs1 == hi_reg && rd == rs1) {
			slot = hi_value + (uint64_t)(int64_t)imm12;
			slot_reg = (int)rd;
		}
		hi_reg = -1;
		if (op == 0x17) {
			hi_value = addr + i + (uint64_t)(int64_t)(int32_t)(insn & 0xfffff000u);
			hi_reg = (int)rd;
		}
		i += 4;
	}
	return 0;
}

static int scan_relocatable(struct code_scan *cs, const struct elf_sym *fn)
{
	for (size_t i = 0; i < cs->site_count; i++)
		if (cs->sites[i].shndx == fn->shndx && cs->sites[i].offset >= fn->addr &&
		    cs->sites[i].offset - fn->addr < fn->size)
			return 1;
	return 0;
}

int code_scan__calls_async_panic(struct code_scan *cs, const struct elf_sym *fn)
{
	const uint8_t *code;

	if (cs->img->type == ET_REL)
		return scan_relocatable(cs, fn);
	if (cs->panic_count == 0)
		return 0;
	code = elf_image__code(cs->img, fn->shndx, fn->addr, fn->size);
	if (!code)
		return -ENOEXEC;
	if (is_x86(cs->img))
		return x86_may_call_panic(cs, code, fn->size, fn->addr) ?
			       scan_x86(cs, code, fn->size, fn->addr) : 0;
	return scan_riscv(cs, code, fn->size, fn->addr);
}
