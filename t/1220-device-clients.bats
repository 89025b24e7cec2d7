#!/usr/bin/env bats
# The commands with a device's key (-i): smimp-fetch brings the log
# beside the key up to date; smimp-seal names the device in the
# envelope and seals to every receiving device of both sides; smimp-open
# opens with any of them and shows "bob@example.net, device phone";
# each command does only what the device's scope allows; a removed
# device's messages no longer verify for a reader who refreshed; sent
# copies go to .Sent.  Real servers on loopback (bob's example.net,
# alice's example.org).

load helper

setup() {
	common_setup
	alice_and_bob_domains
	echo "Hello from one of bob's devices" >msg
}

teardown() {
	stop_servers org net
	[ -f bad.pid ] && kill "$(cat bad.pid)" 2>/dev/null
	return 0
}

as_alice() { SMIMP_HOME="$ALICEHOME" "$@"; }
as_bob() { SMIMP_HOME="$BOBHOME" "$@"; }
# keygen_device NAME [ADDRESS]: NAME.key for bob (or ADDRESS), what
# keygen printed in NAME.out (nothing may go to stderr), the code in $code.
keygen_device() {
	smimp-keygen --device "$1" -u "${2:-bob@example.net}" -o "$1" \
		--no-passphrase >"$1.out" 2>"$1.err" && [ ! -s "$1.err" ] || return 1
	code=$(sed -n 's/^code: \([A-Z2-7]\{5\}-[A-Z2-7]\{5\}\) (until .*)$/\1/p' "$1.out")
	[ -n "$code" ]
}
# enroll NAME SCOPE: a device of bob's with that scope, added with bob's
# key from what keygen printed, and its log beside its key (NAME.pub).
enroll() {
	keygen_device "$1" || return 1
	smimp-revoke -i bob.key --add-device "$1.out" --code "$code" \
		--scope "$2" >/dev/null 2>&1 || return 1
	smimp-fetch -i "$1.key" --log-only -q
}
fp() { smimp-keygen --fingerprint "$1"; }
# removed_on: the date of the last record of bob.pub.
last_date() { sed -n 's/^date: //p' bob.pub | tail -1; }

@test "fetch with a device's key writes the log beside it: first with the fingerprint, then what changed; a log that does not follow is refused, nothing written" {
	start net example.net "$NET"
	keygen_device phone
	smimp-revoke -i bob.key --add-device phone.out --code "$code" >/dev/null
	run -0 --separate-stderr smimp-fetch -i phone.key --log-only
	[ "$stderr" = "smimp-fetch: wrote the identity log of bob@example.net beside the key: 'phone.pub', fingerprint $(fp bob.pub) (compare it with the identity's)" ]
	[ -z "$output" ]
	cmp phone.pub bob.pub
	[ "$(stat -c %a phone.pub)" = 644 ]
	# Nothing new: nothing said.
	run -0 --separate-stderr smimp-fetch -i phone.key --log-only
	[ -z "$stderr$output" ]
	enroll tv receive
	run -0 --separate-stderr smimp-fetch -i phone.key --log-only
	[ "$stderr" = "smimp-fetch: bob@example.net: 1 device added; 3 records, 2 before (the log beside the key)" ]
	cmp phone.pub bob.pub
	# A log beside the key that the directory's does not extend.
	cp bob.key b2.key
	cp bob.pub b2.pub
	smimp-revoke -i b2.key --encryption --no-publish >/dev/null
	cp b2.pub phone.pub
	run -5 --separate-stderr smimp-fetch -i phone.key -d mail
	[[ "$stderr" == "smimp-fetch: the log of bob@example.net that its directory serves does not follow 'phone.pub': "*"; nothing written" ]]
	cmp phone.pub b2.pub
	[ ! -e mail ]
	# --log-only is a device's.
	run -2 --separate-stderr smimp-fetch -i bob.key --log-only
	[ "$stderr" = "smimp-fetch: --log-only is for a device's key: the identity key's log is the one smimp-keygen and smimp-revoke write (see 'smimp-fetch --help')" ]
}

