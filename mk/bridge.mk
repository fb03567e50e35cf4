# mk/bridge.mk -- xichan-bridge (bridge/): named queues over NATS JetStream.
# Its own source list; it links libxichan.a and nats.c (Debian libnats-dev,
# installed by scripts/install-deps).

BRIDGE_SRCS = bridge/main.c bridge/span.c bridge/ids.c bridge/status.c
BRIDGE_OBJS = $(BRIDGE_SRCS:%.c=$(BUILD)/obj/%.o)
BRIDGE_BIN  = $(BUILD)/bin/xichan-bridge

$(BRIDGE_BIN): $(BRIDGE_OBJS) $(LIBA)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $(BRIDGE_OBJS) $(LIBA) -lnats -lmsgpackc

all tests: $(BRIDGE_BIN)
tests: $(BUILD)/tests/bridge/test_ids

# The cluster test (tests/bridge/cluster.py): three namespaces, three
# bridges, a 3-node nats-server cluster on 127.0.0.1; about half a minute.
# Part of `check`, not of the sanitizer builds' `ccheck` (it drives the
# Python package of the normal build).
check: bridgecheck

bridgecheck: $(BRIDGE_BIN) $(BUILD)/bin/xichand $(BUILD)/tests/bridge/test_ids pyext
	$(Q)timeout -k 5 60 $(BUILD)/tests/bridge/test_ids
	$(Q)BUILD=$(BUILD) PYTHONPATH=pyext timeout -k 5 300 $(PYTHON) tests/bridge/cluster.py

# The recent-id table's own test (bridge/ids.c).
$(BUILD)/tests/bridge/test_ids: $(BUILD)/obj/tests/bridge/test_ids.o $(BUILD)/obj/bridge/ids.o
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^

$(BUILD)/obj/tests/bridge/%.o: CPPFLAGS_ALL += -Ibridge

.PHONY: bridgecheck

# The nats.c baseline of scripts/bench/bridge.py.
$(BUILD)/bench/nats_direct: $(BUILD)/obj/bridge/nats_direct.o
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $< -lnats

all: $(BUILD)/bench/nats_direct

# make install / uninstall also place xichan-bridge beside xichand (its
# page, man/xichan-bridge.8, goes with the others).
install: install-bridge
uninstall: uninstall-bridge
install-bridge: $(BRIDGE_BIN)
	$(Q)$(INSTALL) -d $(DESTDIR)$(BINDIR)
	$(Q)$(INSTALL) -m 0755 $(BRIDGE_BIN) $(DESTDIR)$(BINDIR)/
uninstall-bridge:
	$(Q)rm -f $(DESTDIR)$(BINDIR)/xichan-bridge
.PHONY: install-bridge uninstall-bridge
