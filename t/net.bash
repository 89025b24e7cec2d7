# Servers on loopback, for the tests (t/helper.bash) and for the scripts
# that run several servers (scripts/demo-cluster.sh, bench/cluster.sh).

# free_port: a TCP port on 127.0.0.1 that nothing listens on now.
#
# Below the kernel's ephemeral range, where no outgoing connection (of
# this test or another running beside it) can take the port between its
# choice and the server's bind; random, so that tests side by side seldom
# pick the same one.
free_port() {
	python3 -c '
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(1000):
    port = random.randrange(10000, low) if low > 11000 else 0
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(s.getsockname()[1])
    break'
}

# server_up PORT: until the server (or proxy) on PORT answers over HTTPS
# with cert.pem, 15 s at most.
server_up() {
	for _ in $(seq 150); do
		curl -s --cacert cert.pem "https://127.0.0.1:$1/smimp/version" >/dev/null && return 0
		sleep 0.1
	done
	echo "nothing answers on port $1" >&2
	return 1
}

# stop_pids PID...: each asked to stop, killed if it has not within
# three seconds, and reaped: none is left in the process table, not
# even as a zombie, for whoever counts processes next.
stop_pids() {
	local p i left
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	for ((i = 0; i < 60; i++)); do
		left=
		for p in "$@"; do
			# Exited (a zombie, state Z) or gone counts as stopped.
			[ -e "/proc/$p" ] && [ "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' \
				"/proc/$p/status" 2>/dev/null)" != Z ] && left=1
		done
		[ -z "$left" ] && break
		sleep 0.05
	done
	for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; done
	for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# scratch_cleanup: for a script that keeps everything in the directory
# $W, with its servers' pids in $pids and perhaps a PostgreSQL cluster
# of its own in $pg (t/postgresql.bash): all of it stopped and removed.
# Set as the EXIT trap, with INT and TERM made exits.
scratch_cleanup() {
	# shellcheck disable=SC2086
	stop_pids ${pids:-}
	[ -z "${pg:-}" ] || pg_stop "$pg"
	rm -rf "$W"
}