@test "a device not enrolled, or whose log is missing: one line saying what to do" {
	start net example.net "$NET"
	keygen_device phone
	run -1 --separate-stderr as_bob smimp-seal -i phone.key -r alice.pub msg
	[ "$stderr" = "smimp-seal: no identity log beside the device key 'phone.key': 'phone.pub' does not exist (run smimp-fetch -i 'phone.key' to get it)" ]
	run -1 --separate-stderr as_bob smimp-open -i phone.key msg
	[ "$stderr" = "smimp-open: no identity log beside the device key 'phone.key': 'phone.pub' does not exist (run smimp-fetch -i 'phone.key' to get it)" ]
	# Not enrolled: its server does not know the signer.
	run -1 --separate-stderr smimp-fetch -i phone.key --log-only
	[ "$stderr" = "smimp-fetch: bob@example.net: the directory of example.net refused the lookup signed by device:phone:bob@example.net (HTTP 401: unknown signer)" ]
	[ ! -e phone.pub ]
}

@test "seal with bob's phone: from-device in the envelope, every receiving key of both sides; alice opens it as from bob's phone, his other devices and his identity key as their own" {
	start net example.net "$NET"
	start org example.org "$ORG"
	enroll phone full
	enroll ci send
	enroll tv receive
	as_alice smimp-trust refresh -i alice.key bob@example.net >/dev/null
	# The phone seals to the devices its own log names: up to date.
	smimp-fetch -i phone.key --log-only -q
	run -0 --separate-stderr as_bob smimp-seal -i phone.key -r alice@example.org -o m msg
	[ -z "$stderr" ]
	# alice; bob's identity, phone and tv (ci only sends): 4 stanzas.
	[ "$(grep -ac '^-> X25519 ' m)" = 4 ]
	run -0 --separate-stderr as_alice smimp-open -i alice.key m
	[ "$output" = "$(cat msg)" ]
	[ "$stderr" = "smimp-open: from bob@example.net, device phone, fingerprint $(fp bob.pub), trusted" ]
	run -0 --separate-stderr as_alice smimp-open -i alice.key --headers m
	[ "${lines[0]}" = "type: email" ]
	[ "${lines[1]}" = "from: bob@example.net, device phone" ]
	[[ "${lines[2]}" == "from-fingerprint: "* ]]
	[[ "${lines[3]}" == "from-log-head: "* ]]
	[[ "${lines[4]}" == "to: alice@example.org "* ]]
	! grep -q '^from-device' <<<"$output" || false
	run -0 --separate-stderr as_alice smimp-open -i alice.key --json m
	[[ "$output" == '{"from":"bob@example.net","fingerprint":"'*'","tier":"trusted",'*',"from_device":"phone","body":"Hello from one of bob'"'"'s devices\n","body_encoding":"utf-8"}' ]]
	# bob's own: his tv, his identity key.
	for k in tv bob; do
		run -0 --separate-stderr as_bob smimp-open -i "$k.key" m
		[ "$output" = "$(cat msg)" ]
		[ "$stderr" = "smimp-open: from bob@example.net, device phone, fingerprint $(fp bob.pub), trusted (own identity)" ]
	done
	run -1 --separate-stderr as_bob smimp-open -i ci.key m
	[ "$stderr" = "smimp-open: 'ci.key' is the key of the device ci of bob@example.net, whose scope is send: it cannot open" ]
	# alice to bob: any of bob's receiving devices opens it.
	run -0 as_alice smimp-seal -i alice.key -r bob@example.net -o m2 msg
	[ "$(grep -ac '^-> X25519 ' m2)" = 4 ]
	for k in phone tv bob; do
		run -0 --separate-stderr as_bob smimp-open -i "$k.key" m2
		[ "$output" = "$(cat msg)" ]
		[ "$stderr" = "smimp-open: from alice@example.org, fingerprint $(fp alice.pub), trusted" ]
	done
}

