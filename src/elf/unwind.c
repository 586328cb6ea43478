/* DWARF unwinding of sampled stacks (unwind.h), as perf's libdw unwinder
 * does it, with one difference: one Dwfl for the whole recording, so each
 * module's CFI is read once, not once per sample. The process's modules
 * are reported from /proc/PID/maps at the first sample and again when a
 * sample's pc is in none of them (a library loaded later). */
#include "elf/unwind.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <elfutils/libdwfl.h>

#include "arch/arch.h"
#include "elf/elf_image.h"

#define MAX_DWARF_REGS 32

struct dwarf_unwinder {
	Dwfl *dwfl;
	Dwfl_Callbacks callbacks;
	Dwfl_Thread_Callbacks thread_callbacks;
	char *debuginfo_path;
	const struct arch_ops *arch;
	pid_t pid;
	bool attached;
	/* the sample being unwound */
	pid_t tid;
	uint64_t dwarf[MAX_DWARF_REGS];
	unsigned dwarf_count;
	uint64_t pc, sp;
	const uint8_t *stack;
	size_t stack_len;
	uint64_t *pcs;
	size_t count, max;
};

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_arg)
{
	struct dwarf_unwinder *u = arg;

	(void)dwfl;
	if (*thread_arg)
		return 0;
	*thread_arg = u;
	return u->tid;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_arg)
{
	struct dwarf_unwinder *u = arg;

	(void)dwfl;
	*thread_arg = u;
	return tid == u->tid;
}

/* Only the stack copy: what the sample did not copy is not known. */
static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
	struct dwarf_unwinder *u = arg;

	(void)dwfl;
	if (addr < u->sp || addr - u->sp > u->stack_len || u->stack_len - (addr - u->sp) < sizeof(*result))
		return false;
	memcpy(result, u->stack + (addr - u->sp), sizeof(*result));
	return true;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *arg)
{
	struct dwarf_unwinder *u = arg;

	if (!dwfl_thread_state_registers(thread, 0, u->dwarf_count, u->dwarf))
		return false;
	dwfl_thread_state_register_pc(thread, u->pc);
	return true;
}

int dwarf_unwinder__new(struct dwarf_unwinder **out, pid_t pid, uint16_t machine)
{
	const struct arch_ops *arch = arch_for_machine(machine);
	struct dwarf_unwinder *u;

	*out = NULL;
	if (!arch || !arch->perf_regs_to_dwarf)
		return -ENOTSUP;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->arch = arch;
	u->pid = pid;
	u->callbacks = (Dwfl_Callbacks){
		.find_elf = dwfl_linux_proc_find_elf,
		.find_debuginfo = dwfl_standard_find_debuginfo,
		.debuginfo_path = &u->debuginfo_path,
	};
	u->thread_callbacks = (Dwfl_Thread_Callbacks){
		.next_thread = next_thread,
		.get_thread = get_thread,
		.memory_read = memory_read,
		.set_initial_registers = set_initial_registers,
	};
	u->dwfl = dwfl_begin(&u->callbacks);
	if (!u->dwfl) {
		free(u);
		return -ENOMEM;
	}
	*out = u;
	return 0;
}

uint64_t dwarf_unwinder__regs_mask(const struct dwarf_unwinder *u)
{
	return u->arch->perf_user_regs;
}

/* The process's mappings as modules (best effort: a process that is gone
 * keeps those reported before). */
/* A module's ELF is opened now, while the process (its vdso, a deleted
 * file's /proc/PID/map_files link) is still there to open it from. */
static int load_module(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr start, void *arg)
{
	Dwarf_Addr bias;

	(void)userdata, (void)name, (void)start, (void)arg;
	dwfl_module_getelf(mod, &bias);
	return DWARF_CB_OK;
}

static void report_modules(struct dwarf_unwinder *u)
{
	dwfl_report_begin_add(u->dwfl);
	dwfl_linux_proc_report(u->dwfl, u->pid);
	dwfl_report_end(u->dwfl, NULL, NULL);
	dwfl_getmodules(u->dwfl, load_module, NULL, 0);
	if (!u->attached)
		u->attached = dwfl_attach_state(u->dwfl, NULL, u->pid, &u->thread_callbacks, u);
}

uint64_t dwarf_unwinder__prepare(struct dwarf_unwinder *u, const uint64_t *regs)
{
	u->dwarf_count = u->arch->perf_regs_to_dwarf(regs, u->dwarf, &u->pc, &u->sp);
	if (!u->attached || !dwfl_addrmodule(u->dwfl, u->pc))
		report_modules(u);
	return u->pc;
}

static int on_frame(Dwfl_Frame *frame, void *arg)
{
	struct dwarf_unwinder *u = arg;
	Dwarf_Addr pc;
	bool activation;

	if (!dwfl_frame_pc(frame, &pc, &activation) || !pc)
		return DWARF_CB_ABORT;
	u->pcs[u->count++] = pc;
	return u->count < u->max ? DWARF_CB_OK : DWARF_CB_ABORT;
}

size_t dwarf_unwinder__unwind(struct dwarf_unwinder *u, pid_t tid, const uint64_t *regs, const uint8_t *stack,
			      size_t stack_len, uint64_t *pcs, size_t max)
{
	u->dwarf_count = u->arch->perf_regs_to_dwarf(regs, u->dwarf, &u->pc, &u->sp);
	if (!max)
		return 0;
	if (!u->attached || !dwfl_addrmodule(u->dwfl, u->pc))
		report_modules(u);
	if (!u->attached) {
		pcs[0] = u->pc; /* nothing to unwind with: the sampled frame alone */
		return 1;
	}
	u->tid = tid;
	u->stack = stack;
	u->stack_len = stack_len;
	u->pcs = pcs;
	u->max = max;
	u->count = 0;
	dwfl_getthread_frames(u->dwfl, tid, on_frame, u);
	if (!u->count)
		pcs[u->count++] = u->pc;
	return u->count;
}

void dwarf_unwinder__free(struct dwarf_unwinder *u)
{
	if (!u)
		return;
	dwfl_end(u->dwfl);
	free(u->debuginfo_path);
	free(u);
}

/* A sample of the functions is enough: a build keeps frame pointers
 * everywhere (-C force-frame-pointers) or in none of its own code. */
#define FRAME_POINTER_SAMPLE 400

int elf_keeps_frame_pointers(const char *path)
{
	struct elf_image img;
	struct elf_sym *syms = NULL;
	const struct arch_ops *arch;
	size_t count = 0, seen = 0, with = 0;
	int err = elf_image__open(&img, path);

	if (err)
		return err;
	arch = arch_for_machine(img.machine);
	if (arch && arch->sets_frame_pointer)
		err = elf_image__functions(&img, &syms, &count);
	for (size_t i = 0; !err && i < count && seen < FRAME_POINTER_SAMPLE; i++) {
		size_t step = count > FRAME_POINTER_SAMPLE ? count / FRAME_POINTER_SAMPLE : 1;
		const struct elf_sym *fn = &syms[(i * step) % count];
		const uint8_t *code;

		if (fn->size < 32 || !(code = elf_image__code(&img, fn->shndx, fn->addr, 8)))
			continue;
		seen++;
		with += arch->sets_frame_pointer(code, 8);
	}
	free(syms);
	elf_image__close(&img);
	return err ? err : seen && with * 10 >= seen * 8;
}
