#!/usr/bin/env bats
# Taking keys back across real servers: smimp-revoke --rotate,
# --encryption and --reason published to the home server; the servers
# refuse retired and revoked keys; smimp-trust refresh follows what
# extends the pinned log and refuses a fork or a truncation; smimp-open
# refuses a revoked sender and notes a rotated one.

load helper

setup() {
	common_setup
	# alice0.key and the rest: what a thief who copied the files would hold.
	alice_and_bob_domains
}

teardown() {
	stop_servers org net
	[ -f "$BATS_TEST_TMPDIR/plan.pid" ] && kill -KILL "$(cat "$BATS_TEST_TMPDIR/plan.pid")" 2>/dev/null
	return 0
}

# proxy PLAN...: t/faults/flakyproxy.py at $ORG in front of example.org's
# server (moved to $ORG_REAL, started by the first call), following
# PLAN for the log's appends; its output in proxy.out.
proxy() {
	if [ -z "${ORG_REAL:-}" ]; then
		ORG_REAL=$(free_port)
		start org example.org "$ORG_REAL" --base-url "https://127.0.0.1:$ORG/smimp"
	fi
	printf '%s\n' "$@" >plan
	rm -f plan.pos
	python3 "$REPO/t/faults/flakyproxy.py" "$ORG" "$ORG_REAL" plan /log >proxy.out 2>&1 &
	server_up "$ORG"
}

proxy_stop() {
	kill -KILL "$(cat plan.pid)"
	while kill -0 "$(cat plan.pid)" 2>/dev/null; do sleep 0.1; done
	rm plan.pid
}


as_alice() { SMIMP_HOME="$ALICEHOME" "$@"; }
as_bob() { SMIMP_HOME="$BOBHOME" "$@"; }
fetch_bob() { as_bob smimp-fetch -i bob.key -d mail; }

