/* zCore probe logs: cleaning console lines and reading the three shapes
 * of probe line (see zcore.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elf/demangle.h"
#include "import/zcore.h"
#include "trace/trace.h"
#include "util/array.h"

#define EBPF_MARK "time-threadID-entry/exit-addr-depth:"
#define RESOLVED_MARK "trace point symbol resolved, symbol:"

void zcore_log__init(struct zcore_log *log)
{
	memset(log, 0, sizeof(*log));
}

void zcore_log__free(struct zcore_log *log)
{
	for (size_t i = 0; i < log->text_count; i++)
		free(log->texts[i]);
	for (size_t i = 0; i < log->name_count; i++)
		free(log->names[i]);
	free(log->texts);
	free(log->names);
	free(log->records);
	free(log->symbols);
	memset(log, 0, sizeof(*log));
}

/* Drops what a serial console adds around the text: ANSI escape
 * sequences (ESC [ params final), CRs; NULs (bpf_trace_printk's pieces)
 * become spaces so that the pieces stay apart. In place, NUL-terminated. */
static void clean_line(char *s, size_t len)
{
	size_t w = 0;

	for (size_t r = 0; r < len; r++) {
		unsigned char c = (unsigned char)s[r];

		if (c == 0x1b) {
			if (r + 1 < len && s[r + 1] == '[') {
				r += 2;
				while (r < len && !((unsigned char)s[r] >= 0x40 && (unsigned char)s[r] <= 0x7e))
					r++;
			}
			continue;
		}
		if (c == '\r')
			continue;
		s[w++] = c ? (char)c : ' ';
	}
	s[w] = '\0';
}

static const char *skip_spaces(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* A decimal u64 at *s; advances past it. */
static bool read_decimal(const char **s, uint64_t *v)
{
	const char *p = skip_spaces(*s);
	uint64_t x = 0;

	if (!isdigit((unsigned char)*p))
		return false;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (x > (UINT64_MAX - d) / 10)
			return false;
		x = x * 10 + d;
	}
	*s = p;
	*v = x;
	return true;
}

static bool read_depth(const char **s, int32_t *depth)
{
	uint64_t v;

	if (!read_decimal(s, &v) || v > INT32_MAX)
		return false;
	*depth = (int32_t)v;
	return true;
}

/* A timestamp: integer nanoseconds, or seconds with a fraction (GDB's
 * wall clock), made nanoseconds. */
static bool read_timestamp(const char **s, uint64_t *ns, bool *seconds)
{
	uint64_t whole, frac = 0;
	const char *p;
	int digits = 0;

	if (!read_decimal(s, &whole))
		return false;
	p = *s;
	*seconds = *p == '.';
	if (!*seconds) {
		*ns = whole;
		return true;
	}
	for (p++; isdigit((unsigned char)*p); p++)
		if (digits < 9) {
			frac = frac * 10 + (uint64_t)(*p - '0');
			digits++;
		}
	for (; digits < 9; digits++)
		frac *= 10;
	if (whole > (UINT64_MAX - frac) / 1000000000ull)
		return false;
	*ns = whole * 1000000000ull + frac;
	*s = p;
	return true;
}

static bool at_end(const char *s)
{
	return *skip_spaces(s) == '\0';
}

static int add_record(struct zcore_log *log, const struct zcore_record *r)
{
	if (ARRAY_RESERVE(log->records, log->record_cap, log->record_count + 1))
		return -ENOMEM;
	log->records[log->record_count] = *r;
	log->records[log->record_count].seq = log->record_count;
	log->record_count++;
	return 0;
}

static uint32_t tid_of_pid(uint64_t pid)
{
	return pid == ZCORE_NO_THREAD_PID ? ZCORE_EXECUTOR_TID : (uint32_t)pid;
}

/* `TS PID entry|exit ADDR DEPTH` after the eBPF mark. */
static int parse_ebpf(struct zcore_log *log, const char *s, uint64_t line)
{
	struct zcore_record r = { .line = line, .addr_known = true };
	bool seconds;

	if (!read_timestamp(&s, &r.ts, &seconds) || !read_decimal(&s, &r.pid))
		return -EINVAL;
	s = skip_spaces(s);
	if (!strncmp(s, "entry", 5))
		r.kind = TRACE_EVENT_ENTRY;
	else if (!strncmp(s, "exit", 4))
		r.kind = TRACE_EVENT_EXIT;
	else
		return -EINVAL;
	s += r.kind == TRACE_EVENT_ENTRY ? 5 : 4;
	if (!read_decimal(&s, &r.addr) || !read_depth(&s, &r.depth) || !at_end(s))
		return -EINVAL;
	r.tid = tid_of_pid(r.pid);
	log->ebpf_lines++;
	if (seconds)
		log->seconds_lines++;
	return add_record(log, &r);
}

