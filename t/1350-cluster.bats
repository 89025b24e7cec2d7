#!/usr/bin/env bats
# Several smimpd nodes of example.org on one PostgreSQL database (a
# cluster of this file's own): one relay queue that every node works,
# each message delivered once and the queue empty at the end; a node
# killed with SIGKILL while it holds leases, and its messages delivered
# once by the other nodes when the leases expire; a node without the
# domain's server key, or with another, refused; the password of a
# store URI given on the command line kept out of ps; a replay refused
# by a node after another, whose clock is ahead, swept the nonces; a
# message taken while another node removes its recipient's account,
# not left for the address's next owner; keepalives on a connection to
# the database over TCP.

load helper
load postgresql

setup_file() { pg_suite_start; }
teardown_file() { pg_suite_stop; }

setup() {
	pg_suite_db "cluster_$BATS_TEST_NUMBER"
	common_setup
	two_domains
	printf 'relay-lease 2\nrate-sender 0\n' >>common.conf
	"$SMIMP_BUILD/bin/smimpd" -f common.conf --store "$STORE" --data node1 \
		--domain example.org adduser alice@example.org alice.pub
	smimpd --data net --domain example.net adduser bob@example.net bob.pub
	P2=$(free_port) P3=$(free_port)
}

teardown() {
	local n
	for n in node1 node2 node3 net hang hold; do
		[ -f "$n.pid" ] && kill -KILL "$(cat "$n.pid")" 2>/dev/null
	done
	[ -n "${SUITE_PG:-}" ] && pg_sql "$SUITE_PG" postgres "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
	return 0
}

sql() { pg_sql "$SUITE_PG" "$DB" "$1"; }
# send N PORT...: N messages from alice to bob, through the nodes at
# the ports in turn; their ids in mids.  smimp-send asks example.net
# what bob requires of strangers: it finds a closed port, and sends at
# once, where a peer that never answers would hold it 10 s a message.
send() {
	local n=$1 i ports=("${@:2}") closed
	closed=$(free_port)
	for i in $(seq "$n"); do
		printf 'message %02d\n' "$i" | smimp-seal -i alice.key -r bob.pub |
			SMIMP_RESOLVE="example.org=127.0.0.1:${ports[$((i % ${#ports[@]}))]},example.net=127.0.0.1:$closed" smimp-send -i alice.key >>mids
	done
}
# delivered N: until bob has fetched N messages (20 s at most); then
# each once, and the queue empty.
delivered() {
	local n=0
	for _ in $(seq 80); do
		SMIMP_HOME="$BOBHOME" smimp-fetch -i bob.key -d mail-bob -q >/dev/null 2>&1 || true
		n=$(find mail-bob -type f \( -path '*/new/*' -o -path '*/cur/*' \) | wc -l)
		[ "$n" -ge "$1" ] && break
		sleep 0.25
	done
	[ "$n" = "$1" ] || { echo "bob has $n of $1"; return 1; }
	for f in mail-bob/new/*; do SMIMP_HOME="$BOBHOME" smimp-open -q -i bob.key "$f"; done | sort >got
	seq -f 'message %02g' "$1" | cmp - got
	pg_queue_empty
}

@test "three nodes share one relay queue: what any of them queued is delivered once, and the queue ends empty" {
	pg_node 1 "$ORG"
	pg_node 2 "$P2"
	pg_node 3 "$P3"
	send 30 "$ORG" "$P2" "$P3"
	[ "$(sort -u mids | wc -l)" = 30 ]
	# example.net is down: all 30 wait in the one queue.
	[ "$(sql 'SELECT count(*) FROM outbound')" = 30 ]
	start net example.net "$NET"
	delivered 30
}

@test "a node killed while it holds leases: the other nodes deliver its messages once when the leases expire" {
	# A peer that takes connections and never answers: deliveries hang.
	python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
held = []
while True:
    c, _ = s.accept(); held.append(c)' "$NET" &
	echo $! >hang.pid
	pg_node 1 "$ORG"
	send 10 "$ORG"
	for _ in $(seq 40); do
		[ "$(sql 'SELECT count(*) FROM outbound WHERE lease_owner IS NOT NULL')" -gt 0 ] && break
		sleep 0.25
	done
	held=$(sql 'SELECT count(*) FROM outbound WHERE lease_owner IS NOT NULL')
	[ "$held" -gt 0 ]
	kill -KILL "$(cat node1.pid)"
	kill -KILL "$(cat hang.pid)"
	start net example.net "$NET"
	# Node 2 takes node 1's port, where example.net finds example.org.
	pg_node 2 "$ORG"
	pg_node 3 "$P3"
	delivered 10
	# None of it went out through the killed node.
	! grep -q "relayed " node1.log || false
}

# meta PORT: the server key the node at PORT publishes.
meta_key() {
	curl -s --cacert cert.pem "https://127.0.0.1:$1/smimp/v1/meta" |
		sed -n 's/.*"server_key":"\([^"]*\)".*/\1/p'
}

