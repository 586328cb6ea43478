/* elf/demangle: legacy and v0 Rust symbols as libiberty prints them. */
#include <stdlib.h>

#include "elf/demangle.h"
#include "unit.h"

static void check_demangle(int *unit_failures_, const char *mangled, const char *want)
{
	char *got = demangle_symbol(mangled);

	CHECK_STR(got, want);
	free(got);
}

#define DEMANGLES(mangled, want) check_demangle(unit_failures_, mangled, want)

UNIT_TEST(demangle_legacy)
{
	/* real symbols of a rustc 1.95 debug build (tests/targets-like demo) */
	DEMANGLES("_ZN4demo4leaf28_$u7b$$u7b$closure$u7d$$u7d$17h0123456789abcdefE",
		  "demo::leaf::{{closure}}");
	DEMANGLES("_ZN4demo4leaf28_$u7b$$u7b$closure$u7d$$u7d$17ha7e805834b905615E",
		  "demo::leaf::{{closure}}");
	DEMANGLES("_ZN60_$LT$demo..Yield$u20$as$u20$core..future..future..Future$GT$4poll17h791a20355a1e99c7E",
		  "<demo::Yield as core::future::future::Future>::poll");
	DEMANGLES("_ZN5tokio7runtime4task7harness20Harness$LT$T$C$S$GT$4poll17h05fe491e0d7ea3b3E",
		  "tokio::runtime::task::harness::Harness<T,S>::poll");
	DEMANGLES("_ZN4core3ptr60drop_in_place$LT$demo..leaf..$u7b$$u7b$closure$u7d$$u7d$$GT$17h2310a4bd001d4efbE",
		  "core::ptr::drop_in_place<demo::leaf::{{closure}}>");
}

UNIT_TEST(demangle_v0)
{
	DEMANGLES("_RNvNtNtCsgEmfK2I1SDS_4core9panicking11panic_const28panic_const_async_fn_resumed",
		  "core::panicking::panic_const::panic_const_async_fn_resumed");
	DEMANGLES("_RINvMNtCsgEmfK2I1SDS_4core3stre12trim_matchesNvMNtNtB5_4char7methodsc13is_whitespaceECsjrHSEGnQ3l9_3std",
		  "<str>::trim_matches::<<char>::is_whitespace>");
	DEMANGLES("_RNvXs0_NtCsgY6Mt91CT9J_14rustc_demangle2v0NtB5_5IdentNtNtCsgEmfK2I1SDS_4core3fmt7Display3fmt",
		  "<rustc_demangle::v0::Ident as core::fmt::Display>::fmt");
	DEMANGLES("_RNCINvMs0_NtNtCsjrHSEGnQ3l9_3std4sync4onceNtB8_4Once15call_once_forceNCINvMNtBa_9once_lockINtB1b_8OnceLockNtNtBc_2fs4FileE10initializeNCNvNtNtNtBc_3sys6random5linux9getrandom0NtNtNtBc_2io5error5ErrorE0E0Bc_",
		  "<std::sync::once::Once>::call_once_force::<<std::sync::once_lock::OnceLock<std::fs::File>>::initialize<std::sys::random::linux::getrandom::{closure#0}, std::io::error::Error>::{closure#0}>::{closure#0}");
	DEMANGLES("_RNCNvCs1234_4demo5other0", "demo::other::{closure#0}");
}

UNIT_TEST(demangle_passes_other_names_through)
{
	DEMANGLES("main", "main");
	DEMANGLES("_start", "_start");
	DEMANGLES("_Z3fooi", "_Z3fooi");       /* C++: not ours to rewrite */
	DEMANGLES("_ZN3foo3barE", "_ZN3foo3barE"); /* Itanium, no Rust hash */
	DEMANGLES("_RNotValid!", "_RNotValid!");
	DEMANGLES("", "");
	CHECK(rust_is_mangled("_ZN4demo4leaf17h0123456789abcdefE"));
	CHECK(rust_is_mangled("_RNvCs1234_4demo4main"));
	CHECK(rust_is_mangled("__ZN4demo4leaf17h0123456789abcdefE"));
	CHECK(!rust_is_mangled("_Z3fooi"));
	CHECK(!rust_is_mangled("_Rx"));
	CHECK(!rust_is_mangled("poll"));
}