@test "--rotate: published, the old key refused, followed by refresh; a message signed before still opens, with a note" {
	start org example.org "$ORG"
	start net example.net "$NET"
	# m0, signed by the first key, relayed: example.net caches that log.
	echo "before the rotation" | smimp-seal -i alice.key -r bob.pub >m0.age
	run -0 --separate-stderr smimp-send -i alice.key m0.age
	wait_for org.log "relayed $output to example.net"
	run -0 --separate-stderr smimp-revoke -i alice.key --rotate
	[ "$output" = "alice@example.org: identity key rotated, with a new encryption key (3 records in 'alice.pub'), published to example.org" ]
	[ -z "$stderr" ]
	# The key file is replaced, 0600, keeping the old encryption secret.
	[ "$(stat -c %a alice.key)" = 600 ]
	[ "$(sum alice.key)" != "$(sum alice0.key)" ]
	[ "$(grep -c '^retired-encryption-secret: ' alice.key)" = 1 ]
	[ "$(grep '^encryption-secret: ' alice0.key | cut -d' ' -f2)" = \
		"$(grep '^retired-encryption-secret: ' alice.key | cut -d' ' -f2)" ]
	# The directory serves the new log, which the .pub beside the key is.
	served alice@example.org >served.pub
	cmp served.pub alice.pub
	grep -q '^type: rotate$' alice.pub
	[ -z "$(ls org/spool 2>/dev/null)" ]
	[ -z "$(ls alice.key.tmp.* alice.pub.tmp.* 2>/dev/null)" ]
	# The old key no longer speaks for alice, to her own server.
	sleep 1		# dates are in seconds: sealed after the rotation
	echo "from the old key" | smimp-seal -i alice0.key -r bob.pub >old.age
	run -1 --separate-stderr smimp-send -i alice0.key old.age
	[[ "$stderr" == "smimp-send: "*": HTTP 401: "* ]]
	run -1 --separate-stderr smimp-fetch -i alice0.key -d amail
	[[ "$stderr" == *"HTTP 401"* ]]
	# A message signed by the new key is relayed: example.net fetches
	# the log again when the cached one does not verify the stamp.
	echo "after the rotation" | smimp-seal -i alice.key -r bob.pub >m1.age
	run -0 --separate-stderr smimp-send -i alice.key m1.age
	wait_for org.log "relayed $output to example.net"
	grep -q "POST /smimp/v1/deliver 201" net.log
	run -1 grep -q "delivery stamp does not verify" org.log net.log
	# A stamp by the old key, even in a delivery example.org signs, is
	# refused by example.net; one by the new key is taken.
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	for k in alice0 alice; do
		stamp=$("$SMIMP_BUILD/t/peertool" stamp $k.key alice@example.org bob@example.net "stamp-$k" old.age "$now")
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org/server.key example.org POST example.net \
			/smimp/v1/deliver old.age 'Smimp-From: alice@example.org' 'Smimp-To: bob@example.net' \
			'Smimp-Stamp-To: bob@example.net' "Smimp-Message-Id: stamp-$k" "Smimp-Stamp: $stamp" \
			"Smimp-Stamp-Date: $now")
		curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @old.age \
			"https://127.0.0.1:$NET/smimp/v1/deliver" | tr -d '\n' >"answer-$k"
	done
	[ "$(cat answer-alice0)" = '{"error":"delivery stamp does not verify"} 403' ]
	[[ "$(cat answer-alice)" == *" 201" ]]
	# bob follows the rotation; nothing more on a second refresh.
	run -0 --separate-stderr as_bob smimp-trust refresh -i bob.key alice@example.org
	[ "$output" = "alice@example.org: identity key rotated; new encryption key; 3 records, 1 before" ]
	run -0 --separate-stderr as_bob smimp-trust refresh -i bob.key
	[ "$output" = "alice@example.org: unchanged (3 records)" ]
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 3 fetched: 2 to the inbox, 1 to Other, 0 dropped" ]
	run -0 --separate-stderr as_bob smimp-open -i bob.key m0.age
	[ "$output" = "before the rotation" ]
	[ "${stderr_lines[1]}" = "smimp-open: the key that signed this message has since been rotated (on $(sed -n '/^type: rotate$/,/^date:/p' alice.pub | sed -n 's/^date: //p'))" ]
	run -0 --separate-stderr as_bob smimp-open -i bob.key m1.age
	[ "$output" = "after the rotation" ]
	[ "${#stderr_lines[@]}" = 1 ]
	# Sealed by the old key after the rotation: refused, nothing out.
	rotated=$(sed -n '/^type: rotate$/,/^date:/p' alice.pub | sed -n 's/^date: //p')
	run -5 --separate-stderr as_bob smimp-open -i bob.key old.age
	[ "$stderr" = "smimp-open: the message from alice@example.org is signed by a key that was rotated on $rotated, before it was sealed: nothing written" ]
	[ -z "$output" ]
}

@test "after --rotate, what the old key seals is refused by alice's own keys too, not opened as her own" {
	start org example.org "$ORG"
	enroll_device alice.key alice@example.org phone full
	smimp-fetch -i phone.key --log-only -q
	cp -p alice.key alice1.key; cp -p alice.pub alice1.pub
	echo "sealed before the rotation" | smimp-seal -i alice1.key -r bob.pub >m0.age
	run -0 smimp-revoke -i alice.key --rotate
	smimp-fetch -i phone.key --log-only -q
	rotated=$(sed -n '/^type: rotate$/,/^date:/p' alice.pub | sed -n 's/^date: //p')
	sleep 1		# dates are in seconds: sealed after the rotation
	# A copy of the key before the rotation, with the log it had.
	echo "from the old key" | smimp-seal -i alice1.key -r bob.pub >old.age
	for k in alice.key phone.key; do
		run -5 --separate-stderr as_alice smimp-open -i $k old.age
		[ "$stderr" = "smimp-open: the message from alice@example.org is signed by a key that was rotated on $rotated, before it was sealed: nothing written" ]
		[ -z "$output" ]
		run -0 --separate-stderr as_alice smimp-open -i $k m0.age
		[ "$output" = "sealed before the rotation" ]
	done
}

