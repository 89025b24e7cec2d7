#!/usr/bin/env bats
# Requests signed by a device's key (Smimp-Signer: device:NAME:ADDRESS):
# bob's server takes them from his live devices on the routes their
# scope allows, refuses the rest with 403 once the signature verified,
# and refuses a removed device, an unknown one or a forged signature
# with 401, as it refuses a revoked key; other domains take a device's
# signed lookups.

load helper

setup() {
	common_setup
	alice_and_bob_domains
	start org example.org "$ORG"
	start net example.net "$NET"
	for d in phone:full ci:send tv:receive; do
		enroll "${d%%:*}" "${d#*:}"
	done
}

teardown() { stop_servers org net; }

# enroll NAME SCOPE: NAME.key, a device of bob's with that scope.
enroll() { enroll_device bob.key bob@example.net "$1" "$2"; }
# ask KEY METHOD URL [curl args]: the body and, last, the status.
ask() {
	local h path="/${3#*://*/}" domain=example.net
	[[ "$3" == *":$ORG/"* ]] && domain=example.org
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" "$1" "$2" "$domain" "$path")
	curl -s --cacert cert.pem -X "$2" "${h[@]/#/-H}" "${@:4}" \
		-w ' %{http_code}' "$3"
}
NETURL() { echo "https://127.0.0.1:$NET/smimp/v1/$1"; }

