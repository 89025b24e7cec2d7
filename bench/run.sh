#!/bin/bash
# make bench: smimp-seal and smimp-open against age, age+minisign and gpg,
# and against this machine's limit, in one run.  Prints wall time and
# max RSS (median of RUNS runs) and every peer as a ratio to smimp.
# BENCH_SIZE (default 1G) sets the big file; RUNS (default 3) the runs.
# Then the trust store at its cap of 65,536 entries (trust.sh), the
# cost of a proof of work against Argon2id (work.sh), and what taking a
# one-time prekey adds to a seal (prekeys.sh).
set -euo pipefail
BIN=${1:?usage: run.sh BINDIR}
SIZE=${BENCH_SIZE:-1G}
RUNS=${RUNS:-3}
SMALL_N=${SMALL_N:-200}
export PATH="$BIN:$PATH"
for tool in age age-keygen minisign gpg /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "bench: missing $tool (run make deps)" >&2; exit 1; }
done
here=$(cd "$(dirname "$0")" && pwd)
BIN=$(cd "$BIN" && pwd)
export PATH="$BIN:$PATH"
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/smimp-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM
cd "$W"

cc -O2 -o limit "$here/limit.c" $(pkg-config --cflags --libs libsodium)

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "input: $SIZE random bytes, and a 1 KiB message; median of $RUNS runs; inputs warm in the page cache"
head -c "$SIZE" /dev/urandom >big
BYTES=$(stat -c %s big)
head -c 1024 /dev/urandom >small

# Keys: smimp (no passphrase, as for a pipeline), age, minisign, gpg.
smimp-keygen -u alice@example.org -o alice --no-passphrase >/dev/null 2>&1
smimp-keygen -u bob@example.net -o bob --no-passphrase >/dev/null 2>&1
SMIMP_HOME=$W/bobhome smimp-trust add alice.pub --tier trusted >/dev/null
export SMIMP_HOME=$W/bobhome
age-keygen -o age.key 2>/dev/null
AGE_R=$(age-keygen -y age.key)
minisign -G -W -p mini.pub -s mini.key >/dev/null 2>&1
export GNUPGHOME=$W/gnupg
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'bench <bench@example.org>' default default never 2>/dev/null
GPG="gpg --batch --yes --quiet --trust-model always"

# measure NAME CMD...: run RUNS times; record the median seconds and KB.
declare -A T M
measure() {
	local name=$1; shift
	local ts=() ms=() i out
	for ((i = 0; i < RUNS; i++)); do
		# Earlier runs' dirty pages are written back first, untimed,
		# so that no command pays for another's writes.
		sync
		if ! /usr/bin/time -o time.out -f '%e %M' bash -c "$*" \
		    >/dev/null 2>err.out; then
			echo "bench: '$name' failed: $*" >&2
			cat err.out >&2
			exit 1
		fi
		out=$(tail -1 time.out)
		ts+=("${out% *}")
		ms+=("${out#* }")
	done
	T[$name]=$(printf '%s\n' "${ts[@]}" | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p")
	M[$name]=$(printf '%s\n' "${ms[@]}" | sort -g | tail -1)
}

measure "smimp seal" "smimp-seal -i alice.key -r bob.pub big > s.age"
measure "smimp seal >null" "smimp-seal -i alice.key -r bob.pub big > /dev/null"
measure "smimp open >file" "smimp-open -q -i bob.key -o s.out s.age"
measure "smimp open >null" "smimp-open -q -i bob.key s.age > /dev/null"
cmp big s.out
measure "age -e" "age -e -r $AGE_R big > a.age"
measure "age -e >null" "age -e -r $AGE_R big > /dev/null"
measure "age -d >file" "age -d -i age.key a.age > a.out"
measure "age -d >null" "age -d -i age.key a.age > /dev/null"
measure "age+minisign seal" "age -e -r $AGE_R big > m.age && minisign -S -s mini.key -m m.age"
measure "age+minisign open >file" "minisign -Vq -p mini.pub -m m.age && age -d -i age.key m.age > m.out"
measure "gpg sign+encrypt" "$GPG -se -r bench@example.org -o g.gpg big"
measure "gpg decrypt >file" "$GPG -d -o g.out g.gpg"
rm -f s.out a.out m.out g.out

eval "$(./limit lim.tmp | awk '{ printf "%s=%s\n", toupper($1), $2 }')"
CORES=$(nproc)
SEAL_LIMIT=$(awk -v b="$BYTES" -v c="$CHACHA" -v h="$BLAKE2B" -v n="$CORES" 'BEGIN { printf "%.3f", b * (1 / c + 1 / h) / n }')
OPEN_LIMIT=$(awk -v s="$SEAL_LIMIT" -v b="$BYTES" -v w="$WRITE" 'BEGIN { printf "%.3f", s + b / w }')

# The 1 KiB case: SMALL_N sequential pairs, per process.
small_pairs() {
	local start end i
	start=$(date +%s.%N)
	for ((i = 0; i < SMALL_N; i++)); do eval "$1"; done
	end=$(date +%s.%N)
	awk -v a="$start" -v b="$end" -v n="$SMALL_N" 'BEGIN { printf "%.2f", (b - a) * 1000 / n }'
}
SMALL_SMIMP=$(small_pairs "smimp-seal -i alice.key -r bob.pub small > x.age && smimp-open -q -i bob.key x.age > /dev/null")
SMALL_AGE=$(small_pairs "age -e -r $AGE_R small > y.age && age -d -i age.key y.age > /dev/null")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) b = 0.001; printf "%.2f", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
row() { printf '%-26s %9s s %9s MiB %9s\n' "$1" "$2" "$3" "$4"; }
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? v >= t : v <= t; print ok ? "PASS" : "MISS" }'; }

