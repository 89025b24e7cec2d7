#!/usr/bin/env bats
# make install into a DESTDIR: the commands, man pages, completions,
# smimpd's systemd unit, logrotate snippet and configuration land where
# they belong, with the paths they were made for; make uninstall takes
# them away again, but a configuration file that was changed.

load helper

setup() {
	common_setup
	ROOT=$BATS_TEST_TMPDIR/root
}

# inst TARGET: make TARGET of the build under test into $ROOT, for /usr
# as a distribution would.
inst() {
	local san=
	[ "${SMIMP_BUILD##*/}" = build-san ] && san=SANITIZE=1
	make -s -C "$REPO" "$1" B="$SMIMP_BUILD" $san DESTDIR="$ROOT" \
		PREFIX=/usr SYSCONFDIR=/etc SYSTEMDUNITDIR=/lib/systemd/system
}

@test "make install puts every file in its place, make uninstall removes them" {
	run -0 inst install
	for f in "$SMIMP_BUILD"/bin/*; do
		c=${f##*/}
		[ -x "$ROOT/usr/bin/$c" ] || { echo "no $c"; false; }
		[ "$(stat -c %a "$ROOT/usr/bin/$c")" = 755 ]
		m=$ROOT/usr/share/man/man1/$c.1
		[ "$c" = smimpd ] && m=$ROOT/usr/share/man/man8/smimpd.8
		[ -f "$m" ] || { echo "no $m"; false; }
		[ -f "$ROOT/usr/share/bash-completion/completions/$c" ]
		[ -f "$ROOT/usr/share/zsh/site-functions/_$c" ]
		[ -f "$ROOT/usr/share/fish/vendor_completions.d/$c.fish" ]
	done
	for m in "$REPO"/man/*.[1578]; do
		cmp "$m" "$ROOT/usr/share/man/man${m##*.}/${m##*/}"
	done
	run -0 "$ROOT/usr/bin/smimpd" --version
	[ "$output" = "smimpd 0.1.0" ]
	# Nothing installed names the tree it was built in.
	run -1 grep -rlF "$REPO" "$ROOT"
	# The unit, made for these paths.
	unit=$ROOT/lib/systemd/system/smimpd.service
	[ "$(stat -c %a "$unit")" = 644 ]
	grep -qx 'ExecStart=/usr/bin/smimpd -d -f /etc/smimpd.conf' "$unit"
	grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$unit"
	# No placeholder left (the @ of systemd's syscall groups stays).
	! grep -qE '@[A-Z]+@' "$unit" || false
	cmp "$REPO/dist/smimpd.logrotate" "$ROOT/etc/logrotate.d/smimpd"
	cmp "$REPO/dist/smimpd.conf" "$ROOT/etc/smimpd.conf"
	# The configuration shipped is one smimpd takes.
	run -0 "$ROOT/usr/bin/smimpd" -n -f "$ROOT/etc/smimpd.conf"
	# Installed again: a configuration changed meanwhile stays.
	echo 'max-message 1000' >>"$ROOT/etc/smimpd.conf"
	run -0 inst install
	grep -qx 'max-message 1000' "$ROOT/etc/smimpd.conf"
	# Uninstalled: nothing left but that configuration.
	run -0 inst uninstall
	run -0 find "$ROOT" -type f
	[ "$output" = "$ROOT/etc/smimpd.conf" ]
	rm "$ROOT/etc/smimpd.conf"
	run -0 inst install
	run -0 inst uninstall
	run -0 find "$ROOT" -type f
	[ -z "$output" ]
}

@test "the user the unit runs as is made by systemd-sysusers from what make install put there" {
	command -v systemd-sysusers >/dev/null || skip "no systemd-sysusers"
	run -0 inst install
	unit=$ROOT/lib/systemd/system/smimpd.service
	user=$(sed -n 's/^User=//p' "$unit")
	group=$(sed -n 's/^Group=//p' "$unit")
	state=/var/lib/$(sed -n 's/^StateDirectory=//p' "$unit")
	[ -n "$user" ]
	cmp "$REPO/dist/smimpd.sysusers" "$ROOT/usr/lib/sysusers.d/smimpd.conf"
	[ "$(stat -c %a "$ROOT/usr/lib/sysusers.d/smimpd.conf")" = 644 ]
	# The data directory the configuration names is its home.
	grep -qx "data $state" "$ROOT/etc/smimpd.conf"
	run -0 systemd-sysusers --root="$ROOT"
	run -0 grep "^$user:" "$ROOT/etc/passwd"
	IFS=: read -r _ _ uid gid _ home shell <<<"$output"
	[ "$home" = "$state" ]
	[ "$uid" -lt 1000 ]
	[ "$shell" = /usr/sbin/nologin ] || [ "$shell" = /sbin/nologin ]
	run -0 grep "^$group:" "$ROOT/etc/group"
	[ "$(cut -d: -f3 <<<"$output")" = "$gid" ]
}

@test "the systemd unit is sandboxed: systemd-analyze security finds it OK" {
	command -v systemd-analyze >/dev/null || skip "no systemd-analyze"
	run -0 inst install
	run -0 systemd-analyze security --offline=yes --no-pager \
		"$ROOT/lib/systemd/system/smimpd.service"
	echo "$output" | tail -1
	# "Overall exposure level for smimpd.service: 1.1 OK"
	[[ "${lines[-1]}" =~ exposure\ level\ for\ smimpd.service:\ ([0-9]+)\.([0-9]) ]]
	[ "${BASH_REMATCH[1]}" -lt 2 ]
	for s in 'User=smimpd' 'StateDirectory=smimpd' 'ProtectSystem=strict' \
	    'PrivateTmp=yes' 'NoNewPrivileges=yes' 'SystemCallFilter=@system-service' \
	    'CapabilityBoundingSet=' 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX'; do
		grep -qx "$s" "$ROOT/lib/systemd/system/smimpd.service" || { echo "no $s"; false; }
	done
}
