#!/usr/bin/env bats
# The outbox (smimp-send --queue, --flush, --list-queue) and
# smimp-sendmail, against two real servers on loopback: alice of
# example.org writes to bob of example.net.

load helper

setup() {
	common_setup
	alice_and_bob_domains
	export SMIMP_HOME="$ALICEHOME"
	cp alice.key alice.pub "$ALICEHOME/"
	mv "$ALICEHOME/alice.key" "$ALICEHOME/identity.key"
	mv "$ALICEHOME/alice.pub" "$ALICEHOME/identity.pub"
	OUTBOX="$ALICEHOME/outbox"
}

teardown() {
	stop_servers org net
	[ -f "$BATS_TEST_TMPDIR/proxy.pid" ] && kill -KILL "$(cat "$BATS_TEST_TMPDIR/proxy.pid")" 2>/dev/null
	return 0
}

up() {
	start org example.org "$ORG"
	start net example.net "$NET"
}

# queued N: the outbox holds N messages waiting.
queued() {
	[ "$(find "$OUTBOX" -maxdepth 1 -type f -name '[0-9]*' ! -name '*.tmp.*' | wc -l)" -eq "$1" ]
}

# letter TEXT: a message to bob sealed by alice, in TEXT.age.
letter() {
	echo "$1" | smimp-seal -i alice.key -r bob@example.net -s "$1" -o "$1.age"
}

# queue_letters PREFIX N: letters PREFIX1 to PREFIXN queued while
# example.org is down.
queue_letters() {
	local i
	for i in $(seq "$2"); do
		letter "$1$i"
		smimp-send -i alice.key --queue -q "$1$i.age" >/dev/null || return 1
	done
	queued "$2"
}

