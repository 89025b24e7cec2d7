#!/bin/bash
# Proof of work (doc/PROTOCOL.md 8.9), on one core: what a sender spends
# at the default difficulty (the median of WORK_RUNS solves, default 15,
# each for a fresh stamp), what a server spends to check one proof (the
# stamp's hash and the proof's value), and, as the function it was
# weighed against, libsodium's Argon2id (crypto_pwhash) per evaluation
# at its interactive and at its minimum limits, each as a ratio to the
# server's check.  Run by run.sh; alone: bench/work.sh BINDIR.
set -euo pipefail
BIN=$(cd "${1:?usage: work.sh BINDIR}" && pwd)
RUNS=${WORK_RUNS:-15}
TOOL="$BIN/../t/worktool"
[ -x "$TOOL" ] || { echo "bench: missing $TOOL (run make)" >&2; exit 1; }
out=$("$TOOL" bench "$RUNS")
eval "$(awk '{ printf "%s=%s\n", toupper($1), $2 }' <<<"$out")"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) b = 0.001; printf "%.0f", a / b }'; }
verdict() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { print (v >= lo && v <= hi) ? "PASS" : "MISS" }'; }
row() { printf '%-44s %14s %12s\n' "$1" "$2" "$3"; }

echo "--- proof of work: BLAKE2b-256 at $DEFAULT_BITS bits (the default), one core; median of $RUNS ---"
printf '%-44s %14s %12s\n' "" "time" "vs check"
row "sender: tries a second" "$(awk -v r="$TRIES_PER_SECOND" 'BEGIN { printf "%.2f M", r / 1e6 }')" "-"
row "sender: one proof, median" "$SOLVE_MEDIAN_S s" "-"
row "sender: one proof, mean" "$SOLVE_MEAN_S s" "-"
row "sender: one proof, expected (2^bits / rate)" "$SOLVE_EXPECTED_S s" "-"
row "server: check one proof (SH + value)" "$VERIFY_US us" "1"
row "Argon2id interactive ($ARGON2ID_INTERACTIVE_MIB MiB), one evaluation" "$ARGON2ID_INTERACTIVE_MS ms" \
	"$(ratio "$(awk -v m="$ARGON2ID_INTERACTIVE_MS" 'BEGIN { print m * 1000 }')" "$VERIFY_US")"
row "Argon2id minimum ($ARGON2ID_MIN_KIB KiB), one evaluation" "$ARGON2ID_MIN_MS ms" \
	"$(ratio "$(awk -v m="$ARGON2ID_MIN_MS" 'BEGIN { print m * 1000 }')" "$VERIFY_US")"
awk -v m="$ARGON2ID_INTERACTIVE_MS" 'BEGIN { printf "Argon2id interactive: a 1 s proof is %.0f evaluations; its check costs %.0f ms\n", 1000 / m, m }'
echo "--- targets ---"
echo "sender about a second (median 0.5 to 2 s): $SOLVE_MEDIAN_S s $(verdict "$SOLVE_MEDIAN_S" 0.5 2)"
echo "server well under a millisecond (at most 100 us): $VERIFY_US us $(verdict "$VERIFY_US" 0 100)"
