# xichan -- one plain GNU Makefile.
#
#   make            build/bin/xichand, build/bin/xichanctl, build/lib/libxichan.{so,a}
#   make check      every test suite (C unit, integration/crash)
#   make asan       the same under ASan+UBSan, in build-asan/
#   make debug      an -O0 build in build-debug/
#   make clean
#
# V=1 shows the commands.  Overrides go in config.mak (not tracked).

-include config.mak

BUILD   ?= build
CC      ?= cc
OPT     ?= -O2 -g
WARN    ?= -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter
SANITIZE ?=
CPPFLAGS_ALL = -D_GNU_SOURCE -Ilibclient/include -Ilibclient $(CPPFLAGS)
CFLAGS_ALL   = -std=c11 $(OPT) $(WARN) $(SANITIZE) -MMD -MP -pthread $(CFLAGS)
LDFLAGS_ALL  = $(SANITIZE) -pthread $(LDFLAGS)

SOVERSION = 0
SONAME    = libxichan.so.$(SOVERSION)

ifeq ($(V),1)
Q =
msg = @true
else
Q = @
msg = @printf '  %-7s %s\n' $(1) $(2);
endif

LIB_SRCS   = $(wildcard libclient/*.c)
LIB_OBJS   = $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
TLIB_OBJS  = $(LIB_SRCS:%.c=$(BUILD)/tobj/%.o)
DAEMON_SRCS = $(filter-out broker/xichanctl.c,$(wildcard broker/*.c))
DAEMON_OBJS = $(DAEMON_SRCS:%.c=$(BUILD)/obj/%.o)
CTL_OBJS   = $(BUILD)/obj/broker/xichanctl.o

UNIT_SRCS  = $(wildcard tests/unit/test_*.c)
UNIT_BINS  = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
INTEG_SRCS = $(filter-out tests/integ/harness.c,$(wildcard tests/integ/*.c))
INTEG_BINS = $(INTEG_SRCS:tests/integ/%.c=$(BUILD)/tests/integ/%)
TEST_COMMON = $(BUILD)/tobj/tests/integ/harness.o

BENCH_SRCS = $(wildcard scripts/bench/*.c)
BENCH_BINS = $(BENCH_SRCS:scripts/bench/%.c=$(BUILD)/bench/%)
DEMO_SRCS  = $(wildcard scripts/demo/*.c)
DEMO_BINS  = $(DEMO_SRCS:scripts/demo/%.c=$(BUILD)/demo/%)

LIBSO  = $(BUILD)/lib/libxichan.so
LIBA   = $(BUILD)/lib/libxichan.a
TLIBA  = $(BUILD)/lib/libxichan-test.a
BINS   = $(BUILD)/bin/xichand $(BUILD)/bin/xichanctl

all: $(LIBSO) $(LIBA) $(BINS) $(BENCH_BINS) $(DEMO_BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -fPIC -fvisibility=hidden -c $< -o $@

# Test objects: the same sources with the fault points compiled in.
$(BUILD)/tobj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call msg,CC-T,$<)
	$(Q)$(CC) $(CPPFLAGS_ALL) -DXICHAN_FAULTS $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/lib/$(SONAME): $(LIB_OBJS) libclient/libxichan.map
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=libclient/libxichan.map \
		-Wl,-z,defs $(LDFLAGS_ALL) -o $@ $(LIB_OBJS) -lmsgpackc

$(LIBSO): $(BUILD)/lib/$(SONAME)
	$(Q)ln -sf $(SONAME) $@

$(LIBA): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(TLIBA): $(TLIB_OBJS)
	@mkdir -p $(dir $@)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/xichand: $(DAEMON_OBJS) $(LIBA)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $(DAEMON_OBJS) $(LIBA) -luv -lmsgpackc

$(BUILD)/bin/xichanctl: $(CTL_OBJS) $(LIBA)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $(CTL_OBJS) $(LIBA) -lmsgpackc

$(BUILD)/bench/%: $(BUILD)/obj/scripts/bench/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIBA) -lmsgpackc

$(BUILD)/demo/%: $(BUILD)/obj/scripts/demo/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIBA) -lmsgpackc

$(BUILD)/tests/unit/%: $(BUILD)/tobj/tests/unit/%.o $(TLIBA)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $< $(TLIBA) -lcmocka -lmsgpackc

$(BUILD)/tests/integ/%: $(BUILD)/tobj/tests/integ/%.o $(TEST_COMMON) $(TLIBA)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $< $(TEST_COMMON) $(TLIBA) -lmsgpackc

tests: $(LIBSO) $(LIBA) $(BINS) $(BENCH_BINS) $(DEMO_BINS) $(UNIT_BINS) $(INTEG_BINS)

# `check` runs every suite; `ccheck` the C ones (the Python suite is added
# to `check` by pyext/build.mk).  The sanitizer builds run the C suites: the
# in-tree extension belongs to the normal build.
check: ccheck

ccheck: tests
	$(Q)scripts/check-man $(LIBSO)
	$(Q)scripts/check-contrib $(BUILD)/bin/xichand
	$(Q)BUILD=$(BUILD) tests/run-unit.sh $(UNIT_BINS)
	$(Q)BUILD=$(BUILD) XICHAN_TEST_PYTHON=$(TEST_PYTHON) tests/run-integ.sh $(INTEG_BINS)

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g" \
		SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" ccheck

# The threaded unit tests under ThreadSanitizer (the forked tests use
# process-shared locks TSan cannot follow across processes).
TSAN_TESTS = test_queue test_channel test_wait test_buffer
tsan:
	$(Q)$(MAKE) --no-print-directory BUILD=build-tsan OPT="-O1 -g" SANITIZE="-fsanitize=thread" \
		$(TSAN_TESTS:%=build-tsan/tests/unit/%)
	$(Q)TSAN_OPTIONS=halt_on_error=1 tests/run-unit.sh $(TSAN_TESTS:%=build-tsan/tests/unit/%)

# Every unit test under valgrind memcheck.
valgrind: tests
	$(Q)XICHAN_UNIT_WRAP="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
		tests/run-unit.sh $(UNIT_BINS)

debug:
	$(Q)$(MAKE) --no-print-directory BUILD=build-debug OPT="-O0 -g3" all tests

clean:
	rm -rf build build-asan build-debug build-tsan

.PHONY: all tests check ccheck asan tsan valgrind debug clean
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# The Python extension and its tests live in their own fragment.
-include pyext/build.mk
-include mk/fuzz.mk
-include mk/soak.mk
-include mk/install.mk
-include mk/ctl.mk
-include mk/bench.mk
