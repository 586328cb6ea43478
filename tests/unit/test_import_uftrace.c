/* The uftrace.data reader on a directory made here byte by byte: records
 * resolved through the map and .sym file (mcount's addresses inside the
 * function), LOST and EVENT records, the clock, and bad input as one line
 * naming the file and record. */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "import/uftrace.h"
#include "trace/reader.h"
#include "unit.h"

#define BASE 0x555500000000ull
#define SID "0123456789abcdef"

struct fixture {
	char dir[64];
	char path[128];
};

static uint64_t word(unsigned type, unsigned more, unsigned magic, unsigned depth, uint64_t addr)
{
	return type | more << 2 | magic << 3 | (uint64_t)depth << 6 | addr << 16;
}

static void put_file(struct fixture *f, const char *name, const void *data, size_t len)
{
	FILE *out;

	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
	if ((out = fopen(f->path, "wb"))) {
		fwrite(data, 1, len, out);
		fclose(out);
	}
}

static void put_text(struct fixture *f, const char *name, const char *text)
{
	put_file(f, name, text, strlen(text));
}

static void put_info(struct fixture *f, const char *magic)
{
	unsigned char h[40] = { 0 };
	const char text[] = "exename:/bin/fake\ncmdline:uftrace record --clock boot /bin/fake --clock realtime\n"
			    "uftrace_version:v0.13 ( x86_64 dwarf perf )\n";
	unsigned char buf[sizeof(h) + sizeof(text)];
	uint32_t version = 4;
	uint16_t size = sizeof(h);

	memcpy(h, magic, 8);
	memcpy(h + 8, &version, 4);
	memcpy(h + 12, &size, 2);
	h[14] = ELFDATA2LSB;
	h[15] = ELFCLASS64;
	memcpy(buf, h, sizeof(h));
	memcpy(buf + sizeof(h), text, sizeof(text) - 1);
	put_file(f, "info", buf, sizeof(h) + sizeof(text) - 1);
}

static void make_dir(struct fixture *f)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/asynctrace-uftrace-XXXXXX");
	if (!mkdtemp(f->dir)) { /* a failure of the test's own, not a skip */
		unit_fail("mkdtemp %s: %s\n", f->dir, strerror(errno));
		return;
	}
	put_info(f, "Ftrace!");
	put_text(f, "task.txt", "SESS timestamp=1.000000000 pid=100 sid=" SID " exename=\"/bin/fake\"\n"
				"TASK timestamp=1.000000001 tid=100 pid=100\n"
				"TASK timestamp=1.000000002 tid=101 pid=100\n");
	put_text(f, "sid-" SID ".map", "555500000000-555500001000 r--p 00000000 00:00 0 /bin/fake build-id:ab12\n"
				       "555500001000-555500005000 r-xp 00000000 00:00 0 /bin/fake build-id:ab12\n"
				       "7ffd81e8d000-7ffd81eae000 rw-p 00000000 00:00 0 [stack]\n");
	put_text(f, "fake.sym", "# symbols: 3\n# path name: /bin/fake\n# build-id: ab12\n"
				"0000000000000400 d data_before\n"
				"0000000000001000 T _ZN4fake4main17h0123456789abcdefE\n"
				"0000000000001100 t poll_two\n"
				"0000000000001200 ? __func_end\n");
}

/* Thread 100: main { poll_two }, a LOST record, an EVENT with data;
 * thread 101: a call at an address no symbol covers. */
