#!/usr/bin/env bats
# Following pinned identities without smimp-trust refresh: smimp-open
# and smimp-fetch follow the newer log that a verified message carries;
# smimp-seal checks a pinned recipient against its directory again once
# the last check is older than the refresh interval.  Nothing is
# followed that does not extend the pin, and a message whose signature
# does not verify is refused as such before its sender's state counts.

load helper

setup() {
	common_setup
	two_domains
	FP=$(smimp-keygen --fingerprint alice.pub)
}

teardown() {
	stop_servers org net
	[ -z "${LISTENER:-}" ] || kill "$LISTENER" 2>/dev/null || true
}

as_alice() { SMIMP_HOME="$ALICEHOME" "$@"; }
as_bob() { SMIMP_HOME="$BOBHOME" "$@"; }

# servers: example.org and example.net, each serving its user's log.
servers() {
	smimpd --data org --domain example.org adduser alice@example.org alice.pub
	smimpd --data net --domain example.net adduser bob@example.net "${1:-bob.pub}"
	start org example.org "$ORG"
	start net example.net "$NET"
}

# date_of TYPE PUB: the date of the record of that type in PUB.
date_of() { sed -n "/^type: $1\$/,/^date:/p" "$2" | sed -n 's/^date: //p'; }

# relog MSG PUB [KEY]: MSG, sealed to bob, with its sender log replaced by
# PUB's (and from-log-head with it), sealed to bob again; signed again
# by KEY if given, else left with its old, now wrong, signature.
relog() {
	smimp-keygen --export-age -i bob.key >bob.agekey
	"$SMIMP_BUILD/t/agetool" -d -i bob.agekey <"$1" >env
	python3 - "$2" <<'EOF' >env2
import base64, hashlib, sys
log = open(sys.argv[1], 'rb').read()
last = log[log.rindex(b'smimp-identity/1\n'):]
head = hashlib.blake2b(b'smimp/1 record-hash\0' + last, digest_size=32).digest()
env = open('env', 'rb').read()
h, rest = env.split(b'\n\n', 1)
# The header grows with the log: its padding would no longer fit the
# bucket.  Sealed unpadded instead (as before padding), which a reader
# still opens: P || T dropped, the signature kept at the end.
if b'\npadding: ' in b'\n' + h:
    z = int.from_bytes(rest[-72:-64], 'big')
    rest = rest[:-72 - z] + rest[-64:]
out = []
for line in h.split(b'\n'):
    if line.startswith(b'padding: '):
        continue
    if line.startswith(b'sender-log: '):
        line = b'sender-log: ' + base64.b64encode(log)
    elif line.startswith(b'from-log-head: '):
        line = b'from-log-head: ' + base64.b64encode(head)
    out.append(line)
sys.stdout.buffer.write(b'\n'.join(out) + b'\n\n' + rest)
EOF
	if [ -n "${3:-}" ]; then
		"$SMIMP_BUILD/t/resign" "$3" <env2 >env3
		mv env3 env2
	fi
	"$SMIMP_BUILD/t/agetool" -e -r "$(smimp-keygen --export-age-recipient bob.pub)" <env2
}

@test "smimp-open follows a rotation that a verified message carries, says so once, and keeps the tier" {
	echo "before" | smimp-seal -i alice.key -r bob.pub >m0.age
	smimp-revoke -i alice.key --rotate --no-publish >/dev/null
	rotated=$(date_of rotate alice.pub)
	echo "after" | smimp-seal -i alice.key -r bob.pub >m1.age
	run -0 --separate-stderr as_bob smimp-open -i bob.key m1.age
	[ "$output" = after ]
	[ "${stderr_lines[0]}" = "smimp-open: alice@example.org: identity key rotated; new encryption key; 3 records, 1 before (followed from the message)" ]
	[ "${stderr_lines[1]}" = "smimp-open: from alice@example.org, fingerprint $FP, trusted" ]
	[ "${#stderr_lines[@]}" = 2 ]
	run -0 as_bob smimp-trust show alice@example.org
	[[ "$output" == *$'\ntier: trusted\n'*$'\nrecords: 3\n'* ]]
	# Followed once: the same message says nothing more.
	run -0 --separate-stderr as_bob smimp-open -i bob.key m1.age
	[ "${#stderr_lines[@]}" = 1 ]
	# The pin knows the rotation now: older messages are judged by it.
	run -0 --separate-stderr as_bob smimp-open -i bob.key m0.age
	[ "$output" = before ]
	[ "${stderr_lines[1]}" = "smimp-open: the key that signed this message has since been rotated (on $rotated)" ]
	sleep 1
	echo "old key" | smimp-seal -i alice0.key -r bob.pub >old.age
	run -5 --separate-stderr as_bob smimp-open -i bob.key old.age
	[ "$stderr" = "smimp-open: the message from alice@example.org is signed by a key that was rotated on $rotated, before it was sealed: nothing written" ]
}

