/* Writing gigabytes of text to a file descriptor: the caller formats into
 * large buffers of ours and a writer thread write()s each full one while
 * the caller fills the next. stdio's 4 KiB writes (one syscall per 4 KiB)
 * cost more system time than formatting the text (docs/performance.md).
 *
 * The caller asks for room (outbuf__room), writes at most that many bytes
 * at the pointer it got and says where it stopped (outbuf__advance). */
#ifndef ASYNCTRACE_UTIL_OUTBUF_H
#define ASYNCTRACE_UTIL_OUTBUF_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* What one outbuf__room may ask for at most. */
#define OUTBUF_MAX_ROOM (64u << 10)

struct outbuf_shared;

struct outbuf {
	char *pos;   /* where the next byte goes */
	char *limit; /* the end of the room in the current buffer */
	struct outbuf_shared *shared;
};

/* Starts the writer thread on out's descriptor, which it write()s to
 * directly: out must have nothing buffered (fflush it first) and is not
 * used by the caller until outbuf__close, nor closed by it. A stream
 * without a descriptor (open_memstream) is written with fwrite. Returns 0
 * or a negative errno. */
int outbuf__open(struct outbuf *ob, FILE *out);
/* Hands the current buffer to the writer and takes a free one. */
void outbuf__swap(struct outbuf *ob);
/* Writes what is left, stops the writer. Returns 0 or the first write
 * error (negative errno). */
int outbuf__close(struct outbuf *ob);

/* At least n (<= OUTBUF_MAX_ROOM) bytes of room at the returned pointer. */
static inline char *outbuf__room(struct outbuf *ob, size_t n)
{
	if ((size_t)(ob->limit - ob->pos) < n)
		outbuf__swap(ob);
	return ob->pos;
}

static inline void outbuf__advance(struct outbuf *ob, char *end)
{
	ob->pos = end;
}

/* Any length (split over buffers when needed). */
void outbuf__put(struct outbuf *ob, const void *data, size_t len);

#endif
