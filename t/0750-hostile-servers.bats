#!/usr/bin/env bats
# What clients put up with from servers: redirects, oversized or
# trickling answers.  The misbehaving server is t/badserver.py, on
# loopback over plain HTTP, reached through the resolve map.

load helper

setup() {
	common_setup
	RT="$SMIMP_BUILD/t/remotetool"
	export SMIMP_ALLOW_HTTP=example.org
	unset SMIMP_RESOLVE SMIMP_CACERT SMIMP_CONFIG
}

teardown() {
	local p
	for p in bad.pid smimpd.pid; do
		[ -f "$BATS_TEST_TMPDIR/$p" ] && kill "$(cat "$BATS_TEST_TMPDIR/$p")" 2>/dev/null
	done
	return 0
}

# bad MODE [ARG]: t/badserver.py as example.org (any earlier one stops),
# its requests in requests.log.
bad() {
	[ -f bad.pid ] && kill "$(cat bad.pid)" 2>/dev/null
	rm -f port
	python3 "$REPO/t/badserver.py" port "$@" >requests.log 2>&1 &
	echo $! >bad.pid
	for _ in $(seq 50); do [ -s port ] && break; sleep 0.1; done
	PORT=$(cat port)
	export SMIMP_RESOLVE="example.org=127.0.0.1:$PORT"
}

@test "redirects are refused" {
	bad redirect
	run -1 --separate-stderr "$RT" base example.org
	[ "$stderr" = "remotetool: example.org: GET /.well-known/smimp.txt answered HTTP 302: redirects are refused" ]
	[ "$(cat requests.log)" = "GET /.well-known/smimp.txt" ]
}

@test "answers past the cap of their kind are refused" {
	bad big-discovery
	run -1 --separate-stderr "$RT" base example.org
	[ "$stderr" = "remotetool: example.org: refusing an answer over 512 bytes to GET /.well-known/smimp.txt" ]
	bad big-meta
	run -1 --separate-stderr "$RT" meta example.org
	[ "$stderr" = "remotetool: example.org: refusing an answer over 8192 bytes to GET /smimp/v1/meta" ]
	bad big-log
	run -1 --separate-stderr "$RT" lookup alice@example.org
	[ "$stderr" = "remotetool: example.org: refusing an answer over 1048576 bytes to GET /smimp/v1/users/alice@example.org/log" ]
	run -1 --separate-stderr smimp-trust fetch alice@example.org
	[ "$stderr" = "smimp-trust: example.org: refusing an answer over 1048576 bytes to GET /smimp/v1/users/alice@example.org/log" ]
	bad big-listing
	mkid bob bob@example.org
	run -1 --separate-stderr smimp-fetch -i bob.key -d mail
	[ "${stderr_lines[1]}" = "smimp-fetch: example.org: refusing an answer over 1024000 bytes to GET /smimp/v1/mailbox" ]
	[ -z "$(find mail -type f ! -name .smimp-pending)" ]
}

@test "a server that trickles its answer is given up on" {
	bad trickle
	start=$SECONDS
	run -75 --separate-stderr "$RT" base example.org
	[ "$stderr" = "remotetool: http://127.0.0.1:$PORT/.well-known/smimp.txt: Timeout was reached" ]
	[ $((SECONDS - start)) -lt 60 ]
}
