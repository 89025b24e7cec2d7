#!/usr/bin/env bats
# smimpd behind load balancers (proxy-from): the PROXY protocol header
# of a listed balancer names the client, for the per-address limits and
# the log; nobody else can name one.  With the real haproxy, and with
# headers written by hand (versions 1 and 2, good and bad).

load helper

setup() {
	common_setup
	make_cert
}

teardown() {
	[ -f "$BATS_TEST_TMPDIR/pid" ] && kill -TERM "$(cat "$BATS_TEST_TMPDIR/pid")" 2>/dev/null
	[ -f "$BATS_TEST_TMPDIR/haproxy.pid" ] && kill "$(cat "$BATS_TEST_TMPDIR/haproxy.pid")" 2>/dev/null
	[ -f "$BATS_TEST_TMPDIR/hold.pid" ] && kill "$(cat "$BATS_TEST_TMPDIR/hold.pid")" 2>/dev/null
	sleep 0.2
	return 0
}

# haproxy_up: haproxy in TCP mode on $HAP, passing each connection to
# smimpd on $PORT from 127.0.0.2 with a version 2 header.
haproxy_up() {
	HAP=$(free_port)
	cat >haproxy.cfg <<-EOF
	global
		maxconn 200
	defaults
		mode tcp
		timeout connect 2s
		timeout client 30s
		timeout server 30s
	frontend f
		bind 127.0.0.1:$HAP
		default_backend b
	backend b
		server s 127.0.0.1:$PORT send-proxy-v2 source 127.0.0.2
	EOF
	haproxy -f haproxy.cfg -db >haproxy.log 2>&1 &
	echo $! >haproxy.pid
	server_up "$HAP"
}

# serve_plain: smimpd with p.conf on a free $PORT, plain HTTP, each
# request logged with its client, waited for.
serve_plain() {
	PORT=$(free_port)
	smimpd -d -v -f p.conf --data data --domain example.org \
		--listen "127.0.0.1:$PORT" --plain-http 2>server.log &
	echo $! >pid
	for _ in $(seq 100); do curl -s "http://127.0.0.1:$PORT/smimp/version" >/dev/null && break; sleep 0.1; done
}

# get_from ADDRESS PORT: the status of a GET of the discovery file from
# ADDRESS (a loopback address of this host) to PORT.
get_from() {
	curl -s --cacert cert.pem --interface "$1" -o /dev/null -w '%{http_code}' \
		"https://127.0.0.1:$2/.well-known/smimp.txt"
}

@test "through haproxy each client is itself: its own connections per address, its address in the log" {
	command -v haproxy >/dev/null || skip "no haproxy here (apt-get install haproxy)"
	printf 'connections-per-address 2\nproxy-from 127.0.0.2\n' >p.conf
	start_server -v -f p.conf
	haproxy_up
	# Two connections of 127.0.0.5, held open through haproxy.
	python3 -c '
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile="cert.pem")
held = [ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])),
    source_address=("127.0.0.5", 0)), server_hostname="127.0.0.1") for _ in range(2)]
open("held", "w").close()
time.sleep(30)' "$HAP" &
	echo $! >hold.pid
	for _ in $(seq 100); do [ -e held ] && break; sleep 0.1; done
	[ -e held ]
	# Without the header all three would be haproxy's, one too many.
	[ "$(get_from 127.0.0.6 "$HAP")" = 200 ]
	[ "$(get_from 127.0.0.5 "$HAP")" = 000 ]
	wait_for server.log 'GET /.well-known/smimp.txt 200 from 127.0.0.6 '
	! grep -q ' from 127.0.0.2 ' server.log || false
}

# raw PORT FROM BYTES: BYTES (printf escapes) then a GET, sent from
# address FROM to the plain-HTTP server on PORT; the status line, or
# nothing when the connection is closed unanswered.
raw() {
	python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10,
    source_address=(sys.argv[2], 0))
s.sendall(sys.argv[3].encode("latin-1").decode("unicode_escape").encode("latin-1"))
s.sendall(b"GET /.well-known/smimp.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
got = b""
try:
    while True:
        b = s.recv(4096)
        if not b:
            break
        got += b
except ConnectionResetError:
    pass
print(got.split(b"\r\n")[0].decode())' "$@"
}