@test "what a scope does not allow: a send device cannot fetch or open, a receive device cannot seal or send" {
	start net example.net "$NET"
	enroll phone full
	enroll ci send
	enroll tv receive
	as_bob smimp-seal -i phone.key -r alice.pub -o m msg
	run -1 --separate-stderr as_bob smimp-fetch -i ci.key -d mail -q
	[ "$stderr" = "smimp-fetch: 'ci.key' is the key of the device ci of bob@example.net, whose scope is send: it cannot fetch" ]
	cmp ci.pub bob.pub
	[ ! -e mail ]
	run -1 --separate-stderr as_bob smimp-open -i ci.key m
	[ "$stderr" = "smimp-open: 'ci.key' is the key of the device ci of bob@example.net, whose scope is send: it cannot open" ]
	run -1 --separate-stderr as_bob smimp-seal -i tv.key -r alice.pub -o out msg
	[ "$stderr" = "smimp-seal: 'tv.key' is the key of the device tv of bob@example.net, whose scope is receive: it cannot seal" ]
	[ ! -e out ]
	run -1 --separate-stderr as_bob smimp-send -i tv.key m
	[ "$stderr" = "smimp-send: 'tv.key' is the key of the device tv of bob@example.net, whose scope is receive: it cannot send" ]
	# What no device does: change the log, publish the policy.
	run -1 --separate-stderr smimp-revoke -i phone.key --remove-device tv
	[ "$stderr" = "smimp-revoke: 'phone.key' is the key of the device phone of bob@example.net, not an identity key" ]
	run -1 --separate-stderr as_bob smimp-trust publish -i phone.key
	[ "$stderr" = "smimp-trust: 'phone.key' is the key of the device phone of bob@example.net, not an identity key" ]
	# Every device looks logs up.
	run -0 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/cihome" smimp-trust fetch -i ci.key bob@example.net
	[ "$output" = "bob@example.net known $(fp bob.pub)" ]
}

@test "send with bob's CI device: the submission is signed by the device; carol, bob's neighbour, gets it from bob, device ci" {
	mkid carol carol@example.net
	smimpd --data net --domain example.net adduser carol@example.net carol.pub
	start net example.net "$NET" -v
	enroll ci send
	as_bob smimp-seal -i ci.key -r carol.pub -o m msg
	run -0 --separate-stderr as_bob smimp-send -i ci.key m
	[ -z "$stderr" ]
	[[ "$output" =~ ^[a-z2-7]{24}@example.net$ ]]
	run -0 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/carolhome" smimp-fetch -i carol.key -d mail -q
	run -4 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/carolhome" smimp-open -i carol.key --accept-unknown mail/.Other/new/*
	[ "$output" = "$(cat msg)" ]
	[ "$stderr" = "smimp-open: from bob@example.net, device ci, fingerprint $(fp bob.pub), unknown" ]
}

