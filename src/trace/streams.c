#include "trace/streams.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <zlib.h>

#include "trace/codec.h"
#include "trace/format.h"
#include "util/array.h"
#include "util/u64map.h"

#define NO_CHUNK UINT32_MAX
#define STREAM_HEADER_SIZE sizeof(struct trace_stream_header)
/* The smallest encoded event: a tag and a one-byte ts delta. */
#define MIN_EVENT_BYTES 2

_Static_assert(sizeof(struct trace_event) == TRACE_EVENT_SIZE_V2, "2.x events are struct trace_event");
_Static_assert(sizeof(struct trace_stream_header) == 48, "the stream header is 48 bytes on disk");

struct stream_chunk {
	const uint8_t *bytes;  /* in the mapping: encoded events, or 2.x 56-byte ones */
	uint64_t first_ts;
	uint64_t last_ts;
	uint32_t count;
	uint32_t size;
	uint32_t tid;
	uint32_t pid;
	uint32_t next;         /* the stream's next chunk, or NO_CHUNK */
};

struct stream {
	uint64_t id;
	uint32_t first_chunk;
	uint32_t last_chunk;
};

struct trace_streams {
	const uint8_t *map;       /* the file's mapping, when its pages may be released */
	size_t map_len;
	struct stream_chunk *chunks;
	size_t chunk_count;
	size_t chunk_capacity;
	struct stream *streams;
	size_t stream_count;
	size_t stream_capacity;
	struct u64map by_id;   /* while indexing: id + 1 -> index + 1 */
	struct event_codec codec;
	uint64_t event_count;
	uint64_t first_ts;
	bool legacy;           /* 2.x: one stream of 56-byte events */
	bool encoded;          /* 3.x STREAM chunks */
};

struct trace_streams *trace_streams__new(void)
{
	return calloc(1, sizeof(struct trace_streams));
}

void trace_streams__set_mapping(struct trace_streams *s, const uint8_t *map, size_t len)
{
	s->map = map;
	s->map_len = len;
}

void trace_streams__free(struct trace_streams *s)
{
	if (!s)
		return;
	free(s->chunks);
	free(s->streams);
	u64map_free(&s->by_id);
	event_codec__free(&s->codec);
	free(s);
}

/* The stream's index, created at its first chunk. */
static int stream_index(struct trace_streams *s, uint64_t id, size_t *index)
{
	uintptr_t found = (uintptr_t)u64map_get(&s->by_id, id + 1);

	if (found) {
		*index = found - 1;
		return 0;
	}
	if (ARRAY_RESERVE(s->streams, s->stream_capacity, s->stream_count + 1) ||
	    u64map_put(&s->by_id, id + 1, (void *)(uintptr_t)(s->stream_count + 1)))
		return -ENOMEM;
	s->streams[s->stream_count] = (struct stream){ .id = id, .first_chunk = NO_CHUNK,
						       .last_chunk = NO_CHUNK };
	*index = s->stream_count++;
	return 0;
}

static int append_chunk(struct trace_streams *s, uint64_t id, const struct stream_chunk *chunk)
{
	struct stream *st;
	size_t index;
	int err;

	if (s->chunk_count >= NO_CHUNK)
		return -EINVAL;
	err = stream_index(s, id, &index);
	if (!err && ARRAY_RESERVE(s->chunks, s->chunk_capacity, s->chunk_count + 1))
		err = -ENOMEM;
	if (err)
		return err;
	st = &s->streams[index];
	s->chunks[s->chunk_count] = *chunk;
	s->chunks[s->chunk_count].next = NO_CHUNK;
	if (st->last_chunk == NO_CHUNK)
		st->first_chunk = (uint32_t)s->chunk_count;
	else
		s->chunks[st->last_chunk].next = (uint32_t)s->chunk_count;
	st->last_chunk = (uint32_t)s->chunk_count++;
	s->event_count += chunk->count;
	return 0;
}

