/* Streams in trace files: the writer's per-stream chunks, the reader's
 * merge in time order, 2.x files still read, and corrupt or truncated
 * files refused with one clear reason. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "trace/format.h"
#include "trace/reader.h"
#include "trace/streams.h"
#include "trace/writer.h"
#include "trace_fixture.h"
#include "unit.h"
#include "util/buf.h"

static const struct trace_function functions[] = {
	{ .context = CONTEXT_COMPILER, .name = "demo::f::{{closure}}", .result = { RESULT_IN_REGS, 1, 0, 1 } },
	{ .role = ROLE_WAKE_BY_REF, .name = "wake_by_ref" },
};

static struct trace_meta meta = { .clock = 1, .pid = 10, .target_path = "/bin/demo", .capture = "test" };

static struct trace_event event_at(uint64_t ts, uint8_t kind, uint32_t func, uint64_t seq)
{
	return (struct trace_event){ .ts = ts, .sp = 0x7000, .arg0 = seq, .pid = 99, .tid = 99,
				     .func_id = func, .kind = kind };
}

/* count events of `stream` (tid = its low bits, pid = tid + 1), at ts =
 * first + i * step, entries and exits alternating; entries' arg0 = seq + i. */
static int add_stream(struct trace_writer *w, uint64_t stream, uint64_t first, uint64_t step, size_t count,
		      uint64_t seq)
{
	struct trace_event *e = calloc(count, sizeof(*e));
	int err;

	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++)
		e[i] = event_at(first + i * step, i % 2 ? TRACE_EVENT_EXIT : TRACE_EVENT_ENTRY, 0,
				i % 2 ? 0 : seq + i);
	err = trace_writer__add_stream_events(w, stream, (uint32_t)stream, (uint32_t)stream + 1, e, count);
	free(e);
	return err;
}

struct merged {
	uint64_t count;
	uint64_t last_ts;
	uint32_t last_tid;
	uint64_t out_of_order;
	uint64_t per_tid_next[4]; /* the next entry seq expected of tids 1..3 */
	uint64_t wrong_pid;
};

static int check_merge(const struct trace_event *e, void *ctx)
{
	struct merged *m = ctx;
	uint32_t slot = e->tid & 3;

	if (m->count && (e->ts < m->last_ts || (e->ts == m->last_ts && e->tid < m->last_tid)))
		m->out_of_order++;
	if (e->kind == TRACE_EVENT_ENTRY) {
		if (e->arg0 != m->per_tid_next[slot])
			m->out_of_order++;
		m->per_tid_next[slot] = e->arg0 + 2;
	}
	m->wrong_pid += e->pid != e->tid + 1;
	m->last_ts = e->ts;
	m->last_tid = e->tid;
	m->count++;
	return 0;
}

/* The event sequence as one number: order and every field count. */
struct digest {
	uint64_t hash;
	uint64_t count;
	uint64_t stop_after; /* 0: never */
};

static int digest_event(const struct trace_event *e, void *ctx)
{
	struct digest *d = ctx;
	const uint64_t words[] = { e->ts, e->sp, e->arg0, e->arg1, e->aux,
				   (uint64_t)e->pid << 32 | e->tid, (uint64_t)e->func_id << 32 | e->kind << 8 | e->flags };

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		d->hash = (d->hash ^ words[i]) * 0x100000001b3ULL;
	d->count++;
	return d->stop_after && d->count == d->stop_after ? 7 : 0;
}

/* The callback and the pulled merge give the same sequence; a consumer
 * that stops gets its value back and no event after it. */
/* The same sequence pulled through trace_file__events. */
static uint64_t pulled_digest(const struct trace_file *t)
{
	struct digest d = { .hash = 14695981039346656037ULL };
	struct trace_event_iter *it;
	const struct trace_event *e;
	int rc;

	if (trace_file__events(t, &it))
		return 0;
	while ((rc = trace_event_iter__next(it, &e)) > 0)
		digest_event(e, &d);
	trace_event_iter__free(it);
	return rc == 0 && d.count == t->event_count ? d.hash : 0;
}

