#!/usr/bin/env bats
# Against another user of the same machine and a careless environment:
# a file named like a recipient never replaces the pinned key, secrets
# never travel on the command line, a held trust store lock never hangs
# a writer, and the store at its cap loads in linear time.

load helper

setup() {
	common_setup
	mkid alice alice@example.org
	mkid bob bob@example.net
	holder=
}

teardown() {
	[ -z "$holder" ] || kill "$holder" 2>/dev/null || true
}

# hold_lock SECONDS: another process takes the trust store lock and
# holds it for SECONDS (its pid in $holder); returns once it is held.
hold_lock() {
	mkdir -p -m 700 "$SMIMP_HOME"
	( exec 9>"$SMIMP_HOME/trust.lock"; flock 9; exec sleep "$1" ) 3>&- &
	holder=$!
	for _ in $(seq 100); do
		flock -n "$SMIMP_HOME/trust.lock" true || return 0
		sleep 0.05
	done
	return 1
}

# The line a trust store reports a fault at: the one after N entries of
# which P are pinned (7 lines each; the others 4) and the header.
after_entries() { echo $((1 + 7 * $2 + 4 * ($1 - $2) + 1)); }

@test "a file named like a recipient's address never replaces the key pinned for it" {
	mkid fake bob@example.net
	mkid carol carol@example.org
	smimp-trust add bob.pub --tier trusted >/dev/null
	BOBFP=$(smimp-keygen --fingerprint bob.pub)
	FAKEFP=$(smimp-keygen --fingerprint fake.pub)
	# Whoever can write to the current directory plants a key there.
	mkdir shared
	cp fake.pub shared/bob@example.net
	cp carol.pub shared/carol@example.org
	cd shared
	echo "secret plan" >msg
	run -0 --separate-stderr smimp-seal -i ../alice.key -r bob@example.net -o m.age msg
	[ -z "$stderr" ]
	SMIMP_HOME=../bobhome run -4 --separate-stderr smimp-open -i ../bob.key --accept-unknown m.age
	[ "$output" = "secret plan" ]
	SMIMP_HOME=../fakehome run -3 --separate-stderr smimp-open -i ../fake.key --accept-unknown m.age
	[ -z "$output" ]
	# An address is looked up even when nothing is pinned for it: the
	# file named like it is not read.
	SMIMP_RESOLVE=example.org=127.0.0.1:1 run -75 --separate-stderr \
		smimp-seal -i ../alice.key -r carol@example.org -o c.age msg
	[[ "$stderr" == "smimp-seal: no identity pinned for carol@example.org, and the lookup failed: "* ]]
	[ ! -e c.age ]
	# Written as a file, or named by -R or --cc-file, it is read, but a
	# file for a pinned address that holds another identity is refused.
	refused="smimp-seal: bob@example.net is pinned to fingerprint $BOBFP but"
	for r in "-r ./bob@example.net" "-R bob@example.net" "-r ../fake.pub" \
	    "-r ../alice.pub --cc-file bob@example.net" "-r ../alice.pub -c ../fake.pub"; do
		run -5 --separate-stderr smimp-seal -i ../alice.key $r -o n.age msg
		[[ "$stderr" == "$refused '"*"' holds $FAKEFP" ]] || { echo "$r: $stderr"; false; }
		[ ! -e n.age ]
	done
	# The same identity as the pinned one, or one for an address nothing
	# is pinned for, is used as before.
	run -0 --separate-stderr smimp-seal -i ../alice.key -R ../bob.pub \
		--cc-file carol@example.org -o n.age msg
	SMIMP_HOME=../carolhome run -4 --separate-stderr smimp-open -i ../carol.key --accept-unknown n.age
	[ "$output" = "secret plan" ]
	# A blocked address stays blocked when named by a file.
	smimp-trust set carol@example.org blocked >/dev/null
	run -1 --separate-stderr smimp-seal -i ../alice.key -R carol@example.org -o b.age msg
	[ "$stderr" = "smimp-seal: carol@example.org is blocked in the trust store" ]
	[ ! -e b.age ]
	# -R names a file: one that is not there is an error, not an address.
	run -1 --separate-stderr smimp-seal -i ../alice.key -R dave@example.org msg
	[ "$stderr" = "smimp-seal: cannot open 'dave@example.org': No such file or directory" ]
}