# bobs_bodies: bob's mailbox fetched, each message opened, sorted.
bobs_bodies() {
	local f
	SMIMP_HOME="$BOBHOME" smimp-fetch -i bob.key -d bobmail -q >/dev/null 2>&1 || return 1
	for f in bobmail/new/* bobmail/cur/*; do
		[ -f "$f" ] && SMIMP_HOME="$BOBHOME" smimp-open -q -i bob.key "$f"
	done | sort
}

# arrived TEXT...: bob gets exactly these bodies, each once (the relay
# given 15 s).
arrived() {
	printf '%s\n' "$@" | sort >want
	for _ in $(seq 30); do
		bobs_bodies >got && cmp -s want got && break
		sleep 0.5
	done
	sleep 1
	bobs_bodies >got
	diff want got
}

# proxy PLAN: flakyproxy in front of example.org's server for
# submissions, at $ORG (the server moves to $ORG_REAL), its output in
# proxy.out.
proxy() {
	ORG_REAL=$(free_port)
	printf '%s\n' "$@" >plan
	start org example.org "$ORG_REAL" --base-url "https://127.0.0.1:$ORG/smimp"
	python3 "$REPO/t/faults/flakyproxy.py" "$ORG" "$ORG_REAL" plan /v1/messages >proxy.out 2>&1 &
	echo $! >proxy.pid
	server_up "$ORG"
}

@test "--queue: the home server down, the message waits in the outbox (exit 0); --flush delivers it once" {
	start net example.net "$NET"
	letter one
	run -0 --separate-stderr smimp-send -i alice.key --queue one.age
	mid=$output
	[[ "$mid" =~ ^[a-z2-7]{24}@example.org$ ]]
	[[ "$stderr" == "smimp-send: $mid queued in the outbox (smimp-send --flush sends it): https://127.0.0.1:$ORG/.well-known/smimp.txt: "* ]]
	queued 1
	[ "$(stat -c %a "$OUTBOX")" = 700 ]
	[ "$(stat -c %a "$OUTBOX"/[0-9]*)" = 600 ]
	run -0 smimp-send --list-queue
	[[ "$output" == "outbox/"[0-9]*"-"*": $mid to bob@example.net, queued "*" with $PWD/alice.key: https://127.0.0.1:$ORG/"* ]]
	# Still down: it waits (75), said in one line; -q says nothing.
	run -75 --separate-stderr smimp-send --flush
	[[ "$stderr" == "smimp-send: 1 message waits in the outbox: https://127.0.0.1:$ORG/"* ]]
	run -75 --separate-stderr smimp-send --flush -q
	[ -z "$stderr" ]
	queued 1
	start org example.org "$ORG"
	# From another directory: the entry names its key by its full path.
	mkdir elsewhere
	cd elsewhere
	run -0 --separate-stderr smimp-send --flush -v
	[ "$output" = "$mid" ]
	[ "$stderr" = "smimp-send: outbox: 1 sent, 0 waiting, 0 refused" ]
	cd ..
	queued 0
	run -0 --separate-stderr smimp-send --flush
	[ -z "$output$stderr" ]
	run -0 smimp-send --list-queue
	[ -z "$output" ]
	arrived one
}

@test "--queue queues only what the server cannot take now: a refusal, a bad file, a bad key exit non-zero, nothing queued" {
	up
	mkid carol carol@example.org
	echo "to nobody" | smimp-seal -i alice.key -r carol.pub -o nobody.age
	run -1 --separate-stderr smimp-send -i alice.key --queue nobody.age
	[[ "$stderr" == "smimp-send: "*"@example.org: HTTP 404: "* ]]
	echo "not a message" >junk
	run -3 --separate-stderr smimp-send -i alice.key --queue junk
	[ -n "$stderr" ]
	letter two
	run -1 --separate-stderr smimp-send -i nosuch.key --queue two.age
	[[ "$stderr" == "smimp-send: cannot open 'nosuch.key'"* ]]
	# Sealed by bob: alice cannot send it.
	echo "bob's" | SMIMP_HOME="$BOBHOME" smimp-seal -i bob.key -r alice.pub -o bobs.age
	run -3 --separate-stderr smimp-send -i alice.key --queue bobs.age
	queued 0
	# The server up: --queue sends at once, nothing queued.
	run -0 --separate-stderr smimp-send -i alice.key --queue two.age
	[ -z "$stderr" ]
	queued 0
	arrived two
}

@test "--queue: a 503 from the home server queues the message; it goes once the server answers" {
	start net example.net "$NET"
	proxy 503 pass
	letter three
	run -0 --separate-stderr smimp-send -i alice.key --queue three.age
	[[ "$stderr" == *"queued in the outbox (smimp-send --flush sends it): "*"HTTP 503: flaky" ]]
	queued 1
	run -0 smimp-send --flush
	queued 0
	arrived three
}

@test "a flush killed with SIGKILL at any point delivers each message exactly once" {
	start net example.net "$NET"
	queue_letters m 12
	# Killed while the server holds the first message but has not
	# answered: sent, and still in the outbox.
	proxy hang-after $(yes pass | head -200)
	smimp-send --flush &
	pid=$!
	wait_for proxy.out "hang-after /smimp/v1/messages 201"
	kill -KILL "$pid"
	wait "$pid" || true
	queued 12
	# Killed at random points, again and again.
	for i in $(seq 15); do
		smimp-send --flush -q &
		pid=$!
		sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	run -0 smimp-send --flush
	queued 0
	arrived m1 m2 m3 m4 m5 m6 m7 m8 m9 m10 m11 m12
}

@test "two flushes at once: one delivers, the other says so and exits 0; each message once" {
	start net example.net "$NET"
	queue_letters c 8
	start org example.org "$ORG"
	# The lock held (as a flush holds it): a second flush does nothing.
	flock "$OUTBOX/.lock" sleep 3 &
	holder=$!
	sleep 0.5
	run -0 --separate-stderr smimp-send --flush
	[ "$stderr" = "smimp-send: another smimp-send --flush is running: it delivers the outbox" ]
	queued 8
	wait "$holder"
	# Two at once, for real.
	smimp-send --flush >a.out 2>&1 &
	a=$!
	smimp-send --flush >b.out 2>&1 &
	b=$!
	wait "$a"
	wait "$b"
	queued 0
	arrived c1 c2 c3 c4 c5 c6 c7 c8
}

@test "a message refused for good moves to outbox/failed/ with its reason, the flush exits 1, and it is never tried again" {
	start net example.net "$NET"
	mkid carol carol@example.org
	echo "to nobody" | smimp-seal -i alice.key -r carol.pub -o nobody.age
	letter four
	mid=$(smimp-send -i alice.key --queue -q nobody.age)
	smimp-send -i alice.key --queue -q four.age >/dev/null
	queued 2
	start org example.org "$ORG"
	run -1 --separate-stderr smimp-send --flush
	name=$(ls "$OUTBOX/failed" | grep -v reason)
	[[ "$stderr" == "smimp-send: $mid to carol@example.org: refused, moved to outbox/failed/$name: $mid: HTTP 404: "* ]]
	queued 0
	[ -f "$OUTBOX/failed/$name.reason" ]
	grep -q "HTTP 404" "$OUTBOX/failed/$name.reason"
	run -0 --separate-stderr smimp-send --flush
	[ -z "$stderr" ]
	run -0 smimp-send --list-queue
	[[ "$output" == "outbox/failed/$name: $mid to carol@example.org, queued "*": refused "*"HTTP 404"* ]]
	arrived four
	# Moved back, it is queued again (and refused again).
	mv "$OUTBOX/failed/$name" "$OUTBOX/"
	run -1 smimp-send --flush
	[ -f "$OUTBOX/failed/$name" ]
}

@test "entries whose key cannot be loaded wait, and the flush exits 1; a damaged entry is moved aside" {
	start net example.net "$NET"
	cp alice.key alice2.key
	cp alice.pub alice2.pub
	letter five
	smimp-send -i alice2.key --queue -q five.age >/dev/null
	mv alice2.key gone.key
	start org example.org "$ORG"
	run -1 --separate-stderr smimp-send --flush
	[[ "$stderr" == "smimp-send: 1 message cannot be sent and waits in the outbox: cannot open '$PWD/alice2.key'"* ]]
	queued 1
	mv gone.key alice2.key
	# A damaged entry next to it.
	printf 'smimp-outbox/1\nidentity: nonsense\n' >"$OUTBOX/00000000000000000001-000000000000"
	run -1 --separate-stderr smimp-send --flush
	[[ "$stderr" == "smimp-send: 00000000000000000001-000000000000 to ?: refused, moved to outbox/failed/00000000000000000001-000000000000: '$OUTBOX/00000000000000000001-000000000000' is no outbox entry (malformed or cut short)" ]]
	queued 0
	arrived five
}

@test "the outbox is the user's alone: writable by others or a symbolic link, it is refused" {
	letter six
	run -0 smimp-send -i alice.key --queue -q six.age
	chmod 0770 "$OUTBOX"
	letter seven
	run -1 --separate-stderr smimp-send -i alice.key --queue seven.age
	[[ "$stderr" == "smimp-send: cannot queue "*"@example.org: '$OUTBOX' is writable by group or others (mode 770); run chmod go-w '$OUTBOX' (and the home server cannot take it: "* ]]
	run -1 --separate-stderr smimp-send --flush
	[ "$stderr" = "smimp-send: '$OUTBOX' is writable by group or others (mode 770); run chmod go-w '$OUTBOX'" ]
	run -1 --separate-stderr smimp-send --list-queue
	[ "$stderr" = "smimp-send: '$OUTBOX' is writable by group or others (mode 770); run chmod go-w '$OUTBOX'" ]
	chmod 0700 "$OUTBOX"
	mv "$OUTBOX" elsewhere
	ln -s "$PWD/elsewhere" "$OUTBOX"
	run -1 --separate-stderr smimp-send -i alice.key --queue seven.age
	[[ "$stderr" == "smimp-send: cannot queue "*"@example.org: '$OUTBOX' is a symbolic link, not a directory: refusing to use it (and the home server cannot take it: "* ]]
	run -1 --separate-stderr smimp-send --flush
	[ "$stderr" = "smimp-send: '$OUTBOX' is a symbolic link, not a directory: refusing to use it" ]
	[ "$(ls elsewhere | wc -l)" -eq 1 ]
}

@test "--queue, --flush and --list-queue: usage errors" {
	run -2 --separate-stderr smimp-send --flush --queue
	[ "$stderr" = "smimp-send: --flush and --queue exclude each other (see 'smimp-send --help')" ]
	run -2 --separate-stderr smimp-send --flush m.age
	[ "$stderr" = "smimp-send: unexpected argument 'm.age': --flush takes no file (see 'smimp-send --help')" ]
	run -2 --separate-stderr smimp-send --flush -i alice.key
	[ "$stderr" = "smimp-send: --flush: each message goes with the key it was queued with, -i is not for it (see 'smimp-send --help')" ]
	run -2 --separate-stderr smimp-send -v m.age
	[ "$stderr" = "smimp-send: -v goes with --flush (see 'smimp-send --help')" ]
	run -2 --separate-stderr smimp-send --flush -v -q
	[ "$stderr" = "smimp-send: -q and -v exclude each other (see 'smimp-send --help')" ]
	run -2 --separate-stderr smimp-send --list-queue --flush
	[ "$stderr" = "smimp-send: --list-queue and --flush exclude each other (see 'smimp-send --help')" ]
}
