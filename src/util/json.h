/* Writing JSON: string escaping, and a small streaming writer that places
 * commas, colons and (optionally) indentation so callers only say what comes
 * next. Output is always valid UTF-8 JSON: bytes that are not valid UTF-8
 * (symbol names and paths are arbitrary bytes) become U+FFFD. */
#ifndef ASYNCTRACE_UTIL_JSON_H
#define ASYNCTRACE_UTIL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* `s` as a quoted, escaped JSON string; NULL writes `null`. */
void json_write_string(FILE *out, const char *s);
/* The same for `len` bytes that may contain NUL (written as \u0000). */
void json_write_string_len(FILE *out, const char *s, size_t len);

/* Streaming writer. Nesting deeper than JSON_WRITER_MAX_DEPTH is a caller
 * bug (it is a fixed property of the document shape, not of the data) and
 * is reported by json_writer__finish. */
#define JSON_WRITER_MAX_DEPTH 64

struct json_writer {
	FILE *out;
	unsigned indent;    /* spaces per level; 0 writes everything on one line */
	unsigned depth;
	uint64_t has_items; /* bit d: the container at depth d has an item */
	bool after_key;     /* a key was written: the next value needs no comma */
	bool error;         /* misuse (depth overflow, unbalanced end) */
	int failed;         /* a negative errno the producer met (json_writer__fail) */
};

void json_writer__init(struct json_writer *w, FILE *out, unsigned indent);
void json_writer__object_begin(struct json_writer *w);
void json_writer__object_end(struct json_writer *w);
void json_writer__array_begin(struct json_writer *w);
void json_writer__array_end(struct json_writer *w);
/* An object member's key; the value follows with one of the calls below. */
void json_writer__key(struct json_writer *w, const char *key);
void json_writer__string(struct json_writer *w, const char *s); /* NULL: null */
void json_writer__uint(struct json_writer *w, uint64_t v);
void json_writer__int(struct json_writer *w, int64_t v);
void json_writer__bool(struct json_writer *w, bool v);
void json_writer__null(struct json_writer *w);
/* "0x<lowercase hex>" as a string: JSON numbers lose precision above 2^53. */
void json_writer__hex(struct json_writer *w, uint64_t v);
/* The producer could not compute a value (err: a negative errno, e.g.
 * -ENOMEM): json_writer__finish returns it. */
void json_writer__fail(struct json_writer *w, int err);
/* Ends the document with a newline. Returns 0, the error given to
 * json_writer__fail, -EINVAL after misuse (unbalanced containers), or
 * -EIO when the stream reported an error. */
int json_writer__finish(struct json_writer *w);

#endif
