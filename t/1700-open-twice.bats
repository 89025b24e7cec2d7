#!/usr/bin/env bats
# smimp-open to standard output from a file it may read twice (64 MiB
# sealed or more): the first pass verifies and writes nothing, the
# second decrypts the body straight into the output, with no spool.  Only for a file nobody but
# the user can change between the passes (a read lease says that no one
# has it open to write, and none is taken on FUSE or a network file
# system); anything else is spooled.  A file that changes all the same
# stops the output with an error.

load helper
load faults/faults

setup() {
	common_setup
	alice_and_bob
	# No spool can be made here: what needs one fails, saying so.
	NOSPOOL="$BATS_TEST_TMPDIR/no-such-dir"
}

teardown() {
	lazy_umount lazy
}

# open_nospool ARGS...: smimp-open as bob, with no TMPDIR to spool in.
open_nospool() { TMPDIR="$NOSPOOL" open_bob "$@"; }

spool_refused() {
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"cannot create a spool file in '$NOSPOOL'"* ]]
	[ -z "$output" ]
}

@test "a sealed file of 64 MiB or more goes to standard output read twice, with no spool, byte for byte" {
	for size in 67108864 67108865 70000000; do
		head -c "$size" /dev/urandom >body
		seal -o m.age body
		open_nospool -q m.age 2>err | cmp - body
		[ ! -s err ]
		# --headers: the header, a blank line, then the body.
		open_nospool -q --headers m.age >both
		n=$(grep -a -n -m1 '^$' both | cut -d: -f1)
		tail -n +"$((n + 1))" both | cmp - body
	done
	# An empty body after a 64 MiB attachment: nothing out.
	: >empty
	smimp-seal -i alice.key -r bob.pub --attach body -o e.age empty
	run -0 --separate-stderr open_nospool -q e.age
	[ -z "$output" ]
}

@test "the body after attachments is the body: the parts are skipped, at every chunk boundary" {
	head -c 67108864 /dev/urandom >att
	for n in 1 65535 65536 65537 131072 200001; do
		head -c "$n" /dev/urandom >body
		smimp-seal -i alice.key -r bob.pub --attach att -o m.age body

	done
}

@test "spooled as before: a smaller file, armor, a pipe, a file others may write to or another's" {
	head -c 67108864 /dev/urandom >body
	seal -o m.age body
	# From a pipe it cannot be read twice.
	run --separate-stderr bash -c 'cat m.age | TMPDIR="$1" SMIMP_HOME="$2" smimp-open -q -i bob.key' _ "$NOSPOOL" "$BOBHOME"
	spool_refused
	# Armor.
	seal -a -o a.age body
	run --separate-stderr open_nospool -q a.age
	spool_refused
	# Under 64 MiB sealed.
	head -c 60000000 body | seal -o s.age
	[ "$(stat -c %s s.age)" -lt 67108864 ]
	run --separate-stderr open_nospool -q s.age
	spool_refused
	# Writable by the group, or by others.
	for mode in 620 602 666; do
		chmod "$mode" m.age
		run --separate-stderr open_nospool -q m.age
		spool_refused
	done
	chmod 600 m.age
	open_nospool -q m.age | cmp - body
	# Another user's file.
	if [ "$(id -u)" = 0 ]; then
		chown nobody m.age
		chmod 644 m.age
		run --separate-stderr open_nospool -q m.age
		spool_refused
	fi
	# With a spool, each of them opens.
	cat m.age | open_bob -q | cmp - body
	open_bob -q a.age | cmp - body
	open_bob -q m.age | cmp - body
	open_bob -q s.age | cmp - <(head -c 60000000 body)
}

# changed_between WHAT...: smimp-open of a 70 MB message to a reader
# that waits before it reads; once the first pass is done (the sender
# line is out) the file is changed (WHAT; a writer waits until bob's
# lease on the file is let go, at the end of his smimp-open).  Exit 1,
# the reason said last, and what came out is the body's first bytes
# (GOT of them).
changed_between() {
	head -c 70000000 /dev/urandom >body
	seal -o m.age body
	mkfifo out
	{ exec 3<out; sleep 3; cat <&3 >got; } &
	reader=$!
	open_bob m.age >out 2>err &
	opener=$!
	for _ in $(seq 100); do
		grep -q 'from alice@example.org' err 2>/dev/null && break
		sleep 0.05
	done
	"$@"
	rc=0
	wait "$opener" || rc=$?
	wait "$reader"
	rm out
	[ "$rc" = 1 ]
	[ "$(tail -1 err)" = "smimp-open: the message changed while it was opened" ]
	GOT=$(stat -c %s got)
	cmp -n "$GOT" got body
}

@test "a file changed between the passes: the output stops with exit 1, nothing but the body's own bytes out" {
	# A chunk near the end rewritten in place: it no longer decrypts.
	changed_between dd if=/dev/urandom of=m.age bs=1 count=16 seek=69000000 conv=notrunc status=none
	[ "$GOT" -lt 69000000 ]
	# Cut short.  A writer waits for bob's lease on the file to be let
	# go (truncate(1), which opens it without waiting, is refused).
	changed_between dd if=/dev/null of=m.age bs=1 seek=2000000 status=none
	[ "$GOT" -lt 2000000 ]
	[ "$(stat -c %s m.age)" = 2000000 ]
}

