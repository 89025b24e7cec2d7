#!/usr/bin/env bats
# Proof of work (doc/PROTOCOL.md, "Proof of work"): the vectors and what
# a proof is bound to; smimp-send learning what each recipient requires
# and computing it, within --max-work; the Smimp-Work and
# Smimp-Introduction headers refused when malformed and carried from
# submission through the relay queue to the recipient's server, one by
# one and in batches, which computes each recipient's value.
#
# A directory that serves requirements is t/badserver.py (mode
# requires) until consent policies are served by smimpd itself; the
# tests of enforcement at the end run once they are.

load helper

setup() {
	common_setup
	WT="$SMIMP_BUILD/t/worktool"
}

teardown() {
	local p
	for p in "$BATS_TEST_TMPDIR"/*.pid; do
		[ -f "$p" ] && kill -TERM "$(cat "$p")" 2>/dev/null
	done
	if [ -n "${TMUX_SOCK:-}" ]; then
		tmux -S "$TMUX_SOCK" kill-server 2>/dev/null || true
	fi
	sleep 0.3
	return 0
}

# directory: t/badserver.py in mode requires on req/ (ADDRESS files, one
# requirement a line), its port in $BAD, its requests in requests.log.
directory() {
	mkdir -p req
	rm -f port
	python3 "$REPO/t/badserver.py" port requires "$BATS_TEST_TMPDIR/req" \
		>requests.log 2>&1 &
	echo $! >bad.pid
	for _ in $(seq 50); do [ -s port ] && break; sleep 0.1; done
	BAD=$(cat port)
}

# on_badserver: alice@example.org, bob and carol of the same domain, all
# served by the directory (home server included), over plain HTTP.
on_badserver() {
	mkid alice alice@example.org
	mkid bob bob@example.org
	mkid carol carol@example.org
	directory
	export SMIMP_RESOLVE="example.org=127.0.0.1:$BAD" SMIMP_ALLOW_HTTP=example.org
	unset SMIMP_CACERT SMIMP_CONFIG
	printf 'for bob\n' | smimp-seal -i alice.key -r bob.pub >m.age
}

# start_v NAME DOMAIN PORT: start, with debug logging (-v).
start_v() { start "$1" "$2" "$3" -v; }

# federation: example.org (alice, carol) and example.net (bob, dave),
# each a real smimpd with debug logging, up.
federation() {
	alice_and_bob_domains
	mkid carol carol@example.org
	mkid dave dave@example.net
	smimpd --data org --domain example.org adduser carol@example.org carol.pub
	smimpd --data net --domain example.net adduser dave@example.net dave.pub
	start_v org example.org "$ORG"
	start_v net example.net "$NET"
}

# stop_net: example.net's server stopped, and gone.
stop_net() {
	kill -TERM "$(cat net.pid)"
	for _ in $(seq 150); do kill -0 "$(cat net.pid)" 2>/dev/null || break; sleep 0.1; done
	rm net.pid
}

# value LOG MID RCPT: the proof of work value the server computed for
# RCPT of message MID, from its debug log (empty when none logged).
value() {
	sed -n "s/.* $2 .*to $3: proof of work \([0-9]*\)\$/\1/p" "$1" | tail -1
}

# submit KEY MID BODY HEADER...: a submission to example.org signed by
# KEY's owner; prints the answer and the status.
submit() {
	local h
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" "$1" POST example.org /smimp/v1/messages "$3" \
		"Smimp-Message-Id: $2" "${@:4}")
	curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @"$3" \
		"https://127.0.0.1:$ORG/smimp/v1/messages" | tr -d '\n'
}

# deliver BODY HEADER...: a delivery from example.org's server to
# example.net's; prints the answer and the status.
deliver() {
	local h
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org/server.key example.org POST example.net \
		/smimp/v1/deliver "$1" "${@:2}")
	curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @"$1" \
		"https://127.0.0.1:$NET/smimp/v1/deliver" | tr -d '\n'
}

# deliver_batch FILE: FILE posted as a batch from example.org's server
# to example.net's; prints the answer and the status.
deliver_batch() {
	local h
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org/server.key example.org POST example.net \
		/smimp/v1/deliver-batch "$1")
	curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @"$1" \
		"https://127.0.0.1:$NET/smimp/v1/deliver-batch" | tr -d '\n'
}

# ---- the function ----

@test "the proof-of-work vectors, what a proof is bound to, and the header syntax" {
	run -0 "$WT" check
	[ "${lines[-1]}" = "54 passed, 0 failed" ]
	! grep -q '^FAIL' <<<"$output" || false
	grep -qx 'ok bound: bob'"'"'s proof does not hold for dave' <<<"$output"
	grep -qx 'ok bound: not for another message id' <<<"$output"
	grep -qx 'ok bound: not for another date' <<<"$output"
	grep -qx 'ok header: one more is refused' <<<"$output"
}

@test "doc/PROTOCOL.md gives the values the library computes" {
	run -0 "$WT" print
	[ "${#lines[@]}" -eq 3 ]
	sh=${lines[0]#SH: }
	[ "${#sh}" -eq 64 ]
	grep -q "$sh" "$REPO/doc/PROTOCOL.md"
	hash=$(sed -n 's/.*: hash \([0-9a-f]*\), value .*/\1/p' <<<"${lines[1]}")
	grep -q "$hash" "$REPO/doc/PROTOCOL.md"
	for n in $(grep -o '[0-9a-f]\{16\} (value [0-9]*)' <<<"${lines[2]}" | tr ' ' '_'); do
		grep -qF "${n//_/ }" "$REPO/doc/PROTOCOL.md"
	done
	grep -q "^#define WORK_DEFAULT_BITS	$(sed -n 's/.*default difficulty is \([0-9]*\) bits.*/\1/p' "$REPO/doc/PROTOCOL.md")\$" \
		"$REPO/lib/work.h"
}

