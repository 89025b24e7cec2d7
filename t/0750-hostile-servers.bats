#!/usr/bin/env bats
# What clients put up with from servers, and which servers they talk to
# at all: domains that are addresses or local names, names that resolve
# inside, base URLs elsewhere, redirects, oversized or trickling answers,
# dead domains, a directory that answers for someone else, a mailbox
# that never empties, a peer that hands out one user's log for another;
# which request bodies wait for the server's 100 Continue.
# The misbehaving server is t/badserver.py, on loopback over plain HTTP,
# reached through the resolve map.

load helper

setup() {
	common_setup
	RT="$SMIMP_BUILD/t/remotetool"
	export SMIMP_ALLOW_HTTP=example.org
	unset SMIMP_RESOLVE SMIMP_CACERT SMIMP_CONFIG
}

teardown() {
	local p
	for p in "$BATS_TEST_TMPDIR"/*.pid; do
		[ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null
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

# start_smimpd DATA DOMAIN CONF [PORT]: a real smimpd on PORT or a free
# $SPORT with cert.pem, its log in DATA.log, its pid in DATA.pid, waited
# for.
start_smimpd() {
	SPORT=${4:-$(free_port)}
	smimpd -d -f "$3" --data "$1" --domain "$2" --listen "127.0.0.1:$SPORT" \
		--cert cert.pem --key key.pem 2>"$1.log" &
	echo $! >"$1.pid"
	server_up "$SPORT" && return 0
	cat "$1.log"
	return 1
}

@test "a body of up to 64 KiB goes with its headers; a larger one waits for the server's 100 Continue" {
	mkid alice alice@example.org
	mkid bob bob@example.org
	mkdir req
	echo none >req/bob@example.org
	bad requires "$BATS_TEST_TMPDIR/req"
	head -c 60000 /dev/urandom | smimp-seal -i alice.key -r bob.pub >small.age
	head -c 70000 /dev/urandom | smimp-seal -i alice.key -r bob.pub >large.age
	[ "$(stat -c %s small.age)" -le 65536 ]
	[ "$(stat -c %s large.age)" -gt 65536 ]
	run -0 --separate-stderr smimp-send -i alice.key small.age
	[ "$(grep -ac 'POST /smimp/v1/messages' requests.log)" -eq 1 ]
	run -1 grep -aq '^Expect:' requests.log
	: >requests.log
	run -0 --separate-stderr smimp-send -i alice.key large.age
	[ "$(grep -a -A2 'POST /smimp/v1/messages' requests.log | grep -ac '^Expect: 100-continue$')" -eq 1 ]
}

@test "domains that are IP addresses or name this machine are refused" {
	run -1 --separate-stderr "$RT" base 127.0.0.1 127.1 0x7f.1 2130706433 \
		'[::1]' ::1 localhost LOCALHOST app.localhost 'a b.org'
	[ "${stderr_lines[0]}" = "remotetool: refusing the domain '127.0.0.1': it is an IP address" ]
	[ "${stderr_lines[1]}" = "remotetool: refusing the domain '127.1': it is an IP address" ]
	[ "${stderr_lines[2]}" = "remotetool: refusing the domain '0x7f.1': it is an IP address" ]
	[ "${stderr_lines[3]}" = "remotetool: refusing the domain '2130706433': it is an IP address" ]
	[ "${stderr_lines[4]}" = "remotetool: refusing the domain '[::1]': it is an IP address" ]
	[ "${stderr_lines[5]}" = "remotetool: refusing the domain '::1': it is an IP address" ]
	[ "${stderr_lines[6]}" = "remotetool: refusing the domain 'localhost': it names this machine" ]
	[ "${stderr_lines[7]}" = "remotetool: refusing the domain 'LOCALHOST': it names this machine" ]
	[ "${stderr_lines[8]}" = "remotetool: refusing the domain 'app.localhost': it names this machine" ]
	[ "${stderr_lines[9]}" = "remotetool: refusing the domain 'a b.org': not a domain name" ]
	[ "${#stderr_lines[@]}" -eq 10 ]
	[ -z "$output" ]
	# The same from a command, and from the resolve map's point of view
	# nothing changed: a domain it names may be anything.
	mkid alice alice@example.org
	run -1 --separate-stderr smimp-seal -i alice.key -r dave@10.0.0.1 alice.pub
	[ "$stderr" = "smimp-seal: no identity pinned for dave@10.0.0.1, and the lookup failed: refusing the domain '10.0.0.1': it is an IP address" ]
	run -1 --separate-stderr smimp-trust fetch -i alice.key dave@localhost
	[ "$stderr" = "smimp-trust: refusing the domain 'localhost': it names this machine" ]
	bad dead
	SMIMP_RESOLVE="localhost=127.0.0.1:$PORT" SMIMP_ALLOW_HTTP=localhost \
		run -1 --separate-stderr "$RT" base localhost
	[ "$stderr" = "remotetool: localhost: no smimp service (HTTP 404)" ]
}

@test "connections go to public addresses only, unless the resolve map says so" {
	run -0 "$SMIMP_BUILD/t/address-class"
	[ "$output" = "68 passed, 0 failed" ]
}

@test "a name that resolves to an address inside is refused when connecting" {
	# A name other than localhost that this machine resolves to one
	# loopback address, from /etc/hosts.
	name=
	while read -r addr names; do
		case $addr in 127.*|::1) ;; *) continue ;; esac
		for n in $names; do
			case $n in *localhost*|*[!a-z0-9.-]*) continue ;; esac
			[ "$(getent ahosts "$n" | awk '{print $1}' | sort -u)" = "$addr" ] || continue
			name=$n
			break 2
		done
	done </etc/hosts
	[ -n "$name" ] || skip "no loopback name in /etc/hosts"
	run -1 --separate-stderr "$RT" base "$name"
	[ "$stderr" = "remotetool: $name: refusing to connect to $addr: not a public address" ]
	# smimpd's relay goes through the same code: it does not deliver
	# there either.
	make_cert
	mkid alice alice@example.org
	mkid dave "dave@$name"
	smimpd --data data --domain example.org adduser alice@example.org alice.pub
	SPORT=$(free_port)
	smimpd -d --data data --domain example.org --listen "127.0.0.1:$SPORT" \
		--cert cert.pem --key key.pem 2>server.log &
	echo $! >smimpd.pid
	server_up "$SPORT"
	mid=$(echo hi | smimp-seal -i alice.key -r dave.pub |
		SMIMP_RESOLVE="example.org=127.0.0.1:$SPORT" SMIMP_CACERT=cert.pem \
		SMIMP_ALLOW_HTTP= smimp-send -i alice.key)
	# Not a domain that publishes smimp service: bounced at once.
	for _ in $(seq 100); do grep -q "bounced $mid" server.log && break; sleep 0.1; done
	kill "$(cat smimpd.pid)"
	grep -qF "bounced $mid to alice@example.org: $name: refusing to connect to $addr: not a public address" server.log
}

@test "the base URL is on the domain or a subdomain, without a user name" {
	bad base "$BATS_TEST_TMPDIR/base.txt"
	for ok in "http://api.example.org:$PORT/smimp" "http://API.Example.ORG/smimp" \
	    "http://127.0.0.1:$PORT/smimp"; do
		echo "$ok" >base.txt
		run -0 --separate-stderr "$RT" base example.org
		[ "$output" = "$ok" ]
	done
	for no in http://example.org.evil.net/smimp http://evilexample.org/smimp \
	    "http://127.0.0.2:$PORT/smimp" "http://127.0.0.1:1/smimp" \
	    "http://[::1]:$PORT/smimp" http://10.0.0.1/smimp http://2130706433/smimp; do
		echo "$no" >base.txt
		run -1 --separate-stderr "$RT" base example.org
		[ "$stderr" = "remotetool: refusing '$no' for example.org: not on example.org or a subdomain of it" ]
	done
	echo "http://example.org@127.0.0.1:$PORT/smimp" >base.txt
	run -1 --separate-stderr "$RT" base example.org
	[ "$stderr" = "remotetool: refusing 'http://example.org@127.0.0.1:$PORT/smimp' for example.org: a user name in the URL" ]
	echo "ftp://example.org/smimp" >base.txt
	run -1 --separate-stderr "$RT" base example.org
	[ "$stderr" = "remotetool: refusing 'ftp://example.org/smimp' for example.org: only HTTPS (allow plain HTTP for a domain with --allow-http)" ]
	printf 'http://example.org/a\tb\n' >base.txt
	run -1 --separate-stderr "$RT" base example.org
	[ "$stderr" = "remotetool: example.org: bad discovery answer" ]
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
	mkid alice alice@example.org
	run -1 --separate-stderr "$RT" lookup alice.key alice@example.org
	[ "$stderr" = "remotetool: example.org: refusing an answer over 1048576 bytes to GET /smimp/v1/users/alice@example.org/log" ]
	run -1 --separate-stderr smimp-trust fetch -i alice.key alice@example.org
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

@test "a failed discovery is remembered: a dead domain is asked once" {
	bad dead
	run -1 --separate-stderr "$RT" base example.org example.org example.org
	[ "${#stderr_lines[@]}" -eq 3 ]
	for l in "${stderr_lines[@]}"; do
		[ "$l" = "remotetool: example.org: no smimp service (HTTP 404)" ]
	done
	[ "$(cat requests.log)" = "GET /.well-known/smimp.txt" ]
	# smimp-send with several messages: one discovery for all.
	mkid alice alice@example.org
	echo a | smimp-seal -i alice.key -r alice.pub >a.age
	echo b | smimp-seal -i alice.key -r alice.pub >b.age
	: >requests.log
	run -1 --separate-stderr smimp-send -i alice.key a.age b.age
	[ "${stderr_lines[0]}" = "smimp-send: example.org: no smimp service (HTTP 404)" ]
	[ "${stderr_lines[1]}" = "smimp-send: example.org: no smimp service (HTTP 404)" ]
	[ "$(cat requests.log)" = "GET /.well-known/smimp.txt" ]
}

@test "a directory that answers with someone else's identity is named in the error" {
	mkid bob bob@example.org
	bad wrong-log "$BATS_TEST_TMPDIR/bob.pub"
	run -3 --separate-stderr smimp-trust fetch -i bob.key dave@example.org
	[ "$stderr" = "smimp-trust: the directory of example.org answered for dave@example.org with the identity of bob@example.org" ]
	[ ! -e "$SMIMP_HOME/trust" ]
}

@test "smimp-fetch stops when the server lists what it already acknowledged" {
	mkid bob bob@example.org
	bad stuck-mailbox
	run -75 --separate-stderr timeout 300 smimp-fetch -i bob.key -d mail
	[ "${stderr_lines[0]}" = "smimp-fetch: 1000 fetched: 0 to the inbox, 1000 to Other, 0 dropped" ]
	[ "${stderr_lines[1]}" = "smimp-fetch: mailbox: the server lists again 1000 messages already acknowledged: no progress" ]
	[ "${#stderr_lines[@]}" -eq 2 ]
	[ "$(ls mail/.Other/new | wc -l)" -eq 1000 ]
	# Each message was downloaded once, the listing asked for twice.
	[ "$(grep -c '^GET /smimp/v1/mailbox/' requests.log)" -eq 1000 ]
	[ "$(grep -c '^GET /smimp/v1/mailbox$' requests.log)" -eq 2 ]
}

@test "smimp-fetch does not download again what it acknowledged in this run" {
	mkid bob bob@example.org
	bad lagging-mailbox
	run -0 --separate-stderr smimp-fetch -i bob.key -d mail
	[ "$stderr" = "smimp-fetch: 1510 fetched: 0 to the inbox, 1510 to Other, 0 dropped" ]
	[ "$(grep -c '^GET /smimp/v1/mailbox/[0-9]' requests.log)" -eq 1510 ]
	[ "$(grep '^GET /smimp/v1/mailbox/[0-9]' requests.log | sort | uniq -d)" = "" ]
	[ "$(grep -c '^GET /smimp/v1/mailbox$' requests.log)" -eq 3 ]
}

@test "smimp-fetch refuses a listing with an entry without a valid id, before it downloads or acknowledges anything" {
	mkid bob bob@example.org
	p=srv/smimp/v1/mailbox
	mkdir -p $p
	printf 'a message\n' >$p/1
	good='{"id":1,"from":"alice@example.org","message_id":"m1@example.org","size":10,"received":"2026-11-27T09:00:00Z"}'
	bad files "$BATS_TEST_TMPDIR/srv"
	for e in '{"from":"alice@example.org"}' '{"id":0}' '{"id":-3}' \
	    '{"id":"7"}' '{"id":1.5}' '{"id":null}' '{"id":true}' 7 '"x"' \
	    '[]' null; do
		printf '[%s,%s]' "$good" "$e" >$p/.list
		run -1 --separate-stderr smimp-fetch -i bob.key -d mail
		echo "$e: $stderr"
		[ "${stderr_lines[0]}" = "smimp-fetch: 0 fetched: 0 to the inbox, 0 to Other, 0 dropped" ]
		[ "${stderr_lines[1]}" = "smimp-fetch: mailbox: bad answer: an entry without a valid id" ]
		[ "${#stderr_lines[@]}" -eq 2 ]
	done
	[ "$(grep -c '^GET /smimp/v1/mailbox$' requests.log)" -eq 11 ]
	! grep -q '^GET /smimp/v1/mailbox/' requests.log || false
	! grep -q '^POST' requests.log || false
	# The same listing without the bad entry is fetched.
	printf '[%s]' "$good" >$p/.list
	run -0 --separate-stderr smimp-fetch -i bob.key -d mail
	[ "$(grep -c '^GET /smimp/v1/mailbox/1$' requests.log)" -eq 1 ]
}

# lying_peer: example.org is t/badserver.py serving the files under
# peer/: its /v1/meta publishes the key in org.key, and asked for
# alice's log it serves mallory's, whose key it holds (so that a stamp
# by mallory's key for alice would verify).  example.net is a real
# smimpd on $SPORT that finds example.org there; bob is its user.
lying_peer() {
	local p=peer/smimp/v1 pk
	make_cert
	mkid alice alice@example.org
	mkid mallory mallory@example.org
	mkid bob bob@example.net
	mkdir -p "$p/users/alice@example.org" "$p/users/mallory@example.org"
	pk=$("$SMIMP_BUILD/t/peertool" server-key org.key)
	printf '{"domain":"example.org","server_key":"%s","versions":["v1"],"limits":{"max_message_bytes":1048576}}' \
		"$pk" >"$p/meta"
	cp mallory.pub "$p/users/alice@example.org/log"
	cp mallory.pub "$p/users/mallory@example.org/log"
	bad files "$BATS_TEST_TMPDIR/peer"
	smimpd --data net --domain example.net adduser bob@example.net bob.pub
	printf 'resolve example.org=127.0.0.1:%s\nallow-http example.org\n' "$PORT" >net.conf
	start_smimpd net example.net net.conf
	echo x | smimp-seal -i mallory.key -r bob.pub >m.age
}

@test "a peer that serves another address's log for the stamp's sender gets its delivery refused" {
	lying_peer
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	# deliver FROM MID: one message to bob, stamped by mallory's key
	deliver() {
		local s h
		s=$("$SMIMP_BUILD/t/peertool" stamp mallory.key "$1" bob@example.net "$2" m.age "$now")
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org.key example.org POST example.net \
			/smimp/v1/deliver m.age "Smimp-From: $1" 'Smimp-To: bob@example.net' \
			'Smimp-Stamp-To: bob@example.net' "Smimp-Message-Id: $2" "Smimp-Stamp: $s" \
			"Smimp-Stamp-Date: $now")
		curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @m.age \
			"https://127.0.0.1:$SPORT/smimp/v1/deliver"
	}
	run -0 deliver alice@example.org forged1
	[ "${output//$'\n'/}" = $'{"error":"the sender\'s domain does not publish that sender"} 403' ]
	grep -qF "deliver from example.org: example.org serves the log of another address for alice@example.org" net.log
	grep -qx "GET /smimp/v1/users/alice@example.org/log" requests.log
	# What mallory sends in her own name is taken: the setup is sound.
	run -0 deliver mallory@example.org real0
	[[ "${output//$'\n'/}" == '{"message_id":"real0","receipt":"smimp-receipt/1\ndomain: example.net\n'*'"} 201' ]]
	# The same in a batch, beside a message that mallory did send.
	item() {	# item FROM MID: a batch item to bob, stamped by mallory's key
		printf 'From: %s\nTo: bob@example.net\nStamp-To: bob@example.net\nMessage-Id: %s\nStamp: %s\nStamp-Date: %s\nLength: %s\n\n' \
			"$1" "$2" "$("$SMIMP_BUILD/t/peertool" stamp mallory.key "$1" bob@example.net "$2" m.age "$now")" \
			"$now" "$(wc -c <m.age)"
		cat m.age
		echo
	}
	{ echo smimp-batch/1; item alice@example.org forged2; item mallory@example.org real1; } >batch
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org.key example.org POST example.net \
		/smimp/v1/deliver-batch batch)
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @batch \
		"https://127.0.0.1:$SPORT/smimp/v1/deliver-batch"
	[[ "${output//$'\n'/}" == $'[{"message_id":"forged2","status":403,"error":"the sender\'s domain does not publish that sender"},{"message_id":"real1","status":201,"receipt":"smimp-receipt/1\\ndomain: example.net\\n'*'"}] 200' ]]
	# Only mallory's own messages reached bob's mailbox.
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key GET example.net /smimp/v1/mailbox)
	run -0 curl -s --cacert cert.pem "${h[@]/#/-H}" "https://127.0.0.1:$SPORT/smimp/v1/mailbox"
	[ "$(grep -o '"from":"[^"]*","message_id":"[^"]*"' <<<"$output" | tr '\n' ' ')" = \
		'"from":"mallory@example.org","message_id":"real0" "from":"mallory@example.org","message_id":"real1" ' ]
}

@test "a peer whose users' logs never come: after the first fails, the rest of its batch gets 503 at once; once it answers, it is asked again" {
	lying_peer
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	touch peer/drop-logs
	item() {	# item FROM MID: a batch item to bob
		printf 'From: %s\nTo: bob@example.net\nStamp-To: bob@example.net\nMessage-Id: %s\nStamp: %s\nStamp-Date: %s\nLength: %s\n\n' \
			"$1" "$2" "$("$SMIMP_BUILD/t/peertool" stamp mallory.key "$1" bob@example.net "$2" m.age "$now")" \
			"$now" "$(wc -c <m.age)"
		cat m.age
		echo
	}
	{ echo smimp-batch/1; for i in 1 2 3 4 5; do item "u$i@example.org" "m$i"; done; } >batch
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org.key example.org POST example.net \
		/smimp/v1/deliver-batch batch)
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @batch \
		"https://127.0.0.1:$SPORT/smimp/v1/deliver-batch"
	[ "$(grep -o '"status":503,"error":"cannot fetch the sender'"'"'s identity now"' <<<"$output" | wc -l)" -eq 5 ]
	[ "$(grep -c '^GET /smimp/v1/users/.*/log$' requests.log)" -eq 1 ]
	# The peer answers again: the next delivery asks, and is taken.
	rm peer/drop-logs
	s=$("$SMIMP_BUILD/t/peertool" stamp mallory.key mallory@example.org bob@example.net m6 m.age "$now")
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org.key example.org POST example.net \
		/smimp/v1/deliver m.age 'Smimp-From: mallory@example.org' 'Smimp-To: bob@example.net' \
		'Smimp-Stamp-To: bob@example.net' "Smimp-Message-Id: m6" "Smimp-Stamp: $s" \
		"Smimp-Stamp-Date: $now")
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @m.age \
		"https://127.0.0.1:$SPORT/smimp/v1/deliver"
	[[ "${output//$'\n'/}" == '{"message_id":"m6","receipt":"smimp-receipt/1\ndomain: example.net\n'*'"} 201' ]]
	[ "$(grep -c '^GET /smimp/v1/users/.*/log$' requests.log)" -eq 2 ]
}

