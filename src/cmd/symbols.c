/* asynctrace symbols BINARY: list the poll functions `record` would probe,
 * as a table, as JSON, or as the kernel tracer's symbol file. BINARY may
 * also be a text symbol table (`nm -C -n` of a kernel): its names alone
 * classify it. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <elf.h>

#include "cmd/cmd.h"
#include "elf/classify.h"
#include "elf/demangle.h"
#include "elf/pollfn.h"
#include "import/import.h"
#include "probe/agent_plan.h"
#include "probe/plan.h"
#include "util/array.h"
#include "util/error.h"
#include "util/json.h"

enum symbols_format { FORMAT_TABLE, FORMAT_JSON, FORMAT_SYM };

struct symbols_opts {
	const char *binary;
	enum symbols_format format;
	char *match;       /* the --match patterns joined as (a)|(b), or NULL */
	bool all;          /* also the runtime hooks and drop glue */
};

static const char symbols_usage[] =
	"usage: asynctrace symbols BINARY [--all] [--format table|json|sym] [--match REGEX]...\n"
	"\n"
	"List the functions that poll futures in BINARY (an ELF file): runtime task\n"
	"polls, async fn and async block bodies, and hand-written Future::poll impls.\n"
	"BINARY may also be a symbol table as text (`nm -n`, `nm -C -n`, or `0xADDR NAME`\n"
	"lines): then the names alone say what a function is (every closure is listed).\n"
	"\n"
	"  -a, --all          also list what record probes besides them: the runtimes'\n"
	"                     wake, spawn and task allocation functions, and the drop\n"
	"                     glue of each listed future (role column)\n"
	"  -f, --format FMT   table (default), json, or sym: `0x<address> <name>` lines,\n"
	"                     the symbol-file format of the zCore kernel tracer\n"
	"  -m, --match REGEX  keep functions whose demangled name matches the POSIX\n"
	"                     extended REGEX; repeat to keep those matching any\n"
	"  -h, --help         show this help\n";

static const char *machine_name(uint16_t machine, uint8_t elf_class, char *buf, size_t len)
{
	switch (machine) {
	case EM_X86_64: return "x86_64";
	case EM_386: return "i386";
	case EM_AARCH64: return "aarch64";
	case EM_ARM: return "arm";
	case EM_RISCV: return elf_class == ELFCLASS32 ? "riscv32" : "riscv64";
#ifdef EM_LOONGARCH
	case EM_LOONGARCH: return "loongarch64";
#endif
	case EM_PPC64: return "ppc64";
	case EM_S390: return "s390x";
	case EM_MIPS: return "mips";
	}
	snprintf(buf, len, "EM_%u", (unsigned)machine);
	return buf;
}

static const char *result_mode_name(uint8_t mode)
{
	switch (mode) {
	case RESULT_IN_REGS: return "regs";
	case RESULT_IN_MEMORY: return "memory";
	case RESULT_FROM_STATE: return "state";
	}
	return "unknown";
}

static const char *parse_format(const char *s, enum symbols_format *f)
{
	if (strcmp(s, "table") == 0)
		*f = FORMAT_TABLE;
	else if (strcmp(s, "json") == 0)
		*f = FORMAT_JSON;
	else if (strcmp(s, "sym") == 0)
		*f = FORMAT_SYM;
	else
		return s;
	return NULL;
}