@test "a file whose times change between the passes: all of it out, then exit 1" {
	changed_between touch -d '2001-01-01' m.age
	[ "$GOT" -le 70000000 ]
}

# forgery_between PATH WRITE...: carol, a recipient of a 70 MB message
# from alice to bob too, so she holds its payload key, has the file
# open for writing (descriptor 3, on WRITE: another user's descriptor
# when the suite runs as root, opened while the file could be
# written); bob opens PATH, a reader waits before it reads, and once
# the first pass is done (the sender line is out) carol puts a chunk
# of her own, 64 KiB of "FORGED" that decrypts under that key, in the
# middle of the body.  RC gets bob's exit status, got what he read.
forgery_between() {
	local path=$1 forger reader opener
	shift
	mkid carol carol@example.com
	smimp-keygen --export-age -i carol.key >carol.agekey
	head -c 70000000 /dev/zero | tr '\0' a >body
	smimp-seal -i alice.key -r bob.pub -r carol.pub -o "$path" body
	chmod 644 "$path"
	mkfifo go out
	as_carol python3 /dev/fd/5 /dev/fd/4 3 500 FORGED <go >forged \
		3<>"$1" 4<carol.agekey 5<"$REPO/t/forgechunk.py" &
	forger=$!
	exec 6>go
	{ exec 7<out; sleep 3; cat <&7 >got; } &
	reader=$!
	open_bob "$path" >out 2>err &
	opener=$!
	for _ in $(seq 100); do
		grep -q 'from alice@example.org' err 2>/dev/null && break
		sleep 0.05
	done
	echo go >&6
	exec 6>&-
	wait "$forger"
	RC=0
	wait "$opener" || RC=$?
	wait "$reader"
	rm go out
	[ "$(cat forged)" = forged ]
}

# as_carol CMD...: CMD as another user (nobody) when the suite runs as
# root, else as this one.
as_carol() {
	if [ "$(id -u)" = 0 ]; then
		setpriv --reuid=nobody --regid=nogroup --clear-groups \
			env PATH=/usr/local/bin:/usr/bin:/bin "$@"
	else
		"$@"
	fi
}

@test "a recipient who kept the file open to write gets no chunk of hers into the output: the file is spooled, not read twice" {
	forgery_between m.age m.age
	# Bob got the body alice signed, whole.
	cmp got body
	[ "$RC" = 0 ]
	[ "$(wc -l <err)" = 1 ]
	# Her chunk is in the file now, and alice never signed it.
	run -3 --separate-stderr open_bob -q m.age
	[ "$stderr" = "smimp-open: bad signature: the message from alice@example.org was altered or forged" ]
	[ -z "$output" ]
}

@test "a file on FUSE, whose server says what a read returns, is spooled: its server, a recipient too, gets no chunk of hers into the output" {
	# lazyfs passes reads through to lazy.disk, which carol writes.
	lazy_mount lazy
	forgery_between lazy/m.age lazy.disk/m.age
	cmp got body
	[ "$RC" = 0 ]
	[ "$(wc -l <err)" = 1 ]
	# Without a spool it does not open.
	run --separate-stderr open_nospool -q lazy/m.age
	spool_refused
}

@test "read twice onto a terminal, the body is escaped as ever" {
	command -v tmux >/dev/null || skip "no tmux"
	{ printf 'top\n\033[2J\033]0;title\007'; head -c 100000 /dev/zero | tr '\0' 'x'; printf '\n\033[2Aend\n'; } >evil
	head -c 67108864 /dev/zero >pad
	smimp-seal -i alice.key -r bob.pub --attach pad -o evil.age evil
	[ "$(stat -c %s evil.age)" -ge 67108864 ]
	TMUX_SOCK="$BATS_TEST_TMPDIR/tmux.sock"
	cat >run.sh <<-EOF
	TMPDIR="$NOSPOOL" SMIMP_HOME="$BOBHOME" smimp-open -q -i bob.key evil.age | tail -c 40 >tail.out
	TMPDIR="$NOSPOOL" SMIMP_HOME="$BOBHOME" smimp-open -q -i bob.key evil.age >/dev/tty
	echo "rc=\$?"
	sleep 60
	EOF
	tmux -S "$TMUX_SOCK" -f /dev/null new-session -d -x 200 -y 50 "bash run.sh"
	for _ in $(seq 100); do
		tmux -S "$TMUX_SOCK" capture-pane -p | grep -q '^rc=' && break
		sleep 0.1
	done
	screen=$(tmux -S "$TMUX_SOCK" capture-pane -p -S -2000)
	tmux -S "$TMUX_SOCK" kill-server
	[[ "$screen" == *'\x1B[2J\x1B]0;title\x07xxx'* ]]
	[[ "$screen" == *'\x1B[2Aend'* ]]
	[[ "$screen" == *'rc=0'* ]]
	# Through a pipe: exact, escapes and all.
	tail -c 40 evil | cmp - tail.out
}