@test "each scope calls the routes it allows: full everything but the log, send no mailbox, receive no submission" {
	run -0 ask phone.key GET "$(NETURL mailbox)"
	[ "$output" = $'[]\n 200' ]
	run -0 ask tv.key GET "$(NETURL mailbox)"
	[ "$output" = $'[]\n 200' ]
	run -0 ask ci.key GET "$(NETURL mailbox)"
	[ "$output" = '{"error":"the device ci of bob@example.net (scope send) may not do this"}
 403' ]
	run -0 ask ci.key DELETE "$(NETURL mailbox/12345)"
	[[ "$output" == *" 403" ]]
	run -0 ask tv.key POST "$(NETURL messages)"
	[ "$output" = '{"error":"the device tv of bob@example.net (scope receive) may not do this"}
 403' ]
	# The log and the policy are the identity key's alone.
	run -0 ask phone.key POST "$(NETURL users/bob@example.net/log)"
	[ "$output" = '{"error":"the device phone of bob@example.net (scope full) may not do this"}
 403' ]
	run -0 ask phone.key POST "$(NETURL users/bob@example.net/policy)"
	[[ "$output" == *"(scope full) may not do this\"}"*" 403" ]]
	# Every scope looks logs up, here and at another domain.
	for d in phone ci tv; do
		run -0 ask "$d.key" GET "$(NETURL users/bob@example.net/log)"
		[ "${output% 200}" = "$(cat bob.pub)"$'\n' ]
		run -0 ask "$d.key" GET "https://127.0.0.1:$ORG/smimp/v1/users/alice@example.org/log"
		[ "${output% 200}" = "$(cat alice.pub)"$'\n' ]
	done
}

@test "a removed device, a name that is no device and a signature by another device's key: 401, here and elsewhere" {
	run -0 smimp-revoke -i bob.key --remove-device tv
	run -0 ask tv.key GET "$(NETURL mailbox)"
	[ "$output" = '{"error":"unknown signer"}
 401' ]
	run -0 ask tv.key GET "https://127.0.0.1:$ORG/smimp/v1/users/alice@example.org/log"
	[ "$output" = '{"error":"unknown signer"}
 401' ]
	# Its own log it may still read, to learn that it was removed.
	run -0 ask tv.key GET "$(NETURL users/bob@example.net/log)"
	[ "${output% 200}" = "$(cat bob.pub)"$'\n' ]
	# phone's key, signing as a device named tablet, or as tv.
	for name in tablet tv; do
		sed "s/^device: phone\$/device: $name/" phone.key >forged.key
		chmod 600 forged.key
		run -0 ask forged.key GET "$(NETURL mailbox)"
		[[ "$output" == *" 401" ]]
	done
	# ci's key, signing as phone: the signature is not phone's.
	sed "s/^device: ci\$/device: phone/" ci.key >forged.key
	run -0 ask forged.key GET "$(NETURL mailbox)"
	[[ "$output" == *" 401" ]]
	# A device's key where the identity key is expected: not bob's key.
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" phone.key GET example.net /smimp/v1/mailbox)
	h=("${h[@]/Smimp-Signer: device:phone:bob@example.net/Smimp-Signer: bob@example.net}")
	run -0 curl -s --cacert cert.pem "${h[@]/#/-H}" -w ' %{http_code}' "$(NETURL mailbox)"
	[[ "$output" == *" 401" ]]
}

@test "a removed device whose name came back with new keys still reads its own log, and nothing else; smimp-fetch says it was removed" {
	run -0 smimp-revoke -i bob.key --remove-device tv
	removed=$(sed -n 's/^date: //p' bob.pub | tail -1)
	mkdir old
	mv tv.key tv.request tv.out old/
	enroll tv receive
	run -0 ask old/tv.key GET "$(NETURL users/bob@example.net/log)"
	[ "${output% 200}" = "$(cat bob.pub)"$'\n' ]
	run -0 ask old/tv.key GET "$(NETURL mailbox)"
	[ "$output" = '{"error":"bad signature"}
 401' ]
	run -0 ask old/tv.key GET "$(NETURL users/alice@example.org/log)"
	[[ "$output" == *" 401" ]]
	run -5 --separate-stderr smimp-fetch -i old/tv.key -d mail
	[ "$stderr" = "smimp-fetch: the device tv of bob@example.net was removed on $removed: 'old/tv.key' speaks for it no more" ]
	[ ! -e mail ]
	# The new tv, and a key that was never tv's, as before.
	run -0 ask tv.key GET "$(NETURL mailbox)"
	[ "$output" = $'[]\n 200' ]
	sed "s/^device: phone\$/device: tv/" phone.key >forged.key
	chmod 600 forged.key
	run -0 ask forged.key GET "$(NETURL users/bob@example.net/log)"
	[ "$output" = '{"error":"bad signature"}
 401' ]
}

@test "malformed device signers are refused with 401 before any lookup" {
	for signer in 'device:Phone:bob@example.net' 'device::bob@example.net' \
		'device:phone:' 'device:phone:Bob@example.net' 'device:phone' \
		"device:$(printf 'a%.0s' {1..33}):bob@example.net" \
		'recovery:device:phone:bob@example.net' 'device:phone:recovery:bob@example.net'; do
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" phone.key GET example.net /smimp/v1/mailbox)
		h=("${h[@]/Smimp-Signer: */Smimp-Signer: $signer}")
		run -0 curl -s --cacert cert.pem "${h[@]/#/-H}" -w ' %{http_code}' "$(NETURL mailbox)"
		[[ "$output" == *" 401" ]] || { echo "$signer: $output"; false; }
	done
}

@test "a submission whose Smimp-Stamp-Device names another device than the one that signed it is refused with 400, storing nothing" {
	echo hello | smimp-seal -i bob.key -r alice.pub -o m.age
	for claimed in ci tablet ''; do
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" phone.key POST example.net /smimp/v1/messages m.age \
			'Smimp-To: alice@example.org' 'Smimp-Message-Id: forged@example.net' \
			"Smimp-Stamp-Device: ${claimed:-phone-x}")
		run -0 curl -s --cacert cert.pem "${h[@]/#/-H}" --data-binary @m.age \
			-w ' %{http_code}' "$(NETURL messages)"
		[ "$output" = '{"error":"Smimp-Stamp-Device does not name the device that signed the request"}
 400' ]
	done
	# The identity key names no device at all.
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key POST example.net /smimp/v1/messages m.age \
		'Smimp-To: alice@example.org' 'Smimp-Message-Id: forged@example.net' 'Smimp-Stamp-Device: phone')
	run -0 curl -s --cacert cert.pem "${h[@]/#/-H}" --data-binary @m.age -w ' %{http_code}' "$(NETURL messages)"
	[[ "$output" == *" 400" ]]
	[ "$(store_sql net 'SELECT count(*) FROM outbound')" = 0 ]
}
