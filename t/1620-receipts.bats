#!/usr/bin/env bats
# Delivery receipts and per-domain stamps (doc/PROTOCOL.md 8.3, 8.14),
# three servers on loopback: example.org (alice, dave), example.net
# (bob, erin), example.com (carol), or in its place t/badserver.py as a
# peer that answers with the receipts a test writes.  smimp-send
# --receipts and --status, the receipts checked by the client under
# each domain's key; forged receipts refused; other users, floods and
# retention at the status endpoint.

load helper

setup() {
	common_setup
	alice_bob_and_carol
	mkid dave dave@example.org
	smimpd --data org --domain example.org adduser dave@example.org dave.pub
}

teardown() {
	stop_servers org net com
	[ -f bad.pid ] && kill "$(cat bad.pid)" 2>/dev/null
	return 0
}

RT() { "$SMIMP_BUILD/t/receipttool" "$@"; }
send() { smimp-send -i alice.key "$@"; }
status() { smimp-send -i alice.key --status "$@"; }
# mid_of FILE: the message id of a message alice sealed.
mid_of() { smimp-open -i alice.key --json "$1" 2>/dev/null | jq -r .message_id; }
blake() { b2sum -l 256 "$1" | cut -d' ' -f1; }

# get KEY PATH [CURL ARGS]: a GET of {base}PATH at example.org signed
# by KEY; the answer and its status on one line.
get() {
	local h
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" "$1" GET example.org "/smimp$2")
	curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" "${@:3}" \
		"https://127.0.0.1:$ORG/smimp$2" | tr -d '\n'
}

# receipt_of JSON DOMAIN FILE: the receipt --json shows for DOMAIN.
receipt_of() {
	jq -j --arg d "$2" '.domains[] | select(.domain == $d) | .receipt' <<<"$1" >"$3"
}

# local_sent: example.org up, and m.age sent from alice to dave ($mid).
local_sent() {
	start org example.org "$ORG"
	echo x | smimp-seal -i alice.key -r dave.pub >m.age
	mid=$(mid_of m.age)
	send m.age >/dev/null
}

DATE='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z'

@test "the receipt vector, the stamps of one message per domain, and the receipts a reader refuses" {
	run -0 RT vectors "$REPO/t/vectors"
	[ "${lines[-1]}" = "21 passed, 0 failed" ]
	grep -qx 'ok receipt.signed: verifies under example.net'"'"'s server key' <<<"$output"
	grep -qx 'ok refused: a recipient of another domain' <<<"$output"
	grep -qx 'ok refused: anything after the signature' <<<"$output"
	# The document shows the same receipt, byte for byte.
	sed -n '/^### 8.14 /,/^## 9\. /p' "$REPO/doc/PROTOCOL.md" | sed -n '/^\*\*Vector/,$p' |
		sed -n '/^    smimp-receipt\/1$/,/^    signature: /p' | sed 's/^    //' >doc.receipt
	cmp doc.receipt "$REPO/t/vectors/receipt.signed"
	# Each domain's stamp names its own recipients only.
	grep -qx 'stamp example.net: to bob@example.net,dave@example.net, .*' "$REPO/t/vectors/receipt.txt"
	grep -qx 'stamp example.com: to carol@example.com, .*' "$REPO/t/vectors/receipt.txt"
	cp -r "$REPO/t/vectors" v
	sed -i 's/^recipients: bob@example.net,dave@example.net$/recipients: bob@example.net/' v/receipt.signed
	run -1 RT vectors v
	grep -qx 'FAIL receipt.signed: the bytes the writer makes' <<<"$output"
	grep -qx 'FAIL receipt.signed: verifies under example.net'"'"'s server key' <<<"$output"
}

