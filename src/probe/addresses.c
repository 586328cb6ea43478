#include "probe/addresses.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "elf/lines.h"
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

/* A line of /proc/PID/maps: "start-end perms offset major:minor inode path". */
static bool parse_mapping(const char *line, uint64_t *start, uint64_t *end, uint64_t *offset,
			  dev_t *dev, ino_t *inode, bool *executable)
{
	unsigned major, minor;
	unsigned long long ino;
	char perms[8];

	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %x:%x %llu", start, end, perms,
		   offset, &major, &minor, &ino) != 7)
		return false;
	*dev = makedev(major, minor);
	*inode = (ino_t)ino;
	*executable = perms[2] == 'x';
	return true;
}

int address_book__find_bias(struct address_book *book, pid_t pid, const char *path,
			    uint64_t file_offset, uint64_t vaddr)
{
	char maps_path[64], line[4096];
	uint64_t start, end, offset;
	struct stat st;
	dev_t dev;
	ino_t inode;
	bool executable;
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
		if (!parse_mapping(line, &start, &end, &offset, &dev, &inode, &executable) || !executable ||
		    inode != st.st_ino || major(dev) != major(st.st_dev) || minor(dev) != minor(st.st_dev))
			continue;
		if (file_offset < offset || file_offset - offset >= end - start)
			continue;
		book->load_bias = start + (file_offset - offset) - vaddr;
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

int address_book__resolve(const struct address_book *book, const char *path,
			  struct trace_site **sites, size_t *count)
{
	struct addr_lines *lines = NULL;
	int err = 0;

	*count = 0;
	*sites = calloc(book->count ? book->count : 1, sizeof(**sites));
	if (!*sites)
		return -ENOMEM;
	if (!book->count || !book->have_bias)
		return 0;
	err = addr_lines__open(&lines, path);
	if (err)
		return err == -ENOMEM ? err : 0; /* no DWARF: sites stay unresolved */
	for (size_t i = 0; i < book->count && !err; i++) {
		err = resolve_one(lines, book->load_bias, book->addrs[i], &(*sites)[i]);
		if (!err)
			(*count)++;
	}
	addr_lines__free(lines);
	return err;
}

void address_book__free(struct address_book *book)
{
	u64map_free(&book->seen);
	free(book->addrs);
	memset(book, 0, sizeof(*book));
}
