/* CAT's Chrome trace JSON (and zCore dump.py's) as import records. The
 * whole file is parsed with json-c first: the inputs are small (CAT's
 * profiles are kilobytes, dump.py's a few hundred), and a parse error is
 * then reported with its line and column before anything is imported.
 * Every event is checked before use: a B/E/X event without a phase, name
 * or time refuses the file (it is not the trace we think it is), other
 * phases are counted and skipped. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "import/cat.h"
#include "trace/writer.h"
#include "util/array.h"
#include "util/hash.h"
#include "util/u64map.h"

/* dump.py (zCore's Chrome converter) adds this to every E event: the one
 * sign that its ts are the probe's clock, not Chrome's µs. */
#define DUMP_PY_ADDRESS_ARG "Function address (For recognizing anonymous type)"

/* A record before it goes to the builder, with the keys that order
 * records of one timestamp (see by_time_then_nesting). */
struct cat_record {
	uint64_t ts;
	uint64_t rank;   /* 0: X exit closing an earlier entry, 1: B/E, X entry, 2: X exit of a 0-length X */
	uint64_t sub;    /* within a rank: later-entered exits first, longer entries first */
	uint64_t order;  /* then file order (reversed for X exits: inner ones close first) */
	uint64_t event;  /* 1-based index in traceEvents */
	const char *name; /* owned by the JSON tree */
	uint32_t tid;
	uint8_t kind;
};

struct cat_thread_name {
	uint32_t tid;
	bool is_thread;  /* thread_name, which wins over process_name */
	const char *name;
};

struct cat_input {
	json_object *root;
	struct cat_record *records;
	size_t record_count, record_cap;
	struct cat_thread_name *names;
	size_t name_count, name_cap;
	struct u64map tids;      /* tid + 1 of every record: only those threads are named */
	struct cat_stats stats;
};

static const uint64_t ns_per_unit[] = {
	[CAT_TS_NS] = 1, [CAT_TS_US] = 1000, [CAT_TS_MS] = 1000000, [CAT_TS_S] = 1000000000,
};
static const char *const unit_names[] = {
	[CAT_TS_AUTO] = "auto", [CAT_TS_NS] = "ns", [CAT_TS_US] = "us", [CAT_TS_MS] = "ms", [CAT_TS_S] = "s",
};

int cat_ts_unit_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(unit_names) / sizeof(unit_names[0]); i++)
		if (!strcmp(name, unit_names[i]))
			return (int)i;
	return -1;
}

const char *cat_ts_unit_name(enum cat_ts_unit unit)
{
	return (unsigned)unit < sizeof(unit_names) / sizeof(unit_names[0]) ? unit_names[unit] : "?";
}

void cat_normalise_name(const char *name, char *buf, size_t len)
{
	static const char cat[] = "::_{{closure}}";
	size_t n = 0;

	if (!len)
		return;
	while (*name && n + 1 < len) {
		if (!strncmp(name, cat, sizeof(cat) - 1)) {
			name += 3; /* keep "::", drop the "_" */
			buf[n++] = ':';
			if (n + 1 < len)
				buf[n++] = ':';
			continue;
		}
		buf[n++] = *name++;
	}
	buf[n] = '\0';
}

static void set_error(struct cat_error *err, uint64_t event, const char *what)
{
	err->event = event;
	snprintf(err->what, sizeof(err->what), "%s", what);
}

/* The whole file, NUL-terminated. A directory opens but does not read:
 * fstat says so first. */
static int read_whole_file(const char *path, char **data, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 1 << 16, n = 0;
	struct stat st;
	char *buf;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	buf = malloc(cap);
	while (buf) {
		ssize_t got;

		if (n + 1 >= cap && ARRAY_RESERVE(buf, cap, cap * 2))
			break;
		got = read(fd, buf + n, cap - n - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			int e = got < 0 ? -errno : 0;

			close(fd);
			if (e) {
				free(buf);
				return e;
			}
			buf[n] = '\0';
			*data = buf;
			*len = n;
			return 0;
		}
		n += (size_t)got;
	}
	free(buf);
	close(fd);
	return -ENOMEM;
}

static void locate(const char *data, size_t offset, struct cat_error *err)
{
	const char *line_start = data;

	err->line = 1;
	for (size_t i = 0; i < offset; i++)
		if (data[i] == '\n') {
			err->line++;
			line_start = data + i + 1;
		}
	err->column = (uint64_t)(data + offset - line_start) + 1;
}

static bool only_space(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!strchr(" \t\r\n", s[i]))
			return false;
	return true;
}

/* json-c's own position and wording for a syntax error; a file that ends
 * inside the value (truncated) is said so. A NUL byte is refused before
 * json-c, which would take it for the end of the input. */
