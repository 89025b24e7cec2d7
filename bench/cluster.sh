#!/bin/bash
# What a domain's nodes cost, in one run on this machine: submission
# of the same CLUSTER_N sealed 4 KiB messages (default 2,000) from one
# sender to CLUSTER_RCPTS users of the domain in turn (default 16), by
# the same smimp-load over CONNS connections (default 16), into
#  - smimpd on its SQLite store (one node),
#  - smimpd on PostgreSQL, one node,
#  - two and three smimpd nodes on PostgreSQL behind haproxy,
# each row on a store of its own (a new data directory, a new database),
# beside PostgreSQL's own commit rate on the same disk (pg_test_fsync,
# fdatasync of one 8 kB write, as the WAL does by default on Linux).
#
# For each row: messages per second and p99 latency, and what a message
# costs: CPU time of each smimpd, of PostgreSQL (every process of the
# cluster) and of haproxy (utime + stime from /proc, before and after);
# PostgreSQL's transactions (pg_stat_database.xact_commit), those that
# wrote (transaction ids given out), WAL flushes (pg_stat_wal.wal_sync)
# and WAL bytes (the WAL insert position); bytes the disk took (its
# sectors written, /sys/block).  Ratios are against the SQLite row.
#
# PostgreSQL runs as a cluster of this run's own (t/postgresql.bash),
# unprivileged, on a Unix socket, in a temporary directory under
# BENCH_DIR (default /var/tmp: a disk, not memory; every user must be
# able to search it), removed on exit and on interrupt.
# usage: cluster.sh BINDIR   (CLUSTER_N, CLUSTER_RCPTS, CONNS and
# FSYNC_SECONDS, pg_test_fsync's seconds per test, default 1, in the
# environment)
set -euo pipefail
BIN=$(cd "${1:?usage: cluster.sh BINDIR}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${CLUSTER_N:-2000}
CONNS=${CONNS:-16}
RCPTS=${CLUSTER_RCPTS:-16}
FSYNC_S=${FSYNC_SECONDS:-1}
LOAD="$BIN/../bench/smimp-load"
export PATH="$BIN:$PATH"
# shellcheck source=t/postgresql.bash
. "$ROOT/t/postgresql.bash"
# shellcheck source=t/net.bash
. "$ROOT/t/net.bash"

for v in "$N" "$RCPTS" "$CONNS" "$FSYNC_S"; do
	case $v in '' | *[!0-9]* | 0)
		echo "cluster: CLUSTER_N, CLUSTER_RCPTS, CONNS and FSYNC_SECONDS are positive numbers" >&2
		exit 2 ;;
	esac
done

for tool in haproxy openssl psql curl "$PG_BIN/initdb" "$PG_BIN/pg_test_fsync" "$LOAD"; do
	command -v "$tool" >/dev/null || {
		echo "cluster: $tool is missing (make bench installs postgresql-15 and haproxy)" >&2
		exit 1
	}
done
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/smimp-cbench.XXXXXX")
chmod 755 "$W"	# PostgreSQL's owner (nobody, under root) lives in it
pids='' pg=''
trap scratch_cleanup EXIT
trap 'exit 130' INT TERM
cd "$W"
# ---- what each process costs, from /proc ----
HZ=$(getconf CLK_TCK)
# ticks PID: its CPU time so far (utime + stime), in clock ticks.
ticks() {
	awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
# written: bytes written to the disk under the bench's directory so
# far, by anyone (/sys/block: sectors of 512 bytes); "" when that is no
# block device (tmpfs, overlay).  Not /proc/PID/io: its write_bytes
# counts a whole large folio (up to 2 MiB) each time a process makes
# one dirty again, as WAL appends do between flushes.
DEVSTAT=/sys/dev/block/$(stat -c '%Hd:%Ld' "$W" 2>/dev/null || echo 0:0)/stat
written() {
	[ -r "$DEVSTAT" ] && awk '{ printf "%.0f\n", $7 * 512 }' "$DEVSTAT"
	return 0
}
# pg_ticks: the same for the whole PostgreSQL cluster: the
# postmaster, its children alive, and those it has reaped already.
pg_pids() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v pm="$(head -1 "$pg/data/postmaster.pid")" '
		{ pid = $1; sub(/.*\) /, "") } pid == pm || $2 == pm { print pid }'
}
pg_ticks() {
	local pm p t=0
	pm=$(head -1 "$pg/data/postmaster.pid")
	for p in $(pg_pids); do
		t=$((t + $(ticks "$p" 2>/dev/null || echo 0)))
	done
	# what the children that exited used
	echo $((t + $(awk '{ sub(/.*\) /, ""); print $14 + $15 }' "/proc/$pm/stat")))
}
sql() { pg_sql "$pg" postgres "$1"; }