@test "local and remote recipients: --receipts waits for each domain's receipt and checks it under that domain's key" {
	start org example.org "$ORG"
	start net example.net "$NET"
	echo hi | smimp-seal -i alice.key -r bob.pub -r dave.pub >m.age
	mid=$(mid_of m.age)
	run -0 --separate-stderr send --receipts --timeout 60 m.age
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq 4 ]
	[ "${lines[0]}" = "$mid" ]
	[ "${lines[1]}" = "$mid" ]
	[[ "${lines[2]}" =~ ^\ \ example\.net:\ delivered\ to\ bob@example\.net\ at\ $DATE\;\ receipt\ verified$ ]]
	[[ "${lines[3]}" =~ ^\ \ example\.org:\ delivered\ to\ dave@example\.org\ at\ $DATE\;\ receipt\ verified$ ]]
	grep -q "POST /smimp/v1/deliver 201" net.log
	# The same, asked again later, as JSON; each receipt is its domain's,
	# for the bytes alice sent, naming that domain's recipients.
	run -0 --separate-stderr status "$mid" --json
	[ "${#lines[@]}" -eq 1 ]
	jq -e '.final and (.domains | length) == 2 and ([.domains[].check] == ["verified", "verified"])' <<<"$output"
	receipt_of "$output" example.net net.receipt
	receipt_of "$output" example.org org.receipt
	run -0 RT parse net.receipt net/server.key
	[ "$output" = ok ]
	run -0 RT parse org.receipt org/server.key
	[ "$output" = ok ]
	run -1 RT parse net.receipt org/server.key
	[ "$output" = "the receipt's signature does not verify under the server key of example.net" ]
	grep -qx "hash: $(blake m.age)" net.receipt
	grep -qx "hash: $(blake m.age)" org.receipt
	grep -qx 'recipients: bob@example.net' net.receipt
	grep -qx 'recipients: dave@example.org' org.receipt
	grep -qx "from: alice@example.org" net.receipt
	# The relay checked it before keeping it.
	! grep -q 'receipt refused' org.log || false
}

@test "a recipient in both to and cc: each domain names it once in its receipt, which verifies" {
	start org example.org "$ORG"
	start net example.net "$NET"
	echo hi | smimp-seal -i alice.key -r bob.pub -c bob.pub -r dave.pub -c dave.pub >m.age
	mid=$(mid_of m.age)
	run -0 --separate-stderr send --receipts --timeout 60 m.age
	[ -z "$stderr" ]
	[[ "${lines[2]}" =~ ^\ \ example\.net:\ delivered\ to\ [a-z.@,]+\ at\ $DATE\;\ receipt\ verified$ ]]
	[[ "${lines[3]}" =~ ^\ \ example\.org:\ delivered\ to\ [a-z.@,]+\ at\ $DATE\;\ receipt\ verified$ ]]
	run -0 --separate-stderr status "$mid" --json
	receipt_of "$output" example.net net.receipt
	receipt_of "$output" example.org org.receipt
	grep -qx 'recipients: bob@example.net' net.receipt
	grep -qx 'recipients: dave@example.org' org.receipt
	! grep -q 'receipt refused' org.log || false
	[ "$(store_sql net "SELECT count(*) FROM mailbox WHERE recipient = 'bob@example.net'")" = 1 ]
}

@test "three domains: each queue entry has the stamp of its own domain's recipients only, and each domain signs its receipt" {
	mkid erin erin@example.net
	smimpd --data net --domain example.net adduser erin@example.net erin.pub
	start org example.org "$ORG"
	echo hi | smimp-seal -i alice.key -r bob.pub -r carol.pub -r erin.pub -r dave.pub >m.age
	mid=$(mid_of m.age)
	run -0 --separate-stderr send m.age
	[ "${lines[0]}" = "$mid" ]
	# Queued for the two other domains, each naming its own recipients.
	run -0 store_sql org "SELECT domain, recipients, all_recipients FROM outbound ORDER BY domain"
	[ "${lines[0]}" = "example.com|carol@example.com|carol@example.com" ]
	[ "${lines[1]}" = "example.net|bob@example.net,erin@example.net|bob@example.net,erin@example.net" ]
	[ "$(store_sql org "SELECT count(DISTINCT stamp) FROM outbound")" = 2 ]
	start net example.net "$NET"
	start com example.com "$COM"
	wait_for org.log "relayed $mid to example.net"
	wait_for org.log "relayed $mid to example.com"
	run -0 --separate-stderr status "$mid"
	[ "${#lines[@]}" -eq 4 ]
	[[ "${lines[1]}" =~ ^\ \ example\.com:\ delivered\ to\ carol@example\.com\ at\ $DATE\;\ receipt\ verified$ ]]
	[[ "${lines[2]}" =~ ^\ \ example\.net:\ delivered\ to\ bob@example\.net,erin@example\.net\ at\ $DATE\;\ receipt\ verified$ ]]
	[[ "${lines[3]}" =~ ^\ \ example\.org:\ delivered\ to\ dave@example\.org\ at\ $DATE\;\ receipt\ verified$ ]]
	run -0 status "$mid" --json
	receipt_of "$output" example.com com.receipt
	grep -qx 'recipients: carol@example.com' com.receipt
	run -0 RT parse com.receipt com/server.key
	# Everyone got it once.
	for who in bob erin carol; do
		run -0 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/h-$who" smimp-fetch -i "$who.key" -d "mail-$who"
		[[ "$stderr" == "smimp-fetch: 1 fetched:"* ]]
	done
}

