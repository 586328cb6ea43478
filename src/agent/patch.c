/* Applying the plan: each function's first instructions move to a stub near
 * the code (a jump must reach it in 32 bits), and a 5-byte `jmp` takes
 * their place. Runs in the constructor, before main and before any other
 * thread exists, so no thread can be executing the bytes being rewritten.
 * Code pages are writable only while they are patched (W^X). */
#include <errno.h>
#include <link.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agent/agent.h"

/* Stub layout: movabs $desc,%r11 (10) | jmp *0(%rip) (6) + address (8) |
 * moved instructions (<= 32) | jmp back (5): 61 bytes.
 *
 * A mid-function site's stub (AGENT_FN_SITE): every register may be live
 * there and leaf code keeps data below %rsp (the red zone), so it first
 * steps below the red zone (lea keeps the flags), saves %r11 before loading
 * the descriptor into it, and the trampoline comes back to its tail, which
 * undoes both before the moved instructions run:
 *   lea -128(%rsp),%rsp (5) | push %r11 (2) | movabs $desc,%r11 (10) |
 *   jmp *0(%rip) (6) + address (8) | int3 | tail at 32: pop %r11 (2) |
 *   lea 128(%rsp),%rsp (8) | moved (<= 32) | jmp back (5): 79 bytes. */
#define STUB_SIZE 80
#define STUB_MOVED 24
#define SITE_TAIL 32
#define SITE_MOVED 42
#define JUMP_SIZE 5
#define SEARCH_STEP (64u << 10)
#define SEARCH_LIMIT (1u << 30) /* stay well inside a rel32's reach */

extern char asynctrace_call_through[] AGENT_HIDDEN;
extern char asynctrace_record_entry[] AGENT_HIDDEN;
extern char asynctrace_record_site[] AGENT_HIDDEN;

static int image_phdr_callback(struct dl_phdr_info *info, size_t size, void *data)
{
	struct agent_image *image = data;

	(void)size;
	/* The first object is the main program. */
	image->bias = info->dlpi_addr;
	image->start = UINTPTR_MAX;
	image->end = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD)
			continue;
		if (info->dlpi_addr + ph->p_vaddr < image->start)
			image->start = info->dlpi_addr + ph->p_vaddr;
		if (info->dlpi_addr + ph->p_vaddr + ph->p_memsz > image->end)
			image->end = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
	}
	return 1;
}

int agent_find_image(struct agent_image *image)
{
	image->start = image->end = 0;
	dl_iterate_phdr(image_phdr_callback, image);
	return image->end > image->start ? 0 : -ENOEXEC;
}

static int fits_rel32(uintptr_t from_end, uintptr_t to)
{
	intptr_t delta = (intptr_t)(to - from_end);

	return delta >= INT32_MIN && delta <= INT32_MAX;
}

/* Anonymous memory below the image (above it lies the heap's brk), close
 * enough for 32-bit jumps both ways. */