# ---- keys, certificate, messages ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem \
	-out cert.pem -days 1 -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
export SMIMP_CACERT=$W/cert.pem SMIMP_HOME=$W/home
USERS=(alice)
for ((i = 1; i <= RCPTS; i++)); do USERS+=("bob$i"); done
for u in "${USERS[@]}"; do
	smimp-keygen -u "$u@example.org" -o "$u" --no-passphrase >/dev/null 2>&1
done
mkdir msgs
# seal FROM TO: messages FROM..TO, 4 KiB of random bytes each
seal() {
	local i
	for i in $(seq "$1" "$2"); do
		head -c 4096 /dev/urandom |
			smimp-seal -i alice.key -r "bob$((i % RCPTS + 1)).pub" >"msgs/$i.age"
	done
}
seal 1 $((N / 2)) & s1=$!
seal $((N / 2 + 1)) "$N" & s2=$!
wait "$s1" "$s2"

# ---- PostgreSQL, and its commit rate on this disk ----
pg=$(TMPDIR=$W pg_start)
# fdatasync of one 8 kB write: what one WAL flush costs (wal_sync_method
# is fdatasync on Linux); in the cluster's directory, as its owner.
(cd "$pg" && pg_as "$PG_BIN/pg_test_fsync" -s "$FSYNC_S" -f "$pg/fsync.test") >fsync.out 2>&1 || {
	cat fsync.out >&2
	exit 1
}
fsync_rate=$(awk '/one 8kB write/ { one = 1 } one && $1 == "fdatasync" { printf "%.0f", $2; exit }' fsync.out)
# WAL as in a server that has run a while: segments recycled, not made
# anew (a new one is 16 MiB of zeros written first), enough for a row.
wal_mb=$((N * 16 / 1024 + 64))
sql "ALTER SYSTEM SET min_wal_size = '${wal_mb}MB'" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sql "SELECT count(pg_logical_emit_message(false, 'warm', repeat('x', 1048576)))
	FROM generate_series(1, $wal_mb)" >/dev/null

# ---- the rows ----
declare -A R	# R[row,field]
ROWS=()
NODE_PIDS=() HAP_PID='' ENTRY=''
# serve NAME K STORE...: K nodes of example.org (its users added
# already) on STORE (none: each on its SQLite store), behind haproxy
# when more than one; ENTRY is where clients reach them.
serve() {
	local name=$1 k=$2 i ports=()
	shift 2
	for ((i = 1; i <= k; i++)); do ports+=("$(free_port)"); done
	ENTRY=${ports[0]} NODE_PIDS=() HAP_PID=
	[ "$k" -gt 1 ] && ENTRY=$(free_port)
	printf 'rate-sender 0\nrate-domain 0\nbase-url https://127.0.0.1:%s/smimp\n' \
		"$ENTRY" >"$name.conf"
	for ((i = 1; i <= k; i++)); do
		mkdir -p "$name-$i" && chmod 700 "$name-$i"
		# One domain, one server key: the nodes share the first one's.
		[ "$i" -gt 1 ] && cp "$name-1/server.key" "$name-$i/"
		smimpd -f "$name.conf" "$@" --data "$name-$i" --domain example.org \
			--listen "127.0.0.1:${ports[$((i - 1))]}" --cert cert.pem \
			--key key.pem 2>>"$name-$i.log" &
		NODE_PIDS+=($!)
		pids="$pids $!"
		server_up "${ports[$((i - 1))]}"
	done
	[ "$k" -gt 1 ] || return 0
	{
		printf 'global\n\tmaxconn 4096\ndefaults\n\tmode tcp\n'
		printf '\ttimeout connect 2s\n\ttimeout client 60s\n\ttimeout server 60s\n'
		printf 'frontend org\n\tbind 127.0.0.1:%s\n\tdefault_backend nodes\n' "$ENTRY"
		printf 'backend nodes\n\tbalance roundrobin\n'
		for ((i = 1; i <= k; i++)); do
			printf '\tserver n%s 127.0.0.1:%s\n' "$i" "${ports[$((i - 1))]}"
		done
	} >"$name.haproxy"
	haproxy -f "$name.haproxy" -db >"$name.haproxy.log" 2>&1 &
	HAP_PID=$!
	pids="$pids $!"
	server_up "$ENTRY"
}
# cpu: CPU ticks so far of each node, haproxy (0 without) and
# PostgreSQL (0 without), in that order.
cpu() {
	local p
	for p in "${NODE_PIDS[@]}"; do printf '%s ' "$(ticks "$p")"; done
	if [ -n "$HAP_PID" ]; then printf '%s ' "$(ticks "$HAP_PID")"; else printf '0 '; fi
	if [ -n "$pg" ]; then pg_ticks; else echo 0; fi
}
# counts DB: PostgreSQL's transactions committed in DB, WAL flushes,
# and the next transaction id (one is given to each that writes).
counts() {
	sql "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = '$1'),
		(SELECT wal_sync FROM pg_stat_wal), pg_snapshot_xmax(pg_current_snapshot())" |
		tr '|' ' '
}
# settled DB: the nodes' sessions gone, their counts reported (each
# session reports them as it ends).
settled() {
	for _ in $(seq 100); do
		[ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE datname = '$1'")" = 0 ] && break
		sleep 0.1
	done
	sleep 0.5
}

