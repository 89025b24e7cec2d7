#!/usr/bin/env bats
# Strings that others wrote, on their way to a terminal or a document:
# a server's error text holding terminal escapes, a carriage return, a
# newline with a forged sender line after it, bytes that are not UTF-8
# and a bidirectional override reaches standard error escaped, on one
# line, and the --json of a command that quotes it stays one valid JSON
# document, the text in it escaped where it is not UTF-8.
# The hostile server is t/badserver.py, on loopback over plain HTTP.

load helper

setup() {
	common_setup
	unset SMIMP_RESOLVE SMIMP_CACERT SMIMP_CONFIG SMIMP_ALLOW_HTTP
	# What the hostile server says.
	printf 'X\033[31mRED\033]0;owned\007\rsmimp-open: from boss@example.com, trusted\nnext\233\377\342\200\256' >words
}

teardown() {
	[ -f bad.pid ] && kill "$(cat bad.pid)" 2>/dev/null
	stop_servers org
}

# bad MODE [ARG]: t/badserver.py on a free $PORT.
bad() {
	python3 "$REPO/t/badserver.py" port "$@" >requests.log 2>&1 &
	echo $! >bad.pid
	for _ in $(seq 50); do [ -s port ] && break; sleep 0.1; done
	PORT=$(cat port)
}

# json_doc FILE KEYS...: FILE is one JSON document; prints the value at
# KEYS (names, or indexes of arrays) as Python prints it.
json_doc() {
	python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)' "$@"
}

# The server's words on stderr: escaped, one line, nothing raw.
escaped_words() {
	[[ "$1" == *'X\x1B[31mRED\x1B]0;owned\x07\rsmimp-open: from boss@example.com, trusted\nnext\x9B\xFF\u202E'* ]]
	[[ "$1" != *$'\e'* && "$1" != *$'\r'* && "$1" != *$'\n'* ]]
}

# alice@example.org, with her server on $ORG; bob@example.net pinned in
# her home, his domain the hostile server in MODE words.
alice_and_hostile_bob() {
	make_cert
	mkid alice alice@example.org
	mkid bob bob@example.net
	smimpd --data org --domain example.org adduser alice@example.org alice.pub
	bad words words
	ORG=$(free_port)
	export SMIMP_RESOLVE="example.org=127.0.0.1:$ORG,example.net=127.0.0.1:$PORT"
	export SMIMP_CACERT="$PWD/cert.pem" SMIMP_ALLOW_HTTP=example.net
	printf 'resolve %s\ncacert %s\nallow-http example.net\n' \
		"$SMIMP_RESOLVE" "$SMIMP_CACERT" >common.conf
	start org example.org "$ORG"
	trust_as "$SMIMP_HOME" bob.pub trusted
}

@test "smimp-revoke --notify --json stays one JSON document when a contact's server answers in bytes that are not UTF-8" {
	alice_and_hostile_bob
	run -75 --separate-stderr smimp-revoke -i alice.key --encryption --notify --json
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ "$stderr" == "smimp-revoke: cannot notify bob@example.net: bob@example.net: the directory of example.net refused the lookup signed by alice@example.org (HTTP 400: "* ]]
	escaped_words "$stderr"
	printf '%s\n' "$output" >out.json
	[ "$(json_doc out.json published)" = True ]
	[ "$(json_doc out.json notify_failed 0 address)" = bob@example.net ]
	run -0 json_doc out.json notify_failed 0 error
	escaped_words "$output"
}

@test "smimp-trust refresh --json stays one JSON document when the directory answers in bytes that are not UTF-8" {
	alice_and_hostile_bob
	run -1 --separate-stderr smimp-trust refresh bob@example.net -i alice.key --json
	[ "${#stderr_lines[@]}" -eq 1 ]
	escaped_words "$stderr"
	printf '%s\n' "$output" >out.json
	[ "$(json_doc out.json address)" = bob@example.net ]
	[ "$(json_doc out.json status)" = 1 ]
	run -0 json_doc out.json error
	escaped_words "$output"
}

