# mk/fuzz.mk -- libFuzzer targets (tests/fuzz/fuzz_*.c), built with clang.
# Included at the end of the Makefile (`-include mk/fuzz.mk`).
#
#   make fuzz            build/fuzz/fuzz_{segment,proto,bufitem,msgpack}
#   make fuzz-run        each target for FUZZ_SECONDS (default 20) in turn
#   make fuzz-smoke      each target for 5 s (a prerequisite of ccheck, with
#                        fuzz-repro; clang missing: an error in CI, else a skip)
#   make fuzz-seeds      regenerate the seed corpus in tests/fuzz/corpus/
#   make fuzz-repro      replay the minimized reproducers of fixed bugs
#                        (tests/fuzz/repro/); FAILS if any crashes again
#
# Each target compiles the libclient sources itself (no fault points,
# -fsanitize=fuzzer,address,undefined), links msgpack-c, and reads the
# committed seeds in tests/fuzz/corpus/<target>/; what it discovers goes to
# build/fuzz/corpus/<target>/ and crashes to build/fuzz/artifacts/, so the
# tree holds only the tiny seeds.  A run fails (exit status != 0) on any
# crash, leak, sanitizer report, timeout (FUZZ_TIMEOUT, default 10 s per
# input) or oracle failure; the reproducer is named in its output.
# FUZZ_FLAGS adds libFuzzer options (e.g. FUZZ_FLAGS=-jobs=2).
#
# Decision: the fuzz build does not follow BUILD (make asan runs ccheck with
# BUILD=build-asan): the fuzzers are sanitized already, so one copy in
# build/fuzz serves every build, and the sanitizer build does not rerun the
# smoke.

FUZZ_CC      ?= clang
FUZZ_DIR     ?= build/fuzz
FUZZ_SECONDS ?= 20
FUZZ_TIMEOUT ?= 10
FUZZ_FLAGS   ?=
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES   := $(FUZZ_SRCS:tests/fuzz/%.c=%)
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_DIR)/%)
FUZZ_LIBOBJS := $(LIB_SRCS:libclient/%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -O1 -g $(FUZZ_SAN) -D_GNU_SOURCE -Ilibclient/include -Ilibclient \
                -Wall -Wextra -Werror -Wno-unused-parameter -pthread -MMD -MP
# Options shared by fuzz-run and fuzz-smoke.
FUZZ_RUNOPTS  = -timeout=$(FUZZ_TIMEOUT) -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1

fuzz: $(FUZZ_BINS)

$(FUZZ_DIR)/obj/%.o: libclient/%.c
	@mkdir -p $(dir $@)
	$(call msg,CC-FZ,$<)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/%: tests/fuzz/%.c $(FUZZ_LIBOBJS)
	@mkdir -p $(dir $@)
	$(call msg,FUZZ,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIBOBJS) -lmsgpackc -lm

# $(call fuzz_one,name,seconds)
define fuzz_one
	@mkdir -p $(FUZZ_DIR)/corpus/$(1) $(FUZZ_DIR)/artifacts
	@echo "== fuzz $(1) for $(2) s"
	$(Q)$(FUZZ_DIR)/$(1) $(FUZZ_RUNOPTS) $(FUZZ_FLAGS) -max_total_time=$(2) \
		-artifact_prefix=$(FUZZ_DIR)/artifacts/$(1)- \
		$(FUZZ_DIR)/corpus/$(1) tests/fuzz/corpus/$(1) 2>$(FUZZ_DIR)/$(1).log || \
		{ tail -n 60 $(FUZZ_DIR)/$(1).log; echo "fuzz: $(1) FAILED (log: $(FUZZ_DIR)/$(1).log)"; exit 1; }
	@grep -aE '^Done [0-9]+ runs' $(FUZZ_DIR)/$(1).log | sed 's/^/   /'

endef

fuzz-run: $(FUZZ_BINS)
	$(foreach t,$(FUZZ_NAMES),$(call fuzz_one,$(t),$(FUZZ_SECONDS)))

fuzz-smoke: $(FUZZ_BINS)
	$(foreach t,$(FUZZ_NAMES),$(call fuzz_one,$(t),5))

$(FUZZ_DIR)/make_seeds: tests/fuzz/make_seeds.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=c11 -O1 -D_GNU_SOURCE -Ilibclient/include -Ilibclient -o $@ $<

fuzz-seeds: $(FUZZ_DIR)/make_seeds
	$(Q)$(FUZZ_DIR)/make_seeds tests/fuzz/corpus

# Reproducers of bugs the fuzzers found, now fixed (the top of
# fuzz_segment.c says what each one was; tests/integ/corrupt_*.c guard the
# same fixes as plain tests).  Each must replay without a crash, a
# sanitizer report or an oracle failure.
fuzz-repro: $(FUZZ_DIR)/fuzz_segment
	@echo "== fuzz-repro: the reproducers of fixed bugs (tests/fuzz/repro/)"
	$(Q)bad=0; for f in tests/fuzz/repro/segment-*; do n=$$(basename $$f); \
		if $(FUZZ_DIR)/fuzz_segment $$f >$(FUZZ_DIR)/repro-$$n.log 2>&1; \
		then echo "   $$n: ok"; \
		else bad=1; echo "   $$n: CRASHED: $$(grep -aE 'SUMMARY|runtime error|fuzz_segment:' $(FUZZ_DIR)/repro-$$n.log | head -1) (log: $(FUZZ_DIR)/repro-$$n.log)"; fi; \
	done; exit $$bad

# The smoke and the reproducers run with the C checks when clang is there
# (and not again in the sanitizer build, whose ccheck reuses these
# binaries' results).  Without clang: in CI (CI=true) an error -- CI must
# not pass by running less; elsewhere a skip, said on the output and counted
# in scripts/test-all's closing line (XICHAN_SKIP_LOG).  A clang without
# libFuzzer fails the build of the fuzzers, so it is an error everywhere.
FUZZ_IN_CI := $(filter true 1,$(CI))
ifeq ($(SANITIZE),)
ifneq ($(shell command -v $(FUZZ_CC) 2>/dev/null),)
ccheck: fuzz-smoke fuzz-repro
else ifneq ($(FUZZ_IN_CI),)
ccheck: fuzz-missing
else
ccheck: fuzz-skipped
endif
endif

fuzz-missing:
	@echo "fuzz: CI: $(FUZZ_CC) is not installed, so the fuzz smoke and fuzz-repro cannot run (scripts/install-deps installs clang and libclang-rt-dev)" >&2
	@exit 1

fuzz-skipped:
	@echo "== fuzz: SKIPPED: $(FUZZ_CC) is not installed (the smoke and fuzz-repro did not run)"
	@if [ -n "$$XICHAN_SKIP_LOG" ]; then \
		echo "fuzz: $(words $(FUZZ_NAMES) fuzz-repro) skipped of $(words $(FUZZ_NAMES) fuzz-repro) (no $(FUZZ_CC))" >>"$$XICHAN_SKIP_LOG"; fi

.PHONY: fuzz fuzz-run fuzz-smoke fuzz-seeds fuzz-repro fuzz-missing fuzz-skipped

-include $(shell find $(FUZZ_DIR) -name '*.d' 2>/dev/null)