# row NAME LABEL NODES [pg]: the messages submitted into NODES smimpd
# (behind haproxy when more than one), on SQLite or, with pg, on a new
# PostgreSQL database; what it cost goes into R.
row() {
	local name=$1 k=$3 kind=${4:-sqlite} out p lsn0=0 wal=0 w0 w1 i
	local c0=(0 0 0) c1=(0 0 0) t0 t1 store=()
	ROWS+=("$name")
	R[$name,label]=$2 R[$name,kind]=$kind R[$name,k]=$k
	if [ "$kind" = pg ]; then
		sql "CREATE DATABASE $name" >/dev/null
		store=(--store "$(pg_uri "$pg" "$name")")
	fi
	for u in "${USERS[@]}"; do
		smimpd "${store[@]}" --data "$name-1" --domain example.org \
			adduser "$u@example.org" "$u.pub"
	done
	# Each row starts from a clean disk: what came before is written.
	sync
	if [ "$kind" = pg ]; then
		sql "CHECKPOINT" >/dev/null
		read -ra c0 <<<"$(counts "$name")"
	fi
	serve "$name" "$k" "${store[@]}"
	sync
	w0=$(written)
	read -ra t0 <<<"$(cpu)"
	[ "$kind" = pg ] && lsn0=$(sql "SELECT pg_current_wal_insert_lsn()")
	out=$(SMIMP_RESOLVE="example.org=127.0.0.1:$ENTRY" "$LOAD" -c "$CONNS" \
		-i alice.key msgs/*.age 2>"$name.load.err") || true
	[ "$kind" = pg ] &&
		wal=$(sql "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$lsn0')")
	read -ra t1 <<<"$(cpu)"
	for p in "${NODE_PIDS[@]}" $HAP_PID; do
		kill -TERM "$p"
		wait "$p" 2>/dev/null || true
	done
	if [ "$kind" = pg ]; then
		settled "$name"
		read -ra c1 <<<"$(counts "$name")"
		# its pages written, as they would be by the next checkpoint
		sql "CHECKPOINT" >/dev/null
	fi
	sync
	w1=$(written)

	R[$name,n]=$(echo "$out" | sed -n 's/^submitted \([0-9]*\) .*/\1/p')
	if [ "${R[$name,n]:-0}" -eq 0 ]; then
		echo "cluster: $2: nothing was submitted" >&2
		cat "$name.load.err" >&2
		exit 1
	fi
	R[$name,failed]=$(echo "$out" | sed -n 's/.* \([0-9]*\) failed$/\1/p')
	R[$name,rate]=$(echo "$out" | sed -n 's/.*: \([0-9]*\) msg\/s.*/\1/p')
	R[$name,p99]=$(echo "$out" | sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p')
	R[$name,nodes]='' R[$name,smimpd]=0
	for ((i = 0; i < k; i++)); do
		R[$name,nodes]+="${R[$name,nodes]:++}$(ms $((t1[i] - t0[i])) "${R[$name,n]}")"
		R[$name,smimpd]=$((R[$name,smimpd] + t1[i] - t0[i]))
	done
	R[$name,hap]=$((t1[k] - t0[k]))
	R[$name,pg]=$((t1[k + 1] - t0[k + 1]))
	R[$name,written]=
	[ -n "$w0" ] && R[$name,written]=$((w1 - w0))
	# (the PostgreSQL cluster idles through the SQLite row)
	[ "$kind" = pg ] || R[$name,pg]=0
	R[$name,wal]=$wal
	R[$name,commits]=$((c1[0] - c0[0]))
	R[$name,syncs]=$((c1[1] - c0[1]))
	R[$name,writes]=$((c1[2] - c0[2]))
}
ms() { awk -v t="$1" -v hz="$HZ" -v n="$2" 'BEGIN { printf "%.2f", t * 1000 / hz / n }'; }

row sqlite "SQLite, 1 node" 1
row pg1 "PostgreSQL, 1 node" 1 pg
row pg2 "PostgreSQL, 2 nodes, haproxy" 2 pg
row pg3 "PostgreSQL, 3 nodes, haproxy" 3 pg

# ---- the table ----
per() {
	if [ -z "$1" ]; then echo -; return; fi
	awk -v v="$1" -v n="$2" -v f="%.$3f" 'BEGIN { printf f, v / n }'
}
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'
}
line() {
	printf '%-29s %6s %5s %7s %5s  %-15s %5s %5s %5s %5s %5s  %6s %6s %6s %6s %7s %5s\n' "$@"
}
echo "cluster benchmark: $N messages of 4 KiB, $CONNS connections, loopback, $(nproc) cores"
echo "CPU ms per message: smimpd (each node, all), PostgreSQL (pg), haproxy (hap), total;"
echo "per message: PostgreSQL's transactions (commit), those that wrote (writes), WAL"
echo "flushes (flush), WAL bytes, and bytes written to the disk (written); x: to SQLite"
line "" "msg/s" "x" "p99 ms" "x" "smimpd per node" "all" "pg" "hap" "total" "x" \
	"commit" "writes" "flush" "WAL B" "written" "x"
base=sqlite
for r in "${ROWS[@]}"; do
	n=${R[$r,n]}
	R[$r,total]=$(ms $((R[$r,smimpd] + R[$r,pg] + R[$r,hap])) "$n")
	R[$r,wpm]=$(per "${R[$r,written]}" "$n" 0)
	pgms=- com=- wr=- syn=- walb=- hap=-
	if [ "${R[$r,kind]}" = pg ]; then
		pgms=$(ms "${R[$r,pg]}" "$n")
		com=$(per "${R[$r,commits]}" "$n" 2)
		wr=$(per "${R[$r,writes]}" "$n" 2)
		syn=$(per "${R[$r,syncs]}" "$n" 2)
		walb=$(per "${R[$r,wal]}" "$n" 0)
	fi
	[ "${R[$r,k]}" -gt 1 ] && hap=$(ms "${R[$r,hap]}" "$n")
	label=${R[$r,label]}
	[ "${R[$r,failed]}" -gt 0 ] && label="$label (${R[$r,failed]} failed)"
	line "$label" "${R[$r,rate]}" "$(ratio "${R[$r,rate]}" "${R[$base,rate]}")" \
		"${R[$r,p99]}" "$(ratio "${R[$r,p99]}" "${R[$base,p99]}")" \
		"${R[$r,nodes]}" "$(ms "${R[$r,smimpd]}" "$n")" "$pgms" "$hap" \
		"${R[$r,total]}" "$(ratio "${R[$r,total]}" "${R[$base,total]}")" \
		"$com" "$wr" "$syn" "$walb" "${R[$r,wpm]}" \
		"$(ratio "${R[$r,wpm]}" "${R[$base,wpm]}")"
done
printf '%-29s %6s commits/s: pg_test_fsync, fdatasync of one 8 kB write, on its disk\n' \
	"PostgreSQL commit rate" "$fsync_rate"
echo "On $(nproc) cores the nodes, PostgreSQL and haproxy share these cores: more nodes"
echo "cannot add throughput here; the table shows what each node costs.  Commit: from"
echo "the nodes' start to their stop, with their relay workers' idle polls (8 a node,"
echo "each 5 a second).  Fewer flushes than writes: PostgreSQL's group commit.  Written:"
echo "all the disk took from before a row's nodes start to after they stop, a checkpoint"
echo "and a sync (the whole device: other work on this machine too)."