static uint8_t *map_near(const struct agent_image *image, size_t size)
{
	uintptr_t top = (image->start - size) & ~(uintptr_t)(SEARCH_STEP - 1);

	for (uintptr_t offset = 0; offset < SEARCH_LIMIT && offset < top; offset += SEARCH_STEP) {
		void *want = (void *)(top - offset);
		void *got = mmap(want, size, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

		if (got == want)
			return got;
		if (got != MAP_FAILED)
			munmap(got, size); /* a kernel that took it as a hint */
	}
	return NULL;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void fill_descriptor(struct agent_descriptor *d, const struct agent_plan_function *f,
			    const uint8_t *stub)
{
	uint64_t id = f->func_id;
	bool site = f->flags & AGENT_FN_SITE;

	d->relocated = (uint64_t)(uintptr_t)(stub + (site ? SITE_TAIL : STUB_MOVED));
	d->entry_header = f->flags & (AGENT_FN_ENTRY | AGENT_FN_SITE) ? id | (uint64_t)AGENT_KIND_ENTRY << 24 : 0;
	d->exit_header = 0;
	if (f->flags & AGENT_FN_EXIT)
		d->exit_header = id | (uint64_t)AGENT_KIND_EXIT << 24 |
				 (uint64_t)(f->state_size ? AGENT_FLAG_STATE : 0) << 28;
	d->entry_value = f->entry_value;
	d->exit_value = f->exit_value;
	d->state_size = f->state_size;
	d->memory_size = f->memory_size;
	d->state_offset = f->state_offset;
	d->memory_offset = f->memory_offset;
	d->value_reg = f->value_reg;
}

/* The site stub's head and tail (layout above); returns where the moved
 * instructions go. */
static uint8_t *site_stub(uint8_t *stub, const struct agent_descriptor *desc)
{
	static const uint8_t below_red_zone[] = { 0x48, 0x8d, 0x64, 0x24, 0x80, 0x41, 0x53 };
	static const uint8_t back_above[] = { 0x41, 0x5b, 0x48, 0x8d, 0xa4, 0x24, 0x80, 0x00, 0x00, 0x00 };
	uint8_t *p = stub;

	_Static_assert(sizeof(below_red_zone) + 10 + 14 + 1 == SITE_TAIL, "site stub head");
	_Static_assert(SITE_TAIL + sizeof(back_above) == SITE_MOVED, "site stub tail");
	_Static_assert(SITE_MOVED + AGENT_MAX_MOVED + JUMP_SIZE <= STUB_SIZE, "site stub size");
	memcpy(p, below_red_zone, sizeof(below_red_zone));
	p += sizeof(below_red_zone);
	p[0] = 0x49, p[1] = 0xbb; /* movabs $desc, %r11 */
	put_u64(p + 2, (uint64_t)(uintptr_t)desc);
	p[10] = 0xff, p[11] = 0x25; /* jmp *0(%rip) */
	put_u32(p + 12, 0);
	put_u64(p + 16, (uint64_t)(uintptr_t)asynctrace_record_site);
	p[24] = 0xcc;
	memcpy(stub + SITE_TAIL, back_above, sizeof(back_above));
	return stub + SITE_MOVED;
}

/* Writes the stub of f at `stub`; its moved instructions are relocated for
 * their new address. Returns an agent_patch_result. */
static int build_stub(uint8_t *stub, const struct agent_descriptor *desc,
		      const struct agent_plan_function *f, uintptr_t site)
{
	uint8_t *moved = stub + STUB_MOVED, *back;
	void *trampoline = f->flags & AGENT_FN_EXIT ? (void *)asynctrace_call_through
						  : (void *)asynctrace_record_entry;

	if (f->flags & AGENT_FN_SITE) {
		moved = site_stub(stub, desc);
	} else {
		stub[0] = 0x49, stub[1] = 0xbb; /* movabs $desc, %r11 */
		put_u64(stub + 2, (uint64_t)(uintptr_t)desc);
		stub[10] = 0xff, stub[11] = 0x25; /* jmp *0(%rip) */
		put_u32(stub + 12, 0);
		put_u64(stub + 16, (uint64_t)(uintptr_t)trampoline);
	}
	back = moved + f->length;
	memcpy(moved, f->original, f->length);
	for (unsigned i = 0; i < f->reloc_count; i++) {
		const struct agent_plan_reloc *r = &f->relocs[i];
		uintptr_t target = (uintptr_t)r->target + asynctrace_agent.image.bias;

		if (r->disp_offset + 4u > f->length || r->insn_end > f->length || r->insn_end < r->disp_offset + 4u)
			return AGENT_PATCH_BYTES_DIFFER;
		if (!fits_rel32((uintptr_t)moved + r->insn_end, target))
			return AGENT_PATCH_OUT_OF_REACH;
		put_u32(moved + r->disp_offset, (uint32_t)(int32_t)(target - ((uintptr_t)moved + r->insn_end)));
	}
	if (!fits_rel32((uintptr_t)back + JUMP_SIZE, site + f->length) ||
	    !fits_rel32(site - f->pad + JUMP_SIZE, (uintptr_t)stub))
		return AGENT_PATCH_OUT_OF_REACH;
	back[0] = 0xe9;
	put_u32(back + 1, (uint32_t)(int32_t)(site + f->length - ((uintptr_t)back + JUMP_SIZE)));
	return AGENT_PATCH_APPLIED;
}

#define SHORT_JUMP_SIZE 2

/* A site records one register, alone, unpadded. */
static int site_is_sane(const struct agent_plan_function *f)
{
	return f->flags == AGENT_FN_SITE && !f->pad && f->entry_value == AGENT_VALUE_REGISTER && f->value_reg < 16;
}

static int plan_entry_is_sane(const struct agent *a, const struct agent_plan_function *f)
{
	uintptr_t site = (uintptr_t)f->addr + a->image.bias;
	unsigned least = f->pad ? SHORT_JUMP_SIZE : JUMP_SIZE;

	if ((f->flags & AGENT_FN_SITE) && !site_is_sane(f))
		return 0;
	return f->length >= least && f->length <= AGENT_MAX_MOVED && f->reloc_count <= AGENT_MAX_RELOCS &&
	       (f->flags & (AGENT_FN_ENTRY | AGENT_FN_EXIT | AGENT_FN_SITE)) && site - f->pad >= a->image.start &&
	       site + f->length <= a->image.end && (!f->pad || (f->pad >= AGENT_PAD_SIZE && f->pad <= 127 - 2));
}

/* The bytes to rewrite are the ones planned: the moved instructions, and
 * for the padded layout the padding before the function. */
static int code_is_as_planned(uintptr_t site, const struct agent_plan_function *f)
{
	const uint8_t *pad = (const uint8_t *)(site - f->pad);

	for (unsigned i = 0; f->pad && i < AGENT_PAD_SIZE; i++)
		if (pad[i] != AGENT_PAD_BYTE)
			return 0;
	return memcmp((void *)site, f->original, f->length) == 0;
}

/* Pages [start, end) writable for patching, or back to read+execute. */
static int set_code_writable(uintptr_t start, uintptr_t end, int writable)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t first = start & ~(uintptr_t)(page - 1);

	return mprotect((void *)first, end - first, writable ? PROT_READ | PROT_WRITE : PROT_READ | PROT_EXEC);
}

static void write_jump(uintptr_t site, const uint8_t *stub, const struct agent_plan_function *f)
{
	uintptr_t jump = site - f->pad;
	uint8_t *p = (uint8_t *)jump;
	unsigned written = JUMP_SIZE;

	p[0] = 0xe9;
	put_u32(p + 1, (uint32_t)(int32_t)((uintptr_t)stub - (jump + JUMP_SIZE)));
	if (f->pad) { /* jmp rel8 back to the jump in the padding */
		p = (uint8_t *)site;
		p[0] = 0xeb;
		p[1] = (uint8_t)(int8_t)-(int)(f->pad + SHORT_JUMP_SIZE);
		written = SHORT_JUMP_SIZE;
	}
	/* Nothing jumps into the moved bytes (the plan checked): a trap there
	 * is loud, where nops would silently skip the moved instructions. */
	memset(p + written, 0xcc, f->length - written);
}

static void restore_bytes(uintptr_t site, const uint8_t *stub, const struct agent_plan_function *f)
{
	(void)stub;
	memcpy((void *)site, f->original, f->length);
	if (f->pad)
		memset((void *)(site - f->pad), AGENT_PAD_BYTE, AGENT_PAD_SIZE);
}

/* Rewrites every applied function with `write` (its jump, or its original
 * bytes), opening each run of pages once (functions are sorted by address).
 * Failures are marked in the plan when patching (a fork's child reverting
 * must not write to the region it shares with record). */
static int rewrite_functions(struct agent *a,
			     void (*write)(uintptr_t site, const uint8_t *stub, const struct agent_plan_function *f),
			     int mark_failures)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t open_start = 0, open_end = 0;
	int err = 0;

	for (uint32_t i = 0; i < a->plan->function_count && !err; i++) {
		struct agent_plan_function *f = &a->plan->functions[i];
		uintptr_t site = (uintptr_t)f->addr + a->image.bias, first = site - f->pad;
		uintptr_t end = (site + f->length + page - 1) & ~(uintptr_t)(page - 1);

		if (f->result != AGENT_PATCH_APPLIED)
			continue;
		if (first < open_start || end > open_end) {
			if (open_end && set_code_writable(open_start, open_end, 0))
				err = -errno;
			open_start = first & ~(uintptr_t)(page - 1);
			open_end = end;
			if (!err && set_code_writable(open_start, open_end, 1))
				err = -errno;
		}
		if (!err)
			write(site, a->stubs + (size_t)i * STUB_SIZE, f);
		else if (mark_failures)
			f->result = AGENT_PATCH_FAILED;
	}
	if (open_end && set_code_writable(open_start, open_end, 0) && !err)
		err = -errno;
	return err;
}

