#!/usr/bin/env bats
# Faults: PostgreSQL stopped under load.  Two smimpd nodes of
# example.org share one database (a cluster of this file's own,
# t/postgresql.bash); FAULT_CLIENTS clients (at most one a message)
# submit FAULT_SCALE / 4 messages to carol@example.org and
# bob@example.net through both nodes in turn, with signed curl, again
# and again on 503 or no answer until taken, the messages' first tries
# spread evenly over WINDOW seconds; a reader lists carol's mailbox and
# looks alice up in the directory at both nodes.  Once a quarter of the
# messages are taken, and a few submissions wait inside their
# transactions on a lock the test holds, PostgreSQL is stopped (pg_ctl
# stop -m fast, or -m immediate: a crash), kept down DOWN seconds, and
# started again, all while the clients send.  Then:
# - every answer while it was down is 503 with Retry-After, and every
#   answer at all came within BOUND seconds: no 500, no 2xx for what
#   was not committed, no hang; the transactions the stop cut off are
#   answered 503; smimp-send meanwhile exits 75 naming the answer;
#   each node says once that the store is away and once that it is
#   back, whatever the flood of requests;
# - the same smimpd processes serve again within BOUND seconds of the
#   database's start, without a restart;
# - every acknowledged message is in carol's mailbox once (counted in
#   the database), and everything sent again stores nothing twice;
# - bob@example.net gets each message once, and the relay queue ends
#   empty: the relay workers outlive the outage.

load helper
load postgresql
load faults/faults

# Seconds the database stays down; seconds over which the messages are
# first sent (the outage within them); seconds any answer may take, and
# the nodes to serve again once the database is up.
DOWN=3
WINDOW=8
BOUND=10

setup_file() { pg_suite_start; }
teardown_file() { pg_suite_stop; }

setup() {
	pg_suite_db "restart_$BATS_TEST_NUMBER"
	fault_setup
	printf 'relay-lease 2\n' >>common.conf
	for u in alice carol; do
		"$SMIMP_BUILD/bin/smimpd" -f common.conf --store "$STORE" --data node1 \
			--domain example.org adduser "$u@example.org" "$u.pub"
	done
	smimpd --data net --domain example.net adduser bob@example.net bob.pub
	P2=$(free_port)
	M=$((FAULT_SCALE / 4))
	C=${FAULT_CLIENTS:-50}
	[ "$C" -le "$M" ] || C=$M
}

teardown() {
	local p
	touch "$BATS_TEST_TMPDIR/reads.stop" "$BATS_TEST_TMPDIR/stop"
	for p in "$BATS_TEST_TMPDIR"/*.pid; do
		[ -f "$p" ] && kill -KILL "$(cat "$p")" 2>/dev/null
	done
	[ -n "${SUITE_PG:-}" ] || return 0
	# A test that failed while the database was down leaves it down.
	pg_as "$PG_BIN/pg_ctl" -D "$SUITE_PG/data" status >/dev/null 2>&1 ||
		pg_up "$SUITE_PG"
	pg_sql "$SUITE_PG" postgres "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
	return 0
}

sql() { pg_sql "$SUITE_PG" "$DB" "$1"; }

# msg_id FILE: the message id inside the sealed FILE, read as its
# sender.
msg_id() {
	smimp-open -q -i alice.key --json "$1" | sed -n 's/.*"message_id":"\([^"]*\)".*/\1/p'
}