# For the integrator: needs the sending and receiving servers to check
# a device's stamp (PROTOCOL.md 8.3, Smimp-Stamp-Device).
@test "send to another domain with bob's CI device: the stamp is the device's, named in Smimp-Stamp-Device, and alice gets the message" {
	start net example.net "$NET" -v
	start org example.org "$ORG"
	enroll ci send
	as_bob smimp-seal -i ci.key -r alice@example.org -o m msg
	run -0 --separate-stderr as_bob smimp-send -i ci.key m
	wait_for net.log "relayed .* to example.org"
	run -0 --separate-stderr as_alice smimp-fetch -i alice.key -d mail
	run -0 --separate-stderr as_alice smimp-open -i alice.key mail/new/*
	[ "$output" = "$(cat msg)" ]
	[[ "$stderr" == *"smimp-open: from bob@example.net, device ci, fingerprint $(fp bob.pub), trusted" ]]
}

@test "a removed device: its message no longer verifies for alice once she refreshed, nor for bob; its key is refused everywhere" {
	start net example.net "$NET"
	start org example.org "$ORG"
	enroll phone full
	as_alice smimp-trust refresh -i alice.key bob@example.net >/dev/null
	as_bob smimp-seal -i phone.key -r alice@example.org -o m msg
	run -0 as_alice smimp-open -i alice.key m
	run -0 smimp-revoke -i bob.key --remove-device phone
	# alice's pin does not know yet: the message still opens.
	run -0 as_alice smimp-open -i alice.key m
	run -0 --separate-stderr as_alice smimp-trust refresh -i alice.key bob@example.net
	[ "$output" = "bob@example.net: 1 device removed; 3 records, 2 before" ]
	run -3 --separate-stderr as_alice smimp-open -i alice.key m
	[ "$stderr" = "smimp-open: the message is signed by the device phone of bob@example.net, which was removed on $(last_date)" ]
	[ -z "$output" ]
	run -3 --separate-stderr as_bob smimp-open -i bob.key m
	[ "$stderr" = "smimp-open: the message is signed by the device phone of bob@example.net, which was removed on $(last_date)" ]
	# The phone: its server knows it no more, but lets it read its own
	# log, which says so.
	run -5 --separate-stderr as_bob smimp-fetch -i phone.key -d mail
	[[ "$stderr" == *"the device phone of bob@example.net was removed on $(last_date)"* ]]
	cp bob.pub phone.pub
	run -5 --separate-stderr as_bob smimp-seal -i phone.key -r alice@example.org -o m3 msg
	[ "$stderr" = "smimp-seal: the device phone of bob@example.net was removed on $(last_date): 'phone.key' speaks for it no more" ]
	[ ! -e m3 ]
}

# enroll_local NAME SCOPE: as enroll, with bob's log changed here only
# (not published) and copied beside the device's key.
enroll_local() {
	keygen_device "$1" || return 1
	smimp-revoke -i bob.key --add-device "$1.out" --code "$code" \
		--scope "$2" --no-publish >/dev/null 2>&1 || return 1
	cp bob.pub "$1.pub"
}
# redevice MSG NAME KEY: MSG (sealed to alice) with its from-device set
# to NAME, signed again by KEY, sealed to alice again, on stdout.
redevice() {
	smimp-keygen --export-age -i alice.key >alice.agekey
	"$SMIMP_BUILD/t/agetool" -d -i alice.agekey <"$1" |
		sed "s/^from-device: .*/from-device: $2/" >env
	"$SMIMP_BUILD/t/resign" "$3" <env >env2
	"$SMIMP_BUILD/t/agetool" -e -r "$(smimp-keygen --export-age-recipient alice.pub)" <env2
}

@test "a from-device that the log it carries does not let sign, or a signature by another key, is refused as a forgery is" {
	enroll_local phone full
	enroll_local tv receive
	cp bob.pub phone.pub
	as_bob smimp-seal -i phone.key -r alice.pub -o m msg
	as_alice smimp-trust add bob.pub --tier trusted >/dev/null 2>&1
	run -0 as_alice smimp-open -i alice.key m
	# The receive-only tv, signing for itself.
	redevice m tv tv.key >m-tv
	run -3 --separate-stderr as_alice smimp-open -i alice.key m-tv
	[ "$stderr" = "smimp-open: the message is signed by the device tv of bob@example.net, whose scope is receive: it may not send" ]
	[ -z "$output" ]
	# A name the log does not know.
	redevice m ghost phone.key >m-ghost
	run -3 --separate-stderr as_alice smimp-open -i alice.key m-ghost
	[ "$stderr" = "smimp-open: the message is signed by ghost, which is no device of bob@example.net" ]
	# The phone's name, the identity key's signature.
	redevice m phone bob.key >m-id
	run -3 --separate-stderr as_alice smimp-open -i alice.key m-id
	[ "$stderr" = "smimp-open: bad signature: the message from bob@example.net was altered or forged" ]
	# A name that breaks the grammar.
	redevice m Phone phone.key >m-bad
	run -3 --separate-stderr as_alice smimp-open -i alice.key m-bad
	[ "$stderr" = "smimp-open: malformed envelope: bad from-device" ]
}