/* Returns -1 to continue, or the exit status. */
static int parse_options(int argc, char **argv, struct symbols_opts *o)
{
	static const struct option longopts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "format", required_argument, NULL, 'f' },
		{ "match", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 0; /* glibc: full re-initialisation, main may have parsed before */
	opterr = 0; /* our own messages, with the program name */
	while ((c = getopt_long(argc, argv, ":af:m:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'a':
			o->all = true;
			break;
		case 'f':
			if (parse_format(optarg, &o->format)) {
				report_error("symbols: unknown format '%s' (table, json or sym)", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'm':
			if (pattern_append(&o->match, optarg) < 0) {
				report_error("symbols: out of memory");
				return 1;
			}
			break;
		case 'h':
			fputs(symbols_usage, stdout);
			return 0;
		default:
			report_bad_option("symbols", c, argv);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		report_error("symbols: %s (see 'asynctrace symbols --help')",
			     optind >= argc ? "missing BINARY" : "more than one BINARY");
		return EXIT_USAGE;
	}
	o->binary = argv[optind];
	return -1;
}

static void print_sym(const struct poll_fn_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		printf("0x%" PRIx64 " %s\n", list->fns[i].addr, list->fns[i].demangled);
}

/* The LOCATION cell: the source, or for drop glue the poll function whose
 * future it drops (its own source is always core's ptr/mod.rs). */
static void print_location(const struct poll_fn_list *list, const struct poll_fn *fn)
{
	if (fn->role == ROLE_DROP && fn->target < list->count)
		printf("drops %s\n", list->fns[fn->target].demangled);
	else if (fn->source_file)
		printf("%s:%u%s\n", fn->source_file, fn->source_line,
		       !fn->inlined.is ? "" : fn->inlined.approximate ? "  (inlined, count approximate)" : "  (inlined)");
	else
		printf("%s\n", fn->inlined.is ? "-  (inlined)" : "-");
}

static void print_table(const struct poll_fn_list *list, bool roles)
{
	int addr_w = 7, size_w = 4, name_w = 4;

	for (size_t i = 0; i < list->count; i++) {
		const struct poll_fn *fn = &list->fns[i];
		int a = snprintf(NULL, 0, "0x%" PRIx64, fn->addr);
		int s = snprintf(NULL, 0, "%" PRIu64, fn->size);
		int n = (int)strlen(fn->demangled);

		addr_w = a > addr_w ? a : addr_w;
		size_w = s > size_w ? s : size_w;
		name_w = n > name_w ? (n < 100 ? n : 100) : name_w;
	}
	printf("%-*s  %*s  %-18s  ", addr_w, "ADDRESS", size_w, "SIZE", "CONTEXT");
	if (roles)
		printf("%-11s  ", "ROLE");
	printf("%-*s  %s\n", name_w, "NAME", "LOCATION");
	for (size_t i = 0; i < list->count; i++) {
		const struct poll_fn *fn = &list->fns[i];
		char addr[24];

		snprintf(addr, sizeof(addr), "0x%" PRIx64, fn->addr);
		printf("%-*s  %*" PRIu64 "  %-18s  ", addr_w, addr, size_w, fn->size,
		       context_class__name(fn->context));
		if (roles)
			printf("%-11s  ", function_role__name(fn->role));
		printf("%-*s  ", name_w, fn->demangled);
		print_location(list, fn);
	}
}

static void json_state(struct json_writer *w, const struct state_layout *state)
{
	json_writer__key(w, "state");
	json_writer__object_begin(w);
	json_writer__key(w, "offset");
	json_writer__uint(w, state->offset);
	json_writer__key(w, "size");
	json_writer__uint(w, state->size);
	json_writer__key(w, "awaits");
	json_writer__array_begin(w);
	for (size_t i = 0; i < state->await_count; i++) {
		json_writer__object_begin(w);
		json_writer__key(w, "state");
		json_writer__uint(w, state->awaits[i].state);
		json_writer__key(w, "line");
		json_writer__uint(w, state->awaits[i].line);
		if (state->awaits[i].file) {
			json_writer__key(w, "file");
			json_writer__string(w, state->awaits[i].file);
		}
		json_writer__object_end(w);
	}
	json_writer__array_end(w);
	json_writer__object_end(w);
}

/* role, runtime, and what only some roles and bodies have. */
static void json_role(struct json_writer *w, const struct poll_fn_list *list,
		      const struct poll_fn *fn)
{
	json_writer__key(w, "role");
	json_writer__string(w, function_role__name(fn->role));
	json_writer__key(w, "inlined");
	json_writer__bool(w, fn->inlined.is);
	json_writer__key(w, "count_approximate");
	json_writer__bool(w, fn->inlined.approximate);
	json_writer__key(w, "runtime");
	json_writer__string(w, runtime_kind__name(fn->runtime));
	if (fn->future_type) {
		json_writer__key(w, "future_type");
		json_writer__string(w, fn->future_type);
	}
	if (fn->role == ROLE_POLL && (fn->body == BODY_ASYNC_FN || fn->body == BODY_ASYNC_BLOCK))
		json_state(w, &fn->state);
	if (fn->role == ROLE_DROP && fn->target < list->count) {
		json_writer__key(w, "target");
		json_writer__uint(w, fn->target);
		json_writer__key(w, "target_name");
		json_writer__string(w, list->fns[fn->target].demangled);
	}
}

/* Whether the in-process backend patches it, or why not (record then
 * traces it with uprobes). */
static void json_inproc(struct json_writer *w, const struct agent_plan_set *plan, size_t index)
{
	json_writer__key(w, "inproc");
	json_writer__object_begin(w);
	json_writer__key(w, "patchable");
	json_writer__bool(w, plan->refusal[index] == INPROC_PATCHABLE);
	if (plan->refusal[index] != INPROC_PATCHABLE) {
		json_writer__key(w, "reason");
		json_writer__string(w, inproc_refusal__name(plan->refusal[index]));
	}
	json_writer__object_end(w);
}

/* What the uprobe backend would place: exit probes, and the exits it
 * cannot take (conditional tail calls: polls leaving there end as unwound). */
static void json_uprobe(struct json_writer *w, const struct probe_plan *probes, size_t i)
{
	json_writer__key(w, "uprobe");
	json_writer__object_begin(w);
	json_writer__key(w, "exits");
	json_writer__uint(w, probes->exits_per_function[i]);
	json_writer__key(w, "unsupported_exits");
	json_writer__uint(w, probes->unsupported_per_function[i]);
	json_writer__object_end(w);
}

static void json_function(struct json_writer *w, const struct poll_fn_list *list,
			  const struct poll_fn *fn, const struct agent_plan_set *plan,
			  const struct probe_plan *probes)
{
	json_writer__object_begin(w);
	json_writer__key(w, "address");
	json_writer__hex(w, fn->addr);
	json_writer__key(w, "size");
	json_writer__uint(w, fn->size);
	json_writer__key(w, "file_offset");
	json_writer__hex(w, fn->file_offset);
	json_writer__key(w, "mangled");
	json_writer__string(w, fn->mangled);
	json_writer__key(w, "name");
	json_writer__string(w, fn->demangled);
	json_writer__key(w, "context");
	json_writer__string(w, context_class__name(fn->context));
	json_writer__key(w, "body");
	json_writer__string(w, body_kind__name(fn->body));
	json_role(w, list, fn);
	json_writer__key(w, "self_arg");
	json_writer__uint(w, fn->self_arg);
	json_writer__key(w, "stack_args");
	json_writer__string(w, stack_args__name(fn->stack_args));
	if (plan->refusal)
		json_inproc(w, plan, (size_t)(fn - list->fns));
	if (probes->exits_per_function)
		json_uprobe(w, probes, (size_t)(fn - list->fns));
	json_writer__key(w, "result");
	json_writer__object_begin(w);
	json_writer__key(w, "mode");
	json_writer__string(w, result_mode_name(fn->result.mode));
	json_writer__key(w, "offset");
	json_writer__uint(w, fn->result.disc_offset);
	json_writer__key(w, "size");
	json_writer__uint(w, fn->result.disc_size);
	json_writer__key(w, "pending");
	json_writer__uint(w, fn->result.pending_value);
	json_writer__object_end(w);
	json_writer__key(w, "file");
	json_writer__string(w, fn->source_file);
	json_writer__key(w, "line");
	if (fn->source_line)
		json_writer__uint(w, fn->source_line);
	else
		json_writer__null(w);
	json_writer__object_end(w);
}

static int print_json(const struct poll_fn_list *list, const char *binary)
{
	struct agent_plan_set plan = { 0 };
	struct probe_plan probes = { 0 };
	struct json_writer w;
	char build_id[2 * sizeof(list->build_id) + 1], machine[24];
	int err;

	/* A file whose code cannot be read gets no "inproc" entries. */
	if (agent_plan__build(&plan, binary, list) == -ENOMEM)
		return -ENOMEM;
	/* Another architecture's file has no uprobe plan here: no "uprobe". */
	if (probe_plan__build(&probes, binary, list) == -ENOMEM) {
		agent_plan__free(&plan);
		return -ENOMEM;
	}

	for (size_t i = 0; i < list->build_id_len; i++)
		sprintf(build_id + 2 * i, "%02x", list->build_id[i]);
	build_id[2 * list->build_id_len] = '\0';
	json_writer__init(&w, stdout, 2);
	json_writer__object_begin(&w);
	json_writer__key(&w, "binary");
	json_writer__string(&w, binary);
	json_writer__key(&w, "machine");
	json_writer__string(&w, machine_name(list->machine, list->elf_class, machine, sizeof(machine)));
	json_writer__key(&w, "dwarf");
	json_writer__bool(&w, list->has_dwarf);
	json_writer__key(&w, "build_id");
	json_writer__string(&w, list->build_id_len ? build_id : NULL);
	json_writer__key(&w, "functions");
	json_writer__array_begin(&w);
	for (size_t i = 0; i < list->count; i++)
		json_function(&w, list, &list->fns[i], &plan, &probes);
	json_writer__array_end(&w);
	json_writer__object_end(&w);
	err = json_writer__finish(&w);
	agent_plan__free(&plan);
	probe_plan__free(&probes);
	return err;
}

/* A text symbol table read into a poll_fn_list: what the names say. */
struct text_table {
	struct poll_fn_list *list;
	size_t cap;
	const regex_t *match;
	uint64_t symbols; /* lines read as symbols, poll functions or not */
};

static int text_table__append(struct text_table *t, const struct import_symbol *sym, char *demangled,
			      uint8_t context, uint8_t body)
{
	struct poll_fn *fn;

	if (ARRAY_RESERVE(t->list->fns, t->cap, t->list->count + 1))
		return -ENOMEM;
	fn = &t->list->fns[t->list->count];
	memset(fn, 0, sizeof(*fn));
	fn->addr = sym->addr;
	fn->context = context;
	fn->body = body;
	fn->role = ROLE_POLL;
	if (context == CONTEXT_TASK)
		fn->runtime = runtime_kind_from_name(task_runtime_of(demangled));
	fn->demangled = demangled;
	if (!(fn->mangled = strdup(sym->name)))
		return -ENOMEM;
	t->list->count++;
	return 0;
}

static int text_table__add(const struct import_symbol *sym, void *ctx)
{
	struct text_table *t = ctx;
	uint8_t context, body;
	char *demangled;
	int err;

	t->symbols++;
	/* nm's code symbols only: no data, no absolute symbols */
	if (sym->type && !strchr("tTwW", sym->type))
		return 0;
	if (!(demangled = demangle_symbol(sym->name)))
		return -ENOMEM;
	classify_by_name(demangled, &context, &body);
	if (context == CONTEXT_FUNCTION || (t->match && regexec(t->match, demangled, 0, NULL, 0) != 0)) {
		t->list->filtered_out += context != CONTEXT_FUNCTION;
		free(demangled);
		return 0;
	}
	/* on failure the list does not own it (count did not grow) */
	if ((err = text_table__append(t, sym, demangled, context, body)) < 0)
		free(demangled);
	return err;
}

static int cmp_poll_fn_addr(const void *a, const void *b)
{
	const struct poll_fn *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Sorted by address, one function per address (the first listed). */
static void unique_by_address(struct poll_fn_list *list)
{
	size_t o = 0;

	qsort(list->fns, list->count, sizeof(*list->fns), cmp_poll_fn_addr);
	for (size_t i = 0; i < list->count; i++) {
		if (o && list->fns[o - 1].addr == list->fns[i].addr) {
			free(list->fns[i].mangled);
			free(list->fns[i].demangled);
			continue;
		}
		list->fns[o++] = list->fns[i];
	}
	list->count = o;
}

/* -ENOEXEC when no line of the file is a symbol: neither ELF nor table. */
static int load_text_table(struct poll_fn_list *list, const char *path, const regex_t *match)
{
	struct import_unknown unknown = { 0 };
	struct text_table t = { .list = list, .match = match };
	int err;

	memset(list, 0, sizeof(*list));
	err = import_read_symbol_file(path, text_table__add, &t, &unknown);
	if (!err && t.symbols == 0)
		err = -ENOEXEC;
	if (err < 0) {
		poll_fn_list__free(list);
		return err;
	}
	unique_by_address(list);
	return 0;
}

static int report_load_error(const char *binary, int err)
{
	if (err == -ENOEXEC)
		report_error("symbols: %s: not an ELF file", binary); /* nor a symbol table */
	else if (err == -ENOMEM)
		report_error("symbols: %s: out of memory", binary);
	else
		report_error("symbols: cannot open %s: %s", binary, strerror(-err));
	return 1;
}

static int report_empty(const struct poll_fn_list *list, const char *binary)
{
	if (list->filtered_out)
		report_error("symbols: %s: no poll function matches --match (%zu filtered out)",
			     binary, list->filtered_out);
	else
		report_error("symbols: %s: no poll functions found (is it a Rust async program?)",
			     binary);
	return 1;
}

static int run_symbols(const struct symbols_opts *o, const regex_t *match)
{
	struct poll_fn_list list;
	int err = poll_fn_list__load(&list, o->binary, match);
	bool text = false;

	if (err == -ENOEXEC) {
		text = true;
		err = load_text_table(&list, o->binary, match);
	}
	if (err < 0)
		return report_load_error(o->binary, err);
	if (list.count == 0) {
		err = report_empty(&list, o->binary);
		poll_fn_list__free(&list);
		return err;
	}
	if (o->all && text) {
		report_error("symbols: %s: --all needs an ELF file (a symbol table has no code to find hooks in)",
			     o->binary);
		poll_fn_list__free(&list);
		return 1;
	}
	/* Release builds: the async bodies inlined into what survives, as
	 * record probes them (not in the kernel tracer's symbol file: their
	 * addresses are mid-function). */
	if (!text && o->format != FORMAT_SYM) {
		struct uncounted_bodies uncounted;

		if ((err = poll_fn_list__add_inlined(&list, o->binary, match, true, &uncounted)) < 0) {
			poll_fn_list__free(&list);
			return report_load_error(o->binary, err);
		}
		say_uncounted("symbols", &uncounted);
		uncounted_bodies__free(&uncounted);
	}
	if (o->all && (err = poll_fn_list__add_hooks(&list, o->binary)) < 0) {
		poll_fn_list__free(&list);
		return report_load_error(o->binary, err);
	}
	if (text)
		report_warning("%s is a symbol table: classification uses names only (every closure is listed)",
			       o->binary);
	else if (!list.has_dwarf)
		report_warning("%s has no DWARF: classification uses symbol heuristics%s",
			       o->binary,
			       list.code_scanned ? "" : " (cannot tell async bodies from closures "
							"in this file: every closure is listed)");
	if (o->format == FORMAT_SYM)
		print_sym(&list);
	else if (o->format == FORMAT_JSON)
		err = print_json(&list, o->binary);
	else
		print_table(&list, o->all);
	poll_fn_list__free(&list);
	/* A full disk or closed pipe must not look like success. */
	if (fflush(stdout) != 0 || ferror(stdout) || err < 0) {
		report_error("symbols: cannot write output: %s", strerror(errno));
		return 1;
	}
	return 0;
}

int cmd_symbols(int argc, char **argv)
{
	struct symbols_opts opts = { .format = FORMAT_TABLE };
	regex_t re;
	int status, rc;

	status = parse_options(argc, argv, &opts);
	if (status >= 0) {
		free(opts.match);
		return status;
	}
	if (opts.match && (rc = regcomp(&re, opts.match, REG_EXTENDED | REG_NOSUB)) != 0) {
		char msg[256];

		regerror(rc, &re, msg, sizeof(msg));
		report_error("symbols: invalid --match pattern: %s", msg);
		free(opts.match);
		return EXIT_USAGE;
	}
	status = run_symbols(&opts, opts.match ? &re : NULL);
	if (opts.match)
		regfree(&re);
	free(opts.match);
	return status;
}
