#!/usr/bin/env bats
# Devices end to end, with the real commands on both sides: a removed
# device's stamps refused by the other domain even for what it queued
# before, two devices each fetching every message once while one of
# them is killed mid-fetch, and the steps of doc/CI.md as written.

load helper

setup() {
	common_setup
	alice_and_bob_domains
	SMIMP_HOME="$BOBHOME" smimp-trust add alice.pub --tier trusted >/dev/null 2>&1
}

teardown() { stop_servers org net; }

as_alice() { SMIMP_HOME="$ALICEHOME" "$@"; }
as_bob() { SMIMP_HOME="$BOBHOME" "$@"; }
# enroll NAME SCOPE: a device of bob's, its log beside its key.
enroll() {
	enroll_device bob.key bob@example.net "$1" "$2" &&
		as_bob smimp-fetch -i "$1.key" --log-only -q
}
# inbox DIR KEY HOME: the bodies of the messages in DIR, opened, sorted.
inbox() {
	local f
	for f in "$1"/new/* "$1"/cur/*; do
		[ -f "$f" ] && SMIMP_HOME="$3" smimp-open -q -i "$2" "$f"
	done | sort
}

@test "what a device queued before it was removed is refused by the recipients' domain, and bounces to bob" {
	start net example.net "$NET"
	enroll ci send
	echo "sent while example.org is down" | as_bob smimp-seal -i ci.key -r alice@example.org -o m.age
	mid=$(as_bob smimp-send -i ci.key m.age)
	run -0 smimp-revoke -i bob.key --remove-device ci
	start org example.org "$ORG"
	wait_for net.log "bounced $mid to bob@example.net"
	run -0 --separate-stderr as_alice smimp-fetch -i alice.key -d mail-alice
	[[ "$stderr" == "smimp-fetch: 0 fetched"* ]]
	run -0 --separate-stderr as_bob smimp-fetch -i bob.key -d mail-bob
	grep -rqx "message-id: $mid" mail-bob/new
	grep -rq "delivery stamp does not verify" mail-bob/new
}

@test "two devices and the identity key each get all 20 messages exactly once, while the phone is killed mid-fetch again and again" {
	start org example.org "$ORG"
	start net example.net "$NET"
	enroll phone full
	as_alice smimp-trust refresh -i alice.key bob@example.net >/dev/null
	for i in $(seq 20); do
		printf 'message %02d\n' "$i" | as_alice smimp-seal -i alice.key -r bob@example.net |
			as_alice smimp-send -i alice.key >/dev/null
	done
	seq -f 'message %02g' 20 >want
	# The phone: killed at random points until one run finishes.
	for i in $(seq 30); do
		as_bob smimp-fetch -i phone.key -d mail-phone -q &
		pid=$!
		sleep "0.0$((RANDOM % 9))"
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	run -0 as_bob smimp-fetch -i phone.key -d mail-phone -q
	inbox mail-phone phone.key "$BOBHOME" >got-phone
	cmp want got-phone
	# Nothing left for the phone; everything still there for bob's key.
	run -0 --separate-stderr as_bob smimp-fetch -i phone.key -d mail-phone
	[[ "$stderr" == "smimp-fetch: 0 fetched"* ]]
	run -0 as_bob smimp-fetch -i bob.key -d mail-bob -q
	inbox mail-bob bob.key "$BOBHOME" >got-bob
	cmp want got-bob
}

@test "doc/CI.md as written: a send device enrolled by code, given its log, sending; then removed" {
	start org example.org "$ORG"
	start net example.net "$NET"
	# 1. On the runner.
	run -0 --separate-stderr smimp-keygen --device ci-runner -u bob@example.net -o ci-runner --no-passphrase
	code=$(sed -n 's/^code: \([A-Z2-7-]*\) (until .*)$/\1/p' <<<"$output")
	# 2. Where bob's identity key is.
	run -0 smimp-revoke -i bob.key --add-device ci-runner.request --scope send --code "$code"
	[[ "$output" == "bob@example.net: device ci-runner added, scope send ("*"), published to example.net" ]]
	# 3. The job's log.
	export SMIMP_HOME="$BATS_TEST_TMPDIR/cihome"
	run -0 smimp-fetch -i ci-runner.key --log-only
	# 4. Sending.
	echo "build 42 failed" | smimp-seal -i ci-runner.key -r alice@example.org -s "CI: build failed" -o msg
	run -0 smimp-send -i ci-runner.key msg
	run -1 --separate-stderr smimp-fetch -i ci-runner.key -d mail
	[ "$stderr" = "smimp-fetch: 'ci-runner.key' is the key of the device ci-runner of bob@example.net, whose scope is send: it cannot fetch" ]
	run -0 as_alice smimp-fetch -i alice.key -d mail-alice -q
	run -0 --separate-stderr as_alice smimp-open -i alice.key mail-alice/new/*
	[ "$output" = "build 42 failed" ]
	[[ "$stderr" == *"bob@example.net, device ci-runner"* ]]
	# 5. Removed: the server refuses the job at once.
	run -0 smimp-revoke -i bob.key --remove-device ci-runner
	run -1 --separate-stderr smimp-send -i ci-runner.key msg
	[[ "$stderr" == "smimp-send: "*"@example.net: HTTP 401: unknown signer" ]]
	# The job's own client learns it from the log, which a removed
	# device may still read.
	run -5 --separate-stderr smimp-fetch -i ci-runner.key --log-only
	[[ "$stderr" == *"the device ci-runner of bob@example.net was removed on "* ]]
}