@test "a message whose log another command followed further meanwhile opens: it is the sender's past, not a truncation" {
	smimp-revoke -i alice.key --rotate --no-publish >/dev/null
	echo "one" | smimp-seal -i alice.key -r bob.pub >m1.age
	smimp-revoke -i alice.key --encryption --no-publish >/dev/null
	echo "two" | smimp-seal -i alice.key -r bob.pub >m2.age
	# smimp-open of m1 has read the store (the first record pinned) and
	# waits for its input...
	{ until [ -e go ]; do sleep 0.05; done; cat m1.age; } |
		as_bob smimp-open -i bob.key >out1 2>err1 &
	pid=$!
	for _ in $(seq 100); do
		[[ "$(cat /proc/$pid/syscall 2>/dev/null)" == "0 0x0 "* ]] && break
		sleep 0.05
	done
	# ...while m2 is opened, and its log of 4 records followed.
	run --separate-stderr as_bob smimp-open -i bob.key m2.age
	touch go
	[ "$status" -eq 0 ] && [ "$output" = two ]
	rc=0; wait "$pid" || rc=$?
	[ "$rc" -eq 0 ]
	[ "$(cat out1)" = one ]
	[ "$(cat err1)" = "smimp-open: from alice@example.org, fingerprint $FP, trusted" ]
	run -0 as_bob smimp-trust show alice@example.org
	[[ "$output" == *$'\ntier: trusted\n'*$'\nrecords: 4\n'* ]]
}

@test "a message whose log does not extend the pin is refused with exit 5 and not followed: a fork, another identity" {
	smimp-revoke -i alice.key --encryption --no-publish >/dev/null
	as_bob smimp-trust add alice.pub >/dev/null
	pinned=$(sum "$BOBHOME/trust")
	# A fork: alice's first key, another record 1.
	cp -p alice0.key fork.key; cp -p alice0.pub fork.pub
	smimp-revoke -i fork.key --encryption --no-publish >/dev/null
	echo "fork" | smimp-seal -i fork.key -r bob.pub >fork.age
	run -5 --separate-stderr as_bob smimp-open -i bob.key -o out fork.age
	[ "$stderr" = "smimp-open: the identity log of alice@example.org forks from the pinned one at record 1 (rewritten history)" ]
	[ ! -e out ]
	[ "$(sum "$BOBHOME/trust")" = "$pinned" ]
	# Another identity claiming alice's address: its key is not alice's.
	mkid mallory alice@example.org
	echo "mallory" | smimp-seal -i mallory.key -r bob.pub >mallory.age
	run -5 --separate-stderr as_bob smimp-open -i bob.key mallory.age
	[ "$stderr" = "smimp-open: alice@example.org is pinned to fingerprint $FP but the message is signed by $(smimp-keygen --fingerprint mallory.pub)" ]
	[ -z "$output" ]
	# An older log than the pin (a prefix) opens, and the pin stays.
	echo "older" | smimp-seal -i alice0.key -r bob.pub >older.age
	run -0 --separate-stderr as_bob smimp-open -i bob.key older.age
	[ "$output" = older ]
	[ "$(sum "$BOBHOME/trust")" = "$pinned" ]
}

@test "the signature first: a forged message is refused as one (3), even with a log that says revoked, and nothing is followed" {
	echo "sealed before" | smimp-seal -i alice.key -r bob.pub >m.age
	smimp-revoke -i alice.key --reason "laptop stolen" --no-publish >/dev/null
	when=$(date_of revoke alice.pub)
	pinned=$(sum "$BOBHOME/trust")
	# The revoked log put in, the signature left as it was: a forgery.
	relog m.age alice.pub >forged.age
	run -3 --separate-stderr as_bob smimp-open -i bob.key -o out forged.age
	[ "$stderr" = "smimp-open: bad signature: the message from alice@example.org was altered or forged" ]
	[ ! -e out ]
	[ "$(sum "$BOBHOME/trust")" = "$pinned" ]
	# Signed again by alice's key: it verifies, and then the state
	# counts: the revocation is followed, and the message refused.
	relog m.age alice.pub alice.key >signed.age
	run -5 --separate-stderr as_bob smimp-open -i bob.key -o out signed.age
	[ "${stderr_lines[0]}" = "smimp-open: alice@example.org: revoked on $when (\"laptop stolen\"); 2 records, 1 before (followed from the message)" ]
	[ "${stderr_lines[1]}" = "smimp-open: the identity of alice@example.org was revoked on $when (\"laptop stolen\"): nothing written" ]
	[ ! -e out ]
	run -0 as_bob smimp-trust show alice@example.org
	[[ "$output" == *$'\nrevoked: yes'* ]]
	# The message sealed before is refused now too, by the pin.
	run -5 --separate-stderr as_bob smimp-open -i bob.key m.age
	[ "$stderr" = "smimp-open: the identity of alice@example.org was revoked on $when (\"laptop stolen\"): nothing written" ]
}