@test "--encryption: messages sealed to the old encryption key still open; new ones go to the new key" {
	start org example.org "$ORG"
	start net example.net "$NET"
	echo "to the old key" | smimp-seal -i alice.key -r bob.pub >m0.age
	run -0 --separate-stderr smimp-revoke -i bob.key --encryption
	[ "$output" = "bob@example.net: new encryption key (2 records in 'bob.pub'), published to example.net" ]
	served bob@example.net >served.pub
	cmp served.pub bob.pub
	# The identity key is the same: bob0.key still signs for bob.
	[ "$(grep '^identity-secret: ' bob.key)" = "$(grep '^identity-secret: ' bob0.key)" ]
	run -0 --separate-stderr as_alice smimp-trust refresh -i alice.key bob@example.net
	[ "$output" = "bob@example.net: new encryption key; 2 records, 1 before" ]
	echo "to the new key" | as_alice smimp-seal -i alice.key -r bob@example.net >m1.age
	run -0 --separate-stderr as_bob smimp-open -i bob.key m0.age
	[ "$output" = "to the old key" ]
	run -0 --separate-stderr as_bob smimp-open -i bob.key m1.age
	[ "$output" = "to the new key" ]
	# Only the new key opens m1.
	run -3 --separate-stderr as_bob smimp-open -i bob0.key m1.age
	[ "$stderr" = "smimp-open: cannot decrypt: the message is not encrypted to bob@example.net" ]
}

@test "a standard output that cannot be written: exit 1, the change made or not as the man page says" {
	[ -w /dev/full ] || skip "no /dev/full"
	before=$(sum bob.pub)
	run -1 --separate-stderr bash -c 'smimp-revoke -i bob.key --encryption --no-publish -w - >/dev/full'
	[ "$stderr" = "smimp-revoke: cannot write the new log to standard output: No space left on device" ]
	[ "$(sum bob.pub)" = "$before" ]
	run -1 --separate-stderr bash -c 'smimp-revoke -i bob.key --encryption --no-publish >/dev/full'
	[ "$stderr" = "smimp-revoke: cannot write to standard output: No space left on device" ]
	[ "$(grep -c '^type: encryption-key' bob.pub)" = 1 ]
	text=$(mandoc -Tascii "$REPO/man/smimp-revoke.1" | col -b | sed -n '/^EXIT STATUS/,/^EXAMPLES/p' | tr -s ' \n\t' ' ')
	[[ "$text" == *"Also standard output that cannot be written: with -w -, the new log, and nothing changed; otherwise the line (or, with --json, the object) that says what happened, and the change was made all the same."* ]]
}

@test "--no-publish -w: the new log is written for delivery by hand, the server is not asked" {
	run -0 --separate-stderr smimp-revoke -i bob.key --encryption --no-publish -w new.pub
	[ "$output" = "bob@example.net: new encryption key (2 records in 'bob.pub'), not published: give 'new.pub' to the administrator of example.net" ]
	cmp new.pub bob.pub
	[ "$(sum bob.key)" != "$(sum bob0.key)" ]
	run -0 smimp-keygen --fingerprint new.pub
	[ "$output" = "$(smimp-keygen --fingerprint bob0.pub)" ]
	# The administrator installs it: only a log that extends the stored one.
	run -1 --separate-stderr smimpd --data net --domain example.net updatelog bob@example.net alice.pub
	[ "$stderr" = "smimpd: 'alice.pub' is the identity of alice@example.org, not bob@example.net" ]
	run -0 --separate-stderr smimpd --data net --domain example.net updatelog bob@example.net new.pub
	[ "$output" = "bob@example.net: 2 records, 1 before" ]
	run -0 --separate-stderr smimpd --data net --domain example.net updatelog bob@example.net new.pub
	[ "$output" = "bob@example.net: unchanged (2 records)" ]
	run -5 --separate-stderr smimpd --data net --domain example.net updatelog bob@example.net bob0.pub
	[ "$stderr" = "smimpd: the identity log of bob@example.net is truncated: 1 records, 2 pinned" ]
	start net example.net "$NET"
	served bob@example.net >served.pub
	cmp served.pub new.pub
	run -0 --separate-stderr smimp-revoke -i bob.key --encryption --no-publish --json
	[ "$output" = '{"address":"bob@example.net","change":"encryption-key","records":3,"voided":0,"log":"bob.pub","key_replaced":true,"published":false,"domain":"example.net"}' ]
	run -2 --separate-stderr smimp-revoke -i bob.key --encryption --no-publish --json -w -
	[ "$stderr" = "smimp-revoke: --json and -w - both write to standard output (see 'smimp-revoke --help')" ]
	# To standard output, the status goes to standard error.
	run -0 --separate-stderr smimp-revoke -i alice.key --rotate --no-publish -w -
	[ "$output" = "$(cat alice.pub)" ]
	[[ "$stderr" == "alice@example.org: identity key rotated, with a new encryption key (3 records in 'alice.pub'), not published: give 'alice.pub' to the administrator of example.org" ]]
}

