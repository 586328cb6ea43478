/* Release builds: the async bodies rustc inlined into other functions join
 * the poll function list, each at the address of its state dispatch (run
 * exactly once per poll of that body: docs/release-mode.md). */
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "elf/elf_image.h"
#include "elf/inlined.h"
#include "elf/pollfn.h"
#include "elf/pollfn_private.h"
#include "util/array.h"

/* The fake stack pointers of nested inlined polls sit between the host's
 * frame and its callees' (record adds 7 - level): no deeper. */
#define MAX_INLINED_LEVEL 6

static unsigned level_of(const struct inlined_host *host, const struct inlined_body *body)
{
	unsigned level = 0;

	for (uint32_t p = body->parent; p != INLINED_NO_PARENT && p < host->body_count; p = host->bodies[p].parent)
		level++;
	return level;
}

static bool countable(const struct inlined_host *host, const struct inlined_body *body)
{
	return host->decoded && body->state.found && body->state.base_reg >= 0 &&
	       level_of(host, body) <= MAX_INLINED_LEVEL;
}

static struct poll_fn *listed_at(struct poll_fn_list *list, size_t count, uint64_t addr)
{
	size_t lo = 0, hi = count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (list->fns[mid].addr == addr)
			return &list->fns[mid];
		if (list->fns[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool listed(const struct poll_fn_list *list, size_t count, uint64_t addr)
{
	return listed_at((struct poll_fn_list *)list, count, addr) != NULL;
}

/* A branch from later in the code back into the body, not to its
 * dispatch: a loop the host was rotated into (`while fut.poll().is_pending()`
 * re-entering the await directly), whose polls no dispatch marks. */
static bool reentered_by_a_loop(const struct inlined_body *body)
{
	for (size_t i = 0; i < body->entry_count; i++) {
		const struct inlined_entry *e = &body->entries[i];

		if (e->kind == INLINED_ENTRY_BRANCH && e->from > e->addr && e->addr != body->state.load_addr)
			return true;
	}
	return false;
}

/* Its awaits, from its dispatch: each resume point of a suspended state
 * (3 + N) and the source line there; "parked at" reads them with the
 * state an exit stored. Sorted by state, as state_layout wants. */
static int awaits_of(const struct inlined_body *body, struct state_layout *state)
{
	for (uint16_t want = 3; want < body->state.states; want++) {
		for (size_t i = 0; i < body->entry_count; i++) {
			const struct inlined_entry *e = &body->entries[i];
			struct await_point *grown;

			if (e->kind != INLINED_ENTRY_RESUME || e->state != (int16_t)want || !e->line)
				continue;
			grown = realloc(state->awaits, (state->await_count + 1) * sizeof(*grown));
			if (!grown)
				return -ENOMEM;
			state->awaits = grown;
			state->awaits[state->await_count++] = (struct await_point){ .state = want, .line = e->line };
			break;
		}
	}
	return 0;
}

static int append_body(struct poll_fn_list *list, size_t *capacity, const struct elf_image *img,
		       const struct inlined_host *host, const struct inlined_body *body)
{
	struct poll_fn *fn;

	if (ARRAY_RESERVE(list->fns, *capacity, list->count + 1))
		return -ENOMEM;
	fn = &list->fns[list->count];
	memset(fn, 0, sizeof(*fn));
	fn->addr = body->state.load_addr;
	fn->file_offset = elf_image__file_offset(img, fn->addr);
	fn->mangled = strdup(body->name);
	fn->demangled = strdup(body->name);
	fn->source_file = body->decl_file ? strdup(body->decl_file) : NULL;
	fn->source_line = body->decl_line;
	fn->body = body->body;
	fn->context = body->body == BODY_ASYNC_BLOCK ? CONTEXT_ANONYMOUS : CONTEXT_COMPILER;
	fn->role = ROLE_POLL;
	/* its exits where the state store is seen carry that state */
	fn->result.mode = RESULT_FROM_STATE;
	fn->result.disc_size = 1;
	fn->inlined.is = true;
	fn->inlined.base_reg = body->state.base_reg;
	fn->inlined.level = (uint8_t)level_of(host, body);
	fn->inlined.approximate = reentered_by_a_loop(body);
	list->count++; /* (released by the list from here on) */
	if (!fn->mangled || !fn->demangled || (body->decl_file && !fn->source_file))
		return -ENOMEM;
	return awaits_of(body, &fn->state);
}

/* A host that is no poll function (tokio's MaybeDone::poll, async-std's
 * LocalKey::with, ...) is probed too, as a plain function: its exit ends
 * the polls of the bodies inlined into it, which have no exits of their
 * own, and tells one call's bodies from the next call's. */
static int append_host(struct poll_fn_list *list, size_t *capacity, size_t original, const struct elf_image *img,
		       const struct inlined_host *host)
{
	struct poll_fn *fn;
	uint64_t end = 0;

	for (size_t r = 0; r < host->range_count; r++)
		if (host->ranges[r].lo <= host->addr && host->addr < host->ranges[r].hi)
			end = host->ranges[r].hi;
	if (!host->name || !end || listed(list, original, host->addr))
		return 0;
	if (ARRAY_RESERVE(list->fns, *capacity, list->count + 1))
		return -ENOMEM;
	fn = &list->fns[list->count];
	memset(fn, 0, sizeof(*fn));
	fn->addr = host->addr;
	fn->size = end - host->addr;
	fn->file_offset = elf_image__file_offset(img, fn->addr);
	fn->mangled = strdup(host->name);
	fn->demangled = strdup(host->name);
	fn->context = CONTEXT_FUNCTION;
	fn->role = ROLE_POLL;
	fn->inlined.host = true;
	list->count++;
	return fn->mangled && fn->demangled ? 0 : -ENOMEM;
}

void uncounted_bodies__free(struct uncounted_bodies *u)
{
	for (size_t i = 0; i < u->count; i++)
		free(u->names[i]);
	for (size_t i = 0; i < u->unprobed_count; i++)
		free(u->unprobed[i]);
	free(u->names);
	free(u->unprobed);
	*u = (struct uncounted_bodies){ 0 };
}

int uncounted_bodies__add(char ***names, size_t *count, const char *name)
{
	char **grown = realloc(*names, (*count + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	*names = grown;
	if (!(grown[*count] = strdup(name)))
		return -ENOMEM;
	(*count)++;
	return 0;
}

/* The list keeps the names too (the analysis cache, the trace). */
static int keep_uncounted(struct poll_fn_list *list, const struct uncounted_bodies *u)
{
	struct uncounted_bodies *kept = list->uncounted;
	int err = 0;

	if (!kept && !(kept = list->uncounted = calloc(1, sizeof(*list->uncounted))))
		return -ENOMEM;
	for (size_t i = 0; !err && i < u->count; i++)
		err = uncounted_bodies__add(&kept->names, &kept->count, u->names[i]);
	for (size_t i = 0; !err && i < u->unprobed_count; i++)
		err = uncounted_bodies__add(&kept->unprobed, &kept->unprobed_count, u->unprobed[i]);
	return err;
}

static int add_host(struct poll_fn_list *list, size_t *capacity, size_t original, const struct elf_image *img,
		    const struct inlined_host *host, const regex_t *match, bool bodies,
		    struct uncounted_bodies *uncounted)
{
	size_t before = list->count;
	int err = 0;

	for (size_t b = 0; !err && b < host->body_count; b++) {
		const struct inlined_body *body = &host->bodies[b];

		if (match && regexec(match, body->name, 0, NULL, 0) != 0)
			continue;
		/* a dispatch at a listed function's first instruction would share
		 * its address (one entry per address): left out, and said */
		if (!countable(host, body) || listed(list, original, body->state.load_addr) ||
		    body->state.load_addr == host->addr)
			err = uncounted_bodies__add(&uncounted->names, &uncounted->count, body->name);
		else if (!bodies)
			err = uncounted_bodies__add(&uncounted->unprobed, &uncounted->unprobed_count, body->name);
		else
			err = append_body(list, capacity, img, host, body);
	}
	if (!err && list->count > before)
		err = append_host(list, capacity, original, img, host);
	return err;
}

/* A surviving async body without DWARF types (release): its result is
 * its state byte after the poll, where its own dispatch reads it
 * (`self` + offset at entry). */
static void result_from_state(struct poll_fn_list *list, size_t count, const struct inlined_host *host)
{
	struct poll_fn *fn = listed_at(list, count, host->addr);

	if (!fn || !host->body || !host->state.found || host->state.arg < 0 || host->state.arg > 1 ||
	    host->state.offset < 0 || host->state.offset > UINT16_MAX || fn->state.size ||
	    fn->result.mode != RESULT_UNKNOWN || fn->role != ROLE_POLL)
		return;
	fn->state.offset = (uint16_t)host->state.offset;
	fn->state.size = 1;
	/* its awaits too ("parked at"), where its code shows them */
	if (!fn->state.await_count && host->await_count &&
	    (fn->state.awaits = calloc(host->await_count, sizeof(*fn->state.awaits)))) {
		for (size_t i = 0; i < host->await_count; i++)
			fn->state.awaits[i] = (struct await_point){ .state = host->awaits[i].state,
								    .line = host->awaits[i].line };
		fn->state.await_count = host->await_count;
	}
	fn->self_arg = (uint8_t)host->state.arg;
	fn->result.mode = RESULT_FROM_STATE;
	fn->result.disc_size = 1;
}

int poll_fn_list__add_inlined(struct poll_fn_list *list, const char *path, const regex_t *match, bool bodies,
			      struct uncounted_bodies *uncounted)
{
	struct elf_image img = { .fd = -1 };
	struct inlined_set set = { 0 };
	size_t capacity = list->count, original = list->count;
	int err;

	*uncounted = (struct uncounted_bodies){ 0 };
	if (list->machine != EM_X86_64 || !list->has_dwarf)
		return 0; /* the dispatch is found by decoding x86-64 code */
	if ((err = elf_image__open(&img, path)))
		return err;
	err = inlined_scan(&img, &set);
	for (size_t h = 0; h < set.count; h++)
		result_from_state(list, original, &set.hosts[h]);
	for (size_t h = 0; !err && h < set.count; h++)
		err = add_host(list, &capacity, original, &img, &set.hosts[h], match, bodies, uncounted);
	inlined_set__free(&set);
	elf_image__close(&img);
	if (list->count > original)
		poll_fn_list__sort_unique(list);
	if (!err && (uncounted->count || uncounted->unprobed_count))
		err = keep_uncounted(list, uncounted);
	return err;
}
