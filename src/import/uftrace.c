/* The uftrace.data reader. The layout and rules are uftrace's own (v0.13,
 * file versions 3 and 4): utils/data-file.c (info, task.txt),
 * utils/session.c (sid-*.map), utils/symbol.c (*.sym), utils/fstack.c
 * (records and the data after them), libmcount/record.c (LOST). */
#include <ctype.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "elf/demangle.h"
#include "import/uftrace.h"
#include "trace/trace.h"
#include "util/array.h"

#define INFO_MAGIC "Ftrace!"      /* with its NUL: 8 bytes */
#define INFO_HEADER_SIZE 40
#define FILE_VERSION_MIN 3
#define FILE_VERSION_MAX 4
#define SESSION_ID_LEN 16
#define RECORD_SIZE 16
#define COMM_LEN 16
#define PERF_RECORD_COMM 3
/* FORK lines link a child to its parent's session; a cycle in a damaged
 * task.txt must not loop. */
#define MAX_FORK_HOPS 64

struct uf_sym {
	uint64_t addr, size;  /* relative to the module's load base */
	char *raw;            /* as the .sym file has it (mangled) */
	char *name;           /* demangled, made at first use */
};

struct uf_symtab {
	char *file;
	struct uf_sym *syms;
	size_t count, cap;
};

struct uf_module {
	uint64_t start, end;
	struct uf_symtab *tab;  /* NULL: no .sym file */
};

struct uf_session {
	char sid[SESSION_ID_LEN + 1];
	uint32_t pid;
	uint64_t time;
	char *exename;
	struct uf_module *mods;
	size_t count, cap;
};

struct uf_task {
	uint32_t tid, pid, ppid;  /* ppid 0: no FORK line */
	char comm[COMM_LEN];
};

struct uftrace_data {
	char *dir;
	char *exename, *cmdline, *version;
	uint32_t file_version;
	struct uf_session *sessions;
	size_t session_count, session_cap;
	struct uf_task *tasks;
	size_t task_count, task_cap;
	struct uf_symtab **tabs;
	size_t tab_count, tab_cap;
};

/* Fills `why` and returns err (negative), so error paths are one line. */
__attribute__((format(printf, 4, 5))) static int fail(char *why, size_t len, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return err;
}

static char *path_of(const struct uftrace_data *d, const char *name)
{
	size_t len = strlen(d->dir) + strlen(name) + 2;
	char *p = malloc(len);

	if (p)
		snprintf(p, len, "%s/%s", d->dir, name);
	return p;
}

/* dir/name opened, or a negative errno with `why` said; *file is the
 * path (freed by the caller, also on failure). */
