#!/usr/bin/env bats
# One-time prekeys and forward secrecy (doc/PROTOCOL.md, section 10):
# smimp-trust prekeys uploads signed batches and keeps the secrets
# sealed beside the key; smimp-seal takes one prekey for each key of a
# recipient, the server handing each out once; smimp-open and
# smimp-fetch delete its secret once the message is opened and kept,
# after which nothing left opens it; the pool runs out into the
# long-term key, is refilled by smimp-fetch, and is guarded against
# unsigned, rate-limited and hostile requests.

load helper

setup() {
	common_setup
	alice_and_bob_domains
	mkid dave dave@example.net
	smimpd --data net --domain example.net adduser dave@example.net dave.pub
	mkdir -m 700 plain
	printf 'Hello Bob,\nthis one is forward-secret.\n' >msg
	CLAIM="/smimp/v1/users/bob@example.net/prekeys/claim"
}

teardown() { stop_servers org net net2; }

servers() { start org example.org "$ORG" && start net example.net "$NET"; }
as_alice() { SMIMP_HOME="$ALICEHOME" "$@"; }
as_bob() { SMIMP_HOME="$BOBHOME" "$@"; }

# bob_prekeys N [KEY]: N prekeys uploaded for KEY (bob.key), quietly.
bob_prekeys() {
	as_bob smimp-trust prekeys -i "${2:-bob.key}" --count "$1" >/dev/null
}

# alice_looks_up ADDRESS: alice checks ADDRESS in its directory, so that
# smimp-seal takes prekeys for it (a pin by hand from a file is offline).
alice_looks_up() {
	as_alice smimp-trust refresh -i alice.key "$1" >/dev/null 2>&1
}

# ready N: the servers, N prekeys of bob's, and alice's pin of bob
# checked in his directory.
ready() { servers && bob_prekeys "$1" && alice_looks_up bob@example.net; }

# secrets KEY: the plain text of KEY's prekey secrets, opened with age
# and the key exported (both kept under plain/, never in the tree).
secrets() {
	smimp-keygen --export-age -i "$1" >"plain/${1%.key}.age-id"
	age -d -i "plain/${1%.key}.age-id" "${1%.key}.prekeys"
}

# pool ADDRESS [DEVICE]: how many prekeys the server holds for it.
pool() {
	store_sql net "SELECT count(*) FROM prekeys WHERE address = '$1' AND device = '${2:-}'"
}

# prekey_of FILE KEY: the ids the smimp-prekey stanzas of a sealed file
# name that KEY's prekey secrets hold (the others name nobody's).
prekey_of() {
	sed -n 's/^-> smimp-prekey //p' "$1" |
		grep -Fx -f <(secrets "$2" | awk '/^secret: /{print $2}')
}

# paired FILE: how many X25519 stanzas FILE has, each after a
# smimp-prekey stanza (doc/PROTOCOL.md 9.2: with a prekey among its
# keys, every key of a message looks like one); fails when some are not.
paired() {
	local p x
	p=$(grep -ac '^-> smimp-prekey ' "$1")
	x=$(grep -ac '^-> X25519 ' "$1")
	[ "$p" = "$x" ] || return 1
	# Each smimp-prekey stanza's empty body, then its X25519 stanza.
	[ "$(grep -a -A2 '^-> smimp-prekey ' "$1" |
		grep -ac '^-> X25519 ')" = "$x" ] && echo "$x"
}

# post KEY PATH BODYFILE [PORT]: a POST signed by KEY to example.net;
# the answer and its status, on one line.
post() {
	local h
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" "$1" POST example.net "$2" "$3")
	curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" \
		--data-binary @"$3" "https://127.0.0.1:${4:-$NET}$2" | tr -d '\n'
}

