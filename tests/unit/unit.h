/* A tiny unit-test harness: UNIT_TEST(name) { ... CHECK(cond); ... }
 * Tests register themselves (constructor), main.c runs them all and prints
 * the closing line "N passed, N failed". */
#ifndef ASYNCTRACE_TESTS_UNIT_H
#define ASYNCTRACE_TESTS_UNIT_H

#include <stdio.h>
#include <string.h>

struct unit_test {
	const char *name;
	void (*run)(int *failures);
	struct unit_test *next;
};

void unit_register(struct unit_test *test);
/* A check that could not run (a tool or file missing): a note, and a
 * failure when ASYNCTRACE_STRICT is set (make test sets it: CI must run
 * every check). */
void unit_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A failure found outside a test's body (in a fixture's set-up): the test
 * running fails, whatever its own checks say. */
void unit_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A path in the build directory the tests run against: $ASYNCTRACE_BUILD
 * (tests/run.sh and `make unit` set it), else build/. The string lives
 * until the run ends. */
const char *unit_build_path(const char *relative);

#define UNIT_TEST(fn)                                                      \
	static void fn(int *unit_failures_);                               \
	static struct unit_test unit_test_##fn = { #fn, fn, NULL };        \
	__attribute__((constructor)) static void unit_register_##fn(void) \
	{                                                                  \
		unit_register(&unit_test_##fn);                            \
	}                                                                  \
	static void fn(int *unit_failures_)

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, \
				__LINE__, #cond);                                \
			(*unit_failures_)++;                                     \
		}                                                                \
	} while (0)

#define CHECK_STR(got, want)                                                        \
	do {                                                                        \
		const char *g_ = (got), *w_ = (want);                               \
		if (!g_ || strcmp(g_, w_) != 0) {                                   \
			fprintf(stderr, "  %s:%d: got \"%s\", want \"%s\"\n", __FILE__, \
				__LINE__, g_ ? g_ : "(null)", w_);                  \
			(*unit_failures_)++;                                        \
		}                                                                   \
	} while (0)

#endif
