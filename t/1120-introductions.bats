#!/usr/bin/env bats
# Introductions (doc/PROTOCOL.md, 8.10): alice, whom bob trusts, signs
# "I introduce carol@example.com to bob@example.net" with smimp-trust
# introduce; carol carries it with smimp-seal --introduction, smimp-send
# copies it into Smimp-Introduction; smimp-open names alice and
# smimp-fetch files carol in bob's inbox, only when the statement
# verifies under the key bob pinned for alice and bob trusts or knows
# her.  Forged, expired, misaddressed and self-made statements change
# nothing, and smimp-seal refuses the ones it can tell.  The server's
# check (server/introductions.c) runs through t/unit/introserver.c
# against three real servers; the consent decision that acts on it is
# tested last, once smimp-trust publish exists.

load helper

setup() {
	common_setup
	IT="$SMIMP_BUILD/t/introduction"
}

teardown() { stop_servers org net com; }

# The statements of this suite are made by alice, for carol, to bob.
introduce() {
	smimp-trust introduce carol@example.com --to bob@example.net -i alice.key "$@"
}
as_bob() { SMIMP_HOME="$BOBHOME" "$@"; }
as_carol() { SMIMP_HOME="$CAROLHOME" "$@"; }

# offline: alice, bob (trusting alice) and carol, no servers.
offline() {
	alice_and_bob
	mkid carol carol@example.com
	CFP=$(smimp-keygen --fingerprint carol.pub)
}

# statement INTRODUCER INTRODUCED TO EXPIRES KEY: lines signed by KEY
# whatever they say, as no smimp-trust would sign them.
statement() {
	printf 'smimp-introduction/1\nintroducer: %s\nintroduced: %s\nto: %s\nexpires: %s\n' \
		"$1" "$2" "$3" "$4" >lines
	"$IT" sign "$5" lines
}

# forge FILE: FILE with the first character of its signature changed.
forge() {
	local sig first new
	sig=$(sed -n 's/^signature: //p' "$1")
	first=${sig:0:1}
	new=A
	[ "$first" = A ] && new=B
	sed "s|^signature: $first|signature: $new|" "$1"
}

# days N: the date N days from now, as a statement writes it.
days() { date -u -d "@$(($(date +%s) + $1 * 86400))" +%Y-%m-%dT%H:%M:%SZ; }

@test "the protocol vector: the exact statement and its encoding; the parser's rules" {
	run -0 "$IT" vector "$REPO/t/vectors"
	[ "${lines[-1]}" = "34 passed, 0 failed" ]
	! grep -q '^FAIL' <<<"$output" || false
	cp -r "$REPO/t/vectors" v
	sed -i 's/^to: bob/to: rob/' v/introduction.txt
	run -1 "$IT" vector v
	grep -qx 'FAIL introduction.txt: the bytes the library makes' <<<"$output"
}

