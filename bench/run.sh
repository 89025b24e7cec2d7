#!/bin/bash
# make bench: smimp-seal and smimp-open against age, age+minisign and gpg,
# and against this machine's limit, in one run.  Prints wall time and
# max RSS (median of RUNS runs) and every peer as a ratio to smimp.
# BENCH_SIZE (default 1G) sets the big file; RUNS (default 3) the runs.
# Then the 1 KiB seal+open pair against age's (small.sh), the trust
# store at its cap of 65,536 entries (trust.sh), the
# cost of a proof of work against Argon2id (work.sh), and what taking a
# one-time prekey adds to a seal (prekeys.sh).
set -euo pipefail
BIN=${1:?usage: run.sh BINDIR}
SIZE=${BENCH_SIZE:-1G}
RUNS=${RUNS:-3}
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

# Timed commands, smimp's and the peers' alike, run at realtime priority
# where that is allowed (root), so that other work on the machine does
# not skew one run against another.
RT=
chrt -f 10 true 2>/dev/null && RT="chrt -f 10"

cc -O2 -pthread -o limit "$here/limit.c" $(pkg-config --cflags --libs libsodium)

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "input: $SIZE random bytes, and a 1 KiB message; median of $RUNS runs; inputs warm in the page cache${RT:+; at realtime priority}"
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
		if ! $RT /usr/bin/time -o time.out -f '%e %M' bash -c "$*" \
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

# "-o": smimp writes OUT durably (fsynced, then renamed into place),
# the peers as they do with -o; ">file": standard output to a file.
measure "smimp seal -o" "smimp-seal -i alice.key -r bob.pub -o s.age big"
measure "smimp seal >file" "smimp-seal -i alice.key -r bob.pub big > s2.age"
measure "smimp seal >null" "smimp-seal -i alice.key -r bob.pub big > /dev/null"
measure "smimp open -o" "smimp-open -q -i bob.key -o s.out s.age"
cmp big s.out
measure "smimp open >file" "smimp-open -q -i bob.key s.age > s2.out"
cmp big s2.out
measure "smimp open >null" "smimp-open -q -i bob.key s.age > /dev/null"
rm -f s.out s2.out s2.age
measure "age seal -o" "age -e -r $AGE_R -o a.age big"
measure "age open -o" "age -d -i age.key -o a.out a.age"
rm -f a.out
measure "age+minisign seal -o" "age -e -r $AGE_R -o m.age big && minisign -S -s mini.key -m m.age"
measure "age+minisign seal >file" "age -e -r $AGE_R big > m2.age && minisign -S -s mini.key -m m2.age"
rm -f m2.age m2.age.minisig
measure "age+minisign open -o" "minisign -Vq -p mini.pub -m m.age && age -d -i age.key -o m.out m.age"
measure "age+minisign open >file" "minisign -Vq -p mini.pub -m m.age && age -d -i age.key m.age > m2.out"
rm -f m.out m2.out
measure "gpg seal -o" "$GPG -se -r bench@example.org -o g.gpg big"
measure "gpg open -o" "$GPG -d -o g.out g.gpg"
rm -f g.out g.gpg a.age

# Max RSS at other sizes: "at any size" is checked at 1 KiB and 1 MiB too.
head -c 1048576 /dev/urandom >mid
measure "smimp seal 1M" "smimp-seal -i alice.key -r bob.pub mid > mid.age"
measure "smimp open 1M" "smimp-open -q -i bob.key mid.age > mid.out"
measure "smimp seal 1K" "smimp-seal -i alice.key -r bob.pub small > small.age"
measure "smimp open 1K" "smimp-open -q -i bob.key small.age > small.out"

# The limit: crypto over every core, one read and one write, measured
# here and now (limit.c); -o's write is a durable one.
eval "$($RT ./limit big lim.tmp | awk '{ printf "%s=%s\n", toupper($1), $2 }')"
CORES=$(nproc)
lim() { awk -v b="$BYTES" -v c="$CRYPTO" -v r="$READ" -v w="$1" 'BEGIN { printf "%.3f", b / c + b / r + b / w }'; }
LIMIT_DURABLE=$(lim "$DURABLE")
LIMIT_WRITE=$(lim "$WRITE")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) b = 0.001; printf "%.2f", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
row() { printf '%-30s %9s s %9s MiB %9s\n' "$1" "$2" "$3" "$4"; }
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? v >= t : v <= t; print ok ? "PASS" : "MISS" }'; }
# peer NAME KEY SMIMP_KEY: a peer's row, as a ratio to smimp's time.
peer() { row "$1" "${T[$2]}" "$(mib "${M[$2]}")" "$(ratio "${T[$2]}" "${T[$3]}")"; }
own() { row "$1" "${T[$2]}" "$(mib "${M[$2]}")" "1.00"; }

