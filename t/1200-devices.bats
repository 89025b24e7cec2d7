#!/usr/bin/env bats
# Devices of one identity: smimp-keygen --device makes a device's keys
# and its enrollment request; smimp-revoke --add-device, where bob's
# identity key is, checks the request and its code and publishes a
# device-add to bob's server; --remove-device takes it out again;
# smimp-trust show lists a contact's devices; a recovery cuts back a
# device a thief added.

load helper

setup() {
	common_setup
	alice_and_bob_domains
}

teardown() { stop_servers org net; }

as_alice() { SMIMP_HOME="$ALICEHOME" "$@"; }
# device NAME [ADDRESS]: NAME.key and NAME.request for bob (or ADDRESS),
# what keygen printed in NAME.out, the request's code in $code.
device() {
	smimp-keygen --device "$1" -u "${2:-bob@example.net}" -o "$1" \
		--no-passphrase >"$1.out" 2>"$1.err" || return 1
	code=$(sed -n 's/^code: \([A-Z2-7-]*\) .*/\1/p' "$1.out")
}
# printed FILE: what keygen --device prints for the request in FILE,
# with the code line it would show (the code of another request will
# do: it is never read).
printed() { cat "$1"; printf '\ncode: ABCDE-FGHIJ (until %s)\n' "$(expires "$1")"; }
# add NAME [ARGS...]: enroll NAME.request with bob's key and its code.
add() { smimp-revoke -i bob.key --add-device "$1.request" --code "$code" "${@:2}"; }
# changed FIELD <FILE: the request with one byte of FIELD's value
# changed and still well formed: the last character of a name, the
# seconds of a date, the first of a key.
changed() {
	python3 -c '
import sys
field = sys.argv[1].encode() + b": "
out = []
for line in sys.stdin.buffer.read().split(b"\n"):
    if line.startswith(field):
        v = bytearray(line[len(field):])
        i = 0 if field.endswith(b"key: ") else len(v) - (2 if v.endswith(b"Z") else 1)
        # Another character of the same alphabet (base64 for a key).
        a = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        if field.endswith(b"key: "):
            v[i] = a[a.index(v[i]) ^ 1]
        else:
            v[i] = v[i] + 1 if chr(v[i]) not in "z9Z" else v[i] - 1
        line = field + bytes(v)
    out.append(line)
sys.stdout.buffer.write(b"\n".join(out))' "$1"
}
# expires FILE: the expiry a request names.
expires() { sed -n 's/^expires: //p' "$1"; }
# on_tty INPUT CMD...: run CMD on a new terminal, typing INPUT and a
# newline once it asks; what the terminal showed on stdout, CMD's status.
on_tty() {
	python3 - "$@" <<-'EOF'
	import os, pty, sys, time
	pid, fd = pty.fork()
	if pid == 0:
	    os.execvp(sys.argv[2], sys.argv[2:])
	out, sent = b'', False
	while True:
	    try:
	        chunk = os.read(fd, 4096)
	    except OSError:
	        break
	    if not chunk:
	        break
	    out += chunk
	    if not sent and b'Code the device shows: ' in out:
	        os.write(fd, sys.argv[1].encode() + b'\n')
	        sent = True
	_, status = os.waitpid(pid, 0)
	sys.stdout.write(out.decode(errors='replace').replace('\r', ''))
	sys.exit(os.waitstatus_to_exitcode(status))
	EOF
}

