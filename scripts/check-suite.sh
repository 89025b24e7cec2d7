#!/bin/sh
# scripts/check-suite.sh STORE BUILD SUITE: one job of scripts/check.sh,
# SUITE's tests in order on BUILD's binaries and on STORE (sqlite, or
# postgresql under t/with-postgresql), at the fault suites' size for
# that build and store (FIRST names the first build; check.sh says
# why).  Prints, whole: a line "== SUITE on BUILD (STORE)", bats'
# output, then "== SECONDS s" (with "exit N" before it when bats failed
# and no test's line says so: a suite that could not start).
set -u
store=$1 build=$2 suite=$3
if [ "$store" = postgresql ]; then
	export FAULT_SCALE="${FAULT_SCALE:-100}" FAULT_ROUNDS="${FAULT_ROUNDS:-2}"
elif [ "$build" = "${FIRST:-$build}" ]; then
	export FAULT_ROUNDS="${FAULT_ROUNDS:-2}"
else
	export FAULT_SCALE="${FAULT_SCALE:-100}" FAULT_ROUNDS="${FAULT_ROUNDS:-1}"
fi
export SMIMP_BUILD="$build" SMIMP_TEST_STORE="$store"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
t0=$(date +%s)
bats --timing "$suite" >"$out" 2>&1
rc=$?
t=$(($(date +%s) - t0))
echo "== $suite on $build ($store)"
cat "$out"
if [ "$rc" -ne 0 ] && ! grep -q '^not ok ' "$out"; then
	echo "== $suite on $build ($store): exit $rc, $t s"
	exit 1
fi
echo "== $t s"
[ "$rc" -eq 0 ]
