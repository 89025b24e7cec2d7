#!/usr/bin/env bats
# One mailbox, a delivery state per receiving device: bob's identity key
# and his devices phone (full) and tv (receive) each list, fetch and
# acknowledge every message once, on their own, also when one is killed
# mid-fetch; a device enrolled later gets only later messages; a
# removed device's pending messages go with it; sent copies reach the
# sender's other devices; a message leaves mailbox-retention seconds
# after its first acknowledgement.  Requests are signed with t/signreq
# (Smimp-Signer: device:NAME:ADDRESS for a device), as any client would.

load helper

setup() {
	common_setup
	alice_and_bob_domains
	mkid carol carol@example.net
	smimpd --data net --domain example.net adduser carol@example.net carol.pub
	echo "mailbox-retention 3600" >>common.conf
	start net example.net "$NET"
	enroll phone full
	enroll tv receive
}

teardown() {
	stop_servers net
	[ -f pid ] && kill -TERM "$(cat pid)" 2>/dev/null
	return 0
}

# enroll NAME SCOPE: NAME.key, a device of bob's with that scope.
enroll() { enroll_device bob.key bob@example.net "$1" "$2"; }

URL() { echo "https://127.0.0.1:$NET/smimp/v1/$1"; }

# ask KEY METHOD PATH [BODYFILE [HEADER...]]: the answer's body, then
# its status after a space.
ask() {
	local h
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" "$1" "$2" example.net \
		"/smimp/v1/$3" "${4:--}" "${@:5}")
	if [ -n "${4:-}" ] && [ "$4" != - ]; then
		curl -s --cacert cert.pem -X "$2" "${h[@]/#/-H}" \
			--data-binary @"$4" -w ' %{http_code}' "$(URL "$3")"
	else
		curl -s --cacert cert.pem -X "$2" "${h[@]/#/-H}" \
			-w ' %{http_code}' "$(URL "$3")"
	fi
}

# send KEY MID TO: KEY's owner (or device) submits a message MID.age
# (sealed by carol, whatever KEY) to TO; prints the status.
send() {
	[ -f "$2.age" ] || echo "message $2" | smimp-seal -i carol.key \
		-r bob.pub >"$2.age"
	ask "$1" POST messages "$2.age" "Smimp-To: $3" \
		"Smimp-Message-Id: $2" | tail -n 1 | tr -d ' '
}

# listing KEY: "MID:sent" for each message pending for KEY, in order.
listing() {
	ask "$1" GET mailbox | sed 's/ [0-9]*$//' | jq -r '.[] | "\(.message_id):\(.sent)"'
}

# id_of KEY MID: the mailbox id of MID in KEY's listing.
id_of() {
	ask "$1" GET mailbox | sed 's/ [0-9]*$//' |
		jq -r --arg m "$2" '.[] | select(.message_id == $m) | .id'
}

# drain KEY DIR [CURL ARGS]: fetch what is pending for KEY into DIR/tmp,
# move it to DIR/new under its message id, then acknowledge it; each
# step logged in DIR/log, the download's pid in DIR/curl.pid.
drain() {
	local id mid h
	mkdir -p "$2/tmp" "$2/new"
	ask "$1" GET mailbox | sed 's/ [0-9]*$//' |
		jq -r '.[] | "\(.id) \(.message_id)"' >"$2/list"
	while read -r id mid; do
		echo "fetch $mid" >>"$2/log"
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" "$1" GET example.net \
			"/smimp/v1/mailbox/$id")
		curl -sf --cacert cert.pem "${h[@]/#/-H}" "${@:3}" \
			-o "$2/tmp/$mid" "$(URL "mailbox/$id")" &
		echo $! >"$2/curl.pid"
		wait $! || return 1
		mv "$2/tmp/$mid" "$2/new/$mid"
		[ "$(ask "$1" DELETE "mailbox/$id")" = " 204" ] || return 1
		echo "ack $mid" >>"$2/log"
	done <"$2/list"
}

