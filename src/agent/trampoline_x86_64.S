/* The in-process agent's trampolines (x86-64, SysV ABI).
 *
 * A patched function starts with `jmp stub`; the stub loads the function's
 * descriptor into %r11 (scratch at a call boundary, never an argument) and
 * jumps here. At entry the stack is exactly as the function would see it:
 * (%rsp) is its caller's return address.
 *
 * asynctrace_call_through records the entry, *calls* the relocated
 * prologue (which jumps back into the function), records the exit and
 * returns to the original caller. It never touches a return address: it is
 * an ordinary frame with CFI (below), so a panic unwinds through it, and it
 * shows once in a backtrace under its own name. Its 40-byte frame keeps the
 * callee's stack alignment (entry rsp = 8 mod 16, as after a call) but
 * shifts the callee's frame: functions with stack arguments are never
 * called through (the plan refuses them).
 *
 * asynctrace_record_entry records the entry of a hook (wake, spawn, drop,
 * task release) and jumps to the relocated prologue with the stack as it
 * was: no frame, no shift.
 *
 * asynctrace_record_site records a mid-function site (below): its stub
 * differs, and it keeps every register and the flags.
 *
 * A record is reserved with one `xadd` on the thread's buffer (a signal
 * handler that runs traced code in between gets the next slot) and its
 * header word is stored last, so a record whose header is 0 was never
 * completed. Registers: arguments, %rax (variadic count) and %rdx (rdtsc)
 * are preserved on entry; %rax, %rdx, %xmm0 and %xmm1 (return values) on
 * exit; nothing here touches a vector register, and the slow path saves
 * every integer register it may clobber and runs C compiled without vector
 * registers (buffers.c). */
#include "agent/agent_abi.h"

/* asynctrace_call_through's frame, relative to %rsp after the sub. */
#define SLOT_DESC 0
#define SLOT_SELF 8
#define SLOT_RAX 16
#define SLOT_RDX 24
#define CALL_FRAME 40 /* 5 slots: odd, so the callee is entered 8 mod 16 */

/* asynctrace_record_site's frame: the 16 integer registers by number
 * (rax 0 .. r15 15), the record's value, the flags, the %r11 the stub
 * pushed; above it the red zone the stub stepped over, then the site's
 * stack. */
#define SITE_VALUE 128
#define SITE_SAVED 136
#define SITE_FLAGS 136
#define SITE_R11 144
#define SITE_SP (144 + 8 + 128)

/* asynctrace_record_entry's frame. */
#define ENTRY_RAX 0
#define ENTRY_RDX 8
#define ENTRY_VALUE 16
#define ENTRY_FRAME 24

/* Reserve a record in the thread's buffer: on success %r10 = the record;
 * otherwise jump to `slow` with %rax = the buffer (or 0). Clobbers %rax,
 * %rdx. */
.macro RESERVE slow
	movq asynctrace_tls_buffer@gottpoff(%rip), %rax
	movq %fs:(%rax), %rax
	testq %rax, %rax
	jz \slow
	movl $AGENT_RECORD_SIZE, %edx
	xaddq %rdx, AGENT_BUFFER_USED(%rax)
	cmpq AGENT_BUFFER_CAPACITY(%rax), %rdx
	jae \slow
	leaq AGENT_BUFFER_HEADER_SIZE(%rax,%rdx), %r10
.endm

/* %rax = the time stamp counter. Clobbers %rdx. */
.macro TIMESTAMP
	rdtsc
	shlq $32, %rdx
	orq %rdx, %rax
.endm

/* An entry record: the entry's stack pointer is %rsp + frame, the value is
 * in the frame's slot `value`; the header word goes last. In: %r11 = the
 * descriptor. Clobbers %rax, %rdx, %r10. */
.macro ENTRY_RECORD frame, value, slow
	RESERVE \slow
	TIMESTAMP
	movq %rax, 0(%r10)
	leaq \frame(%rsp), %rax
	movq %rax, 8(%r10)
	movq \value(%rsp), %rax
	movq %rax, 16(%r10)
	movq AGENT_DESC_ENTRY_HEADER(%r11), %rax
	movq %rax, 24(%r10)
.endm

	.text

	.globl asynctrace_call_through
	.hidden asynctrace_call_through
	.type asynctrace_call_through, @function
	.p2align 4
