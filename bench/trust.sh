#!/bin/bash
# The trust store at its cap: 65,536 entries, as many of them pinned to
# an identity log as its 16 MiB hold (the rest tiers for addresses and
# domains), made by t/trusttool.  Prints the wall time (median of RUNS
# runs) of commands that load it: list, show, a change (load, change,
# rewrite), and a seal to 256 pinned recipients (one lookup each).
# Run by run.sh; alone: bench/trust.sh BINDIR.
set -euo pipefail
BIN=$(cd "${1:?usage: trust.sh BINDIR}" && pwd)
RUNS=${RUNS:-3}
N=65536
PINNED=${TRUST_PINNED:-21000}
TOOL="$BIN/../t/trusttool"
export PATH="$BIN:$PATH"
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/smimp-tbench.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W"
export SMIMP_HOME=$W/home
mkdir -m 700 home
"$TOOL" store home/trust "$N" "$PINNED"
smimp-keygen -u alice@example.org -o alice --no-passphrase >/dev/null 2>&1
rcpts=()
for ((i = PINNED - 255; i <= PINNED; i++)); do rcpts+=(-r "user$i@example.org"); done
echo hello >msg

# median CMD...: the median wall seconds of RUNS runs of CMD.
median() {
	local ts=() i a b
	for ((i = 0; i < RUNS; i++)); do
		a=$(date +%s.%N)
		"$@" >/dev/null 2>err.out || { echo "bench: '$*' failed" >&2; cat err.out >&2; exit 1; }
		b=$(date +%s.%N)
		ts+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b - a }')")
	done
	printf '%s\n' "${ts[@]}" | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p"
}

echo "--- trust store at its cap: $N entries, $PINNED pinned, $(stat -c %s home/trust) bytes ---"
LIST=$(median smimp-trust list)
printf '%-34s %9s s\n' "smimp-trust list" "$LIST"
printf '%-34s %9s s\n' "smimp-trust show (last entry)" "$(median smimp-trust show "@d$N.example")"
printf '%-34s %9s s\n' "smimp-trust set (a change)" "$(median smimp-trust set "user$PINNED@example.org" trusted)"
# The store alone: no directory checks, no prekeys (no network).
printf '%-34s %9s s\n' "smimp-seal, 256 pinned recipients" "$(SMIMP_REFRESH_INTERVAL=366d median smimp-seal --no-prekeys -i alice.key "${rcpts[@]}" -o m.age msg)"
echo "target: smimp-trust list at $N entries well under 1 s: $LIST s $(awk -v t="$LIST" 'BEGIN { print t < 0.5 ? "PASS" : "MISS" }')"
