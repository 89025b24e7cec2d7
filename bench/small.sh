#!/bin/bash
# The 1 KiB case of issue 16: a seal+open pair of smimp against age's
# (age -e, then age -d), as run.sh's pair, SMALL_N pairs of each (default
# 200) taken in SMALL_ROUNDS interleaved rounds (default 10: smimp's
# batch then age's, then age's first), so that the load of a shared
# machine falls on both alike.  Wall time per pair, and CPU time (user +
# system of the commands, which load does not inflate); the verdict is
# on the median of the rounds' wall ratios.  Then each command alone and
# the start of a program that does nothing: one linked as smimp's
# commands are (bench/smimp-start: cmd_start and cmd_exit), one with no
# C library at all (exec alone), and age's (age --version).
# Run by run.sh; alone: bench/small.sh BINDIR.
set -euo pipefail
BIN=$(cd "${1:?usage: small.sh BINDIR}" && pwd)
N=${SMALL_N:-200}
ROUNDS=${SMALL_ROUNDS:-10}
START=${SMALL_START:-$BIN/../bench/smimp-start}
for tool in age age-keygen cc; do
	command -v "$tool" >/dev/null || { echo "small: missing $tool (run make deps)" >&2; exit 1; }
done
[ -x "$START" ] || { echo "small: no $START (run make)" >&2; exit 1; }
START=$(cd "$(dirname "$START")" && pwd)/$(basename "$START")
if [ "$ROUNDS" -lt 1 ] || [ "$N" -lt "$ROUNDS" ]; then
	echo "small: SMALL_N must be at least SMALL_ROUNDS, at least 1" >&2
	exit 2
fi
PER=$((N / ROUNDS))
N=$((PER * ROUNDS))
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/smimp-small.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM
cd "$W"

# Keys as run.sh makes them: bob's home trusts alice.
head -c 1024 /dev/urandom >small
"$BIN/smimp-keygen" -u alice@example.org -o alice --no-passphrase >/dev/null 2>&1
"$BIN/smimp-keygen" -u bob@example.net -o bob --no-passphrase >/dev/null 2>&1
SMIMP_HOME=$W/bobhome "$BIN/smimp-trust" add alice.pub --tier trusted >/dev/null
export SMIMP_HOME=$W/bobhome
age-keygen -o age.key 2>/dev/null
AGE_R=$(age-keygen -y age.key)
# exec and exit, no C library: what is left under any program's start.
cat >bare.c <<'EOF'
void _start(void) { __asm__ volatile("mov $60, %eax; xor %edi, %edi; syscall"); }
EOF
BARE=
if [ "$(uname -m)" = x86_64 ] && cc -O2 -static -nostdlib -o bare bare.c 2>/dev/null; then
	BARE=$W/bare
fi

smimp_seal() { "$BIN/smimp-seal" -i alice.key -r bob.pub small >x.age; }
smimp_open() { "$BIN/smimp-open" -q -i bob.key x.age >/dev/null; }
age_seal() { age -e -r "$AGE_R" small >y.age; }
age_open() { age -d -i age.key y.age >/dev/null; }
smimp_pair() { smimp_seal && smimp_open; }
age_pair() { age_seal && age_open; }
smimp_start() { "$START"; }
bare_start() { "$BARE"; }
age_start() { age --version >/dev/null; }
smimp_pair && age_pair
cmp small <("$BIN/smimp-open" -q -i bob.key x.age)

# CPU: the ticks of user and system time of the waited-for children of
# this shell so far (fields 16 and 17 of its stat, past a name with no
# space), into C; wall: microseconds, into T.  Neither forks.
child_cpu() {
	local f
	read -ra f </proc/$$/stat
	C=$((f[15] + f[16]))
}
now_us() { T=${EPOCHREALTIME/[.,]/}; }
TICK=$(getconf CLK_TCK)
# batch FUNC COUNT: run FUNC COUNT times; sets B_WALL (microseconds)
# and B_CPU (ticks).
batch() {
	local i t0 c0
	child_cpu; c0=$C
	now_us; t0=$T
	for ((i = 0; i < $2; i++)); do
		"$1" || { echo "small: $1 failed" >&2; exit 1; }
	done
	now_us; B_WALL=$((T - t0))
	child_cpu; B_CPU=$((C - c0))
}

# Interleaved rounds: smimp's batch and age's, their order swapped
# each round.
sw=0 aw=0 sc=0 ac=0 ratios=()
for ((r = 0; r < ROUNDS; r++)); do
	if ((r % 2 == 0)); then
		batch smimp_pair "$PER"; s=$B_WALL; sc=$((sc + B_CPU))
		batch age_pair "$PER"; a=$B_WALL; ac=$((ac + B_CPU))
	else
		batch age_pair "$PER"; a=$B_WALL; ac=$((ac + B_CPU))
		batch smimp_pair "$PER"; s=$B_WALL; sc=$((sc + B_CPU))
	fi
	sw=$((sw + s)) aw=$((aw + a))
	ratios+=("$(awk -v s="$s" -v a="$a" 'BEGIN { printf "%.4f", s / a }')")
done
median_ratio=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')

ms() { awk -v us="$1" -v n="$2" 'BEGIN { printf "%.2f", us / 1e3 / n }'; }
cpums() { awk -v t="$1" -v hz="$TICK" -v n="$2" 'BEGIN { printf "%.2f", t * 1000 / hz / n }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) b = 1e-9; printf "%.2f", a / b }'; }

echo "--- 1 KiB seal+open pair: $N pairs each, $ROUNDS interleaved rounds ---"
printf '%-34s %9s %12s\n' "" "wall/pair" "CPU/pair"
printf '%-34s %6s ms %9s ms\n' "smimp-seal + smimp-open" "$(ms "$sw" "$N")" "$(cpums "$sc" "$N")"
printf '%-34s %6s ms %9s ms\n' "age -e + age -d" "$(ms "$aw" "$N")" "$(cpums "$ac" "$N")"
printf '%-34s %9s %12s\n' "smimp / age" "$(ratio "$sw" "$aw")" "$(ratio "$sc" "$ac")"
echo "median of the rounds' wall ratios: $median_ratio (each: ${ratios[*]})"

echo "--- each alone: $N runs, wall and CPU per run ---"
one() {
	batch "$2" "$N"
	printf '%-34s %6s ms %9s ms\n' "$1" "$(ms "$B_WALL" "$N")" "$(cpums "$B_CPU" "$N")"
}
one "smimp-seal (1 KiB)" smimp_seal
one "smimp-open (1 KiB)" smimp_open
one "age -e (1 KiB)" age_seal
one "age -d (1 KiB)" age_open
one "start: linked as smimp's commands" smimp_start
[ -n "$BARE" ] && one "start: exec alone, no C library" bare_start
one "start: age --version" age_start

verdict=$(awk -v r="$median_ratio" 'BEGIN { print r <= 0.5 ? "PASS" : "MISS" }')
echo "1 KiB pair at most 0.5x of age: ${median_ratio}x $verdict"
