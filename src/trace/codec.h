/* The compact event encoding of STREAM chunks (trace format 3.x; the byte
 * layout is in docs/trace-format.md, "Event encoding"). Events of one
 * thread are encoded against a small state — the previous event and a
 * shadow stack of the probed frames still open — so most fields become
 * a byte or two. Encoder and decoder evolve that state from the encoded
 * data alone, and it starts afresh with every chunk, so each chunk
 * decodes on its own.
 *
 * The encoding keeps what the analyses read, not every bit of an event:
 * an entry keeps one argument (the future, or a hook's pointer), an exit
 * what its function's result layout decodes. */
#ifndef ASYNCTRACE_TRACE_CODEC_H
#define ASYNCTRACE_TRACE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "trace/trace.h"

/* Open frames the shadow stack follows; deeper ones are encoded without
 * it (explicit exits). */
#define CODEC_MAX_DEPTH 256
/* No event takes more bytes than this (a raw one takes 62 at most). */
#define CODEC_MAX_EVENT_BYTES 64

/* What an exit of the function keeps of its return registers. */
enum codec_exit_value {
	CODEC_EXIT_ARG0 = 0,        /* arg0 in full (hooks, undecodable results) */
	CODEC_EXIT_DISC_ARG0 = 1,   /* Poll<T> in registers, discriminant in arg0 */
	CODEC_EXIT_DISC_ARG1 = 2,   /* ... in arg1 */
	CODEC_EXIT_DISC_MEMORY = 3, /* Poll<T> in memory: the low bytes of arg1 */
};

/* Per function, what its events keep (from role, self_arg, result). */
struct codec_function {
	uint64_t disc_mask;         /* the discriminant's bytes, shifted down */
	uint8_t opens_frame;        /* ROLE_POLL: its entries push a frame */
	uint8_t entry_arg;          /* 0: arg0, 1: arg1 */
	uint8_t exit_value;         /* enum codec_exit_value */
	uint8_t disc_shift;         /* bit position of the discriminant */
};

struct event_codec {
	struct codec_function *functions;
	size_t function_count;
};

struct codec_frame {
	uint64_t sp;
	uint64_t value;             /* its entry's argument */
	uint32_t func_id;
};

#define CODEC_CACHE_SLOTS 256       /* a function's slot: func_id % CODEC_CACHE_SLOTS */
#define CODEC_NO_FUNCTION UINT32_MAX

/* What one function's last events were: the predictions for its next. */
struct codec_slot {
	uint64_t sp;
	uint64_t offset;            /* last entry: its argument - its reference value */
	uint64_t return_address;
	uint64_t exit_value;        /* last exit: the value it kept */
	uint64_t state;
	uint32_t func_id;           /* CODEC_NO_FUNCTION: empty */
	uint32_t next[2];           /* the function entered right after its entry, its exit */
	uint8_t exit_echo;          /* last exit's value was its frame's argument */
};

/* Everything an event is encoded against; reset at every chunk. */
struct codec_state {
	uint64_t ts;                /* previous event's */
	uint64_t sp;                /* previous event's */
	uint64_t value;             /* previous entry's argument */
	uint64_t return_address;    /* previous one kept */
	uint32_t prev_func;         /* previous event's function, CODEC_NO_FUNCTION at first */
	uint32_t prev_exit;         /* ... and whether it was an exit */
	uint32_t depth;
	uint16_t cpu;
	struct codec_frame frames[CODEC_MAX_DEPTH];
	struct codec_slot slots[CODEC_CACHE_SLOTS];
};

/* Returns 0 or -ENOMEM. */
int event_codec__init(struct event_codec *codec, const struct trace_function *fns, size_t count);
void event_codec__free(struct event_codec *codec);

/* Starts a chunk whose first event is at first_ts. */
void codec_state__reset(struct codec_state *s, uint64_t first_ts);

/* Appends one event at out, which has room for CODEC_MAX_EVENT_BYTES.
 * Returns the bytes written. pid and tid are not encoded. */
size_t event_codec__encode(const struct event_codec *codec, struct codec_state *s,
			   const struct trace_event *e, uint8_t *out);
/* Decodes the event at *p (before end) into e, advancing *p; pid and tid
 * are left as they are, fields the encoding drops are 0. Returns 0, or
 * -EBADMSG for bytes no encoder wrote (e is then undefined). */
int event_codec__decode(const struct event_codec *codec, struct codec_state *s, const uint8_t **p,
			const uint8_t *end, struct trace_event *e);

/* What a decoded event equals: e with the fields the encoding drops
 * cleared (for tests and benchmarks). */
struct trace_event event_codec__kept(const struct event_codec *codec, const struct trace_event *e);

#endif