# forge_sig PUB N OUT: PUB with one character of record N's signature
# changed (records count from 0).
forge_sig() {
	python3 - "$1" "$2" "$3" <<'EOF'
import sys
log = open(sys.argv[1], 'rb').read()
recs = log.split(b'smimp-identity/1\n')[1:]
n = int(sys.argv[2])
lines = recs[n].split(b'\n')
i = max(k for k, l in enumerate(lines) if l.startswith(b'signature: '))
c = lines[i][12:13]
lines[i] = lines[i][:12] + (b'B' if c == b'A' else b'A') + lines[i][13:]
recs[n] = b'\n'.join(lines)
open(sys.argv[3], 'wb').write(b''.join(b'smimp-identity/1\n' + r for r in recs))
EOF
}

@test "a log that extends the pin has only its new records verified: a forged record after the pinned ones, or a forged pinned one, is refused (3), nothing followed" {
	echo "sealed before" | smimp-seal -i alice.key -r bob.pub >m.age
	smimp-revoke -i alice.key --encryption --no-publish >/dev/null
	pinned=$(sum "$BOBHOME/trust")
	# The pinned record as it is, the new one's signature forged.
	forge_sig alice.pub 1 forged1.pub
	cmp -n "$(stat -c %s alice0.pub)" alice0.pub forged1.pub
	relog m.age forged1.pub alice.key >forged1.age
	run -3 --separate-stderr as_bob smimp-open -i bob.key -o out forged1.age
	[ "$stderr" = "smimp-open: identity record 1: bad signature" ]
	[ ! -e out ]
	# The pinned record forged: not the pin's bytes, so verified whole.
	forge_sig alice.pub 0 forged0.pub
	relog m.age forged0.pub alice.key >forged0.age
	run -3 --separate-stderr as_bob smimp-open -i bob.key -o out forged0.age
	[ "$stderr" = "smimp-open: identity record 0: bad signature" ]
	[ ! -e out ]
	[ "$(sum "$BOBHOME/trust")" = "$pinned" ]
	# The true log: its new record verifies, and it is followed.
	relog m.age alice.pub alice.key >good.age
	run -0 --separate-stderr as_bob smimp-open -i bob.key good.age
	[ "$output" = "sealed before" ]
	[ "${stderr_lines[0]}" = "smimp-open: alice@example.org: new encryption key; 2 records, 1 before (followed from the message)" ]
}

@test "smimp-fetch follows a rotation carried by a fetched message and says so" {
	servers
	run -0 smimp-revoke -i alice.key --rotate
	echo "after the rotation" | smimp-seal -i alice.key -r bob.pub >m1.age
	run -0 --separate-stderr smimp-send -i alice.key m1.age
	wait_for org.log "relayed $output to example.net"
	run -0 --separate-stderr as_bob smimp-fetch -i bob.key -d mail --json
	[ "${stderr_lines[0]}" = "smimp-fetch: alice@example.org: identity key rotated; new encryption key; 3 records, 1 before (followed from a message)" ]
	[ "${#stderr_lines[@]}" = 1 ]
	[[ "$output" == '{"fetched":1,"inbox":1,"other":0,"dropped":0,"again":0,'* ]]
	run -0 as_bob smimp-trust show alice@example.org
	[[ "$output" == *$'\ntier: trusted\n'*$'\nrecords: 3\n'* ]]
}

