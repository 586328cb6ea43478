/* What the harnesses share: handing the input to readers that take a
 * path, and the end every importer shares (write the trace, read it back).
 * Library code returns errors; here an unexpected one is a finding, so the
 * helpers abort (libFuzzer then keeps the input as a crash). */
#ifndef ASYNCTRACE_FUZZ_COMMON_H
#define ASYNCTRACE_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

struct import_builder;

/* The input as the contents of one memfd, reused from run to run; returns
 * its path (/proc/self/fd/N), valid until the next call. Readers open
 * and map it as they would a file. */
const char *fuzz_memfd_path(const uint8_t *data, size_t size);

/* A private directory made once per process (under $TMPDIR or /tmp) and
 * removed at exit: for inputs that must be several files, and for the
 * importers' output (the writer refuses a /proc/self/fd path). */
const char *fuzz_tmpdir(void);

/* dir/name into buf; aborts when it does not fit (a harness bug). */
void fuzz_path(char *buf, size_t len, const char *dir, const char *name);

/* Writes data to path (created 0600, truncated); aborts on failure. */
void fuzz_write_file(const char *path, const void *data, size_t size);

/* Writes the imported trace to a tmp file and reads it back with the
 * trace reader and one summary pass: what an import is for. A trace the
 * builder wrote that the reader refuses is a bug: abort. */
void fuzz_import_finish(struct import_builder *b);

#endif
