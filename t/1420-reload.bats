#!/usr/bin/env bats
# SIGHUP: the log reopened where it is configured (logrotate moves it
# first), the configuration read again and what may change at run time
# taken (limits, log level, certificate and key, settings for other
# servers), what may not (listen, store, threads...) kept with a line
# saying so, and a configuration with faults refused whole.

load helper

setup() {
	common_setup
	make_cert
	PORT=$(free_port)
	MET=$(free_port)
}

teardown() {
	[ -f pid ] && kill -TERM "$(cat pid)" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$(cat pid 2>/dev/null)" 2>/dev/null || break; sleep 0.1; done
	return 0
}

# serve: smimpd with the settings in smimpd.conf, its log in smimpd.log
# when the file says so (else in stderr.log).
serve() {
	smimpd -d -f smimpd.conf --data data --domain example.org \
		--listen "127.0.0.1:$PORT" "$@" 2>stderr.log &
	echo $! >pid
	server_up "$PORT"
}

# hup PATTERN: SIGHUP, then wait until the log (smimpd.log) says PATTERN.
hup() {
	kill -HUP "$(cat pid)"
	wait_for smimpd.log "$1"
}

get() { curl -s -o /dev/null -w '%{http_code}' --cacert cert.pem "${@:2}" "https://127.0.0.1:$PORT$1"; }
meta_max() { curl -s --cacert cert.pem "https://127.0.0.1:$PORT/smimp/v1/meta" | python3 -c 'import json,sys; print(json.load(sys.stdin)["limits"]["max_message_bytes"])'; }
subject() { openssl s_client -connect "127.0.0.1:$PORT" </dev/null 2>/dev/null | openssl x509 -noout -subject; }

# conf [LINES...]: smimpd.conf with the certificate, the log and LINES.
conf() {
	printf 'cert %s\nkey %s\nlog %s\n' "$PWD/cert.pem" "$PWD/key.pem" "$PWD/smimpd.log" >smimpd.conf
	printf '%s\n' "$@" >>smimpd.conf
}

@test "SIGHUP reopens the log: after logrotate moved it, new lines go to the new file" {
	conf
	serve
	[ "$(get /smimp/version)" = 200 ]
	wait_for smimpd.log 'GET /smimp/version 200'
	[ "$(stat -c %a smimpd.log)" = 600 ]
	[ ! -s stderr.log ]
	mv smimpd.log smimpd.log.1
	[ "$(get /smimp/no-such-1)" = 404 ]
	hup 'reload: configuration applied'
	[ "$(get /smimp/no-such-2)" = 404 ]
	wait_for smimpd.log 'GET /smimp/no-such-2 404'
	# Before the signal: the old file; from it on: the new one.
	grep -q 'GET /smimp/no-such-1 404' smimpd.log.1
	! grep -q 'no-such-1' smimpd.log || false
	! grep -q 'no-such-2\|reload' smimpd.log.1 || false
	grep -q 'reload: log reopened' smimpd.log
	[ "$(stat -c %a smimpd.log)" = 600 ]
	[ ! -s stderr.log ]
}

@test "a FIFO in the log's place, or a log another user made, is refused at once" {
	conf
	mkfifo -m 666 smimpd.log
	# Opened for writing, a FIFO would wait for a reader for ever.
	run -1 --separate-stderr timeout 10 smimpd -d -f smimpd.conf --data data \
		--domain example.org --listen "127.0.0.1:$PORT"
	[ "$stderr" = "smimpd: cannot open the log '$PWD/smimpd.log': No such device or address" ]
	rm smimpd.log
	[ "$(id -u)" = 0 ] || skip "not root: cannot give a file to another user"
	# Made in advance by another user, to read what the server logs.
	: >smimpd.log
	chmod 666 smimpd.log
	chown nobody smimpd.log
	run -1 --separate-stderr timeout 10 smimpd -d -f smimpd.conf --data data \
		--domain example.org --listen "127.0.0.1:$PORT"
	[ "$stderr" = "smimpd: the log '$PWD/smimpd.log' is not a file of this user's" ]
	[ ! -s smimpd.log ]
}

@test "a configuration that no longer names the log keeps the file, and each later SIGHUP still reopens it" {
	conf
	serve
	printf 'cert %s\nkey %s\n' "$PWD/cert.pem" "$PWD/key.pem" >smimpd.conf
	hup 'reload: configuration applied'
	grep -q 'reload: log to standard error only from a restart' smimpd.log
	mv smimpd.log smimpd.log.1
	kill -HUP "$(cat pid)"
	wait_for smimpd.log 'reload: log reopened'
	[ "$(get /smimp/no-such-3)" = 404 ]
	wait_for smimpd.log 'GET /smimp/no-such-3 404'
	! grep -q 'no-such-3' smimpd.log.1 || false
	[ ! -s stderr.log ]
}

