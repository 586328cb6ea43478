/* Numbers into memory without printf: each call writes at p (the caller
 * has made room: 20 bytes for a decimal, 16 for hex, 24 for put_us) and
 * returns the end. The exporters write tens of millions of numbers;
 * vfprintf's parsing of the format each time was a fifth of the export. */
#ifndef ASYNCTRACE_UTIL_PUT_H
#define ASYNCTRACE_UTIL_PUT_H

#include <stdint.h>
#include <string.h>

static const char put_digit_pairs[] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

static inline char *put_bytes(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/* A string literal: its length is known at compile time. */
#define PUT_LITERAL(p, s) put_bytes((p), (s), sizeof(s) - 1)

static inline char *put_u64(char *p, uint64_t v)
{
	char digits[20], *end = digits + sizeof(digits), *q = end;

	while (v >= 100) {
		q -= 2;
		memcpy(q, put_digit_pairs + (v % 100) * 2, 2);
		v /= 100;
	}
	if (v >= 10) {
		q -= 2;
		memcpy(q, put_digit_pairs + v * 2, 2);
	} else {
		*--q = (char)('0' + v);
	}
	return put_bytes(p, q, (size_t)(end - q));
}

/* Nanoseconds as microseconds with three decimals: 1234567 -> 1234.567. */
static inline char *put_us(char *p, uint64_t ns)
{
	uint64_t frac = ns % 1000;

	p = put_u64(p, ns / 1000);
	*p++ = '.';
	*p++ = (char)('0' + frac / 100);
	memcpy(p, put_digit_pairs + (frac % 100) * 2, 2);
	return p + 2;
}

/* Lowercase, no leading zeros, no prefix. */
static inline char *put_hex(char *p, uint64_t v)
{
	int n = v ? (64 - __builtin_clzll(v) + 3) / 4 : 1;

	for (int i = n - 1; i >= 0; i--, v >>= 4)
		p[i] = "0123456789abcdef"[v & 15];
	return p + n;
}

#endif
