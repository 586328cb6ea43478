#include "elf/demangle.h"

#include <stdlib.h>
#include <string.h>

#include <libiberty/demangle.h>

#include "util/buf.h"

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
static void append(const char *piece, size_t len, void *opaque)
{
	buf_put_bytes(opaque, piece, len);
}

char *demangle_symbol(const char *mangled)
{
	struct buf b = { 0 };

	/* The callback form (what cplus_demangle(name, DMGL_RUST) uses inside)
	 * lets us own the memory: libiberty's own allocator exits on failure.
	 * Without DMGL_VERBOSE it drops the legacy hash and v0 disambiguators.
	 * It fails on anything that is not a well-formed Rust name (C and C++
	 * symbols, a legacy name whose hash does not look like one), which
	 * then comes back unchanged. */
	if (rust_is_mangled(mangled) &&
	    rust_demangle_callback(mangled, DMGL_RUST | DMGL_PARAMS, append, &b) && b.len) {
		buf_put_u8(&b, '\0');
		if (!b.err)
			return (char *)b.data;
	}
	if (b.err) {
		buf_free(&b);
		return NULL;
	}
	buf_free(&b);
	return strdup(mangled);
}
