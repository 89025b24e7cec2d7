#!/usr/bin/env bats
# Every command: -h and --help, --version, exit 2 on an unknown option,
# a man page that documents every long option, and completions for
# bash, zsh and fish that know them too.

load helper

setup() { common_setup; }

commands() {
	local f
	for f in "$SMIMP_BUILD"/bin/*; do basename "$f"; done
}

long_options() {
	"$SMIMP_BUILD/bin/$1" --help | grep -o -- '--[a-z][a-z-]*' | sort -u
}

@test "-h and --help print the usage to stdout and exit 0" {
	for c in $(commands); do
		run -0 --separate-stderr "$c" -h
		[[ "${lines[0]}" == "usage: $c"* ]] || { echo "$c: ${lines[0]}"; false; }
		[ -z "$stderr" ]
		run -0 --separate-stderr "$c" --help
		[[ "${lines[0]}" == "usage: $c"* ]]
	done
}

@test "--version prints the name and version" {
	for c in $(commands); do
		run -0 "$c" --version
		[[ "$output" =~ ^$c\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
	done
}

@test "an option refused exits 2 with one line on stderr, naming it" {
	for c in $(commands); do
		run -2 --separate-stderr "$c" --no-such-option=1
		[ "$stderr" = "$c: unknown option '--no-such-option' (see '$c --help')" ]
		[ -z "$output" ]
		run -2 --separate-stderr "$c" -Z
		[ "$stderr" = "$c: unknown option '-Z' (see '$c --help')" ]
		run -2 --separate-stderr "$c" --help=yes
		[ "$stderr" = "$c: option '--help' takes no argument (see '$c --help')" ]
	done
	for c in smimp-keygen smimp-seal smimp-open smimp-send smimp-fetch smimp-trust smimp-revoke; do
		run -2 --separate-stderr "$c" -i
		[ "$stderr" = "$c: option '-i' needs an argument (see '$c --help')" ]
		run -2 --separate-stderr "$c" --identity
		[ "$stderr" = "$c: option '--identity' needs an argument (see '$c --help')" ]
	done
	# A short option refused inside a group, after a long one.
	run -2 --separate-stderr smimp-open --quiet -qZ
	[ "$stderr" = "smimp-open: unknown option '-Z' (see 'smimp-open --help')" ]
	# An abbreviation of two options.
	run -2 --separate-stderr smimp-seal --re x
	[ "$stderr" = "smimp-seal: option '--re' is ambiguous (see 'smimp-seal --help')" ]
	run -2 --separate-stderr smimpd --data
	[ "$stderr" = "smimpd: option '--data' needs an argument (see 'smimpd --help')" ]
	run -2 --separate-stderr smimp no-such-command
	[ "$stderr" = "smimp: 'no-such-command' is not a command (see 'smimp --help')" ]
}

@test "-h, --help and --version after a subcommand, as before it" {
	for w in -h --help; do
		for sub in "list" "add x.pub"; do
			run -0 --separate-stderr smimp-trust $sub "$w"
			[[ "${lines[0]}" == "usage: smimp-trust"* ]]
		done
		for sub in "stats" "queue list" "check" "backup d" "adduser" "users" "invite"; do
			run -0 --separate-stderr smimpd $sub "$w"
			[[ "${lines[0]}" == "usage: smimpd"* ]] || { echo "smimpd $sub $w: $stderr"; false; }
			[ -z "$stderr" ]
		done
	done
	run -0 --separate-stderr smimpd stats --version
	[ "$output" = "smimpd 0.1.0" ]
	# A subcommand not known, or its words miscounted: one line, as
	# every usage error says it.
	run -2 --separate-stderr smimpd frobnicate
	[ "$stderr" = "smimpd: unknown subcommand 'frobnicate' (see 'smimpd --help')" ]
	run -2 --separate-stderr smimpd adduser a@example.org
	[ "$stderr" = "smimpd: usage: smimpd adduser ADDRESS FILE.pub (see 'smimpd --help')" ]
	run -2 --separate-stderr smimpd invite
	[ "$stderr" = "smimpd: usage: smimpd invite ADDRESS [HOURS] (see 'smimpd --help')" ]
}

@test "with no arguments, a command that needs some says so in one line" {
	for c in smimp smimp-keygen smimp-seal smimp-sendmail smimp-trust smimp-revoke; do
		run -2 --separate-stderr "$c" </dev/null
		[ -z "$output" ]
		[ "${#stderr_lines[@]}" -eq 1 ] || { echo "$c: $stderr"; false; }
		[[ $stderr == "$c: "*" (see '$c --help')" ]] || { echo "$c: $stderr"; false; }
	done
	run -2 --separate-stderr smimp
	[ "$stderr" = "smimp: a command is needed (see 'smimp --help')" ]
}

@test "each command has a man page documenting every long option" {
	for c in $(commands); do
		page="$REPO/man/$c.1"
		[ -f "$page" ] || page="$REPO/man/$c.8"
		[ -f "$page" ] || { echo "no man page for $c"; false; }
		text=$(mandoc -Tascii "$page" | col -b)
		for opt in $(long_options "$c"); do
			grep -q -- "$opt" <<<"$text" || { echo "$c: $opt missing from man page"; false; }
		done
	done
}

@test "the man page SYNOPSIS names the same options as the usage" {
	for c in $(commands); do
		page="$REPO/man/$c.1"
		[ -f "$page" ] || page="$REPO/man/$c.8"
		syn=$(mandoc -Tascii "$page" | col -b |
			sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | grep -o -- '--[a-z][a-z-]*' | sort -u)
		use=$("$c" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
		[ "$syn" = "$use" ] || { echo "$c: synopsis [$syn] usage [$use]"; false; }
	done
}

@test "completions exist for bash, zsh and fish and know every long option" {
	for c in $(commands); do
		for f in "$REPO/completions/bash/$c" "$REPO/completions/zsh/_$c" \
		    "$REPO/completions/fish/$c.fish"; do
			[ -f "$f" ] || { echo "missing $f"; false; }
		done
		[ "$c" = smimp ] && continue
		for opt in $(long_options "$c"); do
			grep -q -- "$opt" "$REPO/completions/bash/$c" || { echo "bash $c $opt"; false; }
			grep -q -- "$opt" "$REPO/completions/zsh/_$c" || { echo "zsh $c $opt"; false; }
			grep -q -- "-l ${opt#--}\b" "$REPO/completions/fish/$c.fish" || { echo "fish $c $opt"; false; }
		done
	done
	bash -n "$REPO"/completions/bash/*
}

@test "completions know every short option the command takes" {
	for c in $(commands); do
		[ "$c" = smimp ] && continue
		src=$REPO/cmd/$c.c
		[ -f "$src" ] || src=$REPO/server/$c.c
		opts=$(sed -n '/shortopts\[\] =/,/;/p' "$src" | grep -o '"[^"]*"' | tr -d '"+:' | fold -w1)
		[ -n "$opts" ] || { echo "$c: no shortopts in $src"; false; }
		for l in $opts; do
			# smimp-sendmail's -q is refused (no queue runner): not offered.
			[ "$c$l" = smimp-sendmailq ] && continue
			grep -q -- "-$l[],[}]\|-$l\[" "$REPO/completions/zsh/_$c" || { echo "zsh $c -$l"; false; }
			grep -q -- "-s $l\b" "$REPO/completions/fish/$c.fish" || { echo "fish $c -$l"; false; }
			grep -q -- "-$l\b" "$REPO/completions/bash/$c" || { echo "bash $c -$l"; false; }
		done
	done
}

@test "bash completion offers no option where an option's argument goes" {
	for c in $(commands); do
		[ "$c" = smimp ] && continue
		fn=$(grep -o '^complete -F [_a-z]*' "$REPO/completions/bash/$c" | cut -d' ' -f3)
		# shellcheck disable=SC1090
		. "$REPO/completions/bash/$c"
		# Each option the usage shows with an argument: -i IDENTITY,
		# --cacert FILE.  smimp-trust's words after a subcommand.
		for opt in $("$c" --help | grep -oE -- '(^|[[ ])-(-[a-z][a-z-]*|[a-zA-Z]) [A-Z]' |
		    sed 's/^[[ ]//' | cut -d' ' -f1 | sort -u); do
			COMP_WORDS=("$c" fetch "$opt" "")
			COMP_CWORD=3
			COMPREPLY=()
			"$fn" || true	# compgen fails when nothing matches
			for w in "${COMPREPLY[@]}"; do
				[[ $w != -* ]] || { echo "$c $opt: offers $w"; false; }
			done
		done
	done
}

@test "a malformed key file exits 3, and the man page of each command says so" {
	run -0 smimp-keygen -u a@example.org -o a --no-passphrase
	head -c 50 a.key >bad.key
	chmod 600 bad.key
	for c in "smimp-keygen --export-age -i" "smimp-open -i" "smimp-send -i" \
	    "smimp-fetch -i" "smimp-trust fetch b@example.org -i" \
	    "smimp-revoke --rotate -i" "smimp-sendmail b@example.org --identity"; do
		set -- $c
		run -3 --separate-stderr "$@" bad.key </dev/null
		[ "$stderr" = "$1: 'bad.key': malformed secret key file" ] ||
			[ "$stderr" = "$1: directory lookups are signed: 'bad.key': malformed secret key file" ]
		mandoc -Tascii "$REPO/man/$1.1" | col -b |
			sed -n '/^EXIT STATUS/,/^[A-Z]/p' | grep -qE '^ +3[[:space:]]+.*malformed' ||
			{ echo "$1: no 3 for a malformed key file in EXIT STATUS"; false; }
	done
}

# exit_doc CMD N: what the EXIT STATUS of CMD's man page says of N, on
# one line.
exit_doc() {
	mandoc -Tascii "$REPO/man/$1.1" | col -b |
		sed -n '/^EXIT STATUS/,/^[A-Z]/p' |
		awk -v n="$2" '/^[A-Z]/ { p = 0 } /^ +[0-9]+\t/ { p = ($1 == n) } p' |
		tr -s ' \t\n' ' '
}

@test "the key of a removed device exits 5, and the man page of each command says so" {
	run -0 smimp-keygen -u b@example.net -o b --no-passphrase
	run -0 smimp-keygen --device phone -u b@example.net -o phone --no-passphrase
	code=$(sed -n 's/^code: \([A-Z2-7]\{5\}-[A-Z2-7]\{5\}\) (until .*)$/\1/p' <<<"$output")
	[ -n "$code" ]
	run -0 smimp-revoke -i b.key --add-device phone.request --code "$code" --no-publish
	run -0 smimp-revoke -i b.key --remove-device phone --no-publish
	cp b.pub phone.pub
	echo hi >m
	for c in "smimp-send -i phone.key m" "smimp-sendmail --identity phone.key a@example.org" \
	    "smimp-open -i phone.key"; do
		set -- $c
		run -5 --separate-stderr "$@" <m
		[[ "$stderr" == "$1: the device phone of b@example.net was removed on "* ]]
		[[ "$(exit_doc "$1" 5)" == *removed* ]] ||
			{ echo "$1: [$(exit_doc "$1" 5)]"; false; }
	done
}

@test "man pages are clean under mandoc -Tlint" {
	run -0 mandoc -Tlint -Wwarning "$REPO"/man/*.[1-8]
	[ -z "$output" ]
}

@test "man pages format under groff (man --warnings) without a warning" {
	command -v man >/dev/null && command -v groff >/dev/null ||
		skip "man-db or groff is not installed"
	local page
	for page in "$REPO"/man/*.[1-8]; do
		run -0 --separate-stderr env MANWIDTH=80 man --warnings -l "$page"
		[ -z "$stderr" ] || { echo "$page: $stderr"; false; }
	done
}

@test "man pages quote each word of a list on its own, not nested" {
	# '.Pq Ql a , Ql b' nests each Ql in the one before it, as
	# "(`a, `b'')"; every quote opened is closed before the next.
	local page
	for page in "$REPO"/man/*.[1-8]; do
		run -0 bash -c 'mandoc -Tutf8 "$1" | col -b' - "$page"
		! grep -n "‘[^’]*‘" <<<"$output" || false
	done
}

@test "the front door runs the commands" {
	run -0 smimp keygen --version
	[[ "$output" == "smimp-keygen "* ]]
	run -0 smimp help seal
	[[ "${lines[0]}" == "usage: smimp-seal"* ]]
	run -0 smimp keygen -u a@example.org -o a --no-passphrase
	[ -f a.pub ]
}

@test "the front door lists only the commands it finds, and says so for one it does not" {
	run -0 --separate-stderr smimp --help
	[ "${lines[2]}" = "commands: keygen seal open send sendmail fetch trust revoke" ]
	# A front door with no smimp-revoke beside it or on PATH.
	mkdir front
	cp "$SMIMP_BUILD/bin/smimp" front/
	for c in keygen seal open send fetch trust; do
		ln -s "$SMIMP_BUILD/bin/smimp-$c" front/
	done
	PATH=/usr/bin:/bin run -0 --separate-stderr front/smimp --help
	[ "${lines[2]}" = "commands: keygen seal open send fetch trust" ]
	PATH=/usr/bin:/bin run -2 --separate-stderr front/smimp revoke --help
	[ "$stderr" = "smimp: 'revoke' is not installed: no smimp-revoke beside smimp or on PATH" ]
	[ -z "$output" ]
	PATH=/usr/bin:/bin run -2 --separate-stderr front/smimp help revoke
	[ "$stderr" = "smimp: 'revoke' is not installed: no smimp-revoke beside smimp or on PATH" ]
	# Once there is one on PATH, it is listed and run.
	mkdir more
	printf '#!/bin/sh\necho "revoke $*"\n' >more/smimp-revoke
	chmod +x more/smimp-revoke
	PATH="/usr/bin:/bin:$PWD/more" run -0 --separate-stderr front/smimp --help
	[ "${lines[2]}" = "commands: keygen seal open send fetch trust revoke" ]
	PATH="/usr/bin:/bin:$PWD/more" run -0 --separate-stderr front/smimp revoke -x
	[ "$output" = "revoke -x" ]
	# Not an executable file: not a command.
	chmod -x more/smimp-revoke
	PATH="/usr/bin:/bin:$PWD/more" run -2 --separate-stderr front/smimp revoke
	[ "$stderr" = "smimp: 'revoke' is not installed: no smimp-revoke beside smimp or on PATH" ]
}
