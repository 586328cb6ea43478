/* One ELF file opened with libelf: header facts, PT_LOAD segments, function
 * symbols, the GNU build-id and code bytes. Works for either class and
 * byte order and any e_machine (riscv64 kernels as well as x86_64 PIEs). */
#ifndef ASYNCTRACE_ELF_ELF_IMAGE_H
#define ASYNCTRACE_ELF_ELF_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gelf.h>

struct elf_segment {
	uint64_t vaddr, offset, filesz;
};

struct elf_image {
	int fd;
	Elf *elf;
	uint16_t type;      /* ET_EXEC, ET_DYN, ET_REL, ... */
	uint16_t machine;   /* EM_X86_64, EM_RISCV, ... */
	uint8_t elf_class;  /* ELFCLASS32 / ELFCLASS64 */
	struct elf_segment *loads; /* PT_LOAD segments */
	size_t load_count;
};

/* A function symbol. `name` points into the file's string table: valid
 * until elf_image__close. In ET_REL files `addr` is an offset in section
 * `shndx`; elsewhere it is a virtual address. */
struct elf_sym {
	uint64_t addr, size;
	const char *name;
	uint32_t shndx;
	bool dynamic;       /* from .dynsym, not .symtab */
};

/* 0, or -errno from open(2), -EISDIR, -ENOEXEC (not an ELF file), -ENOMEM. */
int elf_image__open(struct elf_image *img, const char *path);
void elf_image__close(struct elf_image *img);

/* Function symbols of .symtab followed by those of .dynsym: STT_FUNC, or
 * STT_NOTYPE in an executable section (hand-written assembly, some kernel
 * link scripts), defined, of nonzero size. The array is malloc'd. */
int elf_image__functions(struct elf_image *img, struct elf_sym **syms, size_t *count);

/* Where `addr` lies in the file (what uprobes want): addr - p_vaddr +
 * p_offset of the PT_LOAD containing it; 0 for ET_REL or when no segment
 * contains it. */
uint64_t elf_image__file_offset(const struct elf_image *img, uint64_t addr);

/* The GNU build-id (NT_GNU_BUILD_ID note) copied to buf; returns its length
 * (0 when absent; truncated to cap). */
size_t elf_image__build_id(struct elf_image *img, uint8_t *buf, size_t cap);

/* The bytes of [addr, addr + size) of the section `shndx`, or NULL when
 * they are not all in the file. */
const uint8_t *elf_image__code(struct elf_image *img, uint32_t shndx, uint64_t addr,
			       uint64_t size);

/* Address size in bytes (4 or 8). */
unsigned elf_image__addr_size(const struct elf_image *img);

#endif
