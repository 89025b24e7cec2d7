#!/usr/bin/env bats
# Two servers, example.org and example.net, on loopback over HTTPS:
# relay, retries, restarts after SIGKILL, bounces, forged senders.

load helper

setup() {
	common_setup
	make_cert
	mkid alice alice@example.org
	mkid carol carol@example.org
	mkid bob bob@example.net
	mkid dave dave@example.net
	smimpd --data org --domain example.org adduser alice@example.org alice.pub
	smimpd --data org --domain example.org adduser carol@example.org carol.pub
	smimpd --data net --domain example.net adduser bob@example.net bob.pub
	smimpd --data net --domain example.net adduser dave@example.net dave.pub
	ORG=$(free_port)
	NET=$(free_port)
	export SMIMP_RESOLVE="example.org=127.0.0.1:$ORG,example.net=127.0.0.1:$NET"
	export SMIMP_CACERT="$PWD/cert.pem"
	printf 'resolve %s\ncacert %s\nretry-base 1\nretry-max 2\ngive-up %s\n' \
		"$SMIMP_RESOLVE" "$SMIMP_CACERT" "${GIVE_UP:-600}" >common.conf
	export BOBHOME="$BATS_TEST_TMPDIR/bobhome"
	trust_as "$BOBHOME" alice.pub known
}

teardown() { stop_servers org net; }

fetch() { SMIMP_HOME="$BOBHOME" smimp-fetch -i "$1.key" -d "mail-$1"; }