@test "an invitation token comes from a file, standard input or a prompt, never from the command line" {
	TOK=Jyui0xATc0uFMHCbUNhupUNtRSQNnJSY
	export SMIMP_RESOLVE=example.org=127.0.0.1:1
	# On the command line every user sees it in the process list: refused
	# before anything is made, and never quoted back.
	for form in "-u carol@example.org -o c --no-passphrase" "-i alice.key"; do
		run -2 --separate-stderr smimp-keygen $form --redeem "$TOK"
		[ "$stderr" = "smimp-keygen: --redeem takes only '-': a token on the command line is visible to every user; use --redeem-file FILE or standard input (see 'smimp-keygen --help')" ]
		[[ "$stderr$output" != *"$TOK"* ]]
	done
	[ ! -e c.key ]
	[ ! -e c.pub ]
	run -2 --separate-stderr smimp-keygen -i alice.key --redeem - --redeem-file t
	[ "$stderr" = "smimp-keygen: --redeem and --redeem-file exclude each other (see 'smimp-keygen --help')" ]
	run -2 --separate-stderr smimp-keygen -i alice.key --redeem - --passphrase-file -
	[ "$stderr" = "smimp-keygen: the token and the passphrase cannot both come from standard input (see 'smimp-keygen --help')" ]
	SMIMP_PASSPHRASE_FILE=- run -2 --separate-stderr smimp-keygen -i alice.key --redeem-file -
	[ "$stderr" = "smimp-keygen: the token and the passphrase cannot both come from standard input (see 'smimp-keygen --help')" ]
	# A bad token is refused before the keys are made.
	for bad in "bad token" "$(printf 'x%.0s' {1..129})"; do
		run -2 --separate-stderr smimp-keygen -u carol@example.org -o c --no-passphrase \
			--redeem - <<<"$bad"
		[ "$stderr" = "smimp-keygen: malformed invitation token" ]
		[ ! -e c.key ]
		[ ! -e c.pub ]
		[ ! -e c.recovery ]
	done
	: >empty
	chmod 600 empty
	run -1 --separate-stderr smimp-keygen -u carol@example.org -o c --no-passphrase --redeem-file empty
	[ "$stderr" = "smimp-keygen: empty invitation token" ]
	# A token file is a secret: others may not read it.
	chmod 644 empty
	run -1 --separate-stderr smimp-keygen -u carol@example.org -o c --no-passphrase --redeem-file empty
	[ "$stderr" = "smimp-keygen: 'empty' is accessible by others (mode 644); run chmod 600 'empty'" ]
	run -1 --separate-stderr smimp-keygen -u carol@example.org -o c --no-passphrase --redeem-file nosuch
	[ "$stderr" = "smimp-keygen: cannot open 'nosuch': No such file or directory" ]
	[ ! -e c.key ]
	# A good one is read and sent (here to a server that is not there:
	# the keys stay for a retry), from standard input or a file.
	run -75 --separate-stderr smimp-keygen -u carol@example.org -o c --no-passphrase \
		--redeem - <<<"$TOK"
	[ -e c.key ]
	[ -e c.pub ]
	[[ "$stderr" != *"$TOK"* ]]
	(umask 077; echo "$TOK" >tok)
	run -75 --separate-stderr smimp-keygen -i c.key --redeem-file tok
	[[ "$stderr" != *"$TOK"* ]]
	# With standard input a terminal, a prompt that does not echo it; the
	# token is typed once the prompt is there (typed ahead, it would be
	# flushed as the echo goes off).
	run -75 timeout 30 bash -c "(for _ in \$(seq 200); do
		grep -q 'Invitation token:' typed 2>/dev/null && break; sleep 0.1; done
		sleep 0.3; echo $TOK) |
		script -qec 'smimp-keygen -i c.key --redeem -' /dev/null >typed
		rc=\$?; cat typed; exit \$rc"
	[[ "$output" == "Invitation token: "* ]]
	[[ "$output" != *"$TOK"* ]]
}