@test "clients and the relay refuse a server that offers only TLS 1.1" {
	make_cert
	mkid alice alice@example.org
	mkid bob bob@example.org
	mkid dave dave@example.net
	# An OpenSSL that would agree to TLS 1.0 and 1.1 if asked, as some
	# systems' do (Debian's refuses them below security level 0): what
	# refuses here must be smimp's own setting.
	printf '%s\n' 'openssl_conf = conf' '[conf]' 'ssl_conf = ssl' '[ssl]' 'system_default = sys' \
		'[sys]' 'MinProtocol = TLSv1' 'CipherString = DEFAULT@SECLEVEL=0' >openssl.cnf
	export OPENSSL_CONF="$PWD/openssl.cnf"
	unset SMIMP_ALLOW_HTTP
	export SMIMP_CACERT="$PWD/cert.pem"
	BADSERVER_TLS=1.1 bad none
	# A client that takes TLS 1.1 gets the discovery answer.
	run -0 curl -s --cacert cert.pem --tlsv1.1 --tls-max 1.1 "https://127.0.0.1:$PORT/.well-known/smimp.txt"
	[ "$output" = "https://127.0.0.1:$PORT/smimp" ]
	: >requests.log
	# smimp-fetch and smimp-send give up (temporary failure: the server
	# may be upgraded), having sent no request.
	run -75 --separate-stderr smimp-fetch -i bob.key -d mail
	[ "${stderr_lines[1]}" = "smimp-fetch: https://127.0.0.1:$PORT/.well-known/smimp.txt: SSL connect error" ]
	[ -z "$(find mail -type f ! -name .smimp-pending)" ]
	echo hi | smimp-seal -i alice.key -r bob.pub >m.age
	run -75 --separate-stderr smimp-send -i alice.key m.age
	[ "$stderr" = "smimp-send: https://127.0.0.1:$PORT/.well-known/smimp.txt: SSL connect error" ]
	[ -z "$output" ]
	# smimpd's relay to a domain served so retries, and sends nothing.
	smimpd --data org --domain example.org adduser alice@example.org alice.pub
	printf 'resolve example.net=127.0.0.1:%s\ncacert %s\nretry-base 1\n' "$PORT" "$SMIMP_CACERT" >org.conf
	start_smimpd org example.org org.conf
	mid=$(SMIMP_RESOLVE="example.org=127.0.0.1:$SPORT" smimp-send -i alice.key \
		< <(echo hi | smimp-seal -i alice.key -r dave.pub))
	for _ in $(seq 100); do grep -q "relay $mid to example.net" org.log && break; sleep 0.1; done
	grep -qF " smimpd: warning: relay $mid to example.net: https://127.0.0.1:$PORT/.well-known/smimp.txt: SSL connect error; retrying" org.log
	[ ! -s requests.log ]
}

