#!/usr/bin/env bats
# smimpd under attack from clients: bodies it must not buffer, requests
# refused from their headers, connections that trickle, floods of
# failures, hostile bytes in the log, the privileges it runs with, and
# the TLS versions it speaks.

load helper

setup() {
	common_setup
	make_cert
	local_users alice bob
}

teardown() {
	[ -f "$BATS_TEST_TMPDIR/pid" ] && kill -TERM "$(cat "$BATS_TEST_TMPDIR/pid")" 2>/dev/null
	[ -f "$BATS_TEST_TMPDIR/bad.pid" ] && kill "$(cat "$BATS_TEST_TMPDIR/bad.pid")" 2>/dev/null
	sleep 0.2
	return 0
}

URL() { echo "https://127.0.0.1:$PORT/smimp"; }

# post_signed KEY PATH FILE [HEADER...]: a signed POST, its status.
post_signed() {
	local h
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" "$1" POST example.org "/smimp$2" "$3" "${@:4}")
	curl -s -o reply -w '%{http_code}' --cacert cert.pem "${h[@]/#/-H}" -T "$3" -X POST "$(URL)$2"
}

# raw REQUEST: send bytes over TLS, print the status line's code and
# how long the answer took (seconds), without sending any body.
raw() {
	python3 - "$PORT" "$1" <<'EOF'
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile="cert.pem")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="localhost")
t = time.time()
s.sendall(sys.argv[2].encode("latin-1"))
s.settimeout(10)
data = b""
try:
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    pass
code = data.split(b" ")[1].decode() if data.startswith(b"HTTP/") else "none"
print(code, "%.1f" % (time.time() - t))
EOF
}

vmhwm_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$(cat pid)/status"; }

@test "64 concurrent uploads of 60 MiB, signed or not, keep smimpd under 80 MiB resident" {
	[[ "$SMIMP_BUILD" != *-san ]] || skip "resident size means nothing under AddressSanitizer"
	# The bodies go to the spool and are refused before the store
	# holds any: the same path whatever the store.
	[ "${SMIMP_TEST_STORE:-sqlite}" = sqlite ] || skip "the uploads' path is the same on every store"
	start_server -f <(echo "mailbox-quota 1000")
	head -c 60M /dev/urandom | smimp-seal -i alice.key -r bob.pub >big.age
	# Signed: every body is read, hashed and spooled, then refused (quota).
	pids=()
	for i in $(seq 64); do
		post_signed alice.key /v1/messages big.age 'Smimp-To: bob@example.org' \
			"Smimp-Message-Id: big$i" >"code$i" &
		pids+=($!)
	done
	# Each one's outcome is in its code file; curl's own status is not.
	wait "${pids[@]}" || true
	[ "$(cat code* | grep -o 507 | wc -l)" -eq 64 ]
	[ "$(vmhwm_kib)" -lt $((80 * 1024)) ]
	# Unsigned, sending the body at once: refused from the headers.
	rm code*
	pids=()
	for i in $(seq 64); do
		curl -s -o /dev/null -w '%{http_code}' -H 'Expect:' --cacert cert.pem \
			-H 'Smimp-To: bob@example.org' -T big.age -X POST "$(URL)/v1/messages" >"code$i" &
		pids+=($!)
	done
	# Each one's outcome is in its code file; curl's own status is not.
	wait "${pids[@]}" || true
	# Each gets 401, or sees the connection closed while still sending.
	[ -z "$(cat code* | tr -d '\n' | sed 's/401//g; s/000//g')" ]
	[ "$(vmhwm_kib)" -lt $((80 * 1024)) ]
	# Nothing was kept: no body stored, no spool file left (once the
	# server has closed the connections the clients dropped).
	for _ in $(seq 50); do [ -z "$(ls data/spool)" ] && break; sleep 0.1; done
	[ -z "$(ls data/spool)" ]
	[ "$(find data/bodies -type f | wc -l)" -eq 0 ]
}

@test "60 signed policy uploads of 4 MiB held open keep smimpd's memory flat: a body past 64 KiB waits on disk" {
	[[ "$SMIMP_BUILD" != *-san ]] || skip "resident size means nothing under AddressSanitizer"
	start_server
	head -c $((4 * 1024 * 1024 - 1)) /dev/zero | tr '\0' x >policy
	for i in $(seq 60); do
		"$SMIMP_BUILD/t/signreq" alice.key POST example.org /smimp/v1/users/alice@example.org/policy policy >"h$i"
	done
	python3 - "$PORT" "$(cat pid)" <<'EOF'
import socket, ssl, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile="cert.pem")
body = open("policy", "rb").read()
conns = []
for i in range(1, 61):
    head = "POST /smimp/v1/users/alice@example.org/policy HTTP/1.1\r\nHost: x\r\n"
    head += "".join(l.rstrip("\n") + "\r\n" for l in open("h%d" % i))
    head += "Content-Length: %d\r\n\r\n" % len(body)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.sendall(head.encode() + body[:-1])	# all but the last byte
    conns.append(s)