@test "smimp-seal checks a pinned recipient again once the refresh interval passed, and follows it" {
	servers
	as_alice smimp-trust fetch -i alice.key bob@example.net >/dev/null
	grep -q '^checked: ' "$ALICEHOME/trust"
	run -0 smimp-revoke -i bob.key --encryption
	# Checked a moment ago: sealed to the pinned key, which bob0 opens.
	echo one >one
	as_alice smimp-seal -i alice.key -r bob@example.net -o m1.age one
	run -0 --separate-stderr as_bob smimp-open -i bob0.key m1.age
	[ "$output" = one ]
	# An interval of 0 (the config file): checked now, followed.
	echo 'refresh-interval 0' >"$ALICEHOME/config"
	run -0 --separate-stderr as_alice smimp-seal -i alice.key -r bob@example.net -o m2.age one
	[ "$stderr" = "smimp-seal: bob@example.net: new encryption key; 2 records, 1 before" ]
	run -3 --separate-stderr as_bob smimp-open -i bob0.key m2.age
	run -0 --separate-stderr as_bob smimp-open -i bob.key m2.age
	[ "$output" = one ]
	# Nothing new: silent.
	run -0 --separate-stderr as_alice smimp-seal -i alice.key -r bob@example.net -o m3.age one
	[ -z "$stderr" ]
	# The environment's word before the file's; a bad one is refused.
	SMIMP_REFRESH_INTERVAL=1d as_alice smimp-seal -i alice.key -r bob@example.net -o m4.age one
	run -2 --separate-stderr env SMIMP_REFRESH_INTERVAL=soon SMIMP_HOME="$ALICEHOME" smimp-seal -i alice.key -r bob@example.net one
	[ "$stderr" = "smimp-seal: SMIMP_REFRESH_INTERVAL: invalid refresh interval 'soon': seconds, or a number with s, m, h or d, up to 366 days" ]
}

@test "the checked date: refresh sets it; a store without one counts from when the entry was added" {
	servers
	trust_as "$ALICEHOME" bob.pub trusted
	run -0 smimp-revoke -i bob.key --encryption
	# Added just now, never checked: not due within a day.
	echo one | as_alice smimp-seal -i alice.key -r bob@example.net >m1.age 2>err
	[ ! -s err ]
	run -1 grep -q '^checked: ' "$ALICEHOME/trust"
	# Added long ago (a store from before "checked"): due.
	sed -i 's/^added: .*/added: 2020-01-01T00:00:00Z/' "$ALICEHOME/trust"
	run -0 --separate-stderr as_alice smimp-seal -i alice.key -r bob@example.net -o m2.age m1.age
	[ "$stderr" = "smimp-seal: bob@example.net: new encryption key; 2 records, 1 before" ]
	today=$(date -u +%Y-%m-%d)
	grep -q "^checked: ${today}T" "$ALICEHOME/trust"
	# A refresh, even of nothing new, sets it.
	sed -i 's/^checked: .*/checked: 2021-01-01T00:00:00Z/' "$ALICEHOME/trust"
	run -0 as_alice smimp-trust refresh -i alice.key bob@example.net
	[ "$output" = "bob@example.net: unchanged (2 records)" ]
	grep -q "^checked: ${today}T" "$ALICEHOME/trust"
	run -1 grep -q '^checked: 2021' "$ALICEHOME/trust"
}

@test "smimp-seal to a recipient whose directory now says revoked: exit 5, nothing written" {
	servers
	trust_as "$ALICEHOME" bob.pub trusted
	run -0 smimp-revoke -i bob.key --reason "left the company"
	when=$(date_of revoke bob.pub)
	run -5 --separate-stderr env SMIMP_REFRESH_INTERVAL=0 SMIMP_HOME="$ALICEHOME" smimp-seal -i alice.key -r bob@example.net -o out alice.pub
	[ "${stderr_lines[0]}" = "smimp-seal: bob@example.net: revoked on $when (\"left the company\"); 2 records, 1 before" ]
	[ "${stderr_lines[1]}" = "smimp-seal: the identity of bob@example.net was revoked on $when (\"left the company\"): nothing written" ]
	[ ! -e out ]
	[ -z "$(ls out.tmp.* 2>/dev/null)" ]
}