# rows SQL: what net's store answers.
rows() { store_sql net "$1"; }

@test "the identity key and two devices each fetch and acknowledge every message exactly once; the copy leaves after the last" {
	for i in 1 2 3 4 5; do
		[ "$(send carol.key "m$i" bob@example.net)" = 201 ]
	done
	# One copy of each, however many devices.
	[ "$(rows 'SELECT count(*) FROM mailbox')" = 5 ]
	for k in phone bob tv; do
		run -0 listing "$k.key"
		[ "$output" = "$(printf 'm%s:false\n' 1 2 3 4 5)" ]
		drain "$k.key" "$k"
		[ "$(sort "$k/log" | uniq -c | awk '$1 != 1' | wc -l)" = 0 ]
		[ "$(grep -c '^ack ' "$k/log")" = 5 ]
		for i in 1 2 3 4 5; do cmp "m$i.age" "$k/new/m$i"; done
		run -0 listing "$k.key"
		[ "$output" = "" ]
		# Each device's acknowledgements are its own.
		[ "$k" = tv ] || [ "$(rows 'SELECT count(*) FROM mailbox')" = 5 ]
	done
	[ "$(rows 'SELECT count(*) FROM mailbox')" = 0 ]
	[ "$(rows 'SELECT count(*) FROM mailbox_pending')" = 0 ]
	# Acknowledged everywhere: the same messages again store nothing.
	[ "$(send carol.key m1 bob@example.net)" = 201 ]
	run -0 listing tv.key
	[ "$output" = "" ]
	# Another device's ids are no way into the mailbox of another owner.
	[ "$(send bob.key c1 carol@example.net)" = 201 ]
	id=$(id_of carol.key c1)
	run -0 ask phone.key GET "mailbox/$id"
	[ "$output" = '{"error":"no such message"}
 404' ]
	run -0 ask phone.key DELETE "mailbox/$id"
	[[ "$output" == *" 404" ]]
	[ "$(id_of carol.key c1)" = "$id" ]
}

@test "a device killed mid-fetch gets the rest, and the message it was reading again; the other device is not affected" {
	for i in 1 2; do [ "$(send carol.key "m$i" bob@example.net)" = 201 ]; done
	# m3 is large and read slowly: the device is killed in the middle.
	head -c 3000000 /dev/urandom | smimp-seal -i carol.key -r bob.pub >m3.age
	for i in 3 4; do [ "$(send carol.key "m$i" bob@example.net)" = 201 ]; done
	drain tv.key tv --limit-rate 200k &
	pid=$!
	for _ in $(seq 100); do
		[ -s tv/tmp/m3 ] && break
		sleep 0.1
	done
	[ -s tv/tmp/m3 ]
	kill -KILL "$pid" "$(cat tv/curl.pid)"
	wait "$pid" 2>/dev/null || true
	[ "$(cat tv/log)" = "$(printf 'fetch m1\nack m1\nfetch m2\nack m2\nfetch m3')" ]
	# The tv still has m3 and m4, the phone everything.
	run -0 listing tv.key
	[ "$output" = "$(printf 'm3:false\nm4:false')" ]
	drain phone.key phone
	[ "$(grep -c '^ack' phone/log)" = 4 ]
	run -0 listing tv.key
	[ "$output" = "$(printf 'm3:false\nm4:false')" ]
	drain tv.key tv
	[ "$(grep -c '^ack' tv/log)" = 4 ]
	[ "$(grep -c '^fetch m3' tv/log)" = 2 ]
	for i in 1 2 3 4; do cmp "m$i.age" "tv/new/m$i"; cmp "m$i.age" "phone/new/m$i"; done
	run -0 listing tv.key
	[ "$output" = "" ]
	# The identity key has not fetched: all four wait for it.
	[ "$(listing bob.key | wc -l)" = 4 ]
}

@test "a device enrolled later gets only the messages that arrive after it joined" {
	[ "$(send carol.key m1 bob@example.net)" = 201 ]
	enroll laptop full
	[ "$(send carol.key m2 bob@example.net)" = 201 ]
	run -0 listing laptop.key
	[ "$output" = "m2:false" ]
	run -0 listing phone.key
	[ "$output" = "$(printf 'm1:false\nm2:false')" ]
	# A send-only device receives nothing, and may not list.
	enroll ci send
	[ "$(send carol.key m3 bob@example.net)" = 201 ]
	run -0 ask ci.key GET mailbox
	[[ "$output" == *"(scope send) may not do this\"}"*" 403" ]]
	[ "$(rows "SELECT count(*) FROM mailbox_pending WHERE device = 'ci'")" = 0 ]
	[ "$(rows "SELECT count(*) FROM mailbox_pending WHERE device = 'laptop'")" = 2 ]
}

@test "a removed device's pending messages are gone at once, with those pending for nobody else, and its requests are refused" {
	for i in 1 2; do [ "$(send carol.key "m$i" bob@example.net)" = 201 ]; done
	m1=$(id_of tv.key m1)
	m2=$(id_of tv.key m2)
	# m1 waits for the tv alone, m2 for the tv and the phone.
	[ "$(ask bob.key DELETE "mailbox/$m1")" = " 204" ]
	[ "$(ask bob.key DELETE "mailbox/$m2")" = " 204" ]
	[ "$(ask phone.key DELETE "mailbox/$m1")" = " 204" ]
	# Compared as files: a sealed message may hold NUL bytes or end in
	# a newline, which a shell string would lose.
	ask tv.key GET "mailbox/$m1" >got
	[ "$(tail -c 4 got)" = " 200" ]
	head -c -4 got | cmp - m1.age
	run -0 smimp-revoke -i bob.key --remove-device tv
	[ "$(rows 'SELECT message_id FROM mailbox')" = m2 ]
	[ "$(rows "SELECT count(*) FROM mailbox_pending WHERE device = 'tv'")" = 0 ]
	for req in "GET mailbox" "GET mailbox/$m2" "DELETE mailbox/$m2"; do
		run -0 ask tv.key $req
		[ "$output" = '{"error":"unknown signer"}
 401' ]
	done
	# What was delivered and removed is not delivered again.
	[ "$(send carol.key m1 bob@example.net)" = 201 ]
	run -0 listing phone.key
	[ "$output" = "m2:false" ]
	# The last device acknowledges m2: nothing is left.
	[ "$(ask phone.key DELETE "mailbox/$m2")" = " 204" ]
	[ "$(rows 'SELECT count(*) FROM mailbox')" = 0 ]
	# Removing a device that had nothing pending changes nothing else.
	[ "$(send carol.key m3 bob@example.net)" = 201 ]
	enroll laptop full
	run -0 smimp-revoke -i bob.key --remove-device laptop
	run -0 listing phone.key
	[ "$output" = "m3:false" ]
	run -0 listing bob.key
	[ "$output" = "m3:false" ]
}

@test "a sent copy is kept for the sender's other devices only, flagged sent; a sender without devices gets none" {
	[ "$(send phone.key s1 carol@example.net)" = 201 ]
	run -0 listing carol.key
	[ "$output" = "s1:false" ]
	run -0 listing phone.key
	[ "$output" = "" ]
	run -0 listing tv.key
	[ "$output" = "s1:true" ]
	run -0 listing bob.key
	[ "$output" = "s1:true" ]
	run -0 ask bob.key GET mailbox
	[[ "$output" == '[{"id":'*',"from":"bob@example.net","message_id":"s1","size":'*',"received":"'*'","sent":true}]'$'\n'' 200' ]]
	id=$(id_of tv.key s1)
	ask tv.key GET "mailbox/$id" >got
	[ "$(tail -c 4 got)" = " 200" ]
	head -c -4 got | cmp - s1.age
	# From the identity key: the phone and the tv get it.
	[ "$(send bob.key s2 carol@example.net)" = 201 ]
	run -0 listing bob.key
	[ "$output" = "s1:true" ]
	run -0 listing phone.key
	[ "$output" = "s2:true" ]
	# Carol has no devices: her sending leaves her mailbox as it was.
	[ "$(send carol.key c1 bob@example.net)" = 201 ]
	run -0 listing carol.key
	[ "$output" = "$(printf 's1:false\ns2:false')" ]
	# Sent to oneself as well: one message for every device, not sent.
	[ "$(send phone.key s3 bob@example.net,carol@example.net)" = 201 ]
	run -0 listing phone.key
	[ "$output" = "$(printf 's2:true\nc1:false\ns3:false')" ]
	# A receiving device cannot submit at all.
	[ "$(send tv.key s4 carol@example.net)" = 403 ]
}

@test "a message leaves mailbox-retention seconds after its first acknowledgement; settings out of range are refused" {
	stop_servers net
	echo "mailbox-retention 1" >>common.conf
	start net example.net "$NET"
	[ "$(send carol.key m1 bob@example.net)" = 201 ]
	[ "$(send carol.key m2 bob@example.net)" = 201 ]
	[ "$(ask phone.key DELETE "mailbox/$(id_of phone.key m1)")" = " 204" ]
	run -0 listing tv.key
	[ "$output" = "$(printf 'm1:false\nm2:false')" ]
	# The store sweeps at most every 10 seconds, on a write.
	sleep 11
	[ "$(send carol.key m3 bob@example.net)" = 201 ]
	run -0 listing tv.key
	[ "$output" = "$(printf 'm2:false\nm3:false')" ]
	run -0 listing bob.key
	[ "$output" = "$(printf 'm2:false\nm3:false')" ]
	printf 'mailbox-retention %s\n' 0 31536001 x >bad.conf
	run -2 --separate-stderr smimpd -n -f bad.conf
	for i in 1 2 3; do
		grep -qx "smimpd: bad.conf:$i: mailbox-retention is a number of seconds, 1 to a year" <<<"$stderr"
	done
	[[ "$stderr" == *"smimpd: bad.conf: 3 errors" ]]
}

@test "a store from before per-device states: its users get their devices from their logs at the next start" {
	sqlite_only
	stop_servers net
	mkdir -m 700 data
	sqlite3 data/smimpd.db <"$REPO/t/fixtures/store-v5.sql" >/dev/null
	# The fixture's bob@example.org, with a device in his log.
	mkid bob5 bob@example.org
	enroll_device bob5.key bob@example.org pad full --no-publish
	sqlite3 data/smimpd.db "UPDATE users SET log = readfile('bob5.pub')"
	# Any command that opens the store gives the devices, once.
	smimpd --data data --domain example.org adduser alice@example.org alice.pub
	[ "$(sqlite3 data/smimpd.db "SELECT address, devices_synced FROM users ORDER BY address")" = "alice@example.org|1
bob@example.org|1" ]
	[ "$(sqlite3 data/smimpd.db "SELECT device FROM user_devices")" = pad ]
	start_server
	echo hi | smimp-seal -i alice.key -r bob5.pub >new.age
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key POST example.org /smimp/v1/messages new.age \
		'Smimp-To: bob@example.org' 'Smimp-Message-Id: new')
	run -0 curl -s --cacert cert.pem "${h[@]/#/-H}" --data-binary @new.age -w ' %{http_code}' \
		"https://127.0.0.1:$PORT/smimp/v1/messages"
	[[ "$output" == *" 201" ]]
	for k in pad bob5; do
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" "$k.key" GET example.org /smimp/v1/mailbox)
		curl -s --cacert cert.pem "${h[@]/#/-H}" "https://127.0.0.1:$PORT/smimp/v1/mailbox" |
			jq -r '.[].message_id' >"$k.list"
	done
	[ "$(cat pad.list)" = new ]
	[ "$(cat bob5.list)" = "$(printf 'first@example.net\nsecond@example.net\nnew')" ]
}