static size_t round_pages(size_t bytes)
{
	long page = sysconf(_SC_PAGESIZE);

	return (bytes + page - 1) & ~(size_t)(page - 1);
}

int agent_patch_apply(struct agent *a, char *why, size_t why_len)
{
	uint32_t n = a->plan->function_count;
	size_t code_bytes = round_pages((size_t)n * STUB_SIZE);
	size_t desc_bytes = round_pages((size_t)n * sizeof(struct agent_descriptor));
	struct agent_descriptor *descs;
	int applied = 0, err;

	if (!n)
		return 0;
	a->stubs_size = code_bytes + desc_bytes;
	a->stubs = map_near(&a->image, a->stubs_size);
	if (!a->stubs) {
		snprintf(why, why_len, "no free memory within 1 GiB below the program's code for %zu bytes of stubs",
			 a->stubs_size);
		return -ENOMEM;
	}
	descs = (struct agent_descriptor *)(a->stubs + code_bytes);
	for (uint32_t i = 0; i < n; i++) {
		struct agent_plan_function *f = &a->plan->functions[i];
		uintptr_t site = (uintptr_t)f->addr + a->image.bias;

		if (!plan_entry_is_sane(a, f) || !code_is_as_planned(site, f)) {
			f->result = AGENT_PATCH_BYTES_DIFFER;
			continue;
		}
		fill_descriptor(&descs[i], f, a->stubs + (size_t)i * STUB_SIZE);
		f->result = (uint8_t)build_stub(a->stubs + (size_t)i * STUB_SIZE, &descs[i], f, site);
		applied += f->result == AGENT_PATCH_APPLIED;
	}
	if (mprotect(a->stubs, code_bytes, PROT_READ | PROT_EXEC) ||
	    mprotect(a->stubs + code_bytes, desc_bytes, PROT_READ)) {
		snprintf(why, why_len, "cannot make the stubs executable: %s", strerror(errno));
		return -errno;
	}
	err = rewrite_functions(a, write_jump, 1);
	if (err) {
		snprintf(why, why_len, "cannot write the program's code: %s", strerror(-err));
		return err;
	}
	return applied;
}

void agent_patch_revert(struct agent *a)
{
	rewrite_functions(a, restore_bytes, 0);
}
