#include "trace/reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trace/format.h"
#include "trace/samples.h"
#include "trace/streams.h"
#include "util/buf.h"

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

static int map_file(struct trace_file *t, const char *path, char *err, size_t errlen)
{
	struct stat st;
	void *map;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail(err, errlen, -errno, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fail(err, errlen, -EINVAL, "%s: not a regular file", path);
	}
	if ((size_t)st.st_size < sizeof(struct trace_file_header)) {
		close(fd);
		return fail(err, errlen, -EINVAL, "%s: not an asynctrace trace file (too short)", path);
	}
	map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return fail(err, errlen, -errno, "cannot map %s: %s", path, strerror(errno));
	madvise(map, st.st_size, MADV_SEQUENTIAL);
	t->map = map;
	t->map_len = st.st_size;
	return 0;
}

static int check_header(struct trace_file *t, const char *path, size_t *offset, char *err,
			size_t errlen)
{
	struct trace_file_header h;

	memcpy(&h, t->map, sizeof(h));
	if (memcmp(h.magic, TRACE_MAGIC, TRACE_MAGIC_LEN) != 0)
		return fail(err, errlen, -EINVAL, "%s: not an asynctrace trace file", path);
	if (h.version_major < TRACE_VERSION_MAJOR_OLDEST || h.version_major > TRACE_VERSION_MAJOR)
		return fail(err, errlen, -ENOTSUP,
			    "%s: trace format version %u.%u is not supported (this build reads %u.x to %u.x)",
			    path, h.version_major, h.version_minor, TRACE_VERSION_MAJOR_OLDEST,
			    TRACE_VERSION_MAJOR);
	/* 2.x events have a fixed size; 3.x ones are encoded (size 0). */
	if (h.endian != TRACE_ENDIAN_LITTLE ||
	    h.event_size != (h.version_major == 2 ? TRACE_EVENT_SIZE_V2 : 0) ||
	    h.header_size < sizeof(h) || h.header_size > t->map_len)
		return fail(err, errlen, -EINVAL, "%s: corrupt trace header", path);
	if (h.version_major >= 3 && (h.features & ~TRACE_FEATURES_KNOWN))
		return fail(err, errlen, -ENOTSUP,
			    "%s: the trace uses features this build does not read (0x%x): a newer asynctrace wrote it",
			    path, h.features & ~TRACE_FEATURES_KNOWN);
	t->version_major = h.version_major;
	t->version_minor = h.version_minor;
	*offset = h.header_size;
	return 0;
}

static int parse_meta(struct trace_file *t, struct cursor *c)
{
	struct trace_meta *m = &t->meta;

	m->clock = cursor_u32(c);
	m->pid = cursor_u32(c);
	m->start_realtime_ns = cursor_u64(c);
	m->start_clock_ns = cursor_u64(c);
	m->machine = cursor_u16(c);
	m->build_id_len = cursor_u8(c);
	cursor_bytes(c, m->build_id, sizeof(m->build_id));
	m->target_path = cursor_str(c, TRACE_MAX_STRING);
	m->command = cursor_str(c, TRACE_MAX_STRING);
	m->capture = cursor_str(c, TRACE_MAX_STRING);
	if (m->build_id_len > sizeof(m->build_id))
		c->err = -EINVAL;
	return c->err;
}

static void parse_awaits(struct trace_function *fn, struct cursor *c)
{
	uint32_t count = cursor_u32(c);

	if (c->err || count > TRACE_MAX_AWAITS || count > c->left / 16) {
		c->err = -EINVAL;
		return;
	}
	if (!count)
		return;
	fn->awaits = calloc(count, sizeof(*fn->awaits));
	if (!fn->awaits) {
		c->err = -ENOMEM;
		return;
	}
	fn->await_count = count;
	for (uint32_t i = 0; i < count; i++) {
		fn->awaits[i].state = cursor_u64(c);
		fn->awaits[i].line = cursor_u32(c);
		fn->awaits[i].file = cursor_str(c, TRACE_MAX_STRING);
	}
}