@test "a receiving server refuses a stamp that names another domain's recipients, and answers what it takes with its signed receipt, alone and in a batch" {
	start org example.org "$ORG"
	start net example.net "$NET"
	echo x | smimp-seal -i alice.key -r bob.pub >body
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	stamp() { "$SMIMP_BUILD/t/peertool" stamp alice.key alice@example.org "$2" "$1" body "$now"; }
	# deliver MID STAMPED: to bob, stamped by alice over STAMPED
	deliver() {
		local h
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org/server.key example.org POST example.net \
			/smimp/v1/deliver body 'Smimp-From: alice@example.org' 'Smimp-To: bob@example.net' \
			"Smimp-Stamp-To: $2" "Smimp-Message-Id: $1" "Smimp-Stamp: $(stamp "$1" "$2")" \
			"Smimp-Stamp-Date: $now")
		curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @body \
			"https://127.0.0.1:$NET/smimp/v1/deliver" | tr -d '\n'
	}
	run -0 deliver d1 bob@example.net,carol@example.com
	[ "$output" = '{"error":"the stamp names recipients of other domains"} 400' ]
	run -0 deliver d2 bob@example.net
	[[ "$output" == '{"message_id":"d2","receipt":"smimp-receipt/1\ndomain: example.net\nfrom: alice@example.org\n'*'"} 201' ]]
	jq -j .receipt <<<"${output% 201}" >d2.receipt
	run -0 RT parse d2.receipt net/server.key
	grep -qx 'message-id: d2' d2.receipt
	grep -qx 'recipients: bob@example.net' d2.receipt
	grep -qx "hash: $(blake body)" d2.receipt
	# In a batch: a receipt with each item taken, none with one refused.
	item() {	# item MID STAMPED
		printf 'From: alice@example.org\nTo: bob@example.net\nStamp-To: %s\nMessage-Id: %s\nStamp: %s\nStamp-Date: %s\nLength: %s\n\n' \
			"$2" "$1" "$(stamp "$1" "$2")" "$now" "$(wc -c <body)"
		cat body
		echo
	}
	{ printf 'smimp-batch/1\n'; item b1 bob@example.net; item b2 bob@example.net,dave@example.org; } >batch
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org/server.key example.org POST example.net /smimp/v1/deliver-batch batch)
	run -0 curl -s --cacert cert.pem "${h[@]/#/-H}" --data-binary @batch "https://127.0.0.1:$NET/smimp/v1/deliver-batch"
	jq -e '.[0].status == 201 and (.[0].receipt | startswith("smimp-receipt/1\n")) and .[1].status == 400 and .[1].error == "the stamp names recipients of other domains" and (.[1] | has("receipt") | not)' <<<"$output"
	jq -j '.[0].receipt' <<<"$output" >b1.receipt
	run -0 RT parse b1.receipt net/server.key
	grep -qx 'message-id: b1' b1.receipt
}

