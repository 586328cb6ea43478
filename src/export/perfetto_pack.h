/* Protobuf wire encoding for the Perfetto export, by hand: varints into a
 * byte buffer, nested messages whose length is patched in when they close,
 * and the trace file's framing. protobuf-c packs a message from a tree of
 * structs, which for tens of millions of tiny packets costs more than the
 * packets themselves; here a packet is a few appends to one buffer.
 *
 * The file is a perfetto.protos.Trace: `repeated TracePacket packet = 1`.
 * Packets are gathered in bundles of about 512 KiB and each bundle is
 * written as one TracePacket whose `compressed_packets` (field 50) holds
 * the bundle deflated (a zlib stream), as Perfetto's tracing service does
 * with `compression_type: COMPRESSION_TYPE_DEFLATE`; trace_processor and
 * ui.perfetto.dev inflate them in place. */
#ifndef ASYNCTRACE_EXPORT_PERFETTO_PACK_H
#define ASYNCTRACE_EXPORT_PERFETTO_PACK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/buf.h"

/* Packets are built in util/buf.h's growable buffer. */

/* Room for `more` bytes: the check is inline (every append makes it), the
 * growth is not. Returns 0 or the buffer's sticky error. */
int pb_buf__grow(struct buf *b, size_t more);

static inline int pb_buf__reserve(struct buf *b, size_t more)
{
	return b->len + more <= b->cap && !b->err ? 0 : pb_buf__grow(b, more);
}

/* Inline: several per event, a third of the export's time as calls. */
static inline void pb_varint(struct buf *b, uint64_t v)
{
	uint8_t *at;

	if (pb_buf__reserve(b, 10))
		return;
	at = b->data + b->len;
	while (v > 0x7f) {
		*at++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*at++ = (uint8_t)v;
	b->len = (size_t)(at - b->data);
}

/* A varint field: tag (field, wire type 0) and value. */
static inline void pb_uint(struct buf *b, uint32_t field, uint64_t v)
{
	pb_varint(b, (uint64_t)field << 3); /* wire type 0 */
	pb_varint(b, v);
}
void pb_fixed64(struct buf *b, uint32_t field, uint64_t v);
void pb_bytes(struct buf *b, uint32_t field, const void *data, size_t len);
void pb_string(struct buf *b, uint32_t field, const char *s);
/* A length-delimited submessage: its fields go between begin and end,
 * which writes the length in front of them. Marks nest. */
size_t pb_begin(struct buf *b, uint32_t field);
void pb_end(struct buf *b, size_t mark);

/* Bytes of packets gathered before a bundle is deflated: large enough
 * that deflate finds the repeats between packets (its window is 32 KiB,
 * so more buys only fewer bundle headers), small enough to stay in cache. */
#define PB_BUNDLE_BYTES (512u * 1024)

struct pb_compressor;
struct libdeflate_compressor;

struct pb_writer {
	FILE *out;
	struct buf bundle;   /* packets, each framed as Trace.packet */
	struct buf deflated;
	int level;              /* deflate level (1-12); 0: write packets uncompressed */
	struct libdeflate_compressor *deflater;
	uint64_t packets;
	uint64_t bytes_written;
	int err;
	/* Deflate is a third of the export: full bundles go to a thread that
	 * compresses and writes them, in order, while the next one fills.
	 * NULL: done on the caller's thread (level 0, or no thread). */
	struct pb_compressor *compressor;
};

/* level: a libdeflate compression level (1-12), or 0 to write plain packets. */
void pb_writer__init(struct pb_writer *w, FILE *out, int level);
/* A TracePacket: its fields go into w->bundle between begin and end. */
size_t pb_writer__begin_packet(struct pb_writer *w);
/* Closes the packet; writes the bundle out when it is full. Returns 0 or
 * a negative errno (sticky). */
int pb_writer__end_packet(struct pb_writer *w, size_t mark);
/* Writes what is gathered and frees the buffers. Returns 0 or a negative
 * errno: the first error of the whole run. */
int pb_writer__finish(struct pb_writer *w);

#endif
