/* util/json: escaping and the streaming writer. */
#include <stdlib.h>

#include "unit.h"
#include "util/json.h"

/* Run `write` on a memory stream and return what it wrote (malloc'd). */
static char *capture(void (*write)(FILE *out))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	if (!out)
		return NULL;
	write(out);
	fclose(out);
	return buf;
}

static void write_escapes(FILE *out)
{
	json_write_string(out, "a\"b\\c\n\t\x01/\x7f");
}

static void write_utf8(FILE *out)
{
	/* é (valid), a lone continuation byte, an overlong '/', a surrogate */
	json_write_string(out, "\xc3\xa9 \x80 \xc0\xaf \xed\xa0\x80 \xf0\x9f\x98\x80");
}

static void write_null_and_nul(FILE *out)
{
	json_write_string(out, NULL);
	json_write_string_len(out, "a\0b", 3);
}

UNIT_TEST(json_string_escaping)
{
	char *s = capture(write_escapes);

	CHECK_STR(s, "\"a\\\"b\\\\c\\n\\t\\u0001/\\u007f\"");
	free(s);
	s = capture(write_utf8);
	CHECK_STR(s, "\"\xc3\xa9 \\ufffd \\ufffd\\ufffd \\ufffd\\ufffd\\ufffd \xf0\x9f\x98\x80\"");
	free(s);
	s = capture(write_null_and_nul);
	CHECK_STR(s, "null\"a\\u0000b\"");
	free(s);
}

static void write_compact(FILE *out)
{
	struct json_writer w;

	json_writer__init(&w, out, 0);
	json_writer__object_begin(&w);
	json_writer__key(&w, "n");
	json_writer__uint(&w, 18446744073709551615ull);
	json_writer__key(&w, "list");
	json_writer__array_begin(&w);
	json_writer__int(&w, -1);
	json_writer__bool(&w, true);
	json_writer__null(&w);
	json_writer__hex(&w, 0xffffffc08020483aull);
	json_writer__object_begin(&w);
	json_writer__object_end(&w);
	json_writer__array_end(&w);
	json_writer__key(&w, "s");
	json_writer__string(&w, "x");
	json_writer__object_end(&w);
	fprintf(out, "%d", json_writer__finish(&w));
}

static void write_pretty(FILE *out)
{
	struct json_writer w;

	json_writer__init(&w, out, 2);
	json_writer__object_begin(&w);
	json_writer__key(&w, "a");
	json_writer__array_begin(&w);
	json_writer__uint(&w, 1);
	json_writer__uint(&w, 2);
	json_writer__array_end(&w);
	json_writer__key(&w, "e");
	json_writer__array_begin(&w);
	json_writer__array_end(&w);
	json_writer__object_end(&w);
	json_writer__finish(&w);
}

static void write_unbalanced(FILE *out)
{
	struct json_writer w;

	json_writer__init(&w, out, 0);
	json_writer__array_begin(&w);
	fprintf(out, "%d", json_writer__finish(&w));
}

UNIT_TEST(json_writer_documents)
{
	char *s = capture(write_compact);

	CHECK_STR(s, "{\"n\":18446744073709551615,\"list\":[-1,true,null,\"0xffffffc08020483a\",{}],"
		     "\"s\":\"x\"}\n0");
	free(s);
	s = capture(write_pretty);
	CHECK_STR(s, "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"e\": []\n}\n");
	free(s);
	s = capture(write_unbalanced);
	CHECK(s && strstr(s, "-22") != NULL); /* -EINVAL */
	free(s);
}