@test "a submission carries a stamp for each other domain over its recipients alone; anything else in Smimp-Stamps is refused" {
	start org example.org "$ORG"
	echo x | smimp-seal -i alice.key -r bob.pub -r dave.pub >m.age
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	stamp() { "$SMIMP_BUILD/t/peertool" stamp alice.key alice@example.org "$1" "$2" m.age "$now"; }
	submit() {	# submit MID [Smimp-To: ...] HEADER...: m.age, to bob and dave unless said
		local h mid=$1 to='Smimp-To: bob@example.net, dave@example.org'
		shift
		[[ "${1:-}" == Smimp-To:* ]] && { to=$1; shift; }
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key POST example.org /smimp/v1/messages m.age \
			"$to" "Smimp-Message-Id: $mid" "Smimp-Stamp-Date: $now" "$@")
		curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @m.age \
			"https://127.0.0.1:$ORG/smimp/v1/messages" | tr -d '\n'
	}
	net=$(stamp bob@example.net s1)
	run -0 submit s1
	[ "$output" = '{"error":"other domains need a delivery stamp"} 400' ]
	# A stamp over every recipient, as before stamps were per domain.
	run -0 submit s1 "Smimp-Stamps: example.net=$(stamp bob@example.net,dave@example.org s1)"
	[ "$output" = '{"error":"delivery stamp does not verify"} 400' ]
	run -0 submit s1 "Smimp-Stamps: example.net=$(stamp bob@example.net s2)"
	[ "$output" = '{"error":"delivery stamp does not verify"} 400' ]
	long=$(head -c 32800 /dev/zero | tr '\0' x)
	for bad in "example.net=$net,example.net=$net" "example.net=$net,example.com=$net" \
	    "EXAMPLE.NET=$net" "example.net=${net:0:80}" "example.net:$net" "example.net=$net," \
	    "=$net" "example.org=$net" "example.net=$net,$long"; do
		run -0 submit s1 "Smimp-Stamps: $bad"
		[ "$output" = '{"error":"malformed Smimp-Stamps"} 400' ] || { echo "$bad: $output"; false; }
	done
	[ "$(store_sql org "SELECT count(*) FROM outbound")" = 0 ]
	# Taken: the one for example.net, and with one for its own domain.
	run -0 submit s1 "Smimp-Stamps: example.net=$net"
	[ "$output" = '{"message_id":"s1","recipients":2} 201' ]
	run -0 submit s2 "Smimp-Stamps: example.org=$(stamp dave@example.org s2),example.net=$(stamp bob@example.net s2)"
	[ "$output" = '{"message_id":"s2","recipients":2} 201' ]
	run -0 store_sql org "SELECT message_id, all_recipients, stamp FROM outbound ORDER BY message_id"
	[ "${lines[0]}" = "s1|bob@example.net|$net" ]
	[ "${lines[1]}" = "s2|bob@example.net|$(stamp bob@example.net s2)" ]
	# To its own domain alone the message needs no stamp, but what
	# Smimp-Stamps carries is checked all the same.
	for bad in x "example.net=$net" "example.org=$(stamp dave@example.org s4),example.net=$net"; do
		run -0 submit s4 'Smimp-To: dave@example.org' "Smimp-Stamps: $bad"
		[ "$output" = '{"error":"malformed Smimp-Stamps"} 400' ] || { echo "$bad: $output"; false; }
	done
	run -0 submit s4 'Smimp-To: dave@example.org' "Smimp-Stamps: example.org=$(stamp dave@example.org s2)"
	[ "$output" = '{"error":"delivery stamp does not verify"} 400' ]
	run -0 submit s4 'Smimp-To: dave@example.org' "Smimp-Stamps: example.org=$(stamp dave@example.org s4)"
	[ "$output" = '{"message_id":"s4","recipients":1} 201' ]
	# At the bound: 256 recipients of 256 domains, a stamp each (28 KiB),
	# beside 8 KiB of introductions.
	stop_servers org
	echo 'relay-workers 1' >>common.conf
	start org example.org "$ORG"
	rcpts=()
	for i in $(seq 256); do rcpts+=("$(printf 'r%03d@d%014d.invalid' "$i" "$i")"); done
	all=$(IFS=,; echo "${rcpts[*]}")
	mapfile -t p < <("$SMIMP_BUILD/t/worktool" prove alice.key "$all" s3 m.age 1 "${rcpts[0]}")
	[ "${#p[0]}" -gt 28000 ]
	now=${p[1]#Smimp-Stamp-Date: }
	run -0 submit s3 "Smimp-To: $all" "${p[0]}" "Smimp-Introduction: $(head -c 8192 /dev/zero | tr '\0' A)"
	[ "$output" = '{"message_id":"s3","recipients":256} 201' ]
	kill -KILL "$(cat org.pid)"
}

@test "--status follows a message from queued to delivered with its receipt, and another to its bounce, which ends --receipts with 1" {
	start org example.org "$ORG"
	echo one | smimp-seal -i alice.key -r bob.pub >m1.age
	mid=$(mid_of m1.age)
	run -0 --separate-stderr send m1.age
	[ "${lines[0]}" = "$mid" ]
	wait_for org.log "relay $mid to example.net: .*retrying"
	run -0 --separate-stderr status "$mid"
	[ -z "$stderr" ]
	[ "${lines[0]}" = "$mid" ]
	[[ "${lines[1]}" =~ ^\ \ example\.net:\ queued\ for\ bob@example\.net\ since\ $DATE,\ [0-9]+\ attempts?,\ next\ at\ $DATE\;\ last:\ .+$ ]]
	run -0 status "$mid" --json
	jq -e '.final == false and .domains[0].state == "queued" and .domains[0].attempts >= 1 and .domains[0].held == false' <<<"$output"
	start net example.net "$NET"
	wait_for org.log "relayed $mid to example.net"
	run -0 --separate-stderr status "$mid"
	[[ "${lines[1]}" =~ ^\ \ example\.net:\ delivered\ to\ bob@example\.net\ at\ $DATE\;\ receipt\ verified$ ]]
	# No such address at example.net: bounced at once.
	mkid nobody nobody@example.net
	echo two | smimp-seal -i alice.key -r nobody.pub >m2.age
	mid2=$(mid_of m2.age)
	run -1 --separate-stderr send --receipts --timeout 60 m2.age
	[ "$stderr" = "smimp-send: $mid2: bounced by example.net: example.net answered HTTP 404; example.net said: unknown recipient" ]
	[ "${lines[0]}" = "$mid2" ]
	[[ "${lines[2]}" =~ ^\ \ example\.net:\ bounced\ for\ nobody@example\.net\ at\ $DATE:\ example\.net\ answered\ HTTP\ 404\;\ example\.net\ said:\ unknown\ recipient$ ]]
	# Shown, not judged, by --status.
	run -0 --separate-stderr status "$mid2" --json
	jq -e '.final and .domains[0].state == "bounced" and .domains[0].reason == "example.net answered HTTP 404; example.net said: unknown recipient"' <<<"$output"
	# The notice it keeps is the one alice got, signed by her server.
	[ "$(store_sql org "SELECT count(*) FROM sent_states WHERE message_id = '$mid2' AND detail LIKE 'smimp-bounce/1%'")" = 1 ]
}

