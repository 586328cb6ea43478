/* Sampled addresses to source (frames.h). */
#include "probe/frames.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elf/elf_image.h"
#include "elf/lines.h"
#include "probe/addresses.h"
#include "util/array.h"
#include "util/u64map.h"

struct mapping {
	uint64_t start, end, offset;
	char *path;
};

/* A mapped file, opened once for all its addresses. */
struct mapped_file {
	const char *path;
	struct elf_image image;
	struct addr_lines *lines;
	int err;           /* it did not open: its addresses stay unnamed */
};

struct frame_book {
	struct u64map seen;
	uint64_t *addrs;
	size_t count, capacity;
	struct mapping *maps;
	size_t map_count, map_capacity;
};

int frame_book__new(struct frame_book **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

int frame_book__note(struct frame_book *book, uint64_t addr)
{
	int err;

	if (u64map_get(&book->seen, addr + 1))
		return 0;
	if (ARRAY_RESERVE(book->addrs, book->capacity, book->count + 1))
		return -ENOMEM;
	err = u64map_put(&book->seen, addr + 1, (void *)1);
	if (err)
		return err;
	book->addrs[book->count++] = addr;
	return 1;
}

/* The newest mapping holding addr: a later exec or dlopen wins. */
static const struct mapping *mapping_of(const struct frame_book *book, uint64_t addr)
{
	for (size_t i = book->map_count; i-- > 0;)
		if (addr >= book->maps[i].start && addr < book->maps[i].end)
			return &book->maps[i];
	return NULL;
}

bool frame_book__covers(const struct frame_book *book, uint64_t addr)
{
	return mapping_of(book, addr) != NULL;
}

static bool known_mapping(const struct frame_book *book, const struct proc_mapping *m, const char *path)
{
	for (size_t i = 0; i < book->map_count; i++)
		if (book->maps[i].start == m->start && book->maps[i].end == m->end &&
		    book->maps[i].offset == m->offset && !strcmp(book->maps[i].path, path))
			return true;
	return false;
}

static int add_mapping(struct frame_book *book, const struct proc_mapping *m)
{
	size_t len = strcspn(m->path, "\n");
	char *path = strndup(m->path, len);

	if (!path)
		return -ENOMEM;
	if (known_mapping(book, m, path)) {
		free(path);
		return 0;
	}
	if (ARRAY_RESERVE(book->maps, book->map_capacity, book->map_count + 1)) {
		free(path);
		return -ENOMEM;
	}
	book->maps[book->map_count++] = (struct mapping){ m->start, m->end, m->offset, path };
	return 0;
}

int frame_book__read_maps(struct frame_book *book, pid_t pid)
{
	char maps_path[64], line[4096];
	struct proc_mapping m;
	FILE *maps;
	int err = 0;

	snprintf(maps_path, sizeof(maps_path), "/proc/%d/maps", (int)pid);
	maps = fopen(maps_path, "re");
	if (!maps)
		return -errno;
	while (!err && fgets(line, sizeof(line), maps))
		if (proc_mapping__parse(line, &m) && m.executable)
			err = add_mapping(book, &m);
	fclose(maps);
	return err;
}

static struct mapped_file *open_file(struct mapped_file **files, size_t *count, size_t *capacity,
				     const char *path)
{
	struct mapped_file *f;

	for (size_t i = 0; i < *count; i++)
		if (!strcmp((*files)[i].path, path))
			return &(*files)[i];
	if (ARRAY_RESERVE(*files, *capacity, *count + 1))
		return NULL;
	f = &(*files)[(*count)++];
	*f = (struct mapped_file){ .path = path };
	f->err = elf_image__open(&f->image, path);
	if (!f->err && (f->err = addr_lines__open(&f->lines, path)))
		elf_image__close(&f->image);
	return f;
}

/* Where a file offset is in the file's address space (its PT_LOADs). */
static bool offset_to_vaddr(const struct elf_image *img, uint64_t offset, uint64_t *vaddr)
{
	for (size_t i = 0; i < img->load_count; i++) {
		const struct elf_segment *s = &img->loads[i];

		if (offset >= s->offset && offset < s->offset + s->filesz) {
			*vaddr = offset - s->offset + s->vaddr;
			return true;
		}
	}
	return false;
}

/* "[libc.so.6]", "[vdso]": what is said of an address no symbol names. */
static char *place_name(const char *path)
{
	const char *base = strrchr(path, '/');
	char *name;

	if (path[0] == '[')
		return strdup(path);
	return asprintf(&name, "[%s]", base ? base + 1 : path[0] ? path : "unknown") < 0 ? NULL : name;
}

static int resolve_one(const struct mapping *m, struct mapped_file *f, uint64_t addr, struct trace_site *site)
{
	uint64_t vaddr;
	unsigned line = 0;

	site->addr = addr;
	if (f && !f->err && offset_to_vaddr(&f->image, addr - m->start + m->offset, &vaddr) &&
	    addr_lines__lookup(f->lines, vaddr, &site->file, &line, &site->function) == -ENOMEM)
		return -ENOMEM;
	site->line = line;
	if (!site->function && !(site->function = place_name(m ? m->path : "unknown")))
		return -ENOMEM;
	return 0;
}

static void close_files(struct mapped_file *files, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (files[i].err)
			continue;
		addr_lines__free(files[i].lines);
		elf_image__close(&files[i].image);
	}
	free(files);
}

int frame_book__resolve(struct frame_book *book, struct trace_site **frames, size_t *count)
{
	struct mapped_file *files = NULL;
	size_t file_count = 0, file_capacity = 0;
	int err = 0;

	*count = 0;
	*frames = calloc(book->count + 1, sizeof(**frames));
	if (!*frames)
		return -ENOMEM;
	for (size_t i = 0; i < book->count && !err; i++) {
		const struct mapping *m = mapping_of(book, book->addrs[i]);
		struct mapped_file *f = NULL;

		if (m && m->path[0] && m->path[0] != '[' &&
		    !(f = open_file(&files, &file_count, &file_capacity, m->path)))
			err = -ENOMEM;
		if (!err)
			err = resolve_one(m, f, book->addrs[i], &(*frames)[i]);
		if (!err)
			(*count)++;
	}
	close_files(files, file_count);
	return err;
}

void frame_book__free(struct frame_book *book)
{
	if (!book)
		return;
	for (size_t i = 0; i < book->map_count; i++)
		free(book->maps[i].path);
	free(book->maps);
	free(book->addrs);
	u64map_free(&book->seen);
	free(book);
}