static unsigned order_mismatches(const struct trace_file *t)
{
	struct digest direct = { .hash = 14695981039346656037ULL }, stopped = direct;
	unsigned bad = 0;

	stopped.stop_after = 50001;
	bad |= (trace_file__for_each_event(t, digest_event, &direct) != 0 || direct.count != t->event_count) << 0;
	bad |= (trace_file__for_each_event(t, digest_event, &stopped) != 7 || stopped.count != 50001) << 1;
	bad |= (pulled_digest(t) != direct.hash) << 2;
	return bad;
}

/* Three streams interleaved in time (ties broken by stream id), each of
 * several chunks, so their chunks interleave in the file too. */
UNIT_TEST(streams_merge_in_time_order)
{
	char *path = trace_fixture__temp_path(), err[256];
	struct trace_trailer trailer = { .end_reason = TRACE_END_TARGET_EXITED };
	struct trace_writer *w = NULL;
	struct trace_file *t = NULL;
	struct merged m = { 0 };
	int rc = trace_writer__open(&w, path);

	rc = rc ? rc : trace_writer__write_meta(w, &meta);
	rc = rc ? rc : trace_writer__write_functions(w, functions, 2);
	for (int round = 0; !rc && round < 4; round++) {
		/* tid 1 at 1000, 1030, ...; tid 2 at 1010, ...; tid 3 at 1000 too: a tie with tid 1 */
		rc = rc ? rc : add_stream(w, 1, 1000 + round * 300000, 30, 10000, round * 10000);
		rc = rc ? rc : add_stream(w, 2, 1010 + round * 300000, 30, 10000, round * 10000);
		rc = rc ? rc : add_stream(w, 3, 1000 + round * 300000, 60, 5000, round * 5000);
	}
	CHECK(rc == 0);
	CHECK(trace_writer__bytes_written(w) > 24);
	CHECK(trace_writer__finish(w, &trailer) == 0);
	trace_writer__free(w);
	CHECK(trailer.events == 100000);
	CHECK(trace_file__open(&t, path, err, sizeof(err)) == 0);
	if (t) {
		CHECK(t->event_count == 100000 && t->stream_count == 3 && t->first_ts == 1000);
		CHECK(trace_file__for_each_event(t, check_merge, &m) == 0);
		CHECK(m.count == 100000 && m.out_of_order == 0 && m.wrong_pid == 0);
		CHECK(order_mismatches(t) == 0);
		trace_file__close(t);
	}
	unlink(path);
	free(path);
}

static long file_size(const char *path)
{
	FILE *f = fopen(path, "rb");
	long size = -1;

	if (f && fseek(f, 0, SEEK_END) == 0)
		size = ftell(f);
	if (f)
		fclose(f);
	return size;
}

/* flush_stream writes a stream's chunk at once and forgets it; the
 * in-process backend's ids (>= 2^32) are streams like any other. */
UNIT_TEST(streams_flush_and_bytes_written)
{
	char *path = trace_fixture__temp_path(), err[256];
	struct trace_trailer trailer = { .end_reason = TRACE_END_TARGET_EXITED };
	struct trace_event e = event_at(500, TRACE_EVENT_ENTRY, 0, 0);
	struct trace_writer *w = NULL;
	struct trace_file *t = NULL;
	uint64_t before;
	int rc = trace_writer__open(&w, path);

	CHECK(rc == 0);
	if (rc)
		return;
	CHECK(trace_writer__add_event(w, &e) == -EINVAL); /* no function table yet */
	CHECK(trace_writer__write_meta(w, &meta) == 0);
	CHECK(trace_writer__write_functions(w, functions, 2) == 0);
	CHECK(add_stream(w, 1ULL << 32, 100, 10, 20, 0) == 0);
	before = trace_writer__bytes_written(w);
	CHECK(trace_writer__flush_stream(w, 1ULL << 32) == 0);
	CHECK(trace_writer__bytes_written(w) > before + 48);
	CHECK(trace_writer__flush_stream(w, 12345) == 0); /* no such stream: nothing to do */
	CHECK(trace_writer__add_event(w, &e) == 0);       /* stream 99 (its tid) */
	CHECK(trace_writer__finish(w, &trailer) == 0);
	CHECK((long)trace_writer__bytes_written(w) == file_size(path));
	trace_writer__free(w);
	CHECK(trace_file__open(&t, path, err, sizeof(err)) == 0);
	if (t) {
		CHECK(t->event_count == 21 && t->stream_count == 2 && t->first_ts == 100);
		trace_file__close(t);
	}
	unlink(path);
	free(path);
}