static int open_in(const struct uftrace_data *d, const char *name, const char *mode, FILE **f, char **file,
		   char *why, size_t why_len)
{
	if (!(*file = path_of(d, name)))
		return fail(why, why_len, -ENOMEM, "out of memory");
	if (!(*f = fopen(*file, mode)))
		return fail(why, why_len, -errno, "%s: %s", *file, strerror(errno));
	return 0;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

static void chomp(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

void uftrace_bits__decode(uint64_t word, struct uftrace_bits *bits)
{
	/* uftrace's `type:2 more:1 magic:3 depth:10 addr:48` bitfield as
	 * GCC lays it out on a little-endian machine: the first field lowest */
	bits->type = word & 3;
	bits->more = (word >> 2) & 1;
	bits->magic = (word >> 3) & 7;
	bits->depth = (word >> 6) & 0x3ff;
	bits->addr = word >> 16;
}

/* `ADDR [SIZE ]TYPE NAME`: false for other lines (comments included). */
static bool parse_sym_line(char *line, uint64_t *addr, uint64_t *size, char *type, char **name)
{
	char *pos;

	if (!isxdigit((unsigned char)line[0]))
		return false;
	*addr = strtoull(line, &pos, 16);
	*size = 0;
	if (*pos++ != ' ')
		return false;
	if (isdigit((unsigned char)*pos)) { /* newer files give the size */
		*size = strtoull(pos, &pos, 16);
		if (*pos++ != ' ')
			return false;
	}
	*type = *pos++;
	if (!*type || *pos++ != ' ' || !*pos)
		return false;
	*name = pos;
	if ((pos = strchr(pos, '\t'))) /* kernel symbols: "name\t[module]" */
		*pos = '\0';
	return true;
}

static int by_sym_addr(const void *a, const void *b)
{
	const struct uf_sym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* As uftrace's load_module_symbol_file: the types it keeps, duplicates
 * dropped, a size from the next symbol (or an end marker) when the file
 * gives none. */
static int symtab_read(struct uf_symtab *t, FILE *f)
{
	char *line = NULL, prev_type = 0, type, *name;
	size_t cap = 0;
	uint64_t addr, size, prev_addr = UINT64_MAX;
	int err = 0;

	while (!err && getline(&line, &cap, f) > 0) {
		struct uf_sym *last = t->count ? &t->syms[t->count - 1] : NULL;

		chomp(line);
		if (!parse_sym_line(line, &addr, &size, &type, &name))
			continue;
		if ((addr == prev_addr && type == prev_type) || !strchr("?TtwPKDdvu", type))
			continue;
		prev_addr = addr;
		prev_type = type;
		if (last && !last->size && addr > last->addr)
			last->size = addr - last->addr;
		if (type == '?' || !strcmp(name, "__sym_end") || !strcmp(name, "__dynsym_end") ||
		    !strcmp(name, "__func_end")) /* markers that only end the symbol before */
			continue;
		if (ARRAY_RESERVE(t->syms, t->cap, t->count + 1) || !(name = strdup(name))) {
			err = -ENOMEM;
			break;
		}
		t->syms[t->count++] = (struct uf_sym){ .addr = addr, .size = size, .raw = name };
	}
	free(line);
	if (!err && ferror(f))
		err = -EIO;
	if (t->count)
		qsort(t->syms, t->count, sizeof(*t->syms), by_sym_addr);
	return err;
}

static void symtab_free(struct uf_symtab *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->count; i++) {
		free(t->syms[i].raw);
		free(t->syms[i].name);
	}
	free(t->syms);
	free(t->file);
	free(t);
}

/* The table of a .sym file, read once however many maps name it; NULL
 * with 0 when the file does not exist. */
static int symtab_get(struct uftrace_data *d, const char *file, struct uf_symtab **out)
{
	struct uf_symtab *t;
	FILE *f;
	int err;

	*out = NULL;
	for (size_t i = 0; i < d->tab_count; i++)
		if (!strcmp(d->tabs[i]->file, file)) {
			*out = d->tabs[i];
			return 0;
		}
	if (!(f = fopen(file, "r")))
		return errno == ENOENT ? 0 : -errno;
	if (!(t = calloc(1, sizeof(*t))) || !(t->file = strdup(file)) ||
	    ARRAY_RESERVE(d->tabs, d->tab_cap, d->tab_count + 1)) {
		symtab_free(t);
		fclose(f);
		return -ENOMEM;
	}
	err = symtab_read(t, f);
	fclose(f);
	if (err) {
		symtab_free(t);
		return err;
	}
	d->tabs[d->tab_count++] = t;
	*out = t;
	return 0;
}

/* The symbol containing rel, or NULL. */
static struct uf_sym *symtab_find(struct uf_symtab *t, uint64_t rel)
{
	size_t lo = 0, hi = t->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct uf_sym *s = &t->syms[mid];

		if (rel < s->addr)
			hi = mid;
		else if (rel - s->addr >= s->size)
			lo = mid + 1;
		else
			return s;
	}
	return NULL;
}

/* A second binary of the same file name (another session's, a rebuilt
 * one) has its table in NAME-<first 4 build-id characters>.sym. */
static int module_symtab(struct uftrace_data *d, const char *path, const char *build_id, struct uf_symtab **out)
{
	char name[512], *file;
	int err = 0;

	*out = NULL;
	for (int plain = !build_id[0]; plain < 2 && !err && !*out; plain++) {
		snprintf(name, sizeof(name), plain ? "%s.sym" : "%s-%.4s.sym", base_name(path), build_id);
		if (!(file = path_of(d, name)))
			return -ENOMEM;
		err = symtab_get(d, file, out);
		free(file);
	}
	return err;
}

static int session_add_module(struct uf_session *s, uint64_t start, uint64_t end, struct uf_symtab *tab)
{
	if (ARRAY_RESERVE(s->mods, s->cap, s->count + 1))
		return -ENOMEM;
	s->mods[s->count++] = (struct uf_module){ start, end, tab };
	return 0;
}

/* One map line: the first mapping of a file is its load base, later ones
 * of the same file (consecutive) extend it, as in read_session_map. */
static int map_line(struct uftrace_data *d, struct uf_session *s, const char *line, char *last, size_t last_len)
{
	char prot[8], path[4096], build[128] = "";
	uint64_t start, end;
	struct uf_symtab *tab;
	int err;

	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %*x %*x:%*x %*d %4095s %127s", &start, &end, prot, path,
		   build) < 4 || path[0] == '[')
		return 0;
	if (s->count && !strcmp(last, path)) {
		s->mods[s->count - 1].end = end;
		return 0;
	}
	snprintf(last, last_len, "%s", path);
	if ((err = module_symtab(d, path, strncmp(build, "build-id:", 9) ? "" : build + 9, &tab)))
		return err;
	return session_add_module(s, start, end, tab);
}

