#!/usr/bin/env bats
# bench/cluster.sh (make bench) at a tiny size: one table with a row for
# SQLite, PostgreSQL with one, two and three nodes behind haproxy, and
# PostgreSQL's commit rate, each filled in; nothing left behind.  No
# number is judged: the machine running the tests may be busy.
# Skipped without PostgreSQL 15 or haproxy, and on the sanitizer build:
# the script is the same whatever the build, and t/1350 runs the nodes
# of a cluster under the sanitizer.

load helper

setup() {
	common_setup
	[ "${SMIMP_BUILD##*/}" != build-san ] || skip "the bench script is checked on the normal build"
	BENCH="$REPO/bench/cluster.sh"
}

# fields LABEL: the row of the table that LABEL begins, without it,
# its fields separated by one blank.
fields() {
	printf '%s\n' "${lines[@]}" | grep -F "$1  " | cut -c30- | tr -s ' ' |
		sed 's/^ //'
}

teardown() {
	[ -z "${BENCH_DIR:-}" ] || rm -rf "$BENCH_DIR"
}

@test "the cluster bench measures every row, and leaves nothing behind" {
	local pgbin=${PG_BIN:-/usr/lib/postgresql/15/bin}
	[ -x "$pgbin/initdb" ] && [ -x "$pgbin/pg_test_fsync" ] ||
		skip "no PostgreSQL 15 here (apt-get install postgresql-15)"
	command -v haproxy >/dev/null || skip "no haproxy here (apt-get install haproxy)"
	# On disk, where PostgreSQL's owner (nobody, under root) may search.
	BENCH_DIR=$(mktemp -d /var/tmp/smimp-t1370.XXXXXX)
	chmod 755 "$BENCH_DIR"
	export BENCH_DIR
	CLUSTER_N=50 CLUSTER_RCPTS=2 CONNS=4 run bash "$BENCH" "$SMIMP_BUILD/bin"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "cluster benchmark: 50 messages of 4 KiB, 4 connections, loopback, "* ]]
	# Each row: its label, then msg/s, p99 and CPU per node (joined by
	# +), the other costs, and ratios; "-" where a row has no such
	# cost.  The bytes the disk took are "-" where no block device is.
	n='[0-9]+(\.[0-9]+)?' w='([0-9]+|-) ([0-9.]+|-)'
	[[ "$(fields 'SQLite, 1 node')" =~ ^$n\ 1\.00\ $n\ 1\.00\ $n\ $n\ -\ -\ $n\ 1\.00\ -\ -\ -\ -\ $w$ ]]
	[[ "$(fields 'PostgreSQL, 1 node')" =~ ^($n\ ){7}-(\ $n){6}\ $w$ ]]
	[[ "$(fields 'PostgreSQL, 2 nodes, haproxy')" =~ ^($n\ ){4}$n\+$n(\ $n){9}\ $w$ ]]
	[[ "$(fields 'PostgreSQL, 3 nodes, haproxy')" =~ ^($n\ ){4}$n\+$n\+$n(\ $n){9}\ $w$ ]]
	[[ "$(fields 'PostgreSQL commit rate')" =~ ^[0-9]+\ commits/s:\ pg_test_fsync ]]
	[ -z "$(ls -A "$BENCH_DIR")" ]
}

@test "the cluster bench refuses a size that is not a positive number" {
	CLUSTER_N=1k run bash "$BENCH" "$SMIMP_BUILD/bin"
	[ "$status" -eq 2 ]
	[ "$output" = "cluster: CLUSTER_N, CLUSTER_RCPTS, CONNS and FSYNC_SECONDS are positive numbers" ]
	CLUSTER_RCPTS=0 run bash "$BENCH" "$SMIMP_BUILD/bin"
	[ "$status" -eq 2 ]
}
