#include "trace/trace.h"

#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "util/u64map.h"

void trace_meta__free(struct trace_meta *meta)
{
	free(meta->target_path);
	free(meta->command);
	free(meta->capture);
	meta->target_path = meta->command = meta->capture = NULL;
}

void trace_function__free(struct trace_function *fn)
{
	free(fn->name);
	free(fn->mangled);
	free(fn->source_file);
	for (uint32_t i = 0; fn->awaits && i < fn->await_count; i++)
		free(fn->awaits[i].file);
	free(fn->awaits);
	fn->name = fn->mangled = fn->source_file = NULL;
	fn->awaits = NULL;
	fn->await_count = 0;
}

void trace_site__free(struct trace_site *site)
{
	free(site->file);
	free(site->function);
	site->file = site->function = NULL;
}

const struct await_point *trace_function__await(const struct trace_function *fn, uint64_t state)
{
	for (uint32_t i = 0; i < fn->await_count; i++)
		if (fn->awaits[i].state == state)
			return &fn->awaits[i];
	return NULL;
}

uint32_t trace_function__await_line(const struct trace_function *fn, uint64_t state)
{
	const struct await_point *point = trace_function__await(fn, state);

	return point ? point->line : 0;
}

const char *trace_function__await_file(const struct trace_function *fn, uint32_t line)
{
	for (uint32_t i = 0; i < fn->await_count; i++)
		if (fn->awaits[i].line == line)
			return fn->awaits[i].file ? fn->awaits[i].file : fn->source_file;
	return fn->source_file;
}

const char *trace_end_reason__name(uint32_t reason)
{
	switch (reason) {
	case TRACE_END_TARGET_EXITED: return "target exited";
	case TRACE_END_SIGNAL: return "interrupted";
	case TRACE_END_DURATION: return "duration elapsed";
	case TRACE_END_IMPORTED: return "imported";
	case 0: return "cut short (no trailer)";
	default: return "unknown";
	}
}

const char *context_class__name(enum context_class context)
{
	switch (context) {
	case CONTEXT_TASK: return "task";
	case CONTEXT_COMPILER: return "compiler-generated";
	case CONTEXT_USER: return "user-implemented";
	case CONTEXT_ANONYMOUS: return "anonymous";
	case CONTEXT_FUNCTION: return "function";
	}
	return "unknown";
}

int trace_functions__first_of_name(const struct trace_function *fns, size_t count, uint32_t *first)
{
	struct u64map by_name = { 0 };
	int err = 0;

	for (size_t i = 0; i < count && !err; i++) {
		uint64_t key = hash_string(fns[i].name) | 1;
		uintptr_t seen;

		/* Chain on collision: successive keys until the name matches. */
		while ((seen = (uintptr_t)u64map_get(&by_name, key)) && strcmp(fns[seen - 1].name, fns[i].name))
			key += 2;
		first[i] = seen ? (uint32_t)(seen - 1) : (uint32_t)i;
		if (!seen)
			err = u64map_put(&by_name, key, (void *)(uintptr_t)(i + 1));
	}
	u64map_free(&by_name);
	return err;
}
