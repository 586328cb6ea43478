/* kernel_exec: a kernel-style async executor in C for riscv64, whose
 * functions carry the symbols rustc gives poll functions (legacy
 * `_ZN...17h<hash>E` and v0 `_R...` manglings), printing the probe lines
 * of zCore's eBPF tracer (kprobe/kretprobe at every entry and exit) on a
 * serial console. Test data for `symbols` and `import zcore` on a riscv64
 * ELF, with counts known by construction:
 *
 *   kernel_exec [--rounds R] [--out FILE] [--ground-truth]
 *
 * Each round polls task A once, task B twice, task C once (RawTask::run
 * each time), in that order; the call tree of one poll of each is in
 * task_a/task_b/task_c below. Every traced function prints an entry line
 * before and an exit line after its body: `time-threadID-entry/exit-addr-
 * depth: TS\0 PID entry ADDR DEPTH\r\n\0` (TS a counter in ns, PID fixed,
 * ADDR the function's own address in decimal, DEPTH its nesting depth, 0
 * for the task poll), as bpf_trace_printk leaves them on zCore's console
 * (the NUL after each record starts the next line). Before the rounds it
 * prints, per function, the attach chatter of zCore's tracer including
 * `trace point symbol resolved, symbol:NAME addr: HEX`.
 *
 * Freestanding (no libc: Debian's riscv64 cross gcc comes without
 * libc6-dev-riscv64-cross, and a kernel has none either): its own _start
 * and Linux system calls, static and non-PIE, so ADDR is the address nm
 * prints; built without -g, so only the symbol names say what a function
 * is, as with a kernel's nm list.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PID 1073u
#define TS_START 12945196400ull
#define TS_STEP 2300u /* ns per probe line, a made-up clock */

struct console {
	int fd;
	uint64_t ts;
	uint64_t lines;
	unsigned depth;
	void (*task_root)(struct console *c); /* the task task_run polls */
	size_t len;
	char buf[1 << 16];
};

/* Every traced function: the console it prints to. */
typedef void traced_fn(struct console *c);

/* Linux riscv64 system calls: number in a7, arguments in a0..a3. */
static long sys4(long nr, long a, long b, long c, long d)
{
	register long a0 __asm__("a0") = a;
	register long a1 __asm__("a1") = b;
	register long a2 __asm__("a2") = c;
	register long a3 __asm__("a3") = d;
	register long a7 __asm__("a7") = nr;

	__asm__ volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a3), "r"(a7) : "memory");
	return a0;
}

static long sys3(long nr, long a, long b, long c)
{
	return sys4(nr, a, b, c, 0);
}

#define SYS_openat 56
#define SYS_close 57
#define SYS_write 64
#define SYS_exit_group 94
#define AT_FDCWD (-100)
#define O_WRONLY_CREAT_TRUNC (01 | 0100 | 01000)

static __attribute__((noreturn)) void sys_exit(int status)
{
	for (;;)
		sys3(SYS_exit_group, status, 0, 0);
}

/* gcc may call these even when freestanding. */
void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	while (n--)
		*d++ = *s++;
	return dst;
}