@test "--receipts gives up at --timeout with 75, naming each domain still to sign; its JSON says it is not final" {
	start org example.org "$ORG"
	echo x | smimp-seal -i alice.key -r bob.pub -r dave.pub >m.age
	mid=$(mid_of m.age)
	SECONDS=0
	run -75 --separate-stderr send --receipts --timeout 3 m.age
	[ "$SECONDS" -lt 20 ]
	[ "${stderr_lines[-1]}" = "smimp-send: $mid: no receipt from example.net within 3 s" ]
	[ "${lines[0]}" = "$mid" ]
	[[ "${lines[2]}" == "  example.net: queued for bob@example.net since "* ]]
	[[ "${lines[3]}" =~ ^\ \ example\.org:\ delivered\ to\ dave@example\.org\ at\ $DATE\;\ receipt\ verified$ ]]
	# Sent again (stored once): --json prints the object alone.
	run -75 --separate-stderr send --receipts --timeout 2 --json m.age
	[ "${#lines[@]}" -eq 1 ]
	jq -e --arg m "$mid" '.message_id == $m and .final == false and ([.domains[].state] == ["queued", "delivered"])' <<<"$output"
}

@test "only the sender is answered: another user's message, an id never sent and a user of another domain get the same refusals" {
	local_sent
	run -0 status "$mid"
	run -1 --separate-stderr smimp-send -i dave.key --status "$mid"
	[ "$stderr" = "smimp-send: no message $mid sent by dave@example.org" ]
	[ -z "$output" ]
	run -0 get dave.key "/v1/messages/$mid" -D theirs.h
	[ "$output" = '{"error":"no such message"} 404' ]
	run -0 get dave.key "/v1/messages/never@example.org" -D never.h
	[ "$output" = '{"error":"no such message"} 404' ]
	diff <(grep -vi '^date:' theirs.h) <(grep -vi '^date:' never.h)
	# Unsigned, or signed by bob of example.net: not a user here.
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "https://127.0.0.1:$ORG/smimp/v1/messages/$mid"
	[[ "$output" == *' 401' ]]
	run -0 get bob.key "/v1/messages/$mid"
	[[ "$output" == *' 401' ]]
	# A receive-only device of alice may not ask; a send device may.
	enroll_device alice.key alice@example.org tv receive
	enroll_device alice.key alice@example.org ci send
	run -0 get tv.key "/v1/messages/$mid"
	[ "$output" = '{"error":"the device tv of alice@example.org (scope receive) may not do this"} 403' ]
	run -0 get ci.key "/v1/messages/$mid"
	[[ "$output" == '{"message_id":"'"$mid"'","domains":[{"domain":"example.org",'*'} 200' ]]
	# What smimp-send refuses before asking anyone.
	run -2 --separate-stderr send --status 'a b'
	[ "$stderr" = "smimp-send: --status takes a message id, not 'a b' (see 'smimp-send --help')" ]
	run -2 --separate-stderr send --status "$mid" m.age
	[ "$stderr" = "smimp-send: --status asks after a message sent before: no FILE, no --receipts (see 'smimp-send --help')" ]
	run -2 --separate-stderr send --timeout 5 m.age
	[ "$stderr" = "smimp-send: --timeout is for --receipts (see 'smimp-send --help')" ]
	run -2 --separate-stderr send --json m.age
	[ "$stderr" = "smimp-send: --json is for --receipts and --status (see 'smimp-send --help')" ]
	run -2 --separate-stderr send --receipts --timeout 0 m.age
	[ "$stderr" = "smimp-send: --timeout takes 1 to 604800 seconds, not '0' (see 'smimp-send --help')" ]
	# The outbox's modes: a queued message has no receipt to wait for.
	run -2 --separate-stderr send --receipts --queue m.age
	[ "$stderr" = "smimp-send: --receipts and --queue exclude each other (see 'smimp-send --help')" ]
	run -2 --separate-stderr smimp-send --flush --receipts
	[ "$stderr" = "smimp-send: --receipts and --flush exclude each other (see 'smimp-send --help')" ]
	run -2 --separate-stderr send --status "$mid" --list-queue
	[ "$stderr" = "smimp-send: --status and --list-queue exclude each other (see 'smimp-send --help')" ]
	run -2 --separate-stderr smimp-send --flush --json
	[ "$stderr" = "smimp-send: --json is for --receipts and --status (see 'smimp-send --help')" ]
}

