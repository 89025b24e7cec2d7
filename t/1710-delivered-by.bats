#!/usr/bin/env bats
# smimp-fetch files a message by its signed sender only when the server
# that holds it says that sender delivered it: a sealed message that
# someone else submits (a co-recipient, or a server that relayed a copy)
# is a replay, not a message from its signer.

load helper

setup() {
	common_setup
	make_cert
	local_users alice bob mallory
	start_server
	export SMIMP_RESOLVE="example.org=127.0.0.1:$PORT" SMIMP_CACERT="$PWD/cert.pem"
	export BOBHOME="$BATS_TEST_TMPDIR/bobhome"
	URL="https://127.0.0.1:$PORT/smimp"
	trust_as "$BOBHOME" alice.pub trusted
}

teardown() {
	kill -TERM "$(cat "$BATS_TEST_TMPDIR/pid")" 2>/dev/null || true
	for _ in $(seq 150); do kill -0 "$(cat "$BATS_TEST_TMPDIR/pid")" 2>/dev/null || break; sleep 0.1; done
	return 0
}

fetch_bob() { SMIMP_HOME="$BOBHOME" smimp-fetch -i bob.key -d mail "$@"; }

# resubmit KEY TO FILE: FILE submitted as it is, signed by KEY, to TO.
resubmit() {
	local h
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" "$1" POST example.org /smimp/v1/messages "$3" \
		"Smimp-To: $2" "Smimp-Message-Id: $4")
	curl -s -o /dev/null -w '%{http_code}' --cacert cert.pem "${h[@]/#/-H}" \
		--data-binary @"$3" "$URL/v1/messages"
}

@test "a message another account submits again is not filed as its signer's" {
	echo "pay invoice 17" | smimp-seal -i alice.key -r bob.pub -r mallory.pub >m.age
	smimp-send -i alice.key m.age >/dev/null
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	# Read and deleted, as mail is.
	rm mail/new/*
	# Mallory, a co-recipient, hands alice's bytes to the server again as hers.
	run -0 resubmit mallory.key bob@example.org m.age again1
	[ "$output" = 201 ]
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 1 fetched: 0 to the inbox, 1 to Other, 0 dropped" ]
	[ -z "$(ls mail/new)" ]
	# What alice herself submits still goes to the inbox, also as a
	# raw request.
	echo "hello" | smimp-seal -i alice.key -r bob.pub | smimp-send -i alice.key >/dev/null
	echo "again" | smimp-seal -i alice.key -r bob.pub >m2.age
	run -0 resubmit alice.key bob@example.org m2.age again2
	[ "$output" = 201 ]
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 2 fetched: 2 to the inbox, 0 to Other, 0 dropped" ]
}

@test "with --mime, a replay is filed as smimp's notice that it did not verify" {
	echo "pay invoice 18" | smimp-seal -i alice.key -r bob.pub -r mallory.pub >m.age
	run -0 resubmit mallory.key bob@example.org m.age again3
	[ "$output" = 201 ]
	run -0 --separate-stderr fetch_bob --mime
	[ "$stderr" = "smimp-fetch: 1 fetched: 0 to the inbox, 1 to Other, 0 dropped" ]
	run -0 cat mail/.Other/new/*
	grep -q '^X-Smimp-Verified: no$' <<<"$output"
	! grep -q 'invoice' <<<"$output" || false
}
