# mk/install.mk -- make install / make uninstall.
# Included at the end of the Makefile (`-include mk/install.mk`).
#
#   make install   [PREFIX=/usr/local] [DESTDIR=]
#   make uninstall [PREFIX=/usr/local] [DESTDIR=]
#
# installs, under $(DESTDIR)$(PREFIX):
#   bin/xichand, bin/xichanctl
#   lib/libxichan.so.0 (+ the libxichan.so symlink), lib/libxichan.a
#   include/xichan.h
#   lib/pkgconfig/xichan.pc         from mk/xichan.pc.in, prefix filled in
#   share/man/man{1,3,7,8}/...      the pages of man/, aliases kept as symlinks
#   lib/systemd/system/xichand@.service   from scripts/contrib/xichand@.service.in,
#                                   ExecStart= in $(BINDIR)
#   lib/tmpfiles.d/xichan.conf      /run/xichan for the service
#   share/bash-completion/completions/xichanctl
# BINDIR, LIBDIR, INCLUDEDIR, MANDIR, PKGCONFIGDIR, SYSTEMDUNITDIR,
# TMPFILESDIR and BASHCOMPDIR override single places (e.g.
# LIBDIR=/usr/lib/x86_64-linux-gnu on a multiarch Debian,
# SYSTEMDUNITDIR=/etc/systemd/system).  systemd reads units and tmpfiles.d
# snippets under /usr/local/lib too; installing them enables nothing.
#
# Decisions.  DESTDIR is for staging (packages, tests): it never appears in
# an installed file, and nothing runs ldconfig then -- the package manager's
# trigger does; with an empty DESTDIR, ldconfig refreshes the cache when it
# can (root), so `cc ... -lxichan` programs find the library at once.
# uninstall removes exactly the files install writes and leaves the
# directories, which other packages share.  The library's autostart finds
# xichand as ../bin/xichand from the library's directory, which this layout
# keeps (libclient/client.c).

PREFIX       ?= /usr/local
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
MANDIR       ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
TMPFILESDIR  ?= $(PREFIX)/lib/tmpfiles.d
BASHCOMPDIR  ?= $(PREFIX)/share/bash-completion/completions
INSTALL      ?= install

XICHAN_VERSION := $(shell sed -n 's/^\#define XICHAN_VERSION_MAJOR //p' libclient/include/xichan.h).$(shell \
                    sed -n 's/^\#define XICHAN_VERSION_MINOR //p' libclient/include/xichan.h)
MAN_PAGES     = $(wildcard man/*.[1-8])
# msgpack-c's own pkg-config name: msgpack-c from version 6, msgpack before
# (Debian 12); xichan.pc requires it privately (static links need it).
MSGPACK_PC   := $(shell pkg-config --exists msgpack-c 2>/dev/null && echo msgpack-c || echo msgpack)
# Paths in the .pc file are relative to ${prefix} when they lie under it,
# so that a relocated tree (PKG_CONFIG_SYSROOT_DIR, --define-prefix) works.
pc_rel        = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))

install: $(BUILD)/lib/$(SONAME) $(LIBSO) $(LIBA) $(BINS)
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(foreach s,1 3 7 8,$(DESTDIR)$(MANDIR)/man$(s)) \
		$(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(BASHCOMPDIR)
	$(Q)sed -e 's|@bindir@|$(BINDIR)|g' scripts/contrib/xichand@.service.in \
		>'$(DESTDIR)$(SYSTEMDUNITDIR)/xichand@.service.tmp'
	$(Q)chmod 0644 '$(DESTDIR)$(SYSTEMDUNITDIR)/xichand@.service.tmp'
	$(Q)mv -f '$(DESTDIR)$(SYSTEMDUNITDIR)/xichand@.service.tmp' '$(DESTDIR)$(SYSTEMDUNITDIR)/xichand@.service'
	$(Q)$(INSTALL) -m 0644 scripts/contrib/xichan.conf $(DESTDIR)$(TMPFILESDIR)/xichan.conf
	$(Q)$(INSTALL) -m 0644 scripts/contrib/xichanctl.bash $(DESTDIR)$(BASHCOMPDIR)/xichanctl
	$(Q)$(INSTALL) -m 0755 $(BINS) $(DESTDIR)$(BINDIR)/
	$(Q)$(INSTALL) -m 0755 $(BUILD)/lib/$(SONAME) $(DESTDIR)$(LIBDIR)/$(SONAME)
	$(Q)ln -sfn $(SONAME) $(DESTDIR)$(LIBDIR)/libxichan.so
	$(Q)$(INSTALL) -m 0644 $(LIBA) $(DESTDIR)$(LIBDIR)/libxichan.a
	$(Q)$(INSTALL) -m 0644 libclient/include/xichan.h $(DESTDIR)$(INCLUDEDIR)/xichan.h
	$(Q)sed -e 's|@prefix@|$(PREFIX)|g' -e 's|@libdir@|$(call pc_rel,$(LIBDIR))|g' \
		-e 's|@includedir@|$(call pc_rel,$(INCLUDEDIR))|g' -e 's|@version@|$(XICHAN_VERSION)|g' \
		-e 's|@msgpack_pc@|$(MSGPACK_PC)|g' \
		mk/xichan.pc.in >$(DESTDIR)$(PKGCONFIGDIR)/xichan.pc.tmp
	$(Q)chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/xichan.pc.tmp
	$(Q)mv -f $(DESTDIR)$(PKGCONFIGDIR)/xichan.pc.tmp $(DESTDIR)$(PKGCONFIGDIR)/xichan.pc
	@# An alias page stays a symlink to its page (same section, same dir).
	$(Q)for f in $(MAN_PAGES); do \
		d=$(DESTDIR)$(MANDIR)/man$${f##*.}; \
		if [ -L "$$f" ]; then ln -sfn "$$(readlink "$$f")" "$$d/$${f##*/}" || exit 1; \
		else $(INSTALL) -m 0644 "$$f" "$$d/" || exit 1; fi; \
	done
	$(Q)if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then \
		ldconfig; fi

uninstall:
	$(call msg,RM,$(DESTDIR)$(PREFIX))
	$(Q)rm -f $(DESTDIR)$(BINDIR)/xichand $(DESTDIR)$(BINDIR)/xichanctl \
		$(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libxichan.so \
		$(DESTDIR)$(LIBDIR)/libxichan.a $(DESTDIR)$(INCLUDEDIR)/xichan.h \
		$(DESTDIR)$(PKGCONFIGDIR)/xichan.pc '$(DESTDIR)$(SYSTEMDUNITDIR)/xichand@.service' \
		$(DESTDIR)$(TMPFILESDIR)/xichan.conf $(DESTDIR)$(BASHCOMPDIR)/xichanctl
	$(Q)for f in $(MAN_PAGES); do rm -f "$(DESTDIR)$(MANDIR)/man$${f##*.}/$${f##*/}"; done

.PHONY: install uninstall
