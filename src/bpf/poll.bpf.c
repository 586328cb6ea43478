// SPDX-License-Identifier: GPL-2.0
/* Entry and exit probes of poll functions. One program serves every probe
 * site: its cookie says which function and which kind of site it is. Exits
 * are uprobes on the function's `ret`/tail-call instructions, never
 * uretprobes: rewriting return addresses aborts a panicking Rust program. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "bpf/poll.h"

/* The second return register (upper half of a two-register result). */
#if defined(__TARGET_ARCH_x86)
#define PT_REGS_RC2(x) (__PT_REGS_CAST(x)->dx)
#elif defined(__TARGET_ARCH_arm64)
#define PT_REGS_RC2(x) (__PT_REGS_CAST(x)->regs[1])
#elif defined(__TARGET_ARCH_riscv)
#define PT_REGS_RC2(x) (__PT_REGS_CAST(x)->a1)
#endif

char LICENSE[] SEC("license") = "GPL";

/* Wake the reader only once this much is waiting: a wakeup per record
 * costs the traced thread more than the probe itself (user space also
 * drains on a timer). Set before load. */
const volatile __u64 targ_wakeup_bytes = 1 << 20;

/* Set by user space before attaching (after fork, so .bss not .rodata):
 * the traced process, and its pid namespace when we run inside one. */
__u32 targ_tgid = 0;
__u64 targ_pidns_dev = 0;
__u64 targ_pidns_ino = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* resized by user space */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* resized by user space: one per function */
	__type(key, __u32);
	__type(value, struct func_config);
} func_config SEC(".maps");

/* The future being polled, by the stack pointer of its poll's entry (which
 * its exits share): exits have no argument registers left to read it from. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} future_by_sp SEC(".maps");

/* Threads already named in the ring buffer. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} named_threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost_events SEC(".maps");

static __always_inline __u64 current_pid_tgid(void)
{
	struct bpf_pidns_info ns = {};

	if (!targ_pidns_ino)
		return bpf_get_current_pid_tgid();
	if (bpf_get_ns_current_pid_tgid(targ_pidns_dev, targ_pidns_ino, &ns, sizeof(ns)))
		return 0;
	return (__u64)ns.tgid << 32 | ns.pid;
}

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(&lost_events, &zero);

	if (lost)
		*lost += 1;
}

static __always_inline void fill_result(struct probe_event *e, struct pt_regs *ctx, __u64 cookie)
{
	__u64 addr;

	e->arg0 = PT_REGS_RC(ctx);
	if (!(cookie & COOKIE_READ_MEMORY)) {
		e->arg1 = PT_REGS_RC2(ctx);
		return;
	}
	addr = e->arg0 + (cookie >> COOKIE_OFFSET_SHIFT);
	e->flags |= PROBE_FLAG_ARG1_FROM_MEMORY;
	if (bpf_probe_read_user(&e->arg1, sizeof(e->arg1), (void *)addr)) {
		e->arg1 = 0;
		e->flags |= PROBE_FLAG_READ_FAILED;
	}
}

/* Where the future stopped: its discriminant names the `.await`. */
static __always_inline void read_state(struct probe_event *e)
{
	__u32 func_id = e->func_id;
	struct func_config *config = bpf_map_lookup_elem(&func_config, &func_id);
	__u64 *future = bpf_map_lookup_elem(&future_by_sp, &e->sp);
	__u64 state = 0;

	if (!future)
		return;
	if (config && config->state_size && config->state_size <= sizeof(state) &&
	    !bpf_probe_read_user(&state, config->state_size & 7, (void *)(*future + config->state_offset))) {
		e->aux = state;
		e->flags |= PROBE_FLAG_STATE;
	}
	bpf_map_delete_elem(&future_by_sp, &e->sp);
}

static __always_inline void fill_entry(struct probe_event *e, struct pt_regs *ctx, __u64 cookie)
{
	__u64 future;

	e->arg0 = PT_REGS_PARM1(ctx);
	e->arg1 = PT_REGS_PARM2(ctx);
	/* At the first instruction the stack pointer holds the return address. */
	if (!bpf_probe_read_user(&e->aux, sizeof(e->aux), (void *)e->sp))
		e->flags |= PROBE_FLAG_RETURN_ADDRESS;
	if (cookie & COOKIE_TRACK_STATE) {
		future = cookie & COOKIE_SELF_ARG1 ? e->arg1 : e->arg0;
		bpf_map_update_elem(&future_by_sp, &e->sp, &future, BPF_ANY);
	}
}

/* General register `reg` (x86 numbering: 0 rax, 1 rcx, 2 rdx, 3 rbx,
 * 4 rsp, 5 rbp, 6 rsi, 7 rdi, 8..15 r8..r15). Read through
 * bpf_probe_read_kernel: the verifier refuses a context load at an offset
 * it cannot fold into the instruction. */
