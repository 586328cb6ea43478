#include "elf/pollfn_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/hash.h"

#define CACHE_MAGIC "ATFNCACH"
/* Bump with any change to struct poll_fn or to what the analysis finds. */
#define CACHE_VERSION 7 /* 2: inlined async bodies; 3: results from state bytes; 4: approximate; 5: inlined results; 6: uncounted names; 7: unprobed names, hosts */
#define MAX_STRING (1u << 20)
#define MAX_FUNCTIONS (1u << 24)

static void put_fn(struct buf *b, const struct poll_fn *fn)
{
	buf_put_u64(b, fn->addr);
	buf_put_u64(b, fn->size);
	buf_put_u64(b, fn->file_offset);
	buf_put_str(b, fn->mangled);
	buf_put_str(b, fn->demangled);
	buf_put_u8(b, fn->context);
	buf_put_u8(b, fn->body);
	buf_put_u8(b, fn->self_arg);
	buf_put_u8(b, fn->result.mode);
	buf_put_u8(b, fn->result.disc_size);
	buf_put_u16(b, fn->result.disc_offset);
	buf_put_u64(b, fn->result.pending_value);
	buf_put_str(b, fn->source_file);
	buf_put_u32(b, fn->source_line);
	buf_put_u8(b, fn->role);
	buf_put_u8(b, fn->runtime);
	buf_put_u32(b, fn->target);
	buf_put_u8(b, fn->stack_args);
	buf_put_u16(b, fn->state.offset);
	buf_put_u8(b, fn->state.size);
	buf_put_u32(b, (uint32_t)fn->state.await_count);
	for (size_t i = 0; i < fn->state.await_count; i++) {
		buf_put_u64(b, fn->state.awaits[i].state);
		buf_put_u32(b, fn->state.awaits[i].line);
		buf_put_str(b, fn->state.awaits[i].file);
	}
	buf_put_str(b, fn->future_type);
	buf_put_u8(b, fn->inlined.is);
	buf_put_u8(b, (uint8_t)fn->inlined.base_reg);
	buf_put_u8(b, fn->inlined.level);
	buf_put_u8(b, fn->inlined.approximate);
	buf_put_u8(b, fn->inlined.host);
}

int poll_fn_list__serialize(const struct poll_fn_list *list, uint8_t **data, size_t *len)
{
	struct buf b = { 0 };

	buf_put_bytes(&b, CACHE_MAGIC, 8);
	buf_put_u32(&b, CACHE_VERSION);
	buf_put_u32(&b, (uint32_t)list->count);
	buf_put_u16(&b, list->machine);
	buf_put_u8(&b, list->elf_class);
	buf_put_u8(&b, list->has_dwarf);
	buf_put_u8(&b, list->code_scanned);
	buf_put_u8(&b, (uint8_t)list->build_id_len);
	buf_put_bytes(&b, list->build_id, sizeof(list->build_id));
	buf_put_u64(&b, list->filtered_out);
	for (size_t i = 0; i < list->count; i++)
		put_fn(&b, &list->fns[i]);
	buf_put_u32(&b, list->uncounted ? (uint32_t)list->uncounted->count : 0);
	for (size_t i = 0; list->uncounted && i < list->uncounted->count; i++)
		buf_put_str(&b, list->uncounted->names[i]);
	buf_put_u32(&b, list->uncounted ? (uint32_t)list->uncounted->unprobed_count : 0);
	for (size_t i = 0; list->uncounted && i < list->uncounted->unprobed_count; i++)
		buf_put_str(&b, list->uncounted->unprobed[i]);
	if (b.err) {
		buf_free(&b);
		return b.err;
	}
	*data = b.data;
	*len = b.len;
	return 0;
}

static void get_awaits(struct state_layout *state, struct cursor *c)
{
	uint32_t count = cursor_u32(c);

	if (c->err || count > c->left / 16) {
		c->err = -EINVAL;
		return;
	}
	if (!count)
		return;
	state->awaits = calloc(count, sizeof(*state->awaits));
	if (!state->awaits) {
		c->err = -ENOMEM;
		return;
	}
	state->await_count = count;
	for (uint32_t i = 0; i < count; i++) {
		state->awaits[i].state = cursor_u64(c);
		state->awaits[i].line = cursor_u32(c);
		state->awaits[i].file = cursor_str(c, MAX_STRING);
	}
}

