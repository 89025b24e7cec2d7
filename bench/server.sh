#!/bin/bash
# Server benchmark: accepted messages per second (4 KiB sealed messages,
# durable, a signature verified on each) through smimp-send's reused
# connection, and cross-domain relay throughput between two smimpd on
# loopback; beside the storage limit (SQLite durable commits per second,
# one per transaction), measured in the same run.
set -euo pipefail
BIN=$(cd "${1:?usage: server.sh BINDIR}" && pwd)
N=${SERVER_N:-500}
export PATH="$BIN:$PATH"
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/smimp-sbench.XXXXXX")
pids=
trap 'for p in $pids; do kill -TERM $p 2>/dev/null || true; done; sleep 0.3; rm -rf "$W"' EXIT
cd "$W"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem \
	-out cert.pem -days 1 -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
ORG=$(port); NET=$(port)
export SMIMP_RESOLVE="example.org=127.0.0.1:$ORG,example.net=127.0.0.1:$NET" SMIMP_CACERT=$W/cert.pem
printf 'resolve %s\ncacert %s\nrate-sender 0\nrate-domain 0\nretry-base 1\n' "$SMIMP_RESOLVE" "$SMIMP_CACERT" >c.conf
for u in alice@example.org bob@example.org carol@example.net; do
	n=${u%@*}; smimp-keygen -u "$u" -o "$n" --no-passphrase >/dev/null 2>&1
done
smimpd -f c.conf --data org --domain example.org adduser alice@example.org alice.pub
smimpd -f c.conf --data org --domain example.org adduser bob@example.org bob.pub
smimpd -f c.conf --data net --domain example.net adduser carol@example.net carol.pub
for s in "org example.org $ORG" "net example.net $NET"; do
	set -- $s
	smimpd -d -f c.conf --data "$1" --domain "$2" --listen "127.0.0.1:$3" \
		--cert cert.pem --key key.pem 2>"$1.log" &
	pids="$pids $!"
done
sleep 0.5
mkdir local remote
for i in $(seq "$N"); do
	head -c 4096 /dev/urandom | smimp-seal -i alice.key -r bob.pub >"local/$i.age"
	head -c 4096 /dev/urandom | smimp-seal -i alice.key -r carol.pub >"remote/$i.age"
done
now() { date +%s.%N; }
t0=$(now); smimp-send -i alice.key local/*.age >/dev/null; t1=$(now)
sub=$(awk -v a="$t0" -v b="$t1" -v n="$N" 'BEGIN { printf "%.0f", n / (b - a) }')
t0=$(now); smimp-send -i alice.key remote/*.age >/dev/null
while [ "$(grep -c relayed org.log || true)" -lt "$N" ]; do sleep 0.05; done
t1=$(now)
rel=$(awk -v a="$t0" -v b="$t1" -v n="$N" 'BEGIN { printf "%.0f", n / (b - a) }')
cat >sq.c <<'C'
#include <sqlite3.h>
#include <stdio.h>
#include <time.h>
int main(void) {
	sqlite3 *db; char blob[4096] = {0}; struct timespec a, b; int i, n = 500;
	sqlite3_open("sq.db", &db);
	sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t (b BLOB);", 0, 0, 0);
	sqlite3_stmt *st; sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?)", -1, &st, 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++) { sqlite3_bind_blob(st, 1, blob, sizeof blob, 0); sqlite3_step(st); sqlite3_reset(st); }
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.0f\n", n / ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9));
	return 0;
}
C
cc -O2 -o sq sq.c -lsqlite3
lim=$(./sq)
echo "server benchmark: $N messages of 4 KiB, HTTPS on loopback, $(nproc) cores"
printf '%-44s %8s msg/s\n' "submission (one client, reused connection)" "$sub"
printf '%-44s %8s msg/s\n' "relay example.org -> example.net" "$rel"
printf '%-44s %8s commits/s\n' "storage limit (SQLite WAL, synchronous=FULL)" "$lim"
awk -v s="$sub" -v l="$lim" -v r="$rel" 'BEGIN { printf "submission / storage limit: %.2f; relay / submission: %.2f\n", s / l, r / s }'
echo "Postfix (smtp-source) is not measured by this script yet."
