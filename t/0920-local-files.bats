#!/usr/bin/env bats
# Local files and directories against another user on the same machine
# and a careless environment: -o writes only regular files, a killed
# smimp-open leaves nothing behind, the user's own directories and files
# must be the user's, and no path can make a command block.

load helper

setup() {
	common_setup
	alice_and_bob
}

# In the background, with $! smimp-open itself (not a subshell) to kill.
open_bob_bg() { SMIMP_HOME="$BOBHOME" exec smimp-open -i bob.key "$@"; }

# The names in the test's directory, one a line, sorted (but bats' own).
names() { ls -A | grep -v '^separate-stderr-' | sort; }

@test "-o onto a device, FIFO, symbolic link or directory is refused and left as it was" {
	seal -o m.age msg
	mkfifo fifo
	ln -s victim link
	echo "keep me" >victim
	mkdir dir
	specials="fifo link dir"
	if mknod -m 666 null c 1 3 2>/dev/null; then
		specials="null $specials"
	fi
	before=$(names)
	for f in $specials; do
		case $f in
		null) kind="a character device" ;;
		fifo) kind="a FIFO" ;;
		link) kind="a symbolic link" ;;
		dir) kind="a directory" ;;
		esac
		want="'$f' is $kind, not a regular file: refusing to replace it"
		run -1 --separate-stderr timeout 10 smimp-seal -i alice.key -r bob.pub -o "$f" msg
		[ "$stderr" = "smimp-seal: $want" ]
		for opt in "" --headers --json; do
			SMIMP_HOME="$BOBHOME" run -1 --separate-stderr \
				timeout 10 smimp-open -i bob.key -o "$f" $opt m.age
			[ "$stderr" = "smimp-open: $want" ]
			[ -z "$output" ]
		done
	done
	[ "$(names)" = "$before" ]
	[ -p fifo ]
	[ -L link ]
	[ -d dir ]
	[ ! -e null ] || [ -c null ]
	[ "$(cat victim)" = "keep me" ]
}

@test "-o - is standard output for seal and open; keygen, which writes three files, refuses it" {
	seal -o - msg >m.age
	run -0 --separate-stderr open_bob -o - m.age
	[ "$output" = "$(cat msg)" ]
	run -0 --separate-stderr open_bob -o - --headers m.age
	[ "${lines[1]}" = "from: alice@example.org" ]
	[ ! -e ./- ]
	run -2 --separate-stderr smimp-keygen -u carol@example.com -o - --no-passphrase
	[ "$stderr" = "smimp-keygen: -o names the prefix of three files, so it cannot be standard output (see 'smimp-keygen --help')" ]
	[ ! -e ./-.key ]
}

@test "an empty output name is a usage error before any work: -o of seal and open, -d of fetch, -w of revoke" {
	# An input that never ends: the refusal must come before it is read.
	run -2 --separate-stderr timeout 10 smimp-seal -i alice.key -r bob.pub -o '' /dev/zero
	[ "$stderr" = "smimp-seal: the output file name is empty (- is standard output)" ]
	seal msg >m.age
	run -2 --separate-stderr open_bob -o '' m.age
	[ "$stderr" = "smimp-open: the output file name is empty (- is standard output)" ]
	[ -z "$output" ]
	run -2 --separate-stderr smimp-fetch -i bob.key -d ''
	[ "$stderr" = "smimp-fetch: -d names a Maildir: not an empty name (see 'smimp-fetch --help')" ]
	before=$(sum alice.key)
	run -2 --separate-stderr smimp-revoke -i alice.key --rotate --no-publish -w ''
	[ "$stderr" = "smimp-revoke: -w names a file (- for standard output): not an empty name (see 'smimp-revoke --help')" ]
	[ "$(sum alice.key)" = "$before" ]
	[ "$(names | tr '\n' ' ')" = "alice.key alice.pub alice.recovery bob.key bob.pub bob.recovery bobhome home m.age msg " ]
}