@test "a device whose log lags opens what a newer device of its own sealed; bob's identity key refuses a log of his that is not his own" {
	enroll_local phone full
	enroll_local laptop full
	# phone.pub knows no laptop; laptop.pub knows both.
	! grep -q '^device: laptop$' phone.pub || false
	as_bob smimp-seal -i laptop.key -r alice.pub -o m msg
	run -0 --separate-stderr as_bob smimp-open -i phone.key m
	[ "$output" = "$(cat msg)" ]
	[ "$stderr" = "smimp-open: from bob@example.net, device laptop, fingerprint $(fp bob.pub), trusted (own identity)" ]
	# bob's own log is always the latest: one past it is no copy of his.
	cp bob.pub bob.pub.now
	cp phone.pub bob.pub
	as_bob smimp-seal -i laptop.key -r alice.pub -o m2 msg
	run -5 --separate-stderr as_bob smimp-open -i bob.key m2
	[ "$stderr" = "smimp-open: the identity log of bob@example.net in the message forks from this identity's own" ]
	cp bob.pub.now bob.pub
}

@test "what bob's phone sends reaches his other receiving devices and his identity key as a sent copy, filed in .Sent, and alice's inbox" {
	start net example.net "$NET"
	start org example.org "$ORG"
	enroll phone full
	enroll tv receive
	smimp-fetch -i phone.key --log-only -q
	as_alice smimp-trust refresh -i alice.key bob@example.net >/dev/null
	as_bob smimp-seal -i phone.key -r alice@example.org -o m msg
	as_bob smimp-send -i phone.key m >/dev/null
	run -0 --separate-stderr as_bob smimp-fetch -i tv.key -d tvmail
	[ "$stderr" = "smimp-fetch: 1 fetched: 0 to the inbox, 0 to Other, 1 to Sent, 0 dropped" ]
	cmp tvmail/.Sent/new/* m
	run -0 --separate-stderr as_bob smimp-open -i tv.key tvmail/.Sent/new/*
	[ "$output" = "$(cat msg)" ]
	[ "$stderr" = "smimp-open: from bob@example.net, device phone, fingerprint $(fp bob.pub), trusted (own identity)" ]
	run -0 --separate-stderr as_bob smimp-fetch -i bob.key -d bobmail --json
	[ "$output" = '{"fetched":1,"inbox":0,"other":0,"dropped":0,"again":0,"maildir":"bobmail","introduced":0,"sent":1}' ]
	# The phone that sent it gets no copy.
	run -0 --separate-stderr as_bob smimp-fetch -i phone.key -d phonemail --json
	[ "$output" = '{"fetched":0,"inbox":0,"other":0,"dropped":0,"again":0,"maildir":"phonemail","introduced":0,"sent":0}' ]
	wait_for net.log "relayed .* to example.org"
	run -0 --separate-stderr as_alice smimp-fetch -i alice.key -d mail
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
}

@test "sent copies from a server that lies: an entry listed as sent goes to .Sent only when it verifies as our own identity's" {
	# t/badserver.py plays example.org, serving the files under peer/.
	export SMIMP_ALLOW_HTTP=example.org
	unset SMIMP_CACERT
	keygen_device laptop alice@example.org
	smimp-revoke -i alice.key --add-device laptop.out --code "$code" --no-publish >/dev/null
	mkdir -p peer/smimp/v1/users/alice@example.org peer/smimp/v1/mailbox
	cp alice.pub peer/smimp/v1/users/alice@example.org/log
	# 1: what alice sent bob; 2: bob's to alice, which a lying server
	# also calls sent; 3: alice's note to herself, not flagged.
	smimp-seal -i alice.key -r bob.pub -o peer/smimp/v1/mailbox/1 msg
	smimp-seal -i bob.key -r alice.pub -o peer/smimp/v1/mailbox/2 msg
	smimp-seal -i alice.key -r alice.pub -o peer/smimp/v1/mailbox/3 msg
	python3 -c '
import json
print(json.dumps([{"id": i, "from": f, "message_id": "m%d@example.org" % i, "size": 1,
    "received": "2026-11-26T20:00:00Z", **({"sent": True} if s else {})}
    for i, f, s in ((1, "alice@example.org", 1), (2, "bob@example.net", 1), (3, "alice@example.org", 0))]))' \
		>peer/smimp/v1/mailbox/.list
	rm -f port
	python3 "$REPO/t/badserver.py" port files "$BATS_TEST_TMPDIR/peer" >requests.log 2>&1 &
	echo $! >bad.pid
	for _ in $(seq 50); do [ -s port ] && break; sleep 0.1; done
	export SMIMP_RESOLVE="example.org=127.0.0.1:$(cat port)"
	run -0 --separate-stderr as_alice smimp-fetch -i laptop.key -d mail
	[ "${stderr_lines[0]}" = "smimp-fetch: wrote the identity log of alice@example.org beside the key: 'laptop.pub', fingerprint $(fp alice.pub) (compare it with the identity's)" ]
	[ "${stderr_lines[1]}" = "smimp-fetch: 3 fetched: 2 to the inbox, 0 to Other, 1 to Sent, 0 dropped" ]
	[ "$(ls mail/.Sent/new | wc -l)" = 1 ]
	[ "$(ls mail/new | wc -l)" = 2 ]
	[ -d mail/.Sent/cur ]
	[ -d mail/.Sent/tmp ]
	[ "$(stat -c %a mail/.Sent)" = 700 ]
	cmp mail/.Sent/new/* peer/smimp/v1/mailbox/1
	run -0 --separate-stderr as_alice smimp-open -i laptop.key mail/.Sent/new/*
	[ "$stderr" = "smimp-open: from alice@example.org, fingerprint $(fp alice.pub), trusted (own identity)" ]
	# The same again: each filed once; --json counts them.
	rm -rf mail
	run -0 --separate-stderr as_alice smimp-fetch -i laptop.key -d mail --json
	[ "$output" = '{"fetched":3,"inbox":2,"other":0,"dropped":0,"again":0,"maildir":"mail","introduced":0,"sent":1}' ]
}

@test "the sealer's bound on stanzas, the reader's, and any one key opening a message" {
	run -0 "$SMIMP_BUILD/t/stanzas"
	[ "${lines[-1]}" = "7 passed, 0 failed" ]
}

@test "a device that only seals fetches its log anew once it is a refresh interval old, and stops sealing to a device removed since" {
	start net example.net "$NET"
	start org example.org "$ORG"
	enroll phone full
	enroll ci send
	cp phone.key thief.key
	smimp-keygen --export-age -i thief.key >thief.agekey
	run -0 smimp-revoke -i bob.key --remove-device phone
	# Checked within the interval: the log beside ci's key stands.
	as_bob smimp-seal -i ci.key -r alice@example.org -o m1 msg
	run -0 "$SMIMP_BUILD/t/agetool" -d -i thief.agekey <m1
	# A day older: fetched anew, the stolen phone is sealed to no more.
	touch -d '2 days ago' ci.pub
	run -0 --separate-stderr as_bob smimp-seal -i ci.key -r alice@example.org -o m2 msg
	[ -z "$stderr" ]
	cmp ci.pub bob.pub
	run ! "$SMIMP_BUILD/t/agetool" -d -i thief.agekey <m2
	run -0 --separate-stderr as_alice smimp-open -i alice.key m2
	[ "$output" = "$(cat msg)" ]
	# Its server down: a warning, and the log beside the key as it is.
	stop_servers net
	touch -d '2 days ago' ci.pub
	run -0 --separate-stderr as_bob smimp-seal -i ci.key -r alice@example.org -o m3 msg
	[[ "$stderr" == "smimp-seal: cannot check the log of bob@example.net in its directory, sealing with 'ci.pub' as it is: "* ]]
	# ci itself removed: refused, nothing written.
	start net example.net "$NET"
	run -0 smimp-revoke -i bob.key --remove-device ci
	touch -d '2 days ago' ci.pub
	run -5 --separate-stderr as_bob smimp-seal -i ci.key -r alice@example.org -o m4 msg
	[[ "$stderr" == *"the device ci of bob@example.net was removed on $(last_date)"* ]]
	[ ! -e m4 ]
}