@test "smimp-trust prekeys: a signed batch uploaded; its secrets sealed to the key's own encryption key, 0600, nowhere in plain text" {
	servers
	run -0 --separate-stderr as_bob smimp-trust prekeys -i bob.key --count 5
	[ "$output" = "bob@example.net: 5 one-time prekeys uploaded, 5 in the pool" ]
	[ -z "$stderr" ]
	[ "$(stat -c %a bob.prekeys)" = 600 ]
	[ "$(head -n 1 bob.prekeys)" = age-encryption.org/v1 ]
	[ "$(pool bob@example.net)" = 5 ]
	secrets bob.key >plain/store
	[ "$(sed -n 1,2p plain/store)" = "$(printf 'smimp-prekey-secrets/1\naddress: bob@example.net')" ]
	[ "$(grep -c '^secret: [0-9a-f]\{16\} [0-9TZ:-]\{20\} [A-Za-z0-9+/]\{43\}=$' plain/store)" = 5 ]
	# The ids the server holds are those of the secrets.
	[ "$(store_sql net "SELECT id FROM prekeys ORDER BY id")" = \
	  "$(awk '/^secret: /{print $2}' plain/store | sort)" ]
	# No secret, in base64, hex or raw, in any file but plain/.
	run -0 python3 - . plain/store <<-'EOF'
	import base64, os, sys
	pats = []
	for l in open(sys.argv[2]):
	    if l.startswith('secret: '):
	        s = base64.b64decode(l.split()[3])
	        pats += [s, base64.b64encode(s), s.hex().encode(), s.hex().upper().encode()]
	for root, dirs, files in os.walk(sys.argv[1]):
	    dirs[:] = [d for d in dirs if d != 'plain']
	    for f in files:
	        p = os.path.join(root, f)
	        if os.path.isfile(p):
	            data = open(p, 'rb').read()
	            for x in pats:
	                if x in data:
	                    print('secret found in', p)
	print('checked', len(pats) // 4, 'secrets')
	EOF
	[ "$output" = "checked 5 secrets" ]
	# A second batch adds to both.
	bob_prekeys 3
	[ "$(pool bob@example.net)" = 8 ]
	[ "$(secrets bob.key | grep -c '^secret: ')" = 8 ]
}

@test "round trip: sealed to a prekey and forward-secret; opened once, its secret deleted; then nothing left here opens it" {
	ready 3
	run -0 --separate-stderr as_alice smimp-seal -i alice.key -r bob@example.net -o m.age msg
	[ -z "$stderr" ]
	# bob's prekey and alice's own key; each stanza paired.
	[ "$(paired m.age)" = 2 ]
	id=$(prekey_of m.age bob.key)
	[ "$(wc -w <<<"$id")" = 1 ]
	[ "$(pool bob@example.net)" = 2 ]
	secrets bob.key | grep -q "^secret: $id "
	# The sender's own copy says for whom it is forward-secret.
	run -0 --separate-stderr as_alice smimp-open -i alice.key --headers m.age
	grep -qx 'forward-secret: bob@example.net' <<<"$output"
	run -0 --separate-stderr as_bob smimp-open -i bob.key --json m.age
	[[ "$output" == *'"forward_secret":true,"body":'* ]]
	[ "${stderr_lines[1]}" = "smimp-open: forward secrecy: the one-time prekey $id is deleted, this copy cannot be opened again" ]
	[ "$(secrets bob.key | grep -c "^secret: $id ")" = 0 ]
	[ "$(secrets bob.key | grep -c '^secret: ')" = 2 ]
	# Nothing left opens it: smimp-open, the long-term key, the other prekeys.
	run -3 --separate-stderr as_bob smimp-open -i bob.key m.age
	[ "$stderr" = "smimp-open: cannot decrypt: the message is not encrypted to bob@example.net, or to a one-time prekey it still holds (the secret of one goes once a message sealed to it is opened)" ]
	[ -z "$output" ]
	run -1 age -d -i plain/bob.age-id m.age
	for s in $(secrets bob.key | awk '/^secret: /{print $4}'); do
		"$SMIMP_BUILD/t/prekeytool" age-identity "$s" >plain/id
		run -1 age -d -i plain/id m.age
	done
}

@test "the age binary opens the outer layer with the prekey's secret, which the long-term key does not" {
	ready 1
	as_alice smimp-seal -i alice.key -r bob@example.net -o m.age msg
	id=$(prekey_of m.age bob.key)
	s=$(secrets bob.key | awk -v id="$id" '$2 == id {print $4}')
	"$SMIMP_BUILD/t/prekeytool" age-identity "$s" >plain/id
	run -0 age -d -i plain/id -o plain/envelope m.age
	[ "$(head -n 1 plain/envelope)" = smimp-envelope/1 ]
	grep -qx 'forward-secret: bob@example.net' plain/envelope
	run -1 --separate-stderr age -d -i plain/bob.age-id m.age
	[[ "$stderr" == *"no identity matched any of the recipients"* ]]
	# Opening it outside smimp deletes nothing: smimp-open still can.
	run -0 as_bob smimp-open -i bob.key -q m.age
	[ "$output" = "$(cat msg)" ]
}

@test "recipients and devices: a prekey for each receiving key; the sender's own copy to its own keys" {
	servers
	enroll_device bob.key bob@example.net phone full
	as_bob smimp-fetch -i phone.key -d phonemail -q
	bob_prekeys 2
	bob_prekeys 2 phone.key
	[ "$(pool bob@example.net phone)" = 2 ]
	alice_looks_up bob@example.net
	run -0 --separate-stderr as_alice smimp-seal -i alice.key -r bob@example.net -c dave@example.net -o m.age msg
	[[ "$stderr" == "smimp-seal: pinned dave@example.net, fingerprint "* ]]
	# bob and his phone: a prekey each; dave (no pool) and alice: their keys.
	# Four stanzas, each after a smimp-prekey stanza: two name real ones.
	[ "$(paired m.age)" = 4 ]
	[ "$(prekey_of m.age bob.key | wc -l)" = 1 ]
	[ "$(prekey_of m.age phone.key | wc -l)" = 1 ]
	[ "$(pool bob@example.net)" = 1 ]
	[ "$(pool bob@example.net phone)" = 1 ]
	run -0 --separate-stderr as_alice smimp-open -i alice.key --headers m.age
	[ "$(grep -c '^forward-secret: ' <<<"$output")" = 1 ]
	grep -qx 'forward-secret: bob@example.net' <<<"$output"
	run -0 --separate-stderr as_bob smimp-open -i phone.key --json m.age
	[[ "$output" == *'"forward_secret":true'* ]]
	[[ "${stderr_lines[1]}" == "smimp-open: forward secrecy: the one-time prekey "*" is deleted, this copy cannot be opened again" ]]
	run -0 --separate-stderr as_bob smimp-open -i bob.key --json m.age
	[[ "$output" == *'"forward_secret":true'* ]]
	[ "$(secrets phone.key | grep -c '^secret: ')" = 1 ]
	[ "$(secrets bob.key | grep -c '^secret: ')" = 1 ]
	# dave's copy is not forward-secret, and opens as often as he likes.
	SMIMP_HOME="$BATS_TEST_TMPDIR/davehome" smimp-trust add alice.pub --tier known >/dev/null
	run -0 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/davehome" smimp-open -i dave.key --json m.age
	[[ "$output" != *forward_secret* ]]
	[ "${#stderr_lines[@]}" = 1 ]
	run -0 env SMIMP_HOME="$BATS_TEST_TMPDIR/davehome" smimp-open -i dave.key -q m.age
	# alice's own copy opens, again and again.
	run -0 as_alice smimp-open -i alice.key -q m.age
	[ "$output" = "$(cat msg)" ]
}

@test "a message to one's own address takes none of its prekeys and is not called forward-secret: its own copy opens it for good" {
	servers
	enroll_device bob.key bob@example.net phone full
	as_bob smimp-fetch -i phone.key -d phonemail -q
	bob_prekeys 2
	bob_prekeys 2 phone.key
	# bob to himself, from his identity key and from his phone; alice too.
	as_alice smimp-trust fetch -i alice.key bob@example.net >/dev/null
	as_bob smimp-trust fetch -i bob.key alice@example.org >/dev/null
	run -0 --separate-stderr as_bob smimp-seal -i bob.key -r bob@example.net -o m1.age msg
	run -0 --separate-stderr as_bob smimp-seal -i phone.key -r bob@example.net -r alice@example.org -o m2.age msg
	[ "$(pool bob@example.net)" = 2 ]
	[ "$(pool bob@example.net phone)" = 2 ]
	for m in m1 m2; do
		[ "$(grep -ac '^-> smimp-prekey ' $m.age)" = 0 ]
		run -0 --separate-stderr as_bob smimp-open -i bob.key --headers $m.age
		[ "$(grep -c '^forward-secret: ' <<<"$output")" = 0 ]
		for k in bob.key phone.key; do
			run -0 --separate-stderr as_bob smimp-open -i $k --json $m.age
			[[ "$output" != *forward_secret* ]]
			[ "${#stderr_lines[@]}" = 1 ]
		done
	done
	[ "$(secrets bob.key | grep -c '^secret: ')" = 2 ]
	[ "$(secrets phone.key | grep -c '^secret: ')" = 2 ]
}

@test "a pool run out: the long-term key, said; no pool, a hand-made pin or --no-prekeys: nothing asked" {
	ready 1
	as_alice smimp-seal -i alice.key -r bob@example.net -o m1.age msg
	[ "$(paired m1.age)" = 2 ]
	run -0 --separate-stderr as_alice smimp-seal -i alice.key -r bob@example.net -o m2.age msg
	[ "$stderr" = "smimp-seal: bob@example.net: its server has no one-time prekey left for 1 of its keys: sealed to that long-term key, not forward-secret" ]
	[ "$(grep -ac '^-> smimp-prekey ' m2.age)" = 0 ]
	run -0 --separate-stderr as_bob smimp-open -i bob.key --json m2.age
	[[ "$output" != *forward_secret* ]]
	[ "${#stderr_lines[@]}" = 1 ]
	run -0 as_bob smimp-open -i bob.key -q m2.age
	# dave never uploaded any: nothing said.
	as_alice smimp-trust fetch -i alice.key dave@example.net >/dev/null
	run -0 --separate-stderr as_alice smimp-seal -i alice.key -r dave@example.net -o m3.age msg
	[ -z "$stderr" ]
	[ "$(grep -ac '^-> smimp-prekey ' m3.age)" = 0 ]
	# --no-prekeys takes none, and a pin by hand, never checked, is offline.
	bob_prekeys 2
	as_alice smimp-seal -i alice.key -r bob@example.net --no-prekeys -o m4.age msg
	[ "$(grep -ac '^-> smimp-prekey ' m4.age)" = 0 ]
	[ "$(pool bob@example.net)" = 2 ]
	as_alice smimp-trust remove bob@example.net >/dev/null
	as_alice smimp-trust add bob.pub --tier trusted >/dev/null
	as_alice smimp-seal -i alice.key -r bob@example.net -o m5.age msg
	[ "$(grep -ac '^-> smimp-prekey ' m5.age)" = 0 ]
	[ "$(pool bob@example.net)" = 2 ]
}

@test "smimp-sendmail takes prekeys as smimp-seal does: bob's copy forward-secret, the blind copy dave's alone; --no-prekeys takes none" {
	ready 3
	as_alice smimp-trust fetch -i alice.key dave@example.net >/dev/null
	# mail SUBJECT [OPTION...]: to bob, a blind copy to dave.
	mail() {
		printf 'To: bob@example.net\nBcc: dave@example.net\nSubject: %s\n\nhello\n' "$1" |
			as_alice smimp-sendmail -t --identity alice.key "${@:2}"
	}
	# held ADDRESS N: until ADDRESS's mailbox holds N (the relay given 10 s).
	held() {
		for _ in $(seq 50); do
			[ "$(store_sql net "SELECT count(*) FROM mailbox WHERE recipient = '$1'")" = "$2" ] && return 0
			sleep 0.2
		done
		return 1
	}
	run -0 --separate-stderr mail one
	[ -z "$stderr" ]
	# One of bob's, for the copy he gets and the blind one that shows him.
	[ "$(pool bob@example.net)" = 2 ]
	run -0 --separate-stderr mail two --no-prekeys
	[ -z "$stderr" ]
	[ "$(pool bob@example.net)" = 2 ]
	held bob@example.net 2
	held dave@example.net 2
	run -0 --separate-stderr as_bob smimp-fetch -i bob.key -d bobmail
	[ "${stderr_lines[0]}" = "smimp-fetch: uploaded 100 one-time prekeys (the server had 2 left)" ]
	[ "${stderr_lines[1]}" = "smimp-fetch: 2 fetched: 2 to the inbox, 0 to Other, 0 dropped" ]
	# The one taken is opened and its secret gone: 2 left, 100 new.
	[ "$(secrets bob.key | grep -c '^secret: ')" = 102 ]
	fs=0
	for f in bobmail/new/*; do
		run -0 --separate-stderr as_bob smimp-open -i bob.key --json "$f"
		case $output in
		*'"subject":"one"'*'"forward_secret":true'*) fs=$((fs + 1)) ;;
		*'"subject":"two"'*) [[ "$output" != *forward_secret* ]] ;;
		*) false ;;
		esac
	done
	[ "$fs" = 1 ]
}

@test "after a rotation the old key's prekeys are dropped as they come out; a new batch is sealed to" {
	ready 5
	as_bob smimp-revoke -i bob.key --rotate >/dev/null 2>&1
	alice_looks_up bob@example.net
	run -0 --separate-stderr as_alice smimp-seal -i alice.key -r bob@example.net -o m1.age msg
	[ "$stderr" = "smimp-seal: bob@example.net: its server has no one-time prekey left for 1 of its keys: sealed to that long-term key, not forward-secret" ]
	[ "$(pool bob@example.net)" = 0 ]
	grep -q 'prekeys of bob@example.net: the prekey .* of bob@example.net does not verify: dropped, with the older ones of its pool' net.log
	# The secrets' file was sealed to the encryption key now retired.
	bob_prekeys 2
	as_alice smimp-seal -i alice.key -r bob@example.net -o m2.age msg
	[ "$(paired m2.age)" = 2 ]
	run -0 --separate-stderr as_bob smimp-open -i bob.key --json m2.age
	[[ "$output" == *'"forward_secret":true'* ]]
}

@test "each prekey goes out once: 60 claims at once on two nodes of one store" {
	echo 'rate-prekeys 0' >>common.conf
	servers
	NET2=$(free_port)
	smimpd -d -f common.conf --data net --domain example.net --listen "127.0.0.1:$NET2" \
		--cert cert.pem --key key.pem 2>>net2.log &
	echo $! >net2.pid
	server_up "$NET2"
	bob_prekeys 40
	# dave, a user of the domain: no lookup at another server holds a
	# worker, so that all 60 are at the store together.
	for n in $(seq 60); do
		"$SMIMP_BUILD/t/signreq" dave.key POST example.net "$CLAIM" >"h$n"
	done
	pids=()
	for n in $(seq 60); do
		port=$NET
		[ $((n % 2)) = 0 ] && port=$NET2
		mapfile -t h <"h$n"
		curl -s --cacert cert.pem "${h[@]/#/-H}" -X POST "https://127.0.0.1:$port$CLAIM" >"a$n" &
		pids+=($!)
	done
	wait "${pids[@]}"
	run -0 python3 - <<-'EOF'
	import json
	ids, empty = [], 0
	for n in range(1, 61):
	    t = open("a%d" % n).read()
	    try: a = json.loads(t)
	    except Exception: print("bad", n, t); continue
	    if "prekeys" not in a: print("err", n, t); continue
	    ids += [p["id"] for p in a["prekeys"]]
	    empty += a['exhausted'] == ['']
	print(len(ids), len(set(ids)), empty)
	EOF
	[ "$output" = "40 40 20" ]
	[ "$(pool bob@example.net)" = 0 ]
}

# claims N: N claims of bob's prekeys by dave, each signed anew, sent in
# one curl; how many got each status.
claims() {
	local n h
	: >claims.cfg
	for n in $(seq "$1"); do
		[ "$n" = 1 ] || echo next >>claims.cfg
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" dave.key POST example.net "$CLAIM")
		printf 'header = "%s"\n' "${h[@]}" >>claims.cfg
		printf 'url = "https://127.0.0.1:%s%s"\nrequest = POST\ncacert = cert.pem\n' \
			"$NET" "$CLAIM" >>claims.cfg
		printf 'silent\noutput = /dev/null\nwrite-out = "%%{http_code}\\n"\n' >>claims.cfg
	done
	curl -K claims.cfg | sort | uniq -c | tr -s ' '
}

@test "the oldest prekey goes out first: a device that keeps 2000 secrets forgets none its server still hands out" {
	echo 'rate-prekeys 0' >>common.conf
	servers
	alice_looks_up bob@example.net
	# The first batch, a second older than the others.
	bob_prekeys 200
	sleep 1
	for _ in 1 2 3 4; do bob_prekeys 200; done
	[ "$(pool bob@example.net)" = 1000 ]
	# Claims that are never sealed to: their secrets stay at bob's.
	[ "$(claims 800)" = " 800 200" ]
	for _ in 1 2 3 4; do bob_prekeys 200; done
	[ "$(claims 200)" = " 200 200" ]
	bob_prekeys 200
	[ "$(secrets bob.key | grep -c '^secret: ')" = 2000 ]
	# One batch more: bob's oldest secrets go, 200 of them.
	[ "$(claims 200)" = " 200 200" ]
	bob_prekeys 200
	[ "$(secrets bob.key | grep -c '^secret: ')" = 2000 ]
	[ "$(pool bob@example.net)" = 1000 ]
	# Every prekey the server still holds opens at bob's.
	store_sql net "SELECT id FROM prekeys ORDER BY id" >held
	secrets bob.key | awk '/^secret: /{print $2}' | sort >kept
	[ "$(comm -23 held kept | wc -l)" = 0 ]
	as_alice smimp-seal -i alice.key -r bob@example.net -o m.age msg
	id=$(prekey_of m.age bob.key)
	[ "$(wc -w <<<"$id")" = 1 ]
	run -0 --separate-stderr as_bob smimp-open -i bob.key --json m.age
	[[ "$output" == *'"forward_secret":true,"body":'* ]]
}

@test "claims limited per requester and address (rate-prekeys): 429, and the sealer says so" {
	echo 'rate-prekeys 2' >>common.conf
	ready 10
	as_alice smimp-seal -i alice.key -r bob@example.net -o m1.age msg
	as_alice smimp-seal -i alice.key -r bob@example.net -o m2.age msg
	run -0 --separate-stderr as_alice smimp-seal -i alice.key -r bob@example.net -o m3.age msg
	[ "$stderr" = "smimp-seal: bob@example.net: its server hands out no more one-time prekeys to this sender for now: not forward-secret" ]
	[ "$(grep -ac '^-> smimp-prekey ' m3.age)" = 0 ]
	[ "$(pool bob@example.net)" = 8 ]
	"$SMIMP_BUILD/t/signreq" alice.key POST example.net "$CLAIM" >h
	mapfile -t h <h
	run -0 curl -s -D headers --cacert cert.pem "${h[@]/#/-H}" -X POST -w ' %{http_code}' "https://127.0.0.1:$NET$CLAIM"
	[ "${output//$'\n'/}" = '{"error":"rate limit"} 429' ]
	grep -qi '^retry-after: [0-9]' headers
	# Another requester is not held up.
	"$SMIMP_BUILD/t/signreq" dave.key POST example.net "$CLAIM" >h
	mapfile -t h <h
	run -0 curl -s --cacert cert.pem "${h[@]/#/-H}" -X POST "https://127.0.0.1:$NET$CLAIM"
	[[ "$output" == '{"address":"bob@example.net","encryption_key":'*'"prekeys":[{"device":"","id":"'* ]]
	[ "$(pool bob@example.net)" = 7 ]
}

# claim KEY ADDRESS [SIGNER]: a claim of ADDRESS's prekeys at example.net
# signed with KEY (as SIGNER, when given); its body and status.
claim() {
	local h
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" ${3:+--signer "$3"} "$1" POST example.net \
		"/smimp/v1/users/$2/prekeys/claim")
	curl -s --cacert cert.pem "${h[@]/#/-H}" -X POST -w ' %{http_code}' \
		"https://127.0.0.1:$NET/smimp/v1/users/$2/prekeys/claim" | tr -d '\n'
}

@test "rate-prekeys holds: claims of unknown addresses do not refill it, another domain's users share one, and a claim that finds nobody costs a lookup" {
	printf 'rate-prekeys 2\nrate-lookup 3\n' >>common.conf
	mkid erin erin@example.org
	smimpd --data org --domain example.org adduser erin@example.org erin.pub
	ready 20
	[ "$(claim alice.key bob@example.net | tail -c 4)" = " 200" ]
	[ "$(claim alice.key bob@example.net | tail -c 4)" = " 200" ]
	[ "$(claim alice.key bob@example.net | tail -c 4)" = " 429" ]
	# Made-up addresses are answered 404, spend no prekey token, and
	# give none back: bob's allowance for alice stays used up.
	[ "$(claim alice.key nobody1@example.net)" = '{"error":"unknown user"} 404' ]
	[ "$(claim alice.key bob@example.net | tail -c 4)" = " 429" ]
	# Each 404 costs one of alice's lookups (3 a minute, one spent on
	# bob's log): once they are used up, every claim of hers is
	# refused, whoever it names, so claims cannot tell who exists.
	for i in $(seq 2 10); do
		run -0 claim alice.key "nobody$i@example.net"
		[ "$output" = '{"error":"unknown user"} 404' ] || break
	done
	[ "${output: -3}" = 429 ]
	[ "$i" -le 3 ]
	[ "$(claim alice.key dave@example.net | tail -c 4)" = " 429" ]
	# erin, of alice's domain, shares example.org's allowance for bob.
	[ "$(claim erin.key bob@example.net | tail -c 4)" = " 429" ]
	[ "$(pool bob@example.net)" = 18 ]
	# dave, of bob's own domain, has his own.
	[ "$(claim dave.key bob@example.net | tail -c 4)" = " 200" ]
}

@test "claims only by a user who signs: unsigned 401, a server or a recovery key 403, an unknown address 404; nothing taken" {
	servers
	bob_prekeys 2
	run -0 curl -s --cacert cert.pem -X POST -w ' %{http_code}' "https://127.0.0.1:$NET$CLAIM"
	[ "${output//$'\n'/}" = '{"error":"missing or malformed request signature"} 401' ]
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org/server.key example.org POST example.net "$CLAIM")
	run -0 curl -s --cacert cert.pem "${h[@]/#/-H}" -X POST -w ' %{http_code}' "https://127.0.0.1:$NET$CLAIM"
	[ "${output//$'\n'/}" = '{"error":"only a user takes prekeys"} 403' ]
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" dave.recovery POST example.net "$CLAIM")
	run -0 curl -s --cacert cert.pem "${h[@]/#/-H}" -X POST -w ' %{http_code}' "https://127.0.0.1:$NET$CLAIM"
	[ "${output//$'\n'/}" = '{"error":"only a user takes prekeys"} 403' ]
	# A signature by another key than the signer's.
	sed 's/^Smimp-Signer: .*/Smimp-Signer: dave@example.net/' <("$SMIMP_BUILD/t/signreq" alice.key POST example.net "$CLAIM") >h
	mapfile -t h <h
	run -0 curl -s --cacert cert.pem "${h[@]/#/-H}" -X POST -w ' %{http_code}' "https://127.0.0.1:$NET$CLAIM"
	[ "${output##* }" = 401 ]
	path=/smimp/v1/users/nobody@example.net/prekeys/claim
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key POST example.net "$path")
	run -0 curl -s --cacert cert.pem "${h[@]/#/-H}" -X POST -w ' %{http_code}' "https://127.0.0.1:$NET$path"
	[ "${output//$'\n'/}" = '{"error":"unknown user"} 404' ]
	[ "$(pool bob@example.net)" = 2 ]
}

