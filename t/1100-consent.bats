#!/usr/bin/env bats
# Consent policies (doc/PROTOCOL.md 8.8): published by their owner,
# enforced by the recipient's server for local submissions and for
# deliveries from other domains alike, refusals that cannot be told
# from an address that does not exist, the daily allowance, the cap on
# one domain's unknown senders.  Three domains: alice@example.org,
# bob, dave, eve and frank @example.net, carol and erin @example.com.

load helper

setup() {
	common_setup
	three_domains
	mkid dave dave@example.net
	mkid eve eve@example.net
	mkid frank frank@example.net
	mkid erin erin@example.com
	smimpd --data org --domain example.org adduser alice@example.org alice.pub
	for n in bob dave eve frank; do
		smimpd --data net --domain example.net adduser "$n@example.net" "$n.pub"
	done
	for n in carol erin; do
		smimpd --data com --domain example.com adduser "$n@example.com" "$n.pub"
	done
	# Any age file will do: the server decrypts nothing.
	echo x | smimp-seal -i alice.key -r bob.pub >m.age
}

teardown() { stop_servers org net com sub; }

up() {
	start org example.org "$ORG" && start net example.net "$NET" &&
		start com example.com "$COM"
}

home() { echo "$BATS_TEST_TMPDIR/${1}home"; }
as() { local who=$1; shift; SMIMP_HOME=$(home "$who") "$@"; }
publish() { local who=$1; shift; as "$who" smimp-trust publish -i "$who.key" "$@"; }

domain_of() {
	case $1 in
	alice) echo example.org ;;
	carol|erin) echo example.com ;;
	*) echo example.net ;;
	esac
}
server_of() { local d; d=$(domain_of "$1"); echo "${d#example.}"; }

# request KIND WHO MID TO: in REQ, curl's arguments for m.age sent by
# WHO to TO with the message id MID, as KIND: "deliver" straight to
# example.net's server from WHO's domain's server, as its relay would,
# or "submit" by WHO, a user of example.net, to its own server.
request() {
	local kind=$1 who=$2 mid=$3 to=$4 dom now s h
	if [ "$kind" = deliver ]; then
		dom=$(domain_of "$who")
		now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
		s=$("$SMIMP_BUILD/t/peertool" stamp "$who.key" "$who@$dom" "$to" "$mid" m.age "$now")
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server "$(server_of "$who")/server.key" \
			"$dom" POST example.net /smimp/v1/deliver m.age "Smimp-From: $who@$dom" \
			"Smimp-To: $to" "Smimp-Stamp-To: $to" "Smimp-Message-Id: $mid" \
			"Smimp-Stamp: $s" "Smimp-Stamp-Date: $now")
		REQ=("${h[@]/#/-H}" "https://127.0.0.1:$NET/smimp/v1/deliver")
	else
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" "$who.key" POST example.net \
			/smimp/v1/messages m.age "Smimp-To: $to" "Smimp-Message-Id: $mid")
		REQ=("${h[@]/#/-H}" "https://127.0.0.1:$NET/smimp/v1/messages")
	fi
}

# deliver|submit WHO MID [TO]: the request made and sent (TO: bob); the
# status on stdout, the answer's headers in hdr, its body in body.
send_as() {
	request "$1" "$2" "$3" "${4:-bob@example.net}"
	curl -s --cacert cert.pem -D hdr -o body -w '%{http_code}' --data-binary @m.age "${REQ[@]}"
}
deliver() { send_as deliver "$@"; }
submit() { send_as submit "$@"; }

# mailbox WHO: the senders and ids of WHO's mailbox on example.net.
mailbox() {
	local h
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" "$1.key" GET example.net /smimp/v1/mailbox)
	curl -s --cacert cert.pem "${h[@]/#/-H}" "https://127.0.0.1:$NET/smimp/v1/mailbox" |
		grep -o '"from":"[^"]*","message_id":"[^"]*"' | tr '\n' ' '
}

# policy_req WHO METHOD [FILE]: WHO's request for bob's policy.
policy_req() {
	local h data=()
	[ -n "${3:-}" ] && data=(--data-binary "@$3")
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" "$1.key" "$2" example.net \
		/smimp/v1/users/bob@example.net/policy "${3:--}")
	curl -s --cacert cert.pem -w ' %{http_code}' -X "$2" "${h[@]/#/-H}" "${data[@]}" \
		"https://127.0.0.1:$NET/smimp/v1/users/bob@example.net/policy"
}

UNKNOWN_USER='{"error":"unknown recipient"}'

# want STATUS deliver|submit ARGS...: the request is answered STATUS.
want() {
	local got
	got=$("${@:2}")
	[ "$got" = "$1" ] || { echo "${*:2}: $got $(cat body)"; return 1; }
}

