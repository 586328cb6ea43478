/* elf/classify: what demangled names and DWARF names say. */
#include <stdlib.h>
#include <unistd.h>

#include "elf/classify.h"
#include "unit.h"

static void check_normalize(int *unit_failures_, const char *in, const char *want)
{
	char *got = name_normalize(in);

	CHECK_STR(got, want);
	free(got);
}

#define NORMALIZES(in, want) check_normalize(unit_failures_, in, want)

UNIT_TEST(classify_normalize)
{
	NORMALIZES("tokio::runtime::task::harness::Harness<T,S>::poll",
		   "tokio::runtime::task::harness::Harness::poll");
	NORMALIZES("<tokio::runtime::task::harness::Harness<demo::f::{closure#0}, alloc::sync::Arc<"
		   "tokio::runtime::scheduler::current_thread::Handle>>>::poll",
		   "tokio::runtime::task::harness::Harness::poll");
	NORMALIZES("tokio::runtime::task::raw::poll::<demo::f::{closure#0}, S>",
		   "tokio::runtime::task::raw::poll");
	NORMALIZES("<str>::trim_matches::<<char>::is_whitespace>", "str::trim_matches");
	NORMALIZES("<async_std::task::builder::SupportTaskLocals<F> as core::future::future::Future>::poll",
		   "<async_std::task::builder::SupportTaskLocals as core::future::future::Future>::poll");
	NORMALIZES("<<X as Y>::Z as core::future::future::Future>::poll",
		   "<<X as Y>::Z as core::future::future::Future>::poll");
	NORMALIZES("core::ptr::drop_in_place<<demo::X as core::future::future::Future>::poll::{{closure}}>",
		   "core::ptr::drop_in_place");
	NORMALIZES("<alloc::boxed::Box<dyn core::ops::function::Fn() -> u32> as Foo>::f",
		   "<alloc::boxed::Box as Foo>::f");
	NORMALIZES("<std::sync::once::Once>::call_once_force::<<std::sync::once_lock::OnceLock<std::fs::File>>"
		   "::initialize<F, E>::{closure#0}>::{closure#0}",
		   "std::sync::once::Once::call_once_force::{closure#0}");
	NORMALIZES("demo::leaf::{{closure}}", "demo::leaf::{{closure}}");
}

UNIT_TEST(classify_tasks)
{
	static const char *const tasks[] = {
		/* legacy demanglings (rustc 1.95 debug build, Debian's tokio 1.24 etc.) */
		"tokio::runtime::task::raw::poll",
		"tokio::runtime::task::raw::RawTask::poll",
		"tokio::runtime::task::harness::Harness<T,S>::poll",
		"<async_std::task::builder::SupportTaskLocals<F> as core::future::future::Future>::poll",
		"async_task::raw::RawTask<F,T,S>::run",
		"<futures_task::future_obj::LocalFutureObj<T> as core::future::future::Future>::poll",
		"futures_executor::thread_pool::Task::run",
		/* v0 demanglings print concrete generic arguments */
		"tokio::runtime::task::raw::poll::<demo::f::{closure#0}, alloc::sync::Arc<h::Handle>>",
		"<tokio::runtime::task::raw::RawTask>::poll",
		"<tokio::runtime::task::harness::Harness<demo::f::{closure#0}, S>>::poll",
		"<async_task::raw::RawTask<F, u32, S>>::run",
	};

	for (size_t i = 0; i < sizeof(tasks) / sizeof(tasks[0]); i++) {
		CHECK(classify_name(tasks[i]) == NAME_TASK);
		CHECK(task_runtime_of(tasks[i]) != NULL);
	}
	CHECK_STR(task_runtime_of("tokio::runtime::task::raw::poll"), "tokio");
	CHECK_STR(task_runtime_of("async_task::raw::RawTask<F,T,S>::run"), "async-task");
	CHECK(task_runtime_of("tokio::runtime::task::raw::poll_future") == NULL);
}

UNIT_TEST(classify_other_kinds)
{
	CHECK(classify_name("<core::future::from_generator::GenFuture<T> as core::future::future::Future>::poll") ==
	      NAME_GENFUTURE);
	CHECK(classify_name("<core::future::from_generator::GenFuture<zcore_loader::linux::run_user::{closure#0}> "
			    "as core::future::future::Future>::poll") == NAME_GENFUTURE);
	CHECK(classify_name("<demo::Yield as core::future::future::Future>::poll") == NAME_POLL_IMPL);
	CHECK(classify_name("<&mut F as core::future::future::Future>::poll") == NAME_POLL_IMPL);
	CHECK(classify_name("<<dyn zircon_object::object::KernelObject>::wait_signal::SignalFuture as "
			    "core::future::future::Future>::poll") == NAME_POLL_IMPL);
	CHECK(classify_name("demo::leaf::{{closure}}") == NAME_CLOSURE);
	CHECK(classify_name("demo::other::{closure#0}") == NAME_CLOSURE);
	CHECK(classify_name("<demo::X as core::future::future::Future>::poll::{{closure}}") == NAME_CLOSURE);
	CHECK(classify_name("<linux_syscall::Syscall>::syscall::{closure#0}") == NAME_CLOSURE);
	CHECK(classify_name("demo::f::<u32>::{closure#0}::<u8>") == NAME_CLOSURE);
	/* not poll functions */
	CHECK(classify_name("core::ptr::drop_in_place<demo::leaf::{{closure}}>") == NAME_OTHER);
	CHECK(classify_name("core::ptr::drop_in_place::<demo::leaf::{closure#0}>") == NAME_OTHER);
	CHECK(classify_name("demo::leaf") == NAME_OTHER);
	CHECK(classify_name("<demo::X as demo::MyFuture>::poll") == NAME_OTHER);
	CHECK(classify_name("<demo::S as futures_core::stream::Stream>::poll_next") == NAME_OTHER);
	CHECK(classify_name("tokio::runtime::task::raw::poll_future") == NAME_OTHER);
	CHECK(classify_name("poll") == NAME_OTHER);
	CHECK(classify_name("run") == NAME_OTHER);
	CHECK(classify_name("") == NAME_OTHER);
}