@test "junk signed in a peer's name gets that peer's key fetched anew once, not once a request" {
	lying_peer
	"$SMIMP_BUILD/t/peertool" server-key junk.key >/dev/null
	for i in $(seq 5); do
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server junk.key example.org POST example.net \
			/smimp/v1/deliver m.age)
		run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @m.age \
			"https://127.0.0.1:$SPORT/smimp/v1/deliver"
		[ "${output//$'\n'/}" = '{"error":"bad signature"} 401' ]
	done
	# The key when first needed, and once more for the first failure.
	[ "$(grep -c '^GET /smimp/v1/meta$' requests.log)" -eq 2 ]
	# The key the peer does publish still opens the door, from the cache.
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org.key example.org POST example.net \
		/smimp/v1/deliver m.age)
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @m.age \
		"https://127.0.0.1:$SPORT/smimp/v1/deliver"
	[ "${output//$'\n'/}" = '{"error":"incomplete delivery"} 400' ]
	[ "$(grep -c '^GET /smimp/v1/meta$' requests.log)" -eq 2 ]
}

@test "the relay retries 408, 429 and 5xx but 507, bounces other 4xx at once, and quotes the peer's words escaped" {
	make_cert
	mkid alice alice@example.org
	mkid dave dave@example.net
	: >status.map
	bad status "$BATS_TEST_TMPDIR/status.map"
	smimpd --data org --domain example.org adduser alice@example.org alice.pub
	printf 'resolve example.net=127.0.0.1:%s\nallow-http example.net\nretry-base 1\nretry-max 1\ngive-up 600\n' \
		"$PORT" >org.conf
	start_smimpd org example.org org.conf
	retry="408 429 500 502 503 504"
	final="400 401 403 404 405 409 413 414 507"
	for st in $retry $final; do echo "$st" | smimp-seal -i alice.key -r dave.pub >"m$st.age"; done
	run -0 --separate-stderr env SMIMP_RESOLVE="example.org=127.0.0.1:$SPORT" SMIMP_CACERT="$PWD/cert.pem" \
		SMIMP_ALLOW_HTTP= smimp-send -i alice.key $(for st in $retry $final; do echo "m$st.age"; done)
	mids=("${lines[@]}")
	[ "${#mids[@]}" -eq 15 ]
	# Until now every delivery got 503; from here each its own status.
	i=0
	for st in $retry $final; do echo "${mids[i]} $st"; i=$((i + 1)); done >status.map
	i=0
	for st in $retry $final; do
		mid=${mids[i]}
		i=$((i + 1))
		# Its own answer comes with the next retry (retry-base 1 s).
		for _ in $(seq 100); do grep -q "$mid to .* answered HTTP $st;" org.log && break; sleep 0.1; done
		if [[ " $retry " == *" $st "* ]]; then
			grep -qF "relay $mid to example.net: example.net answered HTTP $st; example.net said: status $st ?[2J; retrying" org.log
			! grep -q "bounced $mid" org.log || false
		else
			grep -qF "bounced $mid to alice@example.org: example.net answered HTTP $st; example.net said: status $st ?[2J" org.log
			# Not retried after its final answer.
			! grep -q "relay $mid to example.net: example.net answered HTTP $st" org.log || false
		fi
	done
	# The peer's words reached the log as text, never as a raw escape.
	! grep -q $'\x1b' org.log || false
}