static int read_session_map(struct uftrace_data *d, struct uf_session *s, char *why, size_t why_len)
{
	char name[64], *file, *line = NULL, last[4096] = "";
	size_t cap = 0;
	FILE *f;
	int err = 0;

	snprintf(name, sizeof(name), "sid-%s.map", s->sid);
	if ((err = open_in(d, name, "r", &f, &file, why, why_len))) {
		free(file);
		return err;
	}
	while (!err && getline(&line, &cap, f) > 0)
		err = map_line(d, s, line, last, sizeof(last));
	if (err)
		fail(why, why_len, err, "%s: %s", file, strerror(-err));
	free(line);
	fclose(f);
	free(file);
	return err;
}

static struct uf_task *task_of(struct uftrace_data *d, uint32_t tid, bool create)
{
	for (size_t i = 0; i < d->task_count; i++)
		if (d->tasks[i].tid == tid)
			return &d->tasks[i];
	if (!create || ARRAY_RESERVE(d->tasks, d->task_cap, d->task_count + 1))
		return NULL;
	d->tasks[d->task_count] = (struct uf_task){ .tid = tid, .pid = tid };
	return &d->tasks[d->task_count++];
}

/* "SESS timestamp=S.N pid=P sid=SID exename="PATH"" */
static int sess_line(struct uftrace_data *d, const char *line, char *why, size_t why_len)
{
	unsigned long sec, nsec;
	unsigned pid;
	char sid[SESSION_ID_LEN + 1];
	const char *exe = strstr(line, "exename=\"");
	struct uf_session *s;

	if (sscanf(line, "SESS timestamp=%lu.%lu pid=%u sid=%16s", &sec, &nsec, &pid, sid) != 4 || !exe)
		return -EINVAL;
	if (ARRAY_RESERVE(d->sessions, d->session_cap, d->session_count + 1))
		return -ENOMEM;
	s = &d->sessions[d->session_count++];
	*s = (struct uf_session){ .pid = pid, .time = (uint64_t)sec * 1000000000u + nsec };
	memcpy(s->sid, sid, sizeof(sid));
	if (!(s->exename = strdup(exe + 9)))
		return -ENOMEM;
	if (strrchr(s->exename, '"'))
		*strrchr(s->exename, '"') = '\0';
	return read_session_map(d, s, why, why_len);
}

static int task_line(struct uftrace_data *d, const char *line, char *why, size_t why_len)
{
	unsigned long sec, nsec;
	unsigned a, b;
	struct uf_task *t;

	if (!strncmp(line, "SESS ", 5))
		return sess_line(d, line, why, why_len);
	if (!strncmp(line, "DLOP ", 5)) /* dlopen'ed later: its calls stay unnamed */
		return 0;
	if (sscanf(line, "TASK timestamp=%lu.%lu tid=%u pid=%u", &sec, &nsec, &a, &b) == 4) {
		if (!(t = task_of(d, a, true)))
			return -ENOMEM;
		t->pid = b;
		return 0;
	}
	if (sscanf(line, "FORK timestamp=%lu.%lu pid=%u ppid=%u", &sec, &nsec, &a, &b) == 4) {
		if (!(t = task_of(d, a, true)))
			return -ENOMEM;
		t->ppid = b;
		return 0;
	}
	return -EINVAL;
}

