/* The code addresses of on-CPU samples, turned into functions and source
 * lines before the trace is closed: every executable mapping of the
 * process seen while it ran (the binary, its libraries, the agent), and
 * each address resolved in its file with libdw (elf/lines.h). */
#ifndef ASYNCTRACE_PROBE_FRAMES_H
#define ASYNCTRACE_PROBE_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "trace/trace.h"

struct frame_book;

int frame_book__new(struct frame_book **out);
/* Remembers an address (once). Returns 1 when it is new, 0 when it was
 * known, or -ENOMEM. */
int frame_book__note(struct frame_book *book, uint64_t addr);
/* Whether a mapping seen so far holds addr. */
bool frame_book__covers(const struct frame_book *book, uint64_t addr);
/* Adds the executable mappings of /proc/PID/maps to those seen (a library
 * loaded later, an exec). Returns 0 or a negative errno (process gone). */
int frame_book__read_maps(struct frame_book *book, pid_t pid);
/* Every noted address as a site (function, file, line; NULLs where
 * unknown: "[vdso]", a mapping never seen), in no particular order.
 * Returns 0 or -ENOMEM; *frames is malloc'd. */
int frame_book__resolve(struct frame_book *book, struct trace_site **frames, size_t *count);
void frame_book__free(struct frame_book *book);

#endif