time.sleep(1)
rss = [int(l.split()[1]) for l in open("/proc/%s/status" % pid) if l.startswith("VmRSS")][0]
print("resident", rss, "KiB")
sys.exit(0 if rss < 64 * 1024 else 1)
EOF
}

@test "a request is refused from its headers, before any of its body" {
	start_server -f <(echo "max-message 100000")
	# Each declares a body and sends none of it: the answer comes at once.
	run -0 raw $'POST /smimp/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n'
	[[ "$output" == "401 0."* ]]
	run -0 raw $'POST /smimp/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n'
	[[ "$output" == "413 0."* ]]
	run -0 raw $'POST /smimp/v1/nothing HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n'
	[[ "$output" == "404 0."* ]]
	run -0 raw $'GET /smimp/v1/meta HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n'
	[[ "$output" == "400 0."* ]]
	run -0 raw $'POST /smimp/v1/meta HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n'
	[[ "$output" == "405 0."* ]]
	# Signed, but declaring more than max-message.
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key POST example.org /smimp/v1/messages - \
		'Smimp-To: bob@example.org' 'Smimp-Message-Id: m1')
	req="POST /smimp/v1/messages HTTP/1.1"$'\r\n'"Host: x"$'\r\n'"Content-Length: 1000000000"$'\r\n'
	for l in "${h[@]}"; do req+="$l"$'\r\n'; done
	run -0 raw "$req"$'\r\n'
	[[ "$output" == "413 0."* ]]
	# HTTP/1.0 and 1.1 only: a later 1.x is not served as 1.1.
	run -0 raw $'GET /smimp/v1/meta HTTP/1.2\r\nHost: x\r\n\r\n'
	[[ "$output" == "505 "* ]]
	run -0 raw $'POST /smimp/v1/messages HTTP/1.9\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n'
	[[ "$output" == "505 0."* ]]
	# A repeated Content-Length is refused.
	run -0 raw $'POST /smimp/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n'
	[[ "$output" == "400 0."* ]]
	# So is a Content-Length beside a Transfer-Encoding: a proxy in
	# front may frame the body by the other one (request smuggling).
	run -0 raw $'POST /smimp/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
	[[ "$output" == "400 0."* ]]
	run -0 raw $'POST /smimp/v1/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 50\r\n\r\n'
	[[ "$output" == "400 0."* ]]
	# A body that is not the one signed is refused once it is in.
	echo hi | smimp-seal -i alice.key -r bob.pub >m.age
	echo ho | smimp-seal -i alice.key -r bob.pub >other.age
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key POST example.org /smimp/v1/messages m.age \
		'Smimp-To: bob@example.org' 'Smimp-Message-Id: m2')
	run -0 curl -s -w ' %{http_code}' --cacert cert.pem "${h[@]/#/-H}" --data-binary @other.age "$(URL)/v1/messages"
	[ "${output//$'\n'/}" = '{"error":"the body does not match Smimp-Body-Hash"} 400' ]
	# Nothing stored, nothing left in the spool, still serving.
	[ -z "$(ls data/spool)" ]
	run -0 curl -s --cacert cert.pem "$(URL)/version"
}

@test "a submission whose body is not an age file is refused" {
	start_server
	echo 'plain text, not sealed' >plain
	run -0 post_signed alice.key /v1/messages plain 'Smimp-To: bob@example.org' 'Smimp-Message-Id: p1'
	[ "$output" = 400 ]
	[ "$(cat reply)" = '{"error":"the body is not an age file"}' ]
}

@test "the signature covers the query string and every Smimp- header" {
	start_server
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key GET example.org /smimp/v1/mailbox)
	run -0 curl -s -w ' %{http_code}' --cacert cert.pem "${h[@]/#/-H}" "$(URL)/v1/mailbox?all=1"
	[ "${output//$'\n'/}" = '{"error":"bad signature"} 401' ]
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key GET example.org '/smimp/v1/mailbox?all=1')
	run -0 curl -s -w ' %{http_code}' --cacert cert.pem "${h[@]/#/-H}" "$(URL)/v1/mailbox?all=1"
	[ "${output//$'\n'/}" = '[] 200' ]
	# A Smimp- header the signer did not sign.
	echo hi | smimp-seal -i alice.key -r bob.pub >m.age
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key POST example.org /smimp/v1/messages m.age \
		'Smimp-To: bob@example.org' 'Smimp-Message-Id: q1')
	run -0 curl -s -w ' %{http_code}' --cacert cert.pem "${h[@]/#/-H}" -H 'Smimp-Stamp-Date: x' \
		--data-binary @m.age "$(URL)/v1/messages"
	[ "${output//$'\n'/}" = '{"error":"bad signature"} 401' ]
}