@test "a flood of status requests meets rate-status (429, Retry-After) and holds up no other sender" {
	echo 'rate-status 3' >>common.conf
	local_sent
	for _ in 1 2 3; do
		run -0 get alice.key "/v1/messages/$mid"
		[[ "$output" == *'} 200' ]]
	done
	run -0 get alice.key "/v1/messages/$mid" -D h
	[ "$output" = '{"error":"rate limit"} 429' ]
	grep -Eqi '^Retry-After: [0-9]+' h
	run -75 --separate-stderr status "$mid"
	[ "$stderr" = "smimp-send: $mid: HTTP 429: rate limit" ]
	run -0 get dave.key "/v1/messages/$mid"
	[ "$output" = '{"error":"no such message"} 404' ]
	# Bad settings are file:line errors.
	printf 'rate-status x\nreceipt-retention 0\n' >bad.conf
	run -2 --separate-stderr smimpd -n -f bad.conf
	grep -qx 'smimpd: bad.conf:1: rate-status is a number per minute, 0 for no limit' <<<"$stderr"
	grep -qx 'smimpd: bad.conf:2: receipt-retention is a number of seconds, 1 to a year' <<<"$stderr"
}

@test "what the sender's server keeps goes after receipt-retention" {
	echo 'receipt-retention 1' >>common.conf
	local_sent
	run -0 status "$mid"
	for _ in $(seq 60); do
		status "$mid" >/dev/null 2>&1 || break
		sleep 0.5
	done
	run -1 --separate-stderr status "$mid"
	[ "$stderr" = "smimp-send: no message $mid sent by alice@example.org" ]
	[ "$(store_sql org "SELECT count(*) FROM sent_states")" = 0 ]
}

@test "the home domain's receipt is kept unsigned and signed when asked: the same receipt each time, dated when the message was taken" {
	local_sent
	kept=$(store_sql org "SELECT detail FROM sent_states WHERE message_id = '$mid' AND domain = 'example.org'")
	grep -Eqx "date: $DATE" <<<"$kept"
	run -1 grep -q '^signature: ' <<<"$kept"
	sleep 1.1
	run -0 get alice.key "/v1/messages/$mid"
	first=$(sed 's/ 200$//' <<<"$output" | jq -r '.domains[0].receipt')
	sleep 1.1
	run -0 get alice.key "/v1/messages/$mid"
	[ "$(sed 's/ 200$//' <<<"$output" | jq -r '.domains[0].receipt')" = "$first" ]
	# The kept lines, and the signature under example.org's key after them.
	[ "$(sed '$d' <<<"$first")" = "$kept" ]
	run -0 --separate-stderr status "$mid"
	[ -z "$stderr" ]
	# What the store keeps for one message is not signed for another.
	echo y | smimp-seal -i alice.key -r dave.pub >m2.age
	mid2=$(mid_of m2.age)
	send m2.age >/dev/null
	store_sql org "UPDATE sent_states SET detail = (SELECT detail FROM sent_states WHERE message_id = '$mid') WHERE message_id = '$mid2'"
	run -0 get alice.key "/v1/messages/$mid2"
	[ "$(sed 's/ 200$//' <<<"$output" | jq -r '.domains[0].state + " " + (.domains[0].receipt | tostring)')" = "delivered null" ]
	grep -q "the receipt kept for $mid2 of alice@example.org: a receipt for another message" org.log
}

