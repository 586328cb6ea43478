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

/* Digits of v: its bit length gives log10 within one (1233 / 4096 is
 * log10(2)), a table of powers of ten the rest. */
static inline int put_decimal_digits(uint64_t v)
{
	static const uint64_t powers[20] = {
		1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL,
		1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
		100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
		1000000000000000000ULL, 10000000000000000000ULL,
	};
	int t = ((64 - __builtin_clzll(v | 1)) * 1233) >> 12;

	return t - ((v | 1) < powers[t]) + 1;
}

/* Written from its end backwards, in pairs: no copy of a scratch buffer. */
static inline char *put_u64(char *p, uint64_t v)
{
	char *end = p + put_decimal_digits(v), *q = end;

	while (v >= 100) {
		q -= 2;
		memcpy(q, put_digit_pairs + (v % 100) * 2, 2);
		v /= 100;
	}
	if (v >= 10)
		memcpy(q - 2, put_digit_pairs + v * 2, 2);
	else
		q[-1] = (char)('0' + v);
	return end;
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

static const char put_hex_pairs[] =
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627"
	"28292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f"
	"505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f7071727374757677"
	"78797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7"
	"c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
	"f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

/* Lowercase, no leading zeros, no prefix; from its end, a byte at a time. */
static inline char *put_hex(char *p, uint64_t v)
{
	int n = v ? (64 - __builtin_clzll(v) + 3) / 4 : 1;
	char *q = p + n;

	for (; v >= 16; v >>= 8) {
		q -= 2;
		memcpy(q, put_hex_pairs + (v & 0xff) * 2, 2);
	}
	if (q > p)
		q[-1] = "0123456789abcdef"[v];
	return p + n;
}

#endif