@test "SIGHUP takes new limits and log level at once, and keeps what needs a restart" {
	conf 'max-message 1000' 'workers 4' 'threads 2'
	serve
	[ "$(meta_max)" = 1000 ]
	# Five failed lookups: far under the 120 a minute of the default.
	for _ in 1 2 3 4 5; do [ "$(get /smimp/v1/users/a@example.org/log)" = 401 ]; done
	conf 'max-message 2000' 'workers 8' 'threads 3' 'relay-workers 2' \
		'rate-failures 2' 'log-level debug' 'plain-http yes' 'listen 127.0.0.1:1'
	hup 'reload: configuration applied'
	[ "$(meta_max)" = 2000 ]
	grep -q 'reload: max-message is now 2000' smimpd.log
	grep -q 'reload: rate-failures is now 2 (was 120)' smimpd.log
	grep -q 'reload: threads is now 3 (was 2)' smimpd.log
	grep -q 'reload: log-level is now debug' smimpd.log
	grep -q 'reload: workers changes only at a restart; kept as it was' smimpd.log
	grep -q 'reload: relay-workers changes only at a restart; kept as it was' smimpd.log
	grep -q 'reload: plain-http changes only at a restart; kept as it was' smimpd.log
	[[ "$(subject)" == *"CN = localhost"* ]]
	# A flag wins over the file, on a reload as at the start.
	! grep -q 'reload: listen' smimpd.log || false
	# The new failure rate, at once: two more, then 429.
	[ "$(get /smimp/v1/users/a@example.org/log)" = 401 ]
	[ "$(get /smimp/v1/users/a@example.org/log)" = 401 ]
	[ "$(get /smimp/v1/users/a@example.org/log)" = 429 ]
	# Debug lines: the client's address with each request.
	wait_for smimpd.log 'GET /smimp/v1/users/a@example.org/log 429 from 127.0.0.1'
}

@test "SIGHUP takes a renewed certificate without a restart; connections open on the old one finish" {
	conf 'log-level debug'
	serve
	[[ "$(subject)" == *"CN = localhost"* ]]
	# A connection open across the reload, served by the old service.
	python3 - "$PORT" <<'PY' >kept &
import http.client, ssl, sys, time
ctx = ssl.create_default_context(cafile="cert.pem")
c = http.client.HTTPSConnection("localhost", int(sys.argv[1]), context=ctx)
answers, ends = [], set()
for _ in range(2):
    c.request("GET", "/smimp/version")
    # Before the answer: the one after the reload closes it.
    ends.add(c.sock.getsockname())
    r = c.getresponse()
    r.read()
    answers.append(str(r.status))
    open("asked", "a").write("x")
    time.sleep(2)
print(" ".join(answers), len(ends), "connection")
PY
	py=$!
	wait_for asked x
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout key2.pem -out cert2.pem -days 2 -subj /CN=renewed \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
	cat cert2.pem >cert.pem
	cat key2.pem >key.pem
	hup 'reload: configuration applied'
	pid=$(cat pid)
	[[ "$(subject)" == *"CN = renewed"* ]]
	[ "$(get /smimp/version)" = 200 ]
	wait "$py"
	[ "$(cat kept)" = '200 200 1 connection' ]
	# Its last connection gone, the old service stops.
	wait_for smimpd.log 'reload: an earlier HTTP service is done'
	kill -0 "$pid"
}

@test "connections kept alive across reloads close after their next answer, and cannot hold the old services against later reloads" {
	conf 'log-level debug'
	serve
	# A client (no key needed) that keeps connections alive: a new one
	# every half second, each asking again every half second.
	python3 - "$PORT" <<'PY' >kept &
import os, socket, ssl, sys, time
ctx = ssl.create_default_context(cafile="cert.pem")
def ask(s):
    s.sendall(b"GET /smimp/version HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while b"software" not in got:
        d = s.recv(4096)
        if not d:
            raise OSError("closed")
        got += d
    return got
conns, closed, told = [], 0, 0
while not os.path.exists("stop"):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))),
                        server_hostname="localhost")
    conns.append(s)
    for s in list(conns):
        try:
            told += b"\r\nConnection: close\r\n" in ask(s)
        except OSError:
            conns.remove(s)
            closed += 1
    time.sleep(0.5)
print("closed" if closed > 0 and told > 0 else "kept")
PY
	py=$!
	# Ten reloads: each has connections of the client on the service it
	# replaces.
	for i in $(seq 10); do
		sleep 1
		kill -HUP "$(cat pid)"
		for _ in $(seq 100); do
			[ "$(grep -c 'reload: configuration applied' smimpd.log)" -ge "$i" ] && break
			sleep 0.1
		done
	done
	touch stop
	wait "$py"
	[ "$(cat kept)" = closed ]
	! grep -q 'still have connections' smimpd.log || false
	[ "$(grep -c 'reload: configuration applied$' smimpd.log)" -eq 10 ]
	[ "$(get /smimp/version)" = 200 ]
}

