/* Which functions may take arguments on the stack (elf/stack_args.c), on
 * the Rust test targets and on C functions compiled here. */
#include <stdlib.h>
#include <unistd.h>

#include "elf/dwarf_scan.h"
#include "elf/elf_image.h"
#include "elf/pollfn.h"
#include "test_elf_fixture.h"
#include "unit.h"

#define TARGET(profile, name) "build/targets/rust/" profile "/" name

static const struct poll_fn *find(const struct poll_fn_list *l, const char *name, uint8_t role)
{
	for (size_t i = 0; i < l->count; i++)
		if (l->fns[i].role == role && strcmp(l->fns[i].demangled, name) == 0)
			return &l->fns[i];
	return NULL;
}

static int load_all(const char *path, struct poll_fn_list *l)
{
	if (access(path, R_OK) != 0) {
		unit_skip("%s not built (make targets): stack argument checks skipped\n", path);
		return -1;
	}
	if (poll_fn_list__load(l, path, NULL) != 0)
		return -1;
	if (poll_fn_list__add_hooks(l, path) != 0) {
		poll_fn_list__free(l);
		return -1;
	}
	return 0;
}

/* stack_args of the first function symbol named `name`, or whose name
 * starts with it when `prefix` (Rust's hash suffix), or -1. C functions
 * have no DWARF linkage name: the scan matches them by address. */
static int stack_args_of_symbol(const char *path, const char *name, bool prefix)
{
	struct elf_image img = { .fd = -1 };
	struct dwarf_query q = { 0 };
	struct elf_sym *syms = NULL;
	size_t count = 0;
	bool has_dwarf = false;
	int result = -1;

	if (elf_image__open(&img, path) != 0 || elf_image__functions(&img, &syms, &count) != 0)
		goto out;
	for (size_t i = 0; i < count && !q.linkage; i++)
		if (prefix ? strncmp(syms[i].name, name, strlen(name)) == 0 : strcmp(syms[i].name, name) == 0) {
			q.addr = syms[i].addr;
			q.linkage = syms[i].name;
		}
	if (q.linkage && dwarf_scan(&img, &q, 1, &has_dwarf) == 0 && q.found)
		result = q.stack_args;
	dwarf_query__release(&q);
out:
	free(syms);
	elf_image__close(&img);
	return result;
}

UNIT_TEST(stack_args_tokio_debug)
{
	const char *path = TARGET("debug", "tokio_mt");
	static const char *const none[] = {
		"tokio_mt::outer::{{closure}}", "tokio_mt::leaf::{{closure}}",
		/* Poll<Big>: hidden pointer, self, Context */
		"tokio_mt::middle::{{closure}}",
		"<targets::YieldNow as core::future::future::Future>::poll",
		"tokio::runtime::task::harness::Harness<T,S>::poll",
	};
	struct poll_fn_list l;
	const struct poll_fn *f;

	if (load_all(path, &l) != 0)
		return;
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		f = find(&l, none[i], ROLE_POLL);
		CHECK(f && f->stack_args == STACK_ARGS_NONE);
	}
	/* #[track_caller]: its Location is an argument DWARF does not list */
	f = find(&l, "tokio::task::spawn::spawn", ROLE_SPAWN);
	CHECK(f && f->stack_args == STACK_ARGS_NONE);
	f = find(&l, "tokio::runtime::task::raw::RawTask::new", ROLE_TASK_NEW);
	CHECK(f && f->stack_args == STACK_ARGS_NONE);
	f = find(&l, "tokio::runtime::task::waker::wake_by_val", ROLE_WAKE);
	CHECK(f && f->stack_args == STACK_ARGS_NONE);
	/* rustc's drop glue of a coroutine lists no parameter at all */
	f = find(&l, "core::ptr::drop_in_place<tokio_mt::leaf::{{closure}}>", ROLE_DROP);
	CHECK(f && f->stack_args == STACK_ARGS_UNKNOWN);
	f = find(&l, "core::ptr::drop_in_place<tokio::sync::notify::Notified>", ROLE_DROP);
	CHECK(f && f->stack_args == STACK_ARGS_NONE);
	for (size_t i = 0; i < l.count; i++)
		CHECK(l.fns[i].stack_args != STACK_ARGS_SOME);
	poll_fn_list__free(&l);
}

UNIT_TEST(stack_args_tokio_other_functions)
{
	const char *path = TARGET("debug", "tokio_mt");

	if (access(path, R_OK) != 0) {
		unit_skip("%s not built (make targets): stack argument checks skipped\n", path);
		return;
	}
	/* task(F, &str, Option<&str>, u64) -> F: 7 with the hidden pointer;
	 * its code reads the u64 from the stack */
	CHECK(stack_args_of_symbol(path, "_ZN5tokio4util5trace4task17h", true) == STACK_ARGS_SOME);
	/* #[track_caller] with 5 registers of parameters: the sixth is its Location */
	CHECK(stack_args_of_symbol(path, "_ZN4core9panicking13assert_failed17h", true) == STACK_ARGS_NONE);
}

