/* See fuzz_common.h. */
#include "fuzz_common.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "import/import.h"
#include "trace/reader.h"
#include "trace/summary.h"

static char tmpdir[4096];

const char *fuzz_memfd_path(const uint8_t *data, size_t size)
{
	static char path[64];
	static int fd = -1;
	size_t done = 0;

	if (fd < 0 && (fd = memfd_create("asynctrace-fuzz", MFD_CLOEXEC)) < 0)
		abort();
	/* truncated first: a shorter input must not keep the last one's tail */
	if (ftruncate(fd, 0) < 0)
		abort();
	while (done < size) {
		ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);

		if (n <= 0)
			abort();
		done += (size_t)n;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return path;
}

/* Only the files the harnesses put there: the directory is ours alone. */
static void remove_tmpdir(void)
{
	DIR *dir = opendir(tmpdir);
	struct dirent *e;
	char path[sizeof(tmpdir) + 256];

	if (!dir)
		return;
	while ((e = readdir(dir)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			fuzz_path(path, sizeof(path), tmpdir, e->d_name);
			unlink(path);
		}
	closedir(dir);
	rmdir(tmpdir);
}

const char *fuzz_tmpdir(void)
{
	const char *base = getenv("TMPDIR");

	if (tmpdir[0])
		return tmpdir;
	fuzz_path(tmpdir, sizeof(tmpdir), base && *base ? base : "/tmp", "asynctrace-fuzz.XXXXXX");
	if (!mkdtemp(tmpdir))
		abort();
	atexit(remove_tmpdir);
	return tmpdir;
}

void fuzz_path(char *buf, size_t len, const char *dir, const char *name)
{
	if ((size_t)snprintf(buf, len, "%s/%s", dir, name) >= len)
		abort();
}

void fuzz_write_file(const char *path, const void *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	const char *p = data;

	if (fd < 0)
		abort();
	while (size) {
		ssize_t n = write(fd, p, size);

		if (n <= 0)
			abort();
		p += n;
		size -= (size_t)n;
	}
	close(fd);
}

void fuzz_import_finish(struct import_builder *b)
{
	struct import_stats stats;
	struct trace_summary summary = { 0 };
	struct trace_file *trace;
	char path[sizeof(tmpdir) + 32], why[512];
	int err;

	fuzz_path(path, sizeof(path), fuzz_tmpdir(), "imported.trace");
	err = import_builder__write(b, path, &stats);
	if (err) {
		unlink(path);
		return;
	}
	if (trace_file__open(&trace, path, why, sizeof(why))) {
		fprintf(stderr, "fuzz: the reader refuses an imported trace: %s\n", why);
		abort();
	}
	if (!trace_summary__build(&summary, trace, 10, 0))
		trace_summary__free(&summary);
	trace_file__close(trace);
	unlink(path);
}