/* A 2.0 file, built here byte by byte as the 2.0 writer wrote it. */
static void put_chunk(struct buf *file, uint32_t type, const struct buf *payload)
{
	buf_put_u32(file, type);
	buf_put_u32(file, 0);
	buf_put_u64(file, (payload->len + 7) / 8 * 8);
	buf_put_bytes(file, payload->data, payload->len);
	buf_align(file, 8);
}

static void put_v2_function(struct buf *b, const char *name)
{
	size_t start = b->len;
	uint32_t size;

	buf_put_u32(b, 0);
	buf_put_u64(b, 0x1000); /* addr */
	buf_put_u64(b, 0x40);   /* size */
	buf_put_bytes(b, (uint8_t[]){ CONTEXT_COMPILER, 0, 0, RESULT_IN_REGS, 1, ROLE_POLL }, 6);
	buf_put_u16(b, 0);      /* disc_offset */
	buf_put_u64(b, 1);      /* pending_value */
	buf_put_u32(b, 1);      /* exit_sites */
	buf_put_u32(b, 7);      /* source_line */
	buf_put_u32(b, 0);      /* target */
	buf_put_u16(b, 0);      /* state_offset */
	buf_put_u8(b, 0);       /* state_size */
	buf_put_u8(b, 0);       /* runtime */
	buf_put_str(b, name);
	buf_put_str(b, NULL);
	buf_put_str(b, NULL);
	buf_put_u32(b, 0);      /* awaits */
	size = (uint32_t)(b->len - start);
	memcpy(b->data + start, &size, sizeof(size));
}

static const struct trace_event v2_events[] = {
	/* in file order, not time order: 2.x readers keep file order */
	{ .ts = 300, .sp = 0x7000, .arg0 = 0xaa, .arg1 = 0x1234, .aux = 0x5555, .pid = 5, .tid = 6,
	  .func_id = 0, .cpu = 3, .kind = TRACE_EVENT_ENTRY, .flags = TRACE_EVENT_RETURN_ADDRESS },
	{ .ts = 200, .sp = 0x8000, .arg0 = 0xbb, .pid = 5, .tid = 7, .kind = TRACE_EVENT_ENTRY },
	{ .ts = 310, .sp = 0x7000, .arg0 = 0xff01, .arg1 = 0x77, .pid = 5, .tid = 6, .kind = TRACE_EVENT_EXIT },
};

static void build_v2_file(struct buf *file, uint16_t major, uint32_t event_size, uint32_t event_chunk_type)
{
	struct buf chunk = { 0 };
	struct trace_file_header h = { .magic = "ASYNCTRC", .version_major = major, .header_size = 24,
				       .endian = TRACE_ENDIAN_LITTLE, .event_size = event_size };

	buf_put_bytes(file, &h, sizeof(h));
	buf_put_bytes(&chunk, (uint8_t[26]){ 1, 0, 0, 0, 5 }, 26); /* clock, pid, times, machine, build id */
	buf_put_bytes(&chunk, (uint8_t[21]){ 0 }, 21);
	buf_put_str(&chunk, "/bin/old");
	buf_put_str(&chunk, NULL);
	buf_put_str(&chunk, "ebpf-uprobe");
	put_chunk(file, TRACE_CHUNK_META, &chunk);
	buf_free(&chunk);
	buf_put_u32(&chunk, 1);
	put_v2_function(&chunk, "old::f::{{closure}}");
	put_chunk(file, TRACE_CHUNK_FUNCTIONS, &chunk);
	for (int part = 0; part < 2; part++) { /* two EVENTS chunks: 2 events, then 1 */
		buf_free(&chunk);
		buf_put_u32(&chunk, part ? 1 : 2);
		buf_put_u32(&chunk, 0);
		buf_put_bytes(&chunk, &v2_events[part * 2], (part ? 1 : 2) * sizeof(struct trace_event));
		put_chunk(file, event_chunk_type, &chunk);
	}
	buf_free(&chunk);
	buf_put_bytes(&chunk, (uint64_t[4]){ 3, 0, 999, 1 }, 32); /* events, lost, end, reason + status */
	put_chunk(file, TRACE_CHUNK_TRAILER, &chunk);
	buf_free(&chunk);
}