void *memset(void *dst, int v, size_t n)
{
	unsigned char *d = dst;

	while (n--)
		*d++ = (unsigned char)v;
	return dst;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		long w = sys3(SYS_write, fd, (long)p, (long)n);

		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int console_flush(struct console *c)
{
	if (c->len && write_all(c->fd, c->buf, c->len) < 0)
		return -1;
	c->len = 0;
	return 0;
}

static void fail(const char *what)
{
	write_all(2, "kernel_exec: ", 13);
	write_all(2, what, strlen(what));
	write_all(2, "\n", 1);
	sys_exit(1);
}

static void put_bytes(struct console *c, const char *s, size_t n)
{
	if (c->len + n > sizeof(c->buf) && console_flush(c) < 0)
		fail("cannot write the log");
	memcpy(c->buf + c->len, s, n);
	c->len += n;
}

static void put_str(struct console *c, const char *s)
{
	put_bytes(c, s, strlen(s));
}

static void put_hex(struct console *c, uint64_t v)
{
	char digits[16];
	size_t n = 0;

	do {
		digits[sizeof(digits) - ++n] = "0123456789abcdef"[v % 16];
		v /= 16;
	} while (v);
	put_bytes(c, digits + sizeof(digits) - n, n);
}

static void put_u64(struct console *c, uint64_t v)
{
	char digits[20];
	size_t n = 0;

	do {
		digits[sizeof(digits) - ++n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put_bytes(c, digits + sizeof(digits) - n, n);
}

/* One bpf_trace_printk record, as the zCore eBPF program prints it. */
static void probe_line(struct console *c, traced_fn *fn, const char *kind)
{
	put_str(c, "time-threadID-entry/exit-addr-depth: ");
	put_u64(c, c->ts);
	put_bytes(c, "\0 ", 2);
	put_u64(c, PID);
	put_str(c, " ");
	put_str(c, kind);
	put_str(c, " ");
	put_u64(c, (uint64_t)(uintptr_t)fn);
	put_str(c, " ");
	put_u64(c, c->depth);
	put_bytes(c, "\r\n\0", 3);
	c->ts += TS_STEP;
	c->lines++;
}

static void enter(struct console *c, traced_fn *fn)
{
	probe_line(c, fn, "entry");
	c->depth++;
}

static void leave(struct console *c, traced_fn *fn)
{
	c->depth--;
	probe_line(c, fn, "exit");
}

/* The functions, declared with their Rust symbols. noinline/noclone: each
 * must stay one function at its own address. */
#define TRACED static __attribute__((noinline, noclone)) void

TRACED task_run(struct console *c) __asm__("_ZN10async_task3raw24RawTask$LT$F$C$T$C$S$GT$3run17h24c3450c2b403100E");
TRACED genfuture_shell(struct console *c) __asm__("_ZN143_$LT$core..future..from_generator..GenFuture$LT$kernel_exec..shell..$u7b$$u7b$closure$u7d$$u7d$$GT$$u20$as$u20$core..future..future..Future$GT$4poll17h960d8a684efc0de0E");
TRACED shell_body(struct console *c) __asm__("_ZN11kernel_exec5shell28_$u7b$$u7b$closure$u7d$$u7d$17h44111a395c8084daE");
TRACED read_at_body(struct console *c) __asm__("_RNCNvNtCs4fqI2P2rA04_11kernel_exec2fs7read_at0");
TRACED sleep_poll(struct console *c) __asm__("_RNvXNtCs4fqI2P2rA04_11kernel_exec5timerNtNtCs4fqI2P2rA04_11kernel_exec5timer5SleepNtNtNtCs5Zc5ps2rJOH_4core6future6future6Future4poll");
TRACED checksum(struct console *c) __asm__("_ZN11kernel_exec2fs8checksum17h8bbf13aa390d93b4E");
TRACED handle_body(struct console *c) __asm__("_ZN11kernel_exec7syscall6handle28_$u7b$$u7b$closure$u7d$$u7d$17h9e005a5dd3b36f82E");
TRACED handle_block(struct console *c) __asm__("_ZN11kernel_exec7syscall6handle28_$u7b$$u7b$closure$u7d$$u7d$28_$u7b$$u7b$closure$u7d$$u7d$17h687126f6d6d7bc00E");
TRACED yield_poll(struct console *c) __asm__("_ZN67_$LT$kernel_exec..Yield$u20$as$u20$core..future..future..Future$GT$4poll17h5d1f86d55590ad91E");
TRACED drop_yield(struct console *c) __asm__("_ZN4core3ptr39drop_in_place$LT$kernel_exec..Yield$GT$17hae9e2e9d380c0c0dE");
TRACED timer_body(struct console *c) __asm__("_RNCNvNtCs4fqI2P2rA04_11kernel_exec5timer3run0");
TRACED timer_block(struct console *c) __asm__("_RNCNCNvNtCs4fqI2P2rA04_11kernel_exec5timer3run0s_0");
TRACED timer_future_poll(struct console *c) __asm__("_RNvXNtCs4fqI2P2rA04_11kernel_exec5timerNtNtCs4fqI2P2rA04_11kernel_exec5timer11TimerFutureNtNtNtCs5Zc5ps2rJOH_4core6future6future6Future4poll");
TRACED tick(struct console *c) __asm__("_RNvNtCs4fqI2P2rA04_11kernel_exec5timer4tick");

/* What each function is, its name as `nm -C` prints it, and how often one
 * round calls it (the call tree below gives these counts). */
static const struct traced {
	traced_fn *fn;
	const char *name;
	const char *kind; /* task, genfuture, poll-impl, async-fn, async-block, function */
	unsigned per_round;
} traced[] = {
	{ task_run, "async_task::raw::RawTask<F,T,S>::run", "task", 4 },
	{ genfuture_shell, "<core::future::from_generator::GenFuture<kernel_exec::shell::{{closure}}> as core::future::future::Future>::poll", "genfuture", 1 },
	{ shell_body, "kernel_exec::shell::{{closure}}", "async-fn", 1 },
	{ read_at_body, "kernel_exec::fs::read_at::{closure#0}", "async-fn", 2 },
	{ sleep_poll, "<kernel_exec::timer::Sleep as core::future::future::Future>::poll", "poll-impl", 2 },
	{ checksum, "kernel_exec::fs::checksum", "function", 1 },
	{ handle_body, "kernel_exec::syscall::handle::{{closure}}", "async-fn", 2 },
	{ handle_block, "kernel_exec::syscall::handle::{{closure}}::{{closure}}", "async-block", 2 },
	{ yield_poll, "<kernel_exec::Yield as core::future::future::Future>::poll", "poll-impl", 2 },
	{ drop_yield, "core::ptr::drop_in_place<kernel_exec::Yield>", "function", 2 },
	{ timer_body, "kernel_exec::timer::run::{closure#0}", "async-fn", 1 },
	{ timer_block, "kernel_exec::timer::run::{closure#0}::{closure#1}", "async-block", 1 },
	{ timer_future_poll, "<kernel_exec::timer::TimerFuture as core::future::future::Future>::poll", "poll-impl", 1 },
	{ tick, "kernel_exec::timer::tick", "function", 1 },
};
#define TRACED_COUNT (sizeof(traced) / sizeof(traced[0]))

static unsigned long lines_per_round_half(void)
{
	unsigned long n = 0;

	for (size_t i = 0; i < TRACED_COUNT; i++)
		n += traced[i].per_round;
	return n;
}

/* A leaf's work: nothing observable, but not nothing to the compiler. */
static volatile uint64_t sink;

TRACED sleep_poll(struct console *c) { enter(c, sleep_poll); sink += c->ts; leave(c, sleep_poll); }
TRACED checksum(struct console *c) { enter(c, checksum); sink ^= c->lines; leave(c, checksum); }
TRACED yield_poll(struct console *c) { enter(c, yield_poll); sink++; leave(c, yield_poll); }
TRACED drop_yield(struct console *c) { enter(c, drop_yield); sink--; leave(c, drop_yield); }
TRACED tick(struct console *c) { enter(c, tick); sink += 3; leave(c, tick); }

TRACED read_at_body(struct console *c)
{
	enter(c, read_at_body);
	sleep_poll(c);
	leave(c, read_at_body);
}

/* depth 2 of task A: two reads, then a plain function */
TRACED shell_body(struct console *c)
{
	enter(c, shell_body);
	read_at_body(c);
	read_at_body(c);
	checksum(c);
	leave(c, shell_body);
}

TRACED genfuture_shell(struct console *c)
{
	enter(c, genfuture_shell);
	shell_body(c);
	leave(c, genfuture_shell);
}

TRACED handle_block(struct console *c)
{
	enter(c, handle_block);
	yield_poll(c);
	leave(c, handle_block);
}

/* the async block's future is dropped after each poll of it */
TRACED handle_body(struct console *c)
{
	enter(c, handle_body);
	handle_block(c);
	drop_yield(c);
	leave(c, handle_body);
}

TRACED timer_future_poll(struct console *c)
{
	enter(c, timer_future_poll);
	tick(c);
	leave(c, timer_future_poll);
}

TRACED timer_block(struct console *c)
{
	enter(c, timer_block);
	timer_future_poll(c);
	leave(c, timer_block);
}

TRACED timer_body(struct console *c)
{
	enter(c, timer_body);
	timer_block(c);
	leave(c, timer_body);
}

/* The task poll: polls the root future of the task the executor picked
 * (c->task_root). */
TRACED task_run(struct console *c)
{
	enter(c, task_run);
	c->task_root(c);
	leave(c, task_run);
}

/* One round of the executor's ready queue: A, B, B, C. */
static void executor_round(struct console *c)
{
	static traced_fn *const queue[] = { genfuture_shell, handle_body, handle_body, timer_body };

	for (size_t i = 0; i < sizeof(queue) / sizeof(queue[0]); i++) {
		c->task_root = queue[i];
		task_run(c);
	}
}

/* A kernel log line's `[ 12.345678 WARN  0 0:0 MODULE] ` head. */
static void put_log_head(struct console *c, uint64_t us)
{
	char frac[6];

	put_str(c, "[ ");
	put_u64(c, us / 1000000);
	for (int i = 5; i >= 0; i--, us /= 10)
		frac[i] = (char)('0' + us % 10);
	put_bytes(c, ".", 1);
	put_bytes(c, frac, 6);
	put_str(c, " WARN  0 0:0 zircon_object::ebpf::tracepoints] ");
}

/* What zCore's tracer prints while attaching the probes of one function. */
static void attach_chatter(struct console *c, const struct traced *t, unsigned n)
{
	uint64_t us = 12438350 + 10000ull * n;

	put_str(c, "target: ");
	put_str(c, t->name);
	put_str(c, " len: ");
	put_u64(c, strlen(t->name));
	put_str(c, "\r\nbpf prog attach size: 32\r\n");
	put_log_head(c, us);
	put_str(c, "trace point symbol resolved, symbol:");
	put_str(c, t->name);
	put_str(c, " addr: ");
	put_hex(c, (uint64_t)(uintptr_t)t->fn);
	put_str(c, "\r\n");
	put_log_head(c, us + 1000);
	put_str(c, "OK\r\nattach kretprobe@entry: 0\r\nattach kretprobe@exit: 0\r\n");
}

/* One JSON object with the counts the rounds will make, on stdout. */
static void print_ground_truth(struct console *c, uint64_t rounds)
{
	put_str(c, "{\"program\":\"kernel_exec\",\"rounds\":");
	put_u64(c, rounds);
	put_str(c, ",\"pid\":");
	put_u64(c, PID);
	put_str(c, ",\"functions\":{");
	for (size_t i = 0; i < TRACED_COUNT; i++) {
		put_str(c, i ? ",\"" : "\"");
		put_str(c, traced[i].name);
		put_str(c, "\":{\"address\":\"0x");
		put_hex(c, (uint64_t)(uintptr_t)traced[i].fn);
		put_str(c, "\",\"kind\":\"");
		put_str(c, traced[i].kind);
		put_str(c, "\",\"calls\":");
		put_u64(c, rounds * traced[i].per_round);
		put_str(c, "}");
	}
	put_str(c, "},\"probe_lines\":");
	put_u64(c, 2 * rounds * lines_per_round_half());
	put_str(c, ",\"exit_status\":0}\n");
}

static int parse_u64(const char *s, uint64_t *v)
{
	*v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || *v > (UINT64_MAX - 9) / 10)
			return -1;
		*v = *v * 10 + (uint64_t)(*s - '0');
	}
	return 0;
}

static struct console con;

static int run(int argc, char **argv)
{
	uint64_t rounds = 3;
	const char *out = NULL;
	bool truth = false;

	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--rounds") && i + 1 < argc) {
			if (parse_u64(argv[++i], &rounds) < 0)
				fail("--rounds takes a number");
		} else if (streq(argv[i], "--out") && i + 1 < argc) {
			out = argv[++i];
		} else if (streq(argv[i], "--ground-truth")) {
			truth = true;
		} else {
			fail("usage: kernel_exec [--rounds R (3)] [--out FILE] [--ground-truth]");
		}
	}
	con.fd = 1;
	con.ts = TS_START;
	if (truth) {
		print_ground_truth(&con, rounds);
		return console_flush(&con) < 0 ? 1 : 0;
	}
	if (out && (con.fd = (int)sys4(SYS_openat, AT_FDCWD, (long)out, O_WRONLY_CREAT_TRUNC, 0644)) < 0)
		fail("cannot create the --out file");
	for (size_t i = 0; i < TRACED_COUNT; i++)
		attach_chatter(&con, &traced[i], (unsigned)i);
	for (uint64_t r = 0; r < rounds; r++)
		executor_round(&con);
	put_str(&con, "QEMU: Terminated\r\n");
	if (console_flush(&con) < 0 || (out && sys3(SYS_close, con.fd, 0, 0) < 0))
		fail("cannot write the log");
	return 0;
}

/* The kernel hands over argc at sp, argv after it. */
__attribute__((noreturn, used)) static void start_c(long *sp)
{
	sys_exit(run((int)sp[0], (char **)(sp + 1)));
}

/* gp first: the linker relaxes accesses to small data through it. */
__asm__(".globl _start\n"
	"_start:\n"
	".option push\n.option norelax\n"
	"\tla gp, __global_pointer$\n"
	".option pop\n"
	"\tmv a0, sp\n"
	"\tcall start_c\n");