@test "alice@example.org to bob@example.net across two servers" {
	start org example.org "$ORG"
	start net example.net "$NET"
	echo "hello across domains" | smimp-seal -i alice.key -r bob.pub -s hi >m.age
	run -0 --separate-stderr smimp-send -i alice.key m.age
	mid=$output
	wait_for org.log "relayed $mid to example.net"
	run -0 --separate-stderr fetch bob
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	run -0 --separate-stderr env SMIMP_HOME="$BOBHOME" smimp-open -i bob.key mail-bob/new/*
	[ "$output" = "hello across domains" ]
	grep -q "POST /smimp/v1/deliver 201" net.log
	# The servers saw addresses and sizes, never the subject or body.
	! grep -q "hello across" org.log net.log || false
}

@test "a peer that changed its server key is believed once its new key is fetched" {
	start org example.org "$ORG"
	start net example.net "$NET"
	echo one | smimp-seal -i alice.key -r bob.pub >m1.age
	mid=$(smimp-send -i alice.key m1.age)
	wait_for org.log "relayed $mid to example.net"
	# example.org comes back with a new key; example.net has the old one.
	kill -TERM "$(cat org.pid)"
	for _ in $(seq 150); do kill -0 "$(cat org.pid)" 2>/dev/null || break; sleep 0.1; done
	rm org/server.key
	# A PostgreSQL store records the key its nodes sign with: a change
	# of key is the administrator's, as smimpd(8) says.
	[ "${SMIMP_TEST_STORE:-sqlite}" = sqlite ] || store_sql org 'DELETE FROM server_key'
	start org example.org "$ORG"
	echo two | smimp-seal -i alice.key -r bob.pub >m2.age
	mid=$(smimp-send -i alice.key m2.age)
	wait_for org.log "relayed $mid to example.net"
	run -0 --separate-stderr fetch bob
	[ "$stderr" = "smimp-fetch: 2 fetched: 2 to the inbox, 0 to Other, 0 dropped" ]
}

@test "several recipients on several domains, each gets it once" {
	start org example.org "$ORG"
	start net example.net "$NET"
	echo "to all" | smimp-seal -i alice.key -r bob.pub -r dave.pub -r carol.pub >m.age
	mid=$(smimp-send -i alice.key m.age)
	smimp-send -i alice.key m.age >/dev/null
	wait_for org.log "relayed $mid to example.net"
	run -0 --separate-stderr fetch bob
	[[ "$stderr" == "smimp-fetch: 1 fetched:"* ]]
	run -0 --separate-stderr fetch dave
	[[ "$stderr" == "smimp-fetch: 1 fetched:"* ]]
	run -0 --separate-stderr fetch carol
	[[ "$stderr" == "smimp-fetch: 1 fetched:"* ]]
	# Sent twice: the receiving mailbox holds it once.
	sleep 1
	run -0 --separate-stderr fetch bob
	[[ "$stderr" == "smimp-fetch: 0 fetched:"* ]]
}

@test "a recipient server that is down at first gets the message later, once" {
	# Down, but its port held: a listener that hangs up on every
	# connection, so that no other test's server takes the port
	# meanwhile and answers in its place.
	python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
while True:
    s.accept()[0].close()' "$NET" &
	hold=$!
	start org example.org "$ORG"
	echo "patience" | smimp-seal -i alice.key -r bob.pub >m.age
	mid=$(smimp-send -i alice.key m.age 2>/dev/null)
	wait_for org.log "relay $mid to example.net: .*retrying"
	kill "$hold"
	wait "$hold" 2>/dev/null || true
	start net example.net "$NET"
	wait_for org.log "relayed $mid to example.net"
	run -0 --separate-stderr fetch bob
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	sleep 1.5
	run -0 --separate-stderr fetch bob
	[[ "$stderr" == "smimp-fetch: 0 fetched:"* ]]
}

@test "SIGKILL with messages queued: nothing lost, nothing duplicated" {
	# Killed in the middle of an attempt, the server leaves entries
	# leased.  Alone with its store (SQLite), it frees them when it
	# starts again; on a store that nodes share (PostgreSQL), they are
	# free when the lease runs out, which here is soon.
	echo 'relay-lease 2' >>common.conf
	start org example.org "$ORG"
	for i in 1 2 3; do
		echo "queued $i" | smimp-seal -i alice.key -r bob.pub | smimp-send -i alice.key >>mids
	done
	kill -KILL "$(cat org.pid)"
	wait "$(cat org.pid)" 2>/dev/null || true
	start net example.net "$NET"
	start org example.org "$ORG"
	for mid in $(cat mids); do wait_for org.log "relayed $mid to example.net"; done
	run -0 --separate-stderr fetch bob
	[ "$stderr" = "smimp-fetch: 3 fetched: 3 to the inbox, 0 to Other, 0 dropped" ]
	for f in mail-bob/new/*; do SMIMP_HOME="$BOBHOME" smimp-open -q -i bob.key "$f"; done | sort >got
	printf 'queued 1\nqueued 2\nqueued 3\n' >want
	cmp got want
}

@test "giving up leaves a signed bounce in the sender's mailbox" {
	GIVE_UP=2 setup_give_up
	start org example.org "$ORG"
	echo "nobody home" | smimp-seal -i alice.key -r bob.pub >m.age
	mid=$(smimp-send -i alice.key m.age)
	wait_for org.log "bounced $mid to alice@example.org"
	run -0 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/alicehome" smimp-fetch -i alice.key -d mail-alice
	# Signed by alice's own server: it goes to her inbox.
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	grep -rq "^smimp-bounce/1$" mail-alice/new
	grep -rq "^message-id: $mid$" mail-alice
	grep -rq "^signature: " mail-alice
}

@test "a full mailbox at the other end bounces at once, quoting that server as its words" {
	start org example.org "$ORG"
	echo 'mailbox-quota 1000' >>common.conf
	start net example.net "$NET"
	head -c 3000 /dev/urandom | smimp-seal -i alice.key -r bob.pub >m.age
	mid=$(smimp-send -i alice.key m.age)
	# give-up is 600 s here: only a final answer bounces this soon.
	wait_for org.log "bounced $mid to alice@example.org"
	run -0 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/alicehome" smimp-fetch -i alice.key -d mail-alice
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	grep -rqx "reason: example.net answered HTTP 507; example.net said: quota exceeded" mail-alice/new
	run -0 --separate-stderr fetch bob
	[[ "$stderr" == "smimp-fetch: 0 fetched:"* ]]
}

@test "a 60 MiB message crosses to the other domain and is downloaded, with both servers in constant memory" {
	[[ "$SMIMP_BUILD" != *-san ]] || skip "resident size means nothing under AddressSanitizer"
	start org example.org "$ORG"
	start net example.net "$NET"
	head -c 60M /dev/urandom | smimp-seal -i alice.key -r bob.pub >big.age
	mid=$(smimp-send -i alice.key big.age)
	for _ in $(seq 300); do grep -q "relayed $mid" org.log && break; sleep 0.1; done
	grep -q "relayed $mid" org.log
	for p in org net; do
		[ "$(awk '/^VmHWM/ { print $2 }' "/proc/$(cat $p.pid)/status")" -lt $((80 * 1024)) ]
	done
	before=$(awk '/^VmHWM/ { print $2 }' "/proc/$(cat net.pid)/status")
	run -0 --separate-stderr fetch bob
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	cmp big.age mail-bob/new/*
	# The download streamed from the body's file too.
	after=$(awk '/^VmHWM/ { print $2 }' "/proc/$(cat net.pid)/status")
	[ "$after" -lt $((before + 16 * 1024)) ]
}

setup_give_up() {
	sed -i "s/^give-up .*/give-up $GIVE_UP/" common.conf
}

