/* DWARF unwinding of a sampled user stack, as `perf --call-graph dwarf`
 * does: the registers and a copy of the top of the stack taken with the
 * sample are unwound with libdw's CFI (.eh_frame, .debug_frame) of the
 * process's modules (dwfl with our own memory callbacks: nothing reads the
 * live process but its /proc/PID/maps). For code without frame pointers,
 * which Rust's x86_64 default is. */
#ifndef ASYNCTRACE_ELF_UNWIND_H
#define ASYNCTRACE_ELF_UNWIND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct dwarf_unwinder;

/* For process pid, whose machine is e_machine. Returns 0, -ENOTSUP (no
 * DWARF unwinding for that machine) or -ENOMEM. */
int dwarf_unwinder__new(struct dwarf_unwinder **out, pid_t pid, uint16_t machine);
/* The perf_event user registers to sample (sample_regs_user). */
uint64_t dwarf_unwinder__regs_mask(const struct dwarf_unwinder *u);
/* While the process runs: makes sure the module of the sample's pc is
 * known (read from /proc/PID/maps, its ELF opened), so that the sample
 * can be unwound after the process is gone. Cheap when it is. Returns the
 * sample's pc. */
uint64_t dwarf_unwinder__prepare(struct dwarf_unwinder *u, const uint64_t *regs);
/* The call chain of one sample into pcs (at most max): regs as the kernel
 * gave them (the mask's bits in order), the stack copy starting at their
 * stack pointer. The first pc is the sampled one, the others return
 * addresses. Returns the number of pcs (0: nothing known). */
size_t dwarf_unwinder__unwind(struct dwarf_unwinder *u, pid_t tid, const uint64_t *regs, const uint8_t *stack,
			      size_t stack_len, uint64_t *pcs, size_t max);
void dwarf_unwinder__free(struct dwarf_unwinder *u);

/* For --call-graph auto: 1 when most of the file's functions (of those
 * large enough to have a prologue) set up a frame pointer, 0 when not (or
 * its machine cannot tell), or a negative errno of reading it. */
int elf_keeps_frame_pointers(const char *path);

#endif
