#include "probe/addresses.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "elf/lines.h"
#include "elf/pollfn_cache.h"
#include "util/buf.h"
#include "util/array.h"

int address_book__note(struct address_book *book, uint64_t addr)
{
	int err;

	if (!addr || u64map_get(&book->seen, addr))
		return 0;
	if (ARRAY_RESERVE(book->addrs, book->capacity, book->count + 1))
		return -ENOMEM;
	err = u64map_put(&book->seen, addr, (void *)1);
	if (!err)
		book->addrs[book->count++] = addr;
	return err;
}

bool proc_mapping__parse(const char *line, struct proc_mapping *m)
{
	unsigned major, minor;
	unsigned long long ino;
	char perms[8];
	int path_at = 0;

	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %x:%x %llu %n", &m->start, &m->end, perms,
		   &m->offset, &major, &minor, &ino, &path_at) != 7)
		return false;
	m->dev = makedev(major, minor);
	m->inode = (ino_t)ino;
	m->executable = perms[2] == 'x';
	m->path = line + path_at;
	return true;
}

int address_book__find_bias(struct address_book *book, pid_t pid, const char *path,
			    uint64_t file_offset, uint64_t vaddr)
{
	char maps_path[64], line[4096];
	struct proc_mapping m;
	struct stat st;
	FILE *maps;
	int err = -ENOENT;

	if (stat(path, &st) != 0)
		return -errno;
	snprintf(maps_path, sizeof(maps_path), "/proc/%d/maps", (int)pid);
	maps = fopen(maps_path, "re");
	if (!maps)
		return -errno;
	/* Match the file by device and inode: the path may differ (links,
	 * /proc/PID/exe, another mount namespace). Only the code mapping:
	 * page rounding maps the bytes around a segment boundary twice, once
	 * with the read-only segment's addresses. */
	while (fgets(line, sizeof(line), maps)) {
		if (!proc_mapping__parse(line, &m) || !m.executable || m.inode != st.st_ino ||
		    major(m.dev) != major(st.st_dev) || minor(m.dev) != minor(st.st_dev))
			continue;
		if (file_offset < m.offset || file_offset - m.offset >= m.end - m.start)
			continue;
		book->load_bias = m.start + (file_offset - m.offset) - vaddr;
		book->have_bias = true;
		err = 0;
		break;
	}
	fclose(maps);
	return err;
}

static int resolve_one(struct addr_lines *lines, uint64_t bias, uint64_t addr, struct trace_site *site)
{
	unsigned line = 0;

	site->addr = addr;
	/* A return address follows its call: the call's line is one byte back. */
	if (addr_lines__lookup(lines, addr - bias - 1, &site->file, &line, &site->function) == -ENOMEM)
		return -ENOMEM;
	site->line = line;
	return 0;
}

#define SITES_MAGIC "ATSITES1"

/* Sites resolved before, by address in the file: a recording of the same
 * binary needs no DWARF when all its spawn sites are known. */
struct known_sites {
	struct u64map index;      /* file address + 1 -> entry + 1 */
	struct trace_site *entries; /* .addr holds the file address */
	size_t count, capacity;
};

static int known_sites__add(struct known_sites *k, uint64_t file_addr, const struct trace_site *site)
{
	struct trace_site *e;

	if (ARRAY_RESERVE(k->entries, k->capacity, k->count + 1))
		return -ENOMEM;
	e = &k->entries[k->count];
	*e = (struct trace_site){ .addr = file_addr, .line = site->line };
	e->file = site->file ? strdup(site->file) : NULL;
	e->function = site->function ? strdup(site->function) : NULL;
	if ((site->file && !e->file) || (site->function && !e->function) ||
	    u64map_put(&k->index, file_addr + 1, (void *)(uintptr_t)(k->count + 1))) {
		trace_site__free(e);
		return -ENOMEM;
	}
	k->count++;
	return 0;
}

