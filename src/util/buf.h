/* Growable byte buffer for serialising, and a bounds-checked cursor for
 * parsing untrusted bytes. Both little-endian (the only byte order of the
 * machines we trace: x86_64, riscv64, aarch64). */
#ifndef ASYNCTRACE_UTIL_BUF_H
#define ASYNCTRACE_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "asynctrace assumes a little-endian host"
#endif

struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	int err; /* sticky: -ENOMEM after a failed growth */
};

/* Room for `more` bytes past len (grows by doubling). Returns 0 or the
 * sticky error. */
int buf_reserve(struct buf *b, size_t more);
void buf_put_bytes(struct buf *b, const void *data, size_t len);
void buf_put_u8(struct buf *b, uint8_t v);
void buf_put_u16(struct buf *b, uint16_t v);
void buf_put_u32(struct buf *b, uint32_t v);
void buf_put_u64(struct buf *b, uint64_t v);
/* u32 length then bytes; NULL is written as length 0. */
void buf_put_str(struct buf *b, const char *s);
/* Pad with zeros to a multiple of `align`. */
void buf_align(struct buf *b, size_t align);
void buf_free(struct buf *b);

struct cursor {
	const uint8_t *p;
	size_t left;
	int err; /* sticky: -EINVAL once a read ran past the end or a bound */
};

void cursor_bytes(struct cursor *c, void *out, size_t len);
uint8_t cursor_u8(struct cursor *c);
uint16_t cursor_u16(struct cursor *c);
uint32_t cursor_u32(struct cursor *c);
uint64_t cursor_u64(struct cursor *c);
/* A string written by buf_put_str: malloc'ed, NUL-terminated; NULL for an
 * empty string or on error (then c->err is set). */
char *cursor_str(struct cursor *c, size_t max_len);

#endif