@test "the client checks each receipt itself: a home server that alters, swaps or moves one, or passes off one for some recipients as all, is caught (exit 3)" {
	start org example.org "$ORG"
	start net example.net "$NET"
	echo one | smimp-seal -i alice.key -r bob.pub -r dave.pub >m1.age
	echo two | smimp-seal -i alice.key -r bob.pub >m2.age
	mid=$(mid_of m1.age)
	mid2=$(mid_of m2.age)
	run -0 send --receipts --timeout 60 m1.age m2.age
	# example.org's own receipt, as it signs it when asked.
	own=$(get alice.key "/v1/messages/$mid" | sed 's/ 200$//' |
		jq -j '.domains[] | select(.domain == "example.org") | .receipt'; echo .)
	own=${own%.}
	grep -q '^signature: ' <<<"$own"
	swap() {	# swap SQL-EXPRESSION: net's receipt of mid becomes it
		store_sql org "UPDATE sent_states SET detail = ($1) WHERE message_id = '$mid' AND domain = 'example.net'"
	}
	store_sql org "INSERT INTO sent_states SELECT sender, 'kept', domain, state, recipients, detail, at FROM sent_states WHERE message_id = '$mid' AND domain = 'example.net'"
	# Another recipient written in: no longer signed by example.net.
	swap "replace(detail, 'recipients: bob@example.net', 'recipients: eve@example.net')"
	run -3 --separate-stderr status "$mid"
	[ "$stderr" = "smimp-send: $mid: the receipt of example.net does not verify: the receipt's signature does not verify under the server key of example.net" ]
	[[ "${lines[1]}" == "  example.net: delivered to bob@example.net at "*"; receipt refused: the receipt's signature does not verify under the server key of example.net" ]]
	# Another message's receipt, signed by example.net all the same.
	swap "SELECT detail FROM sent_states WHERE message_id = '$mid2' AND domain = 'example.net'"
	run -3 --separate-stderr status "$mid"
	[ "$stderr" = "smimp-send: $mid: the receipt of example.net does not verify: a receipt for another message" ]
	# Its own receipt shown as example.net's.
	swap "'$own'"
	run -3 --separate-stderr status "$mid" --json
	[ "$stderr" = "smimp-send: $mid: the receipt of example.net does not verify: a receipt of example.org, not example.net" ]
	jq -e '.domains[0].check == "failed" and .domains[0].why == "a receipt of example.org, not example.net" and .domains[1].check == "verified"' <<<"$output"
	# Not a receipt at all.
	swap "SELECT substr(detail, 1, 40) FROM sent_states WHERE message_id = 'kept'"
	run -3 --separate-stderr status "$mid"
	[ "$stderr" = "smimp-send: $mid: the receipt of example.net does not verify: malformed receipt: its lines are not those of a receipt" ]
	swap "SELECT detail FROM sent_states WHERE message_id = 'kept'"
	run -0 --separate-stderr status "$mid"
	[ -z "$stderr" ]
	# A home server that delivered to bob alone and says it was all:
	# example.net's own receipt for bob, shown as the delivery.
	mkid erin erin@example.net
	smimpd --data net --domain example.net adduser erin@example.net erin.pub
	echo three | smimp-seal -i alice.key -r bob.pub -r erin.pub >m3.age
	mid3=$(mid_of m3.age)
	stop_servers net
	send --receipts --timeout 30 m3.age >out3 2>err3 &
	sp=$!
	for _ in $(seq 100); do
		[ -n "$(store_sql org "SELECT id FROM outbound WHERE message_id = '$mid3'")" ] && break
		sleep 0.1
	done
	RT sign net/server.key example.net alice@example.org "$mid3" m3.age bob@example.net >part.receipt
	# (the receipt's last newline inside the quotes, which $(...) drops)
	store_sql org "DELETE FROM outbound WHERE message_id = '$mid3'"
	store_sql org "INSERT INTO sent_states SELECT sender, '$mid3', domain, state, 'bob@example.net', '$(cat part.receipt)
', at FROM sent_states WHERE message_id = '$mid' AND domain = 'example.net'"
	rc=0
	wait "$sp" || rc=$?
	[ "$rc" -eq 3 ]
	grep -qx "smimp-send: $mid3: the receipt of example.net does not verify: a receipt that leaves out erin@example.net" err3
}

