#!/usr/bin/env bats
# Directory lookups (doc/PROTOCOL.md, "Directory lookups"): only signed
# requests are answered, by a user of the domain (or her recovery key), a
# user of another domain (her key from her own domain's directory) or a
# server; each requester, and each other domain as a whole, is rate
# limited; the clients sign every lookup; two servers that look each
# other's users up at once do not wait on each other for ever.

load helper

# (No loop here counts in $i: bats before 1.10 changes it in run.)

setup() {
	common_setup
	alice_and_bob_domains
	mkid carol carol@example.org
	mkid dave dave@example.net
	smimpd --data org --domain example.org adduser carol@example.org carol.pub
	smimpd --data net --domain example.net adduser dave@example.net dave.pub
	ALICE_LOG="https://127.0.0.1:$ORG/smimp/v1/users/alice@example.org/log"
	CAROL_LOG="https://127.0.0.1:$ORG/smimp/v1/users/carol@example.org/log"
}

teardown() { stop_servers org net; }

# ask KEY URL: a lookup at example.org signed by KEY; the body, a space
# and the status (a test compares "${output//$'\n'/}", or the status
# alone, "${output##* }").
ask() { signed_get "$1" example.org "$2" -w ' %{http_code}'; }

# ask_server SERVERKEY DOMAIN URL: the same signed server:DOMAIN.
ask_server() {
	local h
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server "$1" "$2" GET example.org "/${3#*://*/}")
	curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" "$3"
}

@test "an unsigned lookup gets 401; a local user, her recovery key, another domain's user and a server get the log" {
	start org example.org "$ORG"
	start net example.net "$NET"
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "$ALICE_LOG"
	[ "${output//$'\n'/}" = '{"error":"missing or malformed request signature"} 401' ]
	run -0 curl -s --cacert cert.pem -o /dev/null -w '%{http_code}' -I "$ALICE_LOG"
	[ "$output" = 401 ]
	# A local user.
	signed_get carol.key example.org "$ALICE_LOG" >got.pub
	cmp got.pub alice.pub
	# Her recovery key, as recovery:ADDRESS.
	signed_get carol.recovery example.org "$ALICE_LOG" >got.pub
	cmp got.pub alice.pub
	# A user of example.net: example.org asks example.net for her log,
	# signed by its own server key.
	signed_get bob.key example.org "$ALICE_LOG" >got.pub
	cmp got.pub alice.pub
	grep -q 'GET /smimp/v1/users/bob@example.net/log 200' net.log
	# example.net's server.
	run -0 ask_server net/server.key example.net "$ALICE_LOG"
	[ "${output##* }" = 200 ]
	[ "$(sed '$d' <<<"$output")" = "$(cat alice.pub)" ]
	# What an address the directory does not know gets, signed.
	run -0 ask carol.key "https://127.0.0.1:$ORG/smimp/v1/users/nobody@example.org/log"
	[ "${output//$'\n'/}" = '{"error":"unknown user"} 404' ]
}

@test "a forged signature, a replayed nonce, an unknown or revoked signer: 401; a forgery in another's name costs her domain at most one fetch more" {
	start org example.org "$ORG"
	start net example.net "$NET"
	# alice's name, another key.
	mkid mallory alice@example.org
	run -0 ask mallory.key "$CAROL_LOG"
	[ "${output//$'\n'/}" = '{"error":"bad signature"} 401' ]
	# bob's name, another key: example.org fetches bob's log, and once
	# more when it does not verify, then refuses; again and again, it
	# does not ask example.net more.
	mkid mallory2 bob@example.net
	run -0 ask bob.key "$CAROL_LOG"
	[ "${output##* }" = 200 ]
	for _ in 1 2 3; do
		run -0 ask mallory2.key "$CAROL_LOG"
		[ "${output//$'\n'/}" = '{"error":"bad signature"} 401' ]
	done
	[ "$(grep -c 'GET /smimp/v1/users/bob@example.net/log 200' net.log)" = 2 ]
	# Users nobody publishes: here answered as a signature by another
	# key in an account's name is (mallory's in alice's, above), so that
	# whoever signs is not told who has an account; and at example.net.
	mkid nobody nobody@example.org
	run -0 ask nobody.key "$CAROL_LOG"
	[ "${output//$'\n'/}" = '{"error":"bad signature"} 401' ]
	mkid stranger stranger@example.net
	run -0 ask stranger.key "$CAROL_LOG"
	[ "${output//$'\n'/}" = '{"error":"bad signature"} 401' ]
	grep -q 'GET /smimp/v1/users/stranger@example.net/log 404' net.log
	# A server key that is not the domain's.
	"$SMIMP_BUILD/t/peertool" server-key junk.key >/dev/null
	run -0 ask_server junk.key example.net "$CAROL_LOG"
	[ "${output//$'\n'/}" = '{"error":"bad signature"} 401' ]
	# The domain's key, its name not written normalized: another
	# spelling would have nonces of its own.
	run -0 ask_server net/server.key EXAMPLE.net "$CAROL_LOG"
	[ "${output//$'\n'/}" = '{"error":"missing or malformed server signature"} 401' ]
	run -0 ask_server net/server.key example.net "$CAROL_LOG"
	[ "${output##* }" = 200 ]
	# The same request twice: the nonce is spent.
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key GET example.org /smimp/v1/users/carol@example.org/log)
	run -0 curl -s --cacert cert.pem -o /dev/null -w '%{http_code}' "${h[@]/#/-H}" "$CAROL_LOG"
	[ "$output" = 200 ]
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" "$CAROL_LOG"
	[ "${output//$'\n'/}" = '{"error":"replayed request"} 401' ]
	# Signed for another domain's server.
	run -0 signed_get alice.key example.net "$CAROL_LOG" -w ' %{http_code}'
	[ "${output//$'\n'/}" = '{"error":"bad signature"} 401' ]
	# Revoked, alice's key reads only her own log; her recovery key
	# reads any.
	run -0 smimp-revoke -i alice.key --reason "lost"
	run -0 ask alice.key "$CAROL_LOG"
	[ "${output//$'\n'/}" = '{"error":"revoked identity"} 401' ]
	# Only alice learns it so: another key in her name does not.
	run -0 ask mallory.key "$CAROL_LOG"
	[ "${output//$'\n'/}" = '{"error":"bad signature"} 401' ]
	signed_get alice.key example.org "$ALICE_LOG" >got.pub
	cmp got.pub alice.pub
	grep -q '^type: revoke$' got.pub
	run -0 ask alice.recovery "$CAROL_LOG"
	[ "${output##* }" = 200 ]
}

