#include "elf/pollfn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "elf/classify.h"
#include "elf/code_scan.h"
#include "elf/demangle.h"
#include "elf/dwarf_scan.h"
#include "elf/elf_image.h"
#include "elf/pollfn_private.h"
#include "elf/state_layout.h"
#include "util/array.h"

/* A symbol whose name makes it a possible poll function. */
struct candidate {
	struct elf_sym sym;
	char *demangled;
	char *linkage;   /* the name DWARF knows, when it differs from the symbol's */
	enum name_kind kind;
	size_t order;    /* position in the symbol tables: .symtab first */
	uint32_t section; /* ET_REL: addresses are per section; else 0 */
	bool keep;       /* decided to be a poll function */
	struct poll_fn fn;
};

struct loader {
	struct elf_image img;
	struct elf_sym *syms;
	size_t sym_count;
	struct candidate *cands;
	size_t cand_count;
	struct dwarf_query *queries;
	struct code_scan *scan;
	bool scan_ready;
};

/* classify_name() only accepts names containing "poll", "run" or
 * "closure". Those words survive mangling verbatim (identifiers are stored
 * as <length><text>), except v0's closures, which are an `NC` path tag.
 * Skipping other symbols avoids demangling most of a large binary. */
static bool may_be_candidate(const char *mangled)
{
	bool v0 = strncmp(mangled, "_R", 2) == 0 || strncmp(mangled, "__R", 3) == 0;

	return strstr(mangled, "poll") || strstr(mangled, "run") || strstr(mangled, "closure") ||
	       (v0 && strstr(mangled, "NC"));
}

static int collect_candidates(struct loader *ld)
{
	ld->cands = calloc(ld->sym_count ? ld->sym_count : 1, sizeof(*ld->cands));
	if (!ld->cands)
		return -ENOMEM;
	for (size_t i = 0; i < ld->sym_count; i++) {
		enum name_kind kind;
		char *dem;

		if (!may_be_candidate(ld->syms[i].name))
			continue;
		if (!(dem = demangle_symbol(ld->syms[i].name)))
			return -ENOMEM;
		kind = classify_name(dem);
		if (kind == NAME_OTHER) {
			free(dem);
			continue;
		}
		ld->cands[ld->cand_count++] = (struct candidate){
			.sym = ld->syms[i], .demangled = dem, .kind = kind, .order = i,
			.section = ld->img.type == ET_REL ? ld->syms[i].shndx : 0,
		};
	}
	return 0;
}

static int look_up_dwarf(struct loader *ld, bool *has_dwarf)
{
	ld->queries = calloc(ld->cand_count ? ld->cand_count : 1, sizeof(*ld->queries));
	if (!ld->queries)
		return -ENOMEM;
	for (size_t i = 0; i < ld->cand_count; i++) {
		ld->queries[i].addr = ld->cands[i].sym.addr;
		if (dwarf_linkage_name(ld->cands[i].sym.name, &ld->cands[i].linkage, &ld->queries[i].linkage) < 0)
			return -ENOMEM;
	}
	return dwarf_scan(&ld->img, ld->queries, ld->cand_count, has_dwarf);
}

/* The code scanner is only built when a closure lacks DWARF. */
static struct code_scan *scanner(struct loader *ld, int *err)
{
	if (!ld->scan_ready) {
		*err = code_scan__new(&ld->scan, &ld->img, ld->syms, ld->sym_count);
		ld->scan_ready = *err == 0;
	}
	return ld->scan;
}

/* What a `{{closure}}` symbol is: DWARF's name for it, else its code. */
static int closure_kind(struct loader *ld, struct candidate *c, struct dwarf_query *q,
			enum closure_kind *kind)
{
	struct code_scan *cs;
	int err = 0, calls;

