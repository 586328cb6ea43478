/* poll_fn_list__add_hooks: the runtime hooks of hooks.c and the drop glue
 * of the listed futures, found in one pass over the symbols, refined with
 * DWARF, merged into the sorted list. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "elf/demangle.h"
#include "elf/dwarf_scan.h"
#include "elf/elf_image.h"
#include "elf/hooks.h"
#include "elf/pollfn.h"
#include "elf/pollfn_private.h"
#include "elf/state_layout.h"
#include "util/array.h"

/* A listed poll function, by the key of its future type. */
struct poll_key {
	char *key;
	size_t index; /* in the list as it was before adding */
};

/* A function to add. */
struct found {
	struct elf_sym sym;
	size_t order;                 /* position in the symbol tables */
	char *demangled;
	char *linkage;                /* DWARF's name when the symbol has `.llvm.` */
	const struct hook_spec *spec; /* NULL: drop glue */
	size_t key_lo, key_hi;        /* glue: its poll functions in the key index */
	size_t target;                /* glue: index (before adding) of its poll function */
	char *future_type;            /* glue: T of drop_in_place<T>, from DWARF */
	char *source_file;
	unsigned source_line;
	uint8_t stack_args;           /* enum stack_args, from DWARF */
	bool drop;                    /* rejected after all */
};

struct hooks {
	struct poll_fn_list *list;
	size_t original;              /* list->count before adding */
	struct elf_image img;
	struct elf_sym *syms;
	size_t sym_count;
	struct hook_matcher *matcher;
	struct poll_key *keys;
	size_t key_count;
	struct found *found;
	size_t found_count, found_cap;
};

static int cmp_keys(const void *a, const void *b)
{
	const struct poll_key *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : (x->index < y->index ? -1 : x->index > y->index);
}

/* Futures whose drop glue is wanted: what the listed poll functions poll
 * (not runtime functions without a future type, nor --function ones). */
static int index_poll_types(struct hooks *h)
{
	h->keys = calloc(h->original ? h->original : 1, sizeof(*h->keys));
	if (!h->keys)
		return -ENOMEM;
	for (size_t i = 0; i < h->original; i++) {
		const struct poll_fn *fn = &h->list->fns[i];
		char *key;

		if (fn->role != ROLE_POLL || fn->context == CONTEXT_FUNCTION)
			continue;
		if (future_key_of_poll(fn->demangled, &key) < 0)
			return -ENOMEM;
		if (key)
			h->keys[h->key_count++] = (struct poll_key){ key, i };
	}
	qsort(h->keys, h->key_count, sizeof(*h->keys), cmp_keys);
	return 0;
}

/* [lo, hi) of the keys equal to `key`. */
static void key_range(const struct hooks *h, const char *key, size_t *lo, size_t *hi)
{
	size_t a = 0, b = h->key_count;

	while (a < b) {
		size_t mid = a + (b - a) / 2;

		if (strcmp(h->keys[mid].key, key) < 0)
			a = mid + 1;
		else
			b = mid;
	}
	*lo = *hi = a;
	while (*hi < h->key_count && strcmp(h->keys[*hi].key, key) == 0)
		(*hi)++;
}