static void parse_function_fields(struct trace_function *fn, struct cursor *c)
{
	fn->addr = cursor_u64(c);
	fn->size = cursor_u64(c);
	fn->context = cursor_u8(c);
	fn->body = cursor_u8(c);
	fn->self_arg = cursor_u8(c);
	fn->result.mode = cursor_u8(c);
	fn->result.disc_size = cursor_u8(c);
	fn->role = cursor_u8(c);
	fn->result.disc_offset = cursor_u16(c);
	fn->result.pending_value = cursor_u64(c);
	fn->exit_sites = cursor_u32(c);
	fn->source_line = cursor_u32(c);
	fn->target = cursor_u32(c);
	fn->state_offset = cursor_u16(c);
	fn->state_size = cursor_u8(c);
	fn->runtime = cursor_u8(c);
	fn->name = cursor_str(c, TRACE_MAX_STRING);
	fn->mangled = cursor_str(c, TRACE_MAX_STRING);
	fn->source_file = cursor_str(c, TRACE_MAX_STRING);
	parse_awaits(fn, c);
	fn->flags = c->left >= 4 ? cursor_u32(c) : 0; /* 3.1; absent in 3.0 */
}

/* An entry is its size then its fields; fields a later minor version
 * appends are skipped. */
static void parse_function(struct trace_function *fn, struct cursor *c)
{
	uint32_t size = cursor_u32(c);
	struct cursor entry = { .p = c->p, .left = size >= 4 ? size - 4 : 0 };

	if (c->err || size < 4 || size - 4 > c->left) {
		c->err = -EINVAL;
		return;
	}
	parse_function_fields(fn, &entry);
	c->p += size - 4;
	c->left -= size - 4;
	if (entry.err)
		c->err = entry.err;
	if (!fn->name)
		fn->name = strdup("?");
	if (!fn->name || fn->context > CONTEXT_FUNCTION || fn->result.disc_size > 8 ||
	    fn->role > ROLE_DROP || fn->state_size > 8)
		c->err = c->err ? c->err : -EINVAL;
}

static int check_targets(struct trace_file *t)
{
	for (size_t i = 0; i < t->function_count; i++)
		if (t->functions[i].role == ROLE_DROP && t->functions[i].target >= t->function_count)
			return -EINVAL;
	return 0;
}

static int parse_functions(struct trace_file *t, struct cursor *c)
{
	uint32_t count = cursor_u32(c);

	/* Each entry takes at least 68 bytes (fixed fields, empty strings): bound
	 * the allocation by the chunk. */
	if (c->err || count > TRACE_MAX_FUNCTIONS || count > c->left / 68)
		return -EINVAL;
	t->functions = calloc(count ? count : 1, sizeof(*t->functions));
	if (!t->functions)
		return -ENOMEM;
	t->function_count = count;
	for (uint32_t i = 0; i < count && !c->err; i++)
		parse_function(&t->functions[i], c);
	return c->err ? c->err : check_targets(t);
}

/* SITES and FRAMES: addresses and where they are in the source. */
static int parse_site_table(struct cursor *c, struct trace_site **out, size_t *out_count)
{
	uint32_t count = cursor_u32(c);
	struct trace_site *sites;

	if (c->err || count > TRACE_MAX_SITES || count > c->left / 20)
		return -EINVAL;
	sites = calloc(count ? count : 1, sizeof(*sites));
	if (!sites)
		return -ENOMEM;
	*out = sites;
	*out_count = count;
	for (uint32_t i = 0; i < count && !c->err; i++) {
		sites[i].addr = cursor_u64(c);
		sites[i].line = cursor_u32(c);
		sites[i].file = cursor_str(c, TRACE_MAX_STRING);
		sites[i].function = cursor_str(c, TRACE_MAX_STRING);
	}
	return c->err;
}

static int parse_threads(struct trace_file *t, struct cursor *c)
{
	uint32_t count = cursor_u32(c);

	if (c->err || count > TRACE_MAX_THREADS || count > c->left / 20)
		return -EINVAL;
	t->threads = calloc(count ? count : 1, sizeof(*t->threads));
	if (!t->threads)
		return -ENOMEM;
	t->thread_count = count;
	for (uint32_t i = 0; i < count && !c->err; i++) {
		t->threads[i].tid = cursor_u32(c);
		cursor_bytes(c, t->threads[i].name, sizeof(t->threads[i].name));
		t->threads[i].name[sizeof(t->threads[i].name) - 1] = '\0';
	}
	return c->err;
}

static int parse_trailer(struct trace_file *t, struct cursor *c)
{
	t->trailer.events = cursor_u64(c);
	t->trailer.lost = cursor_u64(c);
	t->trailer.end_clock_ns = cursor_u64(c);
	t->trailer.end_reason = cursor_u32(c);
	t->trailer.exit_status = (int32_t)cursor_u32(c);
	return c->err;
}