@test "forged senders are refused by the receiving server" {
	start org example.org "$ORG"
	start net example.net "$NET"
	echo x | smimp-seal -i alice.key -r bob.pub >body
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	zero=$(head -c 64 /dev/zero | base64 -w0)
	# deliver SERVERKEY FROM MID DATE FILE: a delivery to bob, signed by SERVERKEY
	deliver() {
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server "$1" example.org POST example.net \
			/smimp/v1/deliver "$5" "Smimp-From: $2" 'Smimp-To: bob@example.net' \
			'Smimp-Stamp-To: bob@example.net' "Smimp-Message-Id: $3" "Smimp-Stamp: $zero" \
			"Smimp-Stamp-Date: $4")
		curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @"$5" \
			"https://127.0.0.1:$NET/smimp/v1/deliver"
	}
	# A server may relay only for its own domain.
	run -0 deliver org/server.key dave@example.net forged1 "$now" body
	[ "${output//$'\n'/}" = '{"error":"a server relays only for its own domain"} 403' ]
	# A stamp that alice's key did not make.
	run -0 deliver org/server.key alice@example.org forged2 "$now" body
	[ "${output//$'\n'/}" = '{"error":"delivery stamp does not verify"} 403' ]
	# A stamp dated long ago, or in the future.
	run -0 deliver org/server.key alice@example.org forged3 2026-01-01T00:00:00Z body
	[ "${output//$'\n'/}" = '{"error":"delivery stamp out of date"} 403' ]
	run -0 deliver org/server.key alice@example.org forged4 2099-01-01T00:00:00Z body
	[ "${output//$'\n'/}" = '{"error":"delivery stamp out of date"} 403' ]
	# A body that is not an age file.
	echo 'not sealed' >plain
	run -0 deliver org/server.key alice@example.org forged5 "$now" plain
	[ "${output//$'\n'/}" = '{"error":"the body is not an age file"} 400' ]
	# A request signed by a key the sending domain does not publish.
	run -0 deliver net/server.key alice@example.org forged6 "$now" body
	[ "${output//$'\n'/}" = '{"error":"bad signature"} 401' ]
	# A header changed after signing.
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org/server.key example.org POST example.net \
		/smimp/v1/deliver body 'Smimp-From: alice@example.org' 'Smimp-To: bob@example.net')
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" -H 'Smimp-To: dave@example.net' \
		--data-binary @body "https://127.0.0.1:$NET/smimp/v1/deliver"
	[ "${output//$'\n'/}" = '{"error":"header Smimp-To repeated"} 401' ]
	# A header added after signing.
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" -H 'Smimp-Message-Id: added' \
		--data-binary @body "https://127.0.0.1:$NET/smimp/v1/deliver"
	[ "${output//$'\n'/}" = '{"error":"bad signature"} 401' ]
	run -0 --separate-stderr fetch bob
	[[ "$stderr" == "smimp-fetch: 0 fetched:"* ]]
}

@test "recipients are looked up in their domain's directory and pinned on first use" {
	start org example.org "$ORG"
	start net example.net "$NET"
	AHOME="$BATS_TEST_TMPDIR/alicehome"
	run -0 --separate-stderr bash -c "echo 'by address' | SMIMP_HOME='$AHOME' smimp-seal -i alice.key -r BOB@example.net | SMIMP_HOME='$AHOME' smimp-send -i alice.key"
	[[ "$stderr" == "smimp-seal: pinned bob@example.net, fingerprint $(smimp-keygen --fingerprint bob.pub) (first use: check it with its owner)" ]]
	run -0 env SMIMP_HOME="$AHOME" smimp-trust show bob@example.net
	grep -qx "tier: known" <<<"$output"
	# smimp-trust fetch does the same on request.
	run -0 --separate-stderr env SMIMP_HOME="$AHOME" smimp-trust fetch -i alice.key dave@example.net --tier trusted
	[ "$output" = "dave@example.net trusted $(smimp-keygen --fingerprint dave.pub)" ]
	run -1 --separate-stderr env SMIMP_HOME="$AHOME" smimp-trust fetch -i alice.key nobody@example.net
	[ "$stderr" = "smimp-trust: nobody@example.net: not found in the directory of example.net (HTTP 404)" ]
	wait_for org.log "relayed .* to example.net"
	run -0 --separate-stderr fetch bob
	[[ "$stderr" == "smimp-fetch: 1 fetched: 1 to the inbox,"* ]]
}

