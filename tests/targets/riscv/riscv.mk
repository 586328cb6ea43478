# kernel_exec: the riscv64 test target (see kernel_exec.c). Included by
# tests/targets/Makefile (OUT set there), or on its own:
#   make -f tests/targets/riscv/riscv.mk OUT=/abs/dir /abs/dir/riscv/kernel_exec
# Freestanding (Debian's cross gcc has no riscv64 libc headers without
# libc6-dev-riscv64-cross); each traced function must stay one function at
# its own address: no inlining, no IPA clones or merging.
RISCV_DIR    := $(dir $(lastword $(MAKEFILE_LIST)))
RISCV_CC     := riscv64-linux-gnu-gcc
RISCV_CFLAGS := -O2 -std=c11 -Wall -Wextra -Werror -ffreestanding -fno-builtin -fno-stack-protector \
                -fno-pie -fno-inline -fno-ipa-icf -fno-ipa-cp-clone -nostdlib -static -no-pie \
                -Wl,--no-warn-rwx-segments

$(OUT)/riscv/kernel_exec: $(RISCV_DIR)kernel_exec.c $(RISCV_DIR)riscv.mk
	@mkdir -p $(@D)
	@command -v $(RISCV_CC) >/dev/null || { echo "tests/targets: $(RISCV_CC) not found (apt-get install gcc-riscv64-linux-gnu)" >&2; exit 1; }
	$(RISCV_CC) $(RISCV_CFLAGS) -o $@.tmp $<
	@mv $@.tmp $@
