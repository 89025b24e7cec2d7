#!/bin/bash
# Submission and relay throughput of this build against another revision
# of smimp, in one run on this machine: is a change no slower than what
# came before it?
#
# REV is built in a temporary worktree of this repository.  Each side
# then runs with its own commands and its own load generator: keys,
# sealed 4 KiB messages, two smimpd on loopback (example.org relays to
# example.net), N submissions for a local recipient over CONNS reused
# connections, then N for the other domain until its mailbox lists them
# all (relay while submitting, end to end).  Last, the relay alone: N
# queued while example.net is down, then both servers up and the queue
# timed from its first delivery to its last, as example.org logs them
# (relay draining a queue).  The sides take turns, ROUNDS times; the
# medians are compared.
#
# usage: baseline.sh BINDIR REV   (SERVER_N, CONNS, ROUNDS in the environment)
set -euo pipefail
BIN=$(cd "${1:?usage: baseline.sh BINDIR REV}" && pwd)
REV=${2:?usage: baseline.sh BINDIR REV}
N=${SERVER_N:-3000}
CONNS=${CONNS:-16}
ROUNDS=${ROUNDS:-3}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/drain.bash"
root=$(cd "$here/.." && pwd)

if ! git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
	echo "--- against $REV: skipped, not a git checkout ---"
	exit 0
fi
if ! git -C "$root" rev-parse --verify -q "$REV^{commit}" >/dev/null; then
	echo "baseline: '$REV' is not a revision of this repository" >&2
	exit 1
fi
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/smimp-baseline.XXXXXX")
pids=
cleanup() {
	for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
	sleep 0.3
	git -C "$root" worktree remove --force "$W/src" >/dev/null 2>&1 || true
	rm -rf "$W"
}
trap cleanup EXIT

git -C "$root" worktree add -q --detach "$W/src" "$REV"
make -s -C "$W/src" -j"$(nproc)" all build/bench/smimp-load >/dev/null
OLD=$W/src/build/bin

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$W/key.pem" -out "$W/cert.pem" -days 1 -subj /CN=localhost \
	-addext "subjectAltName=IP:127.0.0.1" 2>/dev/null

# prepare SIDE BINDIR: keys and sealed messages made by that side's
# commands, in $W/SIDE.
prepare() {
	local d=$W/$1 i u
	mkdir -p "$d/local" "$d/remote" "$d/queued"
	# What the side's commands pin stays with the side: never in the
	# user's own trust store, which the other side's version may not read.
	export SMIMP_HOME=$d/home
	for u in alice@example.org bob@example.org carol@example.net; do
		PATH="$2:$PATH" smimp-keygen -u "$u" -o "$d/${u%@*}" \
			--no-passphrase >/dev/null 2>&1
	done
	for ((i = 1; i <= N; i++)); do
		head -c 4096 /dev/urandom >"$d/m"
		PATH="$2:$PATH" smimp-seal -i "$d/alice.key" -r "$d/bob.pub" \
			<"$d/m" >"$d/local/$i.age"
		PATH="$2:$PATH" smimp-seal -i "$d/alice.key" -r "$d/carol.pub" \
			<"$d/m" >"$d/remote/$i.age"
		# Others for the queue to drain: the relayed ones again would
		# be duplicates, which a receiving server stores no more.
		PATH="$2:$PATH" smimp-seal -i "$d/alice.key" -r "$d/carol.pub" \
			<"$d/m" >"$d/queued/$i.age"
	done
}

# serve SIDE BINDIR NAME DOMAIN PORT: that side's smimpd for DOMAIN,
# its pid in $last.
serve() {
	"$2/smimpd" -f "$W/$1/c.conf" --data "$W/$1/$3" --domain "$4" \
		--listen "127.0.0.1:$5" --cert "$W/cert.pem" --key "$W/key.pem" \
		2>>"$W/$1/$3.log" &
	last=$!
}