@test "a Smimp- header given twice is refused, the signature's own and empty ones too" {
	start_server
	# signed_twice HEADER: bob's signed listing with HEADER added; the
	# answer and its status.
	signed_twice() {
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key GET example.org /smimp/v1/mailbox - \
			'Smimp-X: 1')
		curl -s -w ' %{http_code}' --cacert cert.pem "${h[@]/#/-H}" -H "$1" "$(URL)/v1/mailbox" |
			tr -d '\n'
	}
	# Once each, an empty one too, it is taken.
	run -0 signed_twice 'Smimp-Y;'
	[ "$output" = '[] 200' ]
	# A second signer after the first, which the signature is by: a
	# receiver that took the last would see alice.
	run -0 signed_twice 'smimp-signer: alice@example.org'
	[ "$output" = '{"error":"header smimp-signer repeated"} 401' ]
	for n in Date Nonce Signature Body-Hash; do
		run -0 signed_twice "Smimp-$n: x"
		[ "$output" = "{\"error\":\"header Smimp-$n repeated\"} 401" ]
	done
	# A signed header again, empty (curl sends 'Smimp-X;' as 'Smimp-X:').
	run -0 signed_twice 'Smimp-X;'
	[ "$output" = '{"error":"header Smimp-X repeated"} 401' ]
}

@test "a header's value is taken without the blanks before and after it, as signed" {
	start_server
	echo hi | smimp-seal -i alice.key -r bob.pub >m.age
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key POST example.org /smimp/v1/messages m.age \
		'Smimp-To: bob@example.org' 'Smimp-Message-Id: b1')
	# Each header sent with a tab before its value and blanks after it.
	hdrs=()
	for l in "${h[@]}"; do hdrs+=(-H "${l/: /:$'\t'} "$'\t'); done
	run -0 curl -s -w ' %{http_code}' --cacert cert.pem "${hdrs[@]}" \
		--data-binary @m.age "$(URL)/v1/messages"
	[ "${output//$'\n'/}" = '{"message_id":"b1","recipients":1} 201' ]
}

# unsplittable ARG...: signreq with ARGs refuses to sign, exit 1.
unsplittable() {
	run -1 --separate-stderr "$SMIMP_BUILD/t/signreq" bob.key "$@"
	[ "$stderr" = "signreq: a line break in a signed field" ]
	[ -z "$output" ]
}

@test "a field that would split a line of the signed bytes is not signed" {
	# A line break in a field, or a colon in a header's name, could make
	# one request's signed bytes read as another's.
	unsplittable GET example.org $'/smimp/v1/mailbox\nx'
	unsplittable GET $'example.org\n' /smimp/v1/mailbox
	unsplittable $'GET\nX' example.org /smimp/v1/mailbox
	unsplittable POST example.org /smimp/v1/messages - $'Smimp-To\nx: y'
	unsplittable POST example.org /smimp/v1/messages - $'Smimp-To: a\nb'
	# The same without the line break is signed.
	run -0 "$SMIMP_BUILD/t/signreq" bob.key POST example.org /smimp/v1/messages - 'Smimp-To: a'
	[ "${#lines[@]}" -eq 6 ]
}

@test "registration checks the invitation before it reads the identity log" {
	start_server
	head -c 100000 /dev/urandom >junk
	run -0 curl -s -w ' %{http_code}' --cacert cert.pem -H 'Smimp-Invite: nosuchtoken' -H 'Expect: 100-continue' \
		--data-binary @junk "$(URL)/v1/register"
	[ "${output//$'\n'/}" = '{"error":"invalid or expired invitation"} 403' ]
	# A token too long to be one is no invitation either; an empty one is
	# none at all.
	run -0 curl -s -w ' %{http_code}' --cacert cert.pem -H "Smimp-Invite: $(head -c 129 /dev/zero | tr '\0' A)" \
		--data-binary @junk "$(URL)/v1/register"
	[ "${output//$'\n'/}" = '{"error":"invalid or expired invitation"} 403' ]
	run -0 curl -s -w ' %{http_code}' --cacert cert.pem -H 'Smimp-Invite;' --data-binary @junk "$(URL)/v1/register"
	[ "${output//$'\n'/}" = '{"error":"needs Smimp-Invite and an identity log"} 400' ]
}