@test "a PROXY header is believed from proxy-from only, whole and valid; without one a listed balancer is cut off" {
	printf 'proxy-from 127.0.0.2, 10.0.0.0/8\n' >p.conf
	serve_plain
	# Version 1 and 2 from the balancer: the client they name.
	[ "$(raw "$PORT" 127.0.0.2 'PROXY TCP4 192.0.2.9 127.0.0.1 40000 443\r\n')" = "HTTP/1.1 200 OK" ]
	wait_for server.log ' 200 from 192.0.2.9 '
	v2='\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x24'
	v2+='\x20\x01\x0d\xb8\x00\x07\x00\x08\x00\x00\x00\x00\x00\x00\x00\x01'
	v2+='\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x9c\x40\x01\xbb'
	[ "$(raw "$PORT" 127.0.0.2 "$v2")" = "HTTP/1.1 200 OK" ]
	wait_for server.log ' 200 from 2001:db8:7:8::1 '
	# LOCAL (a health check) and UNKNOWN: the balancer speaks for itself.
	[ "$(raw "$PORT" 127.0.0.2 '\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00')" = "HTTP/1.1 200 OK" ]
	[ "$(raw "$PORT" 127.0.0.2 'PROXY UNKNOWN\r\n')" = "HTTP/1.1 200 OK" ]
	[ "$(grep -c ' 200 from 127.0.0.2 ' server.log)" = 2 ]
	# From anyone else a header is no header: a bad request, its address
	# its own.
	[ "$(raw "$PORT" 127.0.0.3 'PROXY TCP4 192.0.2.66 127.0.0.1 40000 443\r\n')" = "HTTP/1.1 400 Bad Request" ]
	! grep -q '192.0.2.66' server.log || false
	# A listed balancer with no header, a bad one, or half of one that
	# stops: closed unanswered, and said once each.
	for bad in '' 'PROXY TCP4 192.0.2.9 127.0.0.1 40000\r\n' \
	    'PROXY TCP4 300.0.2.9 127.0.0.1 40000 443\r\n' \
	    'PROXY TCP4 192.0.2.9 127.0.0.1 040000 443\r\n' \
	    'PROXY TCP6 192.0.2.9 127.0.0.1 40000 443\r\n' \
	    '\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x04\x01\x02\x03\x04' \
	    '\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c\x01\x02\x03\x04\x01\x02\x03\x04\x00\x01\x00\x02'; do
		[ -z "$(raw "$PORT" 127.0.0.2 "$bad")" ]
	done
	[ "$(grep -c 'proxy 127.0.0.2: no valid PROXY header' server.log)" = 7 ]
	python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), source_address=("127.0.0.2", 0))
s.sendall(b"PROXY TCP4 192.0.2.9 ")
t = time.monotonic()
assert s.recv(1) == b""
assert time.monotonic() - t < 5' "$PORT"
	# The server goes on, after a reload too (the new service takes
	# what this thread accepts), and stops at once when asked.
	[ "$(raw "$PORT" 127.0.0.3 '')" = "HTTP/1.1 200 OK" ]
	kill -HUP "$(cat pid)"
	wait_for server.log 'reload: configuration applied'
	[ "$(raw "$PORT" 127.0.0.2 'PROXY TCP4 192.0.2.10 127.0.0.1 40000 443\r\n')" = "HTTP/1.1 200 OK" ]
	wait_for server.log ' 200 from 192.0.2.10 '
	[ "$(raw "$PORT" 127.0.0.3 '')" = "HTTP/1.1 200 OK" ]
	kill -TERM "$(cat pid)"
	for _ in $(seq 50); do kill -0 "$(cat pid)" 2>/dev/null || break; sleep 0.1; done
	! kill -0 "$(cat pid)" 2>/dev/null || false
}

@test "a balancer's connection slow to send its header holds up no other" {
	printf 'proxy-from 127.0.0.2\n' >p.conf
	serve_plain
	# Three connections from the balancer that send nothing yet, then
	# one with its header: answered at once, not a second after each.
	run -0 python3 -c '
import socket, sys, time
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0)) for _ in range(3)]
time.sleep(0.2)
t = time.monotonic()
s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.2", 0))
s.sendall(b"PROXY TCP4 192.0.2.9 127.0.0.1 40000 443\r\nGET /.well-known/smimp.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
line = s.recv(4096).split(b"\r\n")[0]
print(line.decode(), "%.1f" % (time.monotonic() - t))
# The silent ones are cut off after their second.
for h in held:
    h.settimeout(5)
    assert h.recv(1) == b""' "$PORT"
	[[ "$output" =~ ^HTTP/1\.1\ 200\ OK\ [01]\.[0-9]$ ]]
	wait_for server.log ' 200 from 192.0.2.9 '
	for _ in $(seq 30); do [ "$(grep -c 'proxy 127.0.0.2: no valid PROXY header' server.log)" = 3 ] && break; sleep 0.1; done
	[ "$(grep -c 'proxy 127.0.0.2: no valid PROXY header' server.log)" = 3 ]
}

@test "proxy-from: what is not an address or a network is refused, with its line" {
	for v in nonsense 10.0.0.0/33 ::1/129 '127.0.0.1/8x' '1.2.3.4/'; do
		printf 'domain example.org\nplain-http yes\nproxy-from %s\n' "$v" >p.conf
		run -2 --separate-stderr smimpd -n -f p.conf
		[[ "$stderr" == *"smimpd: p.conf:3: proxy-from: '$v' is not an IP address or ADDRESS/BITS"* ]]
	done
	printf 'domain example.org\nplain-http yes\nproxy-from %s\n' "$(seq -s, -f '10.0.0.%g' 17)" >p.conf
	run -2 --separate-stderr smimpd -n -f p.conf
	[[ "$stderr" == *"proxy-from: more than 16 addresses"* ]]
	printf 'domain example.org\nplain-http yes\nproxy-from ::1, 10.1.0.0/16 192.0.2.1\n' >p.conf
	run -0 smimpd -n -f p.conf
}