UNIT_TEST(classify_dwarf_names)
{
	CHECK(closure_kind_from_dwarf_name("{async_fn#0}") == CLOSURE_ASYNC_FN);
	CHECK(closure_kind_from_dwarf_name("{async_block#3}") == CLOSURE_ASYNC_BLOCK);
	CHECK(closure_kind_from_dwarf_name("{async_closure#0}") == CLOSURE_ASYNC_BLOCK);
	CHECK(closure_kind_from_dwarf_name("{closure#0}") == CLOSURE_PLAIN);
	CHECK(closure_kind_from_dwarf_name("{closure#12}") == CLOSURE_PLAIN);
	CHECK(closure_kind_from_dwarf_name("{generator#0}") == CLOSURE_GENERATOR);
	CHECK(closure_kind_from_dwarf_name("poll") == CLOSURE_UNKNOWN);
	CHECK(closure_kind_from_dwarf_name(NULL) == CLOSURE_UNKNOWN);
	/* without DWARF: nested in a closure-like body -> async block */
	CHECK(closure_kind_from_name("demo::leaf::{{closure}}") == CLOSURE_ASYNC_FN);
	CHECK(closure_kind_from_name("demo::middle::{{closure}}::{{closure}}") == CLOSURE_ASYNC_BLOCK);
	CHECK(closure_kind_from_name("demo::other::{closure#0}") == CLOSURE_ASYNC_FN);
	CHECK(closure_kind_from_name("demo::f::{closure#0}::{closure#1}") == CLOSURE_ASYNC_BLOCK);
	CHECK_STR(context_class__name(CONTEXT_TASK), "task");
	CHECK_STR(context_class__name(CONTEXT_COMPILER), "compiler-generated");
	CHECK_STR(context_class__name(CONTEXT_USER), "user-implemented");
	CHECK_STR(context_class__name(CONTEXT_ANONYMOUS), "anonymous");
	CHECK_STR(body_kind__name(BODY_ASYNC_FN), "async-fn");
	CHECK_STR(body_kind__name(BODY_RUNTIME), "runtime");
}

/* Count name kinds in a real symbol list: `nm -C -n` lines (ADDR T NAME)
 * when `fields` is 3, `0xADDR NAME` lines when 2. */
static int count_kinds(const char *path, int fields, int counts[5])
{
	char line[8192];
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *name = line;

		line[strcspn(line, "\r\n")] = '\0';
		for (int i = 1; i < fields && name; i++)
			if ((name = strchr(name, ' ')))
				name++;
		if (name)
			counts[classify_name(name)]++;
	}
	fclose(f);
	return 0;
}

/* Where ASYNCTRACE_SHARED_DATA says, else ../shared/data beside the
 * repository (tests run from its root). Missing, the checks fail. */
static void zcore_path(char *out, size_t len, const char *file)
{
	const char *base = getenv("ASYNCTRACE_SHARED_DATA");

	if (!base || !*base)
		base = "../shared/data";
	snprintf(out, len, "%s/zcore-real/%s", base, file);
}

UNIT_TEST(classify_zcore_symbols)
{
	int ksym[5] = { 0 }, log[5] = { 0 };
	char path[4096];

	/* The zCore riscv64 kernel (2022, GenFuture era, legacy demangling). */
	zcore_path(path, sizeof(path), "zcore-sym-246476bf/kernel.sym");
	if (count_kinds(path, 3, ksym) < 0) {
		unit_skip("%s absent, zCore symbol checks skipped\n", path);
		return;
	}
	CHECK(ksym[NAME_OTHER] == 2021);
	CHECK(ksym[NAME_GENFUTURE] == 24);
	CHECK(ksym[NAME_POLL_IMPL] == 10);
	CHECK(ksym[NAME_CLOSURE] == 29);
	CHECK(ksym[NAME_TASK] == 0);
	/* The symbols the 2025 eBPF run attached to (v0 demangling). */
	zcore_path(path, sizeof(path), "derived/zcore-async-fn.from-ce75804-log.sym");
	CHECK(count_kinds(path, 2, log) == 0);
	CHECK(log[NAME_OTHER] == 65 && log[NAME_GENFUTURE] == 24 && log[NAME_POLL_IMPL] == 8 &&
	      log[NAME_CLOSURE] == 32);
}