@test "1,000 connections trickling headers keep no submission waiting, and are cut at their deadline" {
	start_server -f <(printf 'header-timeout 3\nconnections-per-address 16\n')
	echo hi | smimp-seal -i alice.key -r bob.pub >m.age
	export SMIMP_RESOLVE="example.org=127.0.0.1:$PORT" SMIMP_CACERT="$PWD/cert.pem"
	# 1,000 TLS connections from 127.0.0.2 to 127.0.0.101, ten from each,
	# each sending a byte of its headers every half second.
	python3 - "$PORT" >trickle.out 2>&1 <<'EOF' &
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile="cert.pem")
conns = []
for i in range(1000):
    raw = socket.socket()
    raw.bind(("127.0.0.%d" % (2 + i // 10), 0))
    raw.connect(("127.0.0.1", int(sys.argv[1])))
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    s.sendall(b"POST /smimp/v1/messages HTTP/1.1\r\n")
    conns.append(s)
print("open", len(conns), flush=True)
end = time.time() + 8
cut = 0
while time.time() < end and conns:
    alive = []
    for s in conns:
        try:
            s.sendall(b"X")
            alive.append(s)
        except OSError:
            cut += 1
    conns = alive
    time.sleep(0.5)
print("cut", cut, "alive", len(conns), flush=True)
EOF
	tpid=$!
	for _ in $(seq 100); do grep -q '^open 1000' trickle.out && break; sleep 0.1; done
	grep -q '^open 1000' trickle.out
	# A submission meanwhile goes through at once.
	limit=1
	[[ "$SMIMP_BUILD" != *-san ]] || limit=5
	start=$(date +%s%N)
	run -0 --separate-stderr timeout 10 smimp-send -i alice.key m.age
	[ $(( ($(date +%s%N) - start) / 1000000 )) -lt $((limit * 1000)) ]
	# Past header-timeout every trickling connection has been cut.
	wait "$tpid"
	[ "$(tail -1 trickle.out)" = "cut 1000 alive 0" ]
}

@test "failures are limited per source address; junk in a peer's name costs that peer nothing" {
	start_server -f <(printf 'rate-failures 5\nrate-domain 3\n')
	# Six requests with bad signatures from 127.0.0.2: the sixth is refused unread.
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key GET example.org /smimp/v1/mailbox | sed 's/^Smimp-Signer: bob@/Smimp-Signer: alice@/')
	for i in $(seq 5); do
		run -0 curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 --cacert cert.pem \
			"${h[@]/#/-H}" "$(URL)/v1/mailbox"
		[ "$output" = 401 ]
	done
	run -0 curl -s -D - -o /dev/null --interface 127.0.0.2 --cacert cert.pem "${h[@]/#/-H}" "$(URL)/v1/mailbox"
	[[ "$output" == "HTTP/1.1 429"* ]]
	grep -qi '^retry-after: [0-9]' <<<"$output"
	# Another address is not affected.
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key GET example.org /smimp/v1/mailbox)
	run -0 curl -s -w ' %{http_code}' --cacert cert.pem "${h[@]/#/-H}" "$(URL)/v1/mailbox"
	[ "${output//$'\n'/}" = '[] 200' ]
	# Junk claiming to come from example.net's server, from many
	# addresses, never counts against example.net's own rate.
	for i in $(seq 3 12); do
		run -0 curl -s -o /dev/null -w '%{http_code}' --interface "127.0.0.$i" --cacert cert.pem \
			-H 'Smimp-Signer: server:example.net' -H 'Smimp-Date: 2026-01-01T00:00:00Z' \
			-H 'Smimp-Nonce: AAAAAAAAAAAAAAAAAAAAAA' -H "Smimp-Signature: $(head -c 64 /dev/zero | base64 -w0)" \
			-H "Smimp-Body-Hash: $(printf '0%.0s' $(seq 64))" -X POST "$(URL)/v1/deliver"
		[ "$output" != 429 ]
	done
}

@test "a request in the name of a domain that cannot be reached: answered before its body, and counted as a failure" {
	dead=$(free_port)
	start_server -f <(printf 'rate-failures 4\nresolve dead.test=127.0.0.1:%s\n' "$dead")
	junk="Smimp-Signer: server:dead.test"$'\r\n'"Smimp-Date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"$'\r\n'
	junk+="Smimp-Nonce: AAAAAAAAAAAAAAAAAAAAAA"$'\r\n'"Smimp-Body-Hash: $(printf '0%.0s' $(seq 64))"$'\r\n'
	junk+="Smimp-Signature: $(head -c 64 /dev/zero | base64 -w0)"$'\r\n'
	# It declares 50 MB and sends none of it: the 503 comes at once,
	# not after a body it would have to wait for.
	run -0 raw "POST /smimp/v1/deliver HTTP/1.1"$'\r\n'"Host: x"$'\r\n'"Content-Length: 50000000"$'\r\n'"$junk"$'\r\n'
	[[ "$output" == "503 "[0-4].* ]]
	grep -q "request from dead.test: .*127.0.0.1:$dead" server.log
	for i in 2 3 4; do
		run -0 raw "POST /smimp/v1/deliver HTTP/1.1"$'\r\n'"Host: x"$'\r\n'"Content-Length: 0"$'\r\n'"$junk"$'\r\n'
		[[ "$output" == "503 "* ]]
	done
	# Each counted against the source: the fifth is refused unread.
	run -0 raw "POST /smimp/v1/deliver HTTP/1.1"$'\r\n'"Host: x"$'\r\n'"Content-Length: 0"$'\r\n'"$junk"$'\r\n'
	[[ "$output" == "429 "* ]]
}

