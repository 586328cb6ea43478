#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>

#include "export/perfetto_pack.h"

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2 };

#define TRACE_PACKET 1        /* Trace.packet */
#define COMPRESSED_PACKETS 50 /* TracePacket.compressed_packets */

int pb_buf__grow(struct buf *b, size_t more)
{
	return buf_reserve(b, more);
}

static inline int reserve(struct buf *b, size_t more)
{
	return pb_buf__reserve(b, more);
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

static void tag(struct buf *b, uint32_t field, unsigned wire)
{
	pb_varint(b, (uint64_t)field << 3 | wire);
}

void pb_fixed64(struct buf *b, uint32_t field, uint64_t v)
{
	tag(b, field, WIRE_FIXED64);
	if (reserve(b, 8))
		return;
	memcpy(b->data + b->len, &v, 8); /* little-endian, as the wire (buf.h asserts the host is) */
	b->len += 8;
}

void pb_bytes(struct buf *b, uint32_t field, const void *data, size_t len)
{
	tag(b, field, WIRE_LEN);
	pb_varint(b, len);
	if (reserve(b, len))
		return;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
}

void pb_string(struct buf *b, uint32_t field, const char *s)
{
	pb_bytes(b, field, s, strlen(s));
}

/* One byte is kept for the length: nearly every message we nest is
 * shorter than 128 bytes, so end rarely has to move its content. */
size_t pb_begin(struct buf *b, uint32_t field)
{
	tag(b, field, WIRE_LEN);
	if (reserve(b, 1))
		return 0;
	b->data[b->len++] = 0;
	return b->len;
}

void pb_end(struct buf *b, size_t mark)
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


/* The compressing thread and the one bundle it may hold. */
struct pb_compressor {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct buf pending;  /* a full bundle handed over; len 0: none */
	bool quit;
	int err;                /* its first failure, sticky */
	struct pb_writer *w;
};

static int write_out(struct pb_writer *w, const struct buf *b)
{
	if (b->len && fwrite(b->data, 1, b->len, w->out) != b->len)
		return -EIO;
	w->bytes_written += b->len;
	return 0;
}

/* A bundle as one TracePacket { compressed_packets: deflate(bundle) },
 * built in d and written. Returns 0 or a negative errno. */
static int deflate_and_write(struct pb_writer *w, const struct buf *bundle, struct buf *d)
{
	size_t packet, field, zlen;

	if (!w->level)
		return write_out(w, bundle);
	/* libdeflate, not zlib: the same zlib stream (what Perfetto inflates),
	 * CPU 5.4 -> 4.3 s for the whole export at level 1, 9 % larger
	 * (docs/perfetto-export.md).
	 * One thread at a time compresses: the compressor thread, or this
	 * one when there is none. */
	if (!w->deflater && !(w->deflater = libdeflate_alloc_compressor(w->level)))
		return -ENOMEM;
	zlen = libdeflate_zlib_compress_bound(w->deflater, bundle->len);
	d->len = 0;
	packet = pb_begin(d, TRACE_PACKET);
	field = pb_begin(d, COMPRESSED_PACKETS);
	if (reserve(d, zlen))
		return d->err;
	zlen = libdeflate_zlib_compress(w->deflater, bundle->data, bundle->len, d->data + d->len, zlen);
	if (!zlen)
		return -ENOMEM; /* cannot happen: the bound is enough */
	d->len += zlen;
	pb_end(d, field);
	pb_end(d, packet);
	return d->err ? d->err : write_out(w, d);
}

static void *compress_loop(void *arg)
{
	struct pb_compressor *c = arg;
	int err;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->pending.len && !c->quit)
			pthread_cond_wait(&c->changed, &c->lock);
		if (!c->pending.len)
			break;
		pthread_mutex_unlock(&c->lock);
		/* the writer's thread does not touch pending, deflated or out now;
		 * c->err is this thread's alone to write */
		err = c->err ? 0 : deflate_and_write(c->w, &c->pending, &c->w->deflated);

		pthread_mutex_lock(&c->lock);
		if (err && !c->err)
			c->err = err;
		c->pending.len = 0;
		pthread_cond_broadcast(&c->changed);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void start_compressor(struct pb_writer *w)
{
	struct pb_compressor *c = calloc(1, sizeof(*c));

	if (!c)
		return; /* compressed on the writer's thread instead */
	c->w = w;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->changed, NULL);
	if (pthread_create(&c->thread, NULL, compress_loop, c)) {
		pthread_cond_destroy(&c->changed);
		pthread_mutex_destroy(&c->lock);
		free(c);
		return;
	}
	w->compressor = c;
}

/* Waits until the thread holds no bundle; its error, if any. */
static int wait_idle(struct pb_compressor *c)
{
	int err;

	pthread_mutex_lock(&c->lock);
	while (c->pending.len)
		pthread_cond_wait(&c->changed, &c->lock);
	err = c->err;
	pthread_mutex_unlock(&c->lock);
	return err;
}

static void stop_compressor(struct pb_writer *w)
{
	struct pb_compressor *c = w->compressor;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->quit = true;
	pthread_cond_broadcast(&c->changed);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	pthread_cond_destroy(&c->changed);
	pthread_mutex_destroy(&c->lock);
	buf_free(&c->pending);
	free(c);
	w->compressor = NULL;
}

void pb_writer__init(struct pb_writer *w, FILE *out, int level)
{
	*w = (struct pb_writer){ .out = out, .level = level };
	if (level)
		start_compressor(w);
}

size_t pb_writer__begin_packet(struct pb_writer *w)
{
	w->packets++;
	return pb_begin(&w->bundle, TRACE_PACKET);
}

/* The full bundle out: to the thread (swapping buffers: the one it gave
 * back becomes the next bundle), or deflated and written here. */
static int write_bundle(struct pb_writer *w)
{
	struct pb_compressor *c = w->compressor;
	struct buf spare;
	int err;

	if (!c)
		return w->err = deflate_and_write(w, &w->bundle, &w->deflated);
	err = wait_idle(c);
	if (err)
		return w->err = err;
	pthread_mutex_lock(&c->lock);
	spare = c->pending;
	c->pending = w->bundle;
	w->bundle = spare;
	w->bundle.len = 0;
	pthread_cond_broadcast(&c->changed);
	pthread_mutex_unlock(&c->lock);
	return 0;
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
	if (w->compressor) {
		int err = wait_idle(w->compressor);

		if (!w->err)
			w->err = err;
		stop_compressor(w);
	}
	buf_free(&w->bundle);
	buf_free(&w->deflated);
	if (w->deflater)
		libdeflate_free_compressor(w->deflater);
	w->deflater = NULL;
	return w->err;
}
