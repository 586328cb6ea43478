#include <stdarg.h>
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

void unit_register(struct unit_test *test)
{
	test->next = unit_tests;
	unit_tests = test;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	for (struct unit_test *t = unit_tests; t; t = t->next) {
		int failures = 0, skipped_before = skipped_checks;

		if (argc > 1 && !strstr(t->name, argv[1]))
			continue;
		t->run(&failures);
		if (skipped_checks > skipped_before && getenv("ASYNCTRACE_STRICT"))
			failures++;
		printf("%s unit: %s\n", failures ? "FAIL" : "ok  ", t->name);
		if (failures)
			failed++;
		else
			passed++;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
