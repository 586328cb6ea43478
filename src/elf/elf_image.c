#include "elf/elf_image.h"
#include "util/array.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef NT_GNU_BUILD_ID
#define NT_GNU_BUILD_ID 3
#endif

static int read_loads(struct elf_image *img)
{
	size_t phnum;

	if (elf_getphdrnum(img->elf, &phnum) != 0)
		return 0; /* no program headers: ET_REL, debug-only files */
	img->loads = calloc(phnum ? phnum : 1, sizeof(*img->loads));
	if (!img->loads)
		return -ENOMEM;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(img->elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		img->loads[img->load_count++] = (struct elf_segment){
			.vaddr = ph.p_vaddr, .offset = ph.p_offset, .filesz = ph.p_filesz,
		};
	}
	return 0;
}

int elf_image__open(struct elf_image *img, const char *path)
{
	struct stat st;
	GElf_Ehdr eh;
	int err;

	memset(img, 0, sizeof(*img));
	img->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (img->fd < 0)
		return -errno;
	if (fstat(img->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		elf_image__close(img);
		return -EISDIR;
	}
	/* libelf keeps its version in a process-wide variable; setting the same
	 * value again is harmless. */
	elf_version(EV_CURRENT);
	img->elf = elf_begin(img->fd, ELF_C_READ_MMAP, NULL);
	if (!img->elf || elf_kind(img->elf) != ELF_K_ELF || !gelf_getehdr(img->elf, &eh)) {
		elf_image__close(img);
		return -ENOEXEC;
	}
	img->type = eh.e_type;
	img->machine = eh.e_machine;
	img->elf_class = eh.e_ident[EI_CLASS];
	err = read_loads(img);
	if (err < 0) {
		elf_image__close(img);
		return err;
	}
	return 0;
}

void elf_image__close(struct elf_image *img)
{
	if (img->elf)
		elf_end(img->elf);
	if (img->fd >= 0)
		close(img->fd);
	free(img->loads);
	memset(img, 0, sizeof(*img));
	img->fd = -1;
}

unsigned elf_image__addr_size(const struct elf_image *img)
{
	return img->elf_class == ELFCLASS32 ? 4 : 8;
}

static bool section_is_code(Elf *elf, uint32_t shndx)
{
	GElf_Shdr sh;
	Elf_Scn *scn = elf_getscn(elf, shndx);

	return scn && gelf_getshdr(scn, &sh) && (sh.sh_flags & SHF_EXECINSTR);
}

static bool keep_symbol(Elf *elf, const GElf_Sym *sym, uint32_t shndx)
{
	int type = GELF_ST_TYPE(sym->st_info);

	if (sym->st_size == 0 || shndx == SHN_UNDEF || shndx == SHN_ABS || shndx == SHN_COMMON)
		return false;
	if (type == STT_FUNC)
		return true;
	return type == STT_NOTYPE && section_is_code(elf, shndx);
}

/* Append the functions of one symbol table to the growing array. */
static int read_symtab(struct elf_image *img, Elf_Scn *scn, const GElf_Shdr *sh,
		       struct elf_sym **syms, size_t *count, size_t *cap)
{
	Elf_Data *data = elf_getdata(scn, NULL), *xdata = NULL;
	size_t n;

	if (!data || sh->sh_entsize == 0)
		return 0;
	n = sh->sh_size / sh->sh_entsize;
	for (Elf_Scn *x = NULL; (x = elf_nextscn(img->elf, x));) {
		GElf_Shdr xs;

		if (gelf_getshdr(x, &xs) && xs.sh_type == SHT_SYMTAB_SHNDX &&
		    xs.sh_link == elf_ndxscn(scn))
			xdata = elf_getdata(x, NULL);
	}
	for (size_t i = 1; i < n; i++) {
		GElf_Sym sym;
		Elf32_Word xndx = 0;
		uint32_t shndx;
		const char *name;

		if (!gelf_getsymshndx(data, xdata, (int)i, &sym, &xndx))
			continue;
		shndx = sym.st_shndx == SHN_XINDEX ? xndx : sym.st_shndx;
		if (!keep_symbol(img->elf, &sym, shndx))
			continue;
		name = elf_strptr(img->elf, sh->sh_link, sym.st_name);
		if (!name || !*name)
			continue;
		if (ARRAY_RESERVE(*syms, *cap, *count + 1))
			return -ENOMEM;
		(*syms)[(*count)++] = (struct elf_sym){
			.addr = sym.st_value, .size = sym.st_size, .name = name,
			.shndx = shndx, .dynamic = sh->sh_type == SHT_DYNSYM,
		};
	}
	return 0;
}

int elf_image__functions(struct elf_image *img, struct elf_sym **syms, size_t *count)
{
	static const uint32_t order[] = { SHT_SYMTAB, SHT_DYNSYM };
	size_t cap = 0;

	*syms = NULL;
	*count = 0;
	for (size_t k = 0; k < 2; k++) {
		for (Elf_Scn *scn = NULL; (scn = elf_nextscn(img->elf, scn));) {
			GElf_Shdr sh;
			int err;

			if (!gelf_getshdr(scn, &sh) || sh.sh_type != order[k])
				continue;
			err = read_symtab(img, scn, &sh, syms, count, &cap);
			if (err < 0) {
				free(*syms);
				*syms = NULL;
				*count = 0;
				return err;
			}
		}
	}
	return 0;
}

uint64_t elf_image__file_offset(const struct elf_image *img, uint64_t addr)
{
	if (img->type == ET_REL)
		return 0;
	for (size_t i = 0; i < img->load_count; i++) {
		const struct elf_segment *s = &img->loads[i];

		if (addr >= s->vaddr && addr - s->vaddr < s->filesz)
			return addr - s->vaddr + s->offset;
	}
	return 0;
}

static size_t build_id_in(Elf_Data *data, uint8_t *buf, size_t cap)
{
	GElf_Nhdr nh;
	size_t off = 0, name_off, desc_off, next;

	if (!data)
		return 0;
	while ((next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		const char *name = (const char *)data->d_buf + name_off;

		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    memcmp(name, "GNU", 4) == 0) {
			size_t len = nh.n_descsz < cap ? nh.n_descsz : cap;

			memcpy(buf, (const char *)data->d_buf + desc_off, len);
			return len;
		}
		off = next;
	}
	return 0;
}

size_t elf_image__build_id(struct elf_image *img, uint8_t *buf, size_t cap)
{
	size_t phnum = 0, len;

	/* Segments first: stripped files may have lost the section headers. */
	if (elf_getphdrnum(img->elf, &phnum) == 0) {
		for (size_t i = 0; i < phnum; i++) {
			GElf_Phdr ph;
			Elf_Data *d;

			if (!gelf_getphdr(img->elf, (int)i, &ph) || ph.p_type != PT_NOTE)
				continue;
			d = elf_getdata_rawchunk(img->elf, (int64_t)ph.p_offset, ph.p_filesz,
						 ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
			if ((len = build_id_in(d, buf, cap)) > 0)
				return len;
		}
	}
	for (Elf_Scn *scn = NULL; (scn = elf_nextscn(img->elf, scn));) {
		GElf_Shdr sh;

		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_NOTE &&
		    (len = build_id_in(elf_getdata(scn, NULL), buf, cap)) > 0)
			return len;
	}
	return 0;
}

const uint8_t *elf_image__code(struct elf_image *img, uint32_t shndx, uint64_t addr,
			       uint64_t size)
{
	Elf_Scn *scn = elf_getscn(img->elf, shndx);
	GElf_Shdr sh;
	Elf_Data *data;
	uint64_t off;

	if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS)
		return NULL;
	off = img->type == ET_REL ? addr : addr - sh.sh_addr;
	if (img->type != ET_REL && addr < sh.sh_addr)
		return NULL;
	data = elf_rawdata(scn, NULL);
	if (!data || off > data->d_size || size > data->d_size - off)
		return NULL;
	return (const uint8_t *)data->d_buf + off;
}