# headers NAME: for each m/NAME.N.age (to carol and bob), the headers
# of its submission in m/NAME.N.hdr, one a line: recipients, message id
# (that of the message), its stamp and the stamp's date.
headers() {
	local f date pids=()
	date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	for f in m/"$1".*.age; do
		(
			to="carol@example.org, bob@example.net"
			id=$(msg_id "$f")
			# A stamp for example.net over its recipient alone.
			stamp=$("$SMIMP_BUILD/t/peertool" stamp alice.key alice@example.org bob@example.net "$id" "$f" "$date")
			printf '%s\n' "Smimp-To: $to" "Smimp-Message-Id: $id" \
				"Smimp-Stamps: example.net=$stamp" "Smimp-Stamp-Date: $date" >"${f%.age}.hdr"
		) &
		pids+=($!)
		[ ${#pids[@]} -lt 8 ] || { wait "${pids[@]}"; pids=(); }
	done
	[ ${#pids[@]} -eq 0 ] || wait "${pids[@]}"
	[ -z "$(grep -L '^Smimp-Stamps: example.net=.' m/"$1".*.hdr)" ]
}

# ask LOG WHAT PORT KEY METHOD PATH [BODYFILE [HEADER...]]: the request
# signed by KEY (afresh: a nonce of its own) to the node at PORT; its
# status on stdout (000: no answer within twice BOUND seconds), and a
# line "WHAT PORT STATUS RETRY-AFTER START END" added to LOG (times in
# seconds since the epoch, "-" for no Retry-After).
ask() {
	local log=$1 what=$2 port=$3 h out code ra=- t0 body=()
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" "$4" "$5" example.org "$6" "${@:7}")
	[ $# -lt 7 ] || body=(--data-binary "@$7")
	t0=$EPOCHREALTIME
	out=$(curl -s -o /dev/null -D - --max-time $((2 * BOUND)) --cacert cert.pem \
		"${h[@]/#/-H}" "${body[@]}" -w '%{http_code}' "https://127.0.0.1:$port$6") || true
	code=${out: -3}
	[[ $out =~ [Rr]etry-[Aa]fter:\ *([0-9]+) ]] && ra=${BASH_REMATCH[1]}
	echo "$what $port $code $ra $t0 $EPOCHREALTIME" >>"$log"
	echo "$code"
}

# client DIR K STEP FILE...: client K submits each FILE as alice,
# through node 1 and node 2 in turn, again after 0.2 s on 503 or no
# answer, until it is taken (201) or the file stop exists; its answers
# in DIR/K.log (ask), the ids taken in DIR/K.out, one a line.  The
# FILEs are messages K, K + C, K + 2C... of all the clients', message
# J sent first no sooner than J * STEP microseconds after the start,
# which the client reads from the file DIR/start once it is there
# (microseconds since the epoch; STEP 0: all at once).
client() {
	local dir=$1 k=$2 step=$3 f hdr id n=$2 j=$2 port code due start wake
	shift 3
	# Waits of 0.1 s on a pipe nobody writes to: no process each.
	exec {wake}<>"$dir/wake"
	until [ -e "$dir/start" ]; do read -rt 0.1 -u "$wake" _ || true; done
	exec {wake}<&-
	read -r start <"$dir/start"
	for f in "$@"; do
		mapfile -t hdr <"${f%.age}.hdr"
		id=${hdr[1]#Smimp-Message-Id: }
		due=$((start + j * step - ${EPOCHREALTIME/./}))
		[ "$due" -le 0 ] || sleep "$((due / 1000000)).$(printf %06d $((due % 1000000)))"
		j=$((j + C))
		while [ ! -e stop ]; do
			port=$ORG
			[ $((n++ % 2)) -eq 0 ] || port=$P2
			code=$(ask "$dir/$k.log" "$id" "$port" alice.key POST \
				/smimp/v1/messages "$f" "${hdr[@]}")
			case $code in
			201) echo "$id" >>"$dir/$k.out"; break ;;
			503 | 000) sleep 0.2 ;;
			*) break ;;
			esac
		done
	done
}

# clients DIR SECONDS FILE...: the FILEs dealt out among C clients,
# all in the background, their first tries spread evenly over SECONDS
# (0: all at once) from when the last of them is started, however long
# starting them took; clients_wait waits for them.
clients() {
	local dir=$1 step k i=0 files=()
	step=$(($2 * 1000000 / ($# - 2)))
	shift 2
	mkdir -p "$dir"
	mkfifo "$dir/wake"
	CLIENTS=()
	for k in $(seq 0 $((C - 1))); do
		files=()
		for ((i = k + 1; i <= $#; i += C)); do files+=("${!i}"); done
		[ ${#files[@]} -gt 0 ] || break
		client "$dir" "$k" "$step" "${files[@]}" 3>&- &
		CLIENTS+=($!)
	done
	echo "${EPOCHREALTIME/./}" >"$dir/start.tmp"
	mv "$dir/start.tmp" "$dir/start"
}
clients_wait() { wait "${CLIENTS[@]}"; }

# reader: until reads.stop exists, carol lists her mailbox and looks
# alice up in the directory, at node 1 and node 2 in turn, every 0.1 s;
# the answers in reads.log (ask).  Its pid in reader.pid.
reader() {
	(
		while [ ! -e reads.stop ]; do
			for port in "$ORG" "$P2"; do
				ask reads.log mailbox "$port" carol.key GET /smimp/v1/mailbox >/dev/null
				ask reads.log directory "$port" carol.key GET \
					/smimp/v1/users/alice@example.org/log >/dev/null
			done
			sleep 0.1
		done
	) 3>&- &
	echo $! >reader.pid
}

# held N: a session of the test's own holds the relay queue (LOCK TABLE
# outbound) until PostgreSQL stops, so that submissions, which queue
# bob's copies, wait inside their transactions; until N of them wait
# (30 s at most; what holds them up says why not).  The stop cuts them
# off before they commit.
held() {
	pg_sql "$SUITE_PG" "$DB" "BEGIN; LOCK TABLE outbound IN EXCLUSIVE MODE; SELECT pg_sleep(60)" \
		>/dev/null 2>&1 3>&- &
	echo $! >lock.pid
	for _ in $(seq 300); do
		HELD=$(pg_sql "$SUITE_PG" "$DB" "SELECT count(*) FROM pg_stat_activity WHERE
			wait_event_type = 'Lock' AND query LIKE 'INSERT INTO outbound %'")
		[ "$HELD" -lt "$1" ] || return 0
		sleep 0.1
	done
	pg_sql "$SUITE_PG" "$DB" "SELECT state, wait_event_type, left(query, 60) FROM pg_stat_activity" >&2
	return 1
}

# outage MODE: PostgreSQL stopped with pg_ctl's MODE (fast, immediate),
# while submissions wait inside their transactions (held), down DOWN
# seconds, started again.  Meanwhile smimp-send exits 75 with the
# answer named, and a large submission gets its 503.  STOP_AT: when the
# stop began; DOWN_AT: when it was down; UP_AT: when it was about to be
# started; BACK_AT: when it was up.
outage() {
	held 3
	STOP_AT=$EPOCHREALTIME
	pg_down "$SUITE_PG" "$1"
	DOWN_AT=$EPOCHREALTIME
	run -75 --separate-stderr smimp-send -i alice.key m/one.age
	[ "$stderr" = "smimp-send: $(msg_id m/one.age): HTTP 503: store unavailable" ]
	# A large submission, refused before its body is read: its 503
	# reaches the client all the same (not a connection cut while it
	# still sends).
	for _ in 1 2 3; do
		[ "$(ask big.log big "$ORG" alice.key POST /smimp/v1/messages m/big.age \
			"Smimp-To: carol@example.org" "Smimp-Message-Id: $BIG_ID")" = 503 ]
	done
	sleep "$DOWN"
	UP_AT=$EPOCHREALTIME
	pg_up "$SUITE_PG"
	BACK_AT=$EPOCHREALTIME
}

# answers LOG...: every answer in the LOGs (ask) came within BOUND
# seconds, a 2xx or a 503 with Retry-After, and every request asked and
# answered while the database was down a 503; prints how many were,
# and how many asked before the stop were answered 503 after it began
# (cut off).
answers() {
	awk -v stop="$STOP_AT" -v down="$DOWN_AT" -v up="$UP_AT" -v bound="$BOUND" '
	function no(why) { print why ": " $0 >"/dev/stderr"; bad = 1 }
	$6 - $5 >= bound { no("slower than " bound " s") }
	$3 == 503 && $4 == "-" { no("503 without Retry-After") }
	$3 != 503 && $3 !~ /^2/ { no("answered " $3) }
	$5 > down && $6 < up { n++; if ($3 != 503) no("while down") }
	$5 < stop && $6 > stop && $3 == 503 { cut++ }
	END { if (bad) exit 1; print n + 0, cut + 0 }' "$@"
}

# served_again: each node answers carol's listing (200) within BOUND
# seconds of the database being up, as the process it was (PIDS).
served_again() {
	local port ok
	for port in "$ORG" "$P2"; do
		ok=0
		for _ in $(seq $((BOUND * 10))); do
			[ "$(ask back.log mailbox "$port" carol.key GET /smimp/v1/mailbox)" = 200 ] && {
				ok=1
				break
			}
			sleep 0.1
		done
		[ "$ok" = 1 ] || { echo "node at $port: not served again" >&2; return 1; }
	done
	awk -v back="$BACK_AT" -v bound="$BOUND" '$3 == 200 && $6 - back >= bound { bad = 1 }
		END { exit bad }' back.log
	[ "$(cat node1.pid node2.pid)" = "$PIDS" ]
	kill -0 $PIDS
}

# stored_once IDS: carol's mailbox (the database's rows) holds each id
# in the file IDS once, and nothing else.
stored_once() {
	sql "SELECT message_id, count(*) FROM mailbox WHERE recipient = 'carol@example.org' GROUP BY message_id" |
		sort >rows
	sort "$1" | sed 's/$/|1/' | cmp - rows
}

# said_once: each node's log says once that the store is away (naming
# why) and once that it is back, and nothing else of the store.
said_once() {
	local n
	for n in node1 node2; do
		[ "$(grep -c 'warning: store unavailable: store: ' "$n.log")" = 1 ] &&
			[ "$(grep -c 'store available again' "$n.log")" = 1 ] &&
			[ "$(grep -c 'store: ' "$n.log")" = 1 ] || {
			echo "$n:" >&2
			grep -i 'store' "$n.log" | head -20 >&2
			return 1
		}
	done
}

# relayed_to_bob: bob gets each message of m/r.* once (60 s at most),
# and the queue ends empty.
relayed_to_bob() {
	names m/r.*.age >all
	bob_fetches_all all && pg_queue_empty
}

# under_load MODE NET: the outage (MODE) while the clients submit and
# the reader reads, and every check after it; NET: example.net's server
# up all along (up), or only once the database is back (after).
under_load() {
	[ "$2" = after ] || start net example.net "$NET"
	pg_node 1 "$ORG"
	pg_node 2 "$P2"
	PIDS=$(cat node1.pid node2.pid)
	seal_many r "$M" carol.pub bob.pub
	headers r
	echo one | smimp-seal -i alice.key -r carol.pub -o m/one.age
	head -c 3000000 /dev/urandom | base64 | smimp-seal -i alice.key -r carol.pub -o m/big.age
	BIG_ID=$(msg_id m/big.age)
	reader
	clients sent "$WINDOW" m/r.*.age
	wait_acked sent $((M / 4))
	outage "$1"
	served_again
	clients_wait
	touch reads.stop
	wait "$(cat reader.pid)"
	[ "$2" = up ] || start net example.net "$NET"
	cat sent/*.out >acked
	[ "$(wc -l <acked)" -eq "$M" ]
	sub=$(answers sent/*.log big.log)
	reads=$(answers reads.log)
	read -r down cut <<<"$sub"
	reads=${reads% *}
	echo "$1: $(cat sent/*.log | wc -l) submissions, $down while down, $HELD held and $cut cut off; $(wc -l <reads.log) reads, $reads while down"
	[ "$down" -gt 0 ]
	[ "$cut" -ge 1 ]
	[ "$reads" -gt 0 ]
	stored_once acked
	said_once
	# Everything again: each taken at once, nothing stored twice.
	clients resent 0 m/r.*.age
	clients_wait
	[ "$(cat resent/*.log | wc -l)" -eq "$M" ]
	[ "$(cat resent/*.out | wc -l)" -eq "$M" ]
	stored_once acked
	relayed_to_bob
}

@test "PostgreSQL stopped (fast) under load: 503 with Retry-After while down, the same nodes serve again, each acknowledged message stored and relayed once" {
	under_load fast up
}

@test "PostgreSQL crashed (immediate) under load: 503 with Retry-After while down, the same nodes serve again, each acknowledged message stored and relayed once" {
	under_load immediate after
}