asynctrace_call_through:
	.cfi_startproc
	subq $CALL_FRAME, %rsp
	.cfi_adjust_cfa_offset CALL_FRAME
	movq %rax, SLOT_RAX(%rsp)
	movq %rdx, SLOT_RDX(%rsp)
	movq %r11, SLOT_DESC(%rsp)
	/* self: the future, read again at the exit for its state. */
	movq %rdi, %r10
	cmpb $AGENT_VALUE_ARG1, AGENT_DESC_ENTRY_VALUE(%r11)
	cmoveq %rsi, %r10
	movq %r10, SLOT_SELF(%rsp)
	cmpq $0, AGENT_DESC_ENTRY_HEADER(%r11)
	je .Lcall
.Lentry_reserve:
	ENTRY_RECORD CALL_FRAME, SLOT_SELF, .Lentry_slow
.Lcall:
	movq SLOT_RAX(%rsp), %rax
	movq SLOT_RDX(%rsp), %rdx
	callq *AGENT_DESC_RELOCATED(%r11)
	movq %rax, SLOT_RAX(%rsp)
	movq %rdx, SLOT_RDX(%rsp)
	movq SLOT_DESC(%rsp), %r11
	cmpq $0, AGENT_DESC_EXIT_HEADER(%r11)
	je .Lreturn
.Lexit_reserve:
	RESERVE .Lexit_slow
	TIMESTAMP
	movq %rax, 0(%r10)
	leaq CALL_FRAME(%rsp), %rax
	movq %rax, 8(%r10)
	/* The value: a return register, or the Poll<T> discriminant in memory. */
	movq SLOT_RAX(%rsp), %rax
	movzbl AGENT_DESC_EXIT_VALUE(%r11), %edx
	cmpl $AGENT_VALUE_RDX, %edx
	je .Lvalue_rdx
	cmpl $AGENT_VALUE_MEMORY, %edx
	je .Lvalue_memory
.Lvalue_done:
	movq %rax, 16(%r10)
	movq AGENT_DESC_EXIT_HEADER(%r11), %rdx
	cmpb $0, AGENT_DESC_STATE_SIZE(%r11)
	jne .Lstate
.Lheader:
	movq %rdx, 24(%r10)
.Lreturn:
	movq SLOT_RAX(%rsp), %rax
	movq SLOT_RDX(%rsp), %rdx
	addq $CALL_FRAME, %rsp
	.cfi_adjust_cfa_offset -CALL_FRAME
	ret
	.cfi_adjust_cfa_offset CALL_FRAME

.Lvalue_rdx:
	movq SLOT_RDX(%rsp), %rax
	jmp .Lvalue_done
.Lvalue_memory:
	movzwl AGENT_DESC_MEMORY_OFFSET(%r11), %edx
	addq %rdx, %rax
	movzbl AGENT_DESC_MEMORY_SIZE(%r11), %edx
	cmpl $1, %edx
	je 1f
	cmpl $2, %edx
	je 2f
	cmpl $4, %edx
	je 4f
	movq (%rax), %rax
	jmp .Lvalue_done
1:	movzbl (%rax), %eax
	jmp .Lvalue_done
2:	movzwl (%rax), %eax
	jmp .Lvalue_done
4:	movl (%rax), %eax
	jmp .Lvalue_done

/* The state discriminant's low 16 bits (it is a u8 in every rustc so far),
 * read from the future the entry saw; %rcx is dead after a return. */
.Lstate:
	movq SLOT_SELF(%rsp), %rax
	movzwl AGENT_DESC_STATE_OFFSET(%r11), %ecx
	addq %rcx, %rax
	cmpb $1, AGENT_DESC_STATE_SIZE(%r11)
	je 1f
	movzwl (%rax), %eax
	jmp 2f
1:	movzbl (%rax), %eax
2:	shlq $32, %rax
	orq %rax, %rdx
	jmp .Lheader

.Lentry_slow:
	call asynctrace_refill_thunk
	testq %rax, %rax
	jnz .Lentry_reserve
	jmp .Lcall /* dropped (and counted) */
.Lexit_slow:
	call asynctrace_refill_thunk
	testq %rax, %rax
	jnz .Lexit_reserve
	jmp .Lreturn
	.cfi_endproc
	.size asynctrace_call_through, .-asynctrace_call_through

	.globl asynctrace_record_entry
	.hidden asynctrace_record_entry
	.type asynctrace_record_entry, @function
	.p2align 4
asynctrace_record_entry:
	.cfi_startproc
	subq $ENTRY_FRAME, %rsp
	.cfi_adjust_cfa_offset ENTRY_FRAME
	movq %rax, ENTRY_RAX(%rsp)
	movq %rdx, ENTRY_RDX(%rsp)
	movq %rdi, %r10
	movzbl AGENT_DESC_ENTRY_VALUE(%r11), %eax
	cmpl $AGENT_VALUE_ARG1, %eax
	cmoveq %rsi, %r10
	cmpl $AGENT_VALUE_RETURN_ADDRESS, %eax
	cmoveq ENTRY_FRAME(%rsp), %r10
	movq %r10, ENTRY_VALUE(%rsp)