static void get_fn(struct poll_fn *fn, struct cursor *c)
{
	fn->addr = cursor_u64(c);
	fn->size = cursor_u64(c);
	fn->file_offset = cursor_u64(c);
	fn->mangled = cursor_str(c, MAX_STRING);
	fn->demangled = cursor_str(c, MAX_STRING);
	fn->context = cursor_u8(c);
	fn->body = cursor_u8(c);
	fn->self_arg = cursor_u8(c);
	fn->result.mode = cursor_u8(c);
	fn->result.disc_size = cursor_u8(c);
	fn->result.disc_offset = cursor_u16(c);
	fn->result.pending_value = cursor_u64(c);
	fn->source_file = cursor_str(c, MAX_STRING);
	fn->source_line = cursor_u32(c);
	fn->role = cursor_u8(c);
	fn->runtime = cursor_u8(c);
	fn->target = cursor_u32(c);
	fn->stack_args = cursor_u8(c);
	fn->state.offset = cursor_u16(c);
	fn->state.size = cursor_u8(c);
	get_awaits(&fn->state, c);
	fn->future_type = cursor_str(c, MAX_STRING);
	fn->inlined.is = cursor_u8(c) != 0;
	fn->inlined.base_reg = (int8_t)cursor_u8(c);
	fn->inlined.level = cursor_u8(c);
	fn->inlined.approximate = cursor_u8(c) != 0;
	fn->inlined.host = cursor_u8(c) != 0;
	if (!c->err && (!fn->mangled || !fn->demangled))
		c->err = -EINVAL;
}

/* A count and that many names, into (*names, *count). */
static void get_names(char ***names, size_t *count, struct cursor *c)
{
	uint32_t n = cursor_u32(c);

	if (c->err || !n)
		return;
	if (n > c->left / 4 || !(*names = calloc(n, sizeof(char *)))) {
		c->err = c->err ? c->err : n > c->left / 4 ? -EINVAL : -ENOMEM;
		return;
	}
	for (uint32_t i = 0; i < n && !c->err; i++) {
		(*names)[i] = cursor_str(c, MAX_STRING);
		if (!(*names)[i])
			c->err = -EINVAL;
		else
			(*count)++;
	}
}

static void get_uncounted(struct poll_fn_list *list, struct cursor *c)
{
	struct uncounted_bodies *u = calloc(1, sizeof(*u));

	if (!u) {
		c->err = -ENOMEM;
		return;
	}
	get_names(&u->names, &u->count, c);
	get_names(&u->unprobed, &u->unprobed_count, c);
	if (u->count || u->unprobed_count || u->names || u->unprobed)
		list->uncounted = u; /* freed with the list, whatever was read */
	else
		free(u);
}

int poll_fn_list__deserialize(struct poll_fn_list *list, const uint8_t *data, size_t len)
{
	struct cursor c = { .p = data, .left = len };
	char magic[8];
	uint32_t version, count;

	memset(list, 0, sizeof(*list));
	cursor_bytes(&c, magic, sizeof(magic));
	version = cursor_u32(&c);
	count = cursor_u32(&c);
	if (c.err || memcmp(magic, CACHE_MAGIC, 8) || version != CACHE_VERSION || count > MAX_FUNCTIONS ||
	    count > c.left / 40)
		return -EINVAL;
	list->machine = cursor_u16(&c);
	list->elf_class = cursor_u8(&c);
	list->has_dwarf = cursor_u8(&c);
	list->code_scanned = cursor_u8(&c);
	list->build_id_len = cursor_u8(&c);
	cursor_bytes(&c, list->build_id, sizeof(list->build_id));
	list->filtered_out = cursor_u64(&c);
	list->fns = calloc(count ? count : 1, sizeof(*list->fns));
	if (!list->fns)
		return -ENOMEM;
	list->count = count;
	for (uint32_t i = 0; i < count && !c.err; i++)
		get_fn(&list->fns[i], &c);
	if (!c.err)
		get_uncounted(list, &c);
	if (!c.err && (c.left || list->build_id_len > sizeof(list->build_id)))
		c.err = -EINVAL;
	for (uint32_t i = 0; !c.err && i < count; i++)
		if (list->fns[i].role == ROLE_DROP && list->fns[i].target >= count)
			c.err = -EINVAL;
	if (c.err)
		poll_fn_list__free(list);
	return c.err;
}

