#!/bin/sh
# scripts/check.sh BUILD... [-- SUITE...]: run every bats suite on each
# build dir given (the SQLite store, the default), then the SUITEs, the
# ones that run smimpd, on the PostgreSQL store (t/with-postgresql) with
# the first build; then print one closing line over all of them,
# "N passed, N failed, N skipped".
#
# Each test's line ends with the time it took (bats --timing), so that
# a log says where a slow run spent its time.
#
# Suites run CHECK_JOBS at a time (default 4: on a two-core machine,
# three left a core idle a sixth of the time, while suites wait on
# timeouts, servers and disks), each suite's tests in order.
#
# The fault suites run 200 messages a round (t/faults/faults.bash) and
# two rounds on the first build; `make faults` runs them at 1,000 a
# round and three rounds.  On the sanitizer build they run one round of
# 100 messages, and two such rounds on PostgreSQL: a sanitizer looks for
# faults in memory on each path the rounds take, and the paths are the
# same in each round; the rounds on PostgreSQL differ from those on
# SQLite by the store alone.  Set FAULT_SCALE or FAULT_ROUNDS to run
# every pass at that size.
set -u
log=$(mktemp)
trap 'rm -f "$log" "$log.rc"' EXIT
builds=
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	builds="$builds $1"
	shift
done
[ $# -gt 0 ] && shift
jobs=${CHECK_JOBS:-4}
par=
if [ "$jobs" -gt 1 ] && command -v parallel >/dev/null; then
	par="--jobs $jobs --no-parallelize-within-files"
fi
# The longest suites start first (as measured, longest first), so that
# the last to start are short ones and no job runs alone at the end;
# the order changes only the wall time.
SLOW="0700 0610 1500 1100 1340 1620 1610 0750 1110 1320 1400 0800 1200"
SLOW="$SLOW 1210 1410 1700 0650 1220 1120 0520 1370 1000 1350 0400 1360"
SLOW="$SLOW 0910 1130 1310 1030 0500 1040 0510 0920 1300 1230 1600 1420"
# order SUITE...: the SLOW ones among them first, in that order, then
# the others as given.
order() {
	for n in $SLOW; do
		for f in "$@"; do
			case ${f##*/} in "$n"-*) echo "$f" ;; esac
		done
	done
	for f in "$@"; do
		b=${f##*/}
		case " $SLOW " in *" ${b%%-*} "*) ;; *) echo "$f" ;; esac
	done
}
scale=${FAULT_SCALE:-}
rounds=${FAULT_ROUNDS:-}
rc=0
# run CMD...: CMD's output into the log and on stdout; its own status
# counts too (a suite that could not start reports no "not ok").
run() {
	t0=$(date +%s)
	{ "$@"; echo $? >"$log.rc"; } | tee -a "$log"
	[ "$(cat "$log.rc")" -eq 0 ] || rc=1
	echo "== $(($(date +%s) - t0)) s"
}
first=
for build in $builds; do
	if [ -n "$first" ]; then
		export FAULT_SCALE="${scale:-100}" FAULT_ROUNDS="${rounds:-1}"
	else
		export FAULT_ROUNDS="${rounds:-2}"
	fi
	first=${first:-$build}
	echo "== suites on $build"
	export SMIMP_BUILD="$build"
	# shellcheck disable=SC2046,SC2086
	run bats --timing $par $(order t/*.bats)
done
if [ $# -gt 0 ] && [ -n "$first" ]; then
	echo "== the suites that run smimpd, on the PostgreSQL store, on $first"
	export SMIMP_BUILD="$first"
	export FAULT_SCALE="${scale:-100}" FAULT_ROUNDS="${rounds:-2}"
	# shellcheck disable=SC2046,SC2086
	run bash t/with-postgresql bats --timing $par $(order "$@")
fi
passed=$(grep -c '^ok .*' "$log" | tr -d ' ')
skipped=$(grep -c '^ok .* # skip' "$log" | tr -d ' ')
failed=$(grep -c '^not ok ' "$log" | tr -d ' ')
echo "$((passed - skipped)) passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] || rc=1
exit $rc