@test "-o replaces a regular file whole, created mode 0600" {
	seal msg >m.age
	echo old >out
	run -0 --separate-stderr open_bob -o out m.age
	cmp msg out
	[ "$(stat -c %a out)" = 600 ]
	[ "$(names)" = "$(printf '%s\n' alice.key alice.pub alice.recovery bob.key bob.pub bob.recovery bobhome home m.age msg out | sort)" ]
}

@test "-o never replaces a secret key: seal, open and smimp-trust introduce refuse it, and a sealed message is replaced" {
	seal msg >m.age
	(umask 077; echo 'secret words' >pass)
	smimp-keygen -u carol@example.com -o carol --passphrase-file pass >/dev/null 2>&1
	for f in alice.key bob.key bob.recovery carol.key; do
		before=$(sum "$f")
		run -1 --separate-stderr seal -o "$f" msg
		[ "$stderr" = "smimp-seal: '$f' holds a secret key: refusing to replace it" ]
		run -1 --separate-stderr open_bob -o "$f" m.age
		[ "$stderr" = "smimp-open: '$f' holds a secret key: refusing to replace it" ]
		run -1 --separate-stderr smimp-trust introduce carol@example.com --to bob@example.net -i alice.key -o "$f"
		[ "$stderr" = "smimp-trust: '$f' holds a secret key: refusing to replace it" ]
		[ "$(sum "$f")" = "$before" ]
	done
	# A sealed message, binary or armored, is no key: replaced.
	seal -o m.age msg
	seal -a -o m.age msg
	seal -a -o m.age msg
	open_bob -q -o m.age m.age
	cmp msg m.age
}

# start_open OUT: smimp-open -o OUT of big.age fed through a FIFO that
# gives it the first 4 MB, then stalls: it is killed mid-stream.
start_open() {
	mkfifo feed
	{ head -c 4000000 big.age; exec sleep 60; } >feed 3>&- &
	writer=$!
	open_bob_bg -q -o "$1" <feed 3>&- &
	pid=$!
	sleep 1
	# Still at work, with plaintext spooled.
	[ "$(cat "/proc/$pid/comm")" = smimp-open ]
}

@test "a smimp-open killed mid-stream leaves nothing beside OUT, and OUT as it was" {
	head -c 8000000 /dev/urandom >big
	seal -o big.age big
	before=$(names)
	start_open out
	kill -9 "$pid"
	wait "$pid" || true
	kill "$writer"
	wait "$writer" || true
	rm feed
	[ ! -e out ]
	[ "$(names)" = "$before" ]

	echo "old content" >out
	before=$(names)
	start_open out
	kill -TERM "$pid"
	wait "$pid" || true
	kill "$writer"
	wait "$writer" || true
	rm feed
	[ "$(cat out)" = "old content" ]
	[ "$(names)" = "$before" ]
}

@test "a smimp-open killed at any point leaves OUT absent, or whole, and nothing else" {
	head -c 24000000 /dev/urandom >big
	seal -o big.age big
	before=$(names)
	for delay in 0 0.01 0.03 0.05 0.1 0.15 0.2 0.3 0.5; do
		open_bob_bg -q -o out big.age 3>&- &
		pid=$!
		sleep "$delay"
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" || true
		if [ -e out ]; then
			cmp big out
			rm out
		fi
		[ "$(names)" = "$before" ]
	done
}

@test "SMIMP_HOME that is not the user's, or that others can write to, is refused by name" {
	seal msg >m.age
	before=$(sum "$BOBHOME/trust")
	for mode in 775 757 1777; do
		chmod "$mode" "$BOBHOME"
		want="'$BOBHOME' is writable by group or others (mode ${mode#1}); run chmod go-w '$BOBHOME'"
		SMIMP_HOME="$BOBHOME" run -1 --separate-stderr smimp-trust list
		[ "$stderr" = "smimp-trust: $want" ]
		[ -z "$output" ]
		run -1 --separate-stderr open_bob -o out m.age
		[ "$stderr" = "smimp-open: $want" ]
		SMIMP_HOME="$BOBHOME" run -1 --separate-stderr smimp-trust add alice.pub --tier blocked
		[ "$stderr" = "smimp-trust: $want" ]
	done
	chmod 700 "$BOBHOME"
	chown nobody "$BOBHOME"
	run -1 --separate-stderr open_bob -o out m.age
	[ "$stderr" = "smimp-open: '$BOBHOME' belongs to uid $(id -u nobody), not to you: refusing to use it" ]
	chown "$(id -u)" "$BOBHOME"
	[ ! -e out ]
	[ "$(sum "$BOBHOME/trust")" = "$before" ]
	run -0 --separate-stderr open_bob -o out m.age
	cmp msg out
}