static bool listed(const struct hooks *h, uint64_t addr)
{
	size_t lo = 0, hi = h->original;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (h->list->fns[mid].addr == addr)
			return true;
		if (h->list->fns[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int add_found(struct hooks *h, size_t i, char *demangled, const struct hook_spec *spec,
		     size_t lo, size_t hi)
{
	if (ARRAY_RESERVE(h->found, h->found_cap, h->found_count + 1))
		return -ENOMEM;
	h->found[h->found_count++] = (struct found){
		.sym = h->syms[i], .order = i, .demangled = demangled, .spec = spec,
		.key_lo = lo, .key_hi = hi, .target = lo < hi ? h->keys[lo].index : 0,
	};
	return 0;
}

/* Glue of one of the listed futures? Takes `demangled`. */
static int consider_glue(struct hooks *h, size_t i, char *demangled)
{
	size_t lo = 0, hi = 0;
	char *key;
	int err = future_key_of_glue(demangled, &key);

	if (key)
		key_range(h, key, &lo, &hi);
	free(key);
	if (!err && lo < hi)
		err = add_found(h, i, demangled, NULL, lo, hi);
	else
		err = err < 0 ? err : 1;
	if (err)
		free(demangled);
	return err < 0 ? err : 0;
}

static int consider_symbol(struct hooks *h, size_t i)
{
	const char *name = h->syms[i].name;
	bool glue = drop_glue_may_match(name), oom = false;
	const struct hook_spec *spec;
	char *demangled;

	if (glue ? !h->key_count : !hook_matcher__may_match(h->matcher, name))
		return 0;
	if (listed(h, h->syms[i].addr))
		return 0;
	if (!(demangled = demangle_symbol(name)))
		return -ENOMEM;
	if (glue)
		return consider_glue(h, i, demangled);
	spec = hook_find(demangled, &oom);
	if (spec && !oom && add_found(h, i, demangled, spec, 0, 0) == 0)
		return 0;
	free(demangled);
	return oom || spec ? -ENOMEM : 0;
}

static int find_candidates(struct hooks *h)
{
	int err = 0;

	for (size_t i = 0; !err && i < h->sym_count; i++)
		err = consider_symbol(h, i);
	return err;
}

/* Of the glue's poll functions (same type name), the first whose future
 * DWARF names exactly as the glue's T; none: the glue drops another type
 * of that name (a plain closure beside an async block, another
 * monomorphisation). Without DWARF types, the first of them. */
static void pick_target(struct hooks *h, struct found *f)
{
	bool typed = false;

	for (size_t k = f->key_lo; k < f->key_hi; k++) {
		const char *type = h->list->fns[h->keys[k].index].future_type;

		typed |= type != NULL;
		if (type && f->future_type && strcmp(type, f->future_type) == 0) {
			f->target = h->keys[k].index;
			return;
		}
	}
	f->drop = typed && f->future_type;
}

static void take_dwarf(struct hooks *h, struct found *f, struct dwarf_query *q, bool *oom)
{
	if (q->found) {
		f->source_file = q->file;
		q->file = NULL;
		f->source_line = q->line;
		f->stack_args = q->stack_args;
		if (!f->spec)
			f->future_type = drop_glue_type(q->dw_name, oom);
	}
	if (!f->spec)
		pick_target(h, f);
}

static int refine_with_dwarf(struct hooks *h)
{
	struct dwarf_query *q = calloc(h->found_count ? h->found_count : 1, sizeof(*q));
	bool has_dwarf, oom = false;
	int err = q ? 0 : -ENOMEM;

	for (size_t i = 0; !err && i < h->found_count; i++) {
		q[i].addr = h->found[i].sym.addr;
		err = dwarf_linkage_name(h->found[i].sym.name, &h->found[i].linkage, &q[i].linkage);
	}
	if (!err)
		err = dwarf_scan(&h->img, q, h->found_count, &has_dwarf);
	for (size_t i = 0; q && i < h->found_count; i++) {
		if (!err)
			take_dwarf(h, &h->found[i], &q[i], &oom);
		dwarf_query__release(&q[i]);
	}
	free(q);
	return err ? err : oom ? -ENOMEM : 0;
}

static bool file_has(const struct hooks *h, const char *name)
{
	for (size_t j = 0; j < h->found_count; j++)
		if (h->found[j].spec && strcmp(h->found[j].spec->name, name) == 0)
			return true;
	return false;
}

/* A fallback entry yields, when the function it stands in for is there,
 * to the next entry of its name, if any. */
static void drop_superseded(struct hooks *h)
{
	for (size_t i = 0; i < h->found_count; i++) {
		struct found *f = &h->found[i];
		const struct hook_spec *spec = f->spec;

		while (spec && spec->unless && file_has(h, spec->unless))
			spec = hook_next(spec);
		if (spec)
			f->spec = spec; /* same name: what file_has sees stays */
		else if (f->spec)
			f->drop = true;
	}
}

/* By address; of aliases, the .symtab one, then the first. */
static int cmp_found(const void *a, const void *b)
{
	const struct found *x = a, *y = b;

	if (x->sym.addr != y->sym.addr)
		return x->sym.addr < y->sym.addr ? -1 : 1;
	if (x->sym.dynamic != y->sym.dynamic)
		return x->sym.dynamic ? 1 : -1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* The new entry for f; its strings move into it. `target` is still an
 * index in the list before adding. */
static int make_fn(struct hooks *h, struct found *f, struct poll_fn *fn)
{
	memset(fn, 0, sizeof(*fn));
	fn->addr = f->sym.addr;
	fn->size = f->sym.size;
	fn->file_offset = elf_image__file_offset(&h->img, f->sym.addr);
	if (!(fn->mangled = strdup(f->sym.name)))
		return -ENOMEM;
	fn->demangled = f->demangled;
	fn->source_file = f->source_file;
	fn->source_line = f->source_line;
	fn->stack_args = f->stack_args;
	fn->future_type = f->future_type;
	f->demangled = f->source_file = f->future_type = NULL;
	if (f->spec) {
		fn->role = f->spec->role;
		fn->runtime = f->spec->runtime;
		fn->context = CONTEXT_TASK;
		fn->body = BODY_RUNTIME;
	} else {
		fn->role = ROLE_DROP;
		fn->target = (uint32_t)f->target;
		/* what kind of future it drops */
		fn->context = h->list->fns[f->target].context;
	}
	return 0;
}

/* Sorted, unique, not already listed: the entries to merge in. */
static int new_entries(struct hooks *h, struct poll_fn **out, size_t *count)
{
	struct poll_fn *fns = calloc(h->found_count ? h->found_count : 1, sizeof(*fns));
	int err = 0;

	*out = fns;
	*count = 0;
	if (!fns)
		return -ENOMEM;
	if (h->found_count) /* found is NULL then: qsort's is nonnull */
		qsort(h->found, h->found_count, sizeof(*h->found), cmp_found);
	for (size_t i = 0; !err && i < h->found_count; i++) {
		struct found *f = &h->found[i];

		if (f->drop || (*count && fns[*count - 1].addr == f->sym.addr))
			continue;
		err = make_fn(h, f, &fns[*count]);
		(*count)++; /* counted even when incomplete: freed with the rest */
	}
	return err;
}

/* Merge the sorted new entries into the sorted list; glue targets move
 * to the indexes of the merged list. */
static int merge(struct hooks *h, struct poll_fn *add, size_t n)
{
	struct poll_fn_list *list = h->list;
	size_t total = list->count + n, i = 0, j = 0, k = 0;
	struct poll_fn *all = calloc(total ? total : 1, sizeof(*all));
	size_t *moved = calloc(list->count ? list->count : 1, sizeof(*moved));

	if (!all || !moved) {
		free(all);
		free(moved);
		return -ENOMEM;
	}
	while (i < list->count || j < n) {
		if (j == n || (i < list->count && list->fns[i].addr < add[j].addr)) {
			moved[i] = k;
			all[k++] = list->fns[i++];
		} else {
			all[k++] = add[j++];
		}
	}
	for (k = 0; k < total; k++)
		if (all[k].role == ROLE_DROP && all[k].target < list->count)
			all[k].target = (uint32_t)moved[all[k].target];
	free(list->fns);
	free(moved);
	list->fns = all;
	list->count = total;
	return 0;
}

static int add_new_entries(struct hooks *h)
{
	struct poll_fn *add;
	size_t n;
	int err = new_entries(h, &add, &n);

	if (!err && n)
		err = merge(h, add, n); /* moves the entries on success */
	for (size_t i = 0; err && i < n; i++)
		poll_fn__release(&add[i]);
	free(add);
	return err;
}

static void hooks__cleanup(struct hooks *h)
{
	for (size_t i = 0; i < h->key_count; i++)
		free(h->keys[i].key);
	for (size_t i = 0; i < h->found_count; i++) {
		free(h->found[i].demangled);
		free(h->found[i].linkage);
		free(h->found[i].future_type);
		free(h->found[i].source_file);
	}
	free(h->keys);
	free(h->found);
	free(h->syms);
	hook_matcher__free(h->matcher);
	elf_image__close(&h->img);
}

int poll_fn_list__add_hooks(struct poll_fn_list *list, const char *path)
{
	struct hooks h = { .list = list, .original = list->count, .img = { .fd = -1 } };
	int err = elf_image__open(&h.img, path);

	/* Relocatable files are not run: nothing to follow tasks in (and their
	 * addresses are per section, which the merge by address ignores). */
	if (!err && h.img.type == ET_REL) {
		elf_image__close(&h.img);
		return 0;
	}
	if (!err)
		err = elf_image__functions(&h.img, &h.syms, &h.sym_count);
	if (!err)
		err = hook_matcher__new(&h.matcher);
	if (!err)
		err = index_poll_types(&h);
	if (!err)
		err = find_candidates(&h);
	if (!err && h.found_count)
		err = refine_with_dwarf(&h);
	if (!err) {
		drop_superseded(&h);
		err = add_new_entries(&h);
	}
	hooks__cleanup(&h);
	return err;
}
