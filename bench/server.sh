#!/bin/bash
# Server benchmark, all in one run on this machine:
#  - submission: 4 KiB sealed messages into smimpd over HTTPS on loopback
#    (durable, a request signature verified on each), messages per second
#    and p50/p99 latency, by smimp-load over CONNS reused connections;
#  - relay: the same across two smimpd (example.org -> example.net), from
#    submission until the recipient's mailbox lists it (latency), and how
#    fast a full queue drains once the receiving server comes up
#    (throughput, from the sending server's log);
#  - Postfix from Debian on loopback, driven by its own smtp-source with
#    4 KiB messages over as many sessions, into its durable queue;
#  - the storage limit: durable 4 KiB SQLite commits per second, one row
#    per transaction and 64 rows per transaction;
#  - a soak run of SOAK_SECONDS (default 600) with submissions, relay and
#    acknowledgements, sampling both servers' resident memory;
#  - the CPU time smimpd spends per accepted submission (utime + stime of
#    the receiving smimpd across the submission phase, from /proc);
#  - a "--- targets ---" block, each target of issue 16 PASS or MISS.
# usage: server.sh BINDIR   (SERVER_N, CONNS, SOAK_SECONDS in the environment)
set -euo pipefail
BIN=$(cd "${1:?usage: server.sh BINDIR}" && pwd)
. "$(cd "$(dirname "$0")" && pwd)/drain.bash"
N=${SERVER_N:-3000}
CONNS=${CONNS:-16}
SOAK=${SOAK_SECONDS:-600}
LOAD="$BIN/../bench/smimp-load"
export PATH="$BIN:$PATH"
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/smimp-sbench.XXXXXX")
pids=
cleanup() {
	for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
	[ -f "$W/pf/etc/main.cf" ] && postfix -c "$W/pf/etc" stop >/dev/null 2>&1 || true
	sleep 0.3
	rm -rf "$W"
}
trap cleanup EXIT
cd "$W"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

# ---- two smimpd ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem \
	-out cert.pem -days 1 -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
ORG=$(port); NET=$(port)
export SMIMP_RESOLVE="example.org=127.0.0.1:$ORG,example.net=127.0.0.1:$NET" SMIMP_CACERT=$W/cert.pem
printf 'resolve %s\ncacert %s\nrate-sender 0\nrate-domain 0\nretry-base 1\nretry-max 1\n' "$SMIMP_RESOLVE" "$SMIMP_CACERT" >c.conf
for u in alice@example.org bob@example.org carol@example.net; do
	n=${u%@*}; smimp-keygen -u "$u" -o "$n" --no-passphrase >/dev/null 2>&1
done
smimpd -f c.conf --data org --domain example.org adduser alice@example.org alice.pub
smimpd -f c.conf --data org --domain example.org adduser bob@example.org bob.pub
smimpd -f c.conf --data net --domain example.net adduser carol@example.net carol.pub
declare -A spid
serve() {	# serve NAME DOMAIN PORT
	smimpd -f c.conf --data "$1" --domain "$2" --listen "127.0.0.1:$3" \
		--cert cert.pem --key key.pem 2>>"$1.log" &
	pids="$pids $!"; spid[$1]=$!
}
serve org example.org "$ORG"
serve net example.net "$NET"
sleep 0.5
mkdir local remote queued
for i in $(seq "$N"); do
	head -c 4096 /dev/urandom >m
	smimp-seal -i alice.key -r bob.pub <m >"local/$i.age"
	smimp-seal -i alice.key -r carol.pub <m >"remote/$i.age"
	# Others for the queue to drain: the relayed ones again would be
	# duplicates, which example.net stores no more.
	smimp-seal -i alice.key -r carol.pub <m >"queued/$i.age"
done
field() { sed -n "s/.*$1 \([0-9.]*\).*/\1/p"; }
# ticks PID: its CPU time so far, every thread's (utime + stime), in
# clock ticks.
HZ=$(getconf CLK_TCK)
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