@test "messages queued for a domain that turns out to publish no smimp service all bounce at once" {
	make_cert
	mkid alice alice@example.org
	mkid dave dave@example.net
	echo 503 >discovery
	bad discovery "$BATS_TEST_TMPDIR/discovery"
	smimpd --data org --domain example.org adduser alice@example.org alice.pub
	printf 'resolve example.net=127.0.0.1:%s\nallow-http example.net\nretry-base 1\nretry-max 1\ngive-up 600\n' \
		"$PORT" >org.conf
	start_smimpd org example.org org.conf
	for i in 1 2 3 4 5; do echo "$i" | smimp-seal -i alice.key -r dave.pub >"m$i.age"; done
	run -0 --separate-stderr env SMIMP_RESOLVE="example.org=127.0.0.1:$SPORT" SMIMP_CACERT="$PWD/cert.pem" \
		SMIMP_ALLOW_HTTP= smimp-send -i alice.key m1.age m2.age m3.age m4.age m5.age
	mids=("${lines[@]}")
	# A 5xx from discovery is worth retrying: all five wait in the queue
	# (and come due together, so that they go out as a batch).
	for mid in "${mids[@]}"; do
		for _ in $(seq 100); do grep -q "relay $mid to example.net: .*retrying" org.log && break; sleep 0.1; done
		grep -qF "relay $mid to example.net: example.net: no smimp service (HTTP 503); retrying" org.log
	done
	# A 4xx is no service at all: every one bounces at the next try.
	echo 404 >discovery
	for mid in "${mids[@]}"; do
		for _ in $(seq 100); do grep -q "bounced $mid" org.log && break; sleep 0.1; done
		grep -qF "bounced $mid to alice@example.org: example.net: no smimp service (HTTP 404)" org.log
	done
}

