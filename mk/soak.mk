# mk/soak.mk -- the crash soak (tests/soak/soak.c).
# Included at the end of the Makefile (`-include mk/soak.mk`).
#
#   make soak-smoke      about 20 s and ~200 kills (a prerequisite of ccheck)
#   scripts/soak ...     any length (--seconds, --kills, ...): see soak.c
#
# The soak links the library without fault points ($(LIBA)), the test
# harness (it starts and restarts xichand) and reads internal.h (a marker's
# payload, and the heap of a consumer it is about to kill).

SOAK_BIN = $(BUILD)/tests/soak
SOAK_SMOKE_ARGS ?= --seconds 20 --kills 200 --interval-ms 90
# Python workers too (tests/soak/pyworker.py) with the in-tree extension of
# the normal build; a sanitizer build runs the C workers alone.
ifeq ($(strip $(SANITIZE)),)
SOAK_PY_ARGS = --python $(PYTHON)
SOAK_PY_DEPS = $(PYEXT_SO)
endif

$(SOAK_BIN): $(BUILD)/tobj/tests/soak/soak.o $(TEST_COMMON) $(LIBA)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $< $(TEST_COMMON) $(LIBA) -lmsgpackc

tests: $(SOAK_BIN)

# Its own runtime dir and namespace, like tests/run-integ.sh gives a test.
soak-smoke: $(SOAK_BIN) $(BUILD)/bin/xichand $(SOAK_PY_DEPS)
	@echo "== soak (smoke): $(SOAK_SMOKE_ARGS) $(SOAK_PY_ARGS)"
	$(Q)out=$$(mktemp /tmp/xichan-soak.XXXXXX); \
	env -u XICHAN_RUNTIME_DIR XICHAN_NAME=soak$$$$ XICHAN_DAEMON=$(BUILD)/bin/xichand XICHAN_AUTOSTART=0 \
		PYTHONPATH=$(CURDIR)/pyext timeout -k 5 180 $(SOAK_BIN) $(SOAK_SMOKE_ARGS) $(SOAK_PY_ARGS) \
		>$$out 2>&1; rc=$$?; \
	sed 's/^/   /' $$out; \
	line=$$(grep '^soak: kills=' $$out); rm -f $$out; \
	echo "$$line" | awk '{ for (i = 2; i <= NF; i++) { split($$i, kv, "="); v[kv[1]] = kv[2] } \
		bad = v["lost"] + v["duplicated"] + v["hangs"]; \
		if (v["kills"] == "" || bad > 0) exit 1 }' || { echo "soak-smoke: FAILED ($$line)"; exit 1; }; \
	[ $$rc -eq 0 ] || { echo "soak-smoke: FAILED (exit status $$rc)"; exit 1; }

ccheck: soak-smoke

.PHONY: soak-smoke