@test "a user closed to strangers gives them no prekeys: a stranger's claim is refused as for nobody, nothing taken; one she allows gets them" {
	mkid erin erin@example.org
	smimpd --data org --domain example.org adduser erin@example.org erin.pub
	ready 4
	as_bob smimp-trust publish -i bob.key --unknown closed >/dev/null
	# erin, a stranger to bob, is answered as for an address nobody has.
	[ "$(claim erin.key bob@example.net)" = '{"error":"unknown user"} 404' ]
	[ "$(claim erin.key nobody@example.net)" = '{"error":"unknown user"} 404' ]
	[ "$(pool bob@example.net)" = 4 ]
	# alice, whom bob trusts, takes one.
	[ "$(claim alice.key bob@example.net | tail -c 4)" = " 200" ]
	[ "$(pool bob@example.net)" = 3 ]
	# erin's smimp-seal falls back to the long-term key, silently.
	export SMIMP_HOME="$BATS_TEST_TMPDIR/erinhome"
	smimp-trust fetch -i erin.key bob@example.net >/dev/null 2>&1
	run -0 --separate-stderr smimp-seal -i erin.key -r bob@example.net -o m msg
	unset SMIMP_HOME
	[ "$stderr" = "" ]
	[ "$(grep -c 'prekeys/claim 404' net.log)" = 3 ]
	[ "$(pool bob@example.net)" = 3 ]
	# Work, or an introduction, may still let her in: she gets them.
	as_bob smimp-trust publish -i bob.key --unknown pow:8 >/dev/null
	[ "$(claim erin.key bob@example.net | tail -c 4)" = " 200" ]
	as_bob smimp-trust publish -i bob.key --unknown introduction >/dev/null
	[ "$(claim erin.key bob@example.net | tail -c 4)" = " 200" ]
	[ "$(pool bob@example.net)" = 1 ]
}