@test "introduce writes a statement that verifies under the introducer's key, for 7 days" {
	offline
	before=$(date +%s)
	run -0 --separate-stderr introduce -o intro
	[ -z "$output" ]
	[ -z "$stderr" ]
	after=$(date +%s)
	[ "$(sed -n 1,4p intro)" = "smimp-introduction/1
introducer: alice@example.org
introduced: carol@example.com
to: bob@example.net" ]
	[ "$(wc -l <intro)" -eq 6 ]
	exp=$(date -u -d "$(sed -n 's/^expires: //p' intro)" +%s)
	[ "$exp" -ge $((before + 7 * 86400)) ]
	[ "$exp" -le $((after + 7 * 86400)) ]
	run -0 "$IT" verify alice.pub intro
	[ "$output" = verifies ]
	run -1 --separate-stderr "$IT" verify bob.pub intro
	[ "$stderr" = "introduction: does not verify" ]
	# The same statement goes to standard output without -o.
	run -0 --separate-stderr introduce --expires 90d
	[ "${lines[0]}" = "smimp-introduction/1" ]
	exp=$(date -u -d "$(sed -n 's/^expires: //p' <<<"$output")" +%s)
	[ "$exp" -ge $((before + 90 * 86400)) ]
	# Addresses are written normalized, whatever case they came in.
	run -0 smimp-trust introduce Carol@Example.COM --to BOB#example.net -i alice.key
	[ "${lines[2]}" = "introduced: carol@example.com" ]
	[ "${lines[3]}" = "to: bob@example.net" ]
}

@test "introduce signs with the default identity, and with a passphrase-protected key" {
	offline
	(umask 077; echo 'secret words' >pass; echo 'wrong words' >bad)
	smimp-keygen -u dave@example.org --passphrase-file pass >/dev/null 2>&1
	run -0 --separate-stderr smimp-trust introduce carol@example.com --to bob@example.net --passphrase-file pass -o intro
	[ "$(sed -n 2p intro)" = "introducer: dave@example.org" ]
	run -0 "$IT" verify "$SMIMP_HOME/identity.pub" intro
	run -1 --separate-stderr smimp-trust introduce carol@example.com --to bob@example.net --passphrase-file bad -o out
	[ "$stderr" = "smimp-trust: '$SMIMP_HOME/identity.key': wrong passphrase" ]
	SMIMP_PASSPHRASE_FILE=pass run -0 smimp-trust introduce carol@example.com --to bob@example.net
	[ "${lines[1]}" = "introducer: dave@example.org" ]
	[ ! -e out ]
}

@test "introduce refuses oneself, an introduction to oneself, bad addresses and expiries, and writes nothing" {
	offline
	run -2 --separate-stderr smimp-trust introduce alice@example.org --to bob@example.net -i alice.key -o out
	[ "$stderr" = "smimp-trust: alice@example.org cannot introduce itself (see 'smimp-trust --help')" ]
	run -2 --separate-stderr smimp-trust introduce carol@example.com --to alice@example.org -i alice.key -o out
	[ "$stderr" = "smimp-trust: an introduction to oneself says nothing: add carol@example.com to the trust store instead (see 'smimp-trust --help')" ]
	run -2 --separate-stderr smimp-trust introduce bob@example.net --to bob@example.net -i alice.key -o out
	[ "$stderr" = "smimp-trust: bob@example.net needs no introduction to itself (see 'smimp-trust --help')" ]
	run -2 --separate-stderr smimp-trust introduce carol --to bob@example.net -i alice.key -o out
	[ "$stderr" = "smimp-trust: invalid address 'carol': expected local@domain (see 'smimp-trust --help')" ]
	for e in 91d 0 -1d 7w 7.5d 07d ''; do
		run -2 --separate-stderr introduce --expires "$e" -o out
		[ "$stderr" = "smimp-trust: invalid expiry '$e': seconds, or a number with s, m, h or d, up to 90 days (see 'smimp-trust --help')" ]
	done
	run -2 --separate-stderr smimp-trust introduce carol@example.com -i alice.key
	[ "$stderr" = "smimp-trust: introduce needs --to ADDRESS (see 'smimp-trust --help')" ]
	run -2 --separate-stderr smimp-trust list --to bob@example.net
	[ "$stderr" = "smimp-trust: --to, --expires and -o go with introduce (see 'smimp-trust --help')" ]
	run -2 --separate-stderr smimp-trust introduce carol@example.com dave@example.com --to bob@example.net
	[ "$stderr" = "smimp-trust: wrong number of arguments for 'introduce' (see 'smimp-trust --help')" ]
	[ ! -e out ]
	# An identity whose own log says revoked introduces nobody.
	smimp-revoke -i alice.key --reason "lost" --no-publish >/dev/null 2>&1
	run -5 --separate-stderr introduce -o out
	[ "$stderr" = "smimp-trust: alice@example.org is revoked: it introduces nobody" ]
	[ ! -e out ]
}

@test "seal carries the statement; open names the introducer bob trusts or knows, and still releases nothing" {
	offline
	introduce -o intro
	echo "hello bob" | smimp-seal -i carol.key -r bob.pub --introduction intro >m.age
	run -4 --separate-stderr open_bob m.age
	[ -z "$output" ]
	[ "${stderr_lines[0]}" = "smimp-open: from carol@example.com, fingerprint $CFP, unknown, introduced by alice@example.org" ]
	[ "${stderr_lines[1]}" = "smimp-open: carol@example.com is not in the trust store: nothing written (check the fingerprint, then smimp-trust add --from-message, or use --accept-unknown)" ]
	run -4 --separate-stderr open_bob --json --accept-unknown m.age
	[[ "$output" == *'"body_length":10,"introducer":"alice@example.org","body":"hello bob\n",'* ]]
	# Known is enough.
	as_bob smimp-trust set alice@example.org known
	run -4 --separate-stderr open_bob --accept-unknown m.age
	[ "$output" = "hello bob" ]
	[ "${stderr_lines[0]}" = "smimp-open: from carol@example.com, fingerprint $CFP, unknown, introduced by alice@example.org" ]
	# The headers shown are those of before: no statement among them.
	run -4 --separate-stderr open_bob --headers --accept-unknown m.age
	! grep -q introduction <<<"$output" || false
	# Once bob knows carol, her tier decides: no introducer is named.
	trust_as "$BOBHOME" carol.pub known
	run -0 --separate-stderr open_bob m.age
	[ "$stderr" = "smimp-open: from carol@example.com, fingerprint $CFP, known" ]
	run -0 open_bob --json m.age
	! grep -q introducer <<<"$output" || false
}

@test "open names nobody bob does not trust: unknown, blocked, unpinned, another identity, another recipient" {
	offline
	introduce -o intro
	mkid erin erin@example.net
	echo "hello" | smimp-seal -i carol.key -r bob.pub --introduction intro >m.age
	line="smimp-open: from carol@example.com, fingerprint $CFP, unknown"
	as_bob smimp-trust set alice@example.org blocked
	run -4 --separate-stderr open_bob m.age
	[ "${stderr_lines[0]}" = "$line" ]
	# A tier without a pinned identity speaks for nobody.
	as_bob smimp-trust remove alice@example.org
	as_bob smimp-trust set @example.org trusted
	run -4 --separate-stderr open_bob m.age
	[ "${stderr_lines[0]}" = "$line" ]
	# alice's address pinned to another identity: the signature fails.
	mkid alice2 alice@example.org
	trust_as "$BOBHOME" alice2.pub trusted
	run -4 --separate-stderr open_bob m.age
	[ "${stderr_lines[0]}" = "$line" ]
	# An introduction to erin, in a message to erin and bob, is erin's.
	as_bob smimp-trust add alice.pub --tier trusted --replace >/dev/null
	smimp-trust introduce carol@example.com --to erin@example.net -i alice.key -o to-erin
	echo "hello" | smimp-seal -i carol.key -r bob.pub -r erin.pub --introduction to-erin >m2.age
	run -4 --separate-stderr open_bob m2.age
	[ "${stderr_lines[0]}" = "$line" ]
	run -4 --separate-stderr env SMIMP_HOME="$BOBHOME" smimp-open -i erin.key m2.age
	[ "${stderr_lines[0]}" = "$line, introduced by alice@example.org" ]
}

@test "a forged statement names nobody, nor one that expired after it was sealed" {
	offline
	introduce -o intro
	forge intro >forged
	cmp -s intro forged && false
	run -1 --separate-stderr "$IT" verify alice.pub forged
	[ "$stderr" = "introduction: does not verify" ]
	# The sealer cannot tell a forgery (it may not know alice): it goes.
	echo "hi" | smimp-seal -i carol.key -r bob.pub --introduction forged >m.age
	run -4 --separate-stderr open_bob m.age
	[ "${stderr_lines[0]}" = "smimp-open: from carol@example.com, fingerprint $CFP, unknown" ]
	# A statement is judged when the message is read.
	introduce --expires 4s -o short
	echo "hi" | smimp-seal -i carol.key -r bob.pub --introduction short >m2.age
	run -4 --separate-stderr open_bob m2.age
	[ "${stderr_lines[0]}" = "smimp-open: from carol@example.com, fingerprint $CFP, unknown, introduced by alice@example.org" ]
	sleep 5
	run -4 --separate-stderr open_bob m2.age
	[ "${stderr_lines[0]}" = "smimp-open: from carol@example.com, fingerprint $CFP, unknown" ]
}

@test "seal refuses expired, misaddressed, self-made, doubled and malformed statements, and writes nothing" {
	offline
	mkid dave dave@example.com
	smimp-trust introduce carol@example.com --to erin@example.net -i alice.key -o to-erin
	smimp-trust introduce dave@example.com --to bob@example.net -i alice.key -o dave
	statement alice@example.org carol@example.com bob@example.net 2026-01-01T00:00:00Z alice.key >expired
	statement alice@example.org carol@example.com bob@example.net "$(days 100)" alice.key >far
	statement carol@example.com carol@example.com bob@example.net "$(days 7)" carol.key >self
	introduce -o intro
	introduce -o intro2
	sed 's/^to: bob@example.net$/to: Bob@example.net/' intro >bad
	seal_carol() { echo "hi" | smimp-seal -i carol.key -r bob.pub -o out "$@"; }
	run -2 --separate-stderr seal_carol --introduction to-erin
	[ "$stderr" = "smimp-seal: the introduction by alice@example.org is to erin@example.net, not a recipient" ]
	run -2 --separate-stderr seal_carol --introduction dave
	[ "$stderr" = "smimp-seal: the introduction by alice@example.org introduces dave@example.com, not carol@example.com" ]
	run -2 --separate-stderr seal_carol --introduction expired
	[ "$stderr" = "smimp-seal: the introduction by alice@example.org of carol@example.com to bob@example.net has expired" ]
	run -2 --separate-stderr seal_carol --introduction far
	[ "$stderr" = "smimp-seal: the introduction by alice@example.org of carol@example.com to bob@example.net expires more than 90 days from now" ]
	run -2 --separate-stderr seal_carol --introduction self
	[ "$stderr" = "smimp-seal: the introduction of carol@example.com is by carol@example.com itself" ]
	run -2 --separate-stderr seal_carol --introduction intro --introduction intro2
	[ "$stderr" = "smimp-seal: two introductions to bob@example.net: one is enough" ]
	run -3 --separate-stderr seal_carol --introduction bad
	[ "$stderr" = "smimp-seal: 'bad': malformed introduction: bad to" ]
	head -c 1025 /dev/zero >big
	run -3 --separate-stderr seal_carol --introduction big
	[ "$stderr" = "smimp-seal: 'big' is too large (over 1024 bytes)" ]
	run -1 --separate-stderr seal_carol --introduction nowhere
	[ "$stderr" = "smimp-seal: cannot open 'nowhere': No such file or directory" ]
	args=()
	for i in $(seq 33); do args+=(--introduction intro); done
	run -2 --separate-stderr seal_carol "${args[@]}"
	[ "$stderr" = "smimp-seal: too many introductions (at most 32) (see 'smimp-seal --help')" ]
	[ ! -e out ]
	# The same as alice's own message: she introduces nobody to herself.
	run -2 --separate-stderr bash -c 'echo hi | smimp-seal -i alice.key -r bob.pub -o out --introduction intro'
	[ "$stderr" = "smimp-seal: the introduction by alice@example.org introduces carol@example.com, not alice@example.org" ]
	[ ! -e out ]
}

@test "the envelope field: read as written, a malformed one refused (3), at most 8 KiB of them" {
	offline
	introduce -o intro
	hex=$("$IT" encode intro | tr -d '\n' | od -An -tx1 | tr -d ' \n')
	hostile() { echo hi | "$SMIMP_BUILD/t/hostile" seal carol.key carol.pub bob.pub "$@"; }
	hostile "+introduction=$hex" >good.age
	run -4 --separate-stderr open_bob good.age
	[ "${stderr_lines[0]}" = "smimp-open: from carol@example.com, fingerprint $CFP, unknown, introduced by alice@example.org" ]
	# Padded, not base64url, not a statement, a field of another name.
	for v in "$hex"3d3d 2b2f "$(printf 'hello' | od -An -tx1 | tr -d ' \n')" ''; do
		hostile "+introduction=$v" >bad.age
		run -3 --separate-stderr open_bob bad.age
		[ "$stderr" = "smimp-open: malformed envelope: bad introduction" ]
	done
	hostile "+x-note=6869" >bad.age
	run -3 --separate-stderr open_bob bad.age
	[ "$stderr" = "smimp-open: malformed envelope: unexpected field after sender-log" ]
	# As many as fit in 8192 bytes with their commas, and not one more.
	n=$((8193 / ($("$IT" encode intro | tr -d '\n' | wc -c) + 1)))
	args=()
	for i in $(seq "$n"); do args+=("+introduction=$hex"); done
	hostile "${args[@]}" >full.age
	run -4 --separate-stderr open_bob full.age
	[ "${stderr_lines[0]}" = "smimp-open: from carol@example.com, fingerprint $CFP, unknown, introduced by alice@example.org" ]
	hostile "${args[@]}" "+introduction=$hex" >over.age
	run -3 --separate-stderr open_bob over.age
	[ "$stderr" = "smimp-open: malformed envelope: bad introduction" ]
}

@test "smimp-send copies the envelope's statements into Smimp-Introduction" {
	offline
	introduce -o intro
	smimp-trust introduce carol@example.com --to erin@example.net -i alice.key -o to-erin
	mkid erin erin@example.net
	echo hi | smimp-seal -i carol.key -r bob.pub -r erin.pub --introduction intro --introduction to-erin >m.age
	echo hi | smimp-seal -i carol.key -r bob.pub >plain.age
	# carol's home server is t/badserver.py: it logs what it is sent.
	rm -f port
	python3 "$REPO/t/badserver.py" port none >requests.log 2>&1 &
	echo $! >bad.pid
	for _ in $(seq 50); do [ -s port ] && break; sleep 0.1; done
	export SMIMP_RESOLVE="example.com=127.0.0.1:$(cat port)" SMIMP_ALLOW_HTTP=example.com
	run -1 --separate-stderr smimp-send -i carol.key m.age
	run -1 --separate-stderr smimp-send -i carol.key plain.age
	kill "$(cat bad.pid)"
	want="Smimp-Introduction: $("$IT" encode intro | tr -d '\n'),$("$IT" encode to-erin | tr -d '\n')"
	[ "$(grep -c '^POST /smimp/v1/messages' requests.log)" -eq 2 ]
	[ "$(grep '^Smimp-Introduction' requests.log)" = "$want" ]
	# Only the first submission carried one.
	[ "$(grep -A1 '^POST /smimp/v1/messages' requests.log | sed -n 2p)" = "$want" ]
}

@test "fetch files an introduced stranger in the inbox, naming the introducer, and the others in Other" {
	alice_bob_and_carol
	mkid dave dave@example.com
	smimpd --data com --domain example.com adduser dave@example.com dave.pub
	start org example.org "$ORG"
	start net example.net "$NET"
	start com example.com "$COM"
	introduce -o intro
	forge intro >forged
	send_as() {
		local who=$1 mid
		shift
		mid=$(echo "from $who" | smimp-seal -i "$who.key" -r bob.pub "$@" | smimp-send -i "$who.key")
		wait_for com.log "relayed $mid to example.net" >/dev/null
		echo "$mid"
	}
	m1=$(send_as carol --introduction intro)
	m2=$(send_as carol --introduction forged)
	m3=$(send_as dave)
	run -0 --separate-stderr as_bob smimp-fetch -i bob.key -d mail
	[ "${#stderr_lines[@]}" = 2 ]
	[ "${stderr_lines[0]}" = "smimp-fetch: $m1: from carol@example.com, introduced by alice@example.org: to the inbox" ]
	[ "${stderr_lines[1]}" = "smimp-fetch: 3 fetched: 1 to the inbox (1 introduced), 2 to Other, 0 dropped" ]
	[ "$(ls mail/new | wc -l)" -eq 1 ]
	[ "$(ls mail/.Other/new | wc -l)" -eq 2 ]
	run -4 --separate-stderr as_bob smimp-open -i bob.key --accept-unknown mail/new/*
	[ "$output" = "from carol" ]
	# With bob not trusting alice, a statement of hers counts for nothing.
	as_bob smimp-trust set alice@example.org blocked
	m4=$(send_as carol --introduction intro)
	run -0 --separate-stderr as_bob smimp-fetch -i bob.key -d mail --json
	[ "$output" = '{"fetched":1,"inbox":0,"other":1,"dropped":0,"again":0,"maildir":"mail","introduced":0,"sent":0}' ]
	[ -z "$stderr" ]
	as_bob smimp-trust set alice@example.org known
	m5=$(send_as carol --introduction intro)
	run -0 --separate-stderr as_bob smimp-fetch -i bob.key -d mail --json
	[ "$output" = '{"fetched":1,"inbox":1,"other":0,"dropped":0,"again":0,"maildir":"mail","introduced":1,"sent":0}' ]
	[ "$stderr" = "smimp-fetch: $m5: from carol@example.com, introduced by alice@example.org: to the inbox" ]
	m6=$(send_as carol --introduction intro)
	run -0 --separate-stderr as_bob smimp-fetch -i bob.key -d mail -q
	[ -z "$stderr" ]
	[ "$(ls mail/new | wc -l)" -eq 3 ]
	# A header of 8 KiB of statements, as many as an envelope holds,
	# goes through submission and relay.
	enc=$("$IT" encode intro | tr -d '\n')
	hex=$(printf '%s' "$enc" | od -An -tx1 | tr -d ' \n')
	args=()
	for i in $(seq $((8193 / (${#enc} + 1)))); do args+=("+introduction=$hex"); done
	echo "full" | "$SMIMP_BUILD/t/hostile" seal carol.key carol.pub bob.pub "${args[@]}" >full.age
	m7=$(smimp-send -i carol.key full.age)
	wait_for com.log "relayed $m7 to example.net"
	run -0 --separate-stderr as_bob smimp-fetch -i bob.key -d mail
	[ "${stderr_lines[0]}" = "smimp-fetch: $m7: from carol@example.com, introduced by alice@example.org: to the inbox" ]
}

@test "the server's check: the introducer's key from the store or its own domain; forged, expired, misaddressed and revoked count for nothing" {
	alice_bob_and_carol
	mkid erin erin@example.net
	smimpd --data net --domain example.net adduser erin@example.net erin.pub
	mkid mallory mallory@example.org
	start org example.org "$ORG"
	start net example.net "$NET"
	start com example.com "$COM"
	IS="$SMIMP_BUILD/t/introserver"
	{ cat common.conf; store_setting net; } >is.conf
	check() { "$IS" is.conf net example.net "$@"; }
	introduce -o a2b
	smimp-trust introduce carol@example.com --to bob@example.net -i erin.key -o e2b
	smimp-trust introduce carol@example.com --to bob@example.net -i mallory.key -o m2b
	"$IT" encode a2b >a2b.h
	"$IT" encode e2b >e2b.h
	"$IT" encode m2b >m2b.h
	forge a2b >forged
	"$IT" encode forged >forged.h
	# alice's key from example.org; erin's from the store of example.net.
	run -0 check carol@example.com bob@example.net a2b.h
	[ "$output" = alice@example.org ]
	run -0 check carol@example.com bob@example.net e2b.h
	[ "$output" = erin@example.net ]
	# The statement for the pair, among others.
	printf '%s,%s\n' "$(cat m2b.h)" "$(cat e2b.h)" >two.h
	run -1 check carol@example.com bob@example.net two.h
	[ "$output" = none ]
	printf '%s,%s\n' "$(cat e2b.h)" "$(cat m2b.h)" >two.h
	run -0 check carol@example.com bob@example.net two.h
	[ "$output" = erin@example.net ]
	# mallory has no account: her domain does not publish her key.
	run -1 check carol@example.com bob@example.net m2b.h
	[ "$output" = none ]
	run -1 check carol@example.com bob@example.net forged.h
	[ "$output" = none ]
	run -1 check dave@example.com bob@example.net a2b.h
	[ "$output" = none ]
	run -1 check carol@example.com erin@example.net a2b.h
	[ "$output" = none ]
	exp=$(sed -n 's/^expires: //p' a2b)
	run -1 check carol@example.com bob@example.net a2b.h "$exp"
	[ "$output" = none ]
	run -0 check carol@example.com bob@example.net a2b.h "$(date -u -d "$exp 1 second ago" +%Y-%m-%dT%H:%M:%SZ)"
	[ "$output" = alice@example.org ]
	printf '%s,\n' "$(cat a2b.h)" >junk.h
	run -1 check carol@example.com bob@example.net junk.h
	[ "$output" = none ]
	: >empty.h
	run -1 check carol@example.com bob@example.net empty.h
	[ "$output" = none ]
	# Once alice revokes her identity, her statements are void.
	smimp-revoke -i alice.key --reason "key lost" >/dev/null 2>&1
	run -1 check carol@example.com bob@example.net a2b.h
	[ "$output" = none ]
}

@test "consent: a stranger is let in by an introduction from someone bob allows, and by nothing else; one from anyone else costs no fetch" {
	smimp-trust --help | grep -q 'smimp-trust publish' || skip "needs consent enforcement"
	alice_bob_and_carol
	mkid dave dave@example.org
	smimpd --data org --domain example.org adduser dave@example.org dave.pub
	start org example.org "$ORG"
	start net example.net "$NET"
	start com example.com "$COM"
	# bob trusts alice (two_domains): his policy allows her, not dave.
	as_bob smimp-trust publish -i bob.key --unknown introduction --allowance 100 >/dev/null
	introduce -o intro
	forge intro >forged
	smimp-trust introduce carol@example.com --to bob@example.net -i dave.key -o by-dave
	# refused ARGS: carol's message, sealed with ARGS, does not reach
	# bob: smimp-send refuses it on bob's published requirement, or
	# bob's server does and it bounces to carol.
	refused() {
		local mid
		mid=$(echo "from carol" | smimp-seal -i carol.key -r bob.pub "$@" |
			smimp-send -i carol.key 2>/dev/null) || return 0
		wait_for com.log "bounced $mid to carol@example.com"
	}
	refused
	refused --introduction forged
	refused --introduction by-dave
	# bob does not allow dave: his statement counted for nothing without
	# a look at his key (no fetch of his log from example.org).
	! grep -q 'GET /smimp/v1/users/dave@example.org/log' org.log || false
	mid=$(echo "from carol" | smimp-seal -i carol.key -r bob.pub --introduction intro | smimp-send -i carol.key)
	wait_for com.log "relayed $mid to example.net"
	run -0 --separate-stderr as_bob smimp-fetch -i bob.key -d mail
	[ "${stderr_lines[0]}" = "smimp-fetch: $mid: from carol@example.com, introduced by alice@example.org: to the inbox" ]
	[ "${stderr_lines[1]}" = "smimp-fetch: 1 fetched: 1 to the inbox (1 introduced), 0 to Other, 0 dropped" ]
}