static int open_bytes(const struct buf *file, struct trace_file **t, char *err, size_t errlen)
{
	char *path = trace_fixture__temp_path();
	FILE *f = fopen(path, "wb");
	int rc = -EIO;

	if (f && (!file->len || fwrite(file->data, file->len, 1, f) == 1) && fclose(f) == 0)
		rc = trace_file__open(t, path, err, errlen);
	else if (f)
		fclose(f);
	unlink(path);
	free(path);
	return rc;
}

struct collected {
	struct trace_event e[8];
	size_t n;
};

static int collect(const struct trace_event *e, void *ctx)
{
	struct collected *c = ctx;

	if (c->n < 8)
		c->e[c->n] = *e;
	c->n++;
	return 0;
}

UNIT_TEST(trace_v2_file_still_read)
{
	struct buf file = { 0 };
	struct trace_file *t = NULL;
	struct collected c = { .n = 0 };
	char err[256] = "";

	build_v2_file(&file, 2, 56, TRACE_CHUNK_EVENTS);
	CHECK(file.err == 0);
	CHECK(open_bytes(&file, &t, err, sizeof(err)) == 0);
	if (!t) {
		printf("  %s\n", err);
		buf_free(&file);
		return;
	}
	CHECK(t->version_major == 2 && t->event_count == 3 && t->stream_count == 1 && t->first_ts == 300);
	CHECK_STR(t->functions[0].name, "old::f::{{closure}}");
	CHECK(trace_file__for_each_event(t, collect, &c) == 0);
	CHECK(c.n == 3);
	/* 2.x events are whole: every field, in file order */
	CHECK(c.n == 3 && !memcmp(c.e, v2_events, sizeof(v2_events)));
	trace_file__close(t);
	buf_free(&file);
}

UNIT_TEST(trace_reader_refuses_mixed_versions)
{
	struct buf file = { 0 };
	struct trace_file *t = NULL;
	char err[256] = "";

	build_v2_file(&file, 3, 0, TRACE_CHUNK_EVENTS); /* 3.x has no EVENTS chunks */
	CHECK(open_bytes(&file, &t, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "corrupt events chunk") != NULL);
	buf_free(&file);
	build_v2_file(&file, 2, 56, TRACE_CHUNK_STREAM); /* nor 2.x STREAM chunks */
	CHECK(open_bytes(&file, &t, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "corrupt stream chunk") != NULL);
	buf_free(&file);
	build_v2_file(&file, 3, 56, TRACE_CHUNK_EVENTS);
	CHECK(open_bytes(&file, &t, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "corrupt trace header") != NULL);
	buf_free(&file);
	build_v2_file(&file, 4, 0, TRACE_CHUNK_STREAM);
	CHECK(open_bytes(&file, &t, err, sizeof(err)) == -ENOTSUP);
	CHECK(strstr(err, "version 4.0 is not supported") != NULL);
	buf_free(&file);
}

