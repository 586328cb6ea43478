/* asynctrace import zcore [--sym FILE] [--switch-fn NAME] LOG... -o TRACE:
 * zCore kernel probe logs (eBPF serial console, its chatty first form,
 * dump.py's dumped_data.txt, GDB breakpoint logs) as a trace. */
#include <elf.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cmd.h"
#include "cmd/import.h"
#include "import/zcore.h"
#include "util/error.h"

/* Threads made by --switch-fn are numbered from here: far above pids. */
#define SWITCH_FIRST_TID 0x40000000u

struct zcore_opts {
	const char *out;
	const char **syms;
	size_t sym_count;
	const char *switch_fn;
	uint16_t machine;
	char **logs;
	int log_count;
};

static const char zcore_usage[] =
	"usage: asynctrace import zcore [--sym FILE]... [--switch-fn NAME] [--machine ARCH] LOG... -o TRACE\n"
	"\n"
	"Read zCore kernel probe logs: the serial console of an eBPF-probed kernel\n"
	"(`time-threadID-entry/exit-addr-depth:` lines; the symbols come from its\n"
	"`trace point symbol resolved` lines), the earlier chatty form (`[entry]\n"
	"NAME(ADDR) depth: N`, the address on the next `addr =` line), dump.py's\n"
	"dumped_data.txt, and GDB breakpoint logs (seconds timestamps; exits are\n"
	"matched by name and doubled exits dropped). Other console lines are\n"
	"skipped; probe lines that do not parse are counted with their numbers.\n"
	"\n"
	"  -s, --sym FILE        symbol file (`0xADDR NAME` or `nm -n`/`nm -C -n`\n"
	"                        output): names addresses, over the log's own; also\n"
	"                        repairs names the GDB log cut; repeatable\n"
	"      --switch-fn NAME  each call of a function whose name contains NAME\n"
	"                        (with all it calls) becomes a thread of its own:\n"
	"                        a kernel thread's run between switches\n"
	"      --machine ARCH    riscv64 (default) or x86_64: what the kernel ran on\n"
	"  -o, --output TRACE    the trace to write (required)\n"
	"  -h, --help            show this help\n";

static int parse_machine(const char *s, uint16_t *machine)
{
	if (!strcmp(s, "riscv64") || !strcmp(s, "riscv"))
		*machine = EM_RISCV;
	else if (!strcmp(s, "x86_64") || !strcmp(s, "x86-64"))
		*machine = EM_X86_64;
	else
		return -EINVAL;
	return 0;
}

