#!/usr/bin/env bats
# Recovery across real servers: a thief who copied alice's identity key
# rotates it to his own and writes to bob; alice recovers with her
# recovery key, cutting the thief's records back; from then on no
# server takes anything the thief signs, bob's client follows alice to
# her new key, and the thief's earlier message no longer opens as hers.

load helper

setup() {
	common_setup
	alice_and_bob_domains
	# The thief's copy of alice's key and log.
	mv alice0.key thief.key
	mv alice0.pub thief.pub
}

teardown() { stop_servers org net; }

as_bob() { SMIMP_HOME="$BOBHOME" "$@"; }
# date_of TYPE FILE: the date of the last record of TYPE in a log.
date_of() { sed -n "/^type: $1\$/,/^date:/p" "$2" | sed -n 's/^date: //p' | tail -1; }
# last_record LOG: the bytes of its last record.
last_record() { awk '/^smimp-identity\/1$/ { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' "$1"; }

@test "the compromise test: a thief rotates alice's stolen key and writes to bob; alice recovers; the thief is refused everywhere and his message is void" {
	start org example.org "$ORG"
	start net example.net "$NET"
	echo "to alice, before the theft" | smimp-seal -i bob.key -r alice.pub >to-alice.age
	# The thief rotates alice's identity to a key of his own.
	run -0 --separate-stderr smimp-revoke -i thief.key --rotate
	echo "# thief: $output" >&3
	[ "$output" = "alice@example.org: identity key rotated, with a new encryption key (3 records in 'thief.pub'), published to example.org" ]
	served alice@example.org | cmp - thief.pub
	# alice's own key no longer speaks for her.
	echo "hello" | smimp-seal -i alice.key -r bob.pub >locked-out.age
	run -1 --separate-stderr smimp-send -i alice.key locked-out.age
	[[ "$stderr" == *"HTTP 401"* ]]
	# The thief writes to bob as alice: relayed and delivered.
	echo "please wire the money" | smimp-seal -i thief.key -r bob.pub >thief.age
	run -0 --separate-stderr smimp-send -i thief.key thief.age
	wait_for org.log "relayed $output to example.net"
	# bob's client follows the thief's rotation: it extends the pin.
	run -0 --separate-stderr as_bob smimp-trust refresh -i bob.key alice@example.org
	echo "# bob, before the recovery: $output" >&3
	[ "$output" = "alice@example.org: identity key rotated; new encryption key; 3 records, 1 before" ]
	run -0 --separate-stderr as_bob smimp-open -i bob.key thief.age
	[ "$output" = "please wire the money" ]

	# alice recovers: her local log (the genesis) is the last record she
	# vouches for, so the thief's two records are cut back.
	sleep 1		# dates are in seconds: the recovery after the theft
	run -0 --separate-stderr smimp-revoke --recover alice.recovery -u alice@example.org -o alice
	echo "# alice: $output" >&3
	[ "$output" = "alice@example.org: recovered, with new identity and encryption keys (2 records in 'alice.pub'; the 2 records after record 0 cut back, void), published to example.org" ]
	[ -z "$stderr" ]
	served alice@example.org | cmp - alice.pub
	grep -q '^type: recover$' alice.pub
	grep -q '^signed-by: recovery$' alice.pub
	run -1 grep -q '^type: rotate$' alice.pub
	[ "$(stat -c %a alice.key)" = 600 ]
	recovered=$(date_of recover alice.pub)

	# alice's server takes nothing the thief's key signs any more, and
	# only it may stamp deliveries from alice.
	echo "again" | smimp-seal -i thief.key -r bob.pub >thief2.age
	run -1 --separate-stderr smimp-send -i thief.key thief2.age
	echo "# thief sends: $stderr" >&3
	[[ "$stderr" == *"HTTP 401"* ]]
	run -1 --separate-stderr smimp-revoke -i thief.key --rotate
	[[ "$stderr" == *"HTTP 401"* ]]
	served alice@example.org | cmp - alice.pub
	# bob's client follows alice to her new key and says why.
	run -0 --separate-stderr as_bob smimp-trust refresh -i bob.key alice@example.org
	echo "# bob refreshes: $output" >&3
	[ "$output" = "alice@example.org: recovered with its recovery key on $recovered, 2 records cut back, void; 2 records, 3 before" ]
	# The thief's earlier message no longer opens as from alice.
	run -5 --separate-stderr as_bob smimp-open -i bob.key thief.age
	echo "# bob opens the thief's message: exit $status: $stderr" >&3
	[ "$stderr" = "smimp-open: the message from alice@example.org is signed under identity records that a recovery on $recovered made void (its key may have been stolen): nothing written" ]
	[ -z "$output" ]
	# alice speaks again, with her new key, and bob reads her, trusted.
	echo "it was not me" | smimp-seal -i alice.key -r bob.pub >m1.age
	run -0 --separate-stderr smimp-send -i alice.key m1.age
	wait_for org.log "relayed $output to example.net"
	run -0 --separate-stderr as_bob smimp-fetch -i bob.key -d mail
	run -0 --separate-stderr as_bob smimp-open -i bob.key m1.age
	[ "$output" = "it was not me" ]
	# Her new key file kept the old encryption secret: older mail opens.
	run -0 --separate-stderr env SMIMP_HOME="$ALICEHOME" smimp-open -i alice.key to-alice.age
	[ "$output" = "to alice, before the theft" ]
}