# forger: example.com is t/badserver.py, answering each delivery with
# peer/receipt (none when there is none); its /v1/meta publishes the key
# in com.key.  example.org, alice's, relays to it.
forger() {
	local p=peer/smimp/v1 pk
	mkdir -p "$p"
	pk=$("$SMIMP_BUILD/t/peertool" server-key com.key)
	"$SMIMP_BUILD/t/peertool" server-key other.key >/dev/null
	printf '{"domain":"example.com","server_key":"%s","versions":["v1"],"limits":{"max_message_bytes":1048576}}' \
		"$pk" >"$p/meta"
	rm -f port
	python3 "$REPO/t/badserver.py" port receipt "$BATS_TEST_TMPDIR/peer" >requests.log 2>&1 &
	echo $! >bad.pid
	for _ in $(seq 50); do [ -s port ] && break; sleep 0.1; done
	BAD=$(cat port)
	export SMIMP_RESOLVE="example.org=127.0.0.1:$ORG,example.com=127.0.0.1:$BAD"
	export SMIMP_ALLOW_HTTP=example.com
	printf 'resolve %s\ncacert %s\nallow-http example.com\nretry-base 1\nretry-max 2\n' \
		"$SMIMP_RESOLVE" "$SMIMP_CACERT" >common.conf
	start org example.org "$ORG"
}

# forged NAME KEY DOMAIN MID-OR-- RCPTS [DATE]: NAME.age, a message to
# carol, and in peer/receipt the peer's receipt for it, signed by KEY as
# DOMAIN's (for another message id unless MID is -, for RCPTS, dated
# DATE or now); $mid its id.
forged() {
	echo "$1" | smimp-seal -i alice.key -r carol.pub >"$1.age"
	mid=$(mid_of "$1.age")
	local for=$4
	[ "$for" = - ] && for=$mid
	RT sign "$2" "$3" alice@example.org "$for" "$1.age" "$5" ${6:+"$6"} >peer/receipt
}

@test "a peer's forged receipts are logged and not kept, and the delivery counts: another message, body, domain, recipients not asked, an old date, junk, a huge one; one under another key is kept, and the sender refuses it" {
	forger
	refused() {	# refused WHY: the relay's word on $mid
		wait_for org.log "relay $mid to example.com: receipt refused: $1"
		run -0 --separate-stderr status "$mid"
		[[ "${lines[1]}" =~ ^\ \ example\.com:\ delivered\ to\ carol@example\.com\ at\ $DATE\;\ no\ receipt$ ]]
		[ "$(store_sql org "SELECT detail FROM sent_states WHERE message_id = '$mid'")" = "" ]
	}
	# Signed by another key: kept, for the signature is the sender's to
	# check, and --receipts says it does not verify.
	forged key other.key example.com - carol@example.com
	run -3 --separate-stderr send --receipts --timeout 30 key.age
	[ "$stderr" = "smimp-send: $mid: the receipt of example.com does not verify: the receipt's signature does not verify under the server key of example.com" ]
	run -3 --separate-stderr status "$mid"
	[[ "${lines[1]}" =~ ^\ \ example\.com:\ delivered\ to\ carol@example\.com\ at\ $DATE\;\ receipt\ refused:\ the\ receipt.s\ signature\ does\ not\ verify\ under\ the\ server\ key\ of\ example\.com$ ]]
	forged mid com.key example.com another@example.org carol@example.com
	send mid.age >/dev/null
	refused "a receipt for another message"
	forged body com.key example.com - carol@example.com
	RT sign com.key example.com alice@example.org "$mid" mid.age carol@example.com >peer/receipt
	send body.age >/dev/null
	refused "a receipt for another message"
	forged domain com.key example.net - bob@example.net
	send domain.age >/dev/null
	refused "a receipt of example.net, not example.com"
	forged asked com.key example.com - carol@example.com,eve@example.com
	send asked.age >/dev/null
	refused "a receipt naming eve@example.com, who was not asked for"
	forged old com.key example.com - carol@example.com "$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)"
	send old.age >/dev/null
	refused "a receipt dated .*, not now"
	forged junk com.key example.com - carol@example.com
	printf 'smimp-receipt/1\nbogus: 1\n' >peer/receipt
	send junk.age >/dev/null
	refused "malformed receipt: its lines are not those of a receipt"
	forged huge com.key example.com - carol@example.com
	head -c 13000 /dev/zero | tr '\0' x >>peer/receipt
	send huge.age >/dev/null
	refused "a receipt of more than 12288 bytes"
	# None at all: delivered without one.
	forged none com.key example.com - carol@example.com
	rm peer/receipt
	send none.age >/dev/null
	wait_for org.log "relay $mid to example.com: delivered without a receipt"
	# An honest one, from that other implementation: kept and verified.
	forged honest com.key example.com - carol@example.com
	run -0 --separate-stderr send --receipts --timeout 30 honest.age
	[ -z "$stderr" ]
	[[ "${lines[2]}" =~ ^\ \ example\.com:\ delivered\ to\ carol@example\.com\ at\ $DATE\;\ receipt\ verified$ ]]
	# Nothing bounced: each of them counts as delivered.
	! grep -q 'bounced' org.log || false
}