@test "queued messages go over in batches, each arrives once" {
	start org example.org "$ORG"
	for i in $(seq 40); do echo "batch $i" | smimp-seal -i alice.key -r bob.pub >"b$i.age"; done
	run -0 --separate-stderr smimp-send -i alice.key b*.age
	[ "${#lines[@]}" -eq 40 ]
	start net example.net "$NET"
	for _ in $(seq 100); do [ "$(grep -c relayed org.log)" -ge 40 ] && break; sleep 0.1; done
	[ "$(grep -c relayed org.log)" -eq 40 ]
	grep -q 'POST /smimp/v1/deliver-batch 200' net.log
	run -0 --separate-stderr fetch bob
	[ "$stderr" = "smimp-fetch: 40 fetched: 40 to the inbox, 0 to Other, 0 dropped" ]
	[ "$(cat mail-bob/new/* | wc -c)" -gt 0 ]
}

@test "rate-domain counts each message of a batch: those past it get 429 unchecked" {
	start org example.org "$ORG"
	echo 'rate-domain 3' >>common.conf
	start net example.net "$NET"
	echo x | smimp-seal -i alice.key -r bob.pub >sealed
	{
		printf 'smimp-batch/1\n'
		for i in 1 2 3 4 5; do
			printf 'From: alice@example.org\nTo: bob@example.net\nStamp-To: bob@example.net\nMessage-Id: r%s\nStamp: %s\nStamp-Date: %s\nLength: %s\n\n' \
				"$i" "$(head -c 64 /dev/zero | base64 -w0)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(wc -c <sealed)"
			cat sealed
			echo
		done
	} >five
	post() {
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org/server.key example.org POST example.net /smimp/v1/deliver-batch five)
		curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @five \
			"https://127.0.0.1:$NET/smimp/v1/deliver-batch"
	}
	# The request's token and two more are checked (their stamps are
	# forged); the two past the three wait, their stamps never verified.
	run -0 post
	[ "${output: -3}" = 200 ]
	[ "$(grep -o '"status":403,"error":"delivery stamp does not verify"' <<<"$output" | wc -l)" -eq 3 ]
	[ "$(grep -oE '"message_id":"r[45]","status":429,"error":"rate limit","retry_after":[1-9][0-9]*' <<<"$output" | wc -l)" -eq 2 ]
	# The site's allowance is spent: the next request waits whole.
	run -0 post
	[[ "$output" == *' 429' ]]
}

@test "malformed or forged batches are refused, item by item or whole" {
	start org example.org "$ORG"
	start net example.net "$NET"
	echo x | smimp-seal -i alice.key -r bob.pub >sealed
	item() {	# item FROM MID: one forged message
		printf 'From: %s\nTo: bob@example.net\nStamp-To: bob@example.net\nMessage-Id: %s\nStamp: %s\nStamp-Date: %s\nLength: %s\n\n' \
			"$1" "$2" "$(head -c 64 /dev/zero | base64 -w0)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
			"$(wc -c <sealed)"
		cat sealed
		echo
	}
	post() {
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org/server.key example.org POST example.net /smimp/v1/deliver-batch "$1")
		curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @"$1" \
			"https://127.0.0.1:$NET/smimp/v1/deliver-batch"
	}
	# Exactly the most a batch holds, each one forged: a status for each.
	{ printf 'smimp-batch/1\n'; for i in $(seq 32); do item alice@example.org "f$i"; done; } >full
	run -0 post full
	[ "${output: -3}" = 200 ]
	[ "$(grep -o '"status":403,"error":"delivery stamp does not verify"' <<<"$output" | wc -l)" -eq 32 ]
	[[ "$output" == '[{"message_id":"f1","status":403,'* ]]
	# One more is too many; a sender of another domain is refused.
	{ cat full; item alice@example.org f33; } >over
	run -0 post over
	[ "$output" = '{"error":"malformed batch"}
 400' ]
	{ printf 'smimp-batch/1\n'; item dave@example.net d1; } >foreign
	run -0 post foreign
	[[ "$output" == *'"status":403,"error":"a server relays only for its own domain"'* ]]
	# Broken framing of every kind.
	printf 'smimp-batch/2\n' >b1
	{ printf 'smimp-batch/1\n'; item alice@example.org t1 | head -c 150; } >b2
	{ printf 'smimp-batch/1\n'; item alice@example.org t2 | sed 's/^Length: .*/Length: 99999/'; } >b3
	{ printf 'smimp-batch/1\n'; item alice@example.org t3 | sed 's/^To:/Cc:/'; } >b4
	{ printf 'smimp-batch/1\n'; item alice@example.org t4 | sed 's/^Length: .*/Length: -1/'; } >b5
	printf 'smimp-batch/1\n' >b6
	for f in b1 b2 b3 b4 b5 b6; do
		run -0 post "$f"
		[ "${output: -3}" = 400 ]
	done
	# Still serving, and nothing was stored.
	run -0 --separate-stderr fetch bob
	[[ "$stderr" == "smimp-fetch: 0 fetched:"* ]]
}