	*kind = q->found ? closure_kind_from_dwarf_name(q->dw_name) : CLOSURE_UNKNOWN;
	if (*kind == CLOSURE_GENERATOR)
		*kind = closure_kind_from_name(c->demangled);
	if (*kind != CLOSURE_UNKNOWN)
		return 0;
	cs = scanner(ld, &err);
	if (err < 0)
		return err;
	/* When the code cannot tell (no decoder for this machine, no panic
	 * function to look for), keep every closure rather than drop async
	 * bodies: the warning of `symbols` says so. */
	calls = cs && code_scan__can_tell(cs) ? code_scan__calls_async_panic(cs, &c->sym) : 1;
	*kind = calls > 0 ? closure_kind_from_name(c->demangled) : CLOSURE_PLAIN;
	return 0;
}

static int classify_candidate(struct loader *ld, struct candidate *c, struct dwarf_query *q)
{
	enum closure_kind kind;
	int err;

	switch (c->kind) {
	case NAME_TASK:
		c->fn.context = CONTEXT_TASK;
		c->fn.body = BODY_RUNTIME;
		c->fn.runtime = runtime_kind_from_name(task_runtime_of(c->demangled));
		break;
	case NAME_GENFUTURE:
		c->fn.context = CONTEXT_COMPILER;
		c->fn.body = BODY_ASYNC_FN;
		break;
	case NAME_POLL_IMPL:
		c->fn.context = CONTEXT_USER;
		c->fn.body = BODY_POLL_IMPL;
		break;
	case NAME_CLOSURE:
		if ((err = closure_kind(ld, c, q, &kind)) < 0)
			return err;
		if (kind != CLOSURE_ASYNC_FN && kind != CLOSURE_ASYNC_BLOCK)
			return 0;
		c->fn.context = kind == CLOSURE_ASYNC_FN ? CONTEXT_COMPILER : CONTEXT_ANONYMOUS;
		c->fn.body = kind == CLOSURE_ASYNC_FN ? BODY_ASYNC_FN : BODY_ASYNC_BLOCK;
		break;
	default:
		return 0;
	}
	c->keep = true;
	return 0;
}

/* Fill the rest of c->fn; strings move from the query and candidate. */
static int finish_candidate(struct loader *ld, struct candidate *c, struct dwarf_query *q)
{
	struct poll_fn *fn = &c->fn;

	fn->addr = c->sym.addr;
	fn->size = c->sym.size;
	fn->file_offset = elf_image__file_offset(&ld->img, c->sym.addr);
	fn->mangled = strdup(c->sym.name);
	if (!fn->mangled)
		return -ENOMEM;
	fn->demangled = c->demangled;
	c->demangled = NULL;
	if (q->found) {
		fn->source_file = q->file;
		q->file = NULL;
		fn->source_line = q->line;
		fn->stack_args = q->stack_args;
		if (q->returns_poll)
			fn->result = q->result;
		fn->future_type = q->future_type;
		q->future_type = NULL;
		/* Only an async body's state machine is a coroutine: a
		 * hand-written future that is an enum has a variant part too. */
		if (fn->body == BODY_ASYNC_FN || fn->body == BODY_ASYNC_BLOCK) {
			fn->state = q->state;
			memset(&q->state, 0, sizeof(q->state));
		}
	}
	/* A large Poll<T> is written through a hidden pointer passed first. */
	fn->self_arg = fn->result.mode == RESULT_IN_MEMORY ? 1 : 0;
	return 0;
}

/* Sort key: address (within its section for ET_REL), then the better of
 * aliases first: described by DWARF, from .symtab, stronger name kind,
 * earlier symbol. */
