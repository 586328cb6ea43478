#include "util/outbuf.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

/* 1 MiB per write(): larger ones gain nothing measurable here; four
 * buffers let the formatter run ahead while a write is slow (page cache
 * writeback throttling). */
#define BUFFER_SIZE (1u << 20)
#define BUFFERS 4

struct full_buffer {
	char *data;
	size_t len;
};

struct outbuf_shared {
	FILE *file;
	int fd;                   /* file's descriptor, or -1 (a memory stream): then fwrite */
	int err;                  /* the first write error; later buffers are dropped */
	bool closing;
	pthread_mutex_t lock;
	pthread_cond_t changed;   /* a buffer became full or free, or closing */
	pthread_t writer;
	char *base;               /* the caller's current buffer */
	struct full_buffer full[BUFFERS]; /* FIFO of buffers to write */
	size_t full_head, full_count;
	char *free_list[BUFFERS];
	size_t free_count;
	char *memory;
};

static int write_all(FILE *file, int fd, const char *p, size_t len)
{
	if (fd < 0)
		return fwrite(p, 1, len, file) == len ? 0 : -EIO;
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void *writer_main(void *arg)
{
	struct outbuf_shared *s = arg;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct full_buffer b;

		while (!s->full_count && !s->closing)
			pthread_cond_wait(&s->changed, &s->lock);
		if (!s->full_count)
			break;
		b = s->full[s->full_head];
		s->full_head = (s->full_head + 1) % BUFFERS;
		s->full_count--;
		pthread_mutex_unlock(&s->lock);
		int err = s->err ? 0 : write_all(s->file, s->fd, b.data, b.len);
		pthread_mutex_lock(&s->lock);
		if (err && !s->err)
			s->err = err;
		s->free_list[s->free_count++] = b.data;
		pthread_cond_broadcast(&s->changed);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int outbuf__open(struct outbuf *ob, FILE *out)
{
	struct outbuf_shared *s = calloc(1, sizeof(*s));
	int err;

	if (!s || !(s->memory = malloc((size_t)BUFFERS * BUFFER_SIZE))) {
		free(s);
		return -ENOMEM;
	}
	s->file = out;
	s->fd = fileno(out);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->changed, NULL);
	for (size_t i = 1; i < BUFFERS; i++)
		s->free_list[s->free_count++] = s->memory + i * BUFFER_SIZE;
	s->base = s->memory;
	err = pthread_create(&s->writer, NULL, writer_main, s);
	if (err) {
		pthread_cond_destroy(&s->changed);
		pthread_mutex_destroy(&s->lock);
		free(s->memory);
		free(s);
		return -err;
	}
	ob->shared = s;
	ob->pos = s->base;
	ob->limit = s->base + BUFFER_SIZE;
	return 0;
}

/* Queues the caller's buffer; with take, waits for a free one. */
static void hand_over(struct outbuf *ob, bool take)
{
	struct outbuf_shared *s = ob->shared;

	pthread_mutex_lock(&s->lock);
	s->full[(s->full_head + s->full_count) % BUFFERS] =
		(struct full_buffer){ s->base, (size_t)(ob->pos - s->base) };
	s->full_count++;
	pthread_cond_broadcast(&s->changed);
	while (take && !s->free_count)
		pthread_cond_wait(&s->changed, &s->lock);
	if (take)
		s->base = s->free_list[--s->free_count];
	else
		s->closing = true;
	pthread_mutex_unlock(&s->lock);
	ob->pos = s->base;
	ob->limit = s->base + BUFFER_SIZE;
}

void outbuf__swap(struct outbuf *ob)
{
	hand_over(ob, true);
}

void outbuf__put(struct outbuf *ob, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		size_t n = len < OUTBUF_MAX_ROOM ? len : OUTBUF_MAX_ROOM;
		char *at = outbuf__room(ob, n);

		memcpy(at, p, n);
		outbuf__advance(ob, at + n);
		p += n;
		len -= n;
	}
}

int outbuf__close(struct outbuf *ob)
{
	struct outbuf_shared *s = ob->shared;
	int err;

	if (!s)
		return 0;
	hand_over(ob, false);
	pthread_join(s->writer, NULL);
	err = s->err;
	pthread_cond_destroy(&s->changed);
	pthread_mutex_destroy(&s->lock);
	free(s->memory);
	free(s);
	*ob = (struct outbuf){ 0 };
	return err;
}