static int read_task_txt(struct uftrace_data *d, char *why, size_t why_len)
{
	char *file, *line = NULL;
	size_t cap = 0;
	uint64_t number = 0;
	FILE *f;
	int err = open_in(d, "task.txt", "r", &f, &file, why, why_len);

	if (err) {
		free(file);
		return err;
	}
	while (!err && getline(&line, &cap, f) > 0) {
		number++;
		chomp(line);
		err = line[0] ? task_line(d, line, why, why_len) : 0;
		if (err == -EINVAL) { /* uftrace itself gives up on such a line */
			for (char *c = line; *c; c++) /* a damaged file's bytes stay off the terminal */
				*c = isprint((unsigned char)*c) ? *c : '?';
			fail(why, why_len, err, "%s: line %" PRIu64 " not understood: %.80s", file, number, line);
		} else if (err == -ENOMEM) {
			fail(why, why_len, err, "out of memory");
		}
	}
	free(line);
	fclose(f);
	free(file);
	return err;
}

/* The session a task's record at ts belongs to: its process's latest one
 * begun by then (an exec starts another), else its parent's (a fork
 * keeps the parent's maps), else the first. */
static struct uf_session *session_of(struct uftrace_data *d, uint32_t pid, uint64_t ts)
{
	for (int hop = 0; hop < MAX_FORK_HOPS; hop++) {
		struct uf_session *best = NULL;
		struct uf_task *t;

		for (size_t i = 0; i < d->session_count; i++) {
			struct uf_session *s = &d->sessions[i];

			if (s->pid == pid && (!best || (s->time <= ts && s->time >= best->time) || best->time > ts))
				best = s;
		}
		if (best)
			return best;
		if (!(t = task_of(d, pid, false)) || !t->ppid)
			break;
		pid = t->ppid;
	}
	return d->session_count ? &d->sessions[0] : NULL;
}

static int info_header(FILE *f, const char *file, struct uftrace_data *d, char *why, size_t why_len)
{
	unsigned char h[INFO_HEADER_SIZE];
	uint16_t header_size;
	size_t n = fread(h, 1, sizeof(h), f);

	if (n < 8 || memcmp(h, INFO_MAGIC, sizeof(INFO_MAGIC)))
		return fail(why, why_len, -EINVAL, "%s: not uftrace data (no \"Ftrace!\" magic)", file);
	if (n < sizeof(h))
		return fail(why, why_len, -EINVAL, "%s: truncated header (%zu of %d bytes)", file, n,
			    INFO_HEADER_SIZE);
	memcpy(&d->file_version, h + 8, 4);
	memcpy(&header_size, h + 12, 2);
	if (h[14] != ELFDATA2LSB) /* the records' bitfield layout is the recorder's */
		return fail(why, why_len, -ENOTSUP, "%s: big-endian data is not supported", file);
	if (d->file_version < FILE_VERSION_MIN || d->file_version > FILE_VERSION_MAX)
		return fail(why, why_len, -ENOTSUP, "%s: unsupported file version %" PRIu32 " (3 or 4 are read)",
			    file, d->file_version);
	if (header_size < INFO_HEADER_SIZE || fseek(f, header_size, SEEK_SET))
		return fail(why, why_len, -EINVAL, "%s: bad header size %u", file, (unsigned)header_size);
	return 0;
}

static int info_strings(FILE *f, struct uftrace_data *d)
{
	static const char *keys[] = { "exename:", "cmdline:", "uftrace_version:" };
	char **slots[] = { &d->exename, &d->cmdline, &d->version };
	char *line = NULL;
	size_t cap = 0;
	int err = 0;

	while (!err && getline(&line, &cap, f) > 0) {
		chomp(line);
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			if (strncmp(line, keys[i], strlen(keys[i])) || *slots[i])
				continue;
			if (!(*slots[i] = strdup(line + strlen(keys[i]))))
				err = -ENOMEM;
		}
	}
	free(line);
	return err;
}

static int read_info(struct uftrace_data *d, char *why, size_t why_len)
{
	char *file;
	FILE *f;
	int err = open_in(d, "info", "rb", &f, &file, why, why_len);

	if (err) {
		free(file);
		return err;
	}
	err = info_header(f, file, d, why, why_len);
	if (!err && (err = info_strings(f, d)))
		fail(why, why_len, err, "out of memory");
	fclose(f);
	free(file);
	return err;
}