@test "hostile batches refused with nothing stored: too many, bad signatures, another's pool, out of date, older, replayed, a full pool" {
	servers
	P=/smimp/v1/users/bob@example.net/prekeys
	PT="$SMIMP_BUILD/t/prekeytool"
	"$PT" batch bob.key 3 >ok.batch
	run -0 post bob.key "$P" ok.batch
	[ "$output" = '{"address":"bob@example.net","device":"","added":3,"count":3} 200' ]
	# 201 prekeys.
	{ "$PT" batch bob.key 200; "$PT" batch bob.key 1 | tail -n 1; } >big.batch
	run -0 post bob.key "$P" big.batch
	[ "$output" = '{"error":"malformed prekey batch: more than 200 prekeys"} 400' ]
	# A signature that does not verify, by bob or by another key.
	"$PT" batch bob.key 2 | awk 'NR > 4 && !done { n = split($0, f, " ");
	    f[4] = (substr(f[4], 1, 1) == "A" ? "B" : "A") substr(f[4], 2);
	    $0 = f[1] " " f[2] " " f[3] " " f[4]; done = 1 } { print }' >bad.batch
	run -0 post bob.key "$P" bad.batch
	[[ "$output" == '{"error":"the prekey '*' of bob@example.net does not verify"} 400' ]]
	"$PT" batch dave.key 2 | sed 's/^address: dave@/address: bob@/' >dave.batch
	run -0 post bob.key "$P" dave.batch
	[[ "$output" == '{"error":"the prekey '*' of bob@example.net does not verify"} 400' ]]
	# Another user's prekeys, in bob's request or at another's address.
	"$PT" batch dave.key 2 >dave.batch
	run -0 post bob.key "$P" dave.batch
	[ "$output" = '{"error":"a device uploads its own prekeys only"} 403' ]
	run -0 post bob.key /smimp/v1/users/dave@example.net/prekeys dave.batch
	[ "$output" = '{"error":"only its owner uploads or counts a user'"'"'s prekeys"} 403' ]
	# Out of date, and older than the pool's last batch.
	"$PT" batch bob.key 2 "$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)" >old.batch
	run -0 post bob.key "$P" old.batch
	[ "$output" = '{"error":"prekey batch out of date"} 400' ]
	"$PT" batch bob.key 2 "$(date -u -d '-200 seconds' +%Y-%m-%dT%H:%M:%SZ)" >older.batch
	run -0 post bob.key "$P" older.batch
	[ "$output" = '{"error":"the pool took a later batch, or holds one of these prekeys already"} 409' ]
	# The very request again.
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key POST example.net "$P" ok.batch)
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @ok.batch "https://127.0.0.1:$NET$P"
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @ok.batch "https://127.0.0.1:$NET$P"
	[ "${output//$'\n'/}" = '{"error":"replayed request"} 401' ]
	[ "$(pool bob@example.net)" = 3 ]
	# Unsigned.
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' --data-binary @ok.batch "https://127.0.0.1:$NET$P"
	[ "${output##* }" = 401 ]
	# A full pool: 1000 at most, and a refused batch's secrets go again.
	rm -f bob.prekeys
	for n in 1 2 3 4; do bob_prekeys 200; done
	bob_prekeys 197
	[ "$(pool bob@example.net)" = 1000 ]
	run -1 --separate-stderr as_bob smimp-trust prekeys -i bob.key --count 1
	[ "$stderr" = "smimp-trust: upload the prekeys: HTTP 409: the pool holds 1000 prekeys: 1 more would pass 1000" ]
	[ "$(secrets bob.key | grep -c '^secret: ')" = 997 ]
	[ "$(pool bob@example.net)" = 1000 ]
}