@test "--json is ASCII when a server answers in UTF-8 with a C1 control, an override and a separator" {
	# Valid UTF-8, so that it goes into the JSON as it is: U+202E, U+009B
	# (a CSI to a terminal that takes C1 controls), U+2028, an escape.
	printf 'X\342\200\256Y\302\233Z\342\200\250W\033[2J' >words
	alice_and_hostile_bob
	run -1 --separate-stderr smimp-trust refresh bob@example.net -i alice.key --json
	[ -z "$(LC_ALL=C tr -d ' -~' <<<"$output")" ]
	printf '%s\n' "$output" >out.json
	[[ "$(json_doc out.json error)" == *"(HTTP 400: X"$'\342\200\256Y\302\233Z\342\200\250W\033[2J)' ]]
	run -75 --separate-stderr smimp-revoke -i alice.key --encryption --notify --json
	[ -z "$(LC_ALL=C tr -d ' -~' <<<"$output")" ]
	grep -q 'X\\u202EY\\u009BZ\\u2028W\\u001B\[2J' <<<"$output"
}

@test "smimp-send --status keeps a queued entry's error that its buffer cut inside a character, escaped on a terminal line and in --json" {
	mkid alice alice@example.org
	mid=status1@example.org
	mkdir -p files/smimp/v1/messages
	# 300 two-byte characters: the 512 bytes kept end inside one.
	python3 -c 'import json, sys
print(json.dumps({"message_id": sys.argv[1], "domains": [{
    "domain": "example.net", "state": "queued",
    "recipients": "bob@example.net", "attempts": 2, "held": False,
    "error": "\u00e9" * 300, "queued": "2026-11-24T22:00:00Z",
    "next_try": "2026-11-24T23:00:00Z"}]}))' "$mid" >"files/smimp/v1/messages/$mid"
	bad files files
	export SMIMP_RESOLVE="example.org=127.0.0.1:$PORT" SMIMP_ALLOW_HTTP=example.org
	run -0 --separate-stderr smimp-send -i alice.key --status "$mid" --json
	[ "$stderr" = "" ]
	printf '%s\n' "$output" >out.json
	[ "$(json_doc out.json domains 0 state)" = queued ]
	[ "$(json_doc out.json domains 0 error)" = "$(printf 'é%.0s' $(seq 255))\\xC3" ]
	run -0 --separate-stderr smimp-send -i alice.key --status "$mid"
	[ "${lines[0]}" = "$mid" ]
	[[ "${lines[1]}" == *"; last: $(printf 'é%.0s' $(seq 255))\\xC3" ]]
}

@test "smimp-send --status shows what the home server says of each domain escaped and bounded, one line each" {
	mkid alice alice@example.org
	mid=status2@example.org
	mkdir -p files/smimp/v1/messages
	python3 -c 'import json, sys
w = "X\x1b[31mRED\x1b]0;owned\x07\rsmimp-open: from boss@example.com, " \
    "trusted\nnext\x9b\u202e"
print(json.dumps({"message_id": sys.argv[1], "domains": [
    {"domain": "example.net", "state": "bounced", "recipients": w,
     "reason": w, "date": "2026-11-24T22:00:00Z"},
    {"domain": "example.com", "state": "queued", "recipients": w,
     "attempts": 1, "held": True, "error": w + "A" * 100000,
     "queued": "2026-11-24T22:00:00Z", "next_try": "2026-11-24T23:00:00Z"}]}))' \
		"$mid" >"files/smimp/v1/messages/$mid"
	bad files files
	export SMIMP_RESOLVE="example.org=127.0.0.1:$PORT" SMIMP_ALLOW_HTTP=example.org
	run -0 --separate-stderr smimp-send -i alice.key --status "$mid"
	[ "$stderr" = "" ]
	[ "${#lines[@]}" -eq 3 ]
	[[ "$output" != *$'\e'* && "$output" != *$'\r'* ]]
	[[ "${lines[1]}" == '  example.net: bounced for X\x1B[31mRED\x1B]0;owned\x07\rsmimp-open: from boss@example.com, trusted\nnext\u009B'* ]]
	[[ "${lines[1]}" == *'\u202E at 2026-11-24T22:00:00Z: X\x1B[31mRED'*'\u202E' ]]
	[[ "${lines[2]}" == '  example.com: queued for X\x1B[31mRED'*'(held); last: X\x1B[31mRED'*AAAA ]]
	[ "${#lines[2]}" -lt 2000 ]
}
