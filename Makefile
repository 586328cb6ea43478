# asynctrace — build, demo, test, bench.
# `make demo` and `make test` do all set-up on a fresh Debian machine.

BUILD    ?= build
CC       ?= gcc
CLANG    ?= clang
BPFTOOL  ?= bpftool
ARCH     := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/' -e 's/riscv64/riscv/')

# CFLAGS/LDFLAGS are the user's (e.g. make BUILD=build-asan CFLAGS="-O1 -g
# -fsanitize=address,undefined" LDFLAGS=-fsanitize=address,undefined).
CFLAGS   ?= -O2 -g
ALL_CFLAGS := $(CFLAGS) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -MMD -MP -Isrc -I$(BUILD)
# capstone is linked statically: its 6 MB of relocations cost every record
# several milliseconds of dynamic loading.
LDLIBS   := -lbpf -lelf -ldw -lz -ldeflate -Wl,-Bstatic -lcapstone -Wl,-Bdynamic -liberty -lzstd -lpthread -lprotobuf-c -ljson-c
PROTOC_C ?= protoc-c

BPF_SRCS := $(wildcard src/bpf/*.bpf.c)
BPF_OBJS := $(patsubst src/bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS    := $(patsubst src/bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))

LIB_SRCS := $(filter-out src/main.c $(BPF_SRCS) src/agent/%,$(wildcard src/*/*.c))
LIB_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
MAIN_OBJ := $(BUILD)/obj/main.o