@test "keygen --device: the device's key (0600, its own kind), its request in a file and on stdout with its code, nothing on stderr" {
	run -0 --separate-stderr smimp-keygen --device phone -u Bob@Example.NET -o phone --no-passphrase
	[ -z "$stderr" ]
	# bats leaves the empty line out of $lines.
	[ "${#lines[@]}" = 8 ]
	[ "$(printf '%s\n' "${lines[@]:0:7}")" = "$(cat phone.request)" ]
	[ "$(stat -c %a phone.key)" = 600 ]
	[ "$(stat -c %a phone.request)" = 644 ]
	[ ! -e phone.pub ]
	[ ! -e phone.recovery ]
	[ "$(head -3 phone.key)" = "$(printf 'smimp-device-key/1\naddress: bob@example.net\ndevice: phone')" ]
	sed -n 4p phone.key | grep -qE '^signing-secret: [A-Za-z0-9+/]{43}=$'
	sed -n 5p phone.key | grep -qE '^encryption-secret: [A-Za-z0-9+/]{43}=$'
	[ "$(wc -l <phone.key)" = 5 ]
	# The request: its fields in order, expiring in 10 minutes.
	[ "$(sed 's/: .*//' phone.request | tr '\n' ' ')" = "smimp-device-request/1 address device device-signing-key device-encryption-key expires signature " ]
	grep -qx 'address: bob@example.net' phone.request
	grep -qx 'device: phone' phone.request
	left=$(( $(date -d "$(expires phone.request)" +%s) - $(date +%s) ))
	[ "$left" -gt 590 ]
	[ "$left" -le 600 ]
	# An empty line, then the code and until when the request holds.
	[ "$output" = "$(cat phone.request; echo; echo "${lines[7]}")" ]
	[[ "${lines[7]}" =~ ^code:\ [A-Z2-7]{5}-[A-Z2-7]{5}\ \(until\ $(expires phone.request)\)$ ]]
	# The code is the hash of the request, as PROTOCOL.md 3 says.
	code=$(python3 -c '
import hashlib, sys
h = hashlib.blake2b(b"smimp/1 device-code\0" + open("phone.request", "rb").read(), digest_size=32).digest()
b = int.from_bytes(h[:7], "big") >> 6
c = "".join("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[(b >> (5 * (9 - i))) & 31] for i in range(10))
print(c[:5] + "-" + c[5:])')
	[[ "${lines[7]}" == "code: $code "* ]]
	# Nothing is written over, before a passphrase is asked for.
	cp phone.request before
	run -1 --separate-stderr smimp-keygen --device phone -u bob@example.net -o phone
	[ "$stderr" = "smimp-keygen: 'phone.key' already exists: refusing to overwrite a key" ]
	cmp phone.request before
	# Without its code the request is of no use: when standard output
	# fails, neither file is kept, and it can be run again as it was.
	run -1 --separate-stderr bash -c 'smimp-keygen --device tablet \
		-u bob@example.net -o tablet --no-passphrase >/dev/full'
	[ "$stderr" = "smimp-keygen: cannot write to standard output: No space left on device" ]
	[ ! -e tablet.key ]
	[ ! -e tablet.request ]
	run -0 smimp-keygen --device tablet -u bob@example.net -o tablet --no-passphrase
	[ -f tablet.key ]
	# Without -o: the default identity of the new machine.
	run -0 smimp-keygen --device laptop -u bob@example.net --no-passphrase
	[ "$(head -1 "$SMIMP_HOME/identity.key")" = smimp-device-key/1 ]
	[ -f "$SMIMP_HOME/identity.request" ]
}

@test "keygen --device: bad names and conflicting options are usage errors; a passphrase wraps the key like an identity's" {
	for name in Phone -x '' a_b 0123456789abcdef0123456789abcdefg; do
		run -2 --separate-stderr smimp-keygen --device "$name" -u bob@example.net -o x --no-passphrase
		[ "$stderr" = "smimp-keygen: '$name' is no device name: 1 to 32 characters of a-z, 0-9 and '-', not starting with '-' (see 'smimp-keygen --help')" ]
	done
	run -2 --separate-stderr smimp-keygen --device phone -o x --no-passphrase
	[ "$stderr" = "smimp-keygen: an address is needed: -u ADDRESS (see 'smimp-keygen --help')" ]
	run -2 --separate-stderr smimp-keygen --device phone -i bob.key
	[ "$stderr" = "smimp-keygen: --device makes a new device's keys: no -i, --redeem, --fingerprint or --export-age with it (see 'smimp-keygen --help')" ]
	run -2 --separate-stderr smimp-keygen --device phone -u 'bob@@example.net' -o x --no-passphrase
	run -0 ls
	[[ "$output" != *x.key* ]]
	echo 'a passphrase' >pass
	chmod 600 pass
	run -0 --separate-stderr smimp-keygen --device phone -u bob@example.net -o phone --passphrase-file pass
	[ "$(head -1 phone.key)" = "-----BEGIN AGE ENCRYPTED FILE-----" ]
	[ "$(printf '%s\n' "${lines[@]:0:7}")" = "$(cat phone.request)" ]
	[ -z "$stderr" ]
}

@test "a device's key is not the identity's: commands that need the identity key refuse it, the others its log beside it" {
	device phone
	echo hi >msg
	run -1 --separate-stderr smimp-revoke -i phone.key --rotate --no-publish
	[ "$stderr" = "smimp-revoke: 'phone.key' is the key of the device phone of bob@example.net, not an identity key" ]
	run -1 --separate-stderr smimp-trust publish -i phone.key
	[ "$stderr" = "smimp-trust: 'phone.key' is the key of the device phone of bob@example.net, not an identity key" ]
	run -1 --separate-stderr smimp-seal -i phone.key -r alice.pub msg
	[ "$stderr" = "smimp-seal: no identity log beside the device key 'phone.key': 'phone.pub' does not exist (run smimp-fetch -i 'phone.key' to get it)" ]
	# A log of its identity that does not name it yet.
	cp bob.pub phone.pub
	run -1 --separate-stderr smimp-seal -i phone.key -r alice.pub msg
	[ "$stderr" = "smimp-seal: 'phone.key' is the key of no device in the identity log of bob@example.net: enroll it (smimp-revoke --add-device where the identity key is), then run smimp-fetch -i 'phone.key'" ]
}

@test "on a terminal, keygen --device shows the request as a QR code when qrencode is on PATH, and not otherwise" {
	device phone
	mkdir bin
	printf '#!/bin/sh\necho "QR CODE OF $(grep -c . -) LINES, $*"\n' >bin/qrencode
	chmod +x bin/qrencode
	run -0 on_tty '' env PATH="$PWD/bin:$PATH" smimp-keygen --device laptop -u bob@example.net -o laptop --no-passphrase
	[[ "$output" == *"signature: "*"QR CODE OF 7 LINES, -t UTF8 -m 2"* ]]
	run -0 on_tty '' env PATH="$SMIMP_BUILD/bin:/usr/bin:/bin" smimp-keygen --device tablet -u bob@example.net -o tablet --no-passphrase
	[[ "$output" != *"QR CODE"* ]]
	[[ "$output" == *"code: "* ]]
	# Not a terminal: the request and its code, even with qrencode there.
	run -0 --separate-stderr env PATH="$PWD/bin:$PATH" smimp-keygen --device desk -u bob@example.net -o desk --no-passphrase
	[ "$(printf '%s\n' "${lines[@]:0:7}")" = "$(cat desk.request)" ]
	[ "${#lines[@]}" = 8 ]
	[[ "${lines[7]}" == "code: "* ]]
}

@test "add-device with the right code: the device-add is in bob's log and on his server; remove-device takes it out" {
	start net example.net "$NET"
	device phone
	run -0 --separate-stderr add phone
	echo "# $output" >&3
	[ "$output" = "bob@example.net: device phone added, scope full (2 records in 'bob.pub'), published to example.net" ]
	[ -z "$stderr" ]
	served bob@example.net | cmp - bob.pub
	[ "$(grep -A10 '^type: device-add$' bob.pub | sed -n 's/^\(device\|scope\): //p' | tr '\n' ' ')" = "phone full " ]
	grep -qx "$(sed -n 's/^device-signing-key: .*/&/p' phone.request)" bob.pub
	grep -qx "$(sed -n 's/^device-encryption-key: .*/&/p' phone.request)" bob.pub
	grep -q "identity log of bob@example.net: 1 record(s) appended" net.log
	# A send-only CI device, the code typed in lower case without '-'.
	device ci
	code=$(tr 'A-Z' 'a-z' <<<"${code/-/}")
	run -0 --separate-stderr add ci --scope send --json
	[ "$output" = '{"address":"bob@example.net","change":"device-add","records":3,"voided":0,"log":"bob.pub","key_replaced":false,"published":true,"domain":"example.net","device":"ci","scope":"send"}' ]
	served bob@example.net | cmp - bob.pub
	run -0 --separate-stderr smimp-revoke -i bob.key --remove-device ci
	[ "$output" = "bob@example.net: device ci removed (4 records in 'bob.pub'), published to example.net" ]
	served bob@example.net | cmp - bob.pub
	[ "$(tail -9 bob.pub | sed -n 's/^\(type\|device\): //p' | tr '\n' ' ')" = "device-remove ci " ]
	run -1 --separate-stderr smimp-revoke -i bob.key --remove-device ci
	[ "$stderr" = "smimp-revoke: no device 'ci' in the log of bob@example.net" ]
	# Its keys never come back, and its name only with new keys.
	run -3 --separate-stderr add ci
	[ "$stderr" = "smimp-revoke: the keys of the enrollment request are those of the device ci, added before: a device's keys never come back" ]
	rm ci.key ci.request
	device ci
	run -0 add ci --scope receive
	served bob@example.net | cmp - bob.pub
}

@test "what is refused, with nothing published: a wrong code, an expired request, a changed byte, another address, a live name" {
	start net example.net "$NET"
	device phone
	run -0 add phone
	cp bob.pub bob.pub.before
	served bob@example.net >served.before
	unchanged() { cmp bob.pub bob.pub.before && served bob@example.net | cmp - served.before; }
	# A wrong code.
	device tablet
	good=$code
	code=AAAAA-AAAAA
	[ "$good" != "$code" ]
	run -3 --separate-stderr add tablet
	[ "$stderr" = "smimp-revoke: the code does not match the enrollment request of device tablet: it was mistyped, or the request is not the one the device made; nothing added" ]
	unchanged
	code=ABCD
	run -2 --separate-stderr add tablet
	[ "$stderr" = "smimp-revoke: a code is 10 characters of A-Z and 2-7, as smimp-keygen --device shows it (see 'smimp-revoke --help')" ]
	unchanged
	# No code and no terminal.
	run -2 --separate-stderr smimp-revoke -i bob.key --add-device tablet.request </dev/null
	[ "$stderr" = "smimp-revoke: the code the device shows is needed: stdin is not a terminal, so give --code CODE (see 'smimp-revoke --help')" ]
	unchanged
	# An expired request, signed by the device all the same.
	"$SMIMP_BUILD/t/devices" request tablet.key $(( $(date +%s) - 1 )) >old.request
	code=$(python3 -c '
import hashlib
h = hashlib.blake2b(b"smimp/1 device-code\0" + open("old.request", "rb").read(), digest_size=32).digest()
b = int.from_bytes(h[:7], "big") >> 6
print("".join("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[(b >> (5 * (9 - i))) & 31] for i in range(10)))')
	run -3 --separate-stderr smimp-revoke -i bob.key --add-device old.request --code "$code"
	[ "$stderr" = "smimp-revoke: the enrollment request of device tablet expired at $(expires old.request): make a new one with smimp-keygen --device" ]
	unchanged
	"$SMIMP_BUILD/t/devices" request tablet.key $(( $(date +%s) + 3600 )) >ahead.request
	run -3 --separate-stderr smimp-revoke -i bob.key --add-device ahead.request --code AAAAA-AAAAA
	[ "$stderr" = "smimp-revoke: the enrollment request of device tablet expires at $(expires ahead.request), more than 15 minutes ahead: refused (is a clock wrong?)" ]
	unchanged
	# One byte changed: the device name, a key, the expiry.
	code=$good
	for field in device device-signing-key device-encryption-key expires; do
		changed "$field" <tablet.request >changed.request
		[ "$(cmp -l changed.request tablet.request | wc -l)" = 1 ]
		run -3 --separate-stderr smimp-revoke -i bob.key --add-device changed.request --code "$code"
		echo "# $field: $stderr" >&3
		[[ "$stderr" == "smimp-revoke: 'changed.request': the enrollment request of device "table?" of bob@example.net has a bad signature" ]]
		unchanged
	done
	{ cat tablet.request; echo; } >changed.request
	run -3 --separate-stderr smimp-revoke -i bob.key --add-device changed.request --code "$code"
	[ "$stderr" = "smimp-revoke: 'changed.request': malformed enrollment request: bytes after the signature" ]
	# After the printed code line: only its LF, one line, printable.
	for tail in 'code: x\nmore\n' 'code: x' 'code: \tx\n' "code: $(printf '%060d' 0)\n"; do
		{ cat tablet.request; printf "\n$tail"; } >changed.request
		run -3 --separate-stderr smimp-revoke -i bob.key --add-device changed.request --code "$code"
		[ "$stderr" = "smimp-revoke: 'changed.request': malformed enrollment request: after the request, an empty line and one 'code: ' line at most" ]
	done
	unchanged
	head -c -1 tablet.request >changed.request
	run -3 --separate-stderr smimp-revoke -i bob.key --add-device changed.request --code "$code"
	[ "$stderr" = "smimp-revoke: 'changed.request': malformed enrollment request: bad or missing signature" ]
	unchanged
	# A request for alice, offered to bob.
	device other alice@example.org
	run -3 --separate-stderr add other
	[ "$stderr" = "smimp-revoke: the enrollment request is for alice@example.org, not bob@example.net: nothing added" ]
	unchanged
	# A live name, with new keys.
	rm phone.key phone.request
	device phone
	run -1 --separate-stderr add phone
	[ "$stderr" = "smimp-revoke: the device phone of bob@example.net is in the log already (added $(sed -n 's/^date: //p' bob.pub | tail -1)): remove it first, or make the request under another name" ]
	unchanged
	# The right code, at last.
	code=$good
	run -0 add tablet --scope send
	served bob@example.net | cmp - bob.pub
}

@test "add-device takes what keygen --device printed: the request, an empty line and the code line, which it never reads" {
	start net example.net "$NET"
	device phone
	[ "$(sed -n 8p phone.out)" = "" ]
	[[ "$(sed -n 9p phone.out)" == "code: $code (until "*")" ]]
	run -0 --separate-stderr smimp-revoke -i bob.key --add-device phone.out --code "$code"
	[ "$output" = "bob@example.net: device phone added, scope full (2 records in 'bob.pub'), published to example.net" ]
	[ -z "$stderr" ]
	served bob@example.net | cmp - bob.pub
	# The code in the file is not the request's: only --code counts.
	device tablet
	printed tablet.request >tablet.printed
	run -0 --separate-stderr smimp-revoke -i bob.key --add-device - --code "$code" --scope receive <tablet.printed
	[ "$output" = "bob@example.net: device tablet added, scope receive (3 records in 'bob.pub'), published to example.net" ]
	# Nor does a code line stand in for --code.
	device tv
	cp bob.pub before
	run -2 --separate-stderr smimp-revoke -i bob.key --add-device tv.out </dev/null
	[ "$stderr" = "smimp-revoke: the code the device shows is needed: stdin is not a terminal, so give --code CODE (see 'smimp-revoke --help')" ]
	cmp bob.pub before
}

@test "on a terminal, add-device asks for the code and says what asks to be added; a wrong code typed adds nothing" {
	start net example.net "$NET"
	device phone
	cp bob.pub before
	run -3 on_tty AAAAA-AAAAA smimp-revoke -i bob.key --add-device phone.request --scope receive
	[[ "$output" == "The device phone of bob@example.net asks to be added, scope receive."*"Code the device shows: AAAAA-AAAAA"*"smimp-revoke: the code does not match the enrollment request of device phone"* ]]
	cmp bob.pub before
	run -0 on_tty "$code" smimp-revoke -i bob.key --add-device phone.request --scope receive
	[[ "$output" == *"bob@example.net: device phone added, scope receive (2 records in 'bob.pub'), published to example.net"* ]]
	served bob@example.net | cmp - bob.pub
}

@test "usage: one change at a time, --scope and --code only with --add-device, a device's name" {
	run -2 --separate-stderr smimp-revoke -i bob.key --add-device x.request --rotate
	[ "$stderr" = "smimp-revoke: one of --rotate, --encryption, --reason, --recover, --add-device and --remove-device is needed (see 'smimp-revoke --help')" ]
	run -2 --separate-stderr smimp-revoke -i bob.key --rotate --scope send
	[ "$stderr" = "smimp-revoke: --scope and --code go with --add-device (see 'smimp-revoke --help')" ]
	run -2 --separate-stderr smimp-revoke -i bob.key --remove-device x --code ABCDE-FGHIJ
	[ "$stderr" = "smimp-revoke: --scope and --code go with --add-device (see 'smimp-revoke --help')" ]
	run -2 --separate-stderr smimp-revoke -i bob.key --add-device x.request --scope all
	[ "$stderr" = "smimp-revoke: --scope is full, send or receive, not 'all' (see 'smimp-revoke --help')" ]
	run -2 --separate-stderr smimp-revoke -i bob.key --remove-device Phone
	[ "$stderr" = "smimp-revoke: 'Phone' is no device name: 1 to 32 characters of a-z, 0-9 and '-', not starting with '-' (see 'smimp-revoke --help')" ]
	run -1 --separate-stderr smimp-revoke -i bob.key --add-device missing.request --code ABCDE-FGHIJ
	[[ "$stderr" == "smimp-revoke: "*"missing.request"* ]]
}

@test "a log changed elsewhere: the device-add of a stale copy of bob's log is refused by the server, and nothing changes" {
	start net example.net "$NET"
	device phone
	run -0 add phone
	device tablet
	cp bob0.pub stale.pub
	cp bob0.key stale.key
	served bob@example.net >served.before
	run -5 --separate-stderr smimp-revoke -i stale.key --add-device tablet.request --code "$code"
	[[ "$stderr" == "smimp-revoke: the identity log example.net serves for bob@example.net changed elsewhere: it does not end where 'stale.pub' does (HTTP 409"* ]]
	cmp stale.pub bob0.pub
	served bob@example.net | cmp - served.before
}

@test "smimp-trust refresh follows bob's devices and show lists the live ones with scope and date" {
	start net example.net "$NET"
	start org example.org "$ORG"
	device phone
	run -0 add phone
	sleep 1 # so that the two dates differ, and show must print each its own
	device ci
	run -0 add ci --scope send
	device tv
	run -0 add tv --scope receive
	run -0 smimp-revoke -i bob.key --remove-device tv
	run -0 --separate-stderr as_alice smimp-trust refresh -i alice.key bob@example.net
	[ "$output" = "bob@example.net: 3 devices added; 1 device removed; 5 records, 1 before" ]
	run -0 --separate-stderr as_alice smimp-trust refresh -i alice.key --json bob@example.net
	[ "$output" = '{"address":"bob@example.net","records_before":5,"records":5,"changes":[]}' ]
	run -0 --separate-stderr as_alice smimp-trust show bob@example.net
	# A record's date comes before its device line: the date of the first
	# record that names the device.
	added() { awk -v d="device: $1" '/^date: /{w=substr($0,7)} $0==d{print w; exit}' bob.pub; }
	[ "$(grep '^device' <<<"$output")" = "$(printf 'device: phone full %s\ndevice: ci send %s' "$(added phone)" "$(added ci)")" ]
	[ "$(grep -c . <<<"$output")" = 10 ]
}

@test "a thief with a copy of bob's key adds a device; bob recovers, the thief's device is cut back with his records, and alice's client follows" {
	start net example.net "$NET"
	start org example.org "$ORG"
	device phone
	run -0 add phone
	cp bob.pub bob.pub.mine
	# The thief: bob's old key and log, then the current log from the server.
	served bob@example.net >thief.pub
	cp bob0.key thief.key
	device evil
	run -0 --separate-stderr smimp-revoke -i thief.key --add-device evil.request --code "$code" --scope send
	served bob@example.net | cmp - thief.pub
	run -0 --separate-stderr as_alice smimp-trust refresh -i alice.key bob@example.net
	[ "$output" = "bob@example.net: 2 devices added; 3 records, 1 before" ]
	run -0 as_alice smimp-trust show bob@example.net
	grep -q '^device: evil send ' <<<"$output"
	# bob recovers: his own log (with the phone) is what he vouches for.
	sleep 1
	run -0 --separate-stderr smimp-revoke --recover bob.recovery -o bob
	[ "$output" = "bob@example.net: recovered, with new identity and encryption keys (3 records in 'bob.pub'; the 1 record after record 1 cut back, void), published to example.net" ]
	served bob@example.net | cmp - bob.pub
	run -1 grep -q '^device: evil$' bob.pub
	grep -q '^device: phone$' bob.pub
	run -0 --separate-stderr as_alice smimp-trust refresh -i alice.key bob@example.net
	[[ "$output" == "bob@example.net: recovered with its recovery key on "*", 1 record cut back, void; 3 records, 3 before" ]]
	run -0 as_alice smimp-trust show bob@example.net
	grep -q '^device: phone full ' <<<"$output"
	run -1 grep -q '^device: evil' <<<"$output"
	# The thief's key adds nothing more.
	device evil2
	run -1 --separate-stderr smimp-revoke -i thief.key --add-device evil2.request --code "$code"
	[[ "$stderr" == *"HTTP 401"* ]]
	served bob@example.net | cmp - bob.pub
}

@test "the library's limits: device names, 64 live devices, record fields, every byte of a request, codes, device key files" {
	run -0 "$SMIMP_BUILD/t/devices" "$BATS_TEST_TMPDIR"
	[ "${lines[-1]}" = "24 passed, 0 failed" ]
	grep -qx 'ok a 65th live device: refused' <<<"$output"
	grep -qx 'ok every byte of a request flipped: refused' <<<"$output"
}

@test "--notify: bob's contacts are told of a new device and of one removed, and their clients follow" {
	start net example.net "$NET"
	start org example.org "$ORG"
	device phone
	run -0 --separate-stderr env SMIMP_HOME="$BOBHOME" smimp-revoke -i bob.key --add-device phone.request --code "$code" --notify
	[ "${lines[0]}" = "bob@example.net: device phone added, scope full (2 records in 'bob.pub'), published to example.net" ]
	[ "${lines[1]}" = "bob@example.net: notice sent to alice@example.org" ]
	wait_for net.log "relayed .* to example.org"
	run -0 --separate-stderr as_alice smimp-fetch -i alice.key -d mail
	[ "${stderr_lines[0]}" = "smimp-fetch: bob@example.net: 1 device added; 2 records, 1 before (followed from a message)" ]
	run -0 as_alice smimp-open -i alice.key mail/new/*
	[[ "$output" == *"bob@example.net has a new device."* ]]
	run -0 as_alice smimp-trust show bob@example.net
	grep -q '^device: phone full ' <<<"$output"
	run -0 --separate-stderr env SMIMP_HOME="$BOBHOME" smimp-revoke -i bob.key --remove-device phone --notify --json
	[[ "$output" == '{"address":"bob@example.net","change":"device-remove","records":3,'*'"device":"phone","notified":[{"address":"alice@example.org","message_id":'* ]]
}

@test "--no-publish and a request on standard input: the log changes locally only, for the administrator" {
	start net example.net "$NET"
	device phone
	served bob@example.net >served.before
	run -2 --separate-stderr smimp-revoke -i bob.key --add-device - --no-publish <phone.request
	[ "$stderr" = "smimp-revoke: the code the device shows is needed: stdin is not a terminal, so give --code CODE (see 'smimp-revoke --help')" ]
	run -0 --separate-stderr smimp-revoke -i bob.key --add-device - --code "$code" --no-publish <phone.request
	[ "$output" = "bob@example.net: device phone added, scope full (2 records in 'bob.pub'), not published: give 'bob.pub' to the administrator of example.net" ]
	served bob@example.net | cmp - served.before
	grep -qx 'device: phone' bob.pub
}

# forge KEY LOG TYPE NAME [SEED]: a device record after LOG, built from
# the grammar of doc/PROTOCOL.md 2 and signed by the identity key in
# KEY, without the library's checks: what a client that breaks the
# rules would post.  SEED (one byte, in hex) makes the device's keys.
forge() {
	python3 - "$@" <<-'EOF2'
	import base64, hashlib, re, sys, datetime
	from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
	from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
	from cryptography.hazmat.primitives import serialization as s
	key, log, typ, name = sys.argv[1:5]
	raw = lambda k: k.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
	seed = re.search(rb'identity-secret: (\S+)', open(key, 'rb').read()).group(1)
	sk = Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed))
	recs = open(log, 'rb').read().split(b'smimp-identity/1\n')[1:]
	last = b'smimp-identity/1\n' + recs[-1]
	prev = hashlib.blake2b(b'smimp/1 record-hash\0' + last, digest_size=32).digest()
	when = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
	r = 'smimp-identity/1\ntype: %s\naddress: bob@example.net\nseq: %d\nprev: %s\ndate: %s\nsigned-by: identity\ndevice: %s\n' % (
	    typ, len(recs), base64.b64encode(prev).decode(), when, name)
	if typ == 'device-add':
	    b = bytes.fromhex(sys.argv[5]) * 32
	    r += 'scope: full\ndevice-signing-key: %s\ndevice-encryption-key: %s\n' % (
	        base64.b64encode(raw(Ed25519PrivateKey.from_private_bytes(b))).decode(),
	        base64.b64encode(raw(X25519PrivateKey.from_private_bytes(b))).decode())
	sig = sk.sign(b'smimp/1 identity-record\0' + r.encode())
	sys.stdout.write(r + 'signature: ' + base64.b64encode(sig).decode() + '\n')
	EOF2
}

@test "bob's server takes device records built from the grammar alone, and refuses those that break the rules with 400, storing nothing" {
	start net example.net "$NET"
	forge bob.key bob.pub device-add phone 21 >r1
	run -0 post_log bob.key bob@example.net r1
	[[ "$output" == '{"address":"bob@example.net","records":2,'*' 200' ]]
	cat bob.pub r1 >log1
	served bob@example.net | cmp - log1
	# A second device-add of the live name, with other keys.
	forge bob.key log1 device-add phone 22 >r2
	run -0 post_log bob.key bob@example.net r2
	[ "$output" = "{\"error\":\"the records do not extend the log: identity record 2: device 'phone' is in the log already\"} 400" ]
	# A removal of a device that is not there.
	forge bob.key log1 device-remove tablet >r2
	run -0 post_log bob.key bob@example.net r2
	[ "$output" = "{\"error\":\"the records do not extend the log: identity record 2: no device 'tablet' to remove\"} 400" ]
	# The phone removed, then back with its old keys under a new name.
	forge bob.key log1 device-remove phone >r2
	run -0 post_log bob.key bob@example.net r2
	[[ "$output" == *' 200' ]]
	cat log1 r2 >log2
	forge bob.key log2 device-add phone2 21 >r3
	run -0 post_log bob.key bob@example.net r3
	[ "$output" = "{\"error\":\"the records do not extend the log: identity record 3: the keys of device 'phone2' were those of device 'phone' before\"} 400" ]
	# A device-add signed by the device's own key.
	printf 'smimp-secret-key/1\naddress: bob@example.net\nidentity-secret: %s\nencryption-secret: %s\n' \
		"$(python3 -c 'import base64; print(base64.b64encode(bytes([0x21]) * 32).decode())')" \
		"$(python3 -c 'import base64; print(base64.b64encode(bytes([0x21]) * 32).decode())')" >dev.key
	forge dev.key log2 device-add tablet 23 >r3
	run -0 post_log bob.key bob@example.net r3
	[ "$output" = '{"error":"the records do not extend the log: identity record 3: bad signature"} 400' ]
	served bob@example.net | cmp - log2
}

@test "a recovery that cuts back a device's removal says on stderr that the device is live again" {
	start net example.net "$NET"
	device phone
	run -0 add phone
	run -0 smimp-revoke -i bob.key --remove-device phone
	# A thief with a copy of bob's key revokes him; bob keeps 2 records.
	cp bob.key thief.key
	cp bob.pub thief.pub
	run -0 smimp-revoke -i thief.key --reason "gone"
	sleep 1
	run -0 --separate-stderr smimp-revoke --recover bob.recovery -o new --keep 2
	[ "$output" = "bob@example.net: recovered, with new identity and encryption keys (3 records in 'new.pub'; the 2 records after record 1 cut back, void), published to example.net" ]
	[ "$stderr" = "smimp-revoke: warning: the recovery cut back the removal of the device phone: it is live again; remove it anew (--remove-device) if its key may have been stolen" ]
	# Keeping the removal: nothing to say.
	run -0 smimp-revoke -i new.key --remove-device phone
	run -0 smimp-revoke -i new.key --reason "gone again"
	sleep 1
	run -0 --separate-stderr smimp-revoke --recover bob.recovery -o newer --keep 4
	[ -z "$stderr" ]
}