@test "a trust store that is someone else's, writable by others or a symbolic link is refused" {
	store="$BOBHOME/trust"
	before=$(sum "$store")
	chmod 620 "$store"
	SMIMP_HOME="$BOBHOME" run -1 --separate-stderr smimp-trust list
	[ "$stderr" = "smimp-trust: '$store' is writable by group or others (mode 620); run chmod go-w '$store'" ]
	chmod 600 "$store"
	chown nobody "$store"
	SMIMP_HOME="$BOBHOME" run -1 --separate-stderr smimp-trust set alice@example.org blocked
	[ "$stderr" = "smimp-trust: '$store' belongs to uid $(id -u nobody), not to you: refusing to use it" ]
	chown "$(id -u)" "$store"
	mv "$store" elsewhere
	ln -s "$PWD/elsewhere" "$store"
	seal msg >m.age
	run -1 --separate-stderr open_bob m.age
	[ "$stderr" = "smimp-open: '$store' is a symbolic link: refusing to follow it" ]
	[ -z "$output" ]
	SMIMP_HOME="$BOBHOME" run -1 --separate-stderr smimp-trust set alice@example.org blocked
	[ "$stderr" = "smimp-trust: '$store' is a symbolic link: refusing to follow it" ]
	[ -L "$store" ]
	[ "$(sum elsewhere)" = "$before" ]
}

@test "the trust store's lock is made exclusively, never through a symbolic link, and must be the user's" {
	lock="$BOBHOME/trust.lock"
	rm -f "$lock"
	SMIMP_HOME="$BOBHOME" run -0 --separate-stderr smimp-trust set alice@example.org known
	[ -f "$lock" ]
	[ ! -L "$lock" ]
	[ "$(stat -c %a "$lock")" = 600 ]
	before=$(sum "$BOBHOME/trust")
	rm "$lock"
	ln -s "$PWD/planted" "$lock"
	SMIMP_HOME="$BOBHOME" run -1 --separate-stderr smimp-trust set alice@example.org blocked
	[ "$stderr" = "smimp-trust: '$lock' is a symbolic link: refusing to follow it" ]
	[ ! -e planted ]
	echo "not a lock" >planted
	SMIMP_HOME="$BOBHOME" run -1 --separate-stderr smimp-trust set alice@example.org blocked
	[ "$(cat planted)" = "not a lock" ]
	rm "$lock"
	: >"$lock"
	chmod 622 "$lock"
	SMIMP_HOME="$BOBHOME" run -1 --separate-stderr smimp-trust set alice@example.org blocked
	[ "$stderr" = "smimp-trust: '$lock' is writable by group or others (mode 622); run chmod go-w '$lock'" ]
	chmod 600 "$lock"
	chown nobody "$lock"
	SMIMP_HOME="$BOBHOME" run -1 --separate-stderr smimp-trust set alice@example.org blocked
	[ "$stderr" = "smimp-trust: '$lock' belongs to uid $(id -u nobody), not to you: refusing to use it" ]
	[ "$(sum "$BOBHOME/trust")" = "$before" ]
}

