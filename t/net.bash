# Servers on loopback, for the tests (t/helper.bash) and for the scripts
# that run several servers (scripts/demo-cluster.sh, bench/cluster.sh).

# free_port: a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
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

# stop_pids PID...: each asked to stop, and killed if it has not soon.
stop_pids() {
	local p
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	sleep 0.3
	for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; done
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