echo
printf '%-30s %11s %13s %9s\n' "command" "wall" "max RSS" "vs smimp"
# section VERB AGE GPG MINISIGN+AGE: the rows of smimp-VERB, its peers
# (their labels) and its limits.
section() {
	echo "--- $1 ($SIZE) ---"
	own "smimp-$1 -o (durable)" "smimp $1 -o"
	peer "$2 -o" "age $1 -o" "smimp $1 -o"
	peer "$4 -o" "age+minisign $1 -o" "smimp $1 -o"
	peer "$3 -o" "gpg $1 -o" "smimp $1 -o"
	row "limit, durable write" "$LIMIT_DURABLE" "-" "$(ratio "$LIMIT_DURABLE" "${T[smimp $1 -o]}")"
	own "smimp-$1 >file" "smimp $1 >file"
	peer "$4 >file" "age+minisign $1 >file" "smimp $1 >file"
	row "limit, write" "$LIMIT_WRITE" "-" "$(ratio "$LIMIT_WRITE" "${T[smimp $1 >file]}")"
	own "smimp-$1 >/dev/null" "smimp $1 >null"
}
section seal "age -e" "gpg --sign --encrypt" "age -e + minisign -S"
section open "age -d" "gpg --decrypt" "minisign -V + age -d"
echo "--- machine ---"
awk -v c="$CRYPTO" -v r="$READ" -v w="$WRITE" -v d="$DURABLE" -v n="$CORES" 'BEGIN { printf "ChaCha20-Poly1305 + BLAKE2b on %d cores %.2f GB/s; read %.2f GB/s; write %.2f GB/s, durable %.2f GB/s\n", n, c / 1e9, r / 1e9, w / 1e9, d / 1e9 }'

echo
echo "--- targets ---"
faster() {	# faster WHAT PEER SMIMP TARGET
	local r
	r=$(ratio "${T[$2]}" "${T[$3]}")
	echo "$1 >= ${4}x faster: ${r}x $(verdict "$r" "$4" ">=")"
}
faster "seal -o vs age+minisign" "age+minisign seal -o" "smimp seal -o" 1.8
faster "seal >file vs age+minisign" "age+minisign seal >file" "smimp seal >file" 1.8
faster "open -o vs minisign+age -d" "age+minisign open -o" "smimp open -o" 1.8
faster "open >file vs minisign+age -d" "age+minisign open >file" "smimp open >file" 1.8
faster "seal -o vs gpg" "gpg seal -o" "smimp seal -o" 3
within() {	# within WHAT SMIMP LIMIT
	local r
	r=$(ratio "${T[$2]}" "$3")
	echo "$1 within 1.15x of the limit: ${r}x $(verdict "$r" 1.15 "<=")"
}
within "seal -o" "smimp seal -o" "$LIMIT_DURABLE"
within "seal >file" "smimp seal >file" "$LIMIT_WRITE"
within "open -o" "smimp open -o" "$LIMIT_DURABLE"
within "open >file" "smimp open >file" "$LIMIT_WRITE"
maxrss=0
for k in "${!M[@]}"; do
	case $k in smimp*) [ "${M[$k]}" -gt "$maxrss" ] && maxrss=${M[$k]};; esac
done
echo "smimp max RSS under 8 MiB (1 KiB, 1 MiB, $SIZE): $(mib "$maxrss") MiB $(verdict "$maxrss" 8192 "<=")"

# The 1 KiB pair against age's, in interleaved rounds (small.sh).
echo
$RT bash "$here/small.sh" "$BIN"

echo
bash "$here/trust.sh" "$BIN"
echo
bash "$here/work.sh" "$BIN"
echo
RUNS=100 bash "$here/prekeys.sh" "$BIN"
