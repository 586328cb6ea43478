#include "util/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int buf_reserve(struct buf *b, size_t more)
{
	size_t cap;
	uint8_t *data;

	if (b->err)
		return b->err;
	if (b->len + more <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more)
		cap *= 2;
	data = realloc(b->data, cap);
	if (!data)
		return b->err = -ENOMEM;
	b->data = data;
	b->cap = cap;
	return 0;
}

void buf_put_bytes(struct buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len))
		return;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
}

void buf_put_u8(struct buf *b, uint8_t v) { buf_put_bytes(b, &v, sizeof(v)); }
void buf_put_u16(struct buf *b, uint16_t v) { buf_put_bytes(b, &v, sizeof(v)); }
void buf_put_u32(struct buf *b, uint32_t v) { buf_put_bytes(b, &v, sizeof(v)); }
void buf_put_u64(struct buf *b, uint64_t v) { buf_put_bytes(b, &v, sizeof(v)); }

void buf_put_str(struct buf *b, const char *s)
{
	size_t len = s ? strlen(s) : 0;

	buf_put_u32(b, (uint32_t)len);
	buf_put_bytes(b, s, len);
}

void buf_align(struct buf *b, size_t align)
{
	static const uint8_t zeros[16];

	while (b->len % align)
		buf_put_bytes(b, zeros, align - b->len % align > sizeof(zeros) ? sizeof(zeros)
									       : align - b->len % align);
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->err = 0;
}

void cursor_bytes(struct cursor *c, void *out, size_t len)
{
	if (c->err || len > c->left) {
		c->err = -EINVAL;
		memset(out, 0, len);
		return;
	}
	memcpy(out, c->p, len);
	c->p += len;
	c->left -= len;
}

uint8_t cursor_u8(struct cursor *c) { uint8_t v; cursor_bytes(c, &v, sizeof(v)); return v; }
uint16_t cursor_u16(struct cursor *c) { uint16_t v; cursor_bytes(c, &v, sizeof(v)); return v; }
uint32_t cursor_u32(struct cursor *c) { uint32_t v; cursor_bytes(c, &v, sizeof(v)); return v; }
uint64_t cursor_u64(struct cursor *c) { uint64_t v; cursor_bytes(c, &v, sizeof(v)); return v; }

char *cursor_str(struct cursor *c, size_t max_len)
{
	uint32_t len = cursor_u32(c);
	char *s;

	if (c->err)
		return NULL;
	if (len > max_len || len > c->left) {
		c->err = -EINVAL;
		return NULL;
	}
	if (len == 0)
		return NULL;
	s = malloc((size_t)len + 1);
	if (!s) {
		c->err = -ENOMEM;
		return NULL;
	}
	memcpy(s, c->p, len);
	s[len] = '\0';
	c->p += len;
	c->left -= len;
	return s;
}