static const char *chunk_name(uint32_t type)
{
	switch (type) {
	case TRACE_CHUNK_META: return "meta";
	case TRACE_CHUNK_FUNCTIONS: return "functions";
	case TRACE_CHUNK_EVENTS: return "events";
	case TRACE_CHUNK_THREADS: return "threads";
	case TRACE_CHUNK_SITES: return "sites";
	case TRACE_CHUNK_MAPPING: return "mapping";
	case TRACE_CHUNK_STREAM: return "stream";
	case TRACE_CHUNK_SAMPLES: return "samples";
	case TRACE_CHUNK_FRAMES: return "frames";
	default: return "unknown";
	}
}

/* Parses one chunk's payload. Returns 0 or a negative errno. */
static int parse_chunk(struct trace_file *t, uint32_t type, size_t offset, size_t size,
		       unsigned *seen)
{
	struct cursor c = { .p = t->map + offset, .left = size };
	bool events = type == TRACE_CHUNK_EVENTS || type == TRACE_CHUNK_STREAM || type == TRACE_CHUNK_SAMPLES;

	if (type < 32 && !events && (*seen & (1u << type)))
		return -EINVAL; /* duplicated singleton chunk */
	if (events && (!(*seen & (1u << TRACE_CHUNK_FUNCTIONS)) ||
		       (type == TRACE_CHUNK_EVENTS) != (t->version_major == 2)))
		return -EINVAL; /* events need the table; each major has its kind */
	if (type < 32)
		*seen |= 1u << type;
	switch (type) {
	case TRACE_CHUNK_META: return parse_meta(t, &c);
	case TRACE_CHUNK_FUNCTIONS: return parse_functions(t, &c);
	case TRACE_CHUNK_EVENTS: return trace_streams__add_events_chunk(t->streams, c.p, size);
	case TRACE_CHUNK_STREAM: return trace_streams__add_stream_chunk(t->streams, c.p, size);
	case TRACE_CHUNK_THREADS: return parse_threads(t, &c);
	case TRACE_CHUNK_TRAILER: return parse_trailer(t, &c);
	case TRACE_CHUNK_SITES: return parse_site_table(&c, &t->sites, &t->site_count);
	case TRACE_CHUNK_FRAMES: return parse_site_table(&c, &t->frames, &t->frame_count);
	case TRACE_CHUNK_SAMPLES: return trace_samples__add_chunk(t, c.p, size);
	case TRACE_CHUNK_MAPPING:
		t->load_bias = cursor_u64(&c);
		return c.err;
	default: return 0; /* a later minor version's chunk: skip */
	}
}

static bool has_function_table(unsigned seen)
{
	return (seen & (1u << TRACE_CHUNK_META)) && (seen & (1u << TRACE_CHUNK_FUNCTIONS));
}

/* The file ends inside a chunk: with the function table read, keep what
 * came before (a recording that did not finish). */
static int cut_at(struct trace_file *t, unsigned seen, size_t chunk_start, char *err, size_t errlen,
		  const char *path, const char *why)
{
	if (!has_function_table(seen))
		return fail(err, errlen, -EINVAL, "%s: truncated trace file (%s)", path, why);
	t->cut_short = true;
	t->bytes_discarded += t->map_len - chunk_start;
	return 0;
}

static int walk_chunks(struct trace_file *t, const char *path, size_t offset, char *err,
		       size_t errlen)
{
	unsigned seen = 0;
	char why[160];

	while (offset < t->map_len) {
		struct trace_chunk_header h;
		size_t start = offset;
		int rc;

		if (t->map_len - offset < sizeof(h)) {
			snprintf(why, sizeof(why), "cut inside a chunk header at byte %zu", offset);
			return cut_at(t, seen, start, err, errlen, path, why);
		}
		memcpy(&h, t->map + offset, sizeof(h));
		offset += sizeof(h);
		if (h.size > t->map_len - offset) {
			snprintf(why, sizeof(why), "%s chunk at byte %zu needs %llu bytes, %zu left", chunk_name(h.type),
				 start, (unsigned long long)h.size, t->map_len - offset);
			return cut_at(t, seen, start, err, errlen, path, why);
		}
		rc = parse_chunk(t, h.type, offset, h.size, &seen);
		if (rc == -ENOMEM)
			return fail(err, errlen, rc, "%s: out of memory", path);
		if (rc == -EBADMSG && (h.type == TRACE_CHUNK_STREAM || h.type == TRACE_CHUNK_SAMPLES)) {
			t->chunks_skipped++; /* its events are not trusted; the others are */
			t->bytes_discarded += sizeof(h) + h.size;
			offset += h.size;
			continue;
		}
		if (rc == -EBADMSG)
			return fail(err, errlen, rc, "%s: corrupt %s chunk at byte %zu (checksum mismatch)", path,
				    chunk_name(h.type), start);
		if (rc == -ENOTSUP)
			return fail(err, errlen, rc,
				    "%s: %s chunk at byte %zu uses flags this build does not read (a newer asynctrace wrote it)",
				    path, chunk_name(h.type), start);
		if (rc)
			return fail(err, errlen, rc, "%s: corrupt %s chunk at byte %zu", path, chunk_name(h.type), start);
		t->chunks_read++;
		offset += h.size;
		if (h.type == TRACE_CHUNK_TRAILER)
			break;
	}
	if (!has_function_table(seen))
		return fail(err, errlen, -EINVAL, "%s: truncated trace file (no function table)", path);
	if (!(seen & (1u << TRACE_CHUNK_TRAILER)))
		t->cut_short = true; /* ended at a chunk boundary */
	if (offset != t->map_len)
		return fail(err, errlen, -EINVAL, "%s: corrupt trace file (data after the trailer)", path);
	return 0;
}