static void put_records(struct fixture *f)
{
	uint64_t t100[] = {
		1000, word(UFTRACE_ENTRY, 0, 5, 0, BASE + 0x1010),
		1100, word(UFTRACE_ENTRY, 0, 5, 1, BASE + 0x1105),
		1200, word(UFTRACE_EXIT, 0, 5, 1, BASE + 0x1105),
		0, word(UFTRACE_LOST, 0, 5, 0, 3),
		1300, word(UFTRACE_EVENT, 1, 5, 0, 7),
		/* 2 bytes of length (6), 6 of data: one padded 8 */
		0x0000000000000006ull, 2000, word(UFTRACE_EXIT, 0, 5, 0, BASE + 0x1010),
	};
	uint64_t t101[] = {
		1500, word(UFTRACE_ENTRY, 0, 5, 0, 0x9999),
		1600, word(UFTRACE_EXIT, 0, 5, 0, 0x9999),
	};

	put_file(f, "100.dat", t100, sizeof(t100));
	put_file(f, "101.dat", t101, sizeof(t101));
}

static void remove_dir(struct fixture *f)
{
	static const char *names[] = { "info", "task.txt", "sid-" SID ".map", "fake.sym", "100.dat", "101.dat" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, names[i]);
		unlink(f->path);
	}
	rmdir(f->dir);
}

UNIT_TEST(uftrace_bits_decode_like_the_bitfield)
{
	struct uftrace_bits b;

	uftrace_bits__decode(word(UFTRACE_EXIT, 1, 5, 1023, 0xffffffffffffull), &b);
	CHECK(b.type == UFTRACE_EXIT && b.more == 1 && b.magic == 5 && b.depth == 1023);
	CHECK(b.addr == 0xffffffffffffull);
	/* a real record: 2800 5010 6ec3 8855 (an entry at depth 0) */
	uftrace_bits__decode(0x5588c36e10500028ull, &b);
	CHECK(b.type == UFTRACE_ENTRY && !b.more && b.magic == 5 && b.depth == 0 && b.addr == 0x5588c36e1050ull);
}

static int import_fixture(struct fixture *f, const char *trace, struct uftrace_counts *c, char *why,
			  struct uftrace_data **d)
{
	struct import_options o = { .capture = "import-uftrace", .source = f->dir };
	struct import_builder *b;
	struct import_stats st;
	int err;

	if ((err = uftrace_data__open(d, f->dir, why, UFTRACE_WHY_LEN)))
		return err;
	o.clock = uftrace_data__clock(*d);
	if ((err = import_builder__new(&b, &o)))
		return err;
	err = uftrace_data__import(*d, b, c, why, UFTRACE_WHY_LEN);
	if (!err && trace)
		err = import_builder__write(b, trace, &st);
	import_builder__free(b);
	return err;
}

static void check_trace(const char *path, int *unit_failures_)
{
	struct trace_file *t;
	char err[128];
	int named = 0;

	CHECK(trace_file__open(&t, path, err, sizeof(err)) == 0);
	if (!t)
		return;
	CHECK(t->function_count == 3);
	CHECK(t->meta.clock == CLOCK_BOOTTIME);
	for (size_t i = 0; i < t->function_count; i++) {
		const struct trace_function *fn = &t->functions[i];

		named += !strcmp(fn->name, "fake::main") && fn->addr == BASE + 0x1000;
		named += !strcmp(fn->name, "poll_two") && fn->addr == BASE + 0x1100;
		named += !strcmp(fn->name, "0x9999");
	}
	CHECK(named == 3);
	for (size_t i = 0; i < t->thread_count; i++)
		if (t->threads[i].tid == 100)
			CHECK_STR(t->threads[i].name, "fake");
	trace_file__close(t);
}

UNIT_TEST(uftrace_import_resolves_and_counts)
{
	struct fixture f;
	struct uftrace_counts c;
	struct uftrace_data *d = NULL;
	char why[UFTRACE_WHY_LEN] = "", trace[] = "/tmp/asynctrace-uftrace-trace-XXXXXX";
	int fd = mkstemp(trace);

	make_dir(&f);
	put_records(&f);
	CHECK(fd >= 0);
	close(fd);
	CHECK(import_fixture(&f, trace, &c, why, &d) == 0);
	if (why[0])
		fprintf(stderr, "  why: %s\n", why);
	CHECK(d && uftrace_data__machine(d) == EM_X86_64);
	CHECK(c.records == 8 && c.entries == 3 && c.exits == 3 && c.threads == 2);
	CHECK(c.lost_records == 1 && c.lost_events == 3 && c.events == 1 && c.unresolved == 2);
	check_trace(trace, unit_failures_);
	uftrace_data__free(d);
	unlink(trace);
	remove_dir(&f);
}

