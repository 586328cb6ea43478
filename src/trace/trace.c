#include "trace/trace.h"

#include <stdlib.h>

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
	fn->name = fn->mangled = fn->source_file = NULL;
}

const char *trace_end_reason__name(uint32_t reason)
{
	switch (reason) {
	case TRACE_END_TARGET_EXITED: return "target exited";
	case TRACE_END_SIGNAL: return "interrupted";
	case TRACE_END_DURATION: return "duration elapsed";
	default: return "unknown";
	}
}