# ---- smimp-send ----

@test "smimp-send computes the proof a recipient requires, silently when stderr is no terminal" {
	on_badserver
	echo pow:12 >req/bob@example.org
	run -0 --separate-stderr smimp-send -i alice.key m.age
	[ -z "$stderr" ]
	[ "$(grep -c 'GET /smimp/v1/users/bob@example.org/log' requests.log)" -eq 1 ]
	[ "$(grep -c 'POST /smimp/v1/messages' requests.log)" -eq 1 ]
	grep -Eqx 'Smimp-Work: bob@example.org=[0-9a-f]{16}' requests.log
	# None required, none computed.
	echo none >req/bob@example.org
	: >requests.log
	run -0 --separate-stderr smimp-send -i alice.key m.age
	[ -z "$stderr" ]
	grep -qx 'Smimp-Work: -' requests.log
}

@test "smimp-send --max-work: past it, the documented error, status 6, nothing sent" {
	on_badserver
	echo pow:40 >req/bob@example.org
	start=$SECONDS
	run -6 --separate-stderr smimp-send -i alice.key --max-work 1 m.age
	[ "$stderr" = "smimp-send: bob@example.org requires a proof of work of 40 bits, not found in the 1 s allowed: nothing sent" ]
	[ -z "$output" ]
	[ $((SECONDS - start)) -lt 10 ]
	grep -q 'GET /smimp/v1/users/bob@example.org/log' requests.log
	! grep -q 'POST' requests.log || false
	# Its bounds.
	for bad in 0 241 1s -1 ''; do
		run -2 --separate-stderr smimp-send -i alice.key --max-work "$bad" m.age
		[ "$stderr" = "smimp-send: --max-work takes 1 to 240 seconds, not '$bad' (see 'smimp-send --help')" ]
	done
	! grep -q 'POST' requests.log || false
}

@test "smimp-send names a recipient who needs an introduction or takes no strangers, and sends anyway" {
	on_badserver
	echo introduction >req/bob@example.org
	echo closed >req/carol@example.org
	printf 'to both\n' | smimp-seal -i alice.key -r bob.pub -r carol.pub >two.age
	run -0 --separate-stderr smimp-send -i alice.key two.age
	[ "${#stderr_lines[@]}" -eq 2 ]
	[ "${stderr_lines[0]}" = "smimp-send: bob@example.org takes messages from strangers only with an introduction: sending anyway, its server decides" ]
	[ "${stderr_lines[1]}" = "smimp-send: carol@example.org takes no messages from strangers: sending anyway, its server decides" ]
	grep -q 'POST /smimp/v1/messages' requests.log
	grep -qx 'Smimp-Work: -' requests.log
	# A requirement it cannot read: said, and none assumed.
	echo pow=12 >req/bob@example.org
	echo none >req/carol@example.org
	run -0 --separate-stderr smimp-send -i alice.key two.age
	[ "$stderr" = "smimp-send: could not learn what bob@example.org requires, sent without a proof of work: the directory of example.org answered a malformed requirement for bob@example.org" ]
}