int uftrace_data__open(struct uftrace_data **out, const char *dir, char *why, size_t why_len)
{
	struct uftrace_data *d;
	struct stat st;
	int err;

	*out = NULL;
	if (stat(dir, &st))
		return fail(why, why_len, -errno, "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail(why, why_len, -ENOTDIR, "%s: not a directory (give the uftrace.data directory)", dir);
	if (!(d = calloc(1, sizeof(*d))) || !(d->dir = strdup(dir))) {
		free(d);
		return fail(why, why_len, -ENOMEM, "out of memory");
	}
	if ((err = read_info(d, why, why_len)) || (err = read_task_txt(d, why, why_len))) {
		uftrace_data__free(d);
		return err;
	}
	*out = d;
	return 0;
}

void uftrace_data__free(struct uftrace_data *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->session_count; i++) {
		free(d->sessions[i].exename);
		free(d->sessions[i].mods);
	}
	for (size_t i = 0; i < d->tab_count; i++)
		symtab_free(d->tabs[i]);
	free(d->sessions);
	free(d->tasks);
	free(d->tabs);
	free(d->exename);
	free(d->cmdline);
	free(d->version);
	free(d->dir);
	free(d);
}

/* `--clock NAME` on the recording's command line, up to the command. */
uint32_t uftrace_data__clock(const struct uftrace_data *d)
{
	static const struct { const char *name; uint32_t id; } clocks[] = {
		{ "mono", CLOCK_MONOTONIC }, { "mono_raw", CLOCK_MONOTONIC_RAW },
		{ "boot", CLOCK_BOOTTIME }, { "realtime", CLOCK_REALTIME },
	};
	const char *exe = d->exename ? base_name(d->exename) : "";
	char *copy = d->cmdline ? strdup(d->cmdline) : NULL, *save = NULL, *value = NULL;
	uint32_t id = CLOCK_MONOTONIC;

	for (char *tok = copy ? strtok_r(copy, " ", &save) : NULL; tok; tok = strtok_r(NULL, " ", &save)) {
		if (*exe && !strcmp(base_name(tok), exe))
			break;
		if (!strncmp(tok, "--clock=", 8))
			value = tok + 8;
		else if (!strcmp(tok, "--clock"))
			value = strtok_r(NULL, " ", &save);
	}
	for (size_t i = 0; value && i < sizeof(clocks) / sizeof(clocks[0]); i++)
		if (!strcmp(value, clocks[i].name))
			id = clocks[i].id;
	free(copy);
	return id;
}

/* The architecture uftrace was built for: "v0.13 ( x86_64 dwarf ... )". */
uint16_t uftrace_data__machine(const struct uftrace_data *d)
{
	const char *arch = d->version ? strchr(d->version, '(') : NULL;

	if (!arch)
		return 0;
	arch += strspn(arch + 1, " ") + 1;
	return !strncmp(arch, "x86_64 ", 7) ? EM_X86_64 : !strncmp(arch, "aarch64 ", 8) ? EM_AARCH64
	       : !strncmp(arch, "riscv64 ", 8) ? EM_RISCV : !strncmp(arch, "arm ", 4) ? EM_ARM
	       : !strncmp(arch, "i386 ", 5) ? EM_386 : 0;
}

/* PERF_RECORD_COMM records (pid, tid, comm aligned to 8, sample id) say
 * what each thread called itself; other perf records are skipped. A
 * damaged file only costs names. */
static void read_perf_comms(struct uftrace_data *d, const char *file)
{
	unsigned char h[8], body[256];
	FILE *f = fopen(file, "rb");

	while (f && fread(h, 1, sizeof(h), f) == sizeof(h)) {
		uint32_t type, tid;
		uint16_t size;
		struct uf_task *t;

		memcpy(&type, h, 4);
		memcpy(&size, h + 6, 2);
		if (size < sizeof(h) || size - sizeof(h) > sizeof(body) ||
		    fread(body, 1, size - sizeof(h), f) != size - sizeof(h))
			break;
		if (type != PERF_RECORD_COMM || size < sizeof(h) + 8 + 1)
			continue;
		memcpy(&tid, body + 4, 4);
		if ((t = task_of(d, tid, false)))
			snprintf(t->comm, sizeof(t->comm), "%.*s", (int)(size - sizeof(h) - 8), body + 8);
	}
	if (f)
		fclose(f);
}

