/* `asynctrace symbols`: output formats, errors and exit statuses. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "elf/pollfn.h"
#include "test_elf_fixture.h"
#include "unit.h"

struct run {
	int status;
	char *out, *err; /* malloc'd */
};

static char *slurp(int fd)
{
	off_t len = lseek(fd, 0, SEEK_END);
	char *buf = malloc(len > 0 ? (size_t)len + 1 : 1);

	if (!buf)
		return NULL;
	if (len > 0 && pread(fd, buf, (size_t)len, 0) != len)
		len = 0;
	buf[len > 0 ? len : 0] = '\0';
	return buf;
}

/* Run cmd_symbols with stdout and stderr captured in files of fx->dir. */
static struct run run_symbols(struct elf_fixture *fx, char **argv)
{
	char out_path[PATH_MAX + 16], err_path[PATH_MAX + 16];
	struct run r = { .status = -1 };
	int argc = 0, out, err, saved_out, saved_err;

	while (argv[argc])
		argc++;
	snprintf(out_path, sizeof(out_path), "%s/stdout", fx->dir);
	snprintf(err_path, sizeof(err_path), "%s/stderr", fx->dir);
	out = open(out_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	err = open(err_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	fflush(stdout);
	fflush(stderr);
	saved_out = dup(1);
	saved_err = dup(2);
	dup2(out, 1);
	dup2(err, 2);
	r.status = cmd_symbols(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	close(saved_out);
	close(saved_err);
	r.out = slurp(out);
	r.err = slurp(err);
	close(out);
	close(err);
	return r;
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* The exact `--format sym` text the kernel tracer reads. */
static char *expected_sym(const char *path)
{
	struct poll_fn_list l;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (poll_fn_list__load(&l, path, NULL) < 0 || !(f = open_memstream(&buf, &len)))
		return NULL;
	for (size_t i = 0; i < l.count; i++)
		fprintf(f, "0x%" PRIx64 " %s\n", l.fns[i].addr, l.fns[i].demangled);
	fclose(f);
	poll_fn_list__free(&l);
	return buf;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

UNIT_TEST(symbols_formats)
{
	struct elf_fixture fx;
	char path[PATH_MAX];
	struct run r;

	if (elf_fixture__init(&fx) < 0)
		return;
	if (elf_fixture__build(&fx, "riscv64-linux-gnu", FIXTURE_PIE, path, sizeof(path)) == 0) {
		char *want = expected_sym(path);

		r = run_symbols(&fx, (char *[]){ "symbols", path, "--format", "sym", NULL });
		CHECK(r.status == 0);
		CHECK(count_lines(want) == 7);
		CHECK_STR(r.out, want ? want : "");
		CHECK_STR(r.err, "");
		free(want);
		run_free(&r);

		r = run_symbols(&fx, (char *[]){ "symbols", "--format=json", path, NULL });
		CHECK(r.status == 0 && r.out[0] == '{');
		CHECK(strstr(r.out, "\"machine\": \"riscv64\"") && strstr(r.out, "\"dwarf\": true"));
		CHECK(strstr(r.out, "\"name\": \"demo::main::{{closure}}\""));
		CHECK(strstr(r.out, "\"context\": \"anonymous\"") && strstr(r.out, "\"body\": \"async-block\""));
		CHECK(strstr(r.out, "\"mode\": \"memory\""));
		/* riscv64: no rules for its calling convention */
		CHECK(strstr(r.out, "\"stack_args\": \"unknown\"") && !strstr(r.out, "\"stack_args\": \"none\""));
		CHECK(strstr(r.out, "\"file\": \"/fixture/demo/src/main.rs\""));
		CHECK(strstr(r.out, "\"line\": null"));
		run_free(&r);

		r = run_symbols(&fx, (char *[]){ "symbols", path, NULL });
		CHECK(r.status == 0 && strncmp(r.out, "ADDRESS", 7) == 0 && count_lines(r.out) == 8);
		CHECK(strstr(r.out, "compiler-generated") && strstr(r.out, "/fixture/demo/src/main.rs:10"));
		run_free(&r);

		r = run_symbols(&fx, (char *[]){ "symbols", "--match", "^demo::leaf", "--match", "raw::poll$",
						 "--format", "sym", path, NULL });
		CHECK(r.status == 0 && count_lines(r.out) == 2);
		CHECK(strstr(r.out, " demo::leaf::{{closure}}\n") &&
		      strstr(r.out, " tokio::runtime::task::raw::poll\n"));
		run_free(&r);

		r = run_symbols(&fx, (char *[]){ "symbols", "--match", "^nothing", path, NULL });
		CHECK(r.status == 1 && r.out[0] == '\0' && strstr(r.err, "no poll function matches"));
		run_free(&r);
	}
	elf_fixture__cleanup(&fx);
}

UNIT_TEST(symbols_warning_without_dwarf)
{
	struct elf_fixture fx;
	char path[PATH_MAX], want[PATH_MAX + 128];
	struct run r;

	if (elf_fixture__init(&fx) < 0)
		return;
	if (elf_fixture__build(&fx, "x86_64-linux-gnu", FIXTURE_PIE_NODEBUG, path, sizeof(path)) == 0) {
		r = run_symbols(&fx, (char *[]){ "symbols", "--format", "sym", path, NULL });
		snprintf(want, sizeof(want),
			 "asynctrace: warning: %s has no DWARF: classification uses symbol heuristics\n", path);
		CHECK(r.status == 0 && count_lines(r.out) == 7);
		CHECK_STR(r.err, want);
		run_free(&r);
	}
	elf_fixture__cleanup(&fx);
}

/* The value of the first "stack_args" key after the function named `name`. */
static bool json_stack_args_is(const char *out, const char *name, const char *want)
{
	char key[256], value[64];
	const char *at;

	snprintf(key, sizeof(key), "\"name\": \"%s\"", name);
	snprintf(value, sizeof(value), "\"stack_args\": \"%s\"", want);
	at = out ? strstr(out, key) : NULL;
	at = at ? strstr(at, "\"stack_args\": ") : NULL;
	return at && strncmp(at, value, strlen(value)) == 0;
}

UNIT_TEST(symbols_json_stack_args)
{
	const char *tokio_mt = unit_build_path("targets/rust/debug/tokio_mt");
	struct elf_fixture fx;
	struct run r;

	if (access(tokio_mt, R_OK) != 0) {
		unit_skip("%s not built (make targets): symbols --json stack_args check skipped\n", tokio_mt);
		return;
	}
	if (elf_fixture__init(&fx) < 0)
		return;
	r = run_symbols(&fx, (char *[]){ "symbols", "--all", "--match", "^tokio_mt::leaf", "--format", "json",
					 (char *)tokio_mt, NULL });
	CHECK(r.status == 0);
	CHECK(json_stack_args_is(r.out, "tokio_mt::leaf::{{closure}}", "none"));
	CHECK(json_stack_args_is(r.out, "core::ptr::drop_in_place<tokio_mt::leaf::{{closure}}>", "unknown"));
	run_free(&r);
	elf_fixture__cleanup(&fx);
}

UNIT_TEST(symbols_errors)
{
	static const char c_source[] = "int plain(int x) { return x + 1; }\n";
	struct elf_fixture fx;
	char path[PATH_MAX], obj[PATH_MAX + 8], want[2 * PATH_MAX];
	struct run r;

	if (elf_fixture__init(&fx) < 0)
		return;
	r = run_symbols(&fx, (char *[]){ "symbols", "/nonexistent/prog", NULL });
	CHECK(r.status == 1 && r.out[0] == '\0');
	CHECK_STR(r.err, "asynctrace: symbols: cannot open /nonexistent/prog: No such file or directory\n");
	run_free(&r);

	CHECK(elf_fixture__write(&fx, "notes.txt", "hello\n", 6, path, sizeof(path)) == 0);
	r = run_symbols(&fx, (char *[]){ "symbols", path, NULL });
	snprintf(want, sizeof(want), "asynctrace: symbols: %s: not an ELF file\n", path);
	CHECK(r.status == 1);
	CHECK_STR(r.err, want);
	run_free(&r);

	/* a C object: an ELF file without any poll function */
	CHECK(elf_fixture__write(&fx, "plain.c", c_source, sizeof(c_source) - 1, path, sizeof(path)) == 0);
	snprintf(obj, sizeof(obj), "%s.o", path);
	if (elf_fixture__run((char *[]){ "clang", "-c", path, "-o", obj, NULL }) == 0) {
		r = run_symbols(&fx, (char *[]){ "symbols", obj, NULL });
		snprintf(want, sizeof(want),
			 "asynctrace: symbols: %s: no poll functions found (is it a Rust async program?)\n", obj);
		CHECK(r.status == 1);
		CHECK_STR(r.err, want);
		run_free(&r);
	}
	elf_fixture__cleanup(&fx);
}

UNIT_TEST(symbols_usage)
{
	struct elf_fixture fx;
	struct run r;

	if (elf_fixture__init(&fx) < 0)
		return;
	r = run_symbols(&fx, (char *[]){ "symbols", "--help", NULL });
	CHECK(r.status == 0 && strncmp(r.out, "usage: asynctrace symbols", 25) == 0 && r.err[0] == '\0');
	run_free(&r);
	r = run_symbols(&fx, (char *[]){ "symbols", NULL });
	CHECK(r.status == 2 && strstr(r.err, "missing BINARY"));
	run_free(&r);
	r = run_symbols(&fx, (char *[]){ "symbols", "a", "b", NULL });
	CHECK(r.status == 2 && strstr(r.err, "more than one BINARY"));
	run_free(&r);
	r = run_symbols(&fx, (char *[]){ "symbols", "--format", "xml", "/bin/true", NULL });
	CHECK(r.status == 2 && strstr(r.err, "unknown format 'xml'"));
	run_free(&r);
	r = run_symbols(&fx, (char *[]){ "symbols", "--bogus", "/bin/true", NULL });
	CHECK(r.status == 2);
	CHECK_STR(r.err, "asynctrace: symbols: unknown option '--bogus' (see 'asynctrace symbols --help')\n");
	run_free(&r);
	r = run_symbols(&fx, (char *[]){ "symbols", "/bin/true", "--format", NULL });
	CHECK(r.status == 2 && strstr(r.err, "missing the argument of option '--format'"));
	run_free(&r);
	r = run_symbols(&fx, (char *[]){ "symbols", "--match", "(", "/bin/true", NULL });
	CHECK(r.status == 2 && strstr(r.err, "invalid --match pattern"));
	run_free(&r);
	elf_fixture__cleanup(&fx);
}