# drain SIDE BINDIR ORG NET OPID NPID: N queued while example.net is
# down, both servers stopped and started again once every entry is due;
# the messages a second from the first delivery to the last, in $dr.
drain() {
	local d=$W/$1 r0 o n
	kill -TERM "$6"; wait "$6" 2>/dev/null || true
	"$2/../bench/smimp-load" -c "$CONNS" -i "$d/alice.key" \
		"$d"/queued/*.age >/dev/null
	kill -TERM "$5"; wait "$5" 2>/dev/null || true
	sleep 2.5
	r0=$(relayed "$d/org.log")
	serve "$1" "$2" net example.net "$4"; n=$last
	sleep 0.3
	serve "$1" "$2" org example.org "$3"; o=$last
	pids="$o $n"
	dr=$(drain_rate "$d/org.log" "$r0" "$N")
	kill -TERM "$o" "$n"
	wait "$o" "$n" 2>/dev/null || true
	pids=
}

# round SIDE BINDIR: fresh stores, both servers, submission, relay end
# to end, relay draining a queue; prints "SUB REL DRAIN" (messages a
# second).
round() {
	local d=$W/$1 bin=$2 org net s r o n
	export SMIMP_HOME=$d/home
	rm -rf "$d/org" "$d/net" "$d"/*.log
	org=$(port); net=$(port)
	export SMIMP_RESOLVE="example.org=127.0.0.1:$org,example.net=127.0.0.1:$net"
	export SMIMP_CACERT=$W/cert.pem
	printf 'resolve %s\ncacert %s\nrate-sender 0\nrate-domain 0\nretry-base 1\nretry-max 1\n' \
		"$SMIMP_RESOLVE" "$SMIMP_CACERT" >"$d/c.conf"
	for u in alice@example.org bob@example.org carol@example.net; do
		case $u in *@example.org) s=org ;; *) s=net ;; esac
		"$bin/smimpd" -f "$d/c.conf" --data "$d/$s" --domain "${u#*@}" \
			adduser "$u" "$d/${u%@*}.pub"
	done
	serve "$1" "$bin" org example.org "$org"; o=$last
	serve "$1" "$bin" net example.net "$net"; n=$last
	pids="$o $n"
	sleep 0.5
	s=$("$bin/../bench/smimp-load" -c "$CONNS" -i "$d/alice.key" \
		"$d"/local/*.age | sed -n 's/^submitted .*: \([0-9]*\) msg\/s.*/\1/p')
	r=$("$bin/../bench/smimp-load" -c "$CONNS" -i "$d/alice.key" \
		-w "$d/carol.key" "$d"/remote/*.age |
		sed -n 's/^arrived .*: \([0-9]*\) msg\/s.*/\1/p')
	drain "$1" "$bin" "$org" "$net" "$o" "$n"
	echo "${s:-0} ${r:-0} ${dr:-0}"
}

median() { sort -g | sed -n "$(( (ROUNDS + 1) / 2 ))p"; }

prepare new "$BIN"
prepare old "$OLD"
: >"$W/new.out"; : >"$W/old.out"
for ((k = 0; k < ROUNDS; k++)); do
	round old "$OLD" >>"$W/old.out"
	round new "$BIN" >>"$W/new.out"
done
ns=$(cut -d' ' -f1 "$W/new.out" | median); nr=$(cut -d' ' -f2 "$W/new.out" | median)
os=$(cut -d' ' -f1 "$W/old.out" | median); or=$(cut -d' ' -f2 "$W/old.out" | median)
nd=$(cut -d' ' -f3 "$W/new.out" | median); od=$(cut -d' ' -f3 "$W/old.out" | median)
echo "--- against $REV ($(git -C "$root" log -1 --format=%h "$REV")): $N messages, $CONNS connections, median of $ROUNDS rounds ---"
printf '%-30s %10s %10s %8s\n' "" "this" "$REV" "ratio"
verdict() {	# verdict NAME THIS THAT
	awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN {
		r = b > 0 ? a / b : 0
		printf "%-30s %10d %10d %7.2fx %s\n", n, a, b, r, (r >= 1 ? "PASS" : "MISS") }'
}
verdict "submission (msg/s)" "$ns" "$os"
verdict "relay, end to end (msg/s)" "$nr" "$or"
verdict "relay, draining (msg/s)" "$nd" "$od"
