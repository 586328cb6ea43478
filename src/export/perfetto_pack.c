#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "export/perfetto_pack.h"

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2 };

#define TRACE_PACKET 1        /* Trace.packet */
#define COMPRESSED_PACKETS 50 /* TracePacket.compressed_packets */

static int grow(struct pb_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 256;
	uint8_t *data;

	if (b->err)
		return b->err;
	while (cap < b->len + more)
		cap *= 2;
	data = realloc(b->data, cap);
	if (!data)
		return b->err = -ENOMEM;
	b->data = data;
	b->cap = cap;
	return 0;
}

/* Every field's append checks for room: the check is inline, the growth
 * (rare) is not. */
static inline int reserve(struct pb_buf *b, size_t more)
{
	return b->len + more <= b->cap && !b->err ? 0 : grow(b, more);
}

static size_t varint_size(uint64_t v)
{
	size_t n = 1;

	while (v > 0x7f) {
		v >>= 7;
		n++;
	}
	return n;
}

static void put_varint(uint8_t *at, uint64_t v)
{
	while (v > 0x7f) {
		*at++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*at = (uint8_t)v;
}

void pb_varint(struct pb_buf *b, uint64_t v)
{
	uint8_t *at;

	if (reserve(b, 10))
		return;
	at = b->data + b->len;
	while (v > 0x7f) {
		*at++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*at++ = (uint8_t)v;
	b->len = (size_t)(at - b->data);
}

static void tag(struct pb_buf *b, uint32_t field, unsigned wire)
{
	pb_varint(b, (uint64_t)field << 3 | wire);
}

void pb_uint(struct pb_buf *b, uint32_t field, uint64_t v)
{
	tag(b, field, WIRE_VARINT);
	pb_varint(b, v);
}

void pb_fixed64(struct pb_buf *b, uint32_t field, uint64_t v)
{
	tag(b, field, WIRE_FIXED64);
	if (reserve(b, 8))
		return;
	memcpy(b->data + b->len, &v, 8); /* little-endian, as the wire (buf.h asserts the host is) */
	b->len += 8;
}

void pb_bytes(struct pb_buf *b, uint32_t field, const void *data, size_t len)
{
	tag(b, field, WIRE_LEN);
	pb_varint(b, len);
	if (reserve(b, len))
		return;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
}

void pb_string(struct pb_buf *b, uint32_t field, const char *s)
{
	pb_bytes(b, field, s, strlen(s));
}

/* One byte is kept for the length: nearly every message we nest is
 * shorter than 128 bytes, so end rarely has to move its content. */
size_t pb_begin(struct pb_buf *b, uint32_t field)
{
	tag(b, field, WIRE_LEN);
	if (reserve(b, 1))
		return 0;
	b->data[b->len++] = 0;
	return b->len;
}

void pb_end(struct pb_buf *b, size_t mark)
{
	size_t len, extra;

	if (b->err || !mark)
		return;
	len = b->len - mark;
	extra = varint_size(len) - 1;
	if (extra) {
		if (reserve(b, extra))
			return;
		memmove(b->data + mark + extra, b->data + mark, len);
		b->len += extra;
	}
	put_varint(b->data + mark - 1, len);
}

void pb_buf_free(struct pb_buf *b)
{
	free(b->data);
	*b = (struct pb_buf){ 0 };
}

void pb_writer__init(struct pb_writer *w, FILE *out, int level)
{
	*w = (struct pb_writer){ .out = out, .level = level };
}

size_t pb_writer__begin_packet(struct pb_writer *w)
{
	w->packets++;
	return pb_begin(&w->bundle, TRACE_PACKET);
}

static int write_out(struct pb_writer *w, const struct pb_buf *b)
{
	if (b->len && fwrite(b->data, 1, b->len, w->out) != b->len)
		return w->err = -EIO;
	w->bytes_written += b->len;
	return 0;
}

/* The bundle as one TracePacket { compressed_packets: deflate(bundle) }. */
static int write_bundle(struct pb_writer *w)
{
	struct pb_buf *d = &w->deflated;
	uLongf zlen = compressBound(w->bundle.len);
	size_t packet, field;

	if (!w->level)
		return write_out(w, &w->bundle);
	d->len = 0;
	packet = pb_begin(d, TRACE_PACKET);
	field = pb_begin(d, COMPRESSED_PACKETS);
	if (reserve(d, zlen))
		return w->err = d->err;
	if (compress2(d->data + d->len, &zlen, w->bundle.data, w->bundle.len, w->level) != Z_OK)
		return w->err = -ENOMEM; /* zlib fails only for memory, the bound being enough */
	d->len += zlen;
	pb_end(d, field);
	pb_end(d, packet);
	if (d->err)
		return w->err = d->err;
	return write_out(w, d);
}

int pb_writer__end_packet(struct pb_writer *w, size_t mark)
{
	pb_end(&w->bundle, mark);
	if (w->err)
		return w->err;
	if (w->bundle.err)
		return w->err = w->bundle.err;
	if (w->bundle.len < PB_BUNDLE_BYTES)
		return 0;
	if (write_bundle(w))
		return w->err;
	w->bundle.len = 0;
	return 0;
}

int pb_writer__finish(struct pb_writer *w)
{
	if (!w->err && w->bundle.err)
		w->err = w->bundle.err;
	if (!w->err && w->bundle.len)
		write_bundle(w);
	pb_buf_free(&w->bundle);
	pb_buf_free(&w->deflated);
	return w->err;
}