@test "-w never replaces a secret key with the log: the key file, the recovery key, another key" {
	printf 'words\n' >pass
	chmod 600 pass
	smimp-keygen -u carol@example.org -o carol --passphrase-file pass >/dev/null 2>&1
	# --reason keeps the key file: -w bob.key put the log in its place.
	for f in bob.key bob.recovery carol.key; do
		before=$(sum "$f")
		run -1 --separate-stderr smimp-revoke -i bob.key --reason "lost" --no-publish -w "$f"
		[ "$stderr" = "smimp-revoke: '$f' holds a secret key: -w writes the new log, which would replace it; nothing changed" ]
		[ -z "$output" ]
		[ "$(sum "$f")" = "$before" ]
		cmp bob.pub bob0.pub
	done
	# A log there is replaced, as the page says.
	cp bob0.pub copy.pub
	run -0 --separate-stderr smimp-revoke -i bob.key --encryption --no-publish -w copy.pub
	cmp copy.pub bob.pub
}

@test "a publication that fails changes nothing: no server, or a server with other records" {
	sum0=$(sum alice.key); pub0=$(sum alice.pub)
	# No server listening: temporary failure.
	run -75 --separate-stderr smimp-revoke -i alice.key --rotate
	[[ "$stderr" == "smimp-revoke: "* ]]
	[ "$(sum alice.key)" = "$sum0" ]
	[ "$(sum alice.pub)" = "$pub0" ]
	[ -z "$(ls alice.key.tmp.* alice.pub.tmp.* 2>/dev/null)" ]
	# The server's log moved on elsewhere (another copy of the key).
	start org example.org "$ORG"
	run -0 --separate-stderr smimp-revoke -i alice0.key --encryption
	run -5 --separate-stderr smimp-revoke -i alice.key --encryption
	[[ "$stderr" == "smimp-revoke: the identity log example.org serves for alice@example.org changed elsewhere: it does not end where 'alice.pub' does (HTTP 409: the records do not extend the log: "* ]]
	[ "$(sum alice.key)" = "$sum0" ]
	[ "$(sum alice.pub)" = "$pub0" ]
	[ -z "$(ls alice.key.tmp.* alice.pub.tmp.* 2>/dev/null)" ]
}

@test "an interrupt while the server takes the record waits: the new key and log are put in place, none left staged" {
	# The record reaches the server over a second, its answer after.
	proxy slow
	sum0=$(sum alice.key)
	smimp-revoke -i alice.key --rotate >out 2>err &
	pid=$!
	wait_for proxy.out "begin /smimp/v1/users/alice@example.org/log"
	kill -TERM "$pid"
	kill -INT "$pid"
	rc=0; wait "$pid" || rc=$?
	[ "$rc" -eq 143 ]
	grep -q "slow /smimp/v1/users/alice@example.org/log 200" proxy.out
	[ "$(sum alice.key)" != "$sum0" ]
	served alice@example.org | cmp - alice.pub
	grep -q '^type: rotate$' alice.pub
	[ -z "$(ls alice.key.tmp.* alice.pub.tmp.* 2>/dev/null)" ]
	# The key on disk is the one the server knows.
	echo after | smimp-seal -i alice.key -r bob.pub -o m.age
	run -0 smimp-send -i alice.key m.age
}