@test "refused as for an unknown recipient, smimp-send looks the requirement up again and sends with the work it now asks" {
	on_badserver
	# bob's policy changes between the lookup and the submission.
	printf 'none\npow:10\n' >req/bob@example.org
	run -0 --separate-stderr smimp-send -i alice.key m.age
	[ -z "$stderr" ]
	mapfile -t log < <(grep -v /.well-known/ requests.log)
	[ "${#log[@]}" -eq 6 ]
	[ "${log[0]}" = "GET /smimp/v1/users/bob@example.org/log" ]
	[ "${log[1]}" = "POST /smimp/v1/messages" ]
	[ "${log[2]}" = "Smimp-Work: -" ]
	[ "${log[3]}" = "GET /smimp/v1/users/bob@example.org/log" ]
	[ "${log[4]}" = "POST /smimp/v1/messages" ]
	[[ "${log[5]}" =~ ^Smimp-Work:\ bob@example.org=[0-9a-f]{16}$ ]]
}

@test "a proof of work in progress is one line on a terminal, rewritten in place" {
	command -v tmux >/dev/null || skip "tmux is not installed"
	on_badserver
	echo pow:21 >req/bob@example.org
	cat >run.sh <<-EOF
	export PATH="$PATH" SMIMP_HOME="$SMIMP_HOME" SMIMP_RESOLVE="$SMIMP_RESOLVE" SMIMP_ALLOW_HTTP=example.org
	smimp-send -i alice.key m.age >mid
	echo rc=\$?
	sleep 60
	EOF
	TMUX_SOCK="$BATS_TEST_TMPDIR/tmux.sock"
	tmux -S "$TMUX_SOCK" -f /dev/null new-session -d -x 150 -y 30 \
		-c "$BATS_TEST_TMPDIR" "sh run.sh" 3>&-
	for _ in $(seq 600); do
		tmux -S "$TMUX_SOCK" capture-pane -p | grep -q '^rc=' && break
		sleep 0.1
	done
	mapfile -t screen < <(tmux -S "$TMUX_SOCK" capture-pane -p | sed '/^$/d')
	printf '%s\n' "${screen[@]}"
	[ "${#screen[@]}" -eq 2 ]
	[[ "${screen[0]}" =~ ^smimp-send:\ proof\ of\ work\ for\ bob@example.org\ \(21\ bits\):\ done\ in\ [0-9]+\.[0-9]\ s$ ]]
	[ "${screen[1]}" = "rc=0" ]
	grep -Eqx 'Smimp-Work: bob@example.org=[0-9a-f]{16}' requests.log
}

# ---- the headers on the server ----

@test "malformed Smimp-Work and Smimp-Introduction are refused with 400 at submission" {
	federation
	echo x | smimp-seal -i alice.key -r carol.pub -r bob.pub >body
	to='carol@example.org,bob@example.net'
	mapfile -t p < <("$WT" prove alice.key "$to" s1 body 1 carol@example.org)
	for bad in 'carol@example.org' 'carol@example.org=0123456789ABCDEF' \
	    'CAROL@example.org=0123456789abcdef' 'carol@example.org=0123456789abcdef,' \
	    'carol@example.org=0123456789abcdef,carol@example.org=0123456789abcdef' \
	    'dave@example.org=0123456789abcdef' 'carol@example.org=0123456789abcdef, bob@example.net=0123456789abcdef'; do
		run -0 submit alice.key s1 body "Smimp-To: $to" "${p[0]}" "${p[1]}" "Smimp-Work: $bad"
		[ "$output" = '{"error":"malformed Smimp-Work"} 400' ]
	done
	for bad in 'a b' 'abc,' ',abc' 'ab=' "$(head -c 8193 /dev/zero | tr '\0' A)"; do
		run -0 submit alice.key s2 body "Smimp-To: $to" "${p[0]}" "${p[1]}" "Smimp-Introduction: $bad"
		[ "$output" = '{"error":"malformed Smimp-Introduction"} 400' ]
	done
	# Work for local recipients only needs a stamp all the same.
	run -0 submit alice.key s3 body 'Smimp-To: carol@example.org' 'Smimp-Work: carol@example.org=0123456789abcdef'
	[ "$output" = '{"error":"a proof of work needs a delivery stamp"} 400' ]
	# At their bounds they are taken: 8 KiB of introductions, and as
	# many recipients and proofs as a message has.
	intro=$(head -c 8192 /dev/zero | tr '\0' A)
	mapfile -t p < <("$WT" prove alice.key "$to" s4 body 1 carol@example.org)
	run -0 submit alice.key s4 body "Smimp-To: $to" "${p[@]}" "Smimp-Introduction: $intro"
	[ "$output" = '{"message_id":"s4","recipients":2} 201' ]
	# 256 recipients of 31 bytes: a recipient list of 8191 bytes, twice
	# in a delivery (Smimp-To and Smimp-Stamp-To), and 12543 of proofs.
	rcpts=()
	for i in $(seq 256); do rcpts+=("$(printf 'r%018d@example.net' "$i")"); done
	all=$(IFS=,; echo "${rcpts[*]}")
	[ "${#all}" -eq 8191 ]
	mapfile -t p < <("$WT" prove alice.key "$all" s5 body 1 "${rcpts[@]}")
	[ "${#p[2]}" -eq $((12 + 12543)) ]
	run -0 submit alice.key s5 body "Smimp-To: $all" "${p[@]}" "Smimp-Introduction: $intro"
	[ "$output" = '{"message_id":"s5","recipients":256} 201' ]
	# example.net read all of it, and found no such users.
	wait_for org.log 'bounced s5 to alice@example.org'
	grep -q 'bounced s5 to alice@example.org: example.net answered HTTP 404; example.net said: unknown recipient' org.log
	# Nothing refused was stored: carol got s4 only.
	run -0 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/carolhome" smimp-fetch -i carol.key -d mail-carol
	[[ "$stderr" == "smimp-fetch: 1 fetched:"* ]]
}