@test "a trust store at its cap of 65,536 entries loads, lists, finds, changes, and refuses one more or a duplicate" {
	mkdir -p -m 700 "$SMIMP_HOME"
	store=$SMIMP_HOME/trust
	"$SMIMP_BUILD/t/trusttool" store "$store" 65536 20000
	# A guard against a hang, not a benchmark (that is bench/trust.sh):
	# a load that scanned every entry before each one took 14 s and more
	# at the cap, and the sanitizer build far longer.
	run -0 --separate-stderr timeout 10 smimp-trust list
	[ "${#lines[@]}" -eq 65536 ]
	[[ "${lines[19999]}" =~ ^user20000@example.org\ +known\ +[A-Z2-7-]{39}$ ]]
	[[ "${lines[65535]}" =~ ^@d65536.example\ +known\ +-$ ]]
	run -0 --separate-stderr smimp-trust show user20000@example.org
	[ "${lines[0]}" = "name: user20000@example.org" ]
	[ "${lines[5]}" = "records: 1" ]
	echo hello >msg
	run -0 --separate-stderr smimp-seal -i alice.key -r user20000@example.org \
		-r user1@example.org -c user9999@example.org -o m.age msg
	[ -s m.age ]
	# A change to an entry keeps all of them.
	run -0 --separate-stderr smimp-trust set @d65536.example blocked
	run -0 --separate-stderr smimp-trust show @d65536.example
	[ "${lines[1]}" = "tier: blocked" ]
	# Full: one more is refused, the store untouched.
	before=$(sum "$store")
	run -1 --separate-stderr smimp-trust add bob.pub
	[ "$stderr" = "smimp-trust: the trust store is full" ]
	[ "$(sum "$store")" = "$before" ]
	# One out, one in: the entries after the removed one are still found.
	run -0 --separate-stderr smimp-trust remove user1@example.org
	run -0 --separate-stderr smimp-trust add bob.pub
	run -0 --separate-stderr smimp-trust show @d65536.example
	[ "${lines[1]}" = "tier: blocked" ]
	run -0 --separate-stderr smimp-trust list
	[ "${#lines[@]}" -eq 65536 ]
	[[ "${lines[65535]}" == "bob@example.net "* ]]
	# A name again, far from its first: reported, and never rewritten.
	run -0 --separate-stderr smimp-trust remove bob@example.net
	printf '\nname: user2@example.org\ntier: blocked\nadded: 2026-11-24T22:00:00Z\n' \
		>>"$store"
	before=$(sum "$store")
	line=$(after_entries 65536 19999)
	run -1 --separate-stderr smimp-trust list
	[ "$stderr" = "smimp-trust: $store:$line: duplicate entry" ]
	run -1 --separate-stderr smimp-trust set @example.net blocked
	[ "$stderr" = "smimp-trust: $store:$line: duplicate entry" ]
	[ "$(sum "$store")" = "$before" ]
	# One entry past the cap.
	"$SMIMP_BUILD/t/trusttool" store "$store" 65537 0
	run -1 --separate-stderr smimp-trust list
	[ "$stderr" = "smimp-trust: $store:$(( $(after_entries 65536 0) + 1 )): too many entries" ]
}

@test "a trust store lock held by another process: writers give up after a bounded wait, naming the lock" {
	smimp-trust add bob.pub >/dev/null
	store=$SMIMP_HOME/trust
	lock=$SMIMP_HOME/trust.lock
	before=$(sum "$store")
	hold_lock 120
	msg="the trust store is locked: another process held '$lock' for 1 s, try again later"
	export SMIMP_LOCK_TIMEOUT=1
	run -75 --separate-stderr timeout 20 smimp-trust set @example.net blocked
	[ "$stderr" = "smimp-trust: $msg" ]
	run -75 --separate-stderr timeout 20 smimp-trust add alice.pub
	[ "$stderr" = "smimp-trust: $msg" ]
	run -75 --separate-stderr timeout 20 smimp-trust remove bob@example.net
	[ "$stderr" = "smimp-trust: $msg" ]
	run -75 --separate-stderr timeout 20 smimp-trust verify bob@example.net \
		"$(smimp-keygen --fingerprint bob.pub)"
	[ "$stderr" = "smimp-trust: $msg" ]
	# Readers need no lock.
	run -0 --separate-stderr timeout 20 smimp-trust list
	[[ "$output" == "bob@example.net "* ]]
	# Without the variable the bound is 10 s, never forever.
	unset SMIMP_LOCK_TIMEOUT
	run -75 --separate-stderr timeout 30 smimp-trust set @example.net blocked
	[ "$stderr" = "smimp-trust: ${msg/for 1 s/for 10 s}" ]
	[ "$(sum "$store")" = "$before" ]
	# A bound that is not a number of seconds is refused at once.
	for v in x -1 1.5 3601 ' 2'; do
		SMIMP_LOCK_TIMEOUT=$v run -1 --separate-stderr timeout 20 \
			smimp-trust set @example.net blocked
		[ "$stderr" = "smimp-trust: SMIMP_LOCK_TIMEOUT is not a number of seconds from 0 to 3600" ]
	done
	[ "$(sum "$store")" = "$before" ]
	# A lock let go within the bound is waited for.
	kill "$holder"
	hold_lock 1
	run -0 --separate-stderr timeout 20 smimp-trust set @example.net blocked
	run -0 --separate-stderr smimp-trust show @example.net
	[ "${lines[1]}" = "tier: blocked" ]
}