@test "a node without the domain's server key, or with another, refuses to serve: one domain signs with one key" {
	pg_node 1 "$ORG"
	pk=$(meta_key "$ORG")
	[ -n "$pk" ]
	# A new node's data directory, the key not copied.
	mkdir -m 700 node2
	run -1 --separate-stderr timeout 20 "$SMIMP_BUILD/bin/smimpd" -d -f common.conf \
		--store "$STORE" --data node2 --domain example.org --listen "127.0.0.1:$P2" \
		--cert cert.pem --key key.pem
	[ "$stderr" = "smimpd: no server key 'node2/server.key': the nodes of example.org sign with the server key $pk, which the store records; copy server.key from one of them" ]
	# Nothing made up meanwhile; smimpd check says so beforehand.
	[ ! -e node2/server.key ]
	run -1 --separate-stderr "$SMIMP_BUILD/bin/smimpd" -f common.conf \
		--store "$STORE" --data node2 --domain example.org check
	[[ "$output" == *"FAIL server-key: none in node2: the nodes of example.org sign with the server key $pk, which the store records; copy server.key from one of them"* ]]
	# A key of its own: refused as well.
	other=$("$SMIMP_BUILD/t/peertool" server-key node2/server.key)
	run -1 --separate-stderr timeout 20 "$SMIMP_BUILD/bin/smimpd" -d -f common.conf \
		--store "$STORE" --data node2 --domain example.org --listen "127.0.0.1:$P2" \
		--cert cert.pem --key key.pem
	[ "$stderr" = "smimpd: the server key 'node2/server.key' ($other) is not the one the nodes of example.org sign with, $pk, which the store records; copy server.key from one of them" ]
	run -1 --separate-stderr "$SMIMP_BUILD/bin/smimpd" -f common.conf \
		--store "$STORE" --data node2 --domain example.org check
	[[ "$output" == *"FAIL server-key: node2/server.key ($other) is not the key the nodes of example.org sign with, $pk, which the store records; copy server.key from one of them"* ]]
	# With the domain's key it serves, and publishes that key.
	cp node1/server.key node2/server.key
	run --separate-stderr "$SMIMP_BUILD/bin/smimpd" -f common.conf \
		--store "$STORE" --data node2 --domain example.org check
	[[ "$output" == *"ok   server-key: node2/server.key, public key $pk, the one the store records"* ]]
	pg_node 2 "$P2"
	[ "$(meta_key "$P2")" = "$pk" ]
}

@test "the password of a store URI given with --store is not left in the process's command line" {
	# The test cluster trusts local connections: any password will do,
	# in the user information or as a parameter.
	STORE="${STORE/postgresql:\/\/smimp@/postgresql://smimp:hunter2secret@}&password=hunter3secret"
	[[ $STORE == *hunter2secret*hunter3secret ]]
	pg_node 1 "$ORG"
	run -0 tr '\0' ' ' <"/proc/$(cat node1.pid)/cmdline"
	[[ $output == *"--store postgresql://smimp:"*"@/$DB?host="*"&password="* ]]
	[[ $output != *secret* ]]
	! grep -q secret node1.log || false
	# It serves: the URI it uses is whole.
	send 1 "$ORG"
	[ "$(sql 'SELECT count(*) FROM outbound')" = 1 ]
}

@test "a node whose clock is ahead forgets no nonce the others still take requests for: a replay to them is refused" {
	[ -f "$SMIMP_BUILD/t/clockshift.so" ] || { echo "no $SMIMP_BUILD/t/clockshift.so: make it first" >&2; false; }
	pg_node 1 "$ORG"
	# A request dated 250 s ago: within the window of node 1's clock.
	mapfile -t h < <(LD_PRELOAD=$SMIMP_BUILD/t/clockshift.so CLOCKSHIFT_SECONDS=-250 \
		ASAN_OPTIONS=$ASAN_OPTIONS:verify_asan_link_order=0 \
		"$SMIMP_BUILD/t/signreq" alice.key GET example.org /smimp/v1/mailbox)
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" "https://127.0.0.1:$ORG/smimp/v1/mailbox"
	[ "${output//$'\n'/}" = '[] 200' ]
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" "https://127.0.0.1:$ORG/smimp/v1/mailbox"
	[ "${output//$'\n'/}" = '{"error":"replayed request"} 401' ]
	# Node 2, its clock a minute ahead, takes a request: a write, and
	# with it the store's sweep of what has expired by that clock.
	LD_PRELOAD=$SMIMP_BUILD/t/clockshift.so CLOCKSHIFT_SECONDS=60 \
		ASAN_OPTIONS=$ASAN_OPTIONS:verify_asan_link_order=0 pg_node 2 "$P2"
	mapfile -t h2 < <("$SMIMP_BUILD/t/signreq" alice.key GET example.org /smimp/v1/mailbox)
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h2[@]/#/-H}" "https://127.0.0.1:$P2/smimp/v1/mailbox"
	[ "${output//$'\n'/}" = '[] 200' ]
	# The first request, replayed to node 1 while its date is still
	# in node 1's window, is still a replay.
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" "https://127.0.0.1:$ORG/smimp/v1/mailbox"
	[ "${output//$'\n'/}" = '{"error":"replayed request"} 401' ]
}

