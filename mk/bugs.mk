# mk/bugs.mk -- reproducers of known bugs (tests/bugs/*.c).
# Included at the end of the Makefile (`-include mk/bugs.mk`).
#
#   make bugcheck     builds and runs them; each FAILS while its bug is there
#
# Each file says at its top what is wrong, where, and what passing means.
# They are not part of `make check`: move one into tests/integ/ (it uses the
# same harness and runner) when its bug is fixed, so it guards the fix.

BUG_SRCS = $(wildcard tests/bugs/*.c)
BUG_BINS = $(BUG_SRCS:tests/bugs/%.c=$(BUILD)/tests/bugs/%)

$(BUILD)/tests/bugs/%: $(BUILD)/tobj/tests/bugs/%.o $(TEST_COMMON) $(TLIBA)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $< $(TEST_COMMON) $(TLIBA) -lmsgpackc

bugcheck: $(BUG_BINS) $(BUILD)/bin/xichand
	$(Q)BUILD=$(BUILD) tests/run-integ.sh $(BUG_BINS)

.PHONY: bugcheck