c0=$(ticks "${spid[org]}")
sub_line=$("$LOAD" -c "$CONNS" -i alice.key local/*.age)
c1=$(ticks "${spid[org]}")
accepted=$(echo "$sub_line" | sed -n 's/^submitted \([0-9]*\).*/\1/p')
client_cpu=$(echo "$sub_line" | sed -n 's/^client CPU \([0-9.]*\) ms.*/\1/p')
cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v n="$accepted" \
	'BEGIN { printf "%.3f", (n > 0 ? (b - a) * 1000 / hz / n : 0) }')
sub=$(echo "$sub_line" | sed -n 's/.*: \([0-9]*\) msg\/s.*/\1/p')
sub50=$(echo "$sub_line" | field p50); sub99=$(echo "$sub_line" | field p99)
rel_out=$("$LOAD" -c "$CONNS" -i alice.key -w carol.key remote/*.age)
rel_line=$(echo "$rel_out" | grep '^arrived')
rel=$(echo "$rel_line" | sed -n 's/.*: \([0-9]*\) msg\/s.*/\1/p')
rel50=$(echo "$rel_line" | field p50); rel99=$(echo "$rel_line" | field p99)
relayed=$(echo "$rel_line" | sed -n 's/^arrived \([0-9]*\).*/\1/p')

# Drain: queue N messages while example.net is down, stop example.org,
# wait until every entry is due, bring both up, and time the relay from
# its first delivery to its last, as example.org logs them.
kill -TERM "${spid[net]}"; wait "${spid[net]}" 2>/dev/null || true
"$LOAD" -c "$CONNS" -i alice.key queued/*.age >/dev/null
kill -TERM "${spid[org]}"; wait "${spid[org]}" 2>/dev/null || true
sleep 2.5
r0=$(relayed org.log)
serve net example.net "$NET"
sleep 0.3
serve org example.org "$ORG"
drain=$(drain_rate org.log "$r0" "$N")

# ---- Postfix ----
pf=skipped
# Postfix from Debian, left unconfigured as a system service: only the
# instance below, with its own config and queue, ever runs.
if ! command -v smtp-source >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null 2>&1 || true
fi
if command -v postfix >/dev/null && command -v smtp-source >/dev/null && [ "$(id -u)" = 0 ]; then
	PF=$(port)
	mkdir -p pf/etc pf/queue pf/data
	chown postfix pf/data
	cat >pf/etc/main.cf <<EOF
compatibility_level = 3.6
queue_directory = $W/pf/queue
data_directory = $W/pf/data
mail_owner = postfix
myhostname = bench.localdomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
default_transport = discard
maillog_file = $W/pf/maillog
maillog_file_prefixes = $W/pf
smtputf8_enable = no
EOF
	{
		echo "127.0.0.1:$PF inet n - n - - smtpd"
		for s in "pickup n 60 1" "cleanup n - 0" "qmgr n 300 1" \
			"rewrite - - -" "bounce - - 0" "defer - - 0" \
			"trace - - 0" "verify - - 1" "proxymap - - -" \
			"showq n - -" "error - - -" "retry - - -" \
			"discard - - -" "anvil - - 1" "scache - - 1"; do
			set -- $s
			svc=$1; case $1 in retry) svc=error;; defer|trace) svc=bounce;; rewrite) svc=trivial-rewrite;; esac
			echo "$1 unix $2 - n $3 $4 $svc"
		done
		echo "postlog unix-dgram n - n - 1 postlogd"
	} >pf/etc/master.cf
	chmod 755 "$W"	# Postfix's processes run as postfix
	postfix -c "$W/pf/etc" check >/dev/null 2>&1 || true
	if postfix -c "$W/pf/etc" start >/dev/null 2>&1; then
		sleep 1
		t0=$(now)
		smtp-source -l 4096 -m "$N" -s "$CONNS" -f a@bench.test -t b@bench.test "127.0.0.1:$PF"
		t1=$(now)
		pf=$(awk -v a="$t0" -v b="$t1" -v n="$N" 'BEGIN { printf "%.0f", n / (b - a) }')
		# every message must have been queued, or the number means nothing
		q=$(grep -c 'postfix/cleanup.*message-id' pf/maillog || true)
		[ "$q" -ge "$N" ] || pf="failed ($q of $N queued)"
		postfix -c "$W/pf/etc" stop >/dev/null 2>&1 || true
	fi
fi

# ---- storage limits ----
cat >sq.c <<'C'
#include <sqlite3.h>
#include <stdio.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
	sqlite3 *db; sqlite3_stmt *st; static char blob[4096]; int i, n = 3000, group = argc > 1 ? atoi(argv[1]) : 1;
	double a;
	if (sqlite3_open(argc > 2 ? argv[2] : "sq.db", &db) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t (b BLOB);", 0, 0, 0) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?)", -1, &st, 0) != SQLITE_OK) return 1;
	a = now();
	for (i = 0; i < n; i++) {
		if (i % group == 0 && sqlite3_exec(db, "BEGIN", 0, 0, 0) != SQLITE_OK) return 1;
		sqlite3_bind_blob(st, 1, blob, sizeof blob, 0);
		if (sqlite3_step(st) != SQLITE_DONE) return 1;
		sqlite3_reset(st);
		if ((i % group == group - 1 || i == n - 1) && sqlite3_exec(db, "COMMIT", 0, 0, 0) != SQLITE_OK) return 1;
	}
	printf("%.0f\n", n / (now() - a));
	return 0;
}
C
cc -O2 -include stdlib.h -o sq sq.c -lsqlite3
lim1=$(./sq 1 one.db)
lim64=$(./sq 64 group.db)

# ---- soak: memory over time ----
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
soak_line=skipped
samples=
if [ "$SOAK" -gt 0 ]; then
	# The soak cycles through the messages delivered above: example.net
	# takes each again as a duplicate and stores nothing, and the
	# watcher sees none arrive.  What example.org relays is counted
	# from its log instead.
	rel0=$(relayed org.log)
	"$LOAD" -c 4 -t "$SOAK" -i alice.key -w carol.key remote/*.age 2>soak.err |
		grep -v '^arrived ' >soak.out &
	lp=$!
	step=$(( SOAK / 10 > 0 ? SOAK / 10 : 1 ))
	for k in $(seq 0 10); do
		[ "$k" -gt 0 ] && sleep "$step"
		kill -0 "$lp" 2>/dev/null || break
		samples="$samples $(rss "${spid[org]}")/$(rss "${spid[net]}")"
	done
	wait "$lp" || true
	soak_relayed=$(( $(relayed org.log) - rel0 ))
	soak_line="RSS KiB example.org/example.net every ${step} s:$samples"
fi

echo "server benchmark: $N messages of 4 KiB, $CONNS connections, loopback, $(nproc) cores"
printf '%-46s %8s msg/s  p50 %6s ms  p99 %6s ms\n' "smimpd submission (HTTPS, signed, durable)" "$sub" "$sub50" "$sub99"
printf '%-46s %8s ms (utime + stime / %s accepted)\n' "smimpd CPU per accepted submission" "$cpu" "$accepted"
printf '%-46s %8s ms (the load generator, same machine)\n' "smimp-load CPU per submission" "$client_cpu"
printf '%-46s %8s msg/s  p50 %6s ms  p99 %6s ms  (%s of %s arrived)\n' "smimpd submit + relay + fetch, end to end" "$rel" "$rel50" "$rel99" "$relayed" "$N"
printf '%-46s %8s msg/s\n' "smimpd relay, a queue draining to example.net" "$drain"
printf '%-46s %8s msg/s\n' "Postfix smtp-source -> queue (SMTP, durable)" "$pf"
printf '%-46s %8s commits/s\n' "SQLite WAL synchronous=FULL, 1 row/commit" "$lim1"
printf '%-46s %8s rows/s\n' "SQLite WAL synchronous=FULL, 64 rows/commit" "$lim64"
awk -v s="$sub" -v l="$lim1" 'BEGIN {
	printf "submission / one-row commit limit: %.2f\n", s / l }'
echo "soak ($SOAK s, 4 connections, relay + acknowledgements): $soak_line"
[ -s soak.out ] && sed 's/^/  /' soak.out
[ -n "${soak_relayed:-}" ] && echo "  relayed by example.org meanwhile: $soak_relayed (duplicates to example.net, which stores none again)"

# ---- targets (issue 16) ----
# CPU_BASE_MS: smimpd's CPU per accepted submission before issue 16's
# changes: the binaries of int2 at 4789438 run by this script (the CPU
# sampling above, nothing else changed) on this 2-core machine with
# little else running (load average 1.5 to 2.7), SOAK_SECONDS=0, five
# runs: 0.297, 0.310, 0.310, 0.303 and 0.310 ms; their median.  The
# target is half of it.
CPU_BASE_MS=0.310
# SOAK_GROWTH_KIB: how much either server's resident memory may grow
# from the sample after the first tenth of the soak to the last.  By the
# first tenth the pools are made (readers, statements, workers, peer
# caches, malloc's arenas, one a thread); what may still grow is
# SQLite's page caches (2 MiB a connection at most) as the store grows
# with what it keeps for a while (tombstones, receipts).  At the soak's
# rate (about 1,000 submissions a second on this machine, and as many
# relayed) for nine tenths of 600 s, a leak of 8 bytes a message would
# pass this bound by itself.
SOAK_GROWTH_KIB=4096
verdict() { if [ "$1" = 1 ]; then echo PASS; else echo MISS; fi; }
echo "--- targets ---"
if [ "$pf" -gt 0 ] 2>/dev/null; then
	ok=$(awk -v s="$sub" -v p="$pf" 'BEGIN { print (s / p >= 5) }')
	printf '%-36s %10s  %-16s %s\n' "smimpd / Postfix" \
		"$(awk -v s="$sub" -v p="$pf" 'BEGIN { printf "%.2fx", s / p }')" ">= 5x" "$(verdict "$ok")"
else
	printf '%-36s %10s  %-16s %s\n' "smimpd / Postfix" "-" ">= 5x" "MISS (Postfix: $pf)"
fi
half=$(awk -v b="$CPU_BASE_MS" 'BEGIN { printf "%.3f", b / 2 }')
printf '%-36s %10s  %-16s %s\n' "CPU per accepted message (ms)" "$cpu" "<= $half" \
	"$(verdict "$(awk -v c="$cpu" -v h="$half" 'BEGIN { print (c > 0 && c <= h) }')")"
printf '%-36s %10s  %-16s %s\n' "submission p99 (ms)" "$sub99" "< 20" \
	"$(verdict "$(awk -v p="$sub99" 'BEGIN { print (p != "" && p < 20) }')")"
printf '%-36s %10s  %-16s %s\n' "relay drain / submission" \
	"$(awk -v r="$drain" -v s="$sub" 'BEGIN { printf "%.2f", (s > 0 ? r / s : 0) }')" ">= 1" \
	"$(verdict "$(awk -v r="$drain" -v s="$sub" 'BEGIN { print (s > 0 && r >= s) }')")"
if [ -n "$samples" ]; then
	set -- $samples
	if [ $# -ge 3 ]; then
		first=$2; eval "last=\${$#}"
		g=$(awk -v a="$first" -v b="$last" 'BEGIN { split(a, x, "/"); split(b, y, "/");
			printf "%+d/%+d", y[1] - x[1], y[2] - x[2] }')
		ok=$(awk -v a="$first" -v b="$last" -v m="$SOAK_GROWTH_KIB" 'BEGIN {
			split(a, x, "/"); split(b, y, "/"); print (y[1] - x[1] <= m && y[2] - x[2] <= m) }')
		printf '%-36s %10s  %-16s %s\n' "soak RSS growth (KiB, org/net)" "$g" "<= $SOAK_GROWTH_KIB each" "$(verdict "$ok")"
	else
		printf '%-36s %10s  %-16s %s\n' "soak RSS growth (KiB, org/net)" "-" "<= $SOAK_GROWTH_KIB each" "MISS (too few samples)"
	fi
else
	printf '%-36s %10s  %-16s %s\n' "soak RSS growth (KiB, org/net)" "-" "<= $SOAK_GROWTH_KIB each" "MISS (no soak)"
fi