@test "what clients send reaches the log escaped" {
	start_server -v
	run -0 raw $'GET /smimp/\x1b]0;owned\x07\x1b[2J HTTP/1.1\r\nHost: x\r\n\r\n'
	sleep 0.2
	! grep -q $'\x1b' server.log || false
	! grep -q $'\x07' server.log || false
	grep -q '\\x1b\]0;owned\\x07' server.log
}

@test "what libmicrohttpd says reaches the log as smimpd's own lines, at most 10 a second: handshakes that fail cannot flood it" {
	start_server
	# garbage N: N connections that each send a TLS record out of turn.
	garbage() {
		python3 - "$PORT" "$1" <<'EOF'
import socket, sys, time
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1])))
         for _ in range(int(sys.argv[2]))]
for s in socks:
    s.sendall(b"\x16\x03\x01\x00\x05hello")
time.sleep(0.5)
for s in socks:
    s.close()
EOF
	}
	garbage 40
	sleep 1.1
	garbage 1
	sleep 0.3
	# Every line is one of smimpd's: a date, the name, escaped.
	! grep -qv '^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T[0-9:]*Z smimpd: ' server.log || false
	n=$(grep -c 'smimpd: warning: libmicrohttpd: Error: received handshake message out of context.$' server.log)
	[ "$n" -ge 2 ] && [ "$n" -le 21 ]
	grep -q 'smimpd: warning: libmicrohttpd: [0-9]* more lines not logged$' server.log
}

@test "started as root with a user setting, smimpd runs as that user; its files are private" {
	[ "$(id -u)" -eq 0 ] || skip "needs root"
	id smimp-test >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin smimp-test
	chown -R smimp-test data
	d=$BATS_TEST_TMPDIR
	while [ "$d" != / ]; do chmod o+x "$d"; d=$(dirname "$d"); done
	chmod 644 cert.pem
	start_server -f <(echo "user smimp-test")
	[ "$(awk '/^Uid:/ { print $2 }' "/proc/$(cat pid)/status")" = "$(id -u smimp-test)" ]
	# The key was read as root, before the drop.
	[ "$(stat -c %a key.pem)" = 600 ]
	[ "${SMIMP_TEST_STORE:-sqlite}" != sqlite ] || [ "$(stat -c %a data/smimpd.db)" = 600 ]
	[ "$(stat -c %a data/server.key)" = 600 ]
	echo hi | SMIMP_RESOLVE="example.org=127.0.0.1:$PORT" SMIMP_CACERT="$PWD/cert.pem" \
		smimp-seal -i alice.key -r bob.pub >m.age
	SMIMP_RESOLVE="example.org=127.0.0.1:$PORT" SMIMP_CACERT="$PWD/cert.pem" smimp-send -i alice.key m.age
	[ -z "$(find data -type f -perm /077)" ]
	# An unknown user is a clear error.
	run -2 --separate-stderr smimpd -d --data data --domain example.org --listen "127.0.0.1:$(free_port)" \
		--cert cert.pem --key key.pem -f <(echo "user no-such-user-here")
	[ "$stderr" = "smimpd: no such user 'no-such-user-here'" ]
}

@test "smimpd refuses a TLS 1.0 or 1.1 handshake from a client willing to use them" {
	start_server
	# handshake PORT FLAG: openssl s_client offering only the version
	# FLAG names, at security level 0 so that this OpenSSL offers TLS
	# 1.0 and 1.1 at all.
	handshake() {
		openssl s_client -brief -connect "127.0.0.1:$1" "$2" -cipher DEFAULT@SECLEVEL=0 \
			-CAfile cert.pem -verify_return_error </dev/null 2>&1
	}
	for v in 1 1.1; do
		flag=-tls${v/./_}
		# The client can speak it: a server that speaks nothing else
		# (t/badserver.py) completes the handshake with it.
		rm -f port
		BADSERVER_TLS=$v python3 "$REPO/t/badserver.py" port none >/dev/null 2>&1 &
		echo $! >bad.pid
		for _ in $(seq 50); do [ -s port ] && break; sleep 0.1; done
		run handshake "$(cat port)" "$flag"
		kill "$(cat bad.pid)"
		rm bad.pid
		if [ "$status" -ne 0 ] || ! grep -qx "Protocol version: TLSv$v" <<<"$output"; then
			skip "this openssl cannot offer TLS $v even at security level 0"
		fi
		# smimpd does not.
		run -1 handshake "$PORT" "$flag"
		! grep -q "^CONNECTION ESTABLISHED" <<<"$output" || false
		! grep -q "^Protocol version:" <<<"$output" || false
	done
	run -0 handshake "$PORT" -tls1_2
	grep -qx "Protocol version: TLSv1.2" <<<"$output"
	run -0 handshake "$PORT" -tls1_3
	grep -qx "Protocol version: TLSv1.3" <<<"$output"
	run -0 curl -s --cacert cert.pem "$(URL)/version"
}