/* $XDG_CACHE_HOME/asynctrace/<hash of the key><suffix>, created as needed. */
static int entry_path(const struct pollfn_cache_key *key, const struct stat *st, const char *suffix, char *out,
		      size_t out_len)
{
	const char *base = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char dir[PATH_MAX], identity[PATH_MAX + 256], *real = realpath(key->path, NULL);
	struct stat self = { 0 };
	uint64_t hash;

	if (!real)
		return -errno;
	/* Another build of asynctrace analyses and plans afresh. */
	stat("/proc/self/exe", &self);
	snprintf(identity, sizeof(identity), "%s|%llu|%llu|%lld|%lld.%09ld|%lld.%09ld|%d|%lld.%09ld|%lld", real,
		 (unsigned long long)st->st_dev, (unsigned long long)st->st_ino, (long long)st->st_size,
		 (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec,
		 st->st_ctim.tv_nsec, key->hooks, (long long)self.st_mtim.tv_sec, self.st_mtim.tv_nsec,
		 (long long)self.st_size);
	free(real);
	/* The options hash apart, so that no separator inside them collides. */
	hash = hash_string(identity) ^ (hash_string(key->match) * 31) ^ (hash_string(key->functions) * 131) ^
	       (uint64_t)CACHE_VERSION << 56;
	if (base && *base) {
		if (mkdir(base, 0700) < 0 && errno != EEXIST)
			return -errno;
		snprintf(dir, sizeof(dir), "%s/asynctrace", base);
	} else if (home && *home) {
		snprintf(dir, sizeof(dir), "%s/.cache", home);
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -errno;
		snprintf(dir, sizeof(dir), "%s/.cache/asynctrace", home);
	} else {
		return -ENOENT;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if ((size_t)snprintf(out, out_len, "%s/%016llx%s", dir, (unsigned long long)hash, suffix) >= out_len)
		return -ENAMETOOLONG;
	return 0;
}

int pollfn_cache__read(const char *path, void **map, size_t *len)
{
	struct stat entry;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return -ENOENT;
	/* Someone else's file is not ours to trust. */
	if (fstat(fd, &entry) < 0 || entry.st_uid != geteuid() || !S_ISREG(entry.st_mode) || entry.st_size == 0) {
		close(fd);
		return -ENOENT;
	}
	*map = mmap(NULL, (size_t)entry.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (*map == MAP_FAILED)
		return -ENOENT;
	*len = (size_t)entry.st_size;
	return 0;
}

int pollfn_cache__load(struct poll_fn_list *list, const struct pollfn_cache_key *key)
{
	char path[PATH_MAX];
	struct stat st;
	void *map;
	size_t len;
	int err;

	if (stat(key->path, &st) < 0 || entry_path(key, &st, ".fns", path, sizeof(path)) < 0 ||
	    pollfn_cache__read(path, &map, &len) < 0)
		return -ENOENT;
	err = poll_fn_list__deserialize(list, map, len);
	munmap(map, len);
	return err == -ENOMEM ? err : err ? -ENOENT : 0;
}

int pollfn_cache__write(const char *path, const void *data, size_t len)
{
	char tmp[PATH_MAX + 16];
	int fd, err;

	snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	err = write(fd, data, len) == (ssize_t)len ? 0 : -EIO;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

int pollfn_cache__store(const struct poll_fn_list *list, const struct pollfn_cache_key *key)
{
	char path[PATH_MAX];
	struct stat st;
	uint8_t *data;
	size_t len;
	int err;

	if (stat(key->path, &st) < 0)
		return -errno;
	err = entry_path(key, &st, ".fns", path, sizeof(path));
	if (!err)
		err = poll_fn_list__serialize(list, &data, &len);
	if (err)
		return err;
	err = pollfn_cache__write(path, data, len);
	free(data);
	return err;
}

int pollfn_cache__path(const struct pollfn_cache_key *key, const char *suffix, char *out, size_t out_len)
{
	struct stat st;

	if (stat(key->path, &st) < 0)
		return -errno;
	return entry_path(key, &st, suffix, out, out_len);
}