@test "a publication whose answer is lost and that cannot be checked keeps the new key and log, named (exit 75)" {
	proxy hang-after pass
	sum0=$(sum alice.key); pub0=$(sum alice.pub)
	smimp-revoke -i alice.key --rotate >out 2>err &
	pid=$!
	wait_for proxy.out "hang-after /smimp/v1/users/alice@example.org/log 200"
	proxy_stop
	rc=0; wait "$pid" || rc=$?
	[ "$rc" -eq 75 ]
	key=$(ls alice.key.tmp.*); pub=$(ls alice.pub.tmp.*)
	# How the connection ended is libcurl's to say.
	[[ "$(cat err)" == "smimp-revoke: the new key is in '$key' and the new log in '$pub': example.org may have taken them, its answer lost (https://127.0.0.1:$ORG/smimp/v1/users/alice@example.org/log: "*")" ]]
	[ "$(wc -l <err)" -eq 1 ] && [ ! -s out ]
	[ "$(sum alice.key)" = "$sum0" ]
	[ "$(sum alice.pub)" = "$pub0" ]
	[ "$(stat -c %a "$key")" = 600 ]
	# It did: they are alice's key and log now.
	proxy pass
	served alice@example.org | cmp - "$pub"
	mv "$key" alice.key
	mv "$pub" alice.pub
	echo after | smimp-seal -i alice.key -r bob.pub -o m.age
	run -0 smimp-send -i alice.key m.age
}

@test "--reason: the server refuses everything from the revoked identity; smimp-open exits 5 and writes nothing" {
	start org example.org "$ORG"
	start net example.net "$NET"
	echo "sealed before" | smimp-seal -i alice.key -r bob.pub >m0.age
	run -0 --separate-stderr smimp-send -i alice.key m0.age
	wait_for org.log "relayed $output to example.net"
	key0=$(sum alice.key)
	run -0 --separate-stderr smimp-revoke -i alice.key --reason "laptop stolen"
	[ "$output" = "alice@example.org: identity revoked (2 records in 'alice.pub'), published to example.org" ]
	# The key file stays; the log says when and why.
	[ "$(sum alice.key)" = "$key0" ]
	grep -qx 'reason: laptop stolen' alice.pub
	when=$(sed -n '/^type: revoke$/,/^date:/p' alice.pub | sed -n 's/^date: //p')
	served alice@example.org >served.pub
	cmp served.pub alice.pub
	# Submissions and mailbox requests, with the log as it was too.
	run -1 --separate-stderr smimp-send -i alice0.key m0.age
	[[ "$stderr" == *"HTTP 401: revoked identity" ]]
	run -1 --separate-stderr smimp-fetch -i alice0.key -d amail
	[[ "$stderr" == *"HTTP 401: revoked identity"* ]]
	# Nothing more can be appended, nor sealed.
	run -5 --separate-stderr smimp-revoke -i alice.key --rotate
	[ "$stderr" = "smimp-revoke: the identity of alice@example.org is revoked already: nothing may follow" ]
	run -5 --separate-stderr smimp-seal -i alice.key -r bob.pub m0.age
	[ "$stderr" = "smimp-seal: the identity of alice@example.org is revoked: it seals nothing" ]
	# bob learns of it, and refuses the message sealed before.
	run -0 --separate-stderr as_bob smimp-trust refresh -i bob.key
	[ "$output" = "alice@example.org: revoked on $when (\"laptop stolen\"); 2 records, 1 before" ]
	run -5 --separate-stderr as_bob smimp-open -i bob.key -o out m0.age
	[ "$stderr" = "smimp-open: the identity of alice@example.org was revoked on $when (\"laptop stolen\"): nothing written" ]
	[ ! -e out ]
	run -5 --separate-stderr as_bob smimp-open -i bob.key m0.age
	[ -z "$output" ]
	# Fetched, it is not filed in the inbox.
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 1 fetched: 0 to the inbox, 1 to Other, 0 dropped" ]
}