@test "publish and --show: what the server holds is what was signed, the settings are kept" {
	up
	trust_as "$(home bob)" alice.pub trusted
	trust_as "$(home bob)" dave.pub known
	as bob smimp-trust set carol@example.com blocked
	as bob smimp-trust set @spam.example blocked
	as bob smimp-trust set @example.org known
	# Nothing published yet.
	run -1 --separate-stderr publish bob --show
	[ "$stderr" = "smimp-trust: example.net holds no policy for bob@example.net" ]
	run -0 --separate-stderr publish bob --unknown pow:12 --allowance 5
	[ "$output" = "bob@example.net: policy published (unknown: pow:12, allowance: 5, blocked: 2, allowed: 3)" ]
	[ -z "$stderr" ]
	[ "$(stat -c %a "$(home bob)/policy")" = 600 ]
	grep -q "^bob@example.net pow:12 5 [0-9T:-]*Z $BATS_TEST_TMPDIR/bob.key\$" "$(home bob)/policy"
	run -0 --separate-stderr publish bob --show
	[ "${lines[0]}" = "address: bob@example.net" ]
	[[ "${lines[1]}" =~ ^date:\ 20[0-9-]+T[0-9:]+Z$ ]]
	[ "$(printf '%s\n' "${lines[@]:2}")" = "unknown: pow:12
allowance: 5
blocked: 2
allowed: 3
allow: alice@example.org
allow: dave@example.net
block: carol@example.com
block: @spam.example
allow: @example.org
unmatched: 0" ]
	# Published again without settings: they stay; removing a name
	# publishes again without it.
	run -0 publish bob
	[ "$output" = "bob@example.net: policy published (unknown: pow:12, allowance: 5, blocked: 2, allowed: 3)" ]
	as bob smimp-trust remove @spam.example 2>/dev/null
	run -0 publish bob --show
	[ "${lines[4]}" = "blocked: 1" ]
	run -0 publish bob --unknown pow --allowance 0
	[ "$output" = "bob@example.net: policy published (unknown: pow:23, allowance: 0, blocked: 1, allowed: 3)" ]
	run -0 publish bob --unknown closed
	[ "$output" = "bob@example.net: policy published (unknown: closed, allowance: 0, blocked: 1, allowed: 3)" ]
	# The statement is the owner's own, to the byte: signed by bob's key.
	policy_req bob GET | head -c -4 >got
	run -0 "$SMIMP_BUILD/t/policytool" parse got bob.pub
	[ "$output" = "ok: 1 blocked, 3 allowed" ]
}

@test "publish refuses bad settings with a usage error, and nothing is sent" {
	up
	run -2 --separate-stderr publish bob --unknown pow:41
	[ "$stderr" = "smimp-trust: invalid --unknown 'pow:41': use open, pow, pow:BITS (1 to 40), introduction or closed (see 'smimp-trust --help')" ]
	run -2 --separate-stderr publish bob --unknown sometimes
	[[ "$stderr" == "smimp-trust: invalid --unknown 'sometimes'"* ]]
	run -2 --separate-stderr publish bob --allowance 1000001
	[ "$stderr" = "smimp-trust: invalid --allowance '1000001': a number from 0 to 1000000 (see 'smimp-trust --help')" ]
	run -2 --separate-stderr publish bob --allowance -1
	run -2 --separate-stderr publish bob --show --unknown closed
	[ "$stderr" = "smimp-trust: --show takes neither --unknown nor --allowance (see 'smimp-trust --help')" ]
	run -2 --separate-stderr as bob smimp-trust list --unknown closed
	[ "$stderr" = "smimp-trust: --unknown, --allowance and --show go with publish (see 'smimp-trust --help')" ]
	[ ! -e "$(home bob)/policy" ]
	! grep -q "users/bob@example.net/policy" net.log || false
}

@test "each tier at the server: trusted and known in, unknown by the policy, blocked out; local and remote alike" {
	up
	trust_as "$(home bob)" alice.pub trusted
	trust_as "$(home bob)" dave.pub known
	as bob smimp-trust set frank@example.net blocked
	as bob smimp-trust set @example.com blocked
	as bob smimp-trust set erin@example.com known
	# No policy: everyone, as before.
	want 201 deliver carol c0
	# Open: unknown senders in, blocked ones out.
	publish bob --unknown open >/dev/null
	want 201 submit eve e1
	want 404 submit frank f1
	[ "$(cat body)" = "$UNKNOWN_USER" ]
	want 404 deliver carol c1
	# Closed: only trusted and known.
	publish bob --unknown closed >/dev/null
	want 201 deliver alice a2
	want 201 submit dave d2
	want 201 deliver erin r2
	want 404 submit eve e2
	[ "$(cat body)" = "$UNKNOWN_USER" ]
	want 404 submit frank f2
	want 404 deliver carol c2
	[ "$(cat body)" = "$UNKNOWN_USER" ]
	run -0 mailbox bob
	[ "$output" = '"from":"carol@example.com","message_id":"c0" "from":"eve@example.net","message_id":"e1" "from":"alice@example.org","message_id":"a2" "from":"dave@example.net","message_id":"d2" "from":"erin@example.com","message_id":"r2" ' ]
	# What the directory says each requester needs: an unknown one what
	# the policy asks, an allowed one nothing, a blocked one (by address
	# or by domain) the very answer an address without an account gets.
	U=https://127.0.0.1:$NET/smimp/v1/users
	run -0 signed_get eve.key example.net "$U/bob@example.net/log" -D - -o /dev/null
	grep -qx $'Smimp-Requires: closed\r' <<<"$output"
	publish bob --unknown pow:12 >/dev/null
	run -0 signed_get eve.key example.net "$U/bob@example.net/log" -D - -o /dev/null
	grep -qx $'Smimp-Requires: pow:12\r' <<<"$output"
	run -0 signed_get dave.key example.net "$U/bob@example.net/log" -D - -o /dev/null
	grep -qx $'Smimp-Requires: none\r' <<<"$output"
	run -0 signed_get erin.key example.net "$U/bob@example.net/log" -D - -o /dev/null
	grep -qx $'Smimp-Requires: none\r' <<<"$output"
	run -0 signed_get eve.key example.net "$U/nobody@example.net/log" -w ' %{http_code}'
	absent=$output
	[ "$absent" = $'{"error":"unknown user"}\n 404' ]
	run -0 signed_get frank.key example.net "$U/bob@example.net/log" -w ' %{http_code}'
	[ "$output" = "$absent" ]
	run -0 signed_get carol.key example.net "$U/bob@example.net/log" -w ' %{http_code}'
	[ "$output" = "$absent" ]
	# Unsigned: refused, not answered as for an unknown requester.
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "$U/bob@example.net/log"
	[ "$output" = $'{"error":"missing or malformed request signature"}\n 401' ]
}

@test "the whole way: a closed policy refuses a stranger's message, set makes her known and she gets through" {
	up
	trust_as "$(home bob)" alice.pub trusted
	run -0 publish bob --unknown closed
	for who in alice carol; do
		echo "from $who" | as "$who" smimp-seal -i "$who.key" -r bob@example.net -o "m-$who" 2>/dev/null
		as "$who" smimp-send -i "$who.key" "m-$who" >/dev/null
	done
	wait_for net.log "POST /smimp/v1/deliver 201"
	wait_for net.log "POST /smimp/v1/deliver 404"
	# carol gets a bounce that says no more than "unknown recipient".
	for _ in $(seq 50); do
		as carol smimp-fetch -i carol.key -d carolmail -q 2>/dev/null
		ls carolmail/new/* >/dev/null 2>&1 && break
		sleep 0.2
	done
	grep -q 'example.net said: unknown recipient' carolmail/new/*
	# bob says carol is known: the policy follows, and carol is in.
	run -0 --separate-stderr as bob smimp-trust add carol.pub
	[ "$stderr" = "smimp-trust: policy published again" ]
	as carol smimp-send -i carol.key m-carol >/dev/null
	for _ in $(seq 50); do
		[ "$(grep -c 'POST /smimp/v1/deliver 201' net.log)" -ge 2 ] && break
		sleep 0.2
	done
	run -0 as bob smimp-fetch -i bob.key -d bobmail
	[ "$(ls bobmail/new | wc -l)" = 2 ]
}

@test "block by address and by domain; an address's own entry comes before its domain's" {
	up
	publish bob --unknown open >/dev/null
	want 201 deliver carol c1
	as bob smimp-trust set carol@example.com blocked 2>/dev/null
	want 404 deliver carol c2
	want 201 deliver erin r2
	as bob smimp-trust set @example.com blocked 2>/dev/null
	want 404 deliver erin r3
	# erin known by name: in, though her domain is blocked.
	as bob smimp-trust set erin@example.com known 2>/dev/null
	want 201 deliver erin r4
	want 404 deliver carol c4
	# The same for local senders.
	as bob smimp-trust set @example.net blocked 2>/dev/null
	want 404 submit eve e5
	as bob smimp-trust set dave@example.net trusted 2>/dev/null
	want 201 submit dave d5
}

@test "a user who blocks her own domain still reads her own log, with her identity, recovery and device keys" {
	up
	enroll_device bob.key bob@example.net phone full
	as bob smimp-trust set @example.net blocked 2>/dev/null
	publish bob --unknown closed >/dev/null
	U=https://127.0.0.1:$NET/smimp/v1/users
	for key in bob.key bob.recovery; do
		run -0 signed_get "$key" example.net "$U/bob@example.net/log" -D - -o /dev/null
		grep -qx $'Smimp-Requires: none\r' <<<"$output"
	done
	# The others of her domain are blocked as before.
	run -0 signed_get dave.key example.net "$U/bob@example.net/log" -w ' %{http_code}'
	[ "$output" = $'{"error":"unknown user"}\n 404' ]
	# A device brings the log beside its key up to date before it fetches.
	run -0 --separate-stderr as bob smimp-fetch -i phone.key -d phonemail
	[[ "$stderr" == *"0 fetched"* ]]
}

@test "a user who blocks a domain writes to the address she allows in it: that domain's server may look her up for that user, or once she wrote there" {
	up
	trust_as "$(home bob)" erin.pub trusted
	as bob smimp-trust set @example.com blocked 2>/dev/null
	as dave smimp-trust set @example.com blocked 2>/dev/null
	publish bob --unknown open >/dev/null
	publish dave --unknown open >/dev/null
	# lookup ADDRESS [FOR]: example.com's server looks ADDRESS up at
	# example.net, for FOR if given (Smimp-For); the status.
	lookup() {
		local h
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server com/server.key \
			example.com GET example.net "/smimp/v1/users/$1/log" - \
			${2:+"Smimp-For: $2"})
		curl -s --cacert cert.pem -o /dev/null -w '%{http_code}' \
			"${h[@]/#/-H}" \
			"https://127.0.0.1:$NET/smimp/v1/users/$1/log"
	}
	# Before bob writes there: found for erin, whom he allows, only.
	[ "$(lookup bob@example.net)" = 404 ]
	[ "$(lookup bob@example.net carol@example.com)" = 404 ]
	[ "$(lookup bob@example.net erin@example.com)" = 200 ]
	[ "$(lookup dave@example.net erin@example.com)" = 404 ]
	[ "$(lookup nobody@example.net erin@example.com)" = 404 ]
	# Only for a user of the server's own domain, named normalized.
	[ "$(lookup bob@example.net alice@example.org)" = 400 ]
	[ "$(lookup bob@example.net Erin@example.com)" = 400 ]
	# So bob's own lookup of erin verifies at example.com; of carol not.
	run -1 --separate-stderr as bob smimp-trust fetch -i bob.key carol@example.com
	[ "$stderr" = "smimp-trust: carol@example.com: the directory of example.com refused the lookup signed by bob@example.net (HTTP 401: bad signature)" ]
	n404=$(grep -c 'GET /smimp/v1/users/bob@example.net/log 404' net.log)
	run -0 as bob smimp-trust fetch -i bob.key erin@example.com
	# Asked first without naming erin: bob's server learns whom a lookup
	# was for only when his policy asks.
	[ "$(grep -c 'GET /smimp/v1/users/bob@example.net/log 404' net.log)" = $((n404 + 1)) ]
	echo "to erin" | as bob smimp-seal -i bob.key -r erin@example.com -o m-bob
	as bob smimp-send -i bob.key m-bob >/dev/null
	# example.com's server looks bob up to verify his message: answered.
	wait_for com.log "POST /smimp/v1/deliver 201"
	trust_as "$(home erin)" bob.pub trusted
	run -0 as erin smimp-fetch -i erin.key -d erinmail
	[ "$(ls erinmail/new | wc -l)" = 1 ]
	run -0 --separate-stderr as erin smimp-open -i erin.key erinmail/new/*
	[ "$output" = "to erin" ]
	# Bob wrote there: now found whoever it is for.
	[ "$(lookup bob@example.net)" = 200 ]
	# dave, who blocks the domain too and never wrote there, stays hidden.
	[ "$(lookup dave@example.net)" = 404 ]
	# Its users are still refused: erin's reply is bob's to take, carol's not.
	want 201 deliver erin r1
	want 404 deliver carol c1
}

@test "the allowance: unknown senders get in until it is used up, then 429 with Retry-After until the day is over" {
	up
	trust_as "$(home bob)" alice.pub trusted
	publish bob --unknown open --allowance 2 >/dev/null
	want 201 deliver carol c1
	want 201 submit eve e1
	# Retry-After: the seconds left in the day when the server answered,
	# between the request and its answer (however slow the machine).
	t0=$(date +%s)
	want 429 deliver carol c2
	t1=$(date +%s)
	[ "$(cat body)" = '{"error":"try again later"}' ]
	secs=$(tr -d '\r' <hdr | sed -n 's/^Retry-After: //p')
	[ "$secs" -ge $((86400 - t1 % 86400 - 1)) ]
	[ "$secs" -le $((86400 - t0 % 86400 + 1)) ]
	want 429 submit eve e2
	want 429 deliver erin r2
	# A trusted sender does not count, and is never held up.
	want 201 deliver alice a2
	# Another recipient's allowance is another: dave has none.
	want 201 deliver carol c3 dave@example.net
	run -0 mailbox bob
	[ "$output" = '"from":"carol@example.com","message_id":"c1" "from":"eve@example.net","message_id":"e1" "from":"alice@example.org","message_id":"a2" ' ]
}

@test "the allowance counts a message once: delivered again (a retry whose answer was lost), it is taken and not counted" {
	up
	publish bob --unknown open --allowance 2 >/dev/null
	for _ in 1 2 3; do
		want 201 deliver carol c1
	done
	want 201 submit eve e1
	want 201 submit eve e1
	[ "$(store_sql net "SELECT count FROM consent_allowance WHERE recipient = 'bob@example.net'")" = 2 ]
	want 429 deliver erin r1
	want 429 submit eve e2
	run -0 mailbox bob
	[ "$output" = '"from":"carol@example.com","message_id":"c1" "from":"eve@example.net","message_id":"e1" ' ]
}

@test "a recipient named twice is one recipient: decided, counted and stored once, and named once in the receipt" {
	up
	publish bob --unknown open --allowance 2 >/dev/null
	want 201 submit eve e1 'bob@example.net, bob@example.net,BOB@example.net'
	[ "$(store_sql net "SELECT count FROM consent_allowance WHERE recipient = 'bob@example.net'")" = 1 ]
	want 201 deliver carol c1 'bob@example.net,bob@example.net'
	[ "$(store_sql net "SELECT count FROM consent_allowance WHERE recipient = 'bob@example.net'")" = 2 ]
	python3 -c 'import json,sys; print(json.load(open("body"))["receipt"])' >receipt
	grep -qx 'recipients: bob@example.net' receipt
	want 429 deliver erin r1
	run -0 mailbox bob
	[ "$output" = '"from":"eve@example.net","message_id":"e1" "from":"carol@example.com","message_id":"c1" ' ]
}

@test "one domain's unknown senders are capped per hour for all users together, then ignored for a while" {
	printf 'unknown-per-domain 3\nunknown-ignore 100\n' >>common.conf
	up
	publish bob --unknown open >/dev/null
	publish dave --unknown open >/dev/null
	trust_as "$(home frank)" carol.pub known
	publish frank --unknown closed >/dev/null
	want 201 deliver carol c1
	want 201 deliver erin r1 dave@example.net
	want 201 deliver carol c2 dave@example.net
	# The fourth from example.com this hour, to anyone: later, when the
	# hour the server answered in ends.
	t0=$(date +%s)
	want 429 deliver erin r2
	t1=$(date +%s)
	secs=$(tr -d '\r' <hdr | sed -n 's/^Retry-After: //p')
	[ "$secs" -ge $((3600 - t1 % 3600 - 1)) ]
	[ "$secs" -le $((3600 - t0 % 3600 + 1)) ]
	# Another domain is not held up, nor a sender known to the recipient.
	want 201 deliver alice a2
	want 201 deliver carol c3 frank@example.net
	# Sending on as many again: the domain is ignored for 100 seconds.
	for i in 3 4; do
		run -0 deliver erin "r$i"
		[ "$output" = 429 ]
	done
	want 429 deliver erin r5
	[ "$(tr -d '\r' <hdr | sed -n 's/^Retry-After: //p')" = 100 ]
	want 429 deliver carol c6 dave@example.net
	secs=$(tr -d '\r' <hdr | sed -n 's/^Retry-After: //p')
	[ "$secs" -ge 95 ]
	[ "$secs" -le 100 ]
	run -0 store_sql net "SELECT domain, CASE WHEN ignored_until > $(date +%s) THEN 1 ELSE 0 END FROM consent_domains"
	[ "$output" = "example.com|1" ]
}

@test "the relay waits as long as a 429 says, alone and in a batch: an allowance used up is not asked again that day, and its domain is not ignored for it" {
	printf 'unknown-per-domain 5\nunknown-ignore 100\n' >>common.conf
	up
	publish bob --unknown open --allowance 1 >/dev/null
	publish dave --unknown open >/dev/null
	for i in 1 2 3 4; do
		echo "$i" | as carol smimp-seal -i carol.key -r bob@example.net -o "m$i" 2>/dev/null
	done
	# halt NAME: that server stopped, and gone.
	halt() {
		kill -TERM "$(cat "$1.pid")"
		for _ in $(seq 150); do kill -0 "$(cat "$1.pid")" 2>/dev/null || break; sleep 0.1; done
	}
	# Three wait for example.net and go over in one batch, all due when
	# example.com starts again: one taken, two over bob's allowance
	# until the day ends.
	halt net
	for i in 1 2 3; do as carol smimp-send -i carol.key "m$i" >/dev/null 2>&1; done
	halt com
	sleep 2
	start net example.net "$NET"
	start com example.com "$COM"
	wait_for net.log "POST /smimp/v1/deliver-batch 200"
	wait_for com.log "relayed .* to example.net"
	# And one alone.
	mid=$(as carol smimp-send -i carol.key m4)
	wait_for com.log "relay $mid to example.net: example.net answered HTTP 429; example.net said: try again later; retrying"
	# retry-max is 2 seconds: none of them is tried again meanwhile.
	sleep 5
	[ "$(grep -c 'example.net answered HTTP 429' com.log)" = 3 ]
	run -0 smimpd --data com queue list --json
	[ "$(jq length <<<"$output")" = 3 ]
	day_end=$(( ($(date +%s) / 86400 + 1) * 86400 ))
	for t in $(jq -r '.[].next_attempt' <<<"$output"); do
		[ "$(date -d "$t" +%s)" -ge $((day_end - 5)) ]
	done
	# example.com is not ignored for them: carol still reaches dave.
	echo to dave | as carol smimp-seal -i carol.key -r dave@example.net -o m6 2>/dev/null
	mid=$(as carol smimp-send -i carol.key m6)
	wait_for com.log "relayed $mid to example.net"
}

@test "the cap on unknown senders counts per site: a subdomain's senders count with example.com's" {
	# mail.example.com: a fourth server, a subdomain of example.com's site.
	mkid zed zed@mail.example.com
	SUB=$(free_port)
	export SMIMP_RESOLVE="$SMIMP_RESOLVE,mail.example.com=127.0.0.1:$SUB"
	printf 'resolve %s\ncacert %s\nunknown-per-domain 3\nunknown-ignore 100\n' \
		"$SMIMP_RESOLVE" "$SMIMP_CACERT" >common.conf
	smimpd --data sub --domain mail.example.com adduser zed@mail.example.com zed.pub
	up
	start sub mail.example.com "$SUB"
	publish bob --unknown open >/dev/null
	# deliver_zed MID: zed's message to bob, from mail.example.com's server.
	deliver_zed() {
		local now s h
		now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
		s=$("$SMIMP_BUILD/t/peertool" stamp zed.key zed@mail.example.com bob@example.net "$1" m.age "$now")
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server sub/server.key mail.example.com POST \
			example.net /smimp/v1/deliver m.age "Smimp-From: zed@mail.example.com" \
			"Smimp-To: bob@example.net" "Smimp-Stamp-To: bob@example.net" \
			"Smimp-Message-Id: $1" "Smimp-Stamp: $s" "Smimp-Stamp-Date: $now")
		curl -s --cacert cert.pem -D hdr -o body -w '%{http_code}' --data-binary @m.age \
			"${h[@]/#/-H}" "https://127.0.0.1:$NET/smimp/v1/deliver"
	}
	want 201 deliver carol c1
	want 201 deliver_zed z1
	want 201 deliver erin r1
	# example.com's fourth this hour, from its subdomain or itself.
	want 429 deliver_zed z2
	want 429 deliver carol c2
	# Another site is not held up.
	want 201 deliver alice a1
}

# answer KIND WHO MID TO: one request's status, headers (but Date) and
# body as one text in answer-MID.
answer() {
	local t
	t=$(send_as "$@")
	{ echo "$t"; tr -d '\r' <hdr | grep -v '^Date: '; cat body; } >"answer-$3"
}

# low FILE: the lower quartile of the numbers in FILE.  Other work on
# the machine only ever adds to a request's time, and it moves a median
# by milliseconds under load; what the server itself spends shows in
# the lower times of each kind.
low() { sort -n "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 3) / 4)] }'; }

# timed KIND WHO MID TO: the status, and the server's time on the
# request (from the upload's end to the answer's first byte) in
# microseconds.
timed() {
	request "$@"
	curl -s --cacert cert.pem -o /dev/null --data-binary @m.age \
		-w '%{http_code} %{time_pretransfer} %{time_starttransfer}\n' "${REQ[@]}" |
		awk '{ printf "%s %d\n", $1, ($3 - $2) * 1000000 }'
}

# round KIND WHO N: N requests of WHO's to each of bob (who blocks
# WHO), dave (who asks for work WHO did not do) and nobody, interleaved
# and each first in turn, so that what the machine does meanwhile (and
# a request after a pause) falls on all; 0 when the lower quartiles of
# the server's times are within a tolerance that a real difference (a
# commit, a signature, a fetch: a millisecond or more) is past.
round() {
	local kind=$1 who=$2 n=$3 i to b w a x d lim
	local order=(bob@example.net dave@example.net nobody@example.net)
	: >t-bob@example.net; : >t-dave@example.net; : >t-nobody@example.net
	for i in $(seq "$n"); do
		for to in "${order[@]:i%3}" "${order[@]:0:i%3}"; do
			timed "$kind" "$who" "t$RANDOM$i-${to%@*}" "$to" >t
			[ "$(cut -d' ' -f1 t)" = 404 ] || return 2
			cut -d' ' -f2 t >>"t-$to"
		done
	done
	b=$(low t-bob@example.net) w=$(low t-dave@example.net) a=$(low t-nobody@example.net)
	echo "$kind lower quartiles (us): blocked $b, no work $w, absent $a"
	for x in "$w" "$a"; do
		d=$(( b > x ? b - x : x - b ))
		lim=$(( (b > x ? b : x) / 3 ))
		[ "$lim" -ge 1000 ] || lim=1000
		[ "$d" -le "$lim" ] || { echo "difference $d us over $lim"; return 1; }
	done
}

# enumeration KIND WHO: the three refusals the same to the byte, and
# in time: other tests run beside this one, so a round that a burst of
# their work spoiled is run again, twice at most; a real difference
# fails every round.
enumeration() {
	local kind=$1 who=$2 r
	run -0 answer "$kind" "$who" x-blocked bob@example.net
	run -0 answer "$kind" "$who" x-work dave@example.net
	run -0 answer "$kind" "$who" x-absent nobody@example.net
	[ "$(head -1 answer-x-blocked)" = 404 ]
	cmp answer-x-blocked answer-x-work
	cmp answer-x-blocked answer-x-absent
	tail -1 answer-x-absent | grep -qx "$UNKNOWN_USER"
	for r in 1 2 3; do
		round "$kind" "$who" 30 && return 0
		[ $? = 1 ] || return 1
	done
	return 1
}

@test "enumeration: a blocked sender, a recipient who wants work, and no such address answer alike, to the byte and in time" {
	printf 'rate-domain 0\nrate-sender 0\n' >>common.conf
	up
	as bob smimp-trust set carol@example.com blocked
	as bob smimp-trust set eve@example.net blocked
	publish bob --unknown open >/dev/null
	publish dave --unknown pow:12 >/dev/null
	enumeration deliver carol
	enumeration submit eve
	# Nothing of it reached a mailbox.
	run -0 mailbox bob
	[ -z "$output" ]
	run -0 mailbox dave
	[ -z "$output" ]
}

@test "a policy tampered with, replayed, older than the one stored, or not its owner's is refused" {
	up
	publish bob --unknown closed >/dev/null
	policy_req bob GET | head -c -4 >first
	sleep 1
	publish bob --unknown open >/dev/null
	# The first one again, in a fresh request: older than the stored one.
	run -0 policy_req bob POST first
	[ "${output//$'\n'/}" = '{"error":"a policy of the same or a later date is stored"} 409' ]
	# One signed bit changed.
	sed 's/^unknown: closed$/unknown: open/' first >tampered
	run -0 policy_req bob POST tampered
	[ "${output//$'\n'/}" = '{"error":"the policy'"'"'s signature does not verify under the identity key of bob@example.net"} 400' ]
	# A request replayed as it was sent.
	sleep 1
	"$SMIMP_BUILD/t/policytool" make bob.key "$(date -u +%Y-%m-%dT%H:%M:%SZ)" closed 7 >fresh
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key POST example.net \
		/smimp/v1/users/bob@example.net/policy fresh)
	post() {
		curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @fresh \
			"https://127.0.0.1:$NET/smimp/v1/users/bob@example.net/policy"
	}
	run -0 post
	[[ "${output//$'\n'/}" == '{"address":"bob@example.net","date":"'*'","unknown":"closed","allowance":7,"blocked":0,"allowed":0} 200' ]]
	run -0 post
	[ "${output//$'\n'/}" = '{"error":"replayed request"} 401' ]
	# The same statement in a new request: taken again, nothing changes.
	run -0 policy_req bob POST fresh
	[[ "$output" == *' 200' ]]
	# Dated long ago, or ahead: not now.
	"$SMIMP_BUILD/t/policytool" make bob.key 2026-01-01T00:00:00Z closed 7 >old
	run -0 policy_req bob POST old
	[ "${output//$'\n'/}" = '{"error":"the policy'"'"'s date is not now"} 400' ]
	"$SMIMP_BUILD/t/policytool" make bob.key 2099-01-01T00:00:00Z closed 7 >ahead
	run -0 policy_req bob POST ahead
	[ "${output//$'\n'/}" = '{"error":"the policy'"'"'s date is not now"} 400' ]
	# Another's statement, or another's request.
	"$SMIMP_BUILD/t/policytool" make dave.key "$(date -u +%Y-%m-%dT%H:%M:%SZ)" open 7 >daves
	run -0 policy_req bob POST daves
	[ "${output//$'\n'/}" = '{"error":"the policy is for another address"} 400' ]
	run -0 policy_req dave POST fresh
	[ "${output//$'\n'/}" = '{"error":"unknown user"} 404' ]
	run -0 policy_req dave GET
	[ "${output//$'\n'/}" = '{"error":"unknown user"} 404' ]
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' \
		"https://127.0.0.1:$NET/smimp/v1/users/bob@example.net/policy"
	[[ "$output" == *' 401' ]]
	# Malformed.
	printf 'smimp-policy/1\naddress: Bob@example.net\n' >bad
	run -0 policy_req bob POST bad
	[ "${output//$'\n'/}" = '{"error":"malformed policy: the address is not normalized"} 400' ]
	# What is stored is still the last good one.
	policy_req bob GET | head -c -4 >stored
	cmp stored fresh
}

@test "the parser refuses what is malformed, repeated, unsorted or too large" {
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	"$SMIMP_BUILD/t/policytool" make bob.key "$now" pow:22 9 block:mallory@example.com \
		block:@spam.example allow:alice@example.org allow:@example.net >p
	run -0 "$SMIMP_BUILD/t/policytool" parse p bob.pub
	[ "$output" = "ok: 2 blocked, 2 allowed" ]
	run -0 "$SMIMP_BUILD/t/policytool" classify p alice@example.org
	[ "$output" = allowed ]
	run -0 "$SMIMP_BUILD/t/policytool" classify p eve@spam.example
	[ "$output" = blocked ]
	run -0 "$SMIMP_BUILD/t/policytool" classify p carol@example.com
	[ "$output" = unknown ]
	run -1 "$SMIMP_BUILD/t/policytool" parse p alice.pub
	[ "$output" = "the policy's signature does not verify under the identity key of bob@example.net" ]
	# edit SED: p changed by sed, parsed (no signature check).
	edit() { sed "$1" p >q; "$SMIMP_BUILD/t/policytool" parse q; }
	run -1 edit '2s/bob/Bob/'
	[ "$output" = "malformed policy: the address is not normalized" ]
	run -1 edit '3d'
	[ "$output" = "malformed policy: expected the date line" ]
	run -1 edit '3s/Z$//'
	[ "$output" = "malformed policy: invalid date" ]
	run -1 edit 's/^unknown: .*/unknown: pow/'
	[ "$output" = "malformed policy: invalid unknown" ]
	run -1 edit 's/^unknown: .*/unknown: pow:0/'
	[ "$output" = "malformed policy: invalid unknown" ]
	run -1 edit 's/^allowance: .*/allowance: 09/'
	[ "$output" = "malformed policy: invalid allowance" ]
	run -1 edit 's/^allowance: .*/allowance: 1000001/'
	[ "$output" = "malformed policy: invalid allowance" ]
	run -1 edit 's/^salt: .*/salt: AAAAAAAAAAAAAAAAAAAAAB/'
	[ "$output" = "malformed policy: invalid salt" ]
	run -1 edit '0,/^block: /{/^block: /p}'
	[ "$output" = "malformed policy: entries not sorted or repeated" ]
	run -1 edit '0,/^block: /{/^block: /{h;d}};/^block: /G'
	[ "$output" = "malformed policy: entries not sorted or repeated" ]
	run -1 edit 's/^block: ./block: g/'
	[ "$output" = "malformed policy: invalid entry" ]
	# An entry both blocked and allowed.
	"$SMIMP_BUILD/t/policytool" make bob.key "$now" open 9 block:a@b.c >p2
	sed -n 's/^block: /allow: /p' p2 >allow
	{ sed '$d' p2; cat allow; tail -1 p2; } >q
	run -1 "$SMIMP_BUILD/t/policytool" parse q
	[ "$output" = "malformed policy: an entry is both blocked and allowed" ]
	run -1 edit '$a x'
	[ "$output" = "malformed policy: text after the signature" ]
	run -1 edit '$d'
	[ "$output" = "malformed policy: expected the signature line" ]
	run -1 edit 's/^signature: ./signature: !/'
	[ "$output" = "malformed policy: invalid signature" ]
	run -1 edit '1s/1/2/'
	[ "$output" = "malformed policy: not a smimp-policy/1 statement" ]
	# The most entries, and one more.
	seq 50000 | sed 's/.*/block:u&@x.example/' >names
	"$SMIMP_BUILD/t/policytool" make bob.key "$now" closed 0 @names >big
	run -0 "$SMIMP_BUILD/t/policytool" parse big bob.pub
	[ "$output" = "ok: 50000 blocked, 0 allowed" ]
	echo allow:one@more.example >more
	run -1 "$SMIMP_BUILD/t/policytool" make bob.key "$now" closed 0 @names @more
	[ "$output" = "policytool: a policy lists at most 50000 names, not 50001" ]
	sed '/^signature: /i allow: ffffffffffffffffffffffffffffffff' big >q
	run -1 "$SMIMP_BUILD/t/policytool" parse q
	[ "$output" = "malformed policy: too many entries" ]
}

@test "the protocol vector: entries and a signed statement from a fixed salt and key" {
	run -0 "$SMIMP_BUILD/t/policytool" vectors "$REPO/t/vectors"
	[ "${lines[-1]}" = "10 passed, 0 failed" ]
	cp -r "$REPO/t/vectors" v
	sed -i 's/^allowance: 100$/allowance: 101/' v/policy.statement
	run -1 "$SMIMP_BUILD/t/policytool" vectors v
	grep -qx 'FAIL policy.statement: the bytes the writer makes' <<<"$output"
	grep -qx 'FAIL policy.statement: verifies under bob'"'"'s identity key' <<<"$output"
}

@test "publishing with no server to reach fails clearly and changes nothing; a tier change then only warns" {
	up
	publish bob --unknown closed >/dev/null
	cp "$(home bob)/policy" before
	stop_servers net
	run -75 --separate-stderr publish bob --unknown open
	[[ "$stderr" == "smimp-trust: cannot publish the policy of bob@example.net: "* ]]
	cmp before "$(home bob)/policy"
	run -0 --separate-stderr as bob smimp-trust set carol@example.com known
	[[ "$stderr" == "smimp-trust: warning: policy of bob@example.net not published again: cannot publish the policy of bob@example.net: "* ]]
	run -0 as bob smimp-trust show carol@example.com
	[ "${lines[1]}" = "tier: known" ]
	cmp before "$(home bob)/policy"
}

@test "tier changes made at once are all in the policy the server holds: each publication waits for the one before" {
	up
	publish bob --unknown closed >/dev/null
	pids=()
	for i in 1 2 3 4 5 6; do
		as bob smimp-trust set "@spam$i.example" blocked 2>"set$i.err" &
		pids+=($!)
	done
	wait "${pids[@]}"
	for i in 1 2 3 4 5 6; do
		[ "$(cat "set$i.err")" = "smimp-trust: policy published again" ]
	done
	run -0 publish bob --show
	[ "$(grep -c '^block: @spam[1-6].example$' <<<"$output")" -eq 6 ]
	grep -qx 'unknown: closed' <<<"$output"
	[ "$(stat -c %a "$(home bob)/policy.lock")" = 600 ]
}

@test "sealing to someone new makes them known and publishes the policy again" {
	up
	publish bob --unknown closed >/dev/null
	want 404 deliver carol c1
	run -0 --separate-stderr as bob smimp-seal -i bob.key -r carol@example.com -o m-bob <<<"hello"
	[[ "${stderr_lines[0]}" == "smimp-seal: pinned carol@example.com, fingerprint "* ]]
	[ "${stderr_lines[1]}" = "smimp-seal: policy published again: new recipients are known" ]
	run -0 as bob smimp-trust show carol@example.com
	[ "${lines[1]}" = "tier: known" ]
	want 201 deliver carol c2
	# Sealing to her again pins nothing: nothing is published.
	run -0 --separate-stderr as bob smimp-seal -i bob.key -r carol@example.com -o m-bob2 <<<"hello"
	[ -z "$stderr" ]
}

@test "an account deleted takes its policy with it" {
	up
	publish bob --unknown closed >/dev/null
	[ "$(store_sql net 'SELECT count(*) FROM policies')" = 1 ]
	stop_servers net
	smimpd --data net --domain example.net deluser bob@example.net
	[ "$(store_sql net "SELECT count(*) FROM policies WHERE address = 'bob@example.net'")" = 0 ]
	[ "$(store_sql net "SELECT count(*) FROM policy_entries WHERE address = 'bob@example.net'")" = 0 ]
	# Registered again, the address starts with no policy.
	smimpd --data net --domain example.net adduser bob@example.net bob.pub
	start net example.net "$NET"
	want 201 deliver carol c1
}

@test "the largest policy is taken and looked up entry by entry; a larger body is refused unread" {
	up
	seq 50000 | sed 's/.*/block:u&@x.example/' >names
	echo allow:carol@example.com >>names
	sed -i '50000d' names
	"$SMIMP_BUILD/t/policytool" make bob.key "$(date -u +%Y-%m-%dT%H:%M:%SZ)" closed 0 @names >big
	run -0 policy_req bob POST big
	[ "${output//$'\n'/}" = "$(printf '{"address":"bob@example.net","date":"%s","unknown":"closed","allowance":0,"blocked":49999,"allowed":1} 200' "$(sed -n 's/^date: //p' big)")" ]
	[ "$(store_sql net "SELECT count(*) FROM policy_entries WHERE address = 'bob@example.net'")" = 50000 ]
	want 201 deliver carol c1
	want 404 deliver erin r1
	head -c $((4 * 1024 * 1024 + 1)) /dev/zero >huge
	run -0 policy_req bob POST huge
	[ "${output//$'\n'/}" = '{"error":"body too large"} 413' ]
}
