# How fast a sending server's queue drains, timed from its log: sourced
# by bench/server.sh and bench/baseline.sh.

# relayed LOG: how many deliveries LOG tells of so far.
relayed() { grep -c ' relayed ' "$1" || true; }

# drain_rate LOG BEFORE N: from the first delivery LOG tells of past
# the BEFORE it held, until N more are there; messages a second.
drain_rate() {
	local t0 t1
	while [ "$(relayed "$1")" -le "$2" ]; do sleep 0.005; done
	t0=$(date +%s.%N)
	while [ "$(relayed "$1")" -lt $(($2 + $3)) ]; do sleep 0.01; done
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" -v n="$3" \
		'BEGIN { printf "%.0f", (n - 1) / (b - a) }'
}
