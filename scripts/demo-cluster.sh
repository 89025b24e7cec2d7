#!/bin/bash
# demo-cluster.sh BINDIR: several smimpd nodes for one domain.
#
# PostgreSQL (a cluster of its own, in a temporary directory), three
# smimpd nodes for example.org sharing it behind haproxy on loopback,
# and example.net on its embedded store.  Four users, two on each side,
# send DEMO_N messages (default 1,000) across the two domains while one
# example.org node is killed with SIGKILL and started again.  Senders
# retry what was not acknowledged, as smimp-send's exit status 75 asks.
# At the end it counts what was sent, acknowledged, delivered and
# fetched: each must be DEMO_N, with no message twice.  Everything lives
# in a temporary directory removed on exit or interrupt.
set -euo pipefail
BIN=$(cd "${1:?usage: demo-cluster.sh BINDIR}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOTAL=${DEMO_N:-1000}
export PATH="$BIN:$PATH"
. "$ROOT/t/postgresql.bash"
. "$ROOT/t/net.bash"

for tool in haproxy openssl psql; do
	command -v "$tool" >/dev/null || {
		echo "demo-cluster: $tool is missing (make deps installs it)" >&2
		exit 1
	}
done

W=$(mktemp -d "${TMPDIR:-/tmp}/smimp-cluster.XXXXXX")
chmod 755 "$W"
pids= pg=
trap scratch_cleanup EXIT
trap 'exit 130' INT TERM
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
cd "$W"

step "a certificate for loopback, PostgreSQL 15 in $W"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout key.pem -out cert.pem -days 1 -subj /CN=localhost \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
pg=$(pg_start)
pg_sql "$pg" postgres "CREATE DATABASE org" >/dev/null
STORE=$(pg_uri "$pg" org)
echo "store $STORE"

HAP=$(free_port) NET=$(free_port)
NODE=("" "$(free_port)" "$(free_port)" "$(free_port)")
export SMIMP_RESOLVE="example.org=127.0.0.1:$HAP,example.net=127.0.0.1:$NET"
export SMIMP_CACERT=$W/cert.pem
# Fast retries and short leases, so that the demo ends in seconds.
printf 'resolve %s\ncacert %s\nretry-base 1\nretry-max 2\nrelay-lease 5\nrate-sender 0\nrate-domain 0\n' \
	"$SMIMP_RESOLVE" "$SMIMP_CACERT" >common.conf
# example.org's nodes say where the domain is served: haproxy, not each;
# haproxy (from 127.0.0.2) tells them whose each connection is.
{ cat common.conf; printf 'base-url https://127.0.0.1:%s/smimp\nproxy-from 127.0.0.2\n' "$HAP"; } >org.conf

step "four users, two at each domain"
for u in alice@example.org ann@example.org bob@example.net ben@example.net; do
	n=${u%@*}
	SMIMP_HOME=$W/home-$n smimp-keygen -u "$u" -o "$n" --no-passphrase >/dev/null 2>&1
	if [ "${u#*@}" = example.org ]; then
		smimpd -f org.conf --store "$STORE" --data node1 \
			--domain example.org adduser "$u" "$n.pub"
	else
		smimpd -f common.conf --data net --domain example.net \
			adduser "$u" "$n.pub"
	fi
done
for a in alice ann; do for b in bob ben; do
	SMIMP_HOME=$W/home-$a smimp-trust add "$b.pub" --tier trusted >/dev/null 2>&1
	SMIMP_HOME=$W/home-$b smimp-trust add "$a.pub" --tier trusted >/dev/null 2>&1
done; done

declare -A pid
node() {	# node K: example.org's node K, on the shared store
	smimpd -f org.conf --store "$STORE" --data "node$1" \
		--domain example.org --listen "127.0.0.1:${NODE[$1]}" \
		--cert cert.pem --key key.pem 2>>"node$1.log" &
	pid[$1]=$!
	pids="$pids $!"
}
step "example.org: three nodes on PostgreSQL behind haproxy; example.net: one, embedded store"
node 1
server_up "${NODE[1]}"
# One domain, one server key: the nodes share the first one's.
for k in 2 3; do mkdir -p -m 700 "node$k"; cp node1/server.key "node$k/"; node "$k"; done
server_up "${NODE[2]}"
server_up "${NODE[3]}"
cat >haproxy.cfg <<EOF
global
	maxconn 4096
defaults
	mode tcp
	timeout connect 2s
	timeout client 60s
	timeout server 60s
	retries 3
	option redispatch
frontend org
	bind 127.0.0.1:$HAP
	default_backend nodes
backend nodes
	balance roundrobin
	server node1 127.0.0.1:${NODE[1]} source 127.0.0.2 send-proxy-v2 check-send-proxy check inter 300ms fall 1 rise 1
	server node2 127.0.0.1:${NODE[2]} source 127.0.0.2 send-proxy-v2 check-send-proxy check inter 300ms fall 1 rise 1
	server node3 127.0.0.1:${NODE[3]} source 127.0.0.2 send-proxy-v2 check-send-proxy check inter 300ms fall 1 rise 1
EOF
haproxy -f haproxy.cfg -db >haproxy.log 2>&1 &
pids="$pids $!"
smimpd -f common.conf --data net --domain example.net \
	--listen "127.0.0.1:$NET" --cert cert.pem --key key.pem 2>>net.log &
pids="$pids $!"
server_up "$HAP"
server_up "$NET"
echo "example.org on :$HAP -> nodes :${NODE[1]} :${NODE[2]} :${NODE[3]}; example.net on :$NET"

step "$TOTAL messages sealed: alice and ann to bob and ben, and back"
declare -A to=([alice]=bob [ann]=ben [bob]=alice [ben]=ann)
declare -A addr=([alice]=alice@example.org [ann]=ann@example.org
	[bob]=bob@example.net [ben]=ben@example.net)
per=$((TOTAL / 4)) sealers=
for s in alice ann bob ben; do
	mkdir "out-$s"
	n=$per
	[ "$s" = ben ] && n=$((TOTAL - 3 * per))
	for i in $(seq "$n"); do
		printf 'message %s from %s\n' "$i" "$s" |
			SMIMP_HOME=$W/home-$s smimp-seal -i "$s.key" -r "${addr[${to[$s]}]}" \
			-o "out-$s/$(printf %04d "$i")" 2>/dev/null
	done &
	sealers="$sealers $!"
done
# shellcheck disable=SC2086
wait $sealers
echo "sealed: $(ls out-* | grep -c '^[0-9]')"

# send S: every message of S, 20 to an invocation; a batch that is not
# wholly acknowledged is sent again (the servers store a message once,
# however often it comes).  The ids acknowledged go to acked-S.
send() {
	local s=$1 batch tries
	: >"acked-$s"
	ls "out-$s" | xargs -n 20 echo | while read -r batch; do
		for tries in $(seq 60); do
			if (cd "out-$s" && SMIMP_HOME=$W/home-$s smimp-send -i "$W/$s.key" $batch) \
				>>"acked-$s" 2>>"send-$s.err"; then
				break
			fi
			sleep 0.5
		done
	done
}

step "sending, while node 2 of example.org is killed with SIGKILL and started again"
start=$(date +%s.%N)
senders=
for s in alice ann bob ben; do send "$s" & senders="$senders $!"; done
sleep 1
kill -KILL "${pid[2]}"
wait "${pid[2]}" 2>/dev/null || true
echo "killed node 2 (pid ${pid[2]})"
sleep 2
node 2
server_up "${NODE[2]}"
echo "node 2 started again"
# shellcheck disable=SC2086
wait $senders
end=$(date +%s.%N)
acked=$(cat acked-* | sort -u | wc -l)
echo "acknowledged: $acked in $(python3 -c "print(f'{$end - $start:.1f}')") s ($(cat send-*.err 2>/dev/null | grep -c . || true) retried failures)"

step "fetching until every message is in"
for _ in $(seq 120); do
	for r in alice ann bob ben; do
		SMIMP_HOME=$W/home-$r smimp-fetch -i "$r.key" -d "mail-$r" -q >/dev/null 2>&1 || true
	done
	n=$(find mail-* \( -path '*/new/*' -o -path '*/cur/*' \) -type f 2>/dev/null | wc -l)
	[ "$n" -ge "$TOTAL" ] && break
	sleep 1
done

step "counting"
: >opened.json
for r in alice ann bob ben; do
	for f in "mail-$r"/new/* "mail-$r"/cur/*; do
		[ -f "$f" ] || continue
		SMIMP_HOME=$W/home-$r smimp-open -i "$r.key" --json "$f" \
			>>opened.json 2>/dev/null || true
	done
done
# The message id of each object that smimp-open wrote, one a line.
python3 -c '
import json, sys
text, d, at = open(sys.argv[1]).read(), json.JSONDecoder(), 0
while True:
    while at < len(text) and text[at].isspace():
        at += 1
    if at == len(text):
        break
    obj, at = d.raw_decode(text, at)
    print(obj["message_id"])' opened.json >ids
fetched=$(wc -l <ids)
delivered=$(sort -u ids | wc -l)
twice=$(sort ids | uniq -d | wc -l)
printf 'sent:         %5d\n' "$TOTAL"
printf 'acknowledged: %5d\n' "$acked"
printf 'delivered:    %5d (distinct messages that reached a mailbox and opened)\n' "$delivered"
printf 'fetched:      %5d\n' "$fetched"
printf 'twice:        %5d\n' "$twice"
if [ "$acked" -eq "$TOTAL" ] && [ "$delivered" -eq "$TOTAL" ] &&
	[ "$fetched" -eq "$TOTAL" ] && [ "$twice" -eq 0 ]; then
	echo "every message once, none lost, none twice"
else
	echo "demo-cluster: counts differ; what the senders were told most:" >&2
	cat send-*.err 2>/dev/null | sed 's/^[^:]*: [^ ]*: //' | sort | uniq -c |
		sort -rn | head -5 >&2
	exit 1
fi
