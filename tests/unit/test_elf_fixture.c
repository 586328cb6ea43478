#include "test_elf_fixture.h"
#include "unit.h"

#include <dirent.h>
#include <errno.h>
#include <gelf.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int elf_fixture__run(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status = -1, err;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (err != 0)
		return -1;
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* The .ll next to this file: __FILE__ is relative to where the compiler
 * ran, the repository root for `make unit`. */
static int find_source(char *out, size_t len)
{
	const char *slash = strrchr(__FILE__, '/');
	int dirlen = slash ? (int)(slash - __FILE__) : 1;

	snprintf(out, len, "%.*s/fixtures/pollfns.ll", dirlen, slash ? __FILE__ : ".");
	return access(out, R_OK);
}

int elf_fixture__init(struct elf_fixture *fx)
{
	char *const probe[] = { "clang", "--version", NULL };
	const char *tmp = getenv("TMPDIR");

	memset(fx, 0, sizeof(*fx));
	if (find_source(fx->source, sizeof(fx->source)) != 0) {
		unit_skip("%s not found (run from the repository root): ELF fixture checks skipped\n",
		       fx->source);
		return -1;
	}
	if (elf_fixture__run(probe) != 0) {
		unit_skip("clang not found: ELF fixture checks skipped\n");
		return -1;
	}
	snprintf(fx->dir, sizeof(fx->dir), "%s/asynctrace-unit-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(fx->dir)) {
		unit_fail("mkdtemp %s: %s: ELF fixture checks cannot run\n", fx->dir, strerror(errno));
		fx->dir[0] = '\0';
		return -1;
	}
	return 0;
}

static const char *kind_suffix(enum elf_fixture_kind kind)
{
	switch (kind) {
	case FIXTURE_OBJECT: return "o";
	case FIXTURE_PIE: return "pie";
	case FIXTURE_PIE_NODEBUG: return "nodebug";
	case FIXTURE_KERNEL: return "kernel";
	}
	return "x";
}

static const char *kind_suffix(enum elf_fixture_kind kind);

/* clang -c, once per target and code model. */
static int compile(struct elf_fixture *fx, const char *target, bool medany, char *obj, size_t len)
{
	char tflag[128];
	char *cc[10];
	int n = 0;

	snprintf(obj, len, "%s/%s%s.o", fx->dir, target, medany ? ".medany" : "");
	if (access(obj, R_OK) == 0)
		return 0;
	snprintf(tflag, sizeof(tflag), "--target=%s", target);
	cc[n++] = "clang";
	cc[n++] = tflag;
	cc[n++] = "-Wno-override-module";
	cc[n++] = "-O0";
	if (medany) /* kernel addresses are beyond medlow's +-2 GiB around 0 */
		cc[n++] = "-mcmodel=medany";
	cc[n++] = "-c";
	cc[n++] = fx->source;
	cc[n++] = "-o";
	cc[n++] = obj;
	cc[n] = NULL;
	if (elf_fixture__run(cc) != 0) {
		unit_skip("clang cannot build for %s: check skipped\n", target);
		return -1;
	}
	return 0;
}

int elf_fixture__build(struct elf_fixture *fx, const char *target, enum elf_fixture_kind kind,
		       char *out, size_t len)
{
	char obj[PATH_MAX + 64];
	char *ld[12];
	int n = 0;

	if (compile(fx, target, kind == FIXTURE_KERNEL, obj, sizeof(obj)) < 0)
		return -1;
	if (kind == FIXTURE_OBJECT) {
		snprintf(out, len, "%s", obj);
		return 0;
	}
	snprintf(out, len, "%s/%s.%s", fx->dir, target, kind_suffix(kind));
	ld[n++] = "ld.lld";
	ld[n++] = "-e";
	ld[n++] = "helper";
	if (kind == FIXTURE_KERNEL) {
		ld[n++] = "-Ttext=0xffffffc080200000";
	} else {
		ld[n++] = "-pie";
		ld[n++] = "--build-id=sha1";
	}
	if (kind != FIXTURE_PIE)
		ld[n++] = "--strip-debug";
	ld[n++] = obj;
	ld[n++] = "-o";
	ld[n++] = out;
	ld[n] = NULL;
	if (elf_fixture__run(ld) != 0) {
		unit_skip("ld.lld cannot link for %s: check skipped\n", target);
		return -1;
	}
	return 0;
}

int elf_fixture__write(struct elf_fixture *fx, const char *name, const void *data, size_t len,
		       char *out, size_t outlen)
{
	FILE *f;

	snprintf(out, outlen, "%s/%s", fx->dir, name);
	f = fopen(out, "wb");
	if (!f)
		return -1;
	if (len && fwrite(data, 1, len, f) != len) {
		fclose(f);
		return -1;
	}
	return fclose(f) == 0 ? 0 : -1;
}

void elf_fixture__cleanup(struct elf_fixture *fx)
{
	DIR *d;
	struct dirent *e;

	if (!fx->dir[0] || !(d = opendir(fx->dir)))
		return;
	while ((e = readdir(d))) {
		char path[PATH_MAX + 256];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", fx->dir, e->d_name);
		if (unlink(path) != 0)
			rmdir(path);
	}
	closedir(d);
	rmdir(fx->dir);
	fx->dir[0] = '\0';
}

/* File offset of addr, computed independently from the program headers. */
uint64_t elf_fixture__file_offset(const char *path, uint64_t addr)
{
	int fd = open(path, O_RDONLY);
	Elf *elf;
	size_t n = 0;
	uint64_t off = 0;

	if (fd < 0)
		return 0;
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf && elf_getphdrnum(elf, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			GElf_Phdr ph;

			if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD &&
			    addr >= ph.p_vaddr && addr < ph.p_vaddr + ph.p_filesz)
				off = addr - ph.p_vaddr + ph.p_offset;
		}
	}
	elf_end(elf);
	close(fd);
	return off;
}
