#!/usr/bin/env bats
# The Debian packages: debian/ built with dpkg-buildpackage -us -uc -b
# from a copy of the tree, their contents (dpkg-deb -c), the server's
# conffiles and maintainer scripts, lintian without an error, and the
# unpacked server (dpkg -x) running with the configuration it ships.
# Installing with dpkg -i and starting it under systemd would change
# this machine: that is left to a manual check (README).  The packages
# are built from the sources, whatever the build under test: on the
# sanitizer build the suite is skipped.

load helper

setup_file() {
	D=$BATS_FILE_TMPDIR
	export D
	[ "${SMIMP_BUILD##*/}" = build-san ] && return 0
	command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null &&
		git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1 || return 0
	mkdir "$D/src"
	# The tree as it is, committed or not.  Suites beside this one may
	# make and remove files meanwhile: none of it is wanted, and should
	# the copy fail all the same, the log says why.
	git -C "$REPO" ls-files --cached --others --exclude-standard -z >"$D/files"
	tar -C "$REPO" --null --no-recursion --ignore-failed-read \
		--warning=no-file-changed --warning=no-file-removed \
		-T "$D/files" -cf "$D/src.tar" 2>"$D/tar.log"
	tar -C "$D/src" -xf "$D/src.tar" 2>>"$D/tar.log" || {
		cat "$D/tar.log" >&2
		return 1
	}
	# Its status for the first test to judge, with the log's end: here
	# a failure would end setup_file with no word of why.
	if (cd "$D/src" && dpkg-buildpackage -us -uc -b) >"$D/build.log" 2>&1; then
		echo 0 >"$D/build.rc"
	else
		echo $? >"$D/build.rc"
	fi
}

setup() {
	common_setup
	[ "${SMIMP_BUILD##*/}" != build-san ] || skip "the packages are built from the sources, not the sanitizer build"
	[ -f "$D/build.rc" ] || skip "dpkg-buildpackage or debhelper (dh) is not installed, or the tree is no git checkout"
	DEB=$D/smimpd_0.1.0_$(dpkg --print-architecture).deb
	CLI=$D/smimp_0.1.0_$(dpkg --print-architecture).deb
}

teardown() {
	[ -f pid ] && kill -TERM "$(cat pid)" 2>/dev/null
	return 0
}

# files DEB: the files (not directories) the package holds, one a line.
files() { dpkg-deb -c "$1" | awk '$1 !~ /^d/ { print $6 }' | sort; }

@test "dpkg-buildpackage -us -uc -b builds smimp and smimpd" {
	[ "$(cat "$D/build.rc")" = 0 ] || { tail -30 "$D/build.log"; false; }
	[ -f "$DEB" ]
	[ -f "$CLI" ]
}

