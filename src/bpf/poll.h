/* The one structure shared by the BPF program (poll.bpf.c) and user space
 * (probe/). Fixed-width types only. */
#ifndef ASYNCTRACE_BPF_POLL_H
#define ASYNCTRACE_BPF_POLL_H

#define PROBE_KIND_ENTRY 1
#define PROBE_KIND_EXIT 2
#define PROBE_KIND_THREAD 3 /* first event of a thread: arg0..arg1 hold its comm */

/* Event flags. */
#define PROBE_FLAG_ARG1_FROM_MEMORY 0x1 /* exit: arg1 = 8 bytes read at rax + offset */
#define PROBE_FLAG_READ_FAILED 0x2      /* that read failed; arg1 is 0 */
#define PROBE_FLAG_STATE 0x4            /* exit: aux = the future's state discriminant */
#define PROBE_FLAG_RETURN_ADDRESS 0x8   /* entry: aux = the return address */
#define PROBE_FLAG_ENTRY_IP 0x10        /* thread: aux = where func_id's entry probe is mapped */
#define PROBE_FLAG_RESUMED 0x20         /* inlined entry: at an await's resume point, not the start */

/* The attach cookie of every probe site packs what the BPF side needs:
 *   bits  0..31  function id (index in the trace's function table)
 *   bits 32..33  PROBE_KIND_ENTRY / PROBE_KIND_EXIT
 *   bit  34      exit: read the Poll<T> discriminant word from memory at rax
 *   bit  35      track the state machine: the entry saves the future's
 *                address (keyed by stack pointer), the exit reads its
 *                discriminant (offset and size from the func_config map)
 *   bit  36      the future is the 2nd argument (hidden return pointer first)
 *   bit  37      an inlined async body's dispatch (an entry mid-function):
 *                the future is register bits 38..41 (x86 numbering), and the
 *                event's stack pointer is made rsp + 7 - level (bits
 *                42..44): between the host's frame and its callees' frames;
 *                bits 48..63 the state the site resumes (0: the start;
 *                else the event says PROBE_FLAG_RESUMED); on an exit of
 *                such a body, the state it stored before leaving
 *   bits 48..63  byte offset of the Poll<T> word
 * Poll<T> larger than two registers comes back through a hidden pointer,
 * which the callee also returns in rax (SysV ABI), so the exit probe can
 * read the discriminant without knowing the pointer from the entry. */
#define COOKIE_FUNC_MASK 0xffffffffULL
#define COOKIE_KIND_SHIFT 32
#define COOKIE_KIND_MASK 0x3ULL
#define COOKIE_READ_MEMORY (1ULL << 34)
#define COOKIE_TRACK_STATE (1ULL << 35)
#define COOKIE_SELF_ARG1 (1ULL << 36)
#define COOKIE_INLINED (1ULL << 37)
#define COOKIE_REG_SHIFT 38
#define COOKIE_REG_MASK 0xfULL
#define COOKIE_LEVEL_SHIFT 42
#define COOKIE_LEVEL_MASK 0x7ULL
#define COOKIE_OFFSET_SHIFT 48

/* Per-function configuration (array map indexed by function id). */
struct func_config {
	__u32 state_offset; /* of the discriminant in the future */
	__u32 state_size;   /* 1, 2 or 4 bytes; 0: no state to read */
};

/* One ring-buffer record: 56 bytes. */
struct probe_event {
	__u64 ts;   /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 sp;   /* user stack pointer at the probed instruction */
	__u64 arg0; /* entry: 1st argument register; exit: 1st return register */
	__u64 arg1; /* entry: 2nd argument register; exit: 2nd return register or memory word */
	__u64 aux;  /* entry: return address; exit: state discriminant (see flags) */
	__u32 pid;  /* thread group id */
	__u32 tid;
	__u32 func_id;
	__u16 cpu;
	__u8 kind;  /* PROBE_KIND_* */
	__u8 flags; /* PROBE_FLAG_* */
};

#endif
