#!/bin/bash
# What taking a one-time prekey adds to a seal (doc/PROTOCOL.md 10.6):
# two servers on loopback, bob's pool filled, alice's pin of bob checked
# in his directory; RUNS seals of a short note to bob with his prekey
# (one claim each) and as many with --no-prekeys, taken in turns so that
# the machine's load falls on both alike.  Prints the median and mean of
# each, and the difference.
# Run by run.sh; alone: bench/prekeys.sh BINDIR.
set -euo pipefail
BIN=$(cd "${1:?usage: prekeys.sh BINDIR}" && pwd)
RUNS=${RUNS:-100}
here=$(cd "$(dirname "$0")" && pwd)
export PATH="$BIN:$PATH"
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/smimp-pbench.XXXXXX")
pids=()
cleanup() {
	[ "${#pids[@]}" -gt 0 ] && kill "${pids[@]}" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
cd "$W"
# shellcheck source=t/net.bash disable=SC1091
. "$here/../t/net.bash"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout key.pem -out cert.pem -days 2 -subj /CN=localhost \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
smimp-keygen -u alice@example.org -o alice --no-passphrase >/dev/null 2>&1
smimp-keygen -u bob@example.net -o bob --no-passphrase >/dev/null 2>&1
ORG=$(free_port)
NET=$(free_port)
export SMIMP_RESOLVE="example.org=127.0.0.1:$ORG,example.net=127.0.0.1:$NET"
export SMIMP_CACERT="$W/cert.pem"
printf 'resolve %s\ncacert %s\nrate-prekeys 0\n' "$SMIMP_RESOLVE" \
	"$SMIMP_CACERT" >common.conf
smimpd --data org --domain example.org adduser alice@example.org alice.pub
smimpd --data net --domain example.net adduser bob@example.net bob.pub
# serve DIR DOMAIN PORT: a server in the background.
serve() {
	smimpd -d -f common.conf --data "$1" --domain "$2" \
		--listen "127.0.0.1:$3" --cert cert.pem --key key.pem \
		2>>"$1.log" >/dev/null &
	pids+=($!)
	server_up "$3"
}
serve org example.org "$ORG"
serve net example.net "$NET"
mkdir -m 700 alicehome bobhome
# A prekey for each timed seal, and one for the check after them.
n=0
while [ "$n" -lt $((RUNS + 1)) ]; do
	c=$((RUNS + 1 - n < 200 ? RUNS + 1 - n : 200))
	SMIMP_HOME="$W/bobhome" smimp-trust prekeys -i bob.key --count "$c" \
		>/dev/null
	n=$((n + c))
done
export SMIMP_HOME="$W/alicehome"
smimp-trust fetch -i alice.key bob@example.net >/dev/null
echo "a short note to bob" >msg

# once OUT [FLAGS]: the wall milliseconds of one seal.
once() {
	local a b out=$1
	shift
	a=$(date +%s%N)
	smimp-seal -i alice.key -r bob@example.net -o "$out" "$@" msg
	b=$(date +%s%N)
	echo $(( (b - a) / 1000 ))
}
: >with.txt
: >without.txt
for ((i = 0; i < RUNS; i++)); do
	once w.age >>with.txt
	once n.age --no-prekeys >>without.txt
	rm -f w.age n.age
done
grep -q -- '-> smimp-prekey ' <(smimp-seal -i alice.key -r bob@example.net msg) ||
	echo "bench: the last seal took no prekey" >&2

# stats FILE: median and mean, in ms.
stats() {
	sort -n "$1" | awk '{ v[NR] = $1; s += $1 }
	    END { printf "%.1f %.1f\n", v[int((NR + 1) / 2)] / 1000, s / NR / 1000 }'
}
read -r wm wa < <(stats with.txt)
read -r nm na < <(stats without.txt)
echo "--- smimp-seal to one recipient on loopback, $RUNS runs each (median, mean) ---"
printf '%-34s %7s ms %7s ms\n' "with a one-time prekey" "$wm" "$wa"
printf '%-34s %7s ms %7s ms\n' "--no-prekeys" "$nm" "$na"
printf '%-34s %7s ms %7s ms\n' "the prekey adds" \
	"$(awk -v a="$wm" -v b="$nm" 'BEGIN { printf "%.1f", a - b }')" \
	"$(awk -v a="$wa" -v b="$na" 'BEGIN { printf "%.1f", a - b }')"
