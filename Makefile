# smimp - one plain Makefile.  `make SANITIZE=1` builds under
# AddressSanitizer and UndefinedBehaviorSanitizer into build-san/.
#
# lib/ is layered, lowest first: base < formats < trust < messages <
# identity < network < mail, and cmd/ and server/ above it all; a file
# includes no header of a higher layer (README, "Code layout";
# scripts/layers.sh places each module, t/0020-layers.bats checks it).

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
SYSCONFDIR ?= $(PREFIX)/etc
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
LOGROTATEDIR ?= $(SYSCONFDIR)/logrotate.d
DESTDIR ?=

CC ?= cc
AR ?= ar
PKG_CONFIG ?= pkg-config
CFLAGS ?= -O2 -g
VERSION = 0.1.0
# make bench compares smimpd's throughput with this revision's, built
# beside it: the server before its hardening (store interface, streamed
# bodies, signed headers).
BASELINE ?= 536cd59

PKGS = libsodium jansson
# libcurl is loaded at run time by lib/remote.c: its headers only here.
CURL_PKG = libcurl
SERVER_PKGS = libmicrohttpd sqlite3 libpq gnutls libpsl
override CFLAGS += -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
	-Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral \
	-pthread -Ilib -Iserver -MMD -MP -DSMIMP_VERSION='"$(VERSION)"' \
	-ffile-prefix-map=$(CURDIR)=. \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) $(CURL_PKG) $(SERVER_PKGS))
# libsodium and jansson are linked in (STATIC_DEPS=0: as shared
# libraries): a command then starts without loading them and binding
# their symbols, a tenth of a millisecond of a 1 KiB seal or open
# (bench/small.sh).  The C library stays shared: lib/remote.c loads
# libcurl at run time.
STATIC_DEPS ?= 1
ifeq ($(STATIC_DEPS),1)
LDLIBS = -Wl,-Bstatic $(shell $(PKG_CONFIG) --libs $(PKGS)) -Wl,-Bdynamic \
	-lpthread
else
LDLIBS = $(shell $(PKG_CONFIG) --libs $(PKGS)) -lpthread
endif
SERVER_LDLIBS = $(shell $(PKG_CONFIG) --libs $(SERVER_PKGS))

ifeq ($(SANITIZE),1)
B ?= build-san
override CFLAGS += -O1 -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=address,undefined
else
B ?= build
# As Debian's packages build it: a result that must be checked, unchecked,
# fails here first.
override CFLAGS += -D_FORTIFY_SOURCE=2
endif