@test "malformed Smimp-Work and Smimp-Introduction are refused with 400 at delivery, alone and in a batch" {
	federation
	echo x | smimp-seal -i alice.key -r bob.pub >body
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	zero=$(head -c 64 /dev/zero | base64 -w0)
	fields=('Smimp-From: alice@example.org' 'Smimp-To: bob@example.net' 'Smimp-Stamp-To: bob@example.net'
		"Smimp-Stamp: $zero" "Smimp-Stamp-Date: $now")
	for bad in 'bob@example.net=0123456789abcde' 'dave@example.net=0123456789abcdef' \
	    'bob@example.net=0123456789abcdef,bob@example.net=0123456789abcdef'; do
		run -0 deliver body "${fields[@]}" 'Smimp-Message-Id: d1' "Smimp-Work: $bad"
		[ "$output" = '{"error":"malformed Smimp-Work"} 400' ]
	done
	run -0 deliver body "${fields[@]}" 'Smimp-Message-Id: d2' 'Smimp-Introduction: a+b'
	[ "$output" = '{"error":"malformed Smimp-Introduction"} 400' ]
	# Well formed, they pass on to the next check (this stamp is forged).
	run -0 deliver body "${fields[@]}" 'Smimp-Message-Id: d3' 'Smimp-Work: bob@example.net=0123456789abcdef' \
		'Smimp-Introduction: YWJj'
	[ "$output" = '{"error":"delivery stamp does not verify"} 403' ]
	# In a batch: the item is refused; a line given twice breaks the batch.
	item() {	# item MID EXTRA-LINES
		printf 'From: alice@example.org\nTo: bob@example.net\nStamp-To: bob@example.net\nMessage-Id: %s\nStamp: %s\nStamp-Date: %s\n%bLength: %s\n\n' \
			"$1" "$zero" "$now" "$2" "$(wc -c <body)"
		cat body
		echo
	}
	post() {
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org/server.key example.org POST example.net /smimp/v1/deliver-batch "$1")
		curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @"$1" \
			"https://127.0.0.1:$NET/smimp/v1/deliver-batch" | tr -d '\n'
	}
	{ printf 'smimp-batch/1\n'; item b1 'Work: bob@example.net=xyz\n'; item b2 'Introduction: !\n'
	  item b3 'Work: bob@example.net=0123456789abcdef\nIntroduction: YWJj\n'; } >batch
	run -0 post batch
	[ "$output" = '[{"message_id":"b1","status":400,"error":"malformed Smimp-Work"},{"message_id":"b2","status":400,"error":"malformed Smimp-Introduction"},{"message_id":"b3","status":403,"error":"delivery stamp does not verify"}] 200' ]
	{ printf 'smimp-batch/1\n'; item b4 'Work: bob@example.net=0123456789abcdef\nWork: bob@example.net=0123456789abcdef\n'; } >twice
	run -0 post twice
	[ "$output" = '{"error":"malformed batch"} 400' ]
}