@test "an attempt that outlasts relay-lease keeps its claim: a peer that reads slowly gets the message once" {
	make_cert
	mkid alice alice@example.org
	mkid dave dave@example.net
	# example.net answers a delivery after 6 s (503: retry in 10 min),
	# three times the lease that the relay's claims are made for.
	: >statuses
	export BADSERVER_DELAY=6
	bad status "$BATS_TEST_TMPDIR/statuses"
	unset BADSERVER_DELAY
	smimpd --data org --domain example.org adduser alice@example.org alice.pub
	ORG=$(free_port)
	printf 'resolve example.net=127.0.0.1:%s,example.org=127.0.0.1:%s\n' "$PORT" "$ORG" >common.conf
	printf 'cacert %s\nallow-http example.net\nrelay-lease 2\nretry-base 600\nretry-max 600\n' \
		"$PWD/cert.pem" >>common.conf
	start_smimpd org example.org common.conf "$ORG"
	export SMIMP_RESOLVE="example.org=127.0.0.1:$ORG" SMIMP_CACERT="$PWD/cert.pem" SMIMP_ALLOW_HTTP=
	mid=$(echo hi | smimp-seal -i alice.key -r dave.pub | smimp-send -i alice.key)
	for _ in $(seq 150); do grep -q "relay $mid to example.net: .*retrying" org.log && break; sleep 0.1; done
	grep -q "relay $mid to example.net: .*retrying" org.log
	# The other workers never took it over while the first one waited.
	[ "$(grep -c '^POST /smimp/v1/deliver' requests.log)" -eq 1 ]
	[ "$(grep -c "relay $mid to example.net" org.log)" -eq 1 ]
}