LIB_SRC := $(sort $(wildcard lib/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
CMD_SRC := $(sort $(wildcard cmd/*.c))
CMDS := $(notdir $(CMD_SRC:.c=))
BINS := $(CMDS:%=$(B)/bin/%)
SERVER_SRC := $(sort $(wildcard server/*.c))
SERVER_OBJ := $(SERVER_SRC:%.c=$(B)/%.o)
# The server's modules without its main, for the unit tests.
SERVER_LIB_OBJ := $(filter-out $(B)/server/smimpd.o,$(SERVER_OBJ))
BINS += $(B)/bin/smimpd
UNIT_SRC := $(sort $(wildcard t/unit/*.c))
UNITS := $(UNIT_SRC:t/unit/%.c=$(B)/t/%)
FUZZ_SRC := $(sort $(wildcard fuzz/*.c))
MANS := $(sort $(wildcard man/*.[1578]))

# The fault suites' power-loss file system needs libfuse3 (the suite
# that uses it is skipped without it).
LAZYFS := $(if $(shell $(PKG_CONFIG) --exists fuse3 && echo y),$(B)/t/lazyfs)

all: $(BINS) $(UNITS) $(B)/bench/smimp-load $(B)/bench/smimp-padding \
	$(B)/bench/smimp-start $(B)/t/failio.so $(B)/t/clockshift.so $(LAZYFS)

# The commands and smimpd alone: what install installs.
programs: $(BINS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/libsmimp.a: $(LIB_OBJ)
	$(AR) rcs $@ $^

$(B)/bin/%: $(B)/cmd/%.o $(B)/libsmimp.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(B)/libsmimp.a $(LDLIBS)

$(B)/bin/smimpd: $(SERVER_OBJ) $(B)/libsmimp.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(SERVER_OBJ) $(B)/libsmimp.a $(LDLIBS) \
		$(SERVER_LDLIBS)

$(B)/libsmimpd.a: $(SERVER_LIB_OBJ)
	$(AR) rcs $@ $^

# Unit tools of the server's modules.
$(B)/t/store $(B)/t/introserver $(B)/t/sourcetool: $(B)/t/%: $(B)/t/unit/%.o $(B)/libsmimpd.a \
		$(B)/libsmimp.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(B)/libsmimpd.a $(B)/libsmimp.a $(LDLIBS) \
		$(SERVER_LDLIBS)

$(B)/t/%: $(B)/t/unit/%.o $(B)/libsmimp.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(B)/libsmimp.a $(LDLIBS) -lz

# The fault suites' LD_PRELOAD shim: no sanitizer, whatever the build
# (it only stands between a program and the C library).
$(B)/t/failio.so: t/faults/failio.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -Wall -Wextra -Werror -fPIC -shared -o $@ $< -ldl

# The same for a clock that is off.
$(B)/t/clockshift.so: t/faults/clockshift.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -Wall -Wextra -Werror -fPIC -shared -o $@ $< -ldl

$(B)/t/lazyfs: t/faults/lazyfs.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -Wall -Wextra -Werror \
		$(shell $(PKG_CONFIG) --cflags fuse3) -o $@ $< \
		$(shell $(PKG_CONFIG) --libs fuse3)

$(B)/bench/smimp-load: $(B)/bench/load.o $(B)/libsmimp.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(B)/libsmimp.a $(LDLIBS)

# A command that does nothing, linked as the commands are (bench/small.sh).
$(B)/bench/smimp-start: $(B)/bench/start.o $(B)/libsmimp.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(B)/libsmimp.a $(LDLIBS)

$(B)/bench/smimp-padding: $(B)/bench/padding.o $(B)/libsmimp.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(B)/libsmimp.a $(LDLIBS) -lm

deps:
	@sh scripts/deps.sh

# Every suite runs on the normal build and on the sanitizer build, with
# the SQLite store; the suites that run smimpd run once more on the
# PostgreSQL store, in a cluster of their own (t/with-postgresql).
NPROC := $(shell nproc 2>/dev/null || echo 2)
check: deps
	@sh scripts/deps.sh postgresql-15 haproxy parallel debhelper lintian iproute2 \
		bash-completion zsh fish
	$(MAKE) -j$(NPROC) all
	$(MAKE) -j$(NPROC) SANITIZE=1 all
	@sh scripts/lint-man.sh $(MANS)
	@sh scripts/check.sh $(CURDIR)/build $(CURDIR)/build-san -- $(PG_SUITES)

# The fault suites (also in check, smaller) at the size of the issue
# that asked for them: 1,000 messages a round, each from a client of its
# own, on the normal build.
FAULT_SUITES := $(sort $(wildcard t/13[0-9][0-9]-fault-*.bats))
faults: deps all
	@FAULT_SCALE=1000 FAULT_CLIENTS=1000 SMIMP_BUILD=$(CURDIR)/build \
		bats --timing $(FAULT_SUITES)

# The suites that run smimpd, on the PostgreSQL store: a PostgreSQL 15
# cluster of their own (t/with-postgresql), a database for each data
# directory.  Part of check; check-postgresql runs them alone.
PG_SUITES = t/0510-attachments.bats t/0600-smimpd.bats t/0610-hostile-requests.bats \
	t/0650-store.bats t/0700-send-fetch.bats t/0750-hostile-servers.bats \
	t/0800-federation.bats t/0920-local-files.bats t/1000-revoke.bats \
	t/1030-follow.bats t/1040-notify.bats t/1050-recover.bats \
	t/1100-consent.bats t/1110-work.bats t/1120-introductions.bats \
	t/1130-lookups.bats t/1200-devices.bats t/1205-device-requests.bats \
	t/1210-device-mailbox.bats t/1220-device-clients.bats \
	t/1230-devices-end-to-end.bats t/1300-fault-kill.bats t/1310-fault-relay.bats \
	t/1400-admin.bats t/1410-metrics.bats t/1420-reload.bats \
	t/1620-receipts.bats \
	t/1610-prekeys.bats
check-postgresql: deps
	@sh scripts/deps.sh postgresql-15 parallel
	$(MAKE) -j$(NPROC) all
	@SMIMP_BUILD=$(CURDIR)/build bash t/with-postgresql \
		bats --jobs 3 --no-parallelize-within-files $(PG_SUITES)

demo: deps all
	@sh scripts/demo.sh $(CURDIR)/build/bin

demo-cluster: deps all
	@sh scripts/deps.sh postgresql-15 haproxy
	@bash scripts/demo-cluster.sh $(CURDIR)/build/bin

bench: deps all
	@sh scripts/deps.sh postgresql-15 haproxy
	@$(CURDIR)/build/bench/smimp-padding
	@bash bench/run.sh $(CURDIR)/build/bin
	@bash bench/server.sh $(CURDIR)/build/bin
	@bash bench/baseline.sh $(CURDIR)/build/bin $(BASELINE)
	@bash bench/cluster.sh $(CURDIR)/build/bin

FUZZ_SECONDS ?= 30
fuzz: deps
	@sh fuzz/run.sh $(FUZZ_SECONDS)

# The commands, their man pages and completions; smimpd's systemd unit
# (its paths made these), the sysusers.d entry of the user it runs as,
# logrotate snippet and, unless there is one, its configuration file.
install: programs
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 \
		$(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) \
		$(DESTDIR)$(FISHCOMPDIR) $(DESTDIR)$(SYSTEMDUNITDIR) \
		$(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(LOGROTATEDIR)
	install -m 0755 $(BINS) $(DESTDIR)$(BINDIR)
	for m in $(MANS); do \
		s=$${m##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s; \
		install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s; done
	install -m 0644 completions/bash/* $(DESTDIR)$(BASHCOMPDIR)
	install -m 0644 completions/zsh/* $(DESTDIR)$(ZSHCOMPDIR)
	install -m 0644 completions/fish/* $(DESTDIR)$(FISHCOMPDIR)
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		dist/smimpd.service.in >$(DESTDIR)$(SYSTEMDUNITDIR)/smimpd.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/smimpd.service
	install -m 0644 dist/smimpd.sysusers $(DESTDIR)$(SYSUSERSDIR)/smimpd.conf
	install -m 0644 dist/smimpd.logrotate $(DESTDIR)$(LOGROTATEDIR)/smimpd
	[ -e $(DESTDIR)$(SYSCONFDIR)/smimpd.conf ] || \
		install -m 0644 dist/smimpd.conf $(DESTDIR)$(SYSCONFDIR)/smimpd.conf

# What install put there; the configuration file only as installed.
uninstall:
	rm -f $(BINS:$(B)/bin/%=$(DESTDIR)$(BINDIR)/%)
	for m in $(MANS); do \
		rm -f $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m#man/}; done
	for f in completions/bash/*; do \
		rm -f $(DESTDIR)$(BASHCOMPDIR)/$${f##*/}; done
	for f in completions/zsh/*; do \
		rm -f $(DESTDIR)$(ZSHCOMPDIR)/$${f##*/}; done
	for f in completions/fish/*; do \
		rm -f $(DESTDIR)$(FISHCOMPDIR)/$${f##*/}; done
	rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/smimpd.service \
		$(DESTDIR)$(SYSUSERSDIR)/smimpd.conf \
		$(DESTDIR)$(LOGROTATEDIR)/smimpd
	! cmp -s dist/smimpd.conf $(DESTDIR)$(SYSCONFDIR)/smimpd.conf || \
		rm -f $(DESTDIR)$(SYSCONFDIR)/smimpd.conf

clean:
	rm -rf build build-san build-fuzz

.PHONY: all programs deps check check-postgresql faults demo demo-cluster \
	bench fuzz install uninstall clean
.SECONDARY:

-include $(LIB_OBJ:.o=.d) $(CMDS:%=$(B)/cmd/%.d) $(SERVER_OBJ:.o=.d) \
	$(UNITS:$(B)/t/%=$(B)/t/unit/%.d) $(B)/bench/load.d \
	$(B)/bench/padding.d $(B)/bench/start.d
