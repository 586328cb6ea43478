#include "elf/demangle.h"

#include <stdlib.h>
#include <string.h>

#include <libiberty/demangle.h>

bool rust_is_mangled(const char *name)
{
	/* Legacy Rust names are Itanium-style nested names (_ZN ... E); v0
	 * names start with _R followed by an uppercase tag. Some toolchains
	 * add one more underscore (__ZN, __R) on targets that prefix symbols. */
	if (name[0] == '_' && name[1] == '_')
		name++;
	if (strncmp(name, "_ZN", 3) == 0)
		return true;
	return name[0] == '_' && name[1] == 'R' && name[2] >= 'A' && name[2] <= 'Z';
}

/* The demangler's output, collected piece by piece. */
struct out_buf {
	char *data;
	size_t len, cap;
	bool failed;
};

static void append(const char *piece, size_t len, void *opaque)
{
	struct out_buf *b = opaque;

	if (b->failed)
		return;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 128;
		char *p;

		while (cap < b->len + len + 1)
			cap *= 2;
		p = realloc(b->data, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, piece, len);
	b->len += len;
	b->data[b->len] = '\0';
}

char *demangle_symbol(const char *mangled)
{
	struct out_buf b = { 0 };

	/* The callback form (what cplus_demangle(name, DMGL_RUST) uses inside)
	 * lets us own the memory: libiberty's own allocator exits on failure.
	 * Without DMGL_VERBOSE it drops the legacy hash and v0 disambiguators.
	 * It fails on anything that is not a well-formed Rust name (C and C++
	 * symbols, a legacy name whose hash does not look like one), which
	 * then comes back unchanged. */
	if (rust_is_mangled(mangled) &&
	    rust_demangle_callback(mangled, DMGL_RUST | DMGL_PARAMS, append, &b) && !b.failed &&
	    b.data)
		return b.data;
	free(b.data);
	return b.failed ? NULL : strdup(mangled);
}