@test "a domain that stalls holds at most relay-domain-workers, and others are delivered meanwhile" {
	make_cert
	mkid alice alice@example.org
	mkid carol carol@example.com
	mkid dave dave@example.net
	# example.net trickles its discovery answer, a byte a second; the
	# relay gives up on it after 20 s.
	bad trickle
	smimpd --data org --domain example.org adduser alice@example.org alice.pub
	smimpd --data com --domain example.com adduser carol@example.com carol.pub
	ORG=$(free_port)
	COM=$(free_port)
	printf 'resolve example.net=127.0.0.1:%s,example.com=127.0.0.1:%s,example.org=127.0.0.1:%s\n' \
		"$PORT" "$COM" "$ORG" >common.conf
	printf 'cacert %s\nallow-http example.net\n' "$PWD/cert.pem" >>common.conf
	start_smimpd com example.com common.conf "$COM"
	# The defaults: 8 relay workers, at most 4 for one domain.
	start_smimpd org example.org common.conf "$ORG"
	export SMIMP_RESOLVE="example.org=127.0.0.1:$ORG" SMIMP_CACERT="$PWD/cert.pem" SMIMP_ALLOW_HTTP=
	# Six messages for example.net, one at a time, so that each could
	# be claimed by a worker of its own.
	for i in 1 2 3 4 5 6; do
		echo "$i" | smimp-seal -i alice.key -r dave.pub | smimp-send -i alice.key >/dev/null
		sleep 0.3
	done
	# Four workers wait on it; the others would not take its messages.
	[ "$(grep -c '^GET /.well-known/smimp.txt$' requests.log)" -eq 4 ]
	# A message for example.com meanwhile goes out at once.
	mid=$(echo hi | smimp-seal -i alice.key -r carol.pub | smimp-send -i alice.key)
	for _ in $(seq 50); do grep -q "relayed $mid to example.com" org.log && break; sleep 0.1; done
	grep -q "relayed $mid to example.com" org.log
	# ... while the four for example.net still hang.
	! grep -q "relay .* to example.net" org.log || false
}

