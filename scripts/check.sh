#!/bin/sh
# scripts/check.sh BUILD... [-- SUITE...]: run every bats suite on each
# build dir given (the SQLite store, the default), then the SUITEs, the
# ones that run smimpd, on the PostgreSQL store (t/with-postgresql) with
# the first build; then print one closing line over all of them,
# "N passed, N failed, N skipped".
#
# Every (suite, build, store) is one job, and CHECK_JOBS jobs run at a
# time (default 4: on a two-core machine, three left a core idle a
# sixth of the time, while suites wait on timeouts, servers and disks),
# each suite's tests in order.  The jobs of all the builds and stores
# share one queue, the longest first (as measured), so that the last to
# start are short ones and no job runs alone at the end; the order
# changes only the wall time.  Each job's output comes whole, under a
# line "== SUITE on BUILD (STORE)", and each test's line ends with the
# time it took (bats --timing), so that a log says where a slow run
# spent its time.
#
# The fault suites run 200 messages a round (t/faults/faults.bash) and
# two rounds on the first build; `make faults` runs them at 1,000 a
# round and three rounds.  On the sanitizer build they run one round of
# 100 messages, and two such rounds on PostgreSQL: a sanitizer looks for
# faults in memory on each path the rounds take, and the paths are the
# same in each round; the rounds on PostgreSQL differ from those on
# SQLite by the store alone.  Set FAULT_SCALE or FAULT_ROUNDS to run
# every job at that size.
set -u
here=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp)
jobsfile=$(mktemp)
trap 'rm -f "$log" "$jobsfile"' EXIT
builds=
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	builds="$builds $1"
	shift
done
[ $# -gt 0 ] && shift
first=${builds# }
first=${first%% *}
# The longest suites, each as long as it took on the build and store
# where it took longest, longest first; the others come after them.
SLOW="0700 0610 1500 1100 1340 1620 1610 0750 1110 1320 1400 0800 1200"
SLOW="$SLOW 1210 1410 1700 0650 1220 1120 0520 1370 1000 1350 0400 1360"
SLOW="$SLOW 0910 1130 1310 1030 0500 1040 0510 0920 1300 1230 1600 1420"
# jobs_of STORE BUILD SUITE...: a line "STORE BUILD SUITE" for each.
jobs_of() {
	s=$1 b=$2
	shift 2
	for f in "$@"; do
		echo "$s $b $f"
	done
}
# order: the jobs on stdin, those of the SLOW suites first, in that
# order, then the others as given; a suite's jobs together, those of
# the later builds (the sanitizer's, slower) first, PostgreSQL's last.
order() {
	awk -v slow="$SLOW" -v first="$first" 'BEGIN {
		n = split(slow, a, " ")
		for (i = 1; i <= n; i++)
			rank[a[i]] = i
	}
	{
		f = $3
		sub(/.*\//, "", f)
		k = substr(f, 1, 4)
		kind = $1 == "postgresql" ? 2 : $2 == first ? 1 : 0
		printf "%04d %d %06d %s\n", k in rank ? rank[k] : 9999, kind,
		    NR, $0
	}' | sort | cut -d' ' -f4-
}
{
	for b in $builds; do
		# shellcheck disable=SC2046
		jobs_of sqlite "$b" $(ls t/*.bats)
	done
	[ $# -gt 0 ] && jobs_of postgresql "$first" "$@"
} | order >"$jobsfile"

# The PostgreSQL jobs' cluster lives as long as all the jobs.
pg=
[ $# -gt 0 ] && pg="bash t/with-postgresql"
jobs=${CHECK_JOBS:-4}
export FIRST="$first"
t0=$(date +%s)
if [ "$jobs" -gt 1 ] && command -v parallel >/dev/null; then
	# shellcheck disable=SC2086
	$pg parallel --will-cite --jobs "$jobs" --group --colsep ' ' \
		sh "$here/check-suite.sh" {1} {2} {3} \
		<"$jobsfile" | tee "$log"
else
	# shellcheck disable=SC2086
	$pg sh -c 'while read -r s b f; do
		sh "$1/check-suite.sh" "$s" "$b" "$f"
	done' sh "$here" <"$jobsfile" | tee "$log"
fi
echo "== all: $(($(date +%s) - t0)) s"
passed=$(grep -c '^ok .*' "$log" | tr -d ' ')
skipped=$(grep -c '^ok .* # skip' "$log" | tr -d ' ')
failed=$(grep -c '^not ok ' "$log" | tr -d ' ')
broken=$(grep -c "^== .*: exit [0-9]*, [0-9]* s$" "$log" | tr -d " ")
echo "$((passed - skipped)) passed, $failed failed, $skipped skipped"
[ "$broken" -eq 0 ] || echo "$broken suites ended without their tests' results"
[ "$failed" -eq 0 ] && [ "$broken" -eq 0 ]