static int parse_args(int argc, char **argv, struct zcore_opts *o)
{
	static const struct option longopts[] = {
		{ "sym", required_argument, NULL, 's' },
		{ "switch-fn", required_argument, NULL, 'S' },
		{ "machine", required_argument, NULL, 'm' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct zcore_opts){ .machine = EM_RISCV };
	o->syms = calloc((size_t)argc, sizeof(*o->syms));
	if (!o->syms)
		return 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":s:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o->syms[o->sym_count++] = optarg; break;
		case 'S': o->switch_fn = optarg; break;
		case 'o': o->out = optarg; break;
		case 'm':
			if (parse_machine(optarg, &o->machine)) {
				report_error("import zcore: unknown machine '%s' (riscv64 or x86_64)", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h': fputs(zcore_usage, stdout); return -1;
		default: report_bad_option("import zcore", c, argv); return EXIT_USAGE;
		}
	}
	o->logs = argv + optind;
	o->log_count = argc - optind;
	if (!o->log_count || !o->out) {
		report_error("import zcore: %s (see 'asynctrace import zcore --help')",
			     !o->log_count ? "no LOG given" : "no output given (-o TRACE)");
		return EXIT_USAGE;
	}
	if (o->switch_fn && !*o->switch_fn) {
		report_error("import zcore: --switch-fn needs a name");
		return EXIT_USAGE;
	}
	return 0;
}

static int add_file_symbol(const struct import_symbol *sym, void *ctx)
{
	/* nm lists data too: only code names a probe address */
	if (sym->type && !strchr("TtWw", sym->type))
		return 0;
	return zcore_log__add_symbol_copy(ctx, sym->addr, sym->name);
}

/* Each log's unknown lines, said once the import is sure to go on (a
 * failure is one line). */
static int read_inputs(const struct zcore_opts *o, struct zcore_log *log, struct import_unknown *unknown)
{
	for (int i = 0; i < o->log_count; i++) {
		int err = zcore_log__read_file(log, o->logs[i]);

		if (err) {
			report_error("import zcore: %s: %s", o->logs[i],
				     err == -EINVAL ? "not a regular file" : strerror(-err));
			return 1;
		}
		unknown[i] = log->unknown;
		log->unknown = (struct import_unknown){ 0 };
	}
	if (!log->record_count) {
		uint64_t bad = 0;

		for (int i = 0; i < o->log_count; i++)
			bad += unknown[i].count;
		if (bad)
			report_error("import zcore: %s: no probe records found (%" PRIu64 " probe-like line%s "
				     "not understood, the first at line %" PRIu64 ")", o->logs[0], bad,
				     bad == 1 ? "" : "s", unknown[0].count ? unknown[0].lines[0] : 0);
		else
			report_error("import zcore: %s: no probe records found", o->logs[0]);
		return 1;
	}
	for (int i = 0; i < o->log_count; i++)
		import_say_unknown("zcore", &unknown[i], o->logs[i]);
	for (size_t i = 0; i < o->sym_count; i++) {
		struct import_unknown unknown = { 0 };
		int err = import_read_symbol_file(o->syms[i], add_file_symbol, log, &unknown);

		if (err) {
			report_error("import zcore: symbol file %s: %s", o->syms[i], strerror(-err));
			return 1;
		}
		import_say_unknown("zcore", &unknown, o->syms[i]);
	}
	return 0;
}

static int split_threads(const struct zcore_opts *o, struct zcore_log *log)
{
	size_t calls;

	if (!o->switch_fn)
		return 0;
	if (zcore_log__split_at_calls(log, o->switch_fn, SWITCH_FIRST_TID, &calls)) {
		report_error("import zcore: out of memory");
		return 1;
	}
	if (!calls)
		report_warning("import zcore: --switch-fn %s: no function of that name was called", o->switch_fn);
	else
		report_info("import zcore: %zu calls of %s, each a thread of its own", calls, o->switch_fn);
	return 0;
}

static int name_threads(struct import_builder *b, const struct zcore_log *log)
{
	for (size_t i = 0; i < log->record_count; i++) {
		uint32_t tid = log->records[i].tid;
		char name[24]; /* the builder keeps 15 characters */
		int err;

		if (tid == ZCORE_EXECUTOR_TID)
			snprintf(name, sizeof(name), "executor");
		else if (tid >= SWITCH_FIRST_TID)
			snprintf(name, sizeof(name), "switch #%u", tid - SWITCH_FIRST_TID + 1);
		else
			snprintf(name, sizeof(name), "pid %u", tid);
		if ((err = import_builder__name_thread(b, tid, name)))
			return err;
	}
	return 0;
}

static void say_what_was_read(const struct zcore_log *log)
{
	report_info("import zcore: %" PRIu64 " eBPF probe lines, %" PRIu64 " [entry]/[exit] lines%s, %" PRIu64
		    " resolved symbols; %" PRIu64 " other console lines skipped",
		    log->ebpf_lines, log->bracket_lines, zcore_log__is_gdb(log) ? " (GDB: seconds)" : "",
		    log->resolved_lines, log->other_lines);
	if (log->repaired_names)
		report_info("import zcore: %" PRIu64 " records had names the log cut, repaired from the symbols",
			    log->repaired_names);
}

static int import_log(const struct zcore_opts *o, struct zcore_log *log, const char *source)
{
	bool gdb = zcore_log__is_gdb(log);
	struct import_options io = {
		.capture = gdb ? "import-zcore-gdb" : "import-zcore",
		.source = source,
		.machine = o->machine,
		/* bpf_ktime_get_ns() is the kernel's monotonic clock; GDB printed
		 * the host's wall clock */
		.clock = gdb ? CLOCK_REALTIME : CLOCK_MONOTONIC,
		/* GDB's exit pc is the return site, not the function */
		.match_by_name = gdb,
		.drop_doubled_exits = gdb,
		.allow_late_exits = gdb,
	};
	struct import_unknown none = { 0 };
	struct import_builder *b;
	int err, status;

	if ((err = import_builder__new(&b, &io)) || (err = name_threads(b, log)) ||
	    (err = zcore_log__feed(log, b))) {
		if (b)
			import_builder__free(b);
		report_error("import zcore: %s", strerror(-err));
		return 1;
	}
	say_what_was_read(log);
	status = import_finish("zcore", b, o->out, &none, source);
	import_builder__free(b);
	return status;
}

static char *joined(char **items, int count)
{
	size_t len = 1;
	char *s;

	for (int i = 0; i < count; i++)
		len += strlen(items[i]) + 1;
	if (!(s = calloc(1, len)))
		return NULL;
	for (int i = 0; i < count; i++) {
		if (i)
			strcat(s, " ");
		strcat(s, items[i]);
	}
	return s;
}

int cmd_import_zcore(int argc, char **argv)
{
	struct zcore_opts o;
	struct zcore_log log;
	struct import_unknown *unknown = NULL;
	char *source = NULL;
	int status = parse_args(argc, argv, &o);

	if (status) {
		free(o.syms);
		return status < 0 ? 0 : status;
	}
	zcore_log__init(&log);
	if (!(unknown = calloc((size_t)o.log_count, sizeof(*unknown))))
		status = 1, report_error("import zcore: out of memory");
	if (!status)
		status = read_inputs(&o, &log, unknown);
	if (!status && zcore_log__resolve(&log))
		status = 1, report_error("import zcore: out of memory");
	if (!status)
		status = split_threads(&o, &log);
	if (!status && !(source = joined(o.logs, o.log_count)))
		status = 1, report_error("import zcore: out of memory");
	if (!status)
		status = import_log(&o, &log, source);
	free(source);
	free(unknown);
	zcore_log__free(&log);
	free(o.syms);
	return status;
}
