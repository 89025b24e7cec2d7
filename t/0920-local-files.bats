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
	[ -p fifo ] && [ -L link ] && [ -d dir ]
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

@test "-o replaces a regular file whole, created mode 0600" {
	seal msg >m.age
	echo old >out
	run -0 --separate-stderr open_bob -o out m.age
	cmp msg out
	[ "$(stat -c %a out)" = 600 ]
	[ "$(names)" = "$(printf '%s\n' alice.key alice.pub alice.recovery bob.key bob.pub bob.recovery bobhome m.age msg out | sort)" ]
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