int trace_streams__add_events_chunk(struct trace_streams *s, const uint8_t *payload, size_t size)
{
	struct stream_chunk chunk = { 0 };
	struct trace_event first, last;

	if (s->encoded || size < 8)
		return -EINVAL;
	memcpy(&chunk.count, payload, sizeof(chunk.count));
	if (chunk.count > (size - 8) / TRACE_EVENT_SIZE_V2)
		return -EINVAL;
	s->legacy = true;
	if (!chunk.count)
		return 0;
	chunk.bytes = payload + 8;
	chunk.size = chunk.count * TRACE_EVENT_SIZE_V2;
	memcpy(&first, chunk.bytes, sizeof(first));
	memcpy(&last, chunk.bytes + chunk.size - TRACE_EVENT_SIZE_V2, sizeof(last));
	chunk.first_ts = first.ts;
	chunk.last_ts = last.ts;
	return append_chunk(s, 0, &chunk);
}

/* A chunk read through is dropped from the process's memory (the file's
 * pages stay in the page cache; touching them again maps them back), so
 * a reader's resident size does not grow with the trace. The kernel maps
 * pages around each fault (fault-around, 64 KiB aligned windows), also
 * ones released before: the range goes back one such window and out to
 * whole ones. A neighbour chunk still being read faults its pages back. */
#define FAULT_AROUND_BYTES (2u << 20)

void trace_streams__release_range(uintptr_t base, size_t map_len, uintptr_t start, size_t len, uintptr_t *from,
				  uintptr_t *to)
{
	uintptr_t end = base + map_len, window = start & ~(uintptr_t)(FAULT_AROUND_BYTES - 1);

	/* Never below the mapping (page aligned): what lies there is someone
	 * else's memory, and MADV_DONTNEED would zero it. */
	*from = window >= base + FAULT_AROUND_BYTES ? window - FAULT_AROUND_BYTES : base;
	*to = (start + len + FAULT_AROUND_BYTES - 1) & ~(uintptr_t)(FAULT_AROUND_BYTES - 1);
	if (*from < base)
		*from = base;
	if (*to > end)
		*to = end; /* madvise rounds the length up to its page, still ours */
	if (*to < *from)
		*to = *from;
}

/* last_to: where the caller's previous release ended, or NULL. The same
 * range again (chunks within one window) is not released twice: with a
 * second thread in the process each madvise costs a TLB shootdown. */
static void release_pages(const struct trace_streams *s, const void *start, size_t len, uintptr_t *last_to)
{
	uintptr_t from, to;

	if (!s->map || !len)
		return; /* bytes not from a file mapping are never given away */
	trace_streams__release_range((uintptr_t)s->map, s->map_len, (uintptr_t)start, len, &from, &to);
	if (from >= to || (last_to && *last_to == to))
		return;
	madvise((void *)from, to - from, MADV_DONTNEED);
	if (last_to)
		*last_to = to;
}

/* What the header promises must fit the payload: encoded bytes inside it
 * (then at most 7 bytes of padding), and events that take room. */
static int check_stream_header(const struct trace_stream_header *h, size_t size)
{
	size_t room = size - STREAM_HEADER_SIZE;

	if (h->flags)
		return -ENOTSUP; /* compressed (reserved) or a later minor's */
	if (h->stream == UINT64_MAX || h->encoded_bytes > room || room - h->encoded_bytes >= 8 ||
	    h->count == 0 || h->count > TRACE_MAX_STREAM_EVENTS ||
	    h->encoded_bytes / MIN_EVENT_BYTES < h->count)
		return -EINVAL;
	return 0;
}

int trace_streams__add_stream_chunk(struct trace_streams *s, const uint8_t *payload, size_t size)
{
	struct trace_stream_header h;
	struct stream_chunk chunk;
	int err;

	if (s->legacy || size < STREAM_HEADER_SIZE)
		return -EINVAL;
	memcpy(&h, payload, sizeof(h));
	err = check_stream_header(&h, size);
	if (err)
		return err;
	if ((uint32_t)crc32(0L, payload + STREAM_HEADER_SIZE, h.encoded_bytes) != h.crc32)
		return -EBADMSG;
	release_pages(s, payload, size, NULL);
	s->encoded = true;
	chunk = (struct stream_chunk){
		.bytes = payload + STREAM_HEADER_SIZE, .first_ts = h.first_ts, .last_ts = h.last_ts,
		.count = h.count, .size = h.encoded_bytes, .tid = h.tid, .pid = h.pid,
	};
	return append_chunk(s, h.stream, &chunk);
}

