/* Symbol tables as text: the zCore tracer's `0xADDR NAME` files and
 * `nm -n` / `nm -C -n` listings (`ADDR T NAME`). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "import/import.h"

void import_unknown__add(struct import_unknown *u, uint64_t line)
{
	if (u->count < IMPORT_UNKNOWN_KEPT)
		u->lines[u->count] = line;
	u->count++;
}

static char *trim(char *s)
{
	size_t n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* `0xADDR NAME` or `ADDR T NAME`; false for any other shape. */
static bool parse_symbol_line(char *s, struct import_symbol *sym)
{
	char *end;
	bool prefixed = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');

	if (!isxdigit((unsigned char)s[prefixed ? 2 : 0]))
		return false;
	errno = 0;
	sym->addr = strtoull(s, &end, 16);
	if (errno || end == s || !isspace((unsigned char)*end))
		return false;
	s = end;
	while (isspace((unsigned char)*s))
		s++;
	sym->type = 0;
	if (!prefixed) {
		/* nm: one type letter (or '?'), then the name */
		if (!(isalpha((unsigned char)s[0]) || s[0] == '?') || !isspace((unsigned char)s[1]))
			return false;
		sym->type = s[0];
		s += 2;
		while (isspace((unsigned char)*s))
			s++;
	}
	sym->name = s;
	return *s != '\0';
}

int import_read_symbol_file(const char *path, import_symbol_fn add, void *ctx, struct import_unknown *unknown)
{
	struct stat st;
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	uint64_t number = 0;
	int err = 0;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!(f = fopen(path, "r")))
		return -errno;
	while (!err && getline(&line, &cap, f) >= 0) {
		struct import_symbol sym;
		char *s = trim(line);

		number++;
		if (!*s || *s == '#')
			continue;
		if (!parse_symbol_line(s, &sym)) {
			import_unknown__add(unknown, number);
			continue;
		}
		sym.line = number;
		err = add(&sym, ctx);
	}
	if (!err && ferror(f))
		err = -EIO;
	free(line);
	fclose(f);
	return err;
}