UNIT_TEST(uftrace_import_bad_records)
{
	struct fixture f;
	struct uftrace_counts c;
	struct uftrace_data *d = NULL;
	char why[UFTRACE_WHY_LEN] = "";
	uint64_t bad[] = { 1000, word(UFTRACE_ENTRY, 0, 5, 0, BASE + 0x1010), 1100, word(UFTRACE_ENTRY, 0, 2, 0, 1) };

	make_dir(&f);
	put_file(&f, "100.dat", bad, sizeof(bad) - 3); /* 29 bytes: the second record cut */
	CHECK(import_fixture(&f, NULL, &c, why, &d) == -EINVAL);
	CHECK(strstr(why, "100.dat: truncated at record 1 (offset 16: 13 of 16 bytes)") != NULL);
	uftrace_data__free(d);
	put_file(&f, "100.dat", bad, sizeof(bad));
	CHECK(import_fixture(&f, NULL, &c, why, &d) == -EINVAL);
	CHECK(strstr(why, "100.dat: record 1 (offset 16): bad magic 2, want 5") != NULL);
	uftrace_data__free(d);
	bad[3] = word(UFTRACE_ENTRY, 1, 5, 0, 1);
	put_file(&f, "100.dat", bad, sizeof(bad));
	CHECK(import_fixture(&f, NULL, &c, why, &d) == -ENOTSUP);
	CHECK(strstr(why, "record 1 carries arguments") != NULL);
	uftrace_data__free(d);
	remove_dir(&f);
}

UNIT_TEST(uftrace_open_bad_dirs)
{
	struct fixture f;
	struct uftrace_data *d = NULL;
	char why[UFTRACE_WHY_LEN] = "";

	CHECK(uftrace_data__open(&d, "/nonexistent/uftrace.data", why, sizeof(why)) == -ENOENT && !d);
	CHECK(strstr(why, "/nonexistent/uftrace.data: No such file") != NULL);
	make_dir(&f);
	put_info(&f, "Ftrace?");
	CHECK(uftrace_data__open(&d, f.dir, why, sizeof(why)) == -EINVAL && !d);
	CHECK(strstr(why, "/info: not uftrace data") != NULL);
	put_file(&f, "info", "Ftrace!\0\4\0\0\0", 12);
	CHECK(uftrace_data__open(&d, f.dir, why, sizeof(why)) == -EINVAL);
	CHECK(strstr(why, "/info: truncated header (12 of 40 bytes)") != NULL);
	put_info(&f, "Ftrace!");
	put_text(&f, "task.txt", "TASK nonsense\n");
	CHECK(uftrace_data__open(&d, f.dir, why, sizeof(why)) == -EINVAL);
	CHECK(strstr(why, "task.txt: line 1 not understood") != NULL);
	put_text(&f, "task.txt", "SESS timestamp=1.0 pid=1 sid=fedcba9876543210 exename=\"/x\"\n");
	CHECK(uftrace_data__open(&d, f.dir, why, sizeof(why)) == -ENOENT);
	CHECK(strstr(why, "sid-fedcba9876543210.map: No such file") != NULL);
	snprintf(f.path, sizeof(f.path), "%s/info", f.dir);
	unlink(f.path);
	CHECK(uftrace_data__open(&d, f.dir, why, sizeof(why)) == -ENOENT);
	CHECK(strstr(why, "/info: No such file or directory") != NULL);
	remove_dir(&f);
}