@test "lookups are limited per requester and per other domain: 429 with Retry-After, and nobody else is held back" {
	printf 'rate-lookup 3\nrate-lookup-domain 4\n' >>common.conf
	start org example.org "$ORG"
	start net example.net "$NET"
	for _ in 1 2 3; do
		run -0 ask alice.key "$CAROL_LOG"
		[ "${output##* }" = 200 ]
	done
	run -0 signed_get alice.key example.org "$CAROL_LOG" -D headers -w ' %{http_code}'
	[ "${output//$'\n'/}" = '{"error":"rate limit"} 429' ]
	grep -qiE '^retry-after: (19|20|21)'$'\r''$' headers
	# Not the requester: carol looks up as before.
	run -0 ask carol.key "$ALICE_LOG"
	[ "${output##* }" = 200 ]
	# Forgeries in carol's name spend none of hers: 2 left.
	mkid mallory carol@example.org
	for _ in 1 2 3; do
		run -0 ask mallory.key "$ALICE_LOG"
		[ "${output##* }" = 401 ]
	done
	for _ in 1 2; do
		run -0 ask carol.key "$ALICE_LOG"
		[ "${output##* }" = 200 ]
	done
	# example.net's users and its server share 4 a minute.
	for k in bob dave; do
		for _ in 1 2; do
			run -0 ask $k.key "$ALICE_LOG"
			[ "${output##* }" = 200 ]
		done
	done
	run -0 ask_server net/server.key example.net "$ALICE_LOG"
	[ "${output//$'\n'/}" = '{"error":"rate limit"} 429' ]
	run -0 ask_server org/server.key example.org "$ALICE_LOG"
	[ "${output##* }" = 200 ]
	# A client says so, as a temporary failure.
	run -75 --separate-stderr env SMIMP_HOME="$ALICEHOME" smimp-trust fetch -i alice.key carol@example.org
	[ "$stderr" = "smimp-trust: carol@example.org: the directory of example.org refused the lookup signed by alice@example.org (HTTP 429: rate limit)" ]
	printf 'rate-lookup x\nrate-lookup-domain 1000001\n' >bad.conf
	run -2 --separate-stderr smimpd -n -f bad.conf
	grep -qx 'smimpd: bad.conf:1: rate-lookup is a number per minute, 0 for no limit' <<<"$stderr"
	grep -qx 'smimpd: bad.conf:2: rate-lookup-domain is a number per minute, 0 for no limit' <<<"$stderr"
}

