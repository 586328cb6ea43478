/* Reading Chrome trace JSON as CAT (Rust-Async-Context-Tracer) writes it,
 * and as zCore's dump.py writes it: B/E events (and X complete events)
 * become import records, thread_name/process_name metadata names threads.
 * The input has no addresses: functions are told apart by name. */
#ifndef ASYNCTRACE_IMPORT_CAT_H
#define ASYNCTRACE_IMPORT_CAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "import/import.h"

/* What a `ts` (and an X event's `dur`) counts. Chrome says µs; zCore's
 * dump.py leaves its probes' own clock in: ns (eBPF bpf_ktime_get_ns) or
 * s (GDB, time.time()). AUTO takes µs unless the file is dump.py's. */
enum cat_ts_unit { CAT_TS_AUTO, CAT_TS_NS, CAT_TS_US, CAT_TS_MS, CAT_TS_S };

/* Where and why an input was refused, for the command's one line. */
struct cat_error {
	uint64_t line, column; /* of a JSON syntax error (1-based), 0 if none */
	uint64_t event;        /* the offending event (1-based), 0 if none */
	char what[160];
};

struct cat_stats {
	uint64_t events;
	uint64_t begins, ends, completes; /* B, E, X */
	uint64_t metadata;                /* M */
	uint64_t ignored;                 /* other phases */
	char ignored_phases[16];          /* the first few of them, comma separated */
	enum cat_ts_unit unit;            /* the unit used (never AUTO) */
	bool from_dump_py;                /* zCore dump.py's signature arg seen */
};

struct cat_input;

/* Reads, parses and checks `path` and collects its events. Returns 0, or
 * a negative errno with `err` filled: -ENOENT, -EACCES, -EISDIR (the
 * file), -EBADMSG (not JSON: err->line, column), -EINVAL (JSON but not a
 * trace, or a bad event: err->event), -ENODATA (no B, E or X events),
 * -ENOMEM. */
int cat_input__open(struct cat_input **out, const char *path, enum cat_ts_unit unit, struct cat_error *err);
void cat_input__free(struct cat_input *in);
const struct cat_stats *cat_input__stats(const struct cat_input *in);
/* Gives the events to `b` in an order its stable time sort keeps (nested
 * X events that start or end together stay nested), then the thread
 * names. Returns 0 or -ENOMEM. */
int cat_input__add_to(struct cat_input *in, struct import_builder *b);

/* "us" -> CAT_TS_US ...; -1 if no unit has that name. */
int cat_ts_unit_parse(const char *name);
const char *cat_ts_unit_name(enum cat_ts_unit unit);

/* CAT spells a closure segment `_{{closure}}` (its uftrace's demangler);
 * rustc's legacy demangling says `{{closure}}`. Writes `name` with every
 * `::_{{closure}}` as `::{{closure}}` into buf (truncated to len). */
void cat_normalise_name(const char *name, char *buf, size_t len);

#endif