static int name_threads(struct uftrace_data *d, struct import_builder *b)
{
	for (size_t i = 0; i < d->task_count; i++) {
		struct uf_task *t = &d->tasks[i];
		struct uf_session *s = session_of(d, t->pid, UINT64_MAX);
		const char *name = t->comm[0] ? t->comm : NULL;
		int err;

		if (!name && t->tid == t->pid && s) /* a process is named after its program */
			name = base_name(s->exename);
		if (name && (err = import_builder__name_thread(b, t->tid, name)))
			return err;
	}
	return 0;
}

struct thread_file {
	const char *file;
	uint32_t tid;
	uint32_t pid;
	uint64_t index;     /* the record being read, 0-based */
	uint64_t offset;    /* its byte offset */
	char *why;
	size_t why_len;
};

static int truncated(struct thread_file *tf, size_t got, size_t want)
{
	return fail(tf->why, tf->why_len, -EINVAL, "%s: truncated at record %" PRIu64 " (offset %" PRIu64
		    ": %zu of %zu bytes)", tf->file, tf->index, tf->offset, got, want);
}

/* EVENT data: a u16 length, the data, padding to 8 bytes. */
static int skip_event_data(FILE *f, struct thread_file *tf)
{
	unsigned char scratch[256];
	uint16_t len;
	size_t left, n;

	if ((n = fread(&len, 1, sizeof(len), f)) != sizeof(len))
		return truncated(tf, RECORD_SIZE + n, RECORD_SIZE + sizeof(len));
	left = len + ((len + 2) % 8 ? 8 - (len + 2) % 8 : 0);
	tf->offset += sizeof(len) + left;
	while (left) {
		size_t chunk = left < sizeof(scratch) ? left : sizeof(scratch);

		if (fread(scratch, 1, chunk, f) != chunk)
			return fail(tf->why, tf->why_len, -EINVAL, "%s: truncated in the event data of record %" PRIu64,
				    tf->file, tf->index);
		left -= chunk;
	}
	return 0;
}

/* Named here also when no symbol covers it: the builder's own fallback
 * would point at --sym, which this import does not have. */
static void resolve(struct uftrace_data *d, const struct thread_file *tf, struct import_record *r,
		    char *fallback, size_t len, struct uftrace_counts *counts)
{
	struct uf_session *s = session_of(d, tf->pid, r->ts);

	for (size_t i = 0; s && i < s->count; i++) {
		struct uf_module *m = &s->mods[i];
		struct uf_sym *sym;

		if (r->addr < m->start || r->addr >= m->end)
			continue;
		/* -pg's mcount sees a return address inside the function: the
		 * symbol holding it is the function */
		if (!m->tab || !(sym = symtab_find(m->tab, r->addr - m->start)))
			break;
		if (!sym->name)
			sym->name = rust_is_mangled(sym->raw) ? demangle_symbol(sym->raw) : strdup(sym->raw);
		r->addr = m->start + sym->addr;
		r->name = sym->name; /* NULL when out of memory: named by address */
		return;
	}
	snprintf(fallback, len, "0x%" PRIx64, r->addr);
	r->name = fallback;
	counts->unresolved++;
}

static int one_record(struct uftrace_data *d, struct import_builder *b, FILE *f, const unsigned char *raw,
		      struct thread_file *tf, struct uftrace_counts *counts)
{
	struct import_record r = { .tid = tf->tid, .line = tf->index + 1 };
	struct uftrace_bits bits;
	char fallback[24];
	uint64_t word;

