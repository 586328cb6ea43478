/* Importing other tools' recordings (zCore kernel probe logs, uftrace
 * data, CAT's Chrome JSON) as asynctrace traces. A reader turns its input
 * into import records (one entry or exit each) and symbols; the builder
 * pairs entries with exits, names and classifies the functions, and writes
 * the trace, so every command (report, tree, export) reads imports as it
 * reads recordings. */
#ifndef ASYNCTRACE_IMPORT_IMPORT_H
#define ASYNCTRACE_IMPORT_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMPORT_NO_DEPTH (-1)

struct import_record {
	uint64_t ts;         /* ns, on the input's own clock */
	uint64_t line;       /* where it is in the input (1-based), for messages */
	uint64_t addr;       /* the function's address, 0 when not known (an exit
			      * whose pc is a return site is recorded with 0) */
	const char *name;    /* demangled name, or NULL: the address names it (copied) */
	uint32_t tid;        /* thread, pid or hart: one stream each */
	int32_t depth;       /* stack depth the probe saw, or IMPORT_NO_DEPTH */
	uint8_t kind;        /* TRACE_EVENT_ENTRY or TRACE_EVENT_EXIT */
};

struct import_options {
	const char *capture;      /* "import-zcore", "import-zcore-gdb", ... (the trace's capture field) */
	const char *source;       /* the input's path(s), as the trace's command */
	uint16_t machine;         /* e_machine of the traced code (EM_RISCV, EM_X86_64), 0 unknown */
	uint32_t clock;           /* clockid the timestamps are on */
	/* Exits are matched to entries by name (their addresses are return
	 * sites, as in GDB logs) rather than by address. */
	bool match_by_name;
	/* An exit just like the exit before it on its thread (same function,
	 * same depth, no entry between) is a doubled record and dropped. */
	bool drop_doubled_exits;
	/* An exit may come after its caller's (GDB's finish breakpoint fires
	 * late): the caller's exit ends the poll, and its own late exit is
	 * consumed instead of being an orphan. */
	bool allow_late_exits;
};

struct import_stats {
	uint64_t records;
	uint64_t entries, exits;
	uint64_t pairs;            /* entry and exit matched on one thread */
	uint64_t cross_thread;     /* exit matched to an entry open on another thread */
	uint64_t depth_mismatches; /* matched with different depths */
	uint64_t orphan_exits;     /* no entry to match: dropped */
	uint64_t doubled_exits;    /* dropped as doubled */
	uint64_t late_exits;       /* came after their caller's exit, which ended the poll */
	uint64_t left_open;        /* entries never exited (log cut, or left by a switch) */
	uint64_t unnamed;          /* addresses no symbol names (named 0x...) */
	uint64_t functions, threads;
};

struct import_builder;

int import_builder__new(struct import_builder **out, const struct import_options *opts);
void import_builder__free(struct import_builder *b);
/* A symbol: `name` (demangled or mangled; mangled Rust names are
 * demangled) at `addr`. A later symbol at the same address replaces it. */
int import_builder__add_symbol(struct import_builder *b, uint64_t addr, const char *name);
/* Records in input order (the builder orders each thread by time,
 * stable). Returns 0 or -ENOMEM. */
int import_builder__add(struct import_builder *b, const struct import_record *r);
int import_builder__name_thread(struct import_builder *b, uint32_t tid, const char *name);
/* Pairs, writes the trace to `path` and fills `stats`. Returns 0 or a
 * negative errno (-ENODATA: no records at all). */
int import_builder__write(struct import_builder *b, const char *path, struct import_stats *stats);

/* Lines a reader could not read: counted, the first few kept with their
 * line numbers for the summary (never fatal). */
#define IMPORT_UNKNOWN_KEPT 5
struct import_unknown {
	uint64_t count;
	uint64_t lines[IMPORT_UNKNOWN_KEPT];
};
void import_unknown__add(struct import_unknown *u, uint64_t line);

/* Symbol tables as text: `0xADDR NAME` (the zCore tracer's symbol file,
 * `symbols --format sym`), `ADDR T NAME` (`nm -n`, `nm -C -n`), one per
 * line; blank lines and `#` comments skipped. Each symbol goes to `add`.
 * Lines of neither shape are counted in `unknown`. Returns 0, or a negative
 * errno (-ENOENT, -EACCES, -EISDIR, -ENOMEM, or what `add` returned). */
struct import_symbol {
	uint64_t addr;
	char type;          /* nm's type letter ('T', 't', ...), 0 for `0xADDR NAME` lines */
	const char *name;
	uint64_t line;
};
typedef int (*import_symbol_fn)(const struct import_symbol *sym, void *ctx);
int import_read_symbol_file(const char *path, import_symbol_fn add, void *ctx, struct import_unknown *unknown);

#endif