@test "a configuration with faults on SIGHUP is refused whole; the running one stays" {
	conf 'max-message 1000'
	serve --metrics "127.0.0.1:$MET"
	conf 'max-message lots' 'no-such-setting 1' 'max-message 5000'
	hup 'the configuration stays as it was'
	grep -q "smimpd: smimpd.conf:4: max-message is a size in bytes, at most 4 GiB" smimpd.log
	grep -q "smimpd: smimpd.conf:5: unknown setting 'no-such-setting'" smimpd.log
	grep -q 'reload: smimpd.conf: 2 errors; the configuration stays as it was' smimpd.log
	[ "$(meta_max)" = 1000 ]
	curl -s "http://127.0.0.1:$MET/metrics" | grep -qx 'smimpd_config_reloads_total{result="refused"} 1'
	# A key that is not the certificate's: the HTTPS service goes on.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout key2.pem -out cert2.pem -days 2 -subj /CN=other 2>/dev/null
	conf 'max-message 3000' "key $PWD/key2.pem"
	hup 'reload: configuration applied, but for the HTTP service'
	grep -q 'reload: cannot start the HTTP service (does the key match the certificate?); HTTPS goes on as it was' smimpd.log
	[[ "$(subject)" == *"CN = localhost"* ]]
	[ "$(get /smimp/version)" = 200 ]
	# A key that cannot be read: the same.
	conf 'max-message 3000' "key $PWD/gone.pem"
	hup "reload: cannot open '$PWD/gone.pem'"
	[ "$(get /smimp/version)" = 200 ]
	# A log that cannot be opened: nothing taken.
	conf 'max-message 4000' "log $PWD/no/such/dir/smimpd.log"
	hup "reload: cannot open the log '$PWD/no/such/dir/smimpd.log'"
	[ "$(meta_max)" = 3000 ]
	curl -s "http://127.0.0.1:$MET/metrics" | grep -qx 'smimpd_config_reloads_total{result="refused"} 2'
	curl -s "http://127.0.0.1:$MET/metrics" | grep -qx 'smimpd_config_reloads_total{result="applied"} 2'
}

@test "SIGHUP changes where the relay finds other servers" {
	two_domains
	smimpd --data org --domain example.org adduser alice@example.org alice.pub
	smimpd --data net --domain example.net adduser bob@example.net bob.pub
	# org knows example.net at a port where nothing listens.
	printf 'resolve example.net=127.0.0.1:1\ncacert %s\nretry-base 1\nretry-max 1\nlog %s\n' \
		"$PWD/cert.pem" "$PWD/smimpd.log" >org.conf
	smimpd -d -f org.conf --data org --domain example.org --listen "127.0.0.1:$ORG" \
		--cert cert.pem --key key.pem 2>stderr.log &
	echo $! >pid
	server_up "$ORG"
	start net example.net "$NET"
	echo "after a reload" | smimp-seal -i alice.key -r bob.pub >m.age
	mid=$(smimp-send -i alice.key m.age)
	wait_for smimpd.log "relay $mid to example.net: .*retrying"
	sed -i "s/^resolve .*/resolve $SMIMP_RESOLVE/" org.conf
	hup "relayed $mid to example.net"
	grep -q "reload: resolve is now '$SMIMP_RESOLVE'" smimpd.log
	stop_servers net
}

@test "systemd is told (NOTIFY_SOCKET): ready once serving, reloading and ready again on SIGHUP, stopping" {
	# A listener like systemd's, on a path and in the abstract namespace.
	for where in "$BATS_TEST_TMPDIR/notify" "@smimp-t1420-$$-$RANDOM"; do
		rm -f notified ready
		python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
w = sys.argv[1]
s.bind("\0" + w[1:] if w[0] == "@" else w)
open("ready", "w").close()
with open("notified", "w") as out:
    while True:
        m = s.recv(4096).decode()
        out.write(m.replace("\n", " ") + "\n")
        out.flush()
        if m.startswith("STOPPING=1"):
            break' "$where" &
		for _ in $(seq 100); do [ -e ready ] && break; sleep 0.1; done
		printf 'log %s\n' "$BATS_TEST_TMPDIR/smimpd.log" >smimpd.conf
		NOTIFY_SOCKET=$where serve --cert cert.pem --key key.pem
		wait_for notified '^READY=1 STATUS=serving example.org on 127.0.0.1:'
		hup 'reload: configuration applied'
		wait_for notified '^RELOADING=1 MONOTONIC_USEC=[0-9]*$'
		for _ in $(seq 100); do [ "$(grep -c '^READY=1' notified)" = 2 ] && break; sleep 0.1; done
		kill -TERM "$(cat pid)"
		wait
		[ "$(cut -d' ' -f1 notified | tr '\n' ' ')" = "READY=1 RELOADING=1 READY=1 STOPPING=1 " ]
		rm -f pid
	done
}