static int index_streams(struct trace_file *t, const char *path, char *err, size_t errlen)
{
	if (trace_streams__finish(t->streams, t->functions, t->function_count))
		return fail(err, errlen, -ENOMEM, "%s: out of memory", path);
	t->event_count = trace_streams__event_count(t->streams);
	if (t->cut_short)
		t->trailer.events = t->event_count; /* what was kept; the loss is not known */
	t->stream_count = trace_streams__stream_count(t->streams);
	t->first_ts = trace_streams__first_ts(t->streams);
	if (trace_samples__finish(t))
		return fail(err, errlen, -ENOMEM, "%s: out of memory", path);
	return 0;
}

int trace_file__open(struct trace_file **out, const char *path, char *err, size_t errlen)
{
	struct trace_file *t = calloc(1, sizeof(*t));
	size_t offset = 0;
	int rc;

	if (!t || !(t->streams = trace_streams__new())) {
		free(t);
		return fail(err, errlen, -ENOMEM, "out of memory");
	}
	rc = map_file(t, path, err, errlen);
	if (!rc)
		trace_streams__set_mapping(t->streams, t->map, t->map_len);
	if (!rc)
		rc = check_header(t, path, &offset, err, errlen);
	if (!rc)
		rc = walk_chunks(t, path, offset, err, errlen);
	if (!rc)
		rc = index_streams(t, path, err, errlen);
	if (rc) {
		trace_file__close(t);
		return rc;
	}
	*out = t;
	return 0;
}

int trace_file__for_each_event(const struct trace_file *t, trace_event_fn fn, void *ctx)
{
	return trace_streams__for_each_event(t->streams, fn, ctx);
}

int trace_file__events(const struct trace_file *t, struct trace_event_iter **it)
{
	return trace_streams__iterate(t->streams, it);
}

const struct trace_site *trace_file__site(const struct trace_file *t, uint64_t addr)
{
	for (size_t i = 0; i < t->site_count; i++)
		if (t->sites[i].addr == addr)
			return &t->sites[i];
	return NULL;
}

const char *trace_file__thread_label(const struct trace_file *t, uint32_t tid, char *buf, size_t len)
{
	const char *name = trace_file__thread_name(t, tid);

	snprintf(buf, len, "%s/%u", name ? name : "thread", tid);
	return buf;
}

const char *trace_file__thread_name(const struct trace_file *t, uint32_t tid)
{
	for (size_t i = 0; i < t->thread_count; i++)
		if (t->threads[i].tid == tid)
			return t->threads[i].name[0] ? t->threads[i].name : NULL;
	return NULL;
}

void trace_file__close(struct trace_file *t)
{
	if (!t)
		return;
	trace_meta__free(&t->meta);
	for (size_t i = 0; i < t->function_count; i++)
		trace_function__free(&t->functions[i]);
	free(t->functions);
	free(t->threads);
	for (size_t i = 0; i < t->site_count; i++)
		trace_site__free(&t->sites[i]);
	free(t->sites);
	for (size_t i = 0; i < t->frame_count; i++)
		trace_site__free(&t->frames[i]);
	free(t->frames);
	free(t->samples);
	free(t->sample_frames);
	trace_streams__free(t->streams);
	if (t->map)
		munmap((void *)t->map, t->map_len);
	free(t);
}