static int parse_json(const char *data, size_t len, json_object **root, struct cat_error *err)
{
	const char *nul = memchr(data, '\0', len);
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	bool ended_early;
	size_t end;

	if (nul || len >= INT_MAX) {
		locate(data, nul ? (size_t)(nul - data) : 0, err);
		snprintf(err->what, sizeof(err->what), nul ? "a NUL byte (not JSON text)" : "file too large");
		return nul ? -EBADMSG : -EFBIG;
	}
	if (!(tok = json_tokener_new()))
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	/* the terminating NUL too: it ends a top-level number ("42") */
	*root = json_tokener_parse_ex(tok, data, (int)len + 1);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	end = end < len ? end : len;
	json_tokener_free(tok);
	if (*root && only_space(data + end, len - end))
		return 0;
	json_object_put(*root);
	*root = NULL;
	ended_early = jerr == json_tokener_continue || jerr == json_tokener_error_parse_eof;
	locate(data, end, err);
	snprintf(err->what, sizeof(err->what), "%s",
		 jerr == json_tokener_success ? "unexpected data after the JSON value"
		 : ended_early && only_space(data, len) ? "empty file"
		 : ended_early ? "unexpected end of file (truncated?)"
		 : json_tokener_error_desc(jerr));
	return -EBADMSG;
}

/* The array form, or the object form's traceEvents. */
static json_object *events_of(json_object *root)
{
	json_object *events;

	if (json_object_is_type(root, json_type_array))
		return root;
	if (json_object_is_type(root, json_type_object) && json_object_object_get_ex(root, "traceEvents", &events) &&
	    json_object_is_type(events, json_type_array))
		return events;
	return NULL;
}

