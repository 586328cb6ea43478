#include "trace_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/writer.h"

char *trace_fixture__temp_path(void)
{
	char *path = strdup("/tmp/asynctrace-unit-XXXXXX");
	int fd = path ? mkstemp(path) : -1;

	if (fd >= 0)
		close(fd);
	return path;
}

static int write_events(const char *path, const struct trace_function *fns, size_t fn_count,
			const struct trace_event *events, size_t count)
{
	struct trace_meta meta = { .clock = 1, .pid = 1, .target_path = "/bin/fixture", .capture = "test" };
	struct trace_trailer trailer = { .end_reason = TRACE_END_TARGET_EXITED, .exit_status = 0 };
	struct trace_writer *w;
	int err = trace_writer__open(&w, path);

	if (err)
		return err;
	err = trace_writer__write_meta(w, &meta);
	err = err ? err : trace_writer__write_functions(w, fns, fn_count);
	for (size_t i = 0; !err && i < count; i++)
		err = trace_writer__add_event(w, &events[i]);
	err = err ? err : trace_writer__finish(w, &trailer);
	trace_writer__free(w);
	return err;
}

struct trace_file *trace_fixture__open(const struct trace_function *fns, size_t fn_count,
				       const struct trace_event *events, size_t count)
{
	char *path = trace_fixture__temp_path(), why[256] = "";
	struct trace_file *t = NULL;

	if (!path)
		return NULL;
	if (write_events(path, fns, fn_count, events, count) != 0 ||
	    trace_file__open(&t, path, why, sizeof(why)) != 0)
		printf("note: trace fixture: %s\n", why[0] ? why : "cannot write");
	unlink(path);
	free(path);
	return t;
}