@test "junk signed in a peer's name, fresh and from many addresses, uses none of that peer's rate" {
	lying_peer
	kill "$(cat net.pid)"
	echo 'rate-domain 3' >>net.conf
	start_smimpd net example.net net.conf
	"$SMIMP_BUILD/t/peertool" server-key junk.key >/dev/null
	# Dated now, with fresh nonces: only the signature is wrong.
	for i in $(seq 3 12); do
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server junk.key example.org POST example.net \
			/smimp/v1/deliver m.age)
		run -0 curl -s --interface "127.0.0.$i" --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" \
			--data-binary @m.age "https://127.0.0.1:$SPORT/smimp/v1/deliver"
		[ "${output//$'\n'/}" = '{"error":"bad signature"} 401' ]
	done
	# example.org's own requests still get all three of theirs.
	for i in 1 2 3; do
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org.key example.org POST example.net \
			/smimp/v1/deliver m.age)
		run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @m.age \
			"https://127.0.0.1:$SPORT/smimp/v1/deliver"
		[ "${output//$'\n'/}" = '{"error":"incomplete delivery"} 400' ]
	done
	# And the limit is real: a fourth is one too many.
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org.key example.org POST example.net \
		/smimp/v1/deliver m.age)
	run -0 curl -s --cacert cert.pem -o /dev/null -w '%{http_code}' "${h[@]/#/-H}" --data-binary @m.age \
		"https://127.0.0.1:$SPORT/smimp/v1/deliver"
	[ "$output" = 429 ]
}

