# mk/ctl.mk -- xichanctl's command files (broker/ctl/*.c).
# Included at the end of the Makefile (`-include mk/ctl.mk`).
#
# broker/*.c other than xichanctl.c are xichand's, so xichanctl's own
# sources sit one level down, where the daemon's wildcard does not reach;
# they are compiled by the common $(BUILD)/obj/%.o rule and linked into
# xichanctl alone.  The link rule's prerequisites were expanded before this
# fragment was read, hence the extra prerequisite line; its recipe reads
# $(CTL_OBJS) when it runs, and so sees the objects appended here.

CTL_CMD_SRCS = $(wildcard broker/ctl/*.c)
CTL_CMD_OBJS = $(CTL_CMD_SRCS:%.c=$(BUILD)/obj/%.o)
CTL_OBJS    += $(CTL_CMD_OBJS)

$(BUILD)/bin/xichanctl: $(CTL_CMD_OBJS)