@test "proofs travel from smimp-send through the relay, one by one and in batches; the recipient's server computes each recipient's value" {
	federation
	# example.net's directory, for alice's client, says what bob
	# requires; dave is not found there (nothing required).
	directory
	echo pow:12 >req/bob@example.net
	real=$SMIMP_RESOLVE
	export SMIMP_RESOLVE="example.org=127.0.0.1:$ORG,example.net=127.0.0.1:$BAD" SMIMP_ALLOW_HTTP=example.net
	echo one | smimp-seal -i alice.key -r bob.pub -r dave.pub >one.age
	run -0 --separate-stderr smimp-send -i alice.key one.age
	[ -z "$stderr" ]
	mid=$output
	wait_for org.log "relayed $mid to example.net"
	grep -q 'POST /smimp/v1/deliver 201' net.log
	[ "$(value net.log "$mid" bob@example.net)" -ge 12 ]
	[ "$(value net.log "$mid" dave@example.net)" = 0 ]
	# example.net down: the queue fills, then goes over in batches.
	stop_net
	for i in 1 2 3 4 5 6; do echo "b$i" | smimp-seal -i alice.key -r bob.pub >"b$i.age"; done
	run -0 --separate-stderr smimp-send -i alice.key b1.age b2.age b3.age b4.age b5.age b6.age
	mids=("${lines[@]}")
	[ "${#mids[@]}" -eq 6 ]
	sleep 3
	start_v net example.net "$NET"
	for m in "${mids[@]}"; do wait_for org.log "relayed $m to example.net"; done
	grep -q 'POST /smimp/v1/deliver-batch 200' net.log
	for m in "${mids[@]}"; do
		[ "$(value net.log "$m" bob@example.net)" -ge 12 ]
	done
	run -0 --separate-stderr env -u SMIMP_ALLOW_HTTP SMIMP_HOME="$BOBHOME" \
		SMIMP_RESOLVE="$real" smimp-fetch -i bob.key -d mail-bob
	[ "$stderr" = "smimp-fetch: 7 fetched: 7 to the inbox, 0 to Other, 0 dropped" ]
}