/* An address in a bracket line: decimal (the eBPF and GDB forms), hex
 * without 0x (dump.py), or a placeholder (FUNCTION_ADDR: given later).
 * Once one address had hex letters, all-digit ones are hex too. */
static bool read_bracket_addr(struct zcore_log *log, const char *s, size_t len, struct zcore_record *r)
{
	char buf[32];
	char *end;
	bool hex = false;

	if (len >= sizeof(buf) || !len)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (!strcmp(buf, "FUNCTION_ADDR")) {
		r->addr_known = false;
		return true;
	}
	for (size_t i = 0; i < len; i++) {
		if (!isxdigit((unsigned char)buf[i]) && !(i == 1 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')))
			return false;
		hex |= !isdigit((unsigned char)buf[i]);
	}
	if (hex)
		log->hex_addresses = true;
	errno = 0;
	r->addr = strtoull(buf, &end, log->hex_addresses || hex ? 16 : 10);
	r->addr_known = true;
	return !errno && *end == '\0';
}

/* Before the bracket: `TS PID:` (anything may precede TS: a
 * `kretprobe@exit` tag, console noise). Scans back from the colon. */
static bool parse_bracket_head(const char *line, const char *bracket, struct zcore_record *r, bool *seconds)
{
	const char *p = bracket;
	const char *ts;

	while (p > line && (p[-1] == ' ' || p[-1] == '\t'))
		p--;
	if (p == line || p[-1] != ':')
		return false;
	p--;
	while (p > line && isdigit((unsigned char)p[-1]))
		p--;
	while (p > line && (p[-1] == ' ' || p[-1] == '\t'))
		p--;
	ts = p;
	while (ts > line && (isdigit((unsigned char)ts[-1]) || ts[-1] == '.'))
		ts--;
	if (ts == p)
		return false;
	return read_timestamp(&ts, &r->ts, seconds) && ts == p && read_decimal(&ts, &r->pid) && *ts == ':';
}

/* `[entry] NAME(ADDR) depth: D` from the bracket on. NAME is cut out in
 * place (the text is ours); `FUNCTION_NAME` means the log did not know it. */
static int parse_bracket(struct zcore_log *log, char *line, char *bracket, uint64_t number)
{
	struct zcore_record r = { .line = number };
	char *name, *open, *close, *depth = NULL, *p;
	bool seconds;

	r.kind = bracket[1] == 'e' && bracket[2] == 'n' ? TRACE_EVENT_ENTRY : TRACE_EVENT_EXIT;
	if (!parse_bracket_head(line, bracket, &r, &seconds))
		return -EINVAL;
	name = (char *)skip_spaces(strchr(bracket, ']') + 1);
	for (p = name; (p = strstr(p, "depth:")); p++)
		depth = p;
	if (!depth)
		return -EINVAL;
	close = depth;
	while (close > name && (close[-1] == ' ' || close[-1] == '\t'))
		close--;
	if (close == name || close[-1] != ')')
		return -EINVAL;
	close--;
	for (open = close; open > name && *open != '('; open--)
		;
	if (*open != '(' || open == name)
		return -EINVAL;
	p = depth + 6;
	if (!read_bracket_addr(log, open + 1, (size_t)(close - open - 1), &r) ||
	    !read_depth((const char **)&p, &r.depth) || !at_end(p))
		return -EINVAL;
	while (open > name && open[-1] == ' ')
		open--;
	*open = '\0';
	r.name = strcmp(name, "FUNCTION_NAME") ? name : NULL;
	r.tid = tid_of_pid(r.pid);
	log->bracket_lines++;
	if (seconds)
		log->seconds_lines++;
	return add_record(log, &r);
}

int zcore_log__add_symbol(struct zcore_log *log, uint64_t addr, const char *name)
{
	if (ARRAY_RESERVE(log->symbols, log->symbol_cap, log->symbol_count + 1))
		return -ENOMEM;
	log->symbols[log->symbol_count++] = (struct zcore_symbol){ addr, name };
	log->symbols_sorted = false;
	return 0;
}

int zcore_log__add_symbol_copy(struct zcore_log *log, uint64_t addr, const char *name)
{
	char *copy;

	/* demangled here: the switch split and name repair match on names */
	if (ARRAY_RESERVE(log->names, log->name_cap, log->name_count + 1) ||
	    !(copy = rust_is_mangled(name) ? demangle_symbol(name) : strdup(name)))
		return -ENOMEM;
	log->names[log->name_count++] = copy;
	return zcore_log__add_symbol(log, addr, copy);
}

/* `symbol:NAME addr: HEX` (NAME may hold spaces: the last ` addr: ` ends it). */
static int parse_resolved(struct zcore_log *log, char *s)
{
	char *addr = NULL, *p, *end;
	uint64_t value;

	for (p = s; (p = strstr(p, " addr: ")); p++)
		addr = p;
	if (!addr)
		return -EINVAL;
	errno = 0;
	value = strtoull(addr + 7, &end, 16);
	if (errno || end == addr + 7 || !at_end(end))
		return -EINVAL;
	*addr = '\0';
	log->resolved_lines++;
	/* `symbol: addr: 0`: the kernel could not resolve that line's name */
	if (!*skip_spaces(s) || !value)
		return 0;
	return zcore_log__add_symbol(log, value, s);
}

/* `\taddr = N`: the address the chatty form's record before it lacked. */
static bool parse_addr_line(struct zcore_log *log, const char *s)
{
	struct zcore_record *last = log->record_count ? &log->records[log->record_count - 1] : NULL;
	uint64_t addr;

	s = skip_spaces(s);
	if (strncmp(s, "addr = ", 7))
		return false;
	s += 7;
	if (!read_decimal(&s, &addr) || !at_end(s))
		return false;
	log->addr_lines++;
	if (last && !last->addr_known) {
		last->addr = addr;
		last->addr_known = true;
	}
	return true;
}

static char *find_bracket(char *s)
{
	char *p = strstr(s, "[entry]");

	if (p)
		return p;
	for (p = s; (p = strstr(p, "[exit")); p++) {
		const char *q = skip_spaces(p + 5);

		if (*q == ']')
			return p;
	}
	return NULL;
}

static int parse_line(struct zcore_log *log, char *s, uint64_t number)
{
	char *mark, *bracket;
	int err;

	if ((mark = strstr(s, EBPF_MARK)))
		err = parse_ebpf(log, mark + strlen(EBPF_MARK), number);
	else if ((mark = strstr(s, RESOLVED_MARK)))
		err = parse_resolved(log, mark + strlen(RESOLVED_MARK));
	else if ((bracket = find_bracket(s)))
		err = parse_bracket(log, s, bracket, number);
	else {
		if (!parse_addr_line(log, s))
			log->other_lines++;
		return 0;
	}
	if (err == -EINVAL) {
		import_unknown__add(&log->unknown, number);
		return 0;
	}
	return err;
}

int zcore_log__parse(struct zcore_log *log, char *text, size_t len)
{
	uint64_t number = 0;
	size_t start = 0;
	int err = 0;

	if (ARRAY_RESERVE(log->texts, log->text_cap, log->text_count + 1)) {
		free(text);
		return -ENOMEM;
	}
	log->texts[log->text_count++] = text;
	while (!err && start < len) {
		char *nl = memchr(text + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - text) : len;

		number++;
		clean_line(text + start, end - start);
		err = parse_line(log, text + start, number);
		start = end + 1;
	}
	return err;
}

int zcore_log__read_file(struct zcore_log *log, const char *path)
{
	struct stat st;
	char *text;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		err = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		close(fd);
		return err;
	}
	if (!(text = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, text + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : 0;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	if (err) {
		free(text);
		return err;
	}
	return zcore_log__parse(log, text, got);
}

struct indexed_symbol {
	struct zcore_symbol sym;
	size_t index;
};

static int by_addr_then_order(const void *a, const void *b)
{
	const struct indexed_symbol *x = a, *y = b;

	if (x->sym.addr != y->sym.addr)
		return x->sym.addr < y->sym.addr ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Sorted by address, and at one address in the order added (the last one
 * added wins: a --sym file's over the log's own lines). */
static int sort_symbols(struct zcore_log *log)
{
	struct indexed_symbol *tmp;
	size_t n = log->symbol_count;

	if (log->symbols_sorted || n < 2) {
		log->symbols_sorted = true;
		return 0;
	}
	if (!(tmp = malloc(n * sizeof(*tmp))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		tmp[i] = (struct indexed_symbol){ log->symbols[i], i };
	qsort(tmp, n, sizeof(*tmp), by_addr_then_order);
	for (size_t i = 0; i < n; i++)
		log->symbols[i] = tmp[i].sym;
	free(tmp);
	log->symbols_sorted = true;
	return 0;
}

/* The name of the last symbol added at addr, or NULL. */
static const char *symbol_at(const struct zcore_log *log, uint64_t addr)
{
	size_t lo = 0, hi = log->symbol_count;

	while (lo < hi) { /* the first above addr */
		size_t mid = lo + (hi - lo) / 2;

		if (log->symbols[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && log->symbols[lo - 1].addr == addr ? log->symbols[lo - 1].name : NULL;
}

static int by_time_then_line(const void *a, const void *b)
{
	const struct zcore_record *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* GDB's log lost leading hex letters of some names (`ore::ptr::...` for
 * `core::ptr::...`): the symbol at the entry's address ends with the
 * logged name and what is missing is all hex letters. */
static bool is_cut_name(const char *logged, const char *full)
{
	size_t n = strlen(logged), m = strlen(full);

	if (n >= m || strcmp(full + (m - n), logged))
		return false;
	for (size_t i = 0; i < m - n; i++)
		if (!isxdigit((unsigned char)full[i]) && full[i] != 'x')
			return false;
	return true;
}

/* Renames every record logged as `logged` to `full` (exits carry the cut
 * name too, and no address to look it up by). */
static void rename_all(struct zcore_log *log, const char *logged, const char *full)
{
	char *cut = strdup(logged);

	if (!cut)
		return;
	for (size_t i = 0; i < log->record_count; i++)
		if (log->records[i].name && !strcmp(log->records[i].name, cut)) {
			log->records[i].name = full;
			log->repaired_names++;
		}
	free(cut);
}

int zcore_log__resolve(struct zcore_log *log)
{
	int err = sort_symbols(log);

	if (err)
		return err;
	/* Time order: the records of several logs interleave; ties keep the
	 * order they were read in. */
	if (log->record_count) /* records is NULL then: qsort's is nonnull */
		qsort(log->records, log->record_count, sizeof(*log->records), by_time_then_line);
	for (size_t i = 0; i < log->record_count; i++) {
		struct zcore_record *r = &log->records[i];
		const char *sym = r->addr_known ? symbol_at(log, r->addr) : NULL;

		if (!r->name)
			r->name = sym;
		else if (sym && r->kind == TRACE_EVENT_ENTRY && strcmp(r->name, sym) && is_cut_name(r->name, sym))
			rename_all(log, r->name, sym);
	}
	return 0;
}

static bool matches(const struct zcore_record *r, const char *pattern)
{
	return r->name && strstr(r->name, pattern);
}

/* A stream's state while splitting: the thread its current call of the
 * pattern moved to, and how deep such calls nest (0: outside any). */
struct split_stream {
	uint32_t tid, moved_to;
	size_t nesting;
};

static struct split_stream *split_stream_of(struct split_stream **streams, size_t *count, size_t *cap, uint32_t tid)
{
	for (size_t k = 0; k < *count; k++) /* streams are pids: few */
		if ((*streams)[k].tid == tid)
			return &(*streams)[k];
	if (ARRAY_RESERVE(*streams, *cap, *count + 1))
		return NULL;
	(*streams)[*count] = (struct split_stream){ .tid = tid };
	return &(*streams)[(*count)++];
}

int zcore_log__split_at_calls(struct zcore_log *log, const char *pattern, uint32_t first_tid, size_t *calls)
{
	struct split_stream *streams = NULL;
	size_t count = 0, cap = 0;

	*calls = 0;
	for (size_t i = 0; i < log->record_count; i++) {
		struct zcore_record *r = &log->records[i];
		struct split_stream *s = split_stream_of(&streams, &count, &cap, r->tid);
		bool is_call = matches(r, pattern);

		if (!s) {
			free(streams);
			return -ENOMEM;
		}
		if (is_call && r->kind == TRACE_EVENT_ENTRY) {
			if (!s->nesting++)
				s->moved_to = first_tid + (uint32_t)(*calls)++;
			r->tid = s->moved_to;
		} else if (s->nesting) {
			r->tid = s->moved_to;
			s->nesting -= is_call;
		}
	}
	free(streams);
	return 0;
}

int zcore_log__feed(struct zcore_log *log, struct import_builder *b)
{
	int err = 0;

	for (size_t i = 0; !err && i < log->symbol_count; i++)
		err = import_builder__add_symbol(b, log->symbols[i].addr, log->symbols[i].name);
	for (size_t i = 0; !err && i < log->record_count; i++) {
		const struct zcore_record *z = &log->records[i];
		struct import_record r = { .ts = z->ts, .line = z->line, .addr = z->addr_known ? z->addr : 0,
					   .name = z->name, .tid = z->tid, .depth = z->depth, .kind = z->kind };

		err = import_builder__add(b, &r);
	}
	return err;
}
