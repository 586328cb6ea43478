/* On-disk layout of a trace file (docs/trace-format.md says the same in
 * prose). A fixed header, then chunks {type, size, payload}; readers skip
 * chunk types they do not know, so new chunks need no version bump. */
#ifndef ASYNCTRACE_TRACE_FORMAT_H
#define ASYNCTRACE_TRACE_FORMAT_H

#include <stdint.h>

#define TRACE_MAGIC "ASYNCTRC"
#define TRACE_MAGIC_LEN 8
#define TRACE_VERSION_MAJOR 2 /* readers refuse other majors */
#define TRACE_VERSION_MINOR 0 /* additions a v1 reader can ignore */
#define TRACE_ENDIAN_LITTLE 1

struct trace_file_header {
	char magic[TRACE_MAGIC_LEN];
	uint16_t version_major;
	uint16_t version_minor;
	uint16_t header_size;   /* sizeof this struct: lets a later minor grow it */
	uint8_t endian;         /* TRACE_ENDIAN_LITTLE */
	uint8_t reserved0;
	uint32_t event_size;    /* sizeof(struct trace_event) on disk */
	uint32_t reserved1;
};

enum trace_chunk_type {
	TRACE_CHUNK_META = 1,      /* exactly one, first */
	TRACE_CHUNK_FUNCTIONS = 2, /* exactly one, before any events */
	TRACE_CHUNK_EVENTS = 3,    /* any number: u32 count, u32 0, count events */
	TRACE_CHUNK_THREADS = 4,   /* at most one */
	TRACE_CHUNK_TRAILER = 5,   /* exactly one, last: its presence means complete */
	TRACE_CHUNK_SITES = 6,     /* at most one: resolved code addresses */
	TRACE_CHUNK_MAPPING = 7,   /* at most one: u64 load bias of the target */
};

struct trace_chunk_header {
	uint32_t type;
	uint32_t reserved;
	uint64_t size;             /* payload bytes after this header */
};

/* Upper bounds a reader enforces before allocating. */
#define TRACE_MAX_STRING (1u << 20)
#define TRACE_MAX_FUNCTIONS (1u << 24)
#define TRACE_MAX_THREADS (1u << 22)
#define TRACE_MAX_SITES (1u << 22)
#define TRACE_MAX_AWAITS (1u << 16)

#endif