@test "the config file must be the user's and, in SMIMP_HOME, no symbolic link" {
	seal msg >m.age
	mkdir -p "$SMIMP_HOME"
	cfg="$SMIMP_HOME/config"
	printf 'resolve example.org=127.0.0.1:1\n' >real.conf
	cp real.conf "$cfg"
	chmod 646 "$cfg"
	run -1 --separate-stderr smimp-send -i alice.key m.age
	[ "$stderr" = "smimp-send: '$cfg' is writable by group or others (mode 646); run chmod go-w '$cfg'" ]
	chmod 644 "$cfg"
	chown nobody "$cfg"
	run -1 --separate-stderr smimp-send -i alice.key m.age
	[ "$stderr" = "smimp-send: '$cfg' belongs to uid $(id -u nobody), not to you: refusing to use it" ]
	rm "$cfg"
	ln -s "$PWD/real.conf" "$cfg"
	run -1 --separate-stderr smimp-send -i alice.key m.age
	[ "$stderr" = "smimp-send: '$cfg' is a symbolic link: refusing to follow it" ]
	[ -z "$output" ]
	# One named by SMIMP_CONFIG is the user's choice, link or not.
	rm "$cfg"
	ln -s real.conf named.conf
	chown nobody real.conf
	SMIMP_CONFIG=named.conf run -1 --separate-stderr smimp-send -i alice.key m.age
	[ "$stderr" = "smimp-send: 'named.conf' belongs to uid $(id -u nobody), not to you: refusing to use it" ]
	chown "$(id -u)" real.conf
	SMIMP_CONFIG=named.conf run -75 --separate-stderr smimp-send -i alice.key m.age
}

@test "a Maildir that others can write to, or that is not the user's, is refused before anything is fetched" {
	mkdir -m 700 mail
	for d in mail mail/new mail/.Other mail/.Other/tmp; do
		mkdir -p -m 700 "$d"
		chmod 770 "$d"
		SMIMP_HOME="$BOBHOME" run -1 --separate-stderr smimp-fetch -i bob.key -d mail --resolve example.net=127.0.0.1:1
		[ "${stderr##*$'\n'}" = "smimp-fetch: '$d' is writable by group or others (mode 770); run chmod go-w '$d'" ]
		chmod 700 "$d"
	done
	chown nobody mail/cur
	SMIMP_HOME="$BOBHOME" run -1 --separate-stderr smimp-fetch -i bob.key -d mail --resolve example.net=127.0.0.1:1
	[ "${stderr##*$'\n'}" = "smimp-fetch: 'mail/cur' belongs to uid $(id -u nobody), not to you: refusing to use it" ]
	chown "$(id -u)" mail/cur
	# All in order, the fetch goes on to the (closed) server.
	SMIMP_HOME="$BOBHOME" run -75 --separate-stderr smimp-fetch -i bob.key -d mail --resolve example.net=127.0.0.1:1
}

# with_server: smimpd for example.org (see start_server) with accounts
# for carol and dave there, dave's home $DAVEHOME trusting carol; its
# pid in ./pid, stopped by teardown.
with_server() {
	make_cert
	mkid carol carol@example.org
	mkid dave dave@example.org
	smimpd --data data --domain example.org adduser carol@example.org carol.pub
	smimpd --data data --domain example.org adduser dave@example.org dave.pub
	start_server
	export SMIMP_RESOLVE="example.org=127.0.0.1:$PORT" SMIMP_CACERT="$PWD/cert.pem"
	DAVEHOME="$BATS_TEST_TMPDIR/davehome"
	trust_as "$DAVEHOME" carol.pub known
}

teardown() {
	[ -f "$BATS_TEST_TMPDIR/pid" ] || return 0
	kill -TERM "$(cat "$BATS_TEST_TMPDIR/pid")" 2>/dev/null || true
	for _ in $(seq 150); do kill -0 "$(cat "$BATS_TEST_TMPDIR/pid")" 2>/dev/null || break; sleep 0.1; done
	return 0
}

fetch_dave() { SMIMP_HOME="$DAVEHOME" smimp-fetch -i dave.key -d mail "$@"; }

@test "smimp-fetch opens .smimp-pending without following a symbolic link" {
	with_server
	smimp-seal -i carol.key -r dave.pub msg >m.age
	smimp-send -i carol.key m.age >/dev/null
	mkdir -m 700 mail
	echo "dave's notes" >notes
	ln -s "$PWD/notes" mail/.smimp-pending
	run -1 --separate-stderr fetch_dave
	[ "${stderr##*$'\n'}" = "smimp-fetch: 'mail/.smimp-pending' is a symbolic link: refusing to follow it" ]
	[ "$(cat notes)" = "dave's notes" ]
	# Nothing was filed or acknowledged: it all comes with the link gone.
	[ -z "$(find mail -type f)" ]
	rm mail/.smimp-pending
	run -0 --separate-stderr fetch_dave
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	[ "$(cat notes)" = "dave's notes" ]
}

