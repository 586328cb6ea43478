/* Which functions may take arguments on the stack (elf/stack_args.c), on
 * the Rust test targets and on C functions compiled here. */
#include <stdlib.h>
#include <unistd.h>

#include "elf/dwarf_scan.h"
#include "elf/elf_image.h"
#include "elf/pollfn.h"
#include "test_elf_fixture.h"
#include "unit.h"

#define TARGET(profile, name) unit_build_path("targets/rust/" profile "/" name)

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

struct stack_case {
	const char *name;
	int want; /* enum stack_args */
};

static void check_cases(int *unit_failures_, const char *binary, const struct stack_case *cases,
			size_t count, bool prefix)
{
	for (size_t i = 0; i < count; i++) {
		int got = stack_args_of_symbol(binary, cases[i].name, prefix);

		if (got != cases[i].want)
			fprintf(stderr, "  %s: got %d, want %d\n", cases[i].name, got, cases[i].want);
		CHECK(got == cases[i].want);
	}
}

/* Writes `source` into fx->dir and builds `binary` there with the
 * compiler command `argv` (its output path and source filled in at the
 * NULL slots `out_at` and `out_at + 1`). 0, or -1 after a note. */
static int build(struct elf_fixture *fx, const char *name, const char *source, char **argv,
		 size_t out_at, char *binary, size_t len)
{
	char path[PATH_MAX + 16];

	snprintf(binary, len, "%s/%s.bin", fx->dir, name);
	if (elf_fixture__write(fx, name, source, strlen(source), path, sizeof(path)) != 0)
		return -1;
	argv[out_at] = binary;
	argv[out_at + 1] = path;
	if (elf_fixture__run(argv) != 0) {
		unit_skip("%s failed: stack argument checks of %s skipped\n", argv[0], name);
		return -1;
	}
	return 0;
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

/* Rust signatures at the six-register limit, checked against the code
 * rustc 1.95 makes of them (see stack_args.c). */
static const char rust_source[] =
	"use std::hint::black_box as bb;\n"
	"use std::task::Poll;\n"
	"#[derive(Clone, Copy)] pub struct Big32([u64; 4]);\n"
	"#[derive(Clone, Copy)] pub struct Agg12([u32; 3]);\n"
	"#[inline(never)] pub fn five(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 { a ^ b ^ c ^ d ^ e }\n"
	"#[inline(never)] pub fn six(a: u64, b: u64, c: u64, d: u64, e: u64, f: u64) -> u64 { a ^ b ^ c ^ d ^ e ^ f }\n"
	"#[inline(never)] #[track_caller] pub fn six_track(a: u64, b: u64, c: u64, d: u64, e: u64, f: u64) -> u64 {\n"
	"    a ^ b ^ c ^ d ^ e ^ f ^ std::panic::Location::caller().line() as u64 }\n"
	"#[inline(never)] pub extern \"C\" fn c_big(x: Big32, a: u64) -> u64 { x.0[3] ^ a }\n"
	"#[inline(never)] pub fn big_four(x: Big32, a: u64, b: u64, c: u64, d: u64) -> u64 { x.0[3] ^ a ^ b ^ c ^ d }\n"
	"#[inline(never)] pub fn agg12_four(a: u64, b: u64, c: u64, d: u64) -> Agg12 { Agg12([a as u32, b as u32, (c ^ d) as u32]) }\n"
	"#[inline(never)] pub fn agg12_five(a: u64, b: u64, c: u64, d: u64, e: u64) -> Agg12 { Agg12([a as u32, b as u32, (c ^ d ^ e) as u32]) }\n"
	"#[inline(never)] pub fn poll_five(a: u64, b: u64, c: u64, d: u64, e: u64) -> Poll<u64> {\n"
	"    if a == 0 { Poll::Pending } else { Poll::Ready(a ^ b ^ c ^ d ^ e) } }\n"
	"#[inline(never)] pub fn pairs(x: (u64, u64), y: (u64, u64), a: u64) -> u64 { x.0 ^ x.1 ^ y.0 ^ y.1 ^ a }\n"
	"#[inline(never)] pub fn pair_five(a: u64, b: u64, c: u64, d: u64, e: u64) -> (u64, u64) { (a ^ b, c ^ d ^ e) }\n"
	"#[inline(never)] pub fn ref_five<'a>(a: &'a u64, b: u64, c: u64, d: u64, e: u64) -> &'a u64 {\n"
	"    if b ^ c ^ d ^ e == 0 { &0 } else { a } }\n"
	"#[inline(never)] pub fn zsts(a: u64, b: u64, c: u64, d: u64, e: u64, _z: (), _p: std::marker::PhantomData<u8>) -> u64 {\n"
	"    a ^ b ^ c ^ d ^ e }\n"
	"pub fn closure4(n: u64) -> u64 { let k = bb(7u64); bb(|a: u64, b: u64, c: u64, d: u64| a ^ b ^ c ^ d ^ k)(n, n, n, n) }\n"
	"pub fn closure5(n: u64) -> u64 {\n"
	"    let k = bb(7u64); bb(|a: u64, b: u64, c: u64, d: u64, e: u64| a ^ b ^ c ^ d ^ e ^ k)(n, n, n, n, n) }\n"
	"fn main() {\n"
	"    let n: u64 = bb(1);\n"
	"    let mut acc = five(n, n, n, n, n) ^ six(n, n, n, n, n, n) ^ six_track(n, n, n, n, n, n);\n"
	"    acc ^= c_big(bb(Big32([n; 4])), n) ^ big_four(bb(Big32([n; 4])), n, n, n, n);\n"
	"    acc ^= agg12_four(n, n, n, n).0[2] as u64 ^ agg12_five(n, n, n, n, n).0[2] as u64;\n"
	"    if let Poll::Ready(v) = poll_five(n, n, n, n, n) { acc ^= v; }\n"
	"    acc ^= pairs((n, n), (n, n), n) ^ closure4(n) ^ closure5(n) ^ zsts(n, n, n, n, n, (), std::marker::PhantomData);\n"
	"    acc ^= pair_five(n, n, n, n, n).1 ^ *ref_five(&n, n, n, n, n);\n"
	"    println!(\"{}\", acc);\n"
	"}\n";

/* rustc as tests/targets finds cargo: on PATH, else in a cargo home. */
static int build_rust(struct elf_fixture *fx, const char *opt_level, char *binary, size_t len)
{
	char home_rustc[PATH_MAX], name[32];
	const char *home = getenv("HOME");
	const char *rustcs[] = { "rustc", "/root/.cargo/bin/rustc", home_rustc };
	char *argv[] = { NULL, "--edition", "2021", "-A", "warnings", "--crate-name", "stackargs",
			 "-C", "debuginfo=2", "-C", (char *)opt_level, "-o", NULL, NULL, NULL };

	snprintf(home_rustc, sizeof(home_rustc), "%s/.cargo/bin/rustc", home ? home : "/root");
	snprintf(name, sizeof(name), "stackargs-%s.rs", opt_level);
	for (size_t i = 0; i < sizeof(rustcs) / sizeof(rustcs[0]); i++) {
		char *probe[] = { (char *)rustcs[i], "--version", NULL };

		if (elf_fixture__run(probe) != 0)
			continue;
		argv[0] = (char *)rustcs[i];
		return build(fx, name, rust_source, argv, 12, binary, len);
	}
	unit_skip("no rustc (PATH, $HOME/.cargo/bin, /root/.cargo/bin): Rust stack argument checks skipped\n");
	return -1;
}

UNIT_TEST(stack_args_rust_functions)
{
	static const struct stack_case debug[] = {
		/* one register kept for a #[track_caller] Location */
		{ "_ZN9stackargs4five17h", STACK_ARGS_NONE },
		{ "_ZN9stackargs3six17h", STACK_ARGS_SOME },       /* an upper bound: in registers */
		{ "_ZN9stackargs9six_track17h", STACK_ARGS_SOME }, /* its Location is on the stack */
		/* extern "C": the 32-byte struct is on the stack, not by reference */
		{ "_ZN9stackargs5c_big17h", STACK_ARGS_SOME },
		{ "_ZN9stackargs8big_four17h", STACK_ARGS_NONE },  /* by reference: 1 + 4 + 1 */
		/* a 12-byte aggregate comes back through a hidden pointer */
		{ "_ZN9stackargs10agg12_four17h", STACK_ARGS_NONE },
		{ "_ZN9stackargs10agg12_five17h", STACK_ARGS_SOME },
		/* Poll<u64> comes back in rax:rdx */
		{ "_ZN9stackargs9poll_five17h", STACK_ARGS_NONE },
		{ "_ZN9stackargs5pairs17h", STACK_ARGS_NONE },     /* 2 + 2 + 1 + 1 */
		/* 16 bytes, a scalar pair, and a pointer come back in registers */
		{ "_ZN9stackargs9pair_five17h", STACK_ARGS_NONE },
		{ "_ZN9stackargs8ref_five17h", STACK_ARGS_NONE },
		{ "_ZN9stackargs4zsts17h", STACK_ARGS_NONE },      /* zero-sized ones take none */
		/* closure bodies: DWARF lists the arguments, not the environment */
		{ "_ZN9stackargs8closure428_$u7b$$u7b$closure$u7d$$u7d$17h", STACK_ARGS_NONE },
		{ "_ZN9stackargs8closure528_$u7b$$u7b$closure$u7d$$u7d$17h", STACK_ARGS_SOME },
	};
	static const struct stack_case optimised[] = {
		/* LLVM folded the Location of its one caller: DW_CC_nocall */
		{ "_ZN9stackargs9six_track17h", STACK_ARGS_UNKNOWN },
		{ "_ZN9stackargs5c_big17h", STACK_ARGS_SOME },
		{ "_ZN9stackargs8big_four17h", STACK_ARGS_NONE },
	};
	struct elf_fixture fx;
	char binary[PATH_MAX + 32];

	if (elf_fixture__init(&fx) < 0)
		return;
	if (build_rust(&fx, "opt-level=0", binary, sizeof(binary)) == 0)
		check_cases(unit_failures_, binary, debug, sizeof(debug) / sizeof(debug[0]), true);
	if (build_rust(&fx, "opt-level=2", binary, sizeof(binary)) == 0)
		check_cases(unit_failures_, binary, optimised, sizeof(optimised) / sizeof(optimised[0]), true);
	elf_fixture__cleanup(&fx);
}

static const char c_source[] =
	"#include <stdarg.h>\n"
	"struct pair { long a, b; };\n"
	"struct three { long a, b, c; };\n"
	"struct __attribute__((packed)) packed { char c; int i; };\n"
	"struct ld { long double x; };\n"
	"struct ld_array { long double v[1]; };\n"
	"union number { long l; double d; };\n"
	"long six(long a, long b, long c, long d, long e, long f) { return a + b + c + d + e + f; }\n"
	"long seven(long a, long b, long c, long d, long e, long f, long g) { return a + b + c + d + e + f + g; }\n"
	"long pairs(struct pair x, struct pair y, long c, long d) { return x.a + y.b + c + d; }\n"
	"long pairs_more(struct pair x, struct pair y, long c, long d, long e) { return x.a + y.b + c + d + e; }\n"
	"long by_value(struct three x) { return x.c; }\n"
	"long x87(long double x) { return (long)x; }\n"
	"long x87_inside(struct ld x) { return (long)x.x; }\n"
	"long x87_array(struct ld_array x) { return (long)x.v[0]; }\n"
	"long packed_arg(struct packed p) { return p.i; }\n"
	"long union_arg(union number x, long a) { return x.l + a; }\n"
	"long variadic(int n, ...) { va_list ap; va_start(ap, n); long v = va_arg(ap, long); va_end(ap); return v; }\n"
	"struct three ret_five(long a, long b, long c, long d, long e) { struct three t = { a + b, c + d, e }; return t; }\n"
	"struct three ret_six(long a, long b, long c, long d, long e, long f) { struct three t = { a + b, c + d, e + f }; return t; }\n"
	"struct packed ret_packed5(long a, long b, long c, long d, long e) { struct packed p = { (char)a, (int)(b + c + d + e) }; return p; }\n"
	"struct packed ret_packed6(long a, long b, long c, long d, long e, long f) { struct packed p = { (char)a, (int)(b + c + d + e + f) }; return p; }\n"
	"struct pair ret_pair(long a, long b, long c, long d, long e, long f) { struct pair p = { a + b + c, d + e + f }; return p; }\n"
	"double doubles(double a, double b, double c, double d, double e, double f, double g) { return a + b + c + d + e + f + g; }\n"
	"int no_args(void) { return 1; }\n"
	"void nothing(void) { }\n";

/* SysV rules, on gcc's DWARF of the C functions above. */
UNIT_TEST(stack_args_c_functions)
{
	static const struct stack_case cases[] = {
		{ "six", STACK_ARGS_NONE },
		{ "seven", STACK_ARGS_SOME },
		{ "pairs", STACK_ARGS_NONE },      /* 2 + 2 + 1 + 1 */
		{ "pairs_more", STACK_ARGS_SOME }, /* 7 */
		{ "by_value", STACK_ARGS_SOME },   /* over 16 bytes: MEMORY class */
		{ "x87", STACK_ARGS_SOME },
		{ "x87_inside", STACK_ARGS_SOME },
		{ "x87_array", STACK_ARGS_SOME },
		{ "packed_arg", STACK_ARGS_SOME },
		{ "union_arg", STACK_ARGS_NONE },  /* members without a location: at 0 */
		{ "variadic", STACK_ARGS_SOME },
		{ "ret_five", STACK_ARGS_NONE },   /* hidden pointer + 5 */
		{ "ret_six", STACK_ARGS_SOME },
		{ "ret_pair", STACK_ARGS_NONE },   /* 16 bytes: rax:rdx */
		/* 5 bytes, but MEMORY class: a hidden pointer as well */
		{ "ret_packed5", STACK_ARGS_NONE },
		{ "ret_packed6", STACK_ARGS_SOME },
		/* in xmm registers, counted as integer ones: an upper bound */
		{ "doubles", STACK_ARGS_SOME },
		{ "no_args", STACK_ARGS_NONE },
		/* no parameter, no result type: DWARF without types looks so */
		{ "nothing", STACK_ARGS_UNKNOWN },
	};
	char *cc[] = { "cc", "-g", "-O0", "-shared", "-fPIC", "-o", NULL, NULL, NULL };
	struct elf_fixture fx;
	char binary[PATH_MAX + 32];

	if (elf_fixture__init(&fx) < 0)
		return;
	if (build(&fx, "stack_args.c", c_source, cc, 6, binary, sizeof(binary)) == 0)
		check_cases(unit_failures_, binary, cases, sizeof(cases) / sizeof(cases[0]), false);
	elf_fixture__cleanup(&fx);
}

/* C++: `this` is a parameter (artificial); an empty class has no member. */
static const char cxx_source[] =
	"struct empty {};\n"
	"struct obj {\n"
	"    long v;\n"
	"    long five(long a, long b, long c, long d, long e);\n"
	"    long six(long a, long b, long c, long d, long e, long f);\n"
	"};\n"
	"long obj::five(long a, long b, long c, long d, long e) { return v + a + b + c + d + e; }\n"
	"long obj::six(long a, long b, long c, long d, long e, long f) { return v + a + b + c + d + e + f; }\n"
	"extern \"C\" long empty_arg(empty x, long a, long b, long c, long d, long e) { return a + b + c + d + e; }\n";

UNIT_TEST(stack_args_cxx_functions)
{
	static const struct stack_case cases[] = {
		{ "_ZN3obj4fiveElllll", STACK_ARGS_NONE },
		{ "_ZN3obj3sixEllllll", STACK_ARGS_SOME },
		{ "empty_arg", STACK_ARGS_NONE },
	};
	char *cxx[] = { "c++", "-g", "-O0", "-shared", "-fPIC", "-o", NULL, NULL, NULL };
	struct elf_fixture fx;
	char binary[PATH_MAX + 32];

	if (elf_fixture__init(&fx) < 0)
		return;
	if (build(&fx, "stack_args.cc", cxx_source, cxx, 6, binary, sizeof(binary)) == 0)
		check_cases(unit_failures_, binary, cases, sizeof(cases) / sizeof(cases[0]), false);
	elf_fixture__cleanup(&fx);
}

/* Hand-written DWARF (no rustc, gcc or clang output looked at had it):
 * `f`, an out-of-line copy of a function inlined elsewhere, whose DIE
 * leaves every parameter to the abstract instance and keeps only a local
 * variable (LLVM emits that when only the inlined copy describes them;
 * counting none would say NONE), and `opaque`, whose parameter's type is
 * a declaration without a size. */
static const char origin_ir[] =
	"target triple = \"x86_64-unknown-linux-gnu\"\n"
	"\n"
	"define i64 @f(i64 %a, i64 %b, i64 %c, i64 %d, i64 %e, i64 %g, i64 %h) !dbg !10 {\n"
	"  call void @llvm.dbg.value(metadata i64 %a, metadata !18, metadata !DIExpression()), !dbg !20\n"
	"  ret i64 %a, !dbg !20\n"
	"}\n"
	"\n"
	"define i64 @caller(i64 %x) !dbg !30 {\n"
	"  call void @llvm.dbg.value(metadata i64 %x, metadata !11, metadata !DIExpression()), !dbg !21\n"
	"  call void @llvm.dbg.value(metadata i64 %x, metadata !12, metadata !DIExpression()), !dbg !21\n"
	"  call void @llvm.dbg.value(metadata i64 %x, metadata !13, metadata !DIExpression()), !dbg !21\n"
	"  call void @llvm.dbg.value(metadata i64 %x, metadata !14, metadata !DIExpression()), !dbg !21\n"
	"  call void @llvm.dbg.value(metadata i64 %x, metadata !15, metadata !DIExpression()), !dbg !21\n"
	"  call void @llvm.dbg.value(metadata i64 %x, metadata !16, metadata !DIExpression()), !dbg !21\n"
	"  call void @llvm.dbg.value(metadata i64 %x, metadata !17, metadata !DIExpression()), !dbg !21\n"
	"  ret i64 %x, !dbg !21\n"
	"}\n"
	"\n"
	"define i64 @opaque(i64 %o) !dbg !50 {\n"
	"  call void @llvm.dbg.value(metadata i64 %o, metadata !51, metadata !DIExpression()), !dbg !52\n"
	"  ret i64 %o, !dbg !52\n"
	"}\n"
	"\n"
	"declare void @llvm.dbg.value(metadata, metadata, metadata)\n"
	"\n"
	"!llvm.dbg.cu = !{!0}\n"
	"!llvm.module.flags = !{!2, !3}\n"
	"!0 = distinct !DICompileUnit(language: DW_LANG_C99, file: !1, producer: \"hand\", isOptimized: true, runtimeVersion: 0, emissionKind: FullDebug)\n"
	"!1 = !DIFile(filename: \"origin.c\", directory: \"/fixture\")\n"
	"!2 = !{i32 7, !\"Dwarf Version\", i32 4}\n"
	"!3 = !{i32 2, !\"Debug Info Version\", i32 3}\n"
	"!4 = !DIBasicType(name: \"long\", size: 64, encoding: DW_ATE_signed)\n"
	"!5 = !DISubroutineType(types: !{!4, !4, !4, !4, !4, !4, !4, !4})\n"
	"!10 = distinct !DISubprogram(name: \"f\", scope: !1, file: !1, line: 1, type: !5, scopeLine: 1, spFlags: DISPFlagDefinition | DISPFlagOptimized, unit: !0, retainedNodes: !{})\n"
	"!11 = !DILocalVariable(name: \"a\", arg: 1, scope: !10, file: !1, line: 1, type: !4)\n"
	"!12 = !DILocalVariable(name: \"b\", arg: 2, scope: !10, file: !1, line: 1, type: !4)\n"
	"!13 = !DILocalVariable(name: \"c\", arg: 3, scope: !10, file: !1, line: 1, type: !4)\n"
	"!14 = !DILocalVariable(name: \"d\", arg: 4, scope: !10, file: !1, line: 1, type: !4)\n"
	"!15 = !DILocalVariable(name: \"e\", arg: 5, scope: !10, file: !1, line: 1, type: !4)\n"
	"!16 = !DILocalVariable(name: \"g\", arg: 6, scope: !10, file: !1, line: 1, type: !4)\n"
	"!17 = !DILocalVariable(name: \"h\", arg: 7, scope: !10, file: !1, line: 1, type: !4)\n"
	"!18 = !DILocalVariable(name: \"local\", scope: !10, file: !1, line: 2, type: !4)\n"
	"!20 = !DILocation(line: 1, scope: !10)\n"
	"!21 = !DILocation(line: 1, scope: !10, inlinedAt: !22)\n"
	"!22 = distinct !DILocation(line: 5, scope: !30)\n"
	"!30 = distinct !DISubprogram(name: \"caller\", scope: !1, file: !1, line: 4, type: !5, scopeLine: 4, spFlags: DISPFlagDefinition | DISPFlagOptimized, unit: !0, retainedNodes: !{})\n"
	"!50 = distinct !DISubprogram(name: \"opaque\", scope: !1, file: !1, line: 11, type: !5, scopeLine: 11, spFlags: DISPFlagDefinition, unit: !0, retainedNodes: !{!51})\n"
	"!51 = !DILocalVariable(name: \"o\", arg: 1, scope: !50, file: !1, line: 11, type: !53)\n"
	"!52 = !DILocation(line: 11, scope: !50)\n"
	"!53 = !DICompositeType(tag: DW_TAG_structure_type, name: \"opaque\", file: !1, line: 11, flags: DIFlagFwdDecl)\n"
;

UNIT_TEST(stack_args_hand_written_dwarf)
{
	char *clang[] = { "clang", "-shared", "-fPIC", "-Wno-override-module", "-o", NULL, NULL, NULL };
	struct elf_fixture fx;
	char binary[PATH_MAX + 32];

	if (elf_fixture__init(&fx) < 0)
		return;
	if (build(&fx, "origin.ll", origin_ir, clang, 5, binary, sizeof(binary)) == 0) {
		CHECK(stack_args_of_symbol(binary, "f", false) == STACK_ARGS_SOME); /* 7 on the origin */
		CHECK(stack_args_of_symbol(binary, "opaque", false) == STACK_ARGS_UNKNOWN);
	}
	elf_fixture__cleanup(&fx);
}

UNIT_TEST(stack_args_names)
{
	CHECK_STR(stack_args__name(STACK_ARGS_NONE), "none");
	CHECK_STR(stack_args__name(STACK_ARGS_SOME), "some");
	CHECK_STR(stack_args__name(STACK_ARGS_UNKNOWN), "unknown");
}