static int cmp_candidates(const void *a, const void *b)
{
	const struct candidate *x = *(struct candidate *const *)a;
	const struct candidate *y = *(struct candidate *const *)b;

	if (x->section != y->section)
		return x->section < y->section ? -1 : 1;
	if (x->sym.addr != y->sym.addr)
		return x->sym.addr < y->sym.addr ? -1 : 1;
	if ((x->fn.source_file != NULL) != (y->fn.source_file != NULL))
		return x->fn.source_file ? -1 : 1;
	if (x->sym.dynamic != y->sym.dynamic)
		return x->sym.dynamic ? 1 : -1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

void poll_fn__release(struct poll_fn *fn)
{
	free(fn->mangled);
	free(fn->demangled);
	free(fn->source_file);
	free(fn->future_type);
	state_layout__release(&fn->state);
	memset(fn, 0, sizeof(*fn));
}

/* Sorted, one function per address, filtered by `match`: moved to list. */
static int build_list(struct loader *ld, struct poll_fn_list *list, const regex_t *match)
{
	struct candidate **kept = malloc((ld->cand_count + 1) * sizeof(*kept));
	size_t n = 0;

	if (!kept)
		return -ENOMEM;
	for (size_t i = 0; i < ld->cand_count; i++)
		if (ld->cands[i].keep)
			kept[n++] = &ld->cands[i];
	qsort(kept, n, sizeof(*kept), cmp_candidates);
	list->fns = calloc(n ? n : 1, sizeof(*list->fns));
	if (!list->fns) {
		free(kept);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct candidate *c = kept[i];

		if (i > 0 && c->section == kept[i - 1]->section && c->sym.addr == kept[i - 1]->sym.addr)
			continue; /* an alias; the better name came first */
		if (match && regexec(match, c->fn.demangled, 0, NULL, 0) != 0) {
			list->filtered_out++;
			continue;
		}
		list->fns[list->count++] = c->fn;
		memset(&c->fn, 0, sizeof(c->fn));
	}
	free(kept);
	return 0;
}

static int select_poll_fns(struct loader *ld)
{
	int err;

	for (size_t i = 0; i < ld->cand_count; i++) {
		struct candidate *c = &ld->cands[i];

		if ((err = classify_candidate(ld, c, &ld->queries[i])) < 0)
			return err;
		if (c->keep && (err = finish_candidate(ld, c, &ld->queries[i])) < 0)
			return err;
	}
	return 0;
}

static void loader__cleanup(struct loader *ld)
{
	for (size_t i = 0; i < ld->cand_count; i++) {
		free(ld->cands[i].demangled);
		free(ld->cands[i].linkage);
		poll_fn__release(&ld->cands[i].fn);
		if (ld->queries)
			dwarf_query__release(&ld->queries[i]);
	}
	free(ld->cands);
	free(ld->queries);
	code_scan__free(ld->scan);
	free(ld->syms);
	elf_image__close(&ld->img);
}

static int load(struct loader *ld, struct poll_fn_list *list, const char *path,
		const regex_t *match)
{
	int err = elf_image__open(&ld->img, path);

	if (err < 0)
		return err;
	list->machine = ld->img.machine;
	list->elf_class = ld->img.elf_class;
	list->build_id_len = elf_image__build_id(&ld->img, list->build_id, sizeof(list->build_id));
	if ((err = elf_image__functions(&ld->img, &ld->syms, &ld->sym_count)) < 0 ||
	    (err = collect_candidates(ld)) < 0 || (err = look_up_dwarf(ld, &list->has_dwarf)) < 0 ||
	    (err = select_poll_fns(ld)) < 0)
		return err;
	list->code_scanned = ld->scan ? code_scan__can_tell(ld->scan) : code_scan__supported(&ld->img);
	return build_list(ld, list, match);
}

int poll_fn_list__load(struct poll_fn_list *list, const char *path, const regex_t *match)
{
	struct loader ld = { .img = { .fd = -1 } };
	int err;

	memset(list, 0, sizeof(*list));
	err = load(&ld, list, path, match);
	loader__cleanup(&ld);
	if (err < 0)
		poll_fn_list__free(list);
	return err;
}

/* Binary search over the first `count` (sorted) functions. */
static bool has_address(const struct poll_fn_list *list, size_t count, uint64_t addr)
{
	size_t lo = 0, hi = count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (list->fns[mid].addr == addr)
			return true;
		if (list->fns[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int cmp_fn_addr(const void *a, const void *b)
{
	const struct poll_fn *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Sorts by address; of functions sharing one (aliases), keeps the first. */
void poll_fn_list__sort_unique(struct poll_fn_list *list)
{
	size_t kept = 1;

	qsort(list->fns, list->count, sizeof(*list->fns), cmp_fn_addr);
	for (size_t i = 1; i < list->count; i++) {
		if (list->fns[i].addr == list->fns[kept - 1].addr)
			poll_fn__release(&list->fns[i]);
		else
			list->fns[kept++] = list->fns[i];
	}
	list->count = kept;
}

static int append_function(struct poll_fn_list *list, size_t *capacity, const struct elf_image *img,
			   const struct elf_sym *sym, char *demangled)
{
	struct poll_fn *fn;

	if (ARRAY_RESERVE(list->fns, *capacity, list->count + 1))
		return -ENOMEM;
	fn = &list->fns[list->count];
	memset(fn, 0, sizeof(*fn));
	fn->addr = sym->addr;
	fn->size = sym->size;
	fn->file_offset = elf_image__file_offset(img, sym->addr);
	fn->mangled = strdup(sym->name);
	fn->demangled = demangled;
	fn->context = CONTEXT_FUNCTION;
	if (!fn->mangled)
		return -ENOMEM;
	list->count++;
	return 0;
}

/* What DWARF says of functions added on request: where they are declared,
 * and whether they may take arguments on the stack (the in-process
 * backend calls them through only when they do not). */
static int describe_functions(struct elf_image *img, struct poll_fn *fns, size_t count)
{
	struct dwarf_query *queries = calloc(count ? count : 1, sizeof(*queries));
	char **copies = calloc(count ? count : 1, sizeof(*copies));
	bool has_dwarf;
	int err = queries && copies ? 0 : -ENOMEM;

	for (size_t i = 0; !err && i < count; i++) {
		queries[i].addr = fns[i].addr;
		err = dwarf_linkage_name(fns[i].mangled, &copies[i], &queries[i].linkage);
	}
	if (!err)
		err = dwarf_scan(img, queries, count, &has_dwarf);
	for (size_t i = 0; !err && i < count; i++) {
		if (!queries[i].found)
			continue;
		fns[i].stack_args = queries[i].stack_args;
		fns[i].source_line = queries[i].line;
		fns[i].source_file = queries[i].file;
		queries[i].file = NULL;
	}
	for (size_t i = 0; queries && i < count; i++)
		dwarf_query__release(&queries[i]);
	for (size_t i = 0; copies && i < count; i++)
		free(copies[i]);
	free(queries);
	free(copies);
	return err;
}

int poll_fn_list__add_functions(struct poll_fn_list *list, const char *path, const regex_t *names)
{
	struct elf_image img = { .fd = -1 };
	struct elf_sym *syms = NULL;
	size_t sym_count = 0, original = list->count, capacity = list->count;
	int err = elf_image__open(&img, path);

	if (!err)
		err = elf_image__functions(&img, &syms, &sym_count);
	for (size_t i = 0; !err && i < sym_count; i++) {
		char *demangled;

		if (has_address(list, original, syms[i].addr))
			continue; /* already listed as a poll function */
		demangled = demangle_symbol(syms[i].name);
		if (!demangled)
			err = -ENOMEM;
		else if (regexec(names, demangled, 0, NULL, 0) != 0)
			free(demangled);
		else if ((err = append_function(list, &capacity, &img, &syms[i], demangled)) < 0)
			free(demangled);
	}
	free(syms);
	if (!err && list->count > original)
		err = describe_functions(&img, list->fns + original, list->count - original);
	elf_image__close(&img);
	if (!err && list->count > original)
		poll_fn_list__sort_unique(list);
	return err;
}

void poll_fn_list__free(struct poll_fn_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		poll_fn__release(&list->fns[i]);
	free(list->fns);
	if (list->uncounted) {
		uncounted_bodies__free(list->uncounted);
		free(list->uncounted);
	}
	memset(list, 0, sizeof(*list));
}