@test "smimp-seal offline seals to the pin with a warning; a directory serving another identity is refused (5)" {
	trust_as "$ALICEHOME" bob.pub trusted
	pinned=$(sum "$ALICEHOME/trust")
	export SMIMP_REFRESH_INTERVAL=0
	# No server listens: the pin holds, and the check is not recorded.
	run -0 --separate-stderr as_alice smimp-seal -i alice.key -r bob@example.net -o m.age alice.pub
	[[ "$stderr" == "smimp-seal: cannot check bob@example.net in its directory, sealing to the pinned identity: "* ]]
	[ "${#stderr_lines[@]}" = 1 ]
	[ "$(sum "$ALICEHOME/trust")" = "$pinned" ]
	run -0 --separate-stderr as_bob smimp-open -i bob.key -o got m.age
	cmp got alice.pub
	# The directory serves someone else's identity for bob: refused.
	mkid mallory bob@example.net
	servers mallory.pub
	run -5 --separate-stderr as_alice smimp-seal -i alice.key -r bob@example.net -o out alice.pub
	[[ "$stderr" == "smimp-seal: another identity for bob@example.net: fingerprint "* ]]
	[ ! -e out ]
	[ "$(sum "$ALICEHOME/trust")" = "$pinned" ]
}

@test "smimp-seal offline to many recipients of one domain asks its server once, not once each" {
	for u in carol dave; do
		mkid "$u" "$u@example.net"
		trust_as "$ALICEHOME" "$u.pub" trusted
	done
	trust_as "$ALICEHOME" bob.pub trusted
	export SMIMP_REFRESH_INTERVAL=0
	# example.net's port takes each connection and closes it at once,
	# a line in conns for each, written before the close: the client
	# has exited, the line is there.
	python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
while True:
    c, _ = s.accept()
    with open("conns", "a") as f: f.write("c\n")
    c.close()' "$NET" 3>&- &
	LISTENER=$!
	for _ in $(seq 50); do
		curl -s "http://127.0.0.1:$NET/" >/dev/null || true
		[ -e conns ] && break
		sleep 0.1
	done
	: >conns
	run -0 --separate-stderr as_alice smimp-seal -i alice.key -r bob@example.net -o one.age alice.pub
	one=$(wc -l <conns)
	: >conns
	run -0 --separate-stderr as_alice smimp-seal -i alice.key -r bob@example.net -r carol@example.net -r dave@example.net -o three.age alice.pub
	[ "${#stderr_lines[@]}" = 3 ]
	for u in bob carol dave; do
		[[ "$stderr" == *"smimp-seal: cannot check $u@example.net in its directory, sealing to the pinned identity: "* ]]
	done
	[ "$one" -ge 1 ]
	[ "$(wc -l <conns)" = "$one" ]
	run -0 --separate-stderr as_bob smimp-open -i bob.key -o got three.age
	cmp got alice.pub
}

@test "smimp-trust refresh --json: one object per address, what changed or the error; the exit status as without" {
	servers
	trust_as "$ALICEHOME" bob.pub trusted
	run -0 smimp-revoke -i alice.key --rotate
	run -1 --separate-stderr as_bob smimp-trust refresh -i bob.key --json alice@example.org nobody@example.org
	[ "${lines[0]}" = '{"address":"alice@example.org","records_before":1,"records":3,"changes":["rotate","encryption-key"]}' ]
	[ "${lines[1]}" = '{"address":"nobody@example.org","error":"nobody@example.org: not found in the directory of example.org (HTTP 404)","status":1}' ]
	[ "${#lines[@]}" = 2 ]
	[ "$stderr" = "smimp-trust: nobody@example.org: not found in the directory of example.org (HTTP 404)" ]
	run -0 --separate-stderr as_bob smimp-trust refresh -i bob.key --json
	[ "$output" = '{"address":"alice@example.org","records_before":3,"records":3,"changes":[]}' ]
	# Revoked after its lookups: t/1130-lookups.bats says what it may
	# look up then.
	run -0 smimp-revoke -i bob.key --reason "gone"
	when=$(date_of revoke bob.pub)
	run -0 --separate-stderr as_alice smimp-trust refresh -i alice.key --json
	[ "$output" = "{\"address\":\"bob@example.net\",\"records_before\":1,\"records\":2,\"changes\":[\"revoke\"],\"revoked\":\"$when\",\"reason\":\"gone\"}" ]
	# A log that does not extend the pin: 5, as without --json.
	cp -p alice0.key fork.key; cp -p alice0.pub fork.pub
	smimp-revoke -i fork.key --encryption --no-publish >/dev/null
	SMIMP_HOME="$BATS_TEST_TMPDIR/c" smimp-trust add fork.pub >/dev/null
	run -5 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/c" smimp-trust refresh -i alice.key --json
	[ "$output" = '{"address":"alice@example.org","error":"the identity log of alice@example.org forks from the pinned one at record 1 (rewritten history)","status":5}' ]
	run -2 --separate-stderr as_bob smimp-trust list --json
	[ "$stderr" = "smimp-trust: --json goes with refresh (see 'smimp-trust --help')" ]
}
