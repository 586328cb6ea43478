#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "unit.h"

static struct unit_test *unit_tests;
static int skipped_checks;

void unit_skip(const char *fmt, ...)
{
	va_list ap;

	printf("note: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	skipped_checks++;
}

struct build_path {
	struct build_path *next;
	char path[];
};
static struct build_path *build_paths;

const char *unit_build_path(const char *relative)
{
	const char *base = getenv("ASYNCTRACE_BUILD");
	size_t len;
	struct build_path *p;

	if (!base || !*base)
		base = "build";
	len = strlen(base) + strlen(relative) + 2;
	if (!(p = malloc(sizeof(*p) + len)))
		abort(); /* a test run out of memory has nothing to report */
	snprintf(p->path, len, "%s/%s", base, relative);
	p->next = build_paths;
	build_paths = p;
	return p->path;
}

static int fixture_failures;

void unit_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "  ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fixture_failures++;
}

void unit_register(struct unit_test *test)
{
	test->next = unit_tests;
	unit_tests = test;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	for (struct unit_test *t = unit_tests; t; t = t->next) {
		int failures = 0, skipped_before = skipped_checks, fixture_before = fixture_failures;

		if (argc > 1 && !strstr(t->name, argv[1]))
			continue;
		t->run(&failures);
		failures += fixture_failures - fixture_before;
		if (skipped_checks > skipped_before && getenv("ASYNCTRACE_STRICT"))
			failures++;
		printf("%s unit: %s\n", failures ? "FAIL" : "ok  ", t->name);
		if (failures)
			failed++;
		else
			passed++;
	}
	while (build_paths) {
		struct build_path *next = build_paths->next;

		free(build_paths);
		build_paths = next;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