@test "a proof counts only for its own recipient and message, at the sender's server and the recipient's" {
	federation
	stop_net
	echo x | smimp-seal -i alice.key -r carol.pub -r bob.pub -r dave.pub >body
	to='bob@example.net,carol@example.org,dave@example.net'
	mapfile -t p1 < <("$WT" prove alice.key "$to" p1 body 16 bob@example.net carol@example.org)
	mapfile -t p2 < <("$WT" prove alice.key "$to" p2 body 1 carol@example.org)
	bobs=${p1[2]#Smimp-Work: bob@example.net=}
	bobs=${bobs%%,*}
	carols=${p1[2]#*carol@example.org=}
	# bob's proof, given for dave too.
	run -0 submit alice.key p1 body "Smimp-To: $to" "${p1[0]}" "${p1[1]}" \
		"${p1[2]},dave@example.net=$bobs"
	[ "$output" = '{"message_id":"p1","recipients":3} 201' ]
	[ "$(value org.log p1 carol@example.org)" -ge 16 ]
	# p1's proof for carol, with the stamp of another message.
	run -0 submit alice.key p2 body "Smimp-To: $to" "${p2[0]}" "${p2[1]}" \
		"Smimp-Work: carol@example.org=$carols"
	[ "$output" = '{"message_id":"p2","recipients":3} 201' ]
	[ "$(value org.log p2 carol@example.org)" -lt 16 ]
	# What waits for example.net carries its recipients' proofs only.
	run -0 store_sql org "SELECT message_id, work FROM outbound ORDER BY message_id"
	[ "${lines[0]}" = "p1|bob@example.net=$bobs,dave@example.net=$bobs" ]
	[ "${lines[1]}" = "p2|" ]
	start_v net example.net "$NET"
	wait_for org.log 'relayed p1 to example.net'
	wait_for org.log 'relayed p2 to example.net'
	[ "$(value net.log p1 bob@example.net)" -ge 16 ]
	[ "$(value net.log p1 dave@example.net)" -lt 16 ]
	[ "$(value net.log p2 bob@example.net)" = 0 ]
	[ "$(value net.log p2 dave@example.net)" = 0 ]
}

@test "a refused submission is looked up again once; unchanged, its error stands" {
	federation
	mkid nobody nobody@example.org
	echo x | smimp-seal -i alice.key -r nobody.pub >n.age
	run -1 --separate-stderr smimp-send -i alice.key n.age
	[[ "$stderr" =~ ^smimp-send:\ [^:]+:\ HTTP\ 404:\ unknown\ recipient$ ]]
	[ "$(grep -c 'GET /smimp/v1/users/nobody@example.org/log 404' org.log)" -eq 2 ]
	[ "$(grep -c 'POST /smimp/v1/messages 404' org.log)" -eq 1 ]
}

# ---- enforcement, once consent policies are served (the policy part) ----

needs_consent() {
	smimp-trust --help 2>/dev/null | grep -q publish || skip "needs consent enforcement"
}

@test "pow required, computed and accepted; without it, or reused, refused" {
	needs_consent
	federation
	# alice is no contact of bob's: a stranger, who pays.
	rm -rf "$BOBHOME"
	SMIMP_HOME="$BOBHOME" smimp-trust publish -i bob.key --unknown pow:16 >/dev/null
	echo "paid for" | smimp-seal -i alice.key -r bob.pub >paid.age
	run -0 --separate-stderr smimp-send -i alice.key paid.age
	[ -z "$stderr" ]
	mid=$output
	wait_for org.log "relayed $mid to example.net"
	# r1's proof on another message (r2, stamped anew), and none at all
	# (r3): taken by alice's server, refused by bob's, bounced.
	echo x | smimp-seal -i alice.key -r bob.pub >body
	mapfile -t p1 < <("$WT" prove alice.key bob@example.net r1 body 16 bob@example.net)
	mapfile -t p2 < <("$WT" prove alice.key bob@example.net r2 body 1 bob@example.net)
	mapfile -t p3 < <("$WT" prove alice.key bob@example.net r3 body 1 bob@example.net)
	run -0 submit alice.key r2 body 'Smimp-To: bob@example.net' "${p2[0]}" "${p2[1]}" "${p1[2]}"
	[ "$output" = '{"message_id":"r2","recipients":1} 201' ]
	run -0 submit alice.key r3 body 'Smimp-To: bob@example.net' "${p3[0]}" "${p3[1]}"
	[ "$output" = '{"message_id":"r3","recipients":1} 201' ]
	wait_for org.log 'bounced r2 to alice@example.org: example.net answered HTTP 404'
	wait_for org.log 'bounced r3 to alice@example.org: example.net answered HTTP 404'
	run -0 --separate-stderr env SMIMP_HOME="$BOBHOME" smimp-fetch -i bob.key -d mail-bob
	[ "$stderr" = "smimp-fetch: 1 fetched: 0 to the inbox, 1 to Other, 0 dropped" ]
}

@test "pow required of a stranger of the sender's own domain: computed and accepted at submission; without it, 404" {
	needs_consent
	federation
	SMIMP_HOME="$BATS_TEST_TMPDIR/carolhome" smimp-trust publish -i carol.key --unknown pow:16 >/dev/null
	echo "paid for" | smimp-seal -i alice.key -r carol.pub >paid.age
	run -0 --separate-stderr smimp-send -i alice.key paid.age
	[ -z "$stderr" ]
	# Stamped, but no proof: answered as an unknown recipient would be.
	echo x | smimp-seal -i alice.key -r carol.pub >body
	mapfile -t p < <("$WT" prove alice.key carol@example.org c1 body 1 carol@example.org)
	run -0 submit alice.key c1 body 'Smimp-To: carol@example.org' "${p[0]}" "${p[1]}"
	[ "$output" = '{"error":"unknown recipient"} 404' ]
	run -0 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/carolhome" smimp-fetch -i carol.key -d mail-carol
	[ "$stderr" = "smimp-fetch: 1 fetched: 0 to the inbox, 1 to Other, 0 dropped" ]
}

@test "one proof of work lets its message in once, and counts once against the allowance: sent again, it holds up no other stranger" {
	needs_consent
	federation
	mkid erin erin@example.org
	smimpd --data org --domain example.org adduser erin@example.org erin.pub
	SMIMP_HOME="$BATS_TEST_TMPDIR/carolhome" smimp-trust publish -i carol.key --unknown pow:8 \
		--allowance 2 >/dev/null
	echo x | smimp-seal -i alice.key -r carol.pub >a.age
	mapfile -t p < <("$WT" prove alice.key carol@example.org a1 a.age 8 carol@example.org)
	# The same message with the same proof, in fresh requests: stored
	# once, counted once.
	for _ in 1 2 3 4 5; do
		run -0 submit alice.key a1 a.age 'Smimp-To: carol@example.org' "${p[@]}"
		[ "$output" = '{"message_id":"a1","recipients":1} 201' ]
	done
	[ "$(store_sql org "SELECT count FROM consent_allowance WHERE recipient = 'carol@example.org'")" = 1 ]
	# Another stranger who pays is let in, up to the allowance.
	echo y | smimp-seal -i erin.key -r carol.pub >e.age
	mapfile -t q < <("$WT" prove erin.key carol@example.org e1 e.age 8 carol@example.org)
	run -0 submit erin.key e1 e.age 'Smimp-To: carol@example.org' "${q[@]}"
	[ "$output" = '{"message_id":"e1","recipients":1} 201' ]
	mapfile -t q < <("$WT" prove erin.key carol@example.org e2 e.age 8 carol@example.org)
	run -0 submit erin.key e2 e.age 'Smimp-To: carol@example.org' "${q[@]}"
	[ "$output" = '{"error":"try again later"} 429' ]
	run -0 store_sql org "SELECT sender, message_id FROM mailbox WHERE recipient = 'carol@example.org' ORDER BY message_id"
	[ "$output" = "$(printf 'alice@example.org|a1\nerin@example.org|e1')" ]
}

@test "a message given twice in one batch is checked, counted and stored once: one proof uses up no more of the allowance" {
	needs_consent
	federation
	rm -rf "$BOBHOME"
	SMIMP_HOME="$BOBHOME" smimp-trust publish -i bob.key --unknown pow:8 --allowance 5 >/dev/null
	echo x | smimp-seal -i alice.key -r bob.pub >body
	mapfile -t p < <("$WT" prove alice.key bob@example.net t1 body 8 bob@example.net)
	item() {
		printf 'From: %s\nTo: bob@example.net\nStamp-To: bob@example.net\nMessage-Id: t1\nStamp: %s\nStamp-Date: %s\nWork: %s\nLength: %s\n\n' \
			"$1" "${p[0]#Smimp-Stamps: example.net=}" "${p[1]#Smimp-Stamp-Date: }" \
			"${p[2]#Smimp-Work: }" "$(wc -c <body)"
		cat body
		echo
	}
	{ printf 'smimp-batch/1\n'; item alice@example.org; item alice@example.org; item ALICE@example.org; } >batch
	run -0 deliver_batch batch
	[[ "$output" == *' 200' ]]
	[ "$(grep -o '"status":[0-9]*' <<<"$output" | tr '\n' ' ')" = '"status":201 "status":400 "status":400 ' ]
	[ "$(grep -o '"error":"[^"]*"' <<<"$output" | sort -u)" = '"error":"the message twice in one batch"' ]
	[ "$(store_sql net "SELECT count FROM consent_allowance WHERE recipient = 'bob@example.net'")" = 1 ]
	[ "$(store_sql net "SELECT count(*) FROM mailbox WHERE recipient = 'bob@example.net'")" = 1 ]
}

@test "a stamp taken up to 300 seconds ahead stays refused as long as it is taken: its proof brings an acknowledged message in once" {
	needs_consent
	federation
	rm -rf "$BOBHOME"
	SMIMP_HOME="$BOBHOME" smimp-trust publish -i bob.key --unknown pow:8 --allowance 5 >/dev/null
	echo x | smimp-seal -i alice.key -r bob.pub >body
	now=$(date +%s)
	# Stamped 300 seconds ahead, delivered at once and acknowledged by
	# bob then (t0): seven days and 250 seconds later, the stamp is
	# still within its seven days.
	t0=$((now - 7 * 86400 - 50))
	sdate=$(date -u -d "@$((t0 + 300))" +%Y-%m-%dT%H:%M:%SZ)
	mapfile -t p < <("$WT" prove-at "$sdate" alice.key bob@example.net z1 body 8 bob@example.net)
	store_sql net "INSERT INTO tombstones (recipient, sender, message_id, acked) VALUES ('bob@example.net', 'alice@example.org', 'z1', $t0)"
	run -0 deliver body 'Smimp-From: alice@example.org' 'Smimp-To: bob@example.net' \
		'Smimp-Stamp-To: bob@example.net' "Smimp-Stamp: ${p[0]#Smimp-Stamps: example.net=}" \
		"Smimp-Stamp-Date: $sdate" 'Smimp-Message-Id: z1' "${p[2]}"
	[[ "$output" == '{"message_id":"z1",'*' 201' ]]
	[ "$(store_sql net "SELECT count(*) FROM mailbox WHERE recipient = 'bob@example.net'")" = 0 ]
	[ -z "$(store_sql net "SELECT count FROM consent_allowance WHERE recipient = 'bob@example.net'")" ]
}

@test "one message delivered many times at once is counted once against the allowance: one proof uses up no more of it" {
	needs_consent
	federation
	rm -rf "$BOBHOME"
	SMIMP_HOME="$BOBHOME" smimp-trust publish -i bob.key --unknown pow:8 --allowance 4 >/dev/null
	# A body of 4 MiB: the copies, sent at once, arrive together.
	head -c 4194304 /dev/zero | smimp-seal -i alice.key -r bob.pub >body
	# fields MID: the headers of a delivery of body to bob, with a proof.
	fields() {
		local p
		mapfile -t p < <("$WT" prove alice.key bob@example.net "$1" body 8 bob@example.net)
		f=('Smimp-From: alice@example.org' 'Smimp-To: bob@example.net' 'Smimp-Stamp-To: bob@example.net'
			"Smimp-Stamp: ${p[0]#Smimp-Stamps: example.net=}" "${p[1]}" "Smimp-Message-Id: $1" "${p[2]}")
	}
	# k0 alone, so that example.net holds alice's log; then k1, 16 at once.
	fields k0
	run -0 deliver body "${f[@]}"
	[[ "$output" == '{"message_id":"k0",'*' 201' ]]
	# Three messages, each 16 times at once: one race lost is enough to
	# count a message twice.
	for m in k1 k2 k3; do
		fields "$m"
		args=()
		for i in $(seq 16); do
			mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org/server.key example.org \
				POST example.net /smimp/v1/deliver body "${f[@]}")
			args+=(-s --cacert cert.pem "${h[@]/#/-H}" --data-binary @body -o "out.$i"
				-w '%{http_code}\n' "https://127.0.0.1:$NET/smimp/v1/deliver" --next)
		done
		run -0 --separate-stderr curl -s --parallel --parallel-immediate --parallel-max 16 \
			"${args[@]:0:${#args[@]}-1}"
		[ "$(sort -u <<<"$output")" = 201 ]
		[ "$(cat out.* | grep -c "\"message_id\":\"$m\"")" = 16 ]
	done
	[ "$(store_sql net "SELECT count(*) FROM mailbox WHERE recipient = 'bob@example.net'")" = 4 ]
	[ "$(store_sql net "SELECT count FROM consent_allowance WHERE recipient = 'bob@example.net'")" = 4 ]
}

@test "a queued entry carries the introductions of its own domain's recipients only: no domain learns who else a message went to" {
	federation
	stop_net
	echo x | smimp-seal -i alice.key -r bob.pub -r carol.pub >body
	to='bob@example.net,carol@example.org'
	smimp-trust introduce alice@example.org --to bob@example.net -i dave.key -o to-bob
	smimp-trust introduce alice@example.org --to carol@example.org -i dave.key -o to-carol
	tobob=$("$SMIMP_BUILD/t/introduction" encode to-bob)
	tocarol=$("$SMIMP_BUILD/t/introduction" encode to-carol)
	mapfile -t p < <("$WT" prove alice.key "$to" i1 body 1 bob@example.net)
	run -0 submit alice.key i1 body "Smimp-To: $to" "${p[0]}" "${p[1]}" \
		"Smimp-Introduction: $tocarol,$tobob"
	[ "$output" = '{"message_id":"i1","recipients":2} 201' ]
	run -0 store_sql org "SELECT domain, introduction FROM outbound"
	[ "$output" = "example.net|$tobob" ]
	# None for example.net: none goes with its entry.
	mapfile -t p < <("$WT" prove alice.key "$to" i2 body 1 bob@example.net)
	run -0 submit alice.key i2 body "Smimp-To: $to" "${p[0]}" "${p[1]}" \
		"Smimp-Introduction: $tocarol"
	[ "$output" = '{"message_id":"i2","recipients":2} 201' ]
	[ "$(store_sql org "SELECT introduction FROM outbound WHERE message_id = 'i2'")" = '' ]
}
