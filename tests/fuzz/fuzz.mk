# libFuzzer harnesses of the readers of untrusted input (tests/fuzz/README.md).
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_HARNESSES="trace cat"]  fuzz each for N seconds
#   make fuzz-replay                                         each once over its corpus
# Included by the top Makefile: BUILD, LIB_SRCS, PROTO_*, LDLIBS come from it.

FUZZ_CC        ?= clang
FUZZ_SECONDS   ?= 60
FUZZ_TIMEOUT   ?= 10
FUZZ_NICE      ?= nice -n 19
FUZZ_DIR       := $(BUILD)/fuzz
FUZZ_HARNESSES ?= trace elf zcore uftrace cat patch
FUZZ_BINS      := $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_HARNESSES))

# UBSan's reports abort, so libFuzzer keeps the input like any crash.
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -g -O1 -fno-omit-frame-pointer -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -MMD -MP \
	       -Isrc -I$(BUILD)

# The readers need no BPF skeleton: the library without the files that
# include one (and without the subcommands, which the harnesses replace).
FUZZ_SKEL_USERS := $(shell grep -l '\.skel\.h' $(LIB_SRCS) 2>/dev/null)
FUZZ_LIB_SRCS   := $(filter-out src/cmd/% $(FUZZ_SKEL_USERS),$(LIB_SRCS))
FUZZ_LIB_OBJS   := $(patsubst src/%.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_LIB_SRCS)) \
		   $(patsubst src/%.proto,$(FUZZ_DIR)/obj/%.pb-c.o,$(PROTO_SRCS))
FUZZ_LIB        := $(FUZZ_DIR)/libasynctrace-fuzz.a
FUZZ_COMMON     := $(FUZZ_DIR)/fuzz_common.o

.PHONY: fuzz fuzz-build fuzz-replay

$(FUZZ_DIR)/obj/%.o: src/%.c | $(PROTO_HDRS) $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c $< -o $@

# Generated code: not ours to warn about (as in the top Makefile).
$(FUZZ_DIR)/obj/%.pb-c.o: $(BUILD)/%.pb-c.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(filter-out -Werror,$(FUZZ_CFLAGS)) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_COMMON): tests/fuzz/fuzz_common.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c $< -o $@

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_COMMON) $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Itests/fuzz -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< $(FUZZ_COMMON) \
		$(FUZZ_LIB) $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

# The profiled-trace seed's writer (tests/fuzz/README.md: seeds).
$(FUZZ_DIR)/seed-profiled: tests/fuzz/seed_profiled.c $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -o $@ $< $(FUZZ_LIB) $(LDLIBS)

# New inputs go to $(FUZZ_DIR)/corpus/H (tests/fuzz/corpus/H stays the
# seeds), crashes to $(FUZZ_DIR)/artifacts/H/. Every harness runs; the
# status fails if any found something.
fuzz: $(FUZZ_BINS)
	@failed=0; for h in $(FUZZ_HARNESSES); do \
		mkdir -p $(FUZZ_DIR)/corpus/$$h $(FUZZ_DIR)/artifacts/$$h; \
		dict=; [ -f tests/fuzz/$$h.dict ] && dict=-dict=tests/fuzz/$$h.dict; \
		echo "fuzz: $$h for $(FUZZ_SECONDS) s (log: $(FUZZ_DIR)/$$h.log)"; \
		$(FUZZ_NICE) $(FUZZ_DIR)/fuzz_$$h -max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_TIMEOUT) \
			-print_final_stats=1 $$dict -artifact_prefix=$(FUZZ_DIR)/artifacts/$$h/ \
			$(FUZZ_DIR)/corpus/$$h tests/fuzz/corpus/$$h > $(FUZZ_DIR)/$$h.log 2>&1 \
			|| { failed=$$((failed + 1)); echo "fuzz: $$h FAILED: see $(FUZZ_DIR)/$$h.log"; }; \
		grep -E '^#[0-9]+.*(DONE|pulse|NEW)' $(FUZZ_DIR)/$$h.log | tail -1; \
		grep -E '^stat::(number_of_executed_units|peak_rss_mb)' $(FUZZ_DIR)/$$h.log; \
	done; [ $$failed -eq 0 ]

# Each harness once over its seeds and kept reproducers: a regression
# test, seconds in all.
fuzz-replay: $(FUZZ_BINS)
	@passed=0; failed=0; for h in $(FUZZ_HARNESSES); do \
		if $(FUZZ_DIR)/fuzz_$$h -runs=0 $$(find tests/fuzz/corpus/$$h -type f | sort) \
			> $(FUZZ_DIR)/replay-$$h.log 2>&1; then \
			passed=$$((passed + 1)); echo "fuzz-replay: $$h: ok"; \
		else \
			failed=$$((failed + 1)); echo "fuzz-replay: $$h: FAILED (see $(FUZZ_DIR)/replay-$$h.log)"; \
		fi; \
	done; echo "$$passed passed, $$failed failed"; [ $$failed -eq 0 ]

-include $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_COMMON:.o=.d) $(FUZZ_BINS:=.d)