/* Release builds keep no DWARF types (debug = 1). */
UNIT_TEST(stack_args_tokio_release)
{
	struct poll_fn_list l;

	if (load_all(TARGET("release", "tokio_mt"), &l) != 0)
		return;
	CHECK(l.count > 0);
	for (size_t i = 0; i < l.count; i++)
		CHECK(l.fns[i].stack_args == STACK_ARGS_UNKNOWN);
	poll_fn_list__free(&l);
}

static const char c_source[] =
	"#include <stdarg.h>\n"
	"struct pair { long a, b; };\n"
	"struct three { long a, b, c; };\n"
	"struct __attribute__((packed)) packed { char c; int i; };\n"
	"struct ld { long double x; };\n"
	"long six(long a, long b, long c, long d, long e, long f) { return a + b + c + d + e + f; }\n"
	"long seven(long a, long b, long c, long d, long e, long f, long g) { return a + b + c + d + e + f + g; }\n"
	"long pairs(struct pair x, struct pair y, long c, long d) { return x.a + y.b + c + d; }\n"
	"long pairs_more(struct pair x, struct pair y, long c, long d, long e) { return x.a + y.b + c + d + e; }\n"
	"long by_value(struct three x) { return x.c; }\n"
	"long x87(long double x) { return (long)x; }\n"
	"long x87_inside(struct ld x) { return (long)x.x; }\n"
	"long packed_arg(struct packed p) { return p.i; }\n"
	"long variadic(int n, ...) { va_list ap; va_start(ap, n); long v = va_arg(ap, long); va_end(ap); return v; }\n"
	"struct three ret_five(long a, long b, long c, long d, long e) { struct three t = { a + b, c + d, e }; return t; }\n"
	"struct three ret_six(long a, long b, long c, long d, long e, long f) { struct three t = { a + b, c + d, e + f }; return t; }\n"
	"struct pair ret_pair(long a, long b, long c, long d, long e, long f) { struct pair p = { a + b + c, d + e + f }; return p; }\n"
	"double doubles(double a, double b, double c, double d, double e, double f, double g) { return a + b + c + d + e + f + g; }\n"
	"int no_args(void) { return 1; }\n"
	"void nothing(void) { }\n";

/* SysV rules, on gcc's DWARF of the C functions above. */
UNIT_TEST(stack_args_c_functions)
{
	static const struct {
		const char *name;
		int want;
	} cases[] = {
		{ "six", STACK_ARGS_NONE },
		{ "seven", STACK_ARGS_SOME },
		{ "pairs", STACK_ARGS_NONE },      /* 2 + 2 + 1 + 1 */
		{ "pairs_more", STACK_ARGS_SOME }, /* 7 */
		{ "by_value", STACK_ARGS_SOME },   /* over 16 bytes: MEMORY class */
		{ "x87", STACK_ARGS_SOME },
		{ "x87_inside", STACK_ARGS_SOME },
		{ "packed_arg", STACK_ARGS_SOME },
		{ "variadic", STACK_ARGS_SOME },
		{ "ret_five", STACK_ARGS_NONE },   /* hidden pointer + 5 */
		{ "ret_six", STACK_ARGS_SOME },
		{ "ret_pair", STACK_ARGS_NONE },   /* 16 bytes: rax:rdx */
		/* in xmm registers, counted as integer ones: an upper bound */
		{ "doubles", STACK_ARGS_SOME },
		{ "no_args", STACK_ARGS_NONE },
		/* no parameter, no result type: DWARF without types looks so */
		{ "nothing", STACK_ARGS_UNKNOWN },
	};
	struct elf_fixture fx;
	char source[PATH_MAX + 16], object[PATH_MAX + 16];

	if (elf_fixture__init(&fx) < 0)
		return;
	snprintf(object, sizeof(object), "%s/stack_args.so", fx.dir);
	if (elf_fixture__write(&fx, "stack_args.c", c_source, sizeof(c_source) - 1, source,
			       sizeof(source)) == 0) {
		char *cc[] = { "cc", "-g", "-O0", "-shared", "-fPIC", "-o", object, source, NULL };

		if (elf_fixture__run(cc) != 0) {
			unit_skip("cc failed: C stack argument checks skipped\n");
		} else {
			for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
				int got = stack_args_of_symbol(object, cases[i].name, false);

				if (got != cases[i].want)
					fprintf(stderr, "  %s: got %d, want %d\n", cases[i].name, got,
						cases[i].want);
				CHECK(got == cases[i].want);
			}
		}
	}
	elf_fixture__cleanup(&fx);
}

UNIT_TEST(stack_args_names)
{
	CHECK_STR(stack_args__name(STACK_ARGS_NONE), "none");
	CHECK_STR(stack_args__name(STACK_ARGS_SOME), "some");
	CHECK_STR(stack_args__name(STACK_ARGS_UNKNOWN), "unknown");
}