@test "without a refresh, bob's client follows the thief from his message, then alice's recovery from hers, and says so" {
	start org example.org "$ORG"
	start net example.net "$NET"
	run -0 smimp-revoke -i thief.key --rotate
	echo "please wire the money" | smimp-seal -i thief.key -r bob.pub >thief.age
	run -0 --separate-stderr smimp-send -i thief.key thief.age
	wait_for org.log "relayed $output to example.net"
	run -0 --separate-stderr as_bob smimp-fetch -i bob.key -d mail
	[ "${stderr_lines[0]}" = "smimp-fetch: alice@example.org: identity key rotated; new encryption key; 3 records, 1 before (followed from a message)" ]
	sleep 1
	run -0 smimp-revoke --recover alice.recovery -o alice
	recovered=$(date_of recover alice.pub)
	echo "it was not me" | smimp-seal -i alice.key -r bob.pub >m1.age
	run -0 --separate-stderr smimp-send -i alice.key m1.age
	wait_for org.log "relayed $output to example.net"
	run -0 --separate-stderr as_bob smimp-fetch -i bob.key -d mail
	[ "${stderr_lines[0]}" = "smimp-fetch: alice@example.org: recovered with its recovery key on $recovered, 2 records cut back, void; 2 records, 3 before (followed from a message)" ]
	[ "${stderr_lines[-1]}" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	run -5 --separate-stderr as_bob smimp-open -i bob.key thief.age
	[ "$stderr" = "smimp-open: the message from alice@example.org is signed under identity records that a recovery on $recovered made void (its key may have been stolen): nothing written" ]
	run -0 --separate-stderr as_bob smimp-open -i bob.key m1.age
	[ "$output" = "it was not me" ]
}

@test "a thief who revoked alice's identity: her recovery cuts the revocation back, and says how many records to keep when it cannot tell" {
	start org example.org "$ORG"
	run -0 --separate-stderr smimp-revoke -i thief.key --reason "gone"
	# Without her own log there is nothing that says what to keep.
	run -2 --separate-stderr smimp-revoke --recover alice.recovery -o elsewhere
	[ "$stderr" = "smimp-revoke: the log of alice@example.org ends in a revocation: say with --keep N how many of its 2 records to keep" ]
	[ ! -e elsewhere.key ]
	[ ! -e elsewhere.pub ]
	run -0 --separate-stderr smimp-revoke --recover alice.recovery -o alice
	[[ "$output" == *"(2 records in 'alice.pub'; the 1 record after record 0 cut back, void), published to example.org" ]]
	served alice@example.org | cmp - alice.pub
	echo "back" | smimp-seal -i alice.key -r bob.pub >m.age
	run -0 --separate-stderr smimp-send -i alice.key m.age
}

@test "the server cuts a log back only for a request its recovery key signed, and never past an earlier recovery" {
	start org example.org "$ORG"
	run -0 smimp-revoke -i thief.key --rotate
	# alice's recovery record, written by hand, not published.
	cp alice.pub rec.pub
	run -0 --separate-stderr smimp-revoke --recover alice.recovery -o rec --no-publish -w rec.log
	last_record rec.log >recover.rec
	grep -q '^seq: 1$' recover.rec
	# Signed by the identity key the server knows (the thief's): 403.
	run -0 post_log thief.key alice@example.org recover.rec
	[ "$output" = '{"error":"only a request signed by the recovery key cuts a log back"} 403' ]
	served alice@example.org | cmp - thief.pub
	# Signed as recovery: by a key that is not alice's recovery key: 401.
	smimp-keygen -u alice@example.org -o other --no-passphrase >/dev/null 2>&1
	run -0 post_log other.recovery alice@example.org recover.rec
	[[ "$output" == *" 401" ]]
	# By her recovery key: taken; the same again is answered as done.
	run -0 post_log alice.recovery alice@example.org recover.rec
	[[ "$output" == '{"address":"alice@example.org","records":2,'*' 200' ]]
	served alice@example.org | cmp - rec.log
	run -0 post_log alice.recovery alice@example.org recover.rec
	[[ "$output" == *'"records":2,'*' 200' ]]
	grep -q "identity log of alice@example.org: recovered, 2 record(s) cut back" org.log
	# A second recovery may not cut the first one back.
	cp rec.log again.pub
	run -5 --separate-stderr smimp-revoke --recover alice.recovery -o again --keep 1 --no-publish
	[ "$stderr" = "smimp-revoke: the identity log of alice@example.org cuts back the recovery at record 1" ]
	served alice@example.org | cmp - rec.log
}

@test "--recover: usage errors and a recovery key of another identity change nothing" {
	start org example.org "$ORG"
	run -2 --separate-stderr smimp-revoke --recover alice.recovery -i alice.key
	[ "$stderr" = "smimp-revoke: --recover makes a new key: name it with -o PREFIX, not -i (see 'smimp-revoke --help')" ]
	run -2 --separate-stderr smimp-revoke --rotate -o x
	[ "$stderr" = "smimp-revoke: -u, -o and --keep go with --recover (see 'smimp-revoke --help')" ]
	run -2 --separate-stderr smimp-revoke --recover alice.recovery --keep 0
	run -2 --separate-stderr smimp-revoke --recover alice.key -o x
	[ "$stderr" = "smimp-revoke: 'alice.key' is not a recovery key" ]
	run -2 --separate-stderr smimp-revoke --recover alice.recovery -u bob@example.net -o x
	[ "$stderr" = "smimp-revoke: 'alice.recovery' is the recovery key of alice@example.org, not bob@example.net" ]
	# Another identity's recovery key for alice's address: refused.
	smimp-keygen -u alice@example.org -o other --no-passphrase >/dev/null 2>&1
	k=$(sum alice.key)
	run -5 --separate-stderr smimp-revoke --recover other.recovery -o alice
	[ "$stderr" = "smimp-revoke: the directory of example.org serves no identity of alice@example.org with this recovery key (it refused the lookup it signed)" ]
	[ "$(sum alice.key)" = "$k" ]
	served alice@example.org | cmp - alice.pub
	[ -z "$(ls alice.key.tmp.* alice.pub.tmp.* 2>/dev/null)" ]
	# -o naming a device's key: not an identity key, nothing written.
	enroll_device alice.key alice@example.org phone full --no-publish
	cp -p alice.pub phone.pub
	k=$(sum phone.key)
	run -1 --separate-stderr smimp-revoke --recover alice.recovery -o phone --no-publish
	[ "$stderr" = "smimp-revoke: 'phone.key' is the key of the device phone of alice@example.org, not an identity key" ]
	[ "$(sum phone.key)" = "$k" ]
	cmp phone.pub alice.pub
}
