# PostgreSQL 15 from Debian for the tests, started by the tests
# themselves: a cluster of its own in a temporary directory, listening
# on a Unix socket in that directory only (no TCP port), trusting local
# connections, stopped and removed afterwards.  No system service is
# needed.  PostgreSQL refuses to run as root: as root, the cluster runs
# as nobody.
#
# Sourced by t/helper.bash and by t/with-postgresql (outside bats).

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
# The role the tests connect as: the cluster's superuser.
PG_ROLE=smimp

# pg_as CMD...: CMD as the cluster's owner (nobody when run as root).
pg_as() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
	else
		"$@"
	fi
}

# pg_start: a new cluster in a new directory; prints that directory,
# which is also its socket directory (PGHOST), on stdout.
pg_start() {
	local d
	[ -x "$PG_BIN/initdb" ] || {
		echo "pg_start: no $PG_BIN/initdb (apt-get install postgresql-15)" >&2
		return 1
	}
	# Directly under the temporary directory, which every user may
	# search: the cluster's owner must reach its own directory.
	d=$(mktemp -d "${TMPDIR:-/tmp}/smimp-pg.XXXXXX") || return 1
	if [ "$(id -u)" -eq 0 ]; then chown nobody:nogroup "$d" || return 1; fi
	# Searchable, for the socket: a server that dropped root for
	# another user connects too (the data stays 0700, initdb's).
	chmod 0755 "$d" || return 1
	(cd / && pg_as "$PG_BIN/initdb" -D "$d/data" -U "$PG_ROLE" --auth=trust \
		-E UTF8 --locale=C --no-sync >"$d/initdb.log" 2>&1) || {
		cat "$d/initdb.log" >&2
		return 1
	}
	pg_up "$d" || return 1
	printf '%s\n' "$d"
}

# pg_up DIR: (re)start the cluster in DIR, waiting until it answers.
# The server holds none of the caller's files open (bats waits for its
# own to close) and starts from a directory its owner may enter.
pg_up() {
	# Commits stay durable (fsync, synchronous_commit: the store's
	# promise is tested as it runs); no checkpoint waits in between.
	(cd / && pg_as "$PG_BIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 \
		-o "-c listen_addresses='' -c unix_socket_directories='$1' -c max_connections=300 -c checkpoint_timeout=30min -c max_wal_size=4GB" \
		start </dev/null >/dev/null 2>&1 3>&-) || {
		cat "$1/server.log" >&2
		return 1
	}
}

# pg_down DIR [MODE]: stop the cluster in DIR, its clients cut off, its
# files kept for pg_up.  MODE is pg_ctl's: fast (the default) or
# immediate (as a crash: no checkpoint, recovery at the next start).
pg_down() {
	(cd / && pg_as "$PG_BIN/pg_ctl" -D "$1/data" -m "${2:-fast}" -w stop >/dev/null 2>&1)
}

# pg_stop DIR: stop the cluster pg_start made there, and remove it.
pg_stop() {
	local pid= i
	[ -n "$1" ] && [ -d "$1/data" ] || return 0
	[ -r "$1/data/postmaster.pid" ] && read -r pid <"$1/data/postmaster.pid"
	pg_down "$1"
	rm -rf "$1"
	# pg_ctl started the server detached, with init as its parent: once
	# stopped, it stays in the process table, a zombie, until init
	# reaps it.  Whoever counts processes next should not find it.
	case $pid in '' | *[!0-9]*) return 0 ;; esac
	for ((i = 0; i < 200; i++)); do
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ] || return 0
		sleep 0.05
	done
}

# pg_sql DIR DB SQL: run SQL in database DB of the cluster in DIR; rows
# on stdout, columns separated by '|', as sqlite3 prints them.
pg_sql() {
	psql -X -q -v ON_ERROR_STOP=1 -At -F '|' -h "$1" -U "$PG_ROLE" \
		-d "$2" -c "$3"
}

# pg_uri DIR DB: the store URI of database DB of the cluster in DIR.
pg_uri() {
	printf 'postgresql://%s@/%s?host=%s\n' "$PG_ROLE" "$2" "$1"
}

# A bats suite with a cluster of its own (load postgresql): pg_suite_start
# in its setup_file starts one, its directory exported in SUITE_PG,
# unless PostgreSQL 15 is not here; pg_suite_stop in its teardown_file
# removes it.  pg_suite_db NAME in a test's setup skips the test
# without a cluster, else makes database NAME (DB) and names its store
# URI in STORE.
pg_suite_start() {
	[ -x "$PG_BIN/initdb" ] || return 0
	SUITE_PG=$(pg_start) || return 1
	export SUITE_PG
}
pg_suite_stop() {
	[ -z "${SUITE_PG:-}" ] || pg_stop "$SUITE_PG"
}
pg_suite_db() {
	[ -n "${SUITE_PG:-}" ] || skip "no PostgreSQL 15 here (apt-get install postgresql-15)"
	DB=$1
	pg_sql "$SUITE_PG" postgres "CREATE DATABASE $DB" >/dev/null || return 1
	STORE=$(pg_uri "$SUITE_PG" "$DB")
}

# pg_queue_empty: until the relay queue in the suite's database $DB is
# empty (10 s at most); else what it holds on stdout, and 1.
pg_queue_empty() {
	for _ in $(seq 40); do
		[ "$(pg_sql "$SUITE_PG" "$DB" 'SELECT count(*) FROM outbound')" = 0 ] && return 0
		sleep 0.25
	done
	pg_sql "$SUITE_PG" "$DB" 'SELECT id, message_id, lease_owner, attempts FROM outbound'
	return 1
}

# pg_node K PORT: in a bats test (t/helper.bash), node K of
# example.org, an smimpd on the store $STORE (a database every node
# shares) with common.conf, in the data directory nodeK, saying it is
# served at PORT; its pid in nodeK.pid, its log in nodeK.log; waits
# until it answers.  Nodes share node 1's server key, as one domain's
# must.
pg_node() {
	mkdir -p -m 700 "node$1"
	[ "$1" = 1 ] || cp node1/server.key "node$1/"
	{ cat common.conf; printf 'base-url https://127.0.0.1:%s/smimp\n' "$2"; } >"node$1.conf"
	"$SMIMP_BUILD/bin/smimpd" -d -f "node$1.conf" --store "$STORE" --data "node$1" \
		--domain example.org --listen "127.0.0.1:$2" --cert cert.pem \
		--key key.pem 2>>"node$1.log" &
	echo $! >"node$1.pid"
	server_up "$2"
}

# pg_db_name PATH: the name of the database that stands for the data
# directory PATH (which need not exist yet).
pg_db_name() {
	printf 't_%s\n' "$(realpath -m "$1" | sha256sum | cut -c1-24)"
}

# pg_db_for DIR PATH: pg_db_name PATH, the database made in the cluster
# in DIR on first use: every command given that data directory finds
# the same one.
pg_db_for() {
	local db
	db=$(pg_db_name "$2")
	if [ -z "$(pg_sql "$1" postgres "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
		pg_sql "$1" postgres "CREATE DATABASE $db" >/dev/null || return 1
	fi
	printf '%s\n' "$db"
}