static __always_inline __u64 x86_register(struct pt_regs *ctx, __u64 reg)
{
	__u64 value = 0;
#if defined(__TARGET_ARCH_x86)
	__u32 offset;

	switch (reg & 15) {
	case 0: offset = __builtin_offsetof(struct pt_regs, ax); break;
	case 1: offset = __builtin_offsetof(struct pt_regs, cx); break;
	case 2: offset = __builtin_offsetof(struct pt_regs, dx); break;
	case 3: offset = __builtin_offsetof(struct pt_regs, bx); break;
	case 4: offset = __builtin_offsetof(struct pt_regs, sp); break;
	case 5: offset = __builtin_offsetof(struct pt_regs, bp); break;
	case 6: offset = __builtin_offsetof(struct pt_regs, si); break;
	case 7: offset = __builtin_offsetof(struct pt_regs, di); break;
	case 8: offset = __builtin_offsetof(struct pt_regs, r8); break;
	case 9: offset = __builtin_offsetof(struct pt_regs, r9); break;
	case 10: offset = __builtin_offsetof(struct pt_regs, r10); break;
	case 11: offset = __builtin_offsetof(struct pt_regs, r11); break;
	case 12: offset = __builtin_offsetof(struct pt_regs, r12); break;
	case 13: offset = __builtin_offsetof(struct pt_regs, r13); break;
	case 14: offset = __builtin_offsetof(struct pt_regs, r14); break;
	default: offset = __builtin_offsetof(struct pt_regs, r15); break;
	}
	if (bpf_probe_read_kernel(&value, sizeof(value), (char *)ctx + offset))
		value = 0;
#endif
	return value;
}

/* An inlined body's dispatch: mid-function, so no arguments or return
 * address to read; the future is in a register, and the stack pointer is
 * moved into the host's frame (above its callees', below its entry) so
 * that nested bodies nest and each poll ends with the host's. */
static __always_inline void fill_inlined(struct probe_event *e, struct pt_regs *ctx, __u64 cookie)
{
	e->sp += 7 - ((cookie >> COOKIE_LEVEL_SHIFT) & COOKIE_LEVEL_MASK);
	e->arg0 = x86_register(ctx, (cookie >> COOKIE_REG_SHIFT) & COOKIE_REG_MASK);
	e->arg1 = 0;
	if (cookie >> COOKIE_OFFSET_SHIFT)
		e->flags |= PROBE_FLAG_RESUMED;
}

/* An inlined body's exit where its state store was seen: the state it
 * stored (from the cookie) is its result, as a poll function's state at
 * its exit is (RESULT_FROM_STATE). */
static __always_inline void fill_inlined_exit(struct probe_event *e, __u64 cookie)
{
	e->sp += 7 - ((cookie >> COOKIE_LEVEL_SHIFT) & COOKIE_LEVEL_MASK);
	e->arg0 = e->arg1 = 0;
	e->aux = cookie >> COOKIE_OFFSET_SHIFT;
	e->flags |= PROBE_FLAG_STATE;
}

/* A thread's name, captured by the thread itself at its first probe hit:
 * read from /proc later, a short-lived thread would be gone. At an entry
 * probe it also says where the function is mapped (the handler sees the
 * probed address): user space learns the load bias from it even when a
 * short program is gone before its /proc/PID/maps could be read. */
static __always_inline void name_thread(__u64 pid_tgid, struct pt_regs *ctx, __u64 cookie)
{
	__u32 tid = (__u32)pid_tgid;
	struct probe_event *e;
	__u8 one = 1;

	if (bpf_map_lookup_elem(&named_threads, &tid))
		return;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return; /* not an event (nothing to count as lost): named at a later hit */
	bpf_map_update_elem(&named_threads, &tid, &one, BPF_ANY);
	__builtin_memset(e, 0, sizeof(*e));
	e->ts = bpf_ktime_get_ns();
	e->pid = pid_tgid >> 32;
	e->tid = tid;
	e->kind = PROBE_KIND_THREAD;
	bpf_get_current_comm(&e->arg0, 16); /* arg0 and arg1: 16 bytes */
	/* (an inlined body's sites are mid-function: not its listed address) */
	if (((cookie >> COOKIE_KIND_SHIFT) & COOKIE_KIND_MASK) == PROBE_KIND_ENTRY && !(cookie & COOKIE_INLINED)) {
		e->aux = PT_REGS_IP(ctx);
		e->func_id = cookie & COOKIE_FUNC_MASK;
		e->flags = PROBE_FLAG_ENTRY_IP;
	}
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

SEC("uprobe")
int poll_probe(struct pt_regs *ctx)
{
	__u64 pid_tgid = current_pid_tgid();
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct probe_event *e;

	if (targ_tgid && (pid_tgid >> 32) != targ_tgid)
		return 0;
	name_thread(pid_tgid, ctx, cookie);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return 0;
	}
	e->ts = bpf_ktime_get_ns();
	e->sp = PT_REGS_SP(ctx);
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->func_id = cookie & COOKIE_FUNC_MASK;
	e->cpu = bpf_get_smp_processor_id();
	e->kind = (cookie >> COOKIE_KIND_SHIFT) & COOKIE_KIND_MASK;
	e->flags = 0;
	e->aux = 0;
	if (e->kind == PROBE_KIND_EXIT && (cookie & COOKIE_INLINED)) {
		fill_inlined_exit(e, cookie);
	} else if (e->kind == PROBE_KIND_EXIT) {
		fill_result(e, ctx, cookie);
		if (cookie & COOKIE_TRACK_STATE)
			read_state(e);
	} else if (cookie & COOKIE_INLINED) {
		fill_inlined(e, ctx, cookie);
	} else {
		fill_entry(e, ctx, cookie);
	}
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= targ_wakeup_bytes
				  ? BPF_RB_FORCE_WAKEUP
				  : BPF_RB_NO_WAKEUP);
	return 0;
}
