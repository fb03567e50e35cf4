# pyext/build.mk -- the Python extension xichan._xichan and the Python tests.
# Included by the top Makefile (`-include pyext/build.mk`).
#
#   make                          also builds pyext/xichan/_xichan$(EXT_SUFFIX) for PYTHON
#   make pyext PYTHON=.../python3.12   another Python's extension, side by side
#   make pycheck                  builds for and tests on every Python >= 3.11 found
#   make pytypes                  mypy --strict of the package (its stubs and
#                                 hints) and of tests/python/typing_usage.py,
#                                 then stubtest: the stubs against the modules
#
# PYTHON defaults to the newest of python3.13/3.12/3.11 (scripts/pythons
# looks on PATH and in pyenv, skipping pyenv shims that do not run).  The
# extension links libxichan statically ($(BUILD)/lib/libxichan.a, built with
# -fPIC), so the .so needs only libmsgpackc at run time.
#
# PYEXT_EXTRA_LIBS adds objects or libraries to the link (development only).

PYTHONS_SCRIPT := scripts/pythons
ifeq ($(origin PYTHON),undefined)
PYTHON := $(firstword $(shell $(PYTHONS_SCRIPT) 2>/dev/null) \
            $(foreach v,13 12 11,$(shell command -v python3.$(v) 2>/dev/null)) python3)
endif

PY_EXT_SUFFIX := $(shell $(PYTHON) -c 'import sysconfig;print(sysconfig.get_config_var("EXT_SUFFIX"))' 2>/dev/null)
PY_INCLUDE    := $(shell $(PYTHON) -c 'import sysconfig;print(sysconfig.get_paths()["include"])' 2>/dev/null)
PYEXT_SRCS    := $(wildcard pyext/_xichan/*.c)
PYEXT_HDRS    := $(wildcard pyext/_xichan/*.h) libclient/include/xichan.h
PYEXT_SO      := pyext/xichan/_xichan$(PY_EXT_SUFFIX)
PYEXT_OBJDIR  := $(BUILD)/pyext/$(subst .,_,$(basename $(PY_EXT_SUFFIX)))
PYEXT_OBJS    := $(PYEXT_SRCS:pyext/_xichan/%.c=$(PYEXT_OBJDIR)/%.o)
PYEXT_EXTRA_LIBS ?=

# Python's headers trip -Wmissing-prototypes on nothing of ours, but PyInit_*
# has no prototype and the 3.13 xid.c declarations mirror CPython's own; the
# rest of the project's warnings stay errors.
PYEXT_WARN   := $(filter-out -Wmissing-prototypes -Wstrict-prototypes,$(WARN)) \
                -Wno-missing-field-initializers -Wno-cast-function-type
PYEXT_CFLAGS := -std=c11 $(OPT) $(PYEXT_WARN) -fPIC -fvisibility=hidden -pthread -MMD -MP \
                -D_GNU_SOURCE -Ilibclient/include -Ilibclient -I$(PY_INCLUDE) $(CFLAGS)

.PHONY: pyext pycheck pytypes pyext-clean

all: pyext
check: pycheck pytypes

ifneq ($(strip $(SANITIZE)),)
# A sanitizer build cannot be loaded by a normal Python, and the in-tree
# module belongs to the normal build: leave it alone.
pyext pycheck pytypes:
	@echo "  SKIP    $@ (sanitizer build)"
# The integration tests that hand items to Python (ctl_cmds) use the normal
# build's extension if there is one, and report a skip otherwise.
TEST_PYTHON = $(if $(wildcard $(PYEXT_SO)),$(PYTHON))
else
pyext: $(PYEXT_SO)

# The integration tests that hand items to Python (ctl_cmds) use this one.
TEST_PYTHON = $(PYTHON)
ccheck: $(PYEXT_SO)

$(PYEXT_OBJDIR)/%.o: pyext/_xichan/%.c $(PYEXT_HDRS)
	@mkdir -p $(dir $@)
	@test -n "$(PY_EXT_SUFFIX)" || { echo "pyext: $(PYTHON) does not run" >&2; exit 1; }
	$(call msg,CC,$<)
	$(Q)$(CC) $(PYEXT_CFLAGS) -c $< -o $@

# PyInit__xichan is the only symbol the module needs to export.
$(PYEXT_SO): $(PYEXT_OBJS) $(LIBA)
	$(call msg,LD,$@)
	$(Q)$(CC) -shared $(SANITIZE) -pthread $(LDFLAGS) -o $@ $(PYEXT_OBJS) $(PYEXT_EXTRA_LIBS) $(LIBA) \
		-lmsgpackc

# The Python tests, on every available Python >= 3.11 (building for each
# first).  pytest when the Python has it, else unittest.  Each Python's run
# gets its own runtime dir and namespace (tests/python/conftest.py, _env.py).
PYCHECK_PYTHONS = $(shell $(PYTHONS_SCRIPT) 2>/dev/null || echo $(PYTHON))

pycheck: $(LIBA) $(BUILD)/bin/xichand
	$(Q)set -e; pys="$(PYCHECK_PYTHONS)"; \
	test -n "$$pys" || { echo "pycheck: no Python >= 3.11 found" >&2; exit 1; }; \
	for py in $$pys; do \
		$(MAKE) --no-print-directory pyext PYTHON=$$py; \
	done; \
	for py in $$pys; do \
		echo "==> Python tests on $$py"; \
		BUILD=$(BUILD) PYTHONPATH=pyext tests/python/run.sh $$py; \
	done

# mypy runs on PYTHON (the newest: scripts/install-deps installs mypy there),
# checking for the oldest Python the package supports.
# stubtest imports the package, so it needs the extension built for PYTHON.
pytypes: $(PYEXT_SO)
	@$(PYTHON) -I -c 'import mypy' 2>/dev/null || \
		{ echo "pytypes: mypy is not installed for $(PYTHON) (run scripts/install-deps)" >&2; exit 1; }
	$(call msg,MYPY,pyext/xichan)
	$(Q)$(PYTHON) -m mypy --strict --python-version 3.11 --cache-dir=$(BUILD)/mypy \
		pyext/xichan tests/python/typing_usage.py
	$(call msg,STUBTEST,xichan)
	$(Q)cd pyext && $(PYTHON) -m mypy.stubtest xichan
endif

pyext-clean:
	rm -f pyext/xichan/_xichan*.so
	rm -rf $(BUILD)/pyext pyext/build

clean: pyext-clean

-include $(PYEXT_OBJS:.o=.d)