@test "smimp-fetch makes its files in tmp/ anew, never writing through what is there" {
	with_server
	smimp-seal -i carol.key -r dave.pub msg >m.age
	smimp-send -i carol.key m.age >/dev/null
	# The file a message is spooled to is named by its BLAKE2b: whoever
	# knows the message can put something there first.
	name=$(b2sum -l 128 m.age | cut -c1-32).smimp
	mkdir -p -m 700 mail/tmp
	echo "dave's notes" >notes
	ln notes "mail/tmp/$name"
	run -0 --separate-stderr fetch_dave
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	[ "$(cat notes)" = "dave's notes" ]
	[ "$(stat -c %h notes)" = 1 ]
	cmp m.age "mail/new/$name"
}

@test "the default identity in SMIMP_HOME is not followed through a symbolic link" {
	seal msg >m.age
	ln -s "$PWD/bob.key" "$BOBHOME/identity.key"
	ln -s "$PWD/bob.pub" "$BOBHOME/identity.pub"
	SMIMP_HOME="$BOBHOME" run -1 --separate-stderr smimp-open m.age
	[ "$stderr" = "smimp-open: '$BOBHOME/identity.key' is a symbolic link: refusing to follow it" ]
	[ -z "$output" ]
	# Named with -i, a key may be a link: the user chose it.
	SMIMP_HOME="$BOBHOME" run -0 --separate-stderr smimp-open -i "$BOBHOME/identity.key" m.age
	[ "$output" = "$(cat msg)" ]
}

@test "a passphrase file that others can read is refused, as a key file is; - is stdin" {
	(umask 077; echo 'pass phrase' >pass)
	smimp-keygen -u carol@example.com -o carol --passphrase-file pass >/dev/null 2>&1
	echo hi | smimp-seal -i alice.key -r carol.pub >m.age
	chmod 644 pass
	run -1 --separate-stderr smimp-open -i carol.key --passphrase-file pass -o out m.age
	[ "$stderr" = "smimp-open: 'pass' is accessible by others (mode 644); run chmod 600 'pass'" ]
	SMIMP_PASSPHRASE_FILE=pass run -1 --separate-stderr smimp-keygen --export-age -i carol.key
	[ "$stderr" = "smimp-keygen: 'pass' is accessible by others (mode 644); run chmod 600 'pass'" ]
	[ -z "$output" ]
	[ ! -e out ]
	run -4 --separate-stderr smimp-open -i carol.key --accept-unknown --passphrase-file - -o out m.age <pass
	[ "$(cat out)" = hi ]
	chmod 600 pass
	run -0 --separate-stderr smimp-keygen --export-age -i carol.key --passphrase-file pass
}