@test "a directory serving a truncated or forked log is refused with exit 5, and the pin stays" {
	start org example.org "$ORG"
	start net example.net "$NET"	# it vouches for bob, who looks alice up
	run -0 smimp-revoke -i alice.key --encryption
	run -0 --separate-stderr as_bob smimp-trust refresh -i bob.key alice@example.org
	[ "$output" = "alice@example.org: new encryption key; 2 records, 1 before" ]
	pinned=$(sum "$BOBHOME/trust")
	# A fork: the same genesis, another record 1.
	cp -p alice0.key fork.key; cp -p alice0.pub fork.pub
	smimp-revoke -i fork.key --encryption --no-publish >/dev/null
	for log in alice0.pub fork.pub; do
		kill -TERM "$(cat org.pid)"; sleep 0.3
		smimpd --data org --domain example.org deluser alice@example.org
		smimpd --data org --domain example.org adduser alice@example.org "$log"
		start org example.org "$ORG"
		run -5 --separate-stderr as_bob smimp-trust refresh -i bob.key alice@example.org
		[ -z "$output" ]
		if [ "$log" = alice0.pub ]; then
			[ "$stderr" = "smimp-trust: the identity log of alice@example.org is truncated: 1 records, 2 pinned" ]
		else
			[ "$stderr" = "smimp-trust: the identity log of alice@example.org forks from the pinned one at record 1 (rewritten history)" ]
		fi
		[ "$(sum "$BOBHOME/trust")" = "$pinned" ]
		# fetch checks the directory's log as refresh does.
		run -5 --separate-stderr as_bob smimp-trust fetch -i bob.key --tier trusted alice@example.org
		[ -z "$output" ]
		if [ "$log" = alice0.pub ]; then
			[ "$stderr" = "smimp-trust: the identity log of alice@example.org is truncated: 1 records, 2 pinned" ]
		else
			[ "$stderr" = "smimp-trust: the identity log of alice@example.org forks from the pinned one" ]
		fi
		[ "$(sum "$BOBHOME/trust")" = "$pinned" ]
	done
	# An older copy from a file is the past: the pin stays, and that is all.
	run -0 as_bob smimp-trust add alice0.pub --tier trusted
	[ "$(sum "$BOBHOME/trust")" = "$pinned" ]
	# Another identity for the address: refused as well.
	mkid mallory alice@example.org
	kill -TERM "$(cat org.pid)"; sleep 0.3
	smimpd --data org --domain example.org deluser alice@example.org
	smimpd --data org --domain example.org adduser alice@example.org mallory.pub
	start org example.org "$ORG"
	run -5 --separate-stderr as_bob smimp-trust refresh -i bob.key
	[[ "$stderr" == "smimp-trust: another identity for alice@example.org: fingerprint "* ]]
	[ "$(sum "$BOBHOME/trust")" = "$pinned" ]
}