	memcpy(&r.ts, raw, 8);
	memcpy(&word, raw + 8, 8);
	uftrace_bits__decode(word, &bits);
	counts->records++;
	if (bits.magic != UFTRACE_RECORD_MAGIC)
		return fail(tf->why, tf->why_len, -EINVAL, "%s: record %" PRIu64 " (offset %" PRIu64
			    "): bad magic %u, want %u", tf->file, tf->index, tf->offset, bits.magic,
			    UFTRACE_RECORD_MAGIC);
	if (bits.type == UFTRACE_EVENT) {
		counts->events++;
		return bits.more ? skip_event_data(f, tf) : 0;
	}
	if (bits.type == UFTRACE_LOST) { /* written when a buffer overflowed: addr counts the drops */
		counts->lost_records++;
		counts->lost_events += bits.addr;
		return 0;
	}
	if (bits.more) /* its length is in the argument specs: not read here */
		return fail(tf->why, tf->why_len, -ENOTSUP, "%s: record %" PRIu64 " carries arguments or a return "
			    "value (recorded with -A/-R/-a); record without them to import", tf->file, tf->index);
	r.kind = bits.type == UFTRACE_ENTRY ? TRACE_EVENT_ENTRY : TRACE_EVENT_EXIT;
	r.depth = bits.depth;
	r.addr = bits.addr;
	resolve(d, tf, &r, fallback, sizeof(fallback), counts);
	counts->entries += bits.type == UFTRACE_ENTRY;
	counts->exits += bits.type == UFTRACE_EXIT;
	if (import_builder__add(b, &r))
		return fail(tf->why, tf->why_len, -ENOMEM, "out of memory");
	return 0;
}

static int read_thread(struct uftrace_data *d, struct import_builder *b, struct thread_file *tf,
		       struct uftrace_counts *counts)
{
	unsigned char raw[RECORD_SIZE];
	FILE *f = fopen(tf->file, "rb");
	size_t n;
	int err = 0;

	if (!f)
		return fail(tf->why, tf->why_len, -errno, "%s: %s", tf->file, strerror(errno));
	while (!err && (n = fread(raw, 1, sizeof(raw), f)) == sizeof(raw)) {
		err = one_record(d, b, f, raw, tf, counts);
		tf->index++;
		tf->offset += sizeof(raw);
	}
	if (!err && ferror(f))
		err = fail(tf->why, tf->why_len, -EIO, "%s: %s", tf->file, strerror(EIO));
	else if (!err && n)
		err = truncated(tf, n, sizeof(raw));
	fclose(f);
	counts->threads++;
	return err;
}

/* "TID.dat", the tid; 0 for other names. */
static uint32_t dat_tid(const char *name)
{
	char *end;
	unsigned long tid;

	if (!isdigit((unsigned char)name[0]))
		return 0;
	tid = strtoul(name, &end, 10);
	return strcmp(end, ".dat") || tid > UINT32_MAX ? 0 : (uint32_t)tid;
}

static int by_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The directory's TID.dat files in tid order (the import is the same
 * whatever order readdir gives), and perf-cpu*.dat read for names. */
static int list_threads(struct uftrace_data *d, uint32_t **tids, size_t *count)
{
	size_t cap = 0;
	struct dirent *e;
	DIR *dir = opendir(d->dir);

	*tids = NULL;
	*count = 0;
	if (!dir)
		return -errno;
	while ((e = readdir(dir))) {
		uint32_t tid = dat_tid(e->d_name);
		char *file;

		if (!strncmp(e->d_name, "perf-cpu", 8) && (file = path_of(d, e->d_name))) {
			read_perf_comms(d, file);
			free(file);
		}
		if (!tid)
			continue;
		if (ARRAY_RESERVE(*tids, cap, *count + 1)) {
			closedir(dir);
			return -ENOMEM;
		}
		(*tids)[(*count)++] = tid;
	}
	closedir(dir);
	if (*count)
		qsort(*tids, *count, sizeof(**tids), by_u32);
	return 0;
}

int uftrace_data__import(struct uftrace_data *d, struct import_builder *b, struct uftrace_counts *counts,
			 char *why, size_t why_len)
{
	uint32_t *tids;
	size_t count;
	int err;

	*counts = (struct uftrace_counts){ 0 };
	if ((err = list_threads(d, &tids, &count)))
		return fail(why, why_len, err, "%s: %s", d->dir, strerror(-err));
	for (size_t i = 0; i < count && !err; i++) {
		char name[32], *file;
		struct uf_task *t = task_of(d, tids[i], false);
		struct thread_file tf = { .tid = tids[i], .pid = t ? t->pid : tids[i], .why = why,
					  .why_len = why_len };

		snprintf(name, sizeof(name), "%" PRIu32 ".dat", tids[i]);
		if (!(file = path_of(d, name))) {
			err = fail(why, why_len, -ENOMEM, "out of memory");
			break;
		}
		tf.file = file;
		err = read_thread(d, b, &tf, counts);
		free(file);
	}
	free(tids);
	if (!err && (err = name_threads(d, b)))
		fail(why, why_len, err, "out of memory");
	return err;
}