static void known_sites__load(struct known_sites *k, const char *cache)
{
	struct cursor c;
	void *map;
	size_t len;
	char magic[8];
	uint32_t count;

	if (!cache || pollfn_cache__read(cache, &map, &len) < 0)
		return;
	c = (struct cursor){ .p = map, .left = len };
	cursor_bytes(&c, magic, sizeof(magic));
	count = cursor_u32(&c);
	for (uint32_t i = 0; !c.err && !memcmp(magic, SITES_MAGIC, 8) && i < count; i++) {
		struct trace_site site = { .addr = cursor_u64(&c) };

		site.line = cursor_u32(&c);
		site.file = cursor_str(&c, 1u << 20);
		site.function = cursor_str(&c, 1u << 20);
		if (!c.err && !u64map_get(&k->index, site.addr + 1))
			known_sites__add(k, site.addr, &site);
		trace_site__free(&site);
	}
	munmap(map, len);
}

static void known_sites__store(const struct known_sites *k, const char *cache)
{
	struct buf b = { 0 };

	buf_put_bytes(&b, SITES_MAGIC, 8);
	buf_put_u32(&b, (uint32_t)k->count);
	for (size_t i = 0; i < k->count; i++) {
		buf_put_u64(&b, k->entries[i].addr);
		buf_put_u32(&b, k->entries[i].line);
		buf_put_str(&b, k->entries[i].file);
		buf_put_str(&b, k->entries[i].function);
	}
	if (!b.err)
		pollfn_cache__write(cache, b.data, b.len);
	buf_free(&b);
}

static void known_sites__free(struct known_sites *k)
{
	for (size_t i = 0; i < k->count; i++)
		trace_site__free(&k->entries[i]);
	free(k->entries);
	u64map_free(&k->index);
}

static int copy_known(const struct known_sites *k, uint64_t addr, uint64_t bias, struct trace_site *site)
{
	uintptr_t i = (uintptr_t)u64map_get(&k->index, addr - bias + 1);
	const struct trace_site *e;

	if (!i)
		return 0;
	e = &k->entries[i - 1];
	*site = (struct trace_site){ .addr = addr, .line = e->line };
	site->file = e->file ? strdup(e->file) : NULL;
	site->function = e->function ? strdup(e->function) : NULL;
	return (e->file && !site->file) || (e->function && !site->function) ? -ENOMEM : 1;
}

int address_book__resolve(const struct address_book *book, const char *path, const char *cache,
			  struct trace_site **sites, size_t *count)
{
	struct known_sites known = { 0 };
	struct addr_lines *lines = NULL;
	size_t learned = 0;
	int err = 0;

	*count = 0;
	*sites = calloc(book->count ? book->count : 1, sizeof(**sites));
	if (!*sites)
		return -ENOMEM;
	if (!book->count || !book->have_bias)
		return 0;
	known_sites__load(&known, cache);
	for (size_t i = 0; i < book->count && !err; i++) {
		struct trace_site *site = &(*sites)[i];
		int rc = copy_known(&known, book->addrs[i], book->load_bias, site);

		if (rc < 0) {
			err = rc;
		} else if (rc == 0) {
			if (!lines && (err = addr_lines__open(&lines, path))) {
				err = err == -ENOMEM ? err : 0; /* no DWARF: the rest stays unresolved */
				break;
			}
			err = resolve_one(lines, book->load_bias, book->addrs[i], site);
			if (!err && (err = known_sites__add(&known, book->addrs[i] - book->load_bias, site)) == 0)
				learned++;
		}
		if (!err)
			(*count)++;
	}
	if (!err && learned && cache)
		known_sites__store(&known, cache);
	addr_lines__free(lines);
	known_sites__free(&known);
	return err;
}

void address_book__free(struct address_book *book)
{
	u64map_free(&book->seen);
	free(book->addrs);
	memset(book, 0, sizeof(*book));
}
