/* The import builder: records from any reader become a trace. Entries and
 * exits are paired here, in time order over all threads, because the
 * inputs (kernel probe logs) break the rules a recording keeps: an exit may
 * be logged on another thread than its entry (the coroutine moved), an
 * exit may be doubled (GDB), an entry may never exit (the log was cut).
 * The trace then carries each pair on the entry's thread, with stack
 * pointers made up from the nesting so that the poll builder, which pairs
 * by stack pointer, finds exactly these pairs. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "elf/classify.h"
#include "elf/demangle.h"
#include "import/import.h"
#include "trace/writer.h"
#include "util/array.h"
#include "util/hash.h"
#include "util/u64map.h"

/* Made-up stack pointers: the outermost frame's, and the step per level
 * (deeper frames have lower addresses, as on a real stack). */
#define FAKE_STACK_TOP 0x7ff000000000ull
#define FAKE_FRAME_SIZE 0x100ull
#define NO_PAIR UINT32_MAX

struct symbol {
	uint64_t addr;
	char *name;
	uint64_t order;
};

struct function {
	char *name;
	uint64_t addr;
};

struct record {
	uint64_t ts;
	uint64_t seq;      /* input order: ties keep it */
	uint32_t tid;      /* the thread the event goes to (an exit: its entry's) */
	uint32_t func;
	uint32_t pair;     /* entry: the index of its exit; exit: its entry's */
	int32_t depth;
	uint8_t kind;
	uint8_t dropped;   /* not written (orphan or doubled exit) */
};

struct thread {
	uint32_t tid;
	char name[16];
	uint32_t *open;    /* indices of entries not yet exited, innermost last */
	size_t open_count, open_cap;
	uint32_t last_exit; /* the latest exit matched here, NO_PAIR after an entry */
	uint32_t *ended;    /* entries their caller's exit ended (allow_late_exits) */
	size_t ended_count, ended_cap;
};

struct import_builder {
	struct import_options opts;
	struct symbol *symbols;
	size_t symbol_count, symbol_cap;
	int symbols_sorted;
	struct function *functions;
	size_t function_count, function_cap;
	struct u64map function_by_key; /* hash of the key -> index + 1 (chained by probing) */
	struct record *records;
	size_t record_count, record_cap;
	struct thread *threads;
	size_t thread_count, thread_cap;
	struct u64map thread_by_tid;   /* tid + 1 -> index + 1 */
	struct import_stats stats;
};

int import_builder__new(struct import_builder **out, const struct import_options *opts)
{
	struct import_builder *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	b->opts = *opts;
	*out = b;
	return 0;
}

void import_builder__free(struct import_builder *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->symbol_count; i++)
		free(b->symbols[i].name);
	for (size_t i = 0; i < b->function_count; i++)
		free(b->functions[i].name);
	for (size_t i = 0; i < b->thread_count; i++) {
		free(b->threads[i].open);
		free(b->threads[i].ended);
	}
	free(b->symbols);
	free(b->functions);
	free(b->records);
	free(b->threads);
	u64map_free(&b->function_by_key);
	u64map_free(&b->thread_by_tid);
	free(b);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0. */
