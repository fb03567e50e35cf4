# mk/soak.mk -- the crash soak (tests/soak/soak.c).
# Included at the end of the Makefile (`-include mk/soak.mk`).
#
#   make soak-smoke      about 20 s and ~200 kills (a prerequisite of ccheck)
#   make soak-plant      a short soak whose consumers drop items unrecorded
#                        (XICHAN_SOAK_PLANT_LOSS): it must FAIL, with at least
#                        that many lost (a prerequisite of ccheck)
#   scripts/soak ...     any length (--seconds, --kills, ...): see soak.c
#
# Both run scripts/soak, as a user would.  The soak links the library
# without fault points ($(LIBA)), the test harness (it starts and restarts
# xichand) and reads internal.h (a marker's payload, and the heap of a
# consumer it is about to kill).

SOAK_BIN = $(BUILD)/tests/soak
SOAK_SMOKE_ARGS ?= --seconds 20 --kills 200 --interval-ms 90
SOAK_PLANT_ARGS ?= --seconds 8 --interval-ms 90
SOAK_PLANT_N ?= 5
# Python workers too (tests/soak/pyworker.py) with the in-tree extension of
# the normal build; a sanitizer build runs the C workers alone.
ifeq ($(strip $(SANITIZE)),)
SOAK_PY_ARGS = --python $(PYTHON)
SOAK_PY_DEPS = $(PYEXT_SO)
SOAK_PY_ENV =
else
SOAK_PY_ARGS =
SOAK_PY_DEPS =
SOAK_PY_ENV = XICHAN_SOAK_PYTHON=none
endif

$(SOAK_BIN): $(BUILD)/tobj/tests/soak/soak.o $(TEST_COMMON) $(LIBA)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $< $(TEST_COMMON) $(LIBA) -lmsgpackc

tests: $(SOAK_BIN)

# soak_run(args, env, outfile): scripts/soak (which gives the run its own
# runtime dir and namespace) under a hang bound; sets rc and line (the
# summary) in the recipe's shell, and prints the output indented.
soak_run = out=$$(mktemp /tmp/xichan-soak.XXXXXX); \
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL BUILD=$(BUILD) $(SOAK_PY_ENV) $(2) \
		timeout -k 5 180 scripts/soak $(1) $(SOAK_PY_ARGS) >$$out 2>&1; rc=$$?; \
	sed 's/^/   /' $$out; \
	line=$$(grep '^soak: kills=' $$out); rm -f $$out
# soak_field(name): the value of name= in $$line (empty if absent).
soak_field = $$(echo "$$line" | tr ' ' '\n' | sed -n 's/^$(1)=//p')

soak-smoke: $(SOAK_BIN) $(BUILD)/bin/xichand $(SOAK_PY_DEPS)
	@echo "== soak (smoke): $(SOAK_SMOKE_ARGS) $(SOAK_PY_ARGS)"
	$(Q)$(call soak_run,$(SOAK_SMOKE_ARGS),); \
	[ -n "$$line" ] || { echo "soak-smoke: FAILED (no summary line; exit status $$rc)"; exit 1; }; \
	for f in lost duplicated hangs unbound bad_excuses planted; do \
		v=$$(echo "$$line" | tr ' ' '\n' | sed -n "s/^$$f=//p"); \
		[ "$${v:-x}" = 0 ] || { echo "soak-smoke: FAILED ($$f=$${v:-missing}: $$line)"; exit 1; }; \
	done; \
	[ $$rc -eq 0 ] || { echo "soak-smoke: FAILED (exit status $$rc: $$line)"; exit 1; }

# The soak must be able to fail: N committed items dropped by consumers
# make it exit nonzero with lost >= N.
soak-plant: $(SOAK_BIN) $(BUILD)/bin/xichand $(SOAK_PY_DEPS)
	@echo "== soak (planted loss of $(SOAK_PLANT_N) items, must fail): $(SOAK_PLANT_ARGS)"
	$(Q)$(call soak_run,$(SOAK_PLANT_ARGS),XICHAN_SOAK_PLANT_LOSS=$(SOAK_PLANT_N)); \
	lost=$(call soak_field,lost); planted=$(call soak_field,planted); \
	[ $$rc -ne 0 ] && [ $$rc -ne 124 ] && [ $$rc -lt 128 ] || \
		{ echo "soak-plant: FAILED (the soak exited with $$rc despite the planted loss: $$line)"; exit 1; }; \
	[ "$${planted:-0}" -eq $(SOAK_PLANT_N) ] && [ "$${lost:-0}" -ge $(SOAK_PLANT_N) ] || \
		{ echo "soak-plant: FAILED (planted=$${planted:-missing} lost=$${lost:-missing}, want $(SOAK_PLANT_N) and >= $(SOAK_PLANT_N))"; exit 1; }; \
	echo "soak-plant: ok (exit status $$rc, planted=$$planted lost=$$lost)"

ccheck: soak-smoke soak-plant

.PHONY: soak-smoke soak-plant