@test "smimp-fetch keeps the plain envelope, deletes the prekey's secret, and refills a pool running low" {
	ready 26
	for n in 1 2 3; do
		printf 'message %s\n' "$n" | as_alice smimp-seal -i alice.key -r bob@example.net -o "m$n.age"
		as_alice smimp-send -i alice.key "m$n.age" >/dev/null
	done
	for _ in $(seq 50); do
		[ "$(store_sql net "SELECT count(*) FROM mailbox WHERE recipient = 'bob@example.net'")" = 3 ] && break
		sleep 0.2
	done
	run -0 --separate-stderr as_bob smimp-fetch -i bob.key
	[ "${stderr_lines[0]}" = "smimp-fetch: uploaded 100 one-time prekeys (the server had 23 left)" ]
	[ "${stderr_lines[1]}" = "smimp-fetch: 3 fetched: 3 to the inbox, 0 to Other, 0 dropped" ]
	[ "$(pool bob@example.net)" = 123 ]
	[ "$(secrets bob.key | grep -c '^secret: ')" = 123 ]
	for f in "$BOBHOME"/Maildir/new/*; do
		[ "$(head -n 1 "$f")" = smimp-envelope/1 ]
		[ "$(stat -c %a "$f")" = 600 ]
		run -0 --separate-stderr as_bob smimp-open -i bob.key --json "$f"
		[[ "$output" == *'"forward_secret":true'* ]]
		[ "${#stderr_lines[@]}" = 1 ]
		run -0 as_bob smimp-open -i bob.key -q "$f"
		[[ "$output" == "message "[123] ]]
	done
	[ "$(ls "$BOBHOME"/Maildir/new | wc -l)" = 3 ]
	# The sealed copies are beyond reach now.
	for n in 1 2 3; do
		run -3 as_bob smimp-open -i bob.key "m$n.age"
	done
	# A pool that is not low is left alone.
	run -0 --separate-stderr as_bob smimp-fetch -i bob.key
	[ "$stderr" = "smimp-fetch: 0 fetched: 0 to the inbox, 0 to Other, 0 dropped" ]
}

@test "smimp-fetch --mime: the MIME form in the inbox, the plain envelope kept in .sealed, the prekey's secret deleted" {
	ready 30
	echo 'for a mail reader' | as_alice smimp-seal -i alice.key -r bob@example.net -o m.age
	id=$(prekey_of m.age bob.key)
	[ -n "$id" ]
	as_alice smimp-send -i alice.key m.age >/dev/null
	for _ in $(seq 50); do
		[ "$(store_sql net "SELECT count(*) FROM mailbox WHERE recipient = 'bob@example.net'")" = 1 ] && break
		sleep 0.2
	done
	run -0 --separate-stderr as_bob smimp-fetch -i bob.key --mime
	[ "${stderr_lines[-1]}" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	[ "$(secrets bob.key | grep -c "^secret: $id ")" = 0 ]
	eml=$(ls "$BOBHOME"/Maildir/new)
	[[ "$eml" == *.eml ]]
	grep -qx 'for a mail reader' "$BOBHOME/Maildir/new/$eml"
	grep -qx 'X-Smimp-Forward-Secrecy: yes' "$BOBHOME/Maildir/new/$eml"
	# What .sealed keeps is the plain envelope: the only copy that opens.
	kept="$BOBHOME/Maildir/.sealed/${eml%.eml}.smimp"
	[ "$(head -n 1 "$kept")" = smimp-envelope/1 ]
	[ "$(stat -c %a "$kept")" = 600 ]
	run -0 as_bob smimp-open -i bob.key -q "$kept"
	[ "$output" = 'for a mail reader' ]
	run -3 as_bob smimp-open -i bob.key m.age
	# Nothing is left behind in tmp/: the plain envelope was moved.
	[ -z "$(ls "$BOBHOME"/Maildir/tmp)" ]
}

@test "smimp-fetch stopped between filing a message and deleting its prekey: the next fetch deletes it" {
	ready 30
	as_alice smimp-seal -i alice.key -r bob@example.net -o m.age msg
	id=$(prekey_of m.age bob.key)
	as_alice smimp-send -i alice.key m.age >/dev/null
	for _ in $(seq 50); do
		[ "$(store_sql net "SELECT count(*) FROM mailbox WHERE recipient = 'bob@example.net'")" = 1 ] && break
		sleep 0.2
	done
	# Someone holds the store's lock: the secret cannot go yet.
	python3 -c 'import fcntl, time; f = open("bob.prekeys.lock", "a")
fcntl.flock(f, fcntl.LOCK_EX); open("held", "w"); time.sleep(30)' &
	holder=$!
	for _ in $(seq 50); do [ -e held ] && break; sleep 0.1; done
	run -75 --separate-stderr env SMIMP_HOME="$BOBHOME" SMIMP_LOCK_TIMEOUT=0 smimp-fetch -i bob.key
	[[ "$stderr" == *"the prekey store is locked: another process held 'bob.prekeys.lock' for 0 s, try again later"* ]]
	[ "$(ls "$BOBHOME"/Maildir/new | wc -l)" = 1 ]
	secrets bob.key | grep -q "^secret: $id "
	kill "$holder"
	wait "$holder" || true
	run -0 --separate-stderr as_bob smimp-fetch -i bob.key
	[ "$stderr" = "smimp-fetch: 1 fetched: 0 to the inbox, 0 to Other, 0 dropped, 1 filed before" ]
	[ "$(secrets bob.key | grep -c "^secret: $id ")" = 0 ]
	[ "$(ls "$BOBHOME"/Maildir/new | wc -l)" = 1 ]
}

@test "smimp-trust prekeys: a bad count is a usage error; a send-only device, no server: refused" {
	servers
	run -2 --separate-stderr as_bob smimp-trust prekeys -i bob.key --count 0
	[ "$stderr" = "smimp-trust: invalid --count '0': a number from 1 to 200 (see 'smimp-trust --help')" ]
	run -2 --separate-stderr as_bob smimp-trust prekeys -i bob.key --count 201
	[ "$stderr" = "smimp-trust: invalid --count '201': a number from 1 to 200 (see 'smimp-trust --help')" ]
	run -2 --separate-stderr as_bob smimp-trust list --count 3
	[ "$stderr" = "smimp-trust: --count goes with prekeys (see 'smimp-trust --help')" ]
	[ ! -e bob.prekeys ]
	enroll_device bob.key bob@example.net ci send
	as_bob smimp-fetch -i ci.key --log-only -q
	run -1 --separate-stderr as_bob smimp-trust prekeys -i ci.key
	[ "$stderr" = "smimp-trust: 'ci.key' is the key of the device ci of bob@example.net, whose scope is send: it cannot open" ]
	[ ! -e ci.prekeys ]
	stop_servers net
	run -75 --separate-stderr as_bob smimp-trust prekeys -i bob.key --count 2
	[[ "$stderr" == "smimp-trust: "* ]]
}

@test "a claim answer that names an empty pool again and again, or one of a key it gave a prekey, counts each of the recipient's keys once" {
	PT="$SMIMP_BUILD/t/prekeytool"
	LOG="$REPO/t/vectors/alice-devices.pub"
	# alice has three keys that receive: her own, laptop's and phone's.
	read -r id key sig < <(sed -n 's/^prekey: //p' "$REPO/t/vectors/prekeys-laptop.batch" | head -n 1)
	printf '{"prekeys":[{"device":"laptop","id":"%s","key":"%s","date":"2026-11-27T00:00:00Z","signature":"%s"}],"exhausted":["phone","phone","phone","laptop","laptop","ci-runner","nobody"]}' \
		"$id" "$key" "$sig" >answer.json
	run -0 "$PT" claim "$LOG" <answer.json
	[ "${#lines[@]}" -eq 2 ]
	[ "${lines[0]}" = "taken 1 exhausted 1" ]
	[ "${lines[1]}" = "alice@example.org: its server has no one-time prekey left for 1 of its keys: sealed to that long-term key, not forward-secret" ]
	printf '{"prekeys":[],"exhausted":["","","phone","","phone","laptop"]}' >answer.json
	run -0 "$PT" claim "$LOG" <answer.json
	[ "${lines[0]}" = "taken 0 exhausted 3" ]
	[ "${lines[1]}" = "alice@example.org: its server has no one-time prekey left for 3 of its keys: sealed to their long-term key, not forward-secret" ]
}