static size_t utf8_sequence(const unsigned char *s)
{
	size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;

	if (s[0] >= 0xc0 && s[0] < 0xc2)
		return 0; /* overlong */
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* Names come from other people's files: what is not printable UTF-8
 * (control bytes, broken sequences) becomes '?', so that reports and JSON
 * exports stay readable. In place. */
static char *printable_name(char *name)
{
	unsigned char *s = (unsigned char *)name;

	if (!name)
		return NULL;
	while (*s) {
		size_t n = utf8_sequence(s);

		if (!n || *s < 0x20 || *s == 0x7f) {
			*s++ = '?';
			continue;
		}
		s += n;
	}
	return name;
}

int import_builder__add_symbol(struct import_builder *b, uint64_t addr, const char *name)
{
	char *copy = printable_name(rust_is_mangled(name) ? demangle_symbol(name) : strdup(name));

	if (!copy || ARRAY_RESERVE(b->symbols, b->symbol_cap, b->symbol_count + 1)) {
		free(copy);
		return -ENOMEM;
	}
	b->symbols[b->symbol_count] = (struct symbol){ addr, copy, b->symbol_count };
	b->symbol_count++;
	b->symbols_sorted = 0;
	return 0;
}

static int by_addr_then_order(const void *a, const void *b)
{
	const struct symbol *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* The latest symbol added at addr, or NULL. */
static const char *symbol_at(struct import_builder *b, uint64_t addr)
{
	size_t lo = 0, hi = b->symbol_count;

	if (!b->symbol_count)
		return NULL;
	if (!b->symbols_sorted) {
		qsort(b->symbols, b->symbol_count, sizeof(*b->symbols), by_addr_then_order);
		b->symbols_sorted = 1;
	}
	while (lo < hi) { /* the first above addr */
		size_t mid = lo + (hi - lo) / 2;

		if (b->symbols[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && b->symbols[lo - 1].addr == addr ? b->symbols[lo - 1].name : NULL;
}

/* Functions are told apart by name when exits are matched by name, else by
 * address (two copies of a generic share a name). */
static int function_id(struct import_builder *b, const struct import_record *r, uint32_t *id)
{
	const char *name = r->name ? r->name : symbol_at(b, r->addr);
	char fallback[32], key[64];
	uint64_t h;
	bool by_name = b->opts.match_by_name || !r->addr;

	if (!name) {
		snprintf(fallback, sizeof(fallback), "0x%" PRIx64, r->addr);
		name = fallback;
	}
	snprintf(key, sizeof(key), "%" PRIx64 ":", by_name ? 0 : r->addr);
	h = hash_string(key) ^ hash_string(name);
	for (;; h++) {
		void *v = u64map_get(&b->function_by_key, h ? h : 1);
		struct function *f;

		if (!v)
			break;
		f = &b->functions[(uintptr_t)v - 1];
		if (!strcmp(f->name, name) && (by_name || f->addr == r->addr || !f->addr)) {
			*id = (uint32_t)((uintptr_t)v - 1);
			if (!f->addr && r->kind == TRACE_EVENT_ENTRY)
				f->addr = r->addr;
			return 0;
		}
	}
	if (ARRAY_RESERVE(b->functions, b->function_cap, b->function_count + 1))
		return -ENOMEM;
	b->functions[b->function_count].name = printable_name(strdup(name));
	b->functions[b->function_count].addr = r->kind == TRACE_EVENT_ENTRY || !by_name ? r->addr : 0;
	if (!b->functions[b->function_count].name)
		return -ENOMEM;
	if (name == fallback)
		b->stats.unnamed++;
	*id = (uint32_t)b->function_count;
	b->function_count++;
	return u64map_put(&b->function_by_key, h ? h : 1, (void *)(uintptr_t)b->function_count);
}

static struct thread *thread_of(struct import_builder *b, uint32_t tid)
{
	void *v = u64map_get(&b->thread_by_tid, (uint64_t)tid + 1);
	struct thread *t;

	if (v)
		return &b->threads[(uintptr_t)v - 1];
	if (ARRAY_RESERVE(b->threads, b->thread_cap, b->thread_count + 1))
		return NULL;
	t = &b->threads[b->thread_count++];
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	t->last_exit = NO_PAIR;
	if (u64map_put(&b->thread_by_tid, (uint64_t)tid + 1, (void *)(uintptr_t)b->thread_count)) {
		b->thread_count--;
		return NULL;
	}
	return t;
}

int import_builder__name_thread(struct import_builder *b, uint32_t tid, const char *name)
{
	struct thread *t = thread_of(b, tid);

	if (!t)
		return -ENOMEM;
	snprintf(t->name, sizeof(t->name), "%s", name);
	printable_name(t->name); /* (a cut multi-byte sequence too) */
	return 0;
}

int import_builder__add(struct import_builder *b, const struct import_record *r)
{
	struct record *rec;
	uint32_t func;
	int err;

	if (ARRAY_RESERVE(b->records, b->record_cap, b->record_count + 1) || !thread_of(b, r->tid))
		return -ENOMEM;
	if ((err = function_id(b, r, &func)))
		return err;
	rec = &b->records[b->record_count];
	*rec = (struct record){ .ts = r->ts, .seq = b->record_count, .tid = r->tid, .func = func,
				.pair = NO_PAIR, .depth = r->depth, .kind = r->kind };
	b->record_count++;
	b->stats.records++;
	if (r->kind == TRACE_EVENT_ENTRY)
		b->stats.entries++;
	else
		b->stats.exits++;
	return 0;
}

static int by_time(const void *a, const void *b)
{
	const struct record *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool depth_agrees(const struct record *a, const struct record *b)
{
	return a->depth == IMPORT_NO_DEPTH || b->depth == IMPORT_NO_DEPTH || a->depth == b->depth;
}

/* The open entry of `exit`'s function on t, innermost first, one of the
 * same depth preferred; its position in t->open, or -1. */
static long find_open(struct import_builder *b, const struct thread *t, const struct record *exit, bool same_depth)
{
	long any = -1;

	for (long i = (long)t->open_count - 1; i >= 0; i--) {
		const struct record *e = &b->records[t->open[i]];

		if (e->func != exit->func)
			continue;
		if (depth_agrees(e, exit))
			return i;
		if (any < 0 && !same_depth)
			any = i;
	}
	return any;
}

static void pair_up(struct import_builder *b, struct thread *t, long pos, uint32_t exit_index)
{
	struct record *exit = &b->records[exit_index];
	uint32_t entry_index = t->open[pos];
	struct record *entry = &b->records[entry_index];

	entry->pair = exit_index;
	exit->pair = entry_index;
	if (!depth_agrees(entry, exit))
		b->stats.depth_mismatches++;
	/* Entries above it never exited: the poll builder closes them as
	 * unwound at this exit. */
	b->stats.left_open += t->open_count - 1 - (size_t)pos;
	if (b->opts.allow_late_exits)
		for (size_t i = (size_t)pos + 1; i < t->open_count; i++)
			if (!ARRAY_RESERVE(t->ended, t->ended_cap, t->ended_count + 1))
				t->ended[t->ended_count++] = t->open[i];
	t->open_count = (size_t)pos;
}

/* A late exit: the latest entry of its function that its caller's exit
 * ended. Consumed (the poll already ended), so it is no orphan. */
static bool take_late_exit(struct import_builder *b, struct thread *t, struct record *exit)
{
	for (size_t i = t->ended_count; i-- > 0;) {
		if (b->records[t->ended[i]].func != exit->func)
			continue;
		memmove(&t->ended[i], &t->ended[i + 1], (t->ended_count - i - 1) * sizeof(*t->ended));
		t->ended_count--;
		exit->dropped = 1;
		b->stats.late_exits++;
		b->stats.left_open--;
		return true;
	}
	return false;
}

/* An exit with no open entry on its own thread: one left on another
 * thread (the latest entered), the same depth required. */
static struct thread *find_elsewhere(struct import_builder *b, const struct record *exit, long *pos)
{
	struct thread *best = NULL;
	uint64_t best_ts = 0;

	for (size_t i = 0; i < b->thread_count; i++) {
		struct thread *t = &b->threads[i];
		long at = t->tid == exit->tid ? -1 : find_open(b, t, exit, true);

		if (at >= 0 && (!best || b->records[t->open[at]].ts >= best_ts)) {
			best = t;
			best_ts = b->records[t->open[at]].ts;
			*pos = at;
		}
	}
	return best;
}

static int match_exit(struct import_builder *b, uint32_t index)
{
	struct record *exit = &b->records[index];
	struct thread *t = thread_of(b, exit->tid), *other;
	long pos = find_open(b, t, exit, false);

	if (pos >= 0) {
		pair_up(b, t, pos, index);
		t->last_exit = index;
		b->stats.pairs++;
		return 0;
	}
	if (b->opts.drop_doubled_exits && t->last_exit != NO_PAIR &&
	    b->records[t->last_exit].func == exit->func && b->records[t->last_exit].depth == exit->depth) {
		exit->dropped = 1;
		b->stats.doubled_exits++;
		return 0;
	}
	if (b->opts.allow_late_exits && take_late_exit(b, t, exit)) {
		t->last_exit = index;
		return 0;
	}
	if ((other = find_elsewhere(b, exit, &pos))) {
		pair_up(b, other, pos, index);
		exit->tid = other->tid;
		b->stats.cross_thread++;
		return 0;
	}
	exit->dropped = 1;
	b->stats.orphan_exits++;
	return 0;
}

static int pair_all(struct import_builder *b)
{
	qsort(b->records, b->record_count, sizeof(*b->records), by_time);
	for (size_t i = 0; i < b->record_count; i++) {
		struct record *r = &b->records[i];
		struct thread *t = thread_of(b, r->tid);

		if (r->kind != TRACE_EVENT_ENTRY) {
			match_exit(b, (uint32_t)i);
			continue;
		}
		if (ARRAY_RESERVE(t->open, t->open_cap, t->open_count + 1))
			return -ENOMEM;
		t->open[t->open_count++] = (uint32_t)i;
		t->last_exit = NO_PAIR;
	}
	for (size_t i = 0; i < b->thread_count; i++)
		b->stats.left_open += b->threads[i].open_count;
	return 0;
}

static int write_header(struct import_builder *b, struct trace_writer *w)
{
	struct trace_meta meta = { .clock = b->opts.clock, .machine = b->opts.machine,
				   .target_path = (char *)b->opts.source, .command = (char *)b->opts.source,
				   .capture = (char *)b->opts.capture };
	struct trace_function *fns = calloc(b->function_count ? b->function_count : 1, sizeof(*fns));
	int err;

	if (!fns)
		return -ENOMEM;
	meta.start_clock_ns = b->record_count ? b->records[0].ts : 0;
	if (b->opts.clock == CLOCK_REALTIME)
		meta.start_realtime_ns = meta.start_clock_ns;
	for (size_t i = 0; i < b->function_count; i++) {
		fns[i].addr = b->functions[i].addr;
		fns[i].name = b->functions[i].name;
		fns[i].role = ROLE_POLL;
		fns[i].exit_sites = 1;
		classify_by_name(fns[i].name, &fns[i].context, &fns[i].body);
	}
	err = trace_writer__write_meta(w, &meta);
	err = err ? err : trace_writer__write_functions(w, fns, b->function_count);
	free(fns);
	return err;
}

static size_t thread_index(const struct import_builder *b, uint32_t tid)
{
	return (uintptr_t)u64map_get(&b->thread_by_tid, (uint64_t)tid + 1) - 1;
}

/* Record indices grouped by thread, in time order within each: a counting
 * sort by thread, stable, and the records are in time order already. */
static int group_by_thread(struct import_builder *b, uint32_t *order, size_t count)
{
	size_t *next = calloc(b->thread_count + 1, sizeof(*next));
	uint32_t *grouped = malloc((count + 1) * sizeof(*grouped));

	if (!next || !grouped) {
		free(next);
		free(grouped);
		return -ENOMEM;
	}
	for (size_t i = 0; i < count; i++)
		next[thread_index(b, b->records[order[i]].tid) + 1]++;
	for (size_t t = 1; t <= b->thread_count; t++)
		next[t] += next[t - 1];
	for (size_t i = 0; i < count; i++)
		grouped[next[thread_index(b, b->records[order[i]].tid)]++] = order[i];
	memcpy(order, grouped, count * sizeof(*order));
	free(next);
	free(grouped);
	return 0;
}

/* One thread's events (order[0..count), in time order), each pair at one
 * made-up stack pointer, nested pairs below their parent's. */
static int write_thread(struct import_builder *b, struct trace_writer *w, const uint32_t *order, size_t count,
			struct trace_event *events, uint32_t *nest)
{
	size_t depth = 0;
	uint32_t tid = b->records[order[0]].tid;

	for (size_t i = 0; i < count; i++) {
		const struct record *r = &b->records[order[i]];
		struct trace_event *e = &events[i];

		*e = (struct trace_event){ .ts = r->ts, .tid = tid, .func_id = r->func, .kind = r->kind };
		if (r->kind == TRACE_EVENT_ENTRY) {
			e->sp = FAKE_STACK_TOP - FAKE_FRAME_SIZE * depth;
			nest[depth++] = order[i];
			continue;
		}
		for (size_t d = depth; d-- > 0;)
			if (nest[d] == r->pair) {
				depth = d;
				break;
			}
		e->sp = FAKE_STACK_TOP - FAKE_FRAME_SIZE * depth;
	}
	return trace_writer__add_stream_events(w, tid, tid, 0, events, count);
}

static int write_streams(struct import_builder *b, struct trace_writer *w, uint32_t *order, size_t count)
{
	struct trace_event *events = malloc((count + 1) * sizeof(*events));
	uint32_t *nest = malloc((count + 1) * sizeof(*nest));
	int err = events && nest ? 0 : -ENOMEM;

	if (!err)
		err = group_by_thread(b, order, count);
	for (size_t start = 0, end; start < count && !err; start = end) {
		for (end = start + 1; end < count && b->records[order[end]].tid == b->records[order[start]].tid;)
			end++;
		err = write_thread(b, w, order + start, end - start, events, nest);
	}
	free(events);
	free(nest);
	return err;
}

static int write_threads(struct import_builder *b, struct trace_writer *w)
{
	uint32_t *order = malloc((b->record_count + 1) * sizeof(*order));
	struct trace_thread *names = calloc(b->thread_count + 1, sizeof(*names));
	size_t count = 0;
	int err = order && names ? 0 : -ENOMEM;

	for (size_t i = 0; i < b->record_count && !err; i++)
		if (!b->records[i].dropped)
			order[count++] = (uint32_t)i;
	err = err ? err : write_streams(b, w, order, count);
	for (size_t i = 0; i < b->thread_count && !err; i++) {
		const struct thread *t = &b->threads[i];

		names[i].tid = t->tid;
		if (t->name[0])
			memcpy(names[i].name, t->name, sizeof(names[i].name));
		else
			snprintf(names[i].name, sizeof(names[i].name), "%" PRIu32, t->tid);
	}
	err = err ? err : trace_writer__write_threads(w, names, b->thread_count);
	free(order);
	free(names);
	return err;
}

int import_builder__write(struct import_builder *b, const char *path, struct import_stats *stats)
{
	struct trace_trailer trailer = { .end_reason = TRACE_END_IMPORTED, .exit_status = -1 };
	struct trace_writer *w;
	int err;

	if (!b->record_count)
		return -ENODATA;
	if ((err = pair_all(b)))
		return err;
	if ((err = trace_writer__open(&w, path)))
		return err;
	err = write_header(b, w);
	err = err ? err : write_threads(b, w);
	trailer.end_clock_ns = b->records[b->record_count - 1].ts;
	err = err ? err : trace_writer__finish(w, &trailer);
	trace_writer__free(w);
	b->stats.functions = b->function_count;
	b->stats.threads = b->thread_count;
	*stats = b->stats;
	return err;
}
