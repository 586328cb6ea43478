/* On-disk layout of a trace file (docs/trace-format.md says the same in
 * prose). A fixed header, then chunks {type, size, payload}; readers skip
 * chunk types they do not know, so new chunks need no version bump. */
#ifndef ASYNCTRACE_TRACE_FORMAT_H
#define ASYNCTRACE_TRACE_FORMAT_H

#include <stdint.h>

#define TRACE_MAGIC "ASYNCTRC"
#define TRACE_MAGIC_LEN 8
#define TRACE_VERSION_MAJOR 3 /* what the writer writes */
#define TRACE_VERSION_MINOR 1 /* additions a 3.0 reader can ignore (3.1: function flags) */
#define TRACE_VERSION_MAJOR_OLDEST 2 /* still read: 56-byte events in EVENTS chunks */
#define TRACE_EVENT_SIZE_V2 56
#define TRACE_ENDIAN_LITTLE 1

struct trace_file_header {
	char magic[TRACE_MAGIC_LEN];
	uint16_t version_major;
	uint16_t version_minor;
	uint16_t header_size;   /* sizeof this struct: lets a later minor grow it */
	uint8_t endian;         /* TRACE_ENDIAN_LITTLE */
	uint8_t reserved0;
	uint32_t event_size;    /* 2.x: 56, the fixed event size; 3.x: 0, events are encoded */
	uint32_t features;      /* 3.x: TRACE_FEATURE_* bits the file uses; readers refuse others */
};

/* Features a file may use, beyond what its major version says. None is
 * defined yet: a bit set here is a later asynctrace's, and this build
 * refuses the file rather than misread it. */
#define TRACE_FEATURES_KNOWN 0u

enum trace_chunk_type {
	TRACE_CHUNK_META = 1,      /* exactly one, first */
	TRACE_CHUNK_FUNCTIONS = 2, /* exactly one, before any events */
	TRACE_CHUNK_EVENTS = 3,    /* 2.x only, any number: u32 count, u32 0, count events */
	TRACE_CHUNK_THREADS = 4,   /* at most one */
	TRACE_CHUNK_TRAILER = 5,   /* exactly one, last: its presence means complete */
	TRACE_CHUNK_SITES = 6,     /* at most one: resolved code addresses */
	TRACE_CHUNK_MAPPING = 7,   /* at most one: u64 load bias of the target */
	TRACE_CHUNK_STREAM = 8,    /* 3.x, any number: a stream header, then encoded events */
	TRACE_CHUNK_SAMPLES = 9,   /* 3.0+, any number: struct trace_samples_header, then samples */
	TRACE_CHUNK_FRAMES = 10,   /* 3.0+, at most one: the sampled addresses resolved, as SITES */
};

/* A SAMPLES chunk's payload starts with this; then `count` samples, each
 * u64 ts, u32 tid, u16 kind (enum trace_sample_kind), u16 frame count,
 * that many u64 user addresses (the sampled one first, then return
 * addresses minus one). Older readers skip the chunk. */
struct trace_samples_header {
	uint32_t count;
	uint32_t hz;               /* the sampling frequency asked for */
	uint64_t lost;             /* samples the kernel dropped since the previous chunk */
	uint32_t crc32;            /* zlib crc32() of the samples' bytes */
	uint32_t flags;            /* none defined: readers skip a chunk with others */
};

#define TRACE_MAX_SAMPLE_FRAMES 1024

struct trace_chunk_header {
	uint32_t type;
	uint32_t reserved;
	uint64_t size;             /* payload bytes after this header */
};

/* A STREAM chunk's payload starts with this; the encoded events follow
 * (src/trace/codec.h). A stream is one thread instance: its chunks come in
 * its order, other streams' chunks between them. */
struct trace_stream_header {
	uint64_t stream;           /* never reused within a file; not UINT64_MAX */
	uint32_t tid;
	uint32_t pid;
	uint32_t count;            /* events */
	uint32_t encoded_bytes;
	uint64_t first_ts;         /* of the first event */
	uint64_t last_ts;          /* of the last event */
	uint32_t crc32;            /* zlib crc32() of the encoded bytes */
	uint32_t flags;            /* none defined; see TRACE_STREAM_ZSTD */
};

/* Reserved for zstd-compressed encoded bytes. Not written: measured, it
 * did not pay (docs/performance.md); readers refuse any flag. */
#define TRACE_STREAM_ZSTD 0x1

/* Upper bounds a reader enforces before allocating. */
#define TRACE_MAX_STRING (1u << 20)
#define TRACE_MAX_FUNCTIONS (1u << 24)
#define TRACE_MAX_THREADS (1u << 22)
#define TRACE_MAX_SITES (1u << 22)
#define TRACE_MAX_AWAITS (1u << 16)
#define TRACE_MAX_STREAM_EVENTS (1u << 20) /* per chunk; the writer puts at most 8192 */

#endif