static int compare_streams(const void *a, const void *b)
{
	uint64_t x = ((const struct stream *)a)->id, y = ((const struct stream *)b)->id;

	return x < y ? -1 : x > y;
}

int trace_streams__finish(struct trace_streams *s, const struct trace_function *fns, size_t count)
{
	u64map_free(&s->by_id);
	/* Ties in time go to the lower stream id: an order that does not
	 * depend on how a writer happened to interleave chunks. */
	if (s->stream_count)
		qsort(s->streams, s->stream_count, sizeof(*s->streams), compare_streams);
	for (size_t i = 0; i < s->stream_count; i++) {
		uint64_t ts = s->chunks[s->streams[i].first_chunk].first_ts;

		if (i == 0 || ts < s->first_ts)
			s->first_ts = ts;
	}
	return event_codec__init(&s->codec, fns, count);
}

uint64_t trace_streams__event_count(const struct trace_streams *s)
{
	return s->event_count;
}

size_t trace_streams__stream_count(const struct trace_streams *s)
{
	return s->stream_count;
}

uint64_t trace_streams__first_ts(const struct trace_streams *s)
{
	return s->first_ts;
}

/* One stream's place in the merge. Its next event is decoded only when
 * the stream reaches the top: until then a chunk's first_ts stands for
 * it, so streams that have not started hold no decoder state. */
struct cursor {
	uint64_t key;           /* ts of the stream's next event */
	uint32_t order;         /* its index in stream order: breaks ties */
	uint32_t chunk;
	const uint8_t *p;
	const uint8_t *end;
	uint32_t left;          /* events of the chunk not yet decoded */
	bool has_event;
	struct trace_event event;
	struct codec_state *state;
	uintptr_t released_to;  /* the end of its last page release */
};

static void load_chunk(const struct trace_streams *s, struct cursor *c, uint32_t chunk)
{
	const struct stream_chunk *k = &s->chunks[chunk];

	c->chunk = chunk;
	c->p = k->bytes;
	c->end = k->bytes + k->size;
	c->left = k->count;
	c->key = k->first_ts;
	c->has_event = false;
}

/* Decodes the cursor's next event, checking it against what the chunk
 * header promised (its crc32 matched, so a mismatch is a writer's bug or
 * a forged file). */
static int decode_next(const struct trace_streams *s, struct cursor *c)
{
	const struct stream_chunk *k = &s->chunks[c->chunk];
	bool first = c->left == k->count;

	if (first) {
		if (!c->state && !(c->state = malloc(sizeof(*c->state))))
			return -ENOMEM;
		codec_state__reset(c->state, k->first_ts);
	}
	c->event.tid = k->tid;
	c->event.pid = k->pid;
	if (event_codec__decode(&s->codec, c->state, &c->p, c->end, &c->event))
		return -EBADMSG;
	c->left--;
	if ((first && c->event.ts != k->first_ts) ||
	    (!c->left && (c->p != c->end || c->event.ts != k->last_ts)))
		return -EBADMSG;
	c->key = c->event.ts;
	c->has_event = true;
	return 0;
}

/* Past the event just handed out. Returns 1 when the stream has no more. */
static int advance(const struct trace_streams *s, struct cursor *c)
{
	uint32_t next = s->chunks[c->chunk].next;

	if (c->left)
		return decode_next(s, c);
	release_pages(s, s->chunks[c->chunk].bytes, s->chunks[c->chunk].size, &c->released_to);
	if (next == NO_CHUNK)
		return 1;
	load_chunk(s, c, next);
	return 0;
}

static bool before(const struct cursor *a, const struct cursor *b)
{
	return a->key < b->key || (a->key == b->key && a->order < b->order);
}

static void sift_down(struct cursor **heap, size_t n, size_t i)
{
	struct cursor *c = heap[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= n)
			break;
		if (child + 1 < n && before(heap[child + 1], heap[child]))
			child++;
		if (!before(heap[child], c))
			break;
		heap[i] = heap[child];
		i = child;
	}
	heap[i] = c;
}