# Protobuf schemas (src/*/*.proto): protoc-c generates C into $(BUILD) at
# build time; the objects join the library.
PROTO_SRCS := $(wildcard src/*/*.proto)
PROTO_HDRS := $(patsubst src/%.proto,$(BUILD)/%.pb-c.h,$(PROTO_SRCS))
PROTO_OBJS := $(patsubst src/%.proto,$(BUILD)/obj/%.pb-c.o,$(PROTO_SRCS))
LIB_OBJS   += $(PROTO_OBJS)

# The in-process agent: a shared object loaded into the target, libc only.
# Its slow path runs in the middle of arbitrary code: no vector registers
# (-mgeneral-regs-only), no calls the compiler invents (memset loops). The
# user's CFLAGS/LDFLAGS are not used: a sanitizer runtime must not be
# preloaded into the programs we trace.
AGENT_SRCS := $(wildcard src/agent/*.c) $(wildcard src/agent/*_$(shell uname -m).S)
AGENT_OBJS := $(patsubst src/agent/%,$(BUILD)/agent/%.o,$(AGENT_SRCS))
AGENT_LIB  := $(BUILD)/libasynctrace-agent.so
AGENT_CFLAGS := -O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -MMD -MP -Isrc \
		-fPIC -fvisibility=hidden -fno-tree-loop-distribute-patterns

UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_BIN  := $(BUILD)/unit-tests
CODEC_BENCH := $(BUILD)/codec-bench
# Synthetic traces for the golden tests (tests/golden/README.md).
GOLDEN_FIXTURES := $(BUILD)/make-fixtures
# Synthetic traces of any size, truth known by construction (tests/e2e/t_scale.py, bench/scale.py).
GEN_TRACE := $(BUILD)/gen-trace

.SECONDARY:
.PHONY: all deps demo test unit e2e targets bench bench-codec clean sanitize-test
all: $(BUILD)/asynctrace $(AGENT_LIB) $(GOLDEN_FIXTURES) $(GEN_TRACE)

deps:
	@./scripts/install-deps.sh
	@mkdir -p $(BUILD) && touch $(DEPS_STAMP)

# A plain `make` on a machine without the packages says what to do.
DEPS_STAMP := $(BUILD)/.deps-checked
$(DEPS_STAMP): scripts/install-deps.sh
	@./scripts/install-deps.sh --check || { echo "asynctrace: run 'make deps' (as root) to install them" >&2; exit 1; }
	@mkdir -p $(@D) && touch $@

$(BUILD)/vmlinux.h: | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/bpf/%.bpf.o: src/bpf/%.bpf.c $(BUILD)/vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) -target bpf -g -O2 -D__TARGET_ARCH_$(ARCH) -Wall -Werror -MMD -MP \
		-I$(BUILD) -Isrc -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

# Every C object may include a skeleton: generate them first.
$(BUILD)/obj/%.o: src/%.c | $(SKELS) $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# Both outputs come from one protoc-c run (a grouped pattern rule).
$(BUILD)/%.pb-c.c $(BUILD)/%.pb-c.h: src/%.proto | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(PROTOC_C) --proto_path=src --c_out=$(BUILD) $<

# Generated code is not ours to fix: a newer protoc-c's warnings must not
# break the build, so no -Werror here.
$(PROTO_OBJS): $(BUILD)/obj/%.pb-c.o: $(BUILD)/%.pb-c.c
	@mkdir -p $(@D)
	$(CC) $(filter-out -Werror,$(ALL_CFLAGS)) -c $< -o $@

# Objects that include generated protobuf headers.
$(BUILD)/obj/export/perfetto.o $(BUILD)/obj/export/pprof.o: | $(PROTO_HDRS)

$(BUILD)/agent/buffers.c.o: AGENT_CFLAGS += -mgeneral-regs-only

$(BUILD)/agent/%.c.o: src/agent/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(AGENT_CFLAGS) -c $< -o $@

$(BUILD)/agent/%.S.o: src/agent/%.S | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(AGENT_CFLAGS) -c $< -o $@

$(AGENT_LIB): $(AGENT_OBJS)
	$(CC) -shared -Wl,-z,now -Wl,-z,noexecstack -Wl,--no-undefined -o $@ $^

$(BUILD)/libasynctrace.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/asynctrace: $(MAIN_OBJ) $(BUILD)/libasynctrace.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(UNIT_BIN): $(UNIT_SRCS) $(BUILD)/libasynctrace.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -Itests/unit -o $@ $(UNIT_SRCS) $(BUILD)/libasynctrace.a $(LDLIBS)

$(GOLDEN_FIXTURES): tests/golden/make_fixtures.c $(BUILD)/libasynctrace.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libasynctrace.a $(LDLIBS)

$(GEN_TRACE): tests/tools/gen_trace.c tests/tools/gen_options.c tests/tools/gen_options.h $(BUILD)/libasynctrace.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -Itests/tools -o $@ $(filter %.c,$^) $(BUILD)/libasynctrace.a $(LDLIBS)

$(CODEC_BENCH): bench/codec_bench.c $(BUILD)/libasynctrace.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libasynctrace.a $(LDLIBS)

# Test targets (Rust crates built offline against Debian's crate registry, C programs).
targets:
	@$(MAKE) --no-print-directory -C tests/targets BUILD=$(abspath $(BUILD))/targets

unit: $(UNIT_BIN)
	ASYNCTRACE_BUILD=$(abspath $(BUILD)) $(UNIT_BIN)

demo: deps
	@$(MAKE) --no-print-directory all targets
	@./scripts/demo.sh $(BUILD)

test: deps
	@$(MAKE) --no-print-directory all targets $(UNIT_BIN)
	@./tests/run.sh $(BUILD)

# The tests against an ASan+UBSan build beside the plain one (the agent is
# never sanitized: it is preloaded into the programs we trace). The Rust
# targets are the plain build's.
SAN_BUILD ?= build-asan
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
sanitize-test: deps
	@$(MAKE) --no-print-directory targets
	@mkdir -p $(SAN_BUILD) && touch $(SAN_BUILD)/.deps-checked && ln -sfn $(abspath $(BUILD))/targets $(SAN_BUILD)/targets
	@$(MAKE) --no-print-directory BUILD=$(SAN_BUILD) CFLAGS="$(SAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" \
		all $(SAN_BUILD)/unit-tests
	@./tests/run-sanitized.sh $(SAN_BUILD)

bench: deps
	@$(MAKE) --no-print-directory all targets
	@./bench/run.sh $(BUILD)

# The trace format's encoding on freshly recorded traces (root).
bench-codec: deps
	@$(MAKE) --no-print-directory all targets $(CODEC_BENCH)
	@./bench/codec.sh $(BUILD)

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(BPF_OBJS:.o=.d) $(AGENT_OBJS:.o=.d)
include tests/fuzz/fuzz.mk
