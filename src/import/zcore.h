/* Reading zCore kernel probe logs: the serial console of a kernel whose
 * in-kernel probes print one line per poll-function entry and exit. Three
 * real shapes are understood, each anywhere in a line (console noise,
 * ANSI colours, NUL bytes and CRs around them are dropped):
 *
 *   eBPF:    time-threadID-entry/exit-addr-depth: TS PID entry|exit ADDR DEPTH
 *   bracket: TS PID: [entry] NAME(ADDR) depth: DEPTH     ([exit] / [exit ])
 *            (the chatty eBPF form prints NAME and ADDR as placeholders and
 *            the address on a following `addr = N` line; dump.py's
 *            dumped_data.txt prints hex addresses; GDB's log prints
 *            wall-clock seconds and return-site pcs on exits)
 *   symbols: trace point symbol resolved, symbol:NAME addr: HEX
 *
 * The reader keeps the records in memory: the switch split and the repair
 * of names need them all before the builder sees one. */
#ifndef ASYNCTRACE_IMPORT_ZCORE_H
#define ASYNCTRACE_IMPORT_ZCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "import/import.h"

/* PID the kernel prints for "no current thread" (u64 -1): the executor. */
#define ZCORE_NO_THREAD_PID UINT64_MAX
#define ZCORE_EXECUTOR_TID UINT32_MAX

struct zcore_record {
	uint64_t ts;        /* ns (seconds forms converted) */
	uint64_t line;
	uint64_t seq;        /* order read in: ties in time keep it */
	uint64_t addr;
	uint64_t pid;
	const char *name;   /* the log's name, then the resolved one; NULL: by address */
	uint32_t tid;       /* the stream: the pid, or a switch-split thread */
	int32_t depth;
	uint8_t kind;       /* TRACE_EVENT_ENTRY, TRACE_EVENT_EXIT */
	bool addr_known;    /* false until the chatty form's `addr =` line */
};

struct zcore_symbol {
	uint64_t addr;
	const char *name;
};

struct zcore_log {
	struct zcore_record *records;
	size_t record_count, record_cap;
	struct zcore_symbol *symbols;   /* from the logs' resolved lines and --sym, in order added */
	size_t symbol_count, symbol_cap;
	bool symbols_sorted;
	char **texts;                   /* the logs' bytes, cleaned in place (names point into them) */
	char **names;                   /* names made here (--sym names, repairs) */
	size_t text_count, text_cap, name_count, name_cap;
	struct import_unknown unknown;  /* probe-like lines that did not parse */
	uint64_t other_lines;           /* console output that is no probe line */
	uint64_t ebpf_lines, bracket_lines, seconds_lines, resolved_lines, addr_lines;
	uint64_t repaired_names;
	bool hex_addresses;             /* a bracket address had hex letters: read all as hex */
};

void zcore_log__init(struct zcore_log *log);
void zcore_log__free(struct zcore_log *log);
/* Reads one log file (appending to the records of those read before).
 * Returns 0 or a negative errno (-ENOENT, -EISDIR, -ENOMEM, ...). */
int zcore_log__read_file(struct zcore_log *log, const char *path);
/* Parses a log's bytes; takes ownership of `text` (len + 1 bytes, the last
 * one free for the terminator); line numbers count from 1 in it. */
int zcore_log__parse(struct zcore_log *log, char *text, size_t len);
/* A symbol from a symbol file: added after the log's own, it wins. */
int zcore_log__add_symbol(struct zcore_log *log, uint64_t addr, const char *name);
/* The same, keeping a copy of `name` (demangled, if it is a mangled Rust name). */
int zcore_log__add_symbol_copy(struct zcore_log *log, uint64_t addr, const char *name);
/* Orders the records by time (stably), names each record from the symbols
 * where the log gave no name, and repairs names a log cut (GDB's strip
 * bug: the symbol at an entry's address ends with the logged name). */
int zcore_log__resolve(struct zcore_log *log);
/* Each call of a function whose name contains `pattern` (its entry, its
 * exit and everything logged on that stream in between) moves to a thread
 * of its own, numbered from `first_tid`; *calls says how many. After
 * zcore_log__resolve (names and time order). Returns 0 or -ENOMEM. */
int zcore_log__split_at_calls(struct zcore_log *log, const char *pattern, uint32_t first_tid, size_t *calls);
/* Seconds timestamps (GDB): exits then carry return-site pcs. */
static inline bool zcore_log__is_gdb(const struct zcore_log *log)
{
	return log->seconds_lines > 0;
}
/* Hands symbols and records to the builder. */
int zcore_log__feed(struct zcore_log *log, struct import_builder *b);

#endif