@test "connections are limited per source address, and other addresses are still served" {
	start_server -f <(echo "connections-per-address 4")
	# From 127.0.0.2: four TLS connections held open, then a fifth.
	python3 - "$PORT" >conns.out 2>&1 <<'EOF' &
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile="cert.pem")
def conn():
    raw = socket.socket()
    raw.bind(("127.0.0.2", 0))
    raw.connect(("127.0.0.1", int(sys.argv[1])))
    return ctx.wrap_socket(raw, server_hostname="localhost")
held = [conn() for _ in range(4)]
print("held", len(held), flush=True)
try:
    s = conn()
    s.settimeout(5)
    s.sendall(b"GET /smimp/version HTTP/1.1\r\nHost: x\r\n\r\n")
    print("fifth", s.recv(100).split(b"\r\n")[0].decode() or "closed", flush=True)
except (OSError, ssl.SSLError):
    print("fifth refused", flush=True)
time.sleep(3)
EOF
	cpid=$!
	for _ in $(seq 50); do grep -q '^fifth' conns.out && break; sleep 0.1; done
	[ "$(cat conns.out)" = "$(printf 'held 4\nfifth refused')" ]
	# Another address meanwhile gets its answer.
	run -0 curl -s --interface 127.0.0.3 --cacert cert.pem -w ' %{http_code}' "$(URL)/version"
	[[ "$output" == *' 200' ]]
	wait "$cpid"
	# Once they are closed, 127.0.0.2 is served again.
	for _ in $(seq 20); do
		code=$(curl -s -o /dev/null --interface 127.0.0.2 --cacert cert.pem -w '%{http_code}' \
			"$(URL)/version") && break
		sleep 0.1
	done
	[ "$code" = 200 ]
}

@test "under a low limit of open files fewer connections are taken: clients who hold them all leave an upload its spool file" {
	head -c 100000 /dev/urandom | smimp-seal -i alice.key -r bob.pub >big.age
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key POST example.org /smimp/v1/messages big.age \
		'Smimp-To: bob@example.org' 'Smimp-Message-Id: held1')
	PORT=$(free_port)
	# 300 open files: 160 kept besides (the default 16 workers and 8
	# relay workers), two for each connection.
	(
		ulimit -n 300
		# On PostgreSQL smimpd is the suite's function, which takes
		# the subshell's place itself (with the store's URI).
		declare -F smimpd >/dev/null || smimpd() { exec "$SMIMP_BUILD/bin/smimpd" "$@"; }
		smimpd -d --data data --domain example.org --listen "127.0.0.1:$PORT" \
			--cert cert.pem --key key.pem 2>server.log
	) &
	echo $! >pid
	server_up "$PORT"
	grep -q ' smimpd: warning: the limit of 300 open files leaves room for 70 connections, not 4096$' server.log
	# A connection made first (a request answered, it waits for the
	# next); then 300 from five other addresses, as many as are taken
	# held open; then an upload on the first one, whose body (past 64
	# KiB) goes to a spool file.
	run -0 python3 - "$PORT" big.age "${h[@]}" <<'EOF'
import socket, ssl, sys, threading
ctx = ssl.create_default_context(cafile="cert.pem")
def conn(addr, wait):
    raw = socket.socket()
    raw.bind((addr, 0))
    raw.settimeout(wait)
    raw.connect(("127.0.0.1", int(sys.argv[1])))
    return ctx.wrap_socket(raw, server_hostname="localhost")
mine = conn("127.0.0.1", 5)
# The flood's handshakes may take a while on a busy machine.
mine.settimeout(60)
mine.sendall(b"GET /smimp/version HTTP/1.1\r\nHost: x\r\n\r\n")
got = b""
while b"software" not in got:
    got += mine.recv(1000)