/* A small trace of two streams, as bytes. */
static int small_trace(struct buf *file)
{
	char *path = trace_fixture__temp_path();
	struct trace_trailer trailer = { .end_reason = TRACE_END_TARGET_EXITED };
	struct trace_writer *w = NULL;
	long size;
	FILE *f;
	int rc = trace_writer__open(&w, path);

	rc = rc ? rc : trace_writer__write_meta(w, &meta);
	rc = rc ? rc : trace_writer__write_functions(w, functions, 2);
	rc = rc ? rc : add_stream(w, 1, 100, 1000, 12, 0);
	rc = rc ? rc : add_stream(w, 2, 150, 1000, 12, 0);
	rc = rc ? rc : trace_writer__finish(w, &trailer);
	trace_writer__free(w);
	size = file_size(path);
	f = fopen(path, "rb");
	file->data = malloc(size > 0 ? (size_t)size : 1);
	file->len = file->cap = size > 0 ? (size_t)size : 0;
	if (!rc && (!f || !file->data || fread(file->data, file->len, 1, f) != 1))
		rc = -EIO;
	if (f)
		fclose(f);
	unlink(path);
	free(path);
	return rc;
}

/* The offset of the first STREAM chunk's payload, found by walking the
 * chunk headers (independently of the reader). */
static size_t first_stream_payload(const struct buf *file, uint32_t *payload_size)
{
	for (size_t at = sizeof(struct trace_file_header); at + 16 <= file->len;) {
		struct trace_chunk_header h;

		memcpy(&h, file->data + at, sizeof(h));
		if (h.type == TRACE_CHUNK_STREAM) {
			*payload_size = (uint32_t)h.size;
			return at + 16;
		}
		at += 16 + h.size;
	}
	return 0;
}

/* Every single-byte change of the file: opening refuses it with one
 * reason, or it opens (a changed tid, a name) and its events still read
 * or fail cleanly; a change in the encoded events never gets past the
 * checksum: that stream chunk is skipped and counted, the other read.
 * Every truncation is refused (before the function table) or read up to
 * its last whole chunk, never more events than the file had. */
UNIT_TEST(streams_corrupt_or_truncated_files_are_refused)
{
	struct buf file = { 0 };
	struct trace_stream_header h = { 0 };
	uint32_t payload_size = 0;
	size_t payload, encoded_skipped = 0, encoded = 0, truncations_handled = 0, recovered = 0;
	uint64_t whole_events = 0;

	CHECK(small_trace(&file) == 0);
	payload = first_stream_payload(&file, &payload_size);
	CHECK(payload > 0 && payload_size > 48);
	if (payload)
		memcpy(&h, file.data + payload, sizeof(h));
	for (size_t at = 0; at < file.len; at++) {
		struct trace_file *t = NULL;
		struct collected c = { .n = 0 };
		char err[256] = "";
		int rc;

		file.data[at] ^= 0xff;
		rc = open_bytes(&file, &t, err, sizeof(err));
		file.data[at] ^= 0xff;
		CHECK(rc == 0 || (rc < 0 && err[0] && !strchr(err, '\n')));
		if (t) {
			rc = trace_file__for_each_event(t, collect, &c);
			CHECK(rc == 0 || rc == -EBADMSG);
		}
		if (at >= payload + 48 && at < payload + 48 + h.encoded_bytes) {
			encoded++;
			encoded_skipped += t && t->chunks_skipped == 1 && !t->cut_short && c.n == 12;
		}
		trace_file__close(t);
	}
	CHECK(encoded > 0 && encoded_skipped == encoded);
	{
		struct trace_file *t = NULL;
		char err[256] = "";

		if (open_bytes(&file, &t, err, sizeof(err)) == 0)
			whole_events = t->event_count;
		trace_file__close(t);
	}
	for (size_t keep = 0; keep < file.len; keep++) {
		struct buf cut = { .data = file.data, .len = keep };
		struct trace_file *t = NULL;
		struct collected c = { .n = 0 };
		char err[256] = "";

		if (open_bytes(&cut, &t, err, sizeof(err)) < 0) {
			truncations_handled += strstr(err, "truncated") || strstr(err, "not an asynctrace");
			continue;
		}
		recovered++;
		truncations_handled += t->cut_short && t->event_count <= whole_events &&
				       trace_file__for_each_event(t, collect, &c) == 0 && c.n == t->event_count;
		trace_file__close(t);
	}
	CHECK(whole_events == 24 && truncations_handled == file.len && recovered > 0);
	buf_free(&file);
}