echo
printf '%-26s %11s %13s %9s\n' "command" "wall" "max RSS" "vs smimp"
echo "--- seal ($SIZE) ---"
row "smimp-seal >file" "${T[smimp seal]}" "$(mib "${M[smimp seal]}")" "1.00"
row "smimp-seal >/dev/null" "${T[smimp seal >null]}" "$(mib "${M[smimp seal >null]}")" "1.00"
row "age -e >file" "${T[age -e]}" "$(mib "${M[age -e]}")" "$(ratio "${T[age -e]}" "${T[smimp seal]}")"
row "age -e >/dev/null" "${T[age -e >null]}" "$(mib "${M[age -e >null]}")" "$(ratio "${T[age -e >null]}" "${T[smimp seal >null]}")"
row "age -e + minisign -S" "${T[age+minisign seal]}" "$(mib "${M[age+minisign seal]}")" "$(ratio "${T[age+minisign seal]}" "${T[smimp seal]}")"
row "gpg --sign --encrypt" "${T[gpg sign+encrypt]}" "$(mib "${M[gpg sign+encrypt]}")" "$(ratio "${T[gpg sign+encrypt]}" "${T[smimp seal]}")"
row "limit (crypto on $CORES cores)" "$SEAL_LIMIT" "-" "$(ratio "$SEAL_LIMIT" "${T[smimp seal >null]}")"
echo "--- open ($SIZE) ---"
row "smimp-open >file" "${T[smimp open >file]}" "$(mib "${M[smimp open >file]}")" "1.00"
row "smimp-open >/dev/null" "${T[smimp open >null]}" "$(mib "${M[smimp open >null]}")" "1.00"
row "age -d >file" "${T[age -d >file]}" "$(mib "${M[age -d >file]}")" "$(ratio "${T[age -d >file]}" "${T[smimp open >file]}")"
row "age -d >/dev/null" "${T[age -d >null]}" "$(mib "${M[age -d >null]}")" "$(ratio "${T[age -d >null]}" "${T[smimp open >null]}")"
row "minisign -V + age -d" "${T[age+minisign open >file]}" "$(mib "${M[age+minisign open >file]}")" "$(ratio "${T[age+minisign open >file]}" "${T[smimp open >file]}")"
row "gpg --decrypt" "${T[gpg decrypt >file]}" "$(mib "${M[gpg decrypt >file]}")" "$(ratio "${T[gpg decrypt >file]}" "${T[smimp open >file]}")"
row "limit (+ one spool write)" "$OPEN_LIMIT" "-" "$(ratio "$OPEN_LIMIT" "${T[smimp open >file]}")"
echo "--- 1 KiB seal+open pair, per pair ($SMALL_N pairs) ---"
printf '%-26s %9s ms\n' "smimp-seal + smimp-open" "$SMALL_SMIMP"
printf '%-26s %9s ms %9s\n' "age -e + age -d" "$SMALL_AGE" "$(ratio "$SMALL_AGE" "$SMALL_SMIMP")"
echo "--- machine ---"
awk -v c="$CHACHA" -v h="$BLAKE2B" -v w="$WRITE" 'BEGIN { printf "ChaCha20-Poly1305 %.2f GB/s/core, BLAKE2b %.2f GB/s/core, file write %.2f GB/s\n", c / 1e9, h / 1e9, w / 1e9 }'

echo
echo "--- targets ---"
r=$(ratio "${T[age+minisign seal]}" "${T[smimp seal]}"); echo "seal >= 1.5x faster than age+minisign: ${r}x $(verdict "$r" 1.5 ">=")"
r=$(ratio "${T[gpg sign+encrypt]}" "${T[smimp seal]}"); echo "seal >= 3x faster than gpg: ${r}x $(verdict "$r" 3 ">=")"
r=$(ratio "${T[age+minisign open >file]}" "${T[smimp open >file]}"); echo "open >= 1.5x faster than minisign+age -d: ${r}x $(verdict "$r" 1.5 ">=")"
r=$(ratio "${T[smimp seal >null]}" "$SEAL_LIMIT"); echo "seal within 1.15x of the limit: ${r}x $(verdict "$r" 1.15 "<=")"
r=$(ratio "${T[smimp open >file]}" "$OPEN_LIMIT"); echo "open within 1.15x of the limit: ${r}x $(verdict "$r" 1.15 "<=")"
maxrss=0
for k in "smimp seal" "smimp seal >null" "smimp open >file" "smimp open >null"; do
	[ "${M[$k]}" -gt "$maxrss" ] && maxrss=${M[$k]}
done
echo "smimp max RSS under 8 MiB: $(mib "$maxrss") MiB $(verdict "$maxrss" 8192 "<=")"
r=$(ratio "$SMALL_SMIMP" "$SMALL_AGE"); echo "1 KiB pair at most 0.5x of age: ${r}x $(verdict "$r" 0.5 "<=")"

echo
bash "$here/trust.sh" "$BIN"
echo
bash "$here/work.sh" "$BIN"
echo
RUNS=100 bash "$here/prekeys.sh" "$BIN"
