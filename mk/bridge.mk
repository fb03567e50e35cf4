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