.Lhook_reserve:
	ENTRY_RECORD ENTRY_FRAME, ENTRY_VALUE, .Lhook_slow
.Lhook_done:
	movq ENTRY_RAX(%rsp), %rax
	movq ENTRY_RDX(%rsp), %rdx
	addq $ENTRY_FRAME, %rsp
	.cfi_adjust_cfa_offset -ENTRY_FRAME
	jmpq *AGENT_DESC_RELOCATED(%r11)
	.cfi_adjust_cfa_offset ENTRY_FRAME
.Lhook_slow:
	call asynctrace_refill_thunk
	testq %rax, %rax
	jnz .Lhook_reserve
	jmp .Lhook_done
	.cfi_endproc
	.size asynctrace_record_entry, .-asynctrace_record_entry

/* A mid-function site (AGENT_FN_SITE): entered by jmp from its stub with
 * %rsp 136 bytes below the site's (the red zone skipped, the site's %r11
 * pushed) and %r11 = the descriptor. Every register and the flags may be
 * live at the site: they are all saved, the record's value is the saved
 * register the descriptor names (as the code at the site saw it), and
 * what the record and the slow path clobber (%rax, %rdx, %r10, flags) is
 * restored before jumping to the stub's tail, which pops %r11, goes back
 * above the red zone and runs the moved instructions. No call, no return
 * address: the site's stack is never changed. There is no frame to unwind
 * to (the site is mid-function in code without our CFI): the unwinder
 * stops here. */
	.globl asynctrace_record_site
	.hidden asynctrace_record_site
	.type asynctrace_record_site, @function
	.p2align 4
asynctrace_record_site:
	.cfi_startproc
	.cfi_undefined rip
	pushfq
	subq $SITE_SAVED, %rsp
	cld /* C (the slow path) expects it clear; popfq restores it */
	movq %rax, 0(%rsp)
	movq %rcx, 8(%rsp)
	movq %rdx, 16(%rsp)
	movq %rbx, 24(%rsp)
	leaq SITE_SP(%rsp), %rax
	movq %rax, 32(%rsp)
	movq %rbp, 40(%rsp)
	movq %rsi, 48(%rsp)
	movq %rdi, 56(%rsp)
	movq %r8, 64(%rsp)
	movq %r9, 72(%rsp)
	movq %r10, 80(%rsp)
	movq SITE_R11(%rsp), %rax
	movq %rax, 88(%rsp)
	movq %r12, 96(%rsp)
	movq %r13, 104(%rsp)
	movq %r14, 112(%rsp)
	movq %r15, 120(%rsp)
	movzbl AGENT_DESC_REGISTER(%r11), %eax
	andl $15, %eax
	movq (%rsp,%rax,8), %rax
	movq %rax, SITE_VALUE(%rsp)
.Lsite_reserve:
	ENTRY_RECORD SITE_SP, SITE_VALUE, .Lsite_slow
.Lsite_done:
	movq 0(%rsp), %rax
	movq 16(%rsp), %rdx
	movq 80(%rsp), %r10
	addq $SITE_SAVED, %rsp
	popfq
	jmpq *AGENT_DESC_RELOCATED(%r11)
.Lsite_slow:
	call asynctrace_refill_thunk
	testq %rax, %rax
	jnz .Lsite_reserve
	jmp .Lsite_done
	.cfi_endproc
	.size asynctrace_record_site, .-asynctrace_record_site

/* In: %rax = the thread's buffer (0 for none yet). Out: %rax = a buffer
 * with room, or 0 when the record must be dropped. Preserves every other
 * integer register; the C side uses no vector registers. */
	.type asynctrace_refill_thunk, @function
	.p2align 4
asynctrace_refill_thunk:
	.cfi_startproc
	pushq %rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rbp, 0
	movq %rsp, %rbp
	.cfi_def_cfa_register %rbp
	pushq %rdi
	pushq %rsi
	pushq %rdx
	pushq %rcx
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	andq $-16, %rsp
	movq %rax, %rdi
	call asynctrace_agent_refill
	leaq -64(%rbp), %rsp
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rcx
	popq %rdx
	popq %rsi
	popq %rdi
	popq %rbp
	.cfi_def_cfa %rsp, 8
	.cfi_same_value %rbp
	ret
	.cfi_endproc
	.size asynctrace_refill_thunk, .-asynctrace_refill_thunk

	.section .note.GNU-stack, "", @progbits