held = []
def hold(i):
    try:
        s = conn("127.0.0.%d" % (2 + i % 5), 3)
        s.sendall(b"GET /smimp/version HTTP/1.1\r\nHost: x\r\n")
        held.append(s)
    except (OSError, ssl.SSLError):
        pass
flood = [threading.Thread(target=hold, args=(i,)) for i in range(300)]
for t in flood:
    t.start()
for t in flood:
    t.join()
body = open(sys.argv[2], "rb").read()
head = "POST /smimp/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % len(body)
mine.sendall((head + "".join(h + "\r\n" for h in sys.argv[3:]) + "\r\n").encode() + body)
print(mine.recv(100).split(b"\r\n")[0].decode())
EOF
	[ "$output" = "HTTP/1.1 201 Created" ]
	! grep -q 'Too many open files' server.log || false
}

@test "sources: an IPv4 address is one, an IPv6 address counts by its /64, a mapped one as IPv4; the count table holds; a domain's site" {
	run -0 "$SMIMP_BUILD/t/sourcetool" name 192.0.2.7 2001:db8:1:2:aaaa:bbbb:cccc:dddd \
		2001:db8:1:2::1 2001:db8:1:3::1 ::ffff:10.1.2.3
	[ "$output" = "$(printf '%s\n' 192.0.2.7 2001:db8:1:2::/64 2001:db8:1:2::/64 \
		2001:db8:1:3::/64 10.1.2.3)" ]
	run -1 "$SMIMP_BUILD/t/sourcetool" name example.org
	# One carrying an IPv4 address is that address: behind a NAT64 or SIIT
	# translator, 64:ff9b::/64 is every IPv4 client; 6to4 gives one IPv4
	# address a /48; Teredo's /64 is every client of one Teredo server.
	run -0 "$SMIMP_BUILD/t/sourcetool" name 64:ff9b::192.0.2.1 64:ff9b::198.51.100.7 \
		2002:c000:201:1::1 2002:c000:201:ffff::2 2001:0:4136:e378:8000:63bf:3fff:fdd2 \
		2001:0:4136:e378:8000:63bf:3fff:fdd3 64:ff9b:1::1
	[ "$output" = "$(printf '%s\n' 192.0.2.1 198.51.100.7 192.0.2.1 192.0.2.1 \
		192.0.2.45 192.0.2.44 64:ff9b:1::/64)" ]
	# A domain's site, as per-domain limits count it (the Public Suffix List).
	run -0 "$SMIMP_BUILD/t/sourcetool" site a.evil.test b.b.evil.test evil.test \
		a.example.co.uk co.uk a.github.io b.github.io
	[ "$output" = "$(printf '%s\n' evil.test evil.test evil.test example.co.uk co.uk \
		a.github.io b.github.io)" ]
	# Thousands of sources opening and closing: every count right at every step.
	run -0 "$SMIMP_BUILD/t/sourcetool" table 40000 7
	[ "$output" = "ok 40000" ]
	run -0 "$SMIMP_BUILD/t/sourcetool" table 40000 12345
}

@test "an IPv6 client's /64 is one source: connections and failures from its addresses count together" {
	# A network namespace of the test's own, with two /64s on its loopback.
	{ unshare -n true && command -v ip; } >/dev/null 2>&1 ||
		skip "needs a network namespace (root) and ip (iproute2)"
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key GET example.org /smimp/v1/mailbox | sed 's/^Smimp-Signer: bob@/Smimp-Signer: alice@/')
	printf '%s\n' "${h[@]}" >badsig
	PORT=$(free_port)
	cat >ns.sh <<'EOF'
set -eu
# Every address of the two /64s is this host's, to bind to.
{
	ip link set lo up &&
	ip -6 addr add fd00:a:b:c::1/64 dev lo nodad &&
	ip -6 addr add fd00:a:b:d::1/64 dev lo nodad &&
	ip -6 route add local fd00:a:b:c::/64 dev lo table local &&
	ip -6 route add local fd00:a:b:d::/64 dev lo table local &&
	echo 1 >/proc/sys/net/ipv6/ip_nonlocal_bind
} 2>/dev/null || { echo "no IPv6 here"; exit 0; }
smimpd -d --data data --domain example.org --listen "[fd00:a:b:c::1]:$PORT" \
	--cert cert.pem --key key.pem -f <(printf 'connections-per-address 4\nrate-failures 3\n') \
	2>server.log &