@test "key, passphrase, trust store, config and CA paths that are FIFOs or devices are refused, never waited on" {
	(umask 077; echo 'pass phrase' >pass)
	smimp-keygen -u carol@example.com -o carol --passphrase-file pass >/dev/null 2>&1
	seal msg >m.age
	mkfifo fifo
	fifo="'fifo' is a FIFO, not a regular file: refusing to use it"
	run -1 --separate-stderr timeout 10 smimp-open -i fifo m.age
	[ "$stderr" = "smimp-open: $fifo" ]
	run -1 --separate-stderr timeout 10 smimp-keygen --export-age -i /dev/zero
	[ "$stderr" = "smimp-keygen: '/dev/zero' is a character device, not a regular file: refusing to use it" ]
	run -1 --separate-stderr timeout 10 smimp-seal -i carol.key --passphrase-file fifo -r bob.pub msg
	[ "$stderr" = "smimp-seal: $fifo" ]
	SMIMP_PASSPHRASE_FILE=fifo run -1 --separate-stderr timeout 10 smimp-keygen --export-age -i carol.key
	[ "$stderr" = "smimp-keygen: $fifo" ]
	[ -z "$output" ]
	run -1 --separate-stderr timeout 10 smimp-send -i alice.key --cacert fifo --resolve example.org=127.0.0.1:1 m.age
	[ "$stderr" = "smimp-send: $fifo" ]
	SMIMP_CACERT=fifo run -1 --separate-stderr timeout 10 smimp-fetch -i bob.key -d mail --resolve example.net=127.0.0.1:1
	[ "${stderr##*$'\n'}" = "smimp-fetch: $fifo" ]
	SMIMP_CONFIG=fifo run -1 --separate-stderr timeout 10 smimp-send -i alice.key m.age
	[ "$stderr" = "smimp-send: $fifo" ]
	mkdir -p "$SMIMP_HOME"
	rm -f "$SMIMP_HOME/config"	# keygen named alice there
	mkfifo "$SMIMP_HOME/config"
	run -1 --separate-stderr timeout 10 smimp-send -i alice.key m.age
	[ "$stderr" = "smimp-send: '$SMIMP_HOME/config' is a FIFO, not a regular file: refusing to use it" ]
	rm "$SMIMP_HOME/config"
	mv "$BOBHOME/trust" trust.saved
	mkfifo "$BOBHOME/trust"
	SMIMP_HOME="$BOBHOME" run -1 --separate-stderr timeout 10 smimp-open -i bob.key m.age
	[ "$stderr" = "smimp-open: '$BOBHOME/trust' is a FIFO, not a regular file: refusing to use it" ]
	[ -z "$output" ]
	SMIMP_HOME="$BOBHOME" run -1 --separate-stderr timeout 10 smimp-trust list
	[ "$stderr" = "smimp-trust: '$BOBHOME/trust' is a FIFO, not a regular file: refusing to use it" ]
	[ -p fifo ]
	[ -p "$BOBHOME/trust" ]
}

@test "a refused -o OUT is said before a recipient is looked up and pinned" {
	with_server
	mkfifo fifo
	run -1 --separate-stderr timeout 10 smimp-seal -i carol.key -r dave@example.org -o fifo msg
	[ "$stderr" = "smimp-seal: 'fifo' is a FIFO, not a regular file: refusing to replace it" ]
	[ ! -e "$SMIMP_HOME/trust" ]
	run -0 --separate-stderr smimp-seal -i carol.key -r dave@example.org -o m.age msg
	[[ "$stderr" == "smimp-seal: pinned dave@example.org, fingerprint "* ]]
	[ -s "$SMIMP_HOME/trust" ]
}

@test "an error about a long path keeps its end and its cause: the middle is cut, not the reason" {
	a=$(printf 'a%.0s' $(seq 200))
	d=$BATS_TEST_TMPDIR/$a/$a/$a/$a/$a/$(printf 'b%.0s' $(seq 200))
	run -1 --separate-stderr smimp-open -i bob.key "$d/message.age"
	[[ "$stderr" == "smimp-open: cannot open '$BATS_TEST_TMPDIR/aaa"*"...bbb"*"b/message.age': No such file or directory" ]]
	[ "$(printf '%s' "$stderr" | wc -l)" -eq 0 ]
	run -1 --separate-stderr smimp-seal -i "$d/alice.key" -r bob.pub msg
	[[ "$stderr" == "smimp-seal: cannot open '$BATS_TEST_TMPDIR/aaa"*"...bbb"*"b/alice.key': No such file or directory" ]]
}

@test "an input that is a directory is named in the error, for seal, open and send; a pipe still reads" {
	seal -o m.age msg
	mkdir dir
	run -1 --separate-stderr smimp-seal -i alice.key -r bob.pub dir
	[ "$stderr" = "smimp-seal: cannot read 'dir': Is a directory" ]
	run -1 --separate-stderr open_bob dir
	[ "$stderr" = "smimp-open: cannot read 'dir': Is a directory" ]
	run -1 --separate-stderr smimp-send -i alice.key dir
	[ "$stderr" = "smimp-send: cannot read 'dir': Is a directory" ]
	run -0 --separate-stderr open_bob <(cat m.age)
	[ "$output" = "$(cat msg)" ]
}
