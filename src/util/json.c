#include "util/json.h"

#include <errno.h>
#include <inttypes.h>

/* Length of the valid UTF-8 sequence at s (at most `avail` bytes), or 0.
 * Overlong forms, surrogates and code points above U+10FFFF are invalid. */
static size_t utf8_sequence_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > avail)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

static void write_ascii_escaped(FILE *out, unsigned char c)
{
	switch (c) {
	case '"': fputs("\\\"", out); break;
	case '\\': fputs("\\\\", out); break;
	case '\b': fputs("\\b", out); break;
	case '\f': fputs("\\f", out); break;
	case '\n': fputs("\\n", out); break;
	case '\r': fputs("\\r", out); break;
	case '\t': fputs("\\t", out); break;
	default:
		if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
}

void json_write_string_len(FILE *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	fputc('"', out);
	while (i < len) {
		size_t n;

		if (p[i] < 0x80) {
			write_ascii_escaped(out, p[i]);
			i++;
			continue;
		}
		n = utf8_sequence_len(p + i, len - i);
		if (n == 0) {
			fputs("\\ufffd", out);
			i++;
			continue;
		}
		fwrite(p + i, 1, n, out);
		i += n;
	}
	fputc('"', out);
}

void json_write_string(FILE *out, const char *s)
{
	size_t len = 0;

	if (!s) {
		fputs("null", out);
		return;
	}
	while (s[len])
		len++;
	json_write_string_len(out, s, len);
}

void json_writer__init(struct json_writer *w, FILE *out, unsigned indent)
{
	*w = (struct json_writer){ .out = out, .indent = indent };
}

static void newline_indent(struct json_writer *w)
{
	if (!w->indent)
		return;
	fputc('\n', w->out);
	for (unsigned i = 0; i < w->depth * w->indent; i++)
		fputc(' ', w->out);
}

/* Comma and indentation before a value or key at the current depth. */
static void before_item(struct json_writer *w)
{
	uint64_t bit;

	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth == 0)
		return;
	bit = UINT64_C(1) << (w->depth - 1);
	if (w->has_items & bit)
		fputc(',', w->out);
	w->has_items |= bit;
	newline_indent(w);
}

static void container_begin(struct json_writer *w, char open)
{
	before_item(w);
	if (w->depth >= JSON_WRITER_MAX_DEPTH) {
		w->error = true;
		return;
	}
	fputc(open, w->out);
	w->depth++;
	w->has_items &= ~(UINT64_C(1) << (w->depth - 1));
}

static void container_end(struct json_writer *w, char close)
{
	bool had_items;

	if (w->depth == 0 || w->after_key) {
		w->error = true;
		return;
	}
	had_items = w->has_items & (UINT64_C(1) << (w->depth - 1));
	w->depth--;
	if (had_items)
		newline_indent(w);
	fputc(close, w->out);
}

void json_writer__object_begin(struct json_writer *w) { container_begin(w, '{'); }
void json_writer__object_end(struct json_writer *w) { container_end(w, '}'); }
void json_writer__array_begin(struct json_writer *w) { container_begin(w, '['); }
void json_writer__array_end(struct json_writer *w) { container_end(w, ']'); }

void json_writer__key(struct json_writer *w, const char *key)
{
	before_item(w);
	json_write_string(w->out, key);
	fputs(w->indent ? ": " : ":", w->out);
	w->after_key = true;
}

void json_writer__string(struct json_writer *w, const char *s)
{
	before_item(w);
	json_write_string(w->out, s);
}

void json_writer__uint(struct json_writer *w, uint64_t v)
{
	before_item(w);
	fprintf(w->out, "%" PRIu64, v);
}

void json_writer__int(struct json_writer *w, int64_t v)
{
	before_item(w);
	fprintf(w->out, "%" PRId64, v);
}

void json_writer__bool(struct json_writer *w, bool v)
{
	before_item(w);
	fputs(v ? "true" : "false", w->out);
}

void json_writer__null(struct json_writer *w)
{
	before_item(w);
	fputs("null", w->out);
}

void json_writer__hex(struct json_writer *w, uint64_t v)
{
	before_item(w);
	fprintf(w->out, "\"0x%" PRIx64 "\"", v);
}

void json_writer__fail(struct json_writer *w, int err)
{
	if (!w->failed)
		w->failed = err;
}

int json_writer__finish(struct json_writer *w)
{
	if (w->depth != 0 || w->after_key)
		w->error = true;
	fputc('\n', w->out);
	if (w->failed)
		return w->failed;
	if (w->error)
		return -EINVAL;
	return ferror(w->out) ? -EIO : 0;
}