# waiting: how many sessions wait for a mailbox's lock.
waiting() {
	sql "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO mailbox_usage %'"
}

@test "a message taken for an address while its account is removed is not the next owner's" {
	mkid carol carol@example.org
	"$SMIMP_BUILD/bin/smimpd" -f common.conf --store "$STORE" --data node1 \
		--domain example.org adduser carol@example.org carol.pub
	pg_node 1 "$ORG"
	# A session of the test's own holds carol's mailbox, so that the
	# removal and a submission, each begun, wait for it in turn.
	sql "INSERT INTO mailbox_usage (recipient, bytes) VALUES ('carol@example.org', 0) ON CONFLICT DO NOTHING"
	pg_sql "$SUITE_PG" "$DB" "BEGIN; SELECT 1 FROM mailbox_usage WHERE recipient = 'carol@example.org' FOR UPDATE; SELECT pg_sleep(60)" \
		>/dev/null 2>&1 3>&- &
	echo $! >hold.pid
	for _ in $(seq 100); do
		[ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)' AND pid <> pg_backend_pid()")" = 1 ] && break
		sleep 0.1
	done
	"$SMIMP_BUILD/bin/smimpd" -f common.conf --store "$STORE" --data node1 \
		deluser carol@example.org >deluser.out 2>&1 3>&- &
	del=$!
	for _ in $(seq 100); do [ "$(waiting)" = 1 ] && break; sleep 0.1; done
	[ "$(waiting)" = 1 ]
	# Carol's account is there still, for the submission's checks.
	echo hello carol | smimp-seal -i alice.key -r carol.pub >m.age
	SMIMP_RESOLVE="example.org=127.0.0.1:$ORG" smimp-send -i alice.key m.age >send.out 2>&1 3>&- &
	snd=$!
	for _ in $(seq 100); do [ "$(waiting)" = 2 ] && break; sleep 0.1; done
	[ "$(waiting)" = 2 ]
	sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)' AND pid <> pg_backend_pid()" >/dev/null
	wait "$del"
	wait "$snd"
	[ "$(sql "SELECT count(*) FROM users WHERE address = 'carol@example.org'")" = 0 ]
	# The address given to someone else: nothing of the old mail.
	mkid carol2 carol@example.org
	"$SMIMP_BUILD/bin/smimpd" -f common.conf --store "$STORE" --data node1 \
		--domain example.org adduser carol@example.org carol2.pub
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" carol2.key GET example.org /smimp/v1/mailbox)
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" "https://127.0.0.1:$ORG/smimp/v1/mailbox"
	[ "${output//$'\n'/}" = '[] 200' ]
	[ "$(sql "SELECT count(*) FROM mailbox WHERE recipient = 'carol@example.org'")" = 0 ]
}

@test "over TCP, a node gives up on a database host that vanished within a minute: keepalives, not the kernel's two hours" {
	command -v ss >/dev/null || skip "ss (iproute2) is not installed"
	# The cluster listens on a Unix socket only: TCP through a relay.
	PGP=$(free_port)
	python3 - "$PGP" "$SUITE_PG/.s.PGSQL.5432" >tcp.log 2>&1 3>&- <<'PYEOF' &
import socket, sys, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(16)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    c, _ = srv.accept()
    u = socket.socket(socket.AF_UNIX); u.connect(sys.argv[2])
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
PYEOF
	echo $! >hang.pid
	STORE="postgresql://$PG_ROLE@127.0.0.1:$PGP/$DB"
	for _ in $(seq 50); do (exec 9<>"/dev/tcp/127.0.0.1/$PGP") 2>/dev/null && break; sleep 0.1; done
	pg_node 1 "$ORG"
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key GET example.org /smimp/v1/mailbox)
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" "https://127.0.0.1:$ORG/smimp/v1/mailbox"
	[ "${output//$'\n'/}" = '[] 200' ]
	# Its connections to the database: each with a keepalive timer of
	# at most 30 s (the kernel's default is 7,200).
	run -0 ss -tnoH state established "( dport = :$PGP )"
	[ -n "$output" ]
	while read -r line; do
		[[ "$line" =~ timer:\(keepalive,([0-9.]+)([a-z]+), ]] || { echo "no keepalive timer: $line"; false; }
		case ${BASH_REMATCH[2]} in
		ms) ;;
		sec) [ "${BASH_REMATCH[1]%.*}" -le 30 ] ;;
		*) echo "a keepalive timer of ${BASH_REMATCH[1]} ${BASH_REMATCH[2]}: $line"; false ;;
		esac
	done <<<"$output"
}
