/* The SAMPLES and FRAMES chunks of a trace (asynctrace profile): read into
 * struct trace_file's sample arrays. Private to the reader. */
#ifndef ASYNCTRACE_TRACE_SAMPLES_H
#define ASYNCTRACE_TRACE_SAMPLES_H

#include <stddef.h>
#include <stdint.h>

struct trace_file;

/* One SAMPLES chunk's payload. Returns 0, -EBADMSG (checksum mismatch: the
 * chunk is skipped and counted), -ENOTSUP (flags of a later version),
 * -EINVAL (malformed), -ENOMEM. */
int trace_samples__add_chunk(struct trace_file *t, const uint8_t *payload, size_t size);
/* After the last chunk: samples by thread, then time; frames by address.
 * Returns 0 or -ENOMEM. */
int trace_samples__finish(struct trace_file *t);

#endif
