/* A uftrace.data directory (`uftrace record`) as import records: the info
 * header, task.txt (tasks, sessions, dlopens), each session's sid-*.map
 * and the modules' *.sym tables, perf-cpu*.dat's COMM records (thread
 * names) and one TID.dat of 16-byte records per thread. */
#ifndef ASYNCTRACE_IMPORT_UFTRACE_H
#define ASYNCTRACE_IMPORT_UFTRACE_H

#include <stddef.h>
#include <stdint.h>

#include "import/import.h"

/* What went wrong, as one line naming the file (and record), for the
 * command to print. */
#define UFTRACE_WHY_LEN 512

struct uftrace_counts {
	uint64_t records;       /* 16-byte records read, all kinds */
	uint64_t entries, exits;
	uint64_t events;        /* EVENT records (sched, watch, ...): skipped */
	uint64_t lost_records;  /* LOST records: the buffer overflowed */
	uint64_t lost_events;   /* the events they say were dropped */
	uint64_t unresolved;    /* entries/exits in no map or symbol */
	uint64_t threads;       /* TID.dat files read */
};

struct uftrace_data;

/* Reads everything but the records. Returns 0, or a negative errno with
 * `why` saying which file and what (missing dir, no info, bad magic). */
int uftrace_data__open(struct uftrace_data **out, const char *dir, char *why, size_t why_len);
void uftrace_data__free(struct uftrace_data *d);

/* The clock the timestamps are on (`record --clock`, CLOCK_MONOTONIC by
 * default) and the recorded machine (EM_X86_64, ... or 0). */
uint32_t uftrace_data__clock(const struct uftrace_data *d);
uint16_t uftrace_data__machine(const struct uftrace_data *d);

/* Every thread's records into `b` (entries and exits at their function's
 * runtime address, with its demangled name and the recorded depth) and
 * the threads' names. Returns 0, or a negative errno with `why` (a
 * truncated file, a record with bad magic, argument data). */
int uftrace_data__import(struct uftrace_data *d, struct import_builder *b, struct uftrace_counts *counts,
			 char *why, size_t why_len);

/* One record's bitfield (the u64 after the timestamp), decoded. */
struct uftrace_bits {
	uint8_t type;    /* UFTRACE_ENTRY .. UFTRACE_EVENT */
	uint8_t more;    /* argument, return value or event data follows */
	uint8_t magic;   /* UFTRACE_RECORD_MAGIC */
	uint16_t depth;
	uint64_t addr;   /* 48 bits: the function's address; LOST: the count */
};

enum { UFTRACE_ENTRY, UFTRACE_EXIT, UFTRACE_LOST, UFTRACE_EVENT };
#define UFTRACE_RECORD_MAGIC 5

void uftrace_bits__decode(uint64_t word, struct uftrace_bits *bits);

#endif