/* The k-way merge, one event at a time: the heap's top is the stream
 * whose next event is the earliest; each stream reads its chunks in file
 * order. A 2.x file is its one stream's events as they are in the file
 * (copied: a corrupt chunk size may leave them unaligned). */
struct trace_event_iter {
	const struct trace_streams *streams;
	struct cursor *cursors;
	struct cursor **heap;
	size_t live;           /* streams in the heap */
	struct cursor *handed; /* its event was handed out: advance it first */
	uint32_t legacy_chunk;
	uint32_t legacy_index;
	struct trace_event legacy_event;
};

int trace_streams__iterate(const struct trace_streams *s, struct trace_event_iter **out)
{
	struct trace_event_iter *it = calloc(1, sizeof(*it));
	size_t n = s->legacy ? 0 : s->stream_count;

	if (!it)
		return -ENOMEM;
	it->streams = s;
	it->legacy_chunk = s->legacy && s->stream_count ? s->streams[0].first_chunk : NO_CHUNK;
	it->cursors = calloc(n + 1, sizeof(*it->cursors));
	it->heap = calloc(n + 1, sizeof(*it->heap));
	if (!it->cursors || !it->heap) {
		trace_event_iter__free(it);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		it->cursors[i].order = (uint32_t)i;
		load_chunk(s, &it->cursors[i], s->streams[i].first_chunk);
		it->heap[i] = &it->cursors[i];
	}
	it->live = n;
	for (size_t i = n / 2; i-- > 0;)
		sift_down(it->heap, n, i);
	*out = it;
	return 0;
}

static int next_legacy(struct trace_event_iter *it, const struct trace_event **event)
{
	const struct trace_streams *s = it->streams;

	while (it->legacy_chunk != NO_CHUNK && it->legacy_index == s->chunks[it->legacy_chunk].count) {
		it->legacy_chunk = s->chunks[it->legacy_chunk].next;
		it->legacy_index = 0;
	}
	if (it->legacy_chunk == NO_CHUNK)
		return 0;
	memcpy(&it->legacy_event, s->chunks[it->legacy_chunk].bytes + (size_t)it->legacy_index++ * TRACE_EVENT_SIZE_V2,
	       sizeof(it->legacy_event));
	*event = &it->legacy_event;
	return 1;
}

/* Past the event handed out last: the stream's next, or its end. */
static int step_past_handed(struct trace_event_iter *it)
{
	struct cursor *c = it->handed;
	int rc;

	it->handed = NULL;
	rc = advance(it->streams, c);
	if (rc < 0)
		return rc;
	if (rc > 0) {
		free(c->state);
		c->state = NULL;
		it->heap[0] = it->heap[--it->live];
	}
	if (it->live > 1)
		sift_down(it->heap, it->live, 0);
	return 0;
}

int trace_event_iter__next(struct trace_event_iter *it, const struct trace_event **event)
{
	struct cursor *c;
	int rc;

	if (it->streams->legacy)
		return next_legacy(it, event);
	if (it->handed && (rc = step_past_handed(it)) < 0)
		return rc;
	if (!it->live)
		return 0;
	c = it->heap[0];
	if (!c->has_event && (rc = decode_next(it->streams, c)) < 0)
		return rc;
	it->handed = c;
	*event = &c->event;
	return 1;
}

void trace_event_iter__free(struct trace_event_iter *it)
{
	if (!it)
		return;
	for (size_t i = 0; it->cursors && !it->streams->legacy && i < it->streams->stream_count; i++)
		free(it->cursors[i].state);
	free(it->cursors);
	free(it->heap);
	free(it);
}

int trace_streams__for_each_event(const struct trace_streams *s, trace_event_fn fn, void *ctx)
{
	struct trace_event_iter *it;
	const struct trace_event *e;
	int rc = trace_streams__iterate(s, &it);

	if (rc)
		return rc;
	while ((rc = trace_event_iter__next(it, &e)) > 0)
		if ((rc = fn(e, ctx)) != 0)
			break;
	trace_event_iter__free(it);
	return rc;
}