static const char *string_field(json_object *ev, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(ev, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool has_dump_py_address(json_object *ev)
{
	json_object *args, *v;

	return json_object_object_get_ex(ev, "args", &args) && json_object_is_type(args, json_type_object) &&
	       json_object_object_get_ex(args, DUMP_PY_ADDRESS_ARG, &v);
}

/* AUTO: Chrome's µs, except in dump.py's files, whose integer ts are
 * bpf_ktime_get_ns() and whose fractional ts are GDB's time.time(). */
static enum cat_ts_unit detect_unit(json_object *events, struct cat_stats *st)
{
	size_t count = json_object_array_length(events);
	bool fractional = false;

	for (size_t i = 0; i < count; i++) {
		json_object *ev = json_object_array_get_idx(events, i), *ts;

		if (!json_object_is_type(ev, json_type_object))
			continue;
		st->from_dump_py |= has_dump_py_address(ev);
		if (json_object_object_get_ex(ev, "ts", &ts) && json_object_is_type(ts, json_type_double))
			fractional = true;
	}
	if (!st->from_dump_py)
		return CAT_TS_US;
	return fractional ? CAT_TS_S : CAT_TS_NS;
}

/* A ts or dur in ns. Integers stay exact (ns since boot need 64 bits). */
static int time_field(json_object *ev, const char *key, enum cat_ts_unit unit, uint64_t *ns)
{
	uint64_t mult = ns_per_unit[unit];
	json_object *v;

	if (!json_object_object_get_ex(ev, key, &v))
		return -ENOENT;
	if (json_object_is_type(v, json_type_int)) {
		int64_t i = json_object_get_int64(v);
		uint64_t u = i == INT64_MAX ? json_object_get_uint64(v) : (uint64_t)i;

		if (i < 0 || u > UINT64_MAX / mult)
			return -ERANGE;
		*ns = u * mult;
		return 0;
	}
	if (json_object_is_type(v, json_type_double)) {
		double d = json_object_get_double(v) * (double)mult;

		if (!isfinite(d) || d < 0 || d >= 18446744073709551615.0)
			return -ERANGE;
		*ns = (uint64_t)(d + 0.5);
		return 0;
	}
	return -EINVAL;
}

/* Chrome's ids are numbers; CAT and dump.py write strings ("55559",
 * " 1073"). Ids above 32 bits keep their low half: zCore's u64 -1 (no
 * current thread) becomes 4294967295. A string that is no number is a
 * label: its hash tells its thread apart. */
static uint32_t id_of(json_object *v)
{
	const char *s;
	char *end;
	unsigned long long n;

	if (json_object_is_type(v, json_type_int))
		return (uint32_t)json_object_get_int64(v);
	if (json_object_is_type(v, json_type_double)) {
		double d = json_object_get_double(v);

		/* out of int64's range the conversion is undefined (found by fuzzing) */
		return isfinite(d) && d > -9.2e18 && d < 9.2e18 ? (uint32_t)(int64_t)d : 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return 0;
	s = json_object_get_string(v);
	s += strspn(s, " \t");
	errno = 0;
	n = strtoull(s, &end, 10);
	if (end != s && *s != '-' && only_space(end, strlen(end)))
		return (uint32_t)n;
	return (uint32_t)hash_string(s);
}

/* The event's thread: its tid, else its pid (CAT writes the main thread's
 * events with a pid only). */
static uint32_t tid_of(json_object *ev)
{
	json_object *v;

	if (json_object_object_get_ex(ev, "tid", &v) || json_object_object_get_ex(ev, "pid", &v))
		return id_of(v);
	return 0;
}

static int push_record(struct cat_input *in, const struct cat_record *r)
{
	if (ARRAY_RESERVE(in->records, in->record_cap, in->record_count + 1))
		return -ENOMEM;
	in->records[in->record_count++] = *r;
	return u64map_put(&in->tids, (uint64_t)r->tid + 1, (void *)1);
}

static int time_error(int e, const char *key, char ph, uint64_t event, struct cat_error *err)
{
	char what[64];

	snprintf(what, sizeof(what), "%c event %s \"%s\"", ph,
		 e == -ENOENT ? "without" : e == -ERANGE ? "with an out-of-range" : "with a non-numeric", key);
	set_error(err, event, what);
	return -EINVAL;
}

/* B, E, or X (an entry, and an exit dur later). */
static int read_span_event(struct cat_input *in, json_object *ev, char ph, uint64_t event, struct cat_error *err)
{
	struct cat_record r = { .rank = 1, .order = event, .event = event, .tid = tid_of(ev) };
	uint64_t dur = 0;
	int e;

	r.name = string_field(ev, "name");
	if (!r.name || !*r.name) {
		char what[48];

		snprintf(what, sizeof(what), "%c event without a \"name\"", ph);
		set_error(err, event, what);
		return -EINVAL;
	}
	if ((e = time_field(ev, "ts", in->stats.unit, &r.ts)))
		return time_error(e, "ts", ph, event, err);
	if (ph == 'X' && (e = time_field(ev, "dur", in->stats.unit, &dur)))
		return time_error(e, "dur", ph, event, err);
	if (ph == 'X' && r.ts > UINT64_MAX - dur)
		return time_error(-ERANGE, "dur", ph, event, err);
	r.kind = ph == 'E' ? TRACE_EVENT_EXIT : TRACE_EVENT_ENTRY;
	r.sub = ph == 'X' ? UINT64_MAX - dur : 0;
	if ((e = push_record(in, &r)) || ph != 'X')
		return e;
	/* X's exit: see by_time_then_nesting */
	r.rank = dur ? 0 : 2;
	r.sub = dur ? UINT64_MAX - r.ts : 0;
	r.order = UINT64_MAX - event;
	r.ts += dur;
	r.kind = TRACE_EVENT_EXIT;
	return push_record(in, &r);
}

/* thread_name and process_name; other metadata is only counted. */
static int read_metadata(struct cat_input *in, json_object *ev)
{
	const char *kind = string_field(ev, "name");
	json_object *args, *v;
	bool is_thread = kind && !strcmp(kind, "thread_name");

	if (!kind || (!is_thread && strcmp(kind, "process_name")))
		return 0;
	if (!json_object_object_get_ex(ev, "args", &args) || !json_object_object_get_ex(args, "name", &v) ||
	    !json_object_is_type(v, json_type_string))
		return 0;
	if (ARRAY_RESERVE(in->names, in->name_cap, in->name_count + 1))
		return -ENOMEM;
	in->names[in->name_count++] = (struct cat_thread_name){ tid_of(ev), is_thread, json_object_get_string(v) };
	return 0;
}

static void count_ignored(struct cat_stats *st, const char *ph)
{
	size_t n = strlen(st->ignored_phases);
	char word[8];

	st->ignored++;
	snprintf(word, sizeof(word), "%.4s", ph);
	if (!*word || strstr(st->ignored_phases, word) || n + strlen(word) + 3 > sizeof(st->ignored_phases))
		return;
	snprintf(st->ignored_phases + n, sizeof(st->ignored_phases) - n, "%s%s", n ? ", " : "", word);
}

static int read_event(struct cat_input *in, json_object *ev, uint64_t event, struct cat_error *err)
{
	const char *ph;

	if (!json_object_is_type(ev, json_type_object)) {
		set_error(err, event, "not a JSON object");
		return -EINVAL;
	}
	if (!(ph = string_field(ev, "ph"))) {
		set_error(err, event, "no \"ph\" (phase) string");
		return -EINVAL;
	}
	if (ph[0] && !ph[1] && strchr("BEX", ph[0])) {
		in->stats.begins += ph[0] == 'B';
		in->stats.ends += ph[0] == 'E';
		in->stats.completes += ph[0] == 'X';
		return read_span_event(in, ev, ph[0], event, err);
	}
	if (!strcmp(ph, "M")) {
		in->stats.metadata++;
		return read_metadata(in, ev);
	}
	count_ignored(&in->stats, ph);
	return 0;
}

static int read_events(struct cat_input *in, json_object *events, enum cat_ts_unit unit, struct cat_error *err)
{
	size_t count = json_object_array_length(events);
	int e;

	in->stats.unit = detect_unit(events, &in->stats);
	if (unit != CAT_TS_AUTO)
		in->stats.unit = unit;
	for (size_t i = 0; i < count; i++) {
		in->stats.events++;
		if ((e = read_event(in, json_object_array_get_idx(events, i), i + 1, err)))
			return e;
	}
	if (!in->record_count) {
		snprintf(err->what, sizeof(err->what), "no B, E or X events (%zu event%s read)", count,
			 count == 1 ? "" : "s");
		return -ENODATA;
	}
	return 0;
}

int cat_input__open(struct cat_input **out, const char *path, enum cat_ts_unit unit, struct cat_error *err)
{
	struct cat_input *in = calloc(1, sizeof(*in));
	json_object *events;
	char *data = NULL;
	size_t len = 0;
	int e;

	memset(err, 0, sizeof(*err));
	*out = NULL;
	if (!in)
		return -ENOMEM;
	e = read_whole_file(path, &data, &len);
	e = e ? e : parse_json(data, len, &in->root, err);
	free(data);
	if (!e && !(events = events_of(in->root))) {
		set_error(err, 0, "not a Chrome trace (want an array of events or {\"traceEvents\": [...]})");
		e = -EINVAL;
	}
	e = e ? e : read_events(in, events, unit, err);
	if (e) {
		cat_input__free(in);
		return e;
	}
	*out = in;
	return 0;
}

void cat_input__free(struct cat_input *in)
{
	if (!in)
		return;
	json_object_put(in->root);
	free(in->records);
	free(in->names);
	u64map_free(&in->tids);
	free(in);
}

const struct cat_stats *cat_input__stats(const struct cat_input *in)
{
	return &in->stats;
}

/* One timestamp's records: X exits that close earlier entries first (the
 * latest-entered first: inner before outer), so that a sibling starting
 * as another ends nests beside it; then entries (B, E and X entries, the
 * longest X first: outer before inner); then the exits of 0-length X
 * events, innermost first. B and E keep file order: their nesting is the
 * file's. */
static int by_time_then_nesting(const void *a, const void *b)
{
	const struct cat_record *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	if (x->sub != y->sub)
		return x->sub < y->sub ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int add_records(struct cat_input *in, struct import_builder *b)
{
	char *name = NULL;
	size_t cap = 0;
	int e = 0;

	if (in->stats.completes)
		qsort(in->records, in->record_count, sizeof(*in->records), by_time_then_nesting);
	for (size_t i = 0; i < in->record_count && !e; i++) {
		const struct cat_record *r = &in->records[i];
		struct import_record rec = { .ts = r->ts, .line = r->event, .tid = r->tid,
					     .depth = IMPORT_NO_DEPTH, .kind = r->kind };

		if (ARRAY_RESERVE(name, cap, strlen(r->name) + 1)) {
			e = -ENOMEM;
			break;
		}
		cat_normalise_name(r->name, name, cap);
		rec.name = name;
		e = import_builder__add(b, &rec);
	}
	free(name);
	return e;
}

/* CAT names threads "[TID] COMMAND"; the builder keeps 15 characters, so
 * the tid it shows anyway is dropped. */
static const char *without_tid_prefix(const char *name)
{
	const char *p = name;

	if (*p++ != '[')
		return name;
	p += strspn(p, "0123456789");
	if (p == name + 1 || *p != ']' || p[1] != ' ' || !p[2])
		return name;
	return p + 2;
}

int cat_input__add_to(struct cat_input *in, struct import_builder *b)
{
	int e = add_records(in, b);

	/* process names first, so that a thread_name of the same id wins */
	for (int pass = 0; pass < 2 && !e; pass++)
		for (size_t i = 0; i < in->name_count && !e; i++) {
			const struct cat_thread_name *n = &in->names[i];

			if (n->is_thread == (pass == 1) && u64map_get(&in->tids, (uint64_t)n->tid + 1))
				e = import_builder__name_thread(b, n->tid, without_tid_prefix(n->name));
		}
	return e;
}