/* A forged file: encoded bytes changed and the checksum made to match.
 * Reading its events fails with -EBADMSG or yields other events, and
 * never reads outside the chunk. */
UNIT_TEST(streams_forged_chunks_fail_while_reading)
{
	struct buf file = { 0 };
	uint32_t payload_size = 0;
	size_t payload, failed = 0;

	CHECK(small_trace(&file) == 0);
	payload = first_stream_payload(&file, &payload_size);
	for (size_t at = payload + 48; payload && at < payload + payload_size; at++) {
		struct trace_stream_header h;
		struct trace_file *t = NULL;
		struct collected c = { .n = 0 };
		char err[256] = "";
		uint8_t saved = file.data[at];
		int rc;

		memcpy(&h, file.data + payload, sizeof(h));
		if (at >= payload + 48 + h.encoded_bytes)
			break;
		file.data[at] ^= 0x5a;
		h.crc32 = (uint32_t)crc32(0L, file.data + payload + 48, h.encoded_bytes);
		memcpy(file.data + payload, &h, sizeof(h));
		rc = open_bytes(&file, &t, err, sizeof(err));
		CHECK(rc == 0);
		if (t) {
			rc = trace_file__for_each_event(t, collect, &c);
			CHECK(rc == 0 || rc == -EBADMSG);
			failed += rc == -EBADMSG;
		}
		trace_file__close(t);
		file.data[at] = saved;
	}
	CHECK(failed > 0);
	buf_free(&file);
}

/* A 2.x file's header and META chunk, for tests that build the rest. */
static void put_v2_head(struct buf *file)
{
	struct trace_file_header h = { .magic = "ASYNCTRC", .version_major = 2, .header_size = 24,
				       .endian = TRACE_ENDIAN_LITTLE, .event_size = 56 };
	struct buf chunk = { 0 };

	buf_put_bytes(file, &h, sizeof(h));
	buf_put_bytes(&chunk, (uint8_t[26]){ 1, 0, 0, 0, 5 }, 26);
	buf_put_bytes(&chunk, (uint8_t[21]){ 0 }, 21);
	buf_put_str(&chunk, "/bin/old");
	buf_put_str(&chunk, NULL);
	buf_put_str(&chunk, "ebpf-uprobe");
	put_chunk(file, TRACE_CHUNK_META, &chunk);
	buf_free(&chunk);
}

/* A 2.x EVENTS chunk too short for its own count (empty) is refused when
 * the file is opened, never read past its end. */
UNIT_TEST(trace_v2_short_events_chunk_is_refused)
{
	struct buf file = { 0 }, chunk = { 0 };
	struct trace_file *t = NULL;
	char err[256] = "";

	put_v2_head(&file);
	buf_put_u32(&chunk, 1);
	put_v2_function(&chunk, "old::f::{{closure}}");
	put_chunk(&file, TRACE_CHUNK_FUNCTIONS, &chunk);
	buf_free(&chunk);
	put_chunk(&file, TRACE_CHUNK_EVENTS, &chunk); /* not even a count */
	buf_free(&chunk);
	buf_put_bytes(&chunk, (uint64_t[4]){ 1, 0, 999, 1 }, 32);
	put_chunk(&file, TRACE_CHUNK_TRAILER, &chunk);
	buf_free(&chunk);
	CHECK(open_bytes(&file, &t, err, sizeof(err)) == -EINVAL);
	CHECK(t == NULL && strstr(err, "corrupt events chunk") != NULL);
	trace_file__close(t);
	buf_free(&file);
}

/* A stream chunk whose header promises another last timestamp than its
 * events end at (the checksum covers only the events): reading fails. */