@test "per-domain limits count per site: the subdomains a peer makes up share one rate" {
	lying_peer
	kill "$(cat net.pid)"
	# a.evil.test and b.evil.test: two domains of one site, each with a
	# server key and a server of its own.
	for d in a b; do
		mkdir -p "$d/smimp/v1"
		printf '{"domain":"%s.evil.test","server_key":"%s","versions":["v1"]}' \
			"$d" "$("$SMIMP_BUILD/t/peertool" server-key "$d.key")" >"$d/smimp/v1/meta"
		python3 "$REPO/t/badserver.py" "port.$d" files "$BATS_TEST_TMPDIR/$d" >"$d.requests" 2>&1 &
		echo $! >"$d.pid"
		for _ in $(seq 50); do [ -s "port.$d" ] && break; sleep 0.1; done
	done
	printf 'resolve example.org=127.0.0.1:%s,a.evil.test=127.0.0.1:%s,b.evil.test=127.0.0.1:%s\n' \
		"$PORT" "$(cat port.a)" "$(cat port.b)" >net.conf
	printf 'allow-http example.org,a.evil.test,b.evil.test\nrate-domain 3\n' >>net.conf
	start_smimpd net example.net net.conf
	# deliver DOMAIN: a delivery signed by DOMAIN's server, its status
	deliver() {
		local h
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server "$2" "$1" POST example.net \
			/smimp/v1/deliver m.age)
		curl -s --cacert cert.pem -o /dev/null -w '%{http_code}' "${h[@]/#/-H}" \
			--data-binary @m.age "https://127.0.0.1:$SPORT/smimp/v1/deliver"
	}
	# Two from a.evil.test and one from b.evil.test: evil.test's three.
	[ "$(deliver a.evil.test a.key)" = 400 ]
	[ "$(deliver a.evil.test a.key)" = 400 ]
	[ "$(deliver b.evil.test b.key)" = 400 ]
	# Its fourth is one too many, whichever subdomain signs it.
	[ "$(deliver b.evil.test b.key)" = 429 ]
	[ "$(deliver a.evil.test a.key)" = 429 ]
	# Another site's are its own.
	[ "$(deliver example.org org.key)" = 400 ]
	kill "$(cat a.pid)" "$(cat b.pid)"
}

@test "smimpd caps what a peer serves: its /v1/meta at 8 KiB, its users' logs at 1 MiB" {
	lying_peer
	# deliver MID: mallory's own message to bob, from example.org
	deliver() {
		local s h now
		now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
		s=$("$SMIMP_BUILD/t/peertool" stamp mallory.key mallory@example.org bob@example.net "$1" m.age "$now")
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server org.key example.org POST example.net \
			/smimp/v1/deliver m.age 'Smimp-From: mallory@example.org' 'Smimp-To: bob@example.net' \
			'Smimp-Stamp-To: bob@example.net' "Smimp-Message-Id: $1" "Smimp-Stamp: $s" \
			"Smimp-Stamp-Date: $now")
		curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @m.age \
			"https://127.0.0.1:$SPORT/smimp/v1/deliver"
	}
	head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' x >peer/smimp/v1/users/mallory@example.org/log
	run -0 deliver m2
	[ "${output//$'\n'/}" = $'{"error":"the sender\'s domain does not publish that sender"} 403' ]
	grep -qF "deliver from example.org: example.org: refusing an answer over 1048576 bytes to GET /smimp/v1/users/mallory@example.org/log" net.log
	# Served within bounds, the same log is taken.
	cp mallory.pub peer/smimp/v1/users/mallory@example.org/log
	run -0 deliver m3
	[[ "${output//$'\n'/}" == '{"message_id":"m3","receipt":"smimp-receipt/1\ndomain: example.net\n'*'"} 201' ]]
	# An over-long /v1/meta, on another server that has not yet cached the key.
	kill "$(cat net.pid)"
	wait "$(cat net.pid)" || true
	start_smimpd net example.net net.conf
	meta=peer/smimp/v1/meta
	sed "s/}\$/,\"pad\":\"$(head -c 9000 /dev/zero | tr '\0' x)\"}/" "$meta" >meta.long
	cp meta.long "$meta"
	run -0 deliver m1
	[ "${output//$'\n'/}" = '{"error":"unknown sender domain"} 403' ]
	grep -qF "request from example.org: example.org: refusing an answer over 8192 bytes to GET /smimp/v1/meta" net.log
}
