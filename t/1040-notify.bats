#!/usr/bin/env bats
# smimp-revoke --notify across real servers: one signed identity notice
# to each trusted and known contact with a pinned identity, none to the
# blocked, the unpinned or a domain; after a rotation, signed by the new
# key; before a revocation is published, carrying it; a contact that
# cannot be reached is named and makes the exit status 75, the others
# are told still.

load helper

setup() {
	common_setup
	make_cert
	mkid alice alice@example.org
	mkid carol carol@example.org
	mkid bob bob@example.net
	mkid dave dave@example.net
	mkid erin erin@example.net
	mkid frank frank@example.com
	for u in alice carol; do
		smimpd --data org --domain example.org adduser $u@example.org $u.pub
	done
	for u in bob dave erin; do
		smimpd --data net --domain example.net adduser $u@example.net $u.pub
	done
	ORG=$(free_port)
	NET=$(free_port)
	COM=$(free_port)	# nothing listens there: example.com is down
	export SMIMP_RESOLVE="example.org=127.0.0.1:$ORG,example.net=127.0.0.1:$NET,example.com=127.0.0.1:$COM"
	export SMIMP_CACERT="$PWD/cert.pem"
	printf 'resolve %s\ncacert %s\nretry-base 1\nretry-max 2\n' \
		"$SMIMP_RESOLVE" "$SMIMP_CACERT" >common.conf
	# alice's contacts: bob trusted, carol known, dave blocked; erin has
	# a tier but no pinned identity; all of example.net is trusted.
	export ALICEHOME="$BATS_TEST_TMPDIR/alicehome"
	trust_as "$ALICEHOME" bob.pub trusted
	trust_as "$ALICEHOME" carol.pub known
	trust_as "$ALICEHOME" dave.pub known
	SMIMP_HOME="$ALICEHOME" smimp-trust set dave@example.net blocked >/dev/null
	SMIMP_HOME="$ALICEHOME" smimp-trust set erin@example.net trusted >/dev/null
	SMIMP_HOME="$ALICEHOME" smimp-trust set @example.net trusted >/dev/null
	# Each of them has alice pinned, as she was.
	for u in bob carol dave erin; do
		trust_as "$BATS_TEST_TMPDIR/home-$u" alice.pub trusted
	done
	cp -p alice.key alice0.key
	cp -p alice.pub alice0.pub
}

teardown() { stop_servers org net; }

as_alice() { SMIMP_HOME="$ALICEHOME" "$@"; }
# fetch NAME: NAME's mailbox into mail-NAME, in NAME's own home.
fetch() { SMIMP_HOME="$BATS_TEST_TMPDIR/home-$1" smimp-fetch -i "$1.key" -d "mail-$1"; }
# open_as NAME FILE [FLAGS]: open FILE as NAME.
open_as() { local u=$1; shift; SMIMP_HOME="$BATS_TEST_TMPDIR/home-$u" smimp-open -i "$u.key" "$@"; }
# head_of FILE.pub: the base64 head of a log (doc/PROTOCOL.md, 2).
head_of() {
	python3 -c 'import sys, hashlib, base64
d = open(sys.argv[1], "rb").read()
r = d[d.rindex(b"smimp-identity/1\n"):]
h = hashlib.blake2b(b"smimp/1 record-hash\0" + r, digest_size=32).digest()
print(base64.b64encode(h).decode())' "$1"
}
# told_of WHAT: smimp-revoke's output said WHAT was published, then that
# bob and carol, and only they, were sent a notice.
told_of() {
	[ "${lines[0]}" = "alice@example.org: $1, published to example.org" ]
	[ "${lines[1]}" = "alice@example.org: notice sent to bob@example.net" ]
	[ "${lines[2]}" = "alice@example.org: notice sent to carol@example.org" ]
	[ "${#lines[@]}" = 3 ]
}
# field NAME FILE: a field of a notice's body.
field() { sed -n "s/^$1: //p" "$2" | head -1; }