UNIT_TEST(streams_wrong_last_timestamp_fails_while_reading)
{
	struct buf file = { 0 };
	struct trace_stream_header h;
	struct trace_file *t = NULL;
	struct collected c = { .n = 0 };
	uint32_t payload_size = 0;
	char err[256] = "";
	size_t payload;

	CHECK(small_trace(&file) == 0);
	payload = first_stream_payload(&file, &payload_size);
	CHECK(payload > 0);
	if (!payload) {
		buf_free(&file);
		return;
	}
	memcpy(&h, file.data + payload, sizeof(h));
	h.last_ts += 1;
	memcpy(file.data + payload, &h, sizeof(h));
	CHECK(open_bytes(&file, &t, err, sizeof(err)) == 0);
	if (t)
		CHECK(trace_file__for_each_event(t, collect, &c) == -EBADMSG);
	trace_file__close(t);
	buf_free(&file);
}

/* A function entry whose size runs one byte past its chunk is refused. */
UNIT_TEST(trace_function_entry_past_its_chunk_is_refused)
{
	struct buf file = { 0 }, chunk = { 0 };
	struct trace_file *t = NULL;
	char err[256] = "";
	uint32_t size;

	put_v2_head(&file);
	buf_put_u32(&chunk, 1);
	put_v2_function(&chunk, "old::f::{{closure}}");
	buf_align(&chunk, 8);
	/* What is left after the count and the size field, plus one byte. */
	size = (uint32_t)(chunk.len - 8 + 4 + 1);
	memcpy(chunk.data + 4, &size, sizeof(size));
	put_chunk(&file, TRACE_CHUNK_FUNCTIONS, &chunk);
	buf_free(&chunk);
	buf_put_bytes(&chunk, (uint64_t[4]){ 0, 0, 999, 1 }, 32);
	put_chunk(&file, TRACE_CHUNK_TRAILER, &chunk);
	buf_free(&chunk);
	CHECK(open_bytes(&file, &t, err, sizeof(err)) == -EINVAL);
	CHECK(t == NULL && strstr(err, "corrupt functions chunk") != NULL);
	trace_file__close(t);
	buf_free(&file);
}

/* A 3.x file that says it uses a feature this build does not know is
 * refused with one line naming it, not misread. */
UNIT_TEST(trace_unknown_feature_is_refused)
{
	struct buf file = { 0 };
	struct trace_file *t = NULL;
	char err[256] = "";
	uint32_t features = 0x4;

	CHECK(small_trace(&file) == 0);
	CHECK(open_bytes(&file, &t, err, sizeof(err)) == 0);
	trace_file__close(t);
	t = NULL;
	memcpy(file.data + offsetof(struct trace_file_header, features), &features, sizeof(features));
	CHECK(open_bytes(&file, &t, err, sizeof(err)) == -ENOTSUP);
	CHECK(t == NULL && strstr(err, "features this build does not read (0x4)") != NULL);
	buf_free(&file);
}

/* The pages a reader gives back after a chunk never leave its mapping,
 * wherever the mapping sits against the 2 MiB windows (below it lies other
 * memory, which MADV_DONTNEED would zero), and cover the chunk. */
UNIT_TEST(streams_released_pages_stay_inside_the_mapping)
{
	const uintptr_t bases[] = { 0x7f0000001000, 0x7f00001ff000, 0x7f0000200000, 0x7f0000201000, 0x7f00003ff000 };
	const size_t lens[] = { 4096, 100000, 3u << 20, 9u << 20 };
	unsigned outside = 0, uncovered = 0, cases = 0;

	for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]); b++)
		for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
			for (size_t off = 0; off < lens[l]; off += lens[l] / 37 + 1)
				for (size_t n = 1; off + n <= lens[l]; n = n * 3 + 100) {
					uintptr_t from, to, start = bases[b] + off;

					trace_streams__release_range(bases[b], lens[l], start, n, &from, &to);
					outside += from < bases[b] || to > bases[b] + lens[l] || from > to;
					/* the chunk's pages are given back (madvise rounds the end up) */
					uncovered += from > (start & ~(uintptr_t)4095) ||
						     ((to + 4095) & ~(uintptr_t)4095) < ((start + n + 4095) & ~(uintptr_t)4095);
					cases++;
				}
	CHECK(cases > 1000);
	CHECK(outside == 0);
	CHECK(uncovered == 0);
}