srv=$!
trap 'kill $srv' EXIT
get() {	# get SOURCE [HEADERS]: the status of GET /v1/mailbox from SOURCE
	local h=()
	[ $# -gt 1 ] && mapfile -t h <"$2"
	curl -s -o /dev/null -w '%{http_code}' --interface "$1" --cacert cert.pem \
		--resolve "localhost:$PORT:[fd00:a:b:c::1]" "${h[@]/#/-H}" \
		"https://localhost:$PORT/smimp/v1/mailbox" || true
}
for _ in $(seq 50); do [ "$(get fd00:a:b:d::1)" = 401 ] && break; sleep 0.1; done
python3 - "$PORT" <<'PY'
import socket, ssl, sys
ctx = ssl.create_default_context(cafile="cert.pem")
def conn(src):
    raw = socket.socket(socket.AF_INET6)
    raw.bind((src, 0))
    raw.connect(("fd00:a:b:c::1", int(sys.argv[1])))
    return ctx.wrap_socket(raw, server_hostname="localhost")
# Four from four addresses of one /64, held; a fifth from a fifth address.
held = [conn("fd00:a:b:c::%x" % (0x10 + i)) for i in range(4)]
print("held", len(held))
try:
    s = conn("fd00:a:b:c::14")
    s.settimeout(5)
    s.sendall(b"GET /smimp/version HTTP/1.1\r\nHost: x\r\n\r\n")
    print("fifth", s.recv(100).split(b"\r\n")[0].decode() or "closed")
except (OSError, ssl.SSLError):
    print("fifth refused")
# The other /64 meanwhile.
s = conn("fd00:a:b:d::2")
s.sendall(b"GET /smimp/version HTTP/1.1\r\nHost: x\r\n\r\n")
print("other", s.recv(100).split(b"\r\n")[0].decode())
sys.stdout.flush()
PY
# Failures: three from three addresses of the /64, then a fourth address.
for a in 20 21 22 23; do echo "failure from ::$a: $(get fd00:a:b:c::$a badsig)"; done
echo "failure from the other /64: $(get fd00:a:b:d::3 badsig)"
EOF
	run -0 env PORT="$PORT" unshare -n bash ns.sh
	[ "$output" != "no IPv6 here" ] || skip "no IPv6 in a network namespace here"
	cat server.log
	[ "$output" = "$(printf '%s\n' 'held 4' 'fifth refused' 'other HTTP/1.1 200 OK' \
		'failure from ::20: 401' 'failure from ::21: 401' 'failure from ::22: 401' \
		'failure from ::23: 429' 'failure from the other /64: 401')" ]
}

@test "a signed upload that trickles its body is cut at request-timeout, nothing kept" {
	start_server -f <(printf 'request-timeout 3\nheader-timeout 10\n')
	head -c 100000 /dev/urandom | smimp-seal -i alice.key -r bob.pub >m.age
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key POST example.org /smimp/v1/messages m.age \
		'Smimp-To: bob@example.org' 'Smimp-Message-Id: slow1')
	printf '%s\n' "${h[@]}" >headers
	# Headers at once, then 100 bytes of the body every 0.2 s: never idle,
	# and the body would take 200 s.
	run -0 python3 - "$PORT" <<'EOF'
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile="cert.pem")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="localhost")
body = open("m.age", "rb").read()
req = "POST /smimp/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % len(body)
for line in open("headers"):
    req += line.rstrip("\n") + "\r\n"
s.sendall((req + "\r\n").encode())
t = time.time()
sent = 0
try:
    while sent < len(body) and time.time() - t < 30:
        s.sendall(body[sent:sent + 100])
        sent += 100
        time.sleep(0.2)
    print("sent the whole body")
except OSError:
    print("cut after %d s" % round(time.time() - t))
EOF
	[[ "$output" =~ ^cut\ after\ [2-5]\ s$ ]]
	# Nothing was stored, nothing is left in the spool.
	for _ in $(seq 50); do [ -z "$(ls data/spool)" ] && break; sleep 0.1; done
	[ -z "$(ls data/spool)" ]
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key GET example.org /smimp/v1/mailbox)
	run -0 curl -s --cacert cert.pem "${h[@]/#/-H}" "$(URL)/v1/mailbox"
	[ "$output" = '[]' ]
}

@test "-v adds each request's source, signer and size to the log" {
	start_server
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key GET example.org /smimp/v1/mailbox)
	run -0 curl -s --cacert cert.pem "${h[@]/#/-H}" "$(URL)/v1/mailbox"
	kill -TERM "$(cat pid)"
	for _ in $(seq 150); do kill -0 "$(cat pid)" 2>/dev/null || break; sleep 0.1; done
	grep -q ' smimpd: GET /smimp/v1/mailbox 200$' server.log
	! grep -q 'signer' server.log || false
	start_server -v
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key GET example.org /smimp/v1/mailbox)
	run -0 curl -s --cacert cert.pem "${h[@]/#/-H}" "$(URL)/v1/mailbox"
	sleep 0.2
	grep -q ' smimpd: GET /smimp/v1/mailbox 200 from 127.0.0.1 signer bob@example.org (0 bytes in)$' server.log
}
