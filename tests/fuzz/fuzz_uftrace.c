/* A uftrace.data directory, read and imported as `import uftrace` does.
 * The reader takes a directory, so the input is an archive of its files
 * (pack_uftrace.py writes one from a real directory):
 *
 *   repeated: u8 name length (0: end), name, u16 LE size, size bytes
 *
 * A size past the input's end is cut to what is left, so every input is
 * an archive. Names are kept to one path segment: '/' and NUL become '_'. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "import/uftrace.h"

#define MAX_FILES 32

struct archive_file {
	char name[256];
	const uint8_t *data;
	size_t size;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One entry at data[*at]: 1 when read, 0 at the end of the archive. */
static int next_file(const uint8_t *data, size_t size, size_t *at, struct archive_file *f)
{
	size_t name_len;

	if (*at >= size || !(name_len = data[*at]) || size - *at - 1 < name_len + 2)
		return 0;
	memcpy(f->name, data + *at + 1, name_len);
	f->name[name_len] = '\0';
	for (size_t i = 0; i < name_len; i++)
		if (f->name[i] == '/' || f->name[i] == '\0')
			f->name[i] = '_';
	*at += 1 + name_len;
	f->size = (size_t)data[*at] | (size_t)data[*at + 1] << 8;
	*at += 2;
	if (f->size > size - *at)
		f->size = size - *at;
	f->data = data + *at;
	*at += f->size;
	return 1;
}

static size_t unpack(const uint8_t *data, size_t size, const char *dir, struct archive_file *files)
{
	char path[4096 + 256];
	size_t count = 0, at = 0;

	while (count < MAX_FILES && next_file(data, size, &at, &files[count])) {
		if (!strcmp(files[count].name, ".") || !strcmp(files[count].name, ".."))
			continue;
		fuzz_path(path, sizeof(path), dir, files[count].name);
		fuzz_write_file(path, files[count].data, files[count].size);
		count++;
	}
	return count;
}

static void import_dir(const char *dir)
{
	struct import_options io = { .capture = "import-uftrace", .source = dir };
	struct uftrace_data *d;
	struct import_builder *b;
	struct uftrace_counts counts;
	char why[UFTRACE_WHY_LEN];

	if (uftrace_data__open(&d, dir, why, sizeof(why)))
		return;
	io.machine = uftrace_data__machine(d);
	io.clock = uftrace_data__clock(d);
	if (!import_builder__new(&b, &io)) {
		if (!uftrace_data__import(d, b, &counts, why, sizeof(why)))
			fuzz_import_finish(b);
		import_builder__free(b);
	}
	uftrace_data__free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct archive_file files[MAX_FILES];
	char dir[4096], path[4096 + 256];
	size_t count;

	fuzz_path(dir, sizeof(dir), fuzz_tmpdir(), "uftrace.data");
	if (mkdir(dir, 0700) && errno != EEXIST)
		abort();
	count = unpack(data, size, dir, files);
	import_dir(dir);
	for (size_t i = 0; i < count; i++) {
		fuzz_path(path, sizeof(path), dir, files[i].name);
		unlink(path);
	}
	/* not empty would mean a file of this input outlives it */
	if (rmdir(dir))
		abort();
	return 0;
}
