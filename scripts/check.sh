#!/bin/sh
# Run the bats suites on each build dir given, then print one closing
# line, "N passed, N failed, N skipped", over all of them.
set -u
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
for build in "$@"; do
	echo "== suites on $build"
	SMIMP_BUILD=$build bats t | tee -a "$log" || rc=1
done
passed=$(grep -c '^ok .*' "$log" | tr -d ' ')
skipped=$(grep -c '^ok .* # skip' "$log" | tr -d ' ')
failed=$(grep -c '^not ok ' "$log" | tr -d ' ')
echo "$((passed - skipped)) passed, $failed failed, $skipped skipped"
# The pipe's status is tee's: the count decides.
[ "$failed" -eq 0 ] || rc=1
exit $rc