@test "the append endpoint: only the owner, only records that chain and verify" {
	start org example.org "$ORG"
	url="https://127.0.0.1:$ORG/smimp/v1/users"
	smimp-revoke -i alice.key --encryption --no-publish >/dev/null
	tail -c +$(($(stat -c %s alice0.pub) + 1)) alice.pub >rec1
	post() { # KEY ADDRESS FILE: status and answer
		local h
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" "$1" POST example.org "/smimp/v1/users/$2/log" "$3")
		curl -s -w ' %{http_code}' --cacert cert.pem "${h[@]/#/-H}" --data-binary @"$3" "$url/$2/log" | tr -d '\n'
	}
	mkid carol carol@example.org
	smimpd --data org --domain example.org adduser carol@example.org carol.pub
	run -0 post carol.key alice@example.org rec1
	[ "$output" = '{"error":"only its owner appends to a log"} 403' ]
	run -0 curl -s -w ' %{http_code}' --cacert cert.pem --data-binary @rec1 "$url/alice@example.org/log"
	[[ "$output" == *" 401" ]]
	printf 'not a record\n' >junk
	run -0 post alice0.key alice@example.org junk
	[[ "$output" == '{"error":"the records do not extend the log: malformed identity record 1: '*'"} 400' ]]
	served alice@example.org >before.pub
	cmp before.pub alice0.pub
	run -0 post alice0.key alice@example.org rec1
	[[ "$output" == '{"address":"alice@example.org","records":2,"head":"'*'","revoked":false} 200' ]]
	served alice@example.org >after.pub
	cmp after.pub alice.pub
	# The same records again (a retry): 200, nothing changes.
	run -0 post alice0.key alice@example.org rec1
	[[ "$output" == *'"records":2,'*' 200' ]]
	# Records for an older head: 409.
	cp -p alice0.key f.key; cp -p alice0.pub f.pub
	smimp-revoke -i f.key --encryption --no-publish >/dev/null
	tail -c +$(($(stat -c %s alice0.pub) + 1)) f.pub >frec
	run -0 post alice0.key alice@example.org frec
	[ "$output" = '{"error":"the records do not extend the log: they fork from it at record 1, and are no recovery"} 409' ]
	served alice@example.org >after2.pub
	cmp after2.pub alice.pub
}

@test "a passphrase-protected key is replaced under the same passphrase; a wrong one changes nothing" {
	(umask 077; echo 'secret words' >pass; echo 'wrong words' >bad)
	smimp-keygen -u carol@example.org -o carol --passphrase-file pass >/dev/null 2>&1
	key0=$(sum carol.key); pub0=$(sum carol.pub)
	run -1 --separate-stderr smimp-revoke -i carol.key --rotate --no-publish --passphrase-file bad
	[ "$stderr" = "smimp-revoke: 'carol.key': wrong passphrase" ]
	[ "$(sum carol.key)" = "$key0" ]
	[ "$(sum carol.pub)" = "$pub0" ]
	run -0 --separate-stderr smimp-revoke -i carol.key --rotate --no-publish --passphrase-file pass
	[ "$(stat -c %a carol.key)" = 600 ]
	head -1 carol.key | grep -qx -- '-----BEGIN AGE ENCRYPTED FILE-----'
	[ "$(sum carol.key)" != "$key0" ]
	run -1 --separate-stderr smimp-keygen --export-age -i carol.key --passphrase-file bad
	run -0 smimp-keygen --export-age -i carol.key --passphrase-file pass
	# It signs for the new log: sealing checks the key against it.
	echo hi | smimp-seal -i carol.key --passphrase-file pass -r bob.pub >m.age
	SMIMP_HOME="$BATS_TEST_TMPDIR/bobhome" smimp-trust add carol.pub >/dev/null
	run -0 --separate-stderr as_bob smimp-open -i bob.key m.age
	[ "$output" = hi ]
}

@test "a key file keeps at most 64 retired encryption secrets, the newest first; a misplaced line is refused" {
	for i in $(seq 64); do
		smimp-revoke -i bob.key --encryption --no-publish >/dev/null || false
	done
	cp -p bob.key prev.key
	smimp-revoke -i bob.key --encryption --no-publish >/dev/null
	[ "$(grep -c '^retired-encryption-secret: ' bob.key)" = 64 ]
	[ "$(grep -c '^type: encryption-key$' bob.pub)" = 65 ]
	# The newest first; the first secret of all was dropped.
	[ "$(grep -m1 '^retired-encryption-secret: ' bob.key | cut -d' ' -f2)" = \
		"$(grep '^encryption-secret: ' prev.key | cut -d' ' -f2)" ]
	run -1 grep -q "$(grep '^encryption-secret: ' bob0.key | cut -d' ' -f2)" bob.key
	# A retired secret before the current one is not the file's grammar.
	(umask 077; { sed -n 1,3p bob.key; sed -n 5p bob.key; sed -n 4p bob.key; } >swapped.key)
	run -3 --separate-stderr smimp-keygen --export-age -i swapped.key
	[ "$stderr" = "smimp-keygen: 'swapped.key': malformed secret key file" ]
}