@test "smimpd: the server, its unit, logrotate snippet and conffile, and a user of its own" {
	run -0 files "$DEB"
	[ "$output" = "./etc/logrotate.d/smimpd
./etc/smimpd.conf
./lib/systemd/system/smimpd.service
./usr/bin/smimpd
./usr/lib/sysusers.d/smimpd.conf
./usr/share/bash-completion/completions/smimpd
./usr/share/doc/smimpd/changelog.gz
./usr/share/doc/smimpd/copyright
./usr/share/fish/vendor_completions.d/smimpd.fish
./usr/share/man/man8/smimpd.8.gz
./usr/share/zsh/site-functions/_smimpd" ]
	dpkg-deb -e "$DEB" ctl
	[ "$(cat ctl/conffiles)" = "/etc/logrotate.d/smimpd
/etc/smimpd.conf" ]
	grep -q 'adduser --quiet --system --group --home /var/lib/smimpd' ctl/postinst
	grep -q "deb-systemd-helper enable 'smimpd.service'" ctl/postinst
	grep -q "deb-systemd-invoke \$_dh_action 'smimpd.service'" ctl/postinst
	# The configuration may hold the store's password: root and smimpd
	# read it, as an override the administrator may change.
	grep -q 'dpkg-statoverride --update --add root smimpd 0640 /etc/smimpd.conf' ctl/postinst
	grep -q 'dpkg-statoverride --remove /etc/smimpd.conf' ctl/postrm
	# The logs (Debian Policy 10.8) go when the package is purged, not
	# when it is removed: postrm run on a directory of the test's own,
	# systemd and dpkg's database out of its reach.
	sed -e "s|/var/log/smimpd|$PWD/log/smimpd|g" \
		-e "s|/usr/bin/deb-systemd-helper|$PWD/none|g" \
		-e "s|/run/systemd/system|$PWD/none|g" ctl/postrm >postrm
	mkdir stub
	printf '#!/bin/sh\nexit 1\n' >stub/dpkg-statoverride
	chmod +x stub/dpkg-statoverride
	mkdir -p log/smimpd
	echo served >log/smimpd/smimpd.log
	PATH=$PWD/stub:$PATH run -0 sh postrm remove
	[ -f log/smimpd/smimpd.log ]
	PATH=$PWD/stub:$PATH run -0 sh postrm purge
	[ ! -e log/smimpd ]
	[ -d log ]
	run -0 dpkg-deb -f "$DEB" Depends
	[[ "$output" == adduser,\ libcurl4,* ]]
	dpkg-deb -x "$DEB" root
	grep -qx 'ExecStart=/usr/bin/smimpd -d -f /etc/smimpd.conf' root/lib/systemd/system/smimpd.service
	cmp "$REPO/dist/smimpd.conf" root/etc/smimpd.conf
}

@test "smimp: the commands, their man pages and completions, nothing of the server" {
	run -0 files "$CLI"
	for c in smimp smimp-keygen smimp-seal smimp-open smimp-send smimp-fetch smimp-trust smimp-revoke; do
		grep -qx "./usr/bin/$c" <<<"$output" || { echo "no $c"; false; }
		grep -qx "./usr/share/bash-completion/completions/$c" <<<"$output"
	done
	grep -qx './usr/share/man/man1/smimp-seal.1.gz' <<<"$output"
	grep -qx './usr/share/man/man5/smimp-config.5.gz' <<<"$output"
	grep -qx './usr/share/man/man7/smimp.7.gz' <<<"$output"
	! grep -q smimpd <<<"$output" || false
}

@test "unpacked, smimpd runs with the configuration it ships, and its commands work" {
	dpkg-deb -x "$DEB" root
	dpkg-deb -x "$CLI" root
	run -0 root/usr/bin/smimpd -n -f root/etc/smimpd.conf
	[ "$output" = "smimpd: configuration OK" ]
	# The shipped settings, but for the data directory and the port.
	PORT=$(free_port)
	root/usr/bin/smimpd -d -f root/etc/smimpd.conf --data data \
		--listen "127.0.0.1:$PORT" 2>server.log &
	echo $! >pid
	for _ in $(seq 100); do
		curl -s "http://127.0.0.1:$PORT/smimp/version" >version && break
		sleep 0.1
	done
	[ "$(cat version)" = '{"versions":["v1"],"software":"smimpd 0.1.0"}' ]
	grep -q "serving localhost on 127.0.0.1:$PORT (plain HTTP)" server.log
	run -0 root/usr/bin/smimp-keygen -u alice@localhost -o alice --no-passphrase
	run -0 root/usr/bin/smimpd -f root/etc/smimpd.conf --data data adduser alice@localhost alice.pub
	run -0 root/usr/bin/smimpd -f root/etc/smimpd.conf --data data users
	[ "$output" = "alice@localhost $(root/usr/bin/smimp-keygen --fingerprint alice.pub)" ]
}

@test "lintian finds no error in the packages" {
	command -v lintian >/dev/null || skip "lintian is not installed"
	run -0 lintian --fail-on error \
		"$D/smimp_0.1.0_$(dpkg --print-architecture).changes"
	# Warnings, if any, for whoever reads the log.
	echo "$output"
	! grep -q '^E: ' <<<"$output" || false
}