@test "smimp-trust fetch and refresh sign with -i, or the default identity, and say so when there is none" {
	# erin's default identity, under a passphrase read from a file.
	home="$BATS_TEST_TMPDIR/erinhome"
	(umask 077; printf 'pass phrase\n' >pass)
	SMIMP_HOME="$home" smimp-keygen -u erin@example.org --passphrase-file pass >/dev/null 2>&1
	smimpd --data org --domain example.org adduser erin@example.org "$home/identity.pub"
	start org example.org "$ORG"
	start net example.net "$NET"
	run -0 --separate-stderr env SMIMP_HOME="$home" smimp-trust fetch -i alice.key carol@example.org
	[ "$output" = "carol@example.org known $(smimp-keygen --fingerprint carol.pub)" ]
	grep -q 'GET /smimp/v1/users/carol@example.org/log 200' org.log
	run -0 --separate-stderr env SMIMP_HOME="$home" smimp-trust fetch --passphrase-file pass bob@example.net
	[ "$output" = "bob@example.net known $(smimp-keygen --fingerprint bob.pub)" ]
	run -0 --separate-stderr env SMIMP_HOME="$home" smimp-trust refresh --passphrase-file pass
	[ "$output" = $'carol@example.org: unchanged (1 records)\nbob@example.net: unchanged (1 records)' ] ||
		[ "$output" = $'bob@example.net: unchanged (1 records)\ncarol@example.org: unchanged (1 records)' ]
	# A wrong passphrase, or no identity at all: one line, nothing asked.
	(umask 077; printf 'wrong\n' >bad)
	run -1 --separate-stderr env SMIMP_HOME="$home" smimp-trust refresh --passphrase-file bad
	[[ "$stderr" == "smimp-trust: directory lookups are signed: "* ]]
	[ -z "$output" ]
	run -1 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/none" smimp-trust fetch bob@example.net
	[ "$stderr" = "smimp-trust: directory lookups are signed: no identity: '$BATS_TEST_TMPDIR/none/identity.key' does not exist (run smimp-keygen, or name a key with -i)" ]
	[ ! -e "$BATS_TEST_TMPDIR/none/trust" ]
	run -1 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/none" smimp-trust refresh bob@example.net
	[ "$stderr" = "smimp-trust: directory lookups are signed: no identity: '$BATS_TEST_TMPDIR/none/identity.key' does not exist (run smimp-keygen, or name a key with -i)" ]
	[ "$(grep -c 'GET /smimp/v1/users/bob@example.net/log' net.log)" = 2 ]
}

@test "seal to a recipient never pinned: looked up signed by the sender, pinned, delivered, opened" {
	start org example.org "$ORG"
	start net example.net "$NET"
	home="$BATS_TEST_TMPDIR/carolhome"
	echo "hello dave" >msg
	run -0 --separate-stderr env SMIMP_HOME="$home" smimp-seal -i carol.key -r dave@example.net -o m.age msg
	[ "$stderr" = "smimp-seal: pinned dave@example.net, fingerprint $(smimp-keygen --fingerprint dave.pub) (first use: check it with its owner)" ]
	grep -q 'GET /smimp/v1/users/dave@example.net/log 200' net.log
	# net asked org for carol's key to check the lookup.
	grep -q 'GET /smimp/v1/users/carol@example.org/log 200' org.log
	run -0 --separate-stderr env SMIMP_HOME="$home" smimp-send -i carol.key m.age
	wait_for org.log "relayed $output to example.net"
	trust_as "$BATS_TEST_TMPDIR/davehome" carol.pub
	run -0 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/davehome" smimp-fetch -i dave.key -d mail
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	run -0 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/davehome" smimp-open -i dave.key mail/new/*
	[ "$output" = "hello dave" ]
	# Without an identity, nothing is looked up.
	run -1 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/none" smimp-seal -r dave@example.net msg
	[ "$stderr" = "smimp-seal: no identity: '$BATS_TEST_TMPDIR/none/identity.key' does not exist (run smimp-keygen, or name a key with -i)" ]
}

@test "two servers looking each other's users up at once, with two workers each, neither hang nor amplify" {
	printf 'workers 2\n' >>common.conf
	for n in 1 2 3 4 5 6; do
		mkid u$n u$n@example.org
		mkid v$n v$n@example.net
		smimpd --data org --domain example.org adduser u$n@example.org u$n.pub
		smimpd --data net --domain example.net adduser v$n@example.net v$n.pub
	done
	start org example.org "$ORG"
	start net example.net "$NET"
	# Each lookup makes the server asked fetch the requester's log from
	# the other, which checks that fetch with the asking server's key.
	start=$SECONDS pids=
	for n in 1 2 3 4 5 6; do
		signed_get u$n.key example.net "https://127.0.0.1:$NET/smimp/v1/users/bob@example.net/log" \
			--max-time 60 -o /dev/null -w '%{http_code}\n' >>codes &
		pids="$pids $!"
		signed_get v$n.key example.org "$ALICE_LOG" \
			--max-time 60 -o /dev/null -w '%{http_code}\n' >>codes &
		pids="$pids $!"
	done
	wait $pids
	[ $((SECONDS - start)) -lt 10 ]
	[ "$(wc -l <codes)" = 12 ]
	# Each 200, or 503 when too many fetches were under way at once.
	! grep -qv '^\(200\|503\)$' codes || false
	# Asked again, one at a time: every one answered.
	for n in 1 2 3 4 5 6; do
		run -0 signed_get u$n.key example.net "https://127.0.0.1:$NET/smimp/v1/users/bob@example.net/log" \
			-o /dev/null -w '%{http_code}'
		[ "$output" = 200 ]
		run -0 ask v$n.key "$ALICE_LOG"
		[ "${output##* }" = 200 ]
	done
	# One fetch per user asked for, however often she asked.
	[ "$(grep -c 'GET /smimp/v1/users/v1@example.net/log 200' net.log)" = 1 ]
	[ "$(grep -c 'GET /smimp/v1/users/u1@example.org/log 200' org.log)" = 1 ]
}