@test "--rotate --notify: bob (trusted) and carol (known) each get one notice signed by the new key; the blocked and the unpinned get nothing" {
	start org example.org "$ORG"
	start net example.net "$NET"
	run -0 --separate-stderr as_alice smimp-revoke -i alice.key --rotate --notify
	told_of "identity key rotated, with a new encryption key (3 records in 'alice.pub')"
	[ -z "$stderr" ]
	served alice@example.org >served.pub
	cmp served.pub alice.pub
	wait_for org.log "relayed .* to example.net"
	run -0 --separate-stderr fetch bob
	[ "${stderr_lines[-1]}" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	[[ "${stderr_lines[0]}" == *"alice@example.org: identity key rotated; new encryption key; 3 records, 1 before (followed from a message)" ]]
	run -0 --separate-stderr fetch carol
	[ "${stderr_lines[-1]}" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	for u in dave erin; do
		run -0 --separate-stderr fetch $u
		[ "$stderr" = "smimp-fetch: 0 fetched: 0 to the inbox, 0 to Other, 0 dropped" ]
	done
	! grep -q 'dave@\|erin@' org.log || false
	fp=$(smimp-keygen --fingerprint alice.pub)
	for u in bob carol; do
		tier=trusted
		n=$(ls mail-$u/new | wc -l)
		[ "$n" = 1 ]
		run -0 --separate-stderr open_as $u mail-$u/new/* -o body-$u
		[ "${stderr_lines[0]}" = "smimp-open: from alice@example.org, fingerprint $fp, trusted" ]
		# smimp-fetch followed the log the notice carries already.
		[ "${stderr_lines[1]}" = "smimp-open: identity notice from alice@example.org: nothing new, the pinned log has its 3 records" ]
		head -1 body-$u | grep -qx 'smimp-identity-notice/1'
		[ "$(field address body-$u)" = alice@example.org ]
		[ "$(field fingerprint body-$u)" = "$fp" ]
		[ "$(field change body-$u)" = rotate ]
		[ "$(field first body-$u)" = 1 ]
		[ "$(field records body-$u)" = 3 ]
		# The log it carries is alice's new one, whose key signed it.
		run -0 --separate-stderr open_as $u mail-$u/new/* --json
		[[ "$output" == *'"type":"identity-notice"'* ]]
		[[ "$output" == *'"subject":"identity notice: alice@example.org has a new identity key and a new encryption key"'* ]]
		[[ "$output" == *'"to":[{"address":"'$u'@example.'*'"}],"cc":[]'* ]]
		run -0 --separate-stderr open_as $u mail-$u/new/* --headers -o headers-$u
		grep -qx "from-log-head: $(head_of alice.pub)" headers-$u
		[ "$(field head body-$u)" = "$(head_of alice.pub)" ]
	done
}

@test "--encryption --notify --json: the contacts notified, each with its message id, and none failed" {
	start org example.org "$ORG"
	start net example.net "$NET"
	key0=$(grep '^identity-secret: ' alice.key)
	run -0 --separate-stderr as_alice smimp-revoke -i alice.key --encryption --notify --json
	[ -z "$stderr" ]
	[[ "$output" == '{"address":"alice@example.org","change":"encryption-key","records":2,"voided":0,"log":"alice.pub","key_replaced":true,"published":true,"domain":"example.org","notified":[{"address":"bob@example.net","message_id":"'*'@example.org"},{"address":"carol@example.org","message_id":"'*'@example.org"}],"notify_failed":[]}' ]]
	mid=$(printf '%s' "$output" | sed 's/.*"bob@example.net","message_id":"\([^"]*\)".*/\1/')
	wait_for org.log "relayed $mid to example.net"
	# The same identity key signs it; the notice opens.
	[ "$(grep '^identity-secret: ' alice.key)" = "$key0" ]
	fetch bob 2>/dev/null
	run -0 --separate-stderr open_as bob mail-bob/new/* -o body
	[ "${stderr_lines[1]}" = "smimp-open: identity notice from alice@example.org: nothing new, the pinned log has its 2 records" ]
	[ "$(field change body)" = encryption-key ]
	[ "$(field first body)" = 1 ]
}

@test "--reason --notify: each notice is delivered before the revocation is published, and carries it" {
	start org example.org "$ORG"
	start net example.net "$NET"
	echo "sealed before" | smimp-seal -i alice.key -r bob.pub >m0.age
	run -0 --separate-stderr as_alice smimp-revoke -i alice.key --reason "laptop stolen" --notify
	told_of "identity revoked (2 records in 'alice.pub')"
	[ -z "$stderr" ]
	served alice@example.org >served.pub
	cmp served.pub alice.pub
	when=$(sed -n '/^type: revoke$/,/^date:/p' alice.pub | sed -n 's/^date: //p')
	# Relayed to example.net and taken there, then the revocation.
	relayed=$(grep -n "relayed .* to example.net" org.log | cut -d: -f1)
	revoked=$(grep -n "identity log of alice@example.org: 1 record(s) appended, revoked" org.log | cut -d: -f1)
	[ -n "$relayed" ]
	[ -n "$revoked" ]
	[ "$relayed" -lt "$revoked" ]
	grep -q "POST /smimp/v1/deliver 201" net.log
	# Nothing from alice is taken any more.
	run -1 --separate-stderr smimp-send -i alice0.key m0.age
	[[ "$stderr" == *"HTTP 401: revoked identity" ]]
	# Each contact has the notice; opening it says the identity is revoked.
	for u in bob carol; do
		run -0 --separate-stderr fetch $u
		[ "${stderr_lines[-1]}" = "smimp-fetch: 1 fetched: 0 to the inbox, 1 to Other, 0 dropped" ]
		run -5 --separate-stderr open_as $u mail-$u/.Other/new/*
		[ "$stderr" = "smimp-open: the identity of alice@example.org was revoked on $when (\"laptop stolen\"): nothing written" ]
		[ -z "$output" ]
	done
	run -0 --separate-stderr fetch dave
	[ "$stderr" = "smimp-fetch: 0 fetched: 0 to the inbox, 0 to Other, 0 dropped" ]
}

@test "a contact whose server is down: exit 75 and one line naming it; the others are told, the change stands" {
	trust_as "$ALICEHOME" frank.pub known
	start org example.org "$ORG"
	start net example.net "$NET"
	run -75 --separate-stderr as_alice smimp-revoke -i alice.key --rotate --notify
	told_of "identity key rotated, with a new encryption key (3 records in 'alice.pub')"
	[ "${#stderr_lines[@]}" = 1 ]
	[[ "$stderr" == "smimp-revoke: cannot notify frank@example.com: "* ]]
	served alice@example.org >served.pub
	cmp served.pub alice.pub
	[ "$(sum alice.key)" != "$(sum alice0.key)" ]
	wait_for org.log "relayed .* to example.net"
	for u in bob carol; do
		run -0 --separate-stderr fetch $u
		[ "${stderr_lines[-1]}" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	done
	# Nothing was queued for example.com.
	! grep -q 'example.com' org.log || false
}

@test "--notify with --no-publish is a usage error: nothing changes" {
	run -2 --separate-stderr as_alice smimp-revoke -i alice.key --rotate --notify --no-publish
	[ "$stderr" = "smimp-revoke: --notify and --no-publish exclude each other: notices go through the home server, which must know the change first (see 'smimp-revoke --help')" ]
	cmp alice.key alice0.key
	cmp alice.pub alice0.pub
}
