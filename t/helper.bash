# Shared setup for the bats suites: binaries from $SMIMP_BUILD/bin (the
# normal or the sanitizer build), a private SMIMP_HOME per test.
bats_require_minimum_version 1.5.0

REPO=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
SMIMP_BUILD=${SMIMP_BUILD:-$REPO/build}
# Then the Debian packages that scripts/deps.sh installs, ahead of
# whatever the caller's PATH puts before them: a python3 there may be a
# shim that runs a shell script at each call (a tenth of a second, and
# the suites call python3 thousands of times), or another age.
PATH="$SMIMP_BUILD/bin:/usr/bin:$PATH"
export PATH
# A sanitizer report exits 99, so a crash never passes as an expected
# failure code.
export ASAN_OPTIONS=exitcode=99:detect_leaks=1
export UBSAN_OPTIONS=exitcode=99:halt_on_error=1:print_stacktrace=1
# shellcheck source=t/net.bash
. "$BATS_TEST_DIRNAME/net.bash"

# SMIMP_TEST_STORE=postgresql (under t/with-postgresql, which starts a
# cluster and names it in SMIMP_TEST_PGHOST): every smimpd a test runs,
# servers and administration commands alike, keeps its state in a
# PostgreSQL database of its own for each data directory it is given
# (--data), as if given --store; the data directory keeps the rest.
# Otherwise each keeps it in the SQLite store in its data directory.
if [ "${SMIMP_TEST_STORE:-sqlite}" = postgresql ]; then
	[ -n "${SMIMP_TEST_PGHOST:-}" ] || {
		echo "SMIMP_TEST_STORE=postgresql: run the suite under t/with-postgresql" >&2
		exit 1
	}
	# shellcheck source=t/postgresql.bash
	. "$BATS_TEST_DIRNAME/postgresql.bash"

	# smimpd: the one built, given --store and the URI of the database
	# of the data directory its arguments name (--data), if they name
	# one.  In a subshell (run, $(...), a job in the background) it
	# takes the subshell's place, so that $! and kill reach smimpd.
	smimpd() {
		local a data="" db store=() next=""
		for a in "$@"; do
			[ "$next" = data ] && data=$a
			next=""
			case $a in
			--data) next=data ;;
			--data=*) data=${a#--data=} ;;
			esac
		done
		if [ -n "$data" ]; then
			db=$(pg_db_for "$SMIMP_TEST_PGHOST" "$data") || return 1
			store=(--store "$(pg_uri "$SMIMP_TEST_PGHOST" "$db")")
		fi
		if [ "$BASHPID" != "$$" ]; then
			exec "$SMIMP_BUILD/bin/smimpd" "${store[@]}" "$@"
		fi
		"$SMIMP_BUILD/bin/smimpd" "${store[@]}" "$@"
	}
fi

# store_sql DIR SQL: what the store of data directory DIR answers to
# SQL, rows one a line, columns separated by '|'.  A running server may
# hold the SQLite store's write lock for a commit: waited for.
store_sql() {
	if [ "${SMIMP_TEST_STORE:-sqlite}" = postgresql ]; then
		pg_sql "$SMIMP_TEST_PGHOST" "$(pg_db_for "$SMIMP_TEST_PGHOST" "$1")" "$2"
	else
		sqlite3 -cmd '.timeout 10000' "$1/smimpd.db" "$2"
	fi
}

# store_setting DIR: the configuration line that names the store of
# data directory DIR, when it is not the default (SQLite's, in DIR).
store_setting() {
	[ "${SMIMP_TEST_STORE:-sqlite}" = postgresql ] || return 0
	printf 'store %s\n' "$(pg_uri "$SMIMP_TEST_PGHOST" "$(pg_db_for "$SMIMP_TEST_PGHOST" "$1")")"
}

# store_copy FROM TO: data directory FROM copied to TO, its store with
# it, in place of what TO held (the servers of both stopped).
store_copy() {
	local to
	rm -rf "$2" && cp -a "$1" "$2" || return 1
	[ "${SMIMP_TEST_STORE:-sqlite}" = postgresql ] || return 0
	to=$(pg_db_name "$2")
	# What TO held is renamed out of the way, not dropped: a DROP
	# DATABASE waits for a checkpoint of the whole cluster, seconds
	# while other suites write.  The cluster goes with its directory.
	pg_sql "$SMIMP_TEST_PGHOST" postgres "SELECT 1 FROM pg_database WHERE datname = '$to'" | grep -q 1 &&
		{ pg_sql "$SMIMP_TEST_PGHOST" postgres "ALTER DATABASE $to RENAME TO ${to}_$(date +%s%N)" || return 1; }
	pg_sql "$SMIMP_TEST_PGHOST" postgres "CREATE DATABASE $to TEMPLATE $(pg_db_for "$SMIMP_TEST_PGHOST" "$1")"
}

# store_bodies DIR: how many message bodies the store of data directory
# DIR keeps outside the rows that name them (files, or chunked bodies).
store_bodies() {
	if [ "${SMIMP_TEST_STORE:-sqlite}" = postgresql ]; then
		store_sql "$1" "SELECT count(*) FROM bodies"
	else
		find "$1/bodies" -type f 2>/dev/null | wc -l
	fi
}

# pg_only: skip a test of the PostgreSQL store unless the suite runs on
# it (make check-postgresql).
pg_only() {
	[ "${SMIMP_TEST_STORE:-sqlite}" = postgresql ] || skip "of the PostgreSQL store"
}

# sqlite_only: skip a test of what only the SQLite store has (its files,
# its migrations) when the suite runs on another store.
sqlite_only() {
	[ "${SMIMP_TEST_STORE:-sqlite}" = sqlite ] || skip "of the SQLite store"
}

common_setup() {
	export SMIMP_HOME="$BATS_TEST_TMPDIR/home"
	unset SMIMP_PASSPHRASE_FILE
	cd "$BATS_TEST_TMPDIR" || return 1
}

# mkid NAME ADDRESS: NAME.key, NAME.pub, NAME.recovery without passphrase.
mkid() {
	smimp-keygen -u "$2" -o "$BATS_TEST_TMPDIR/$1" --no-passphrase \
		>/dev/null 2>&1
}

# local_users NAME...: for each, NAME.key, NAME.pub and NAME.recovery of
# NAME@example.org (mkid), and its account on data/, the store that
# start_server serves.
local_users() {
	local n
	for n in "$@"; do
		mkid "$n" "$n@example.org" &&
			smimpd --data data --domain example.org adduser \
				"$n@example.org" "$n.pub" || return 1
	done
}

# trust_as HOMEDIR PUB [TIER]: pin PUB in the trust store at HOMEDIR.
trust_as() {
	SMIMP_HOME="$1" smimp-trust add "$2" --tier "${3:-known}" >/dev/null 2>&1
}

# alice_and_bob: identities alice (alice@example.org) and bob
# (bob@example.net), bob's home $BOBHOME trusting alice, and a short
# message in msg; seal and open_bob go from one to the other.
alice_and_bob() {
	mkid alice alice@example.org
	mkid bob bob@example.net
	BOBHOME="$BATS_TEST_TMPDIR/bobhome"
	trust_as "$BOBHOME" alice.pub trusted
	printf 'Hello Bob,\nthe build is green.\n' >msg
}
seal() { smimp-seal -i alice.key -r bob.pub "$@"; }
open_bob() { SMIMP_HOME="$BOBHOME" smimp-open -i bob.key "$@"; }

# A file's content hash, to prove that nothing changed.
sum() { sha256sum "$1" | cut -d' ' -f1; }

# flip FILE OFFSET [MASK]: the byte at OFFSET xored with MASK (0x55), so
# that it changes whatever it was; writing a fixed value changed
# nothing once in 256 runs.
flip() {
	python3 -c 'import sys
f = open(sys.argv[1], "r+b"); o = int(sys.argv[2]); f.seek(o); b = f.read(1)[0]
f.seek(o); f.write(bytes([b ^ int(sys.argv[3], 0)]))' "$1" "$2" "${3:-0x55}"
}

# make_cert: a throw-away certificate and key for 127.0.0.1 and localhost
# (cert.pem, key.pem), the servers' and the clients' CA at once.
make_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout key.pem -out cert.pem -days 2 -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
}

# start_server [FLAGS]: smimpd for example.org on data/ and a free $PORT
# (HTTPS with cert.pem), its pid in ./pid, its log in ./server.log;
# waits until it answers.
start_server() {
	PORT=$(free_port)
	smimpd -d --data data --domain example.org --listen "127.0.0.1:$PORT" \
		--cert cert.pem --key key.pem "$@" 2>server.log &
	echo $! >pid
	server_up "$PORT" && return 0
	cat server.log
	return 1
}

# Several servers in one test, each on data directory NAME with common.conf
# (see t/0800-federation.bats).
# start NAME DOMAIN PORT [FLAGS...]: a server, its pid in NAME.pid, its
# log in NAME.log; waits until it answers.
start() {
	smimpd -d "${@:4}" -f common.conf --data "$1" --domain "$2" --listen "127.0.0.1:$3" \
		--cert cert.pem --key key.pem 2>>"$1.log" &
	echo $! >"$1.pid"
	server_up "$3" || { tail -n 5 "$1.log" >&2; return 1; }
}

# two_domains: identities alice@example.org and bob@example.net, with
# copies alice0.key, alice0.pub, bob0.key, bob0.pub of their first files
# (what a thief who copied them would hold); free ports $ORG and $NET for
# their servers (start org example.org "$ORG"), whose settings are in
# common.conf and the clients' in the environment; homes $ALICEHOME and
# $BOBHOME, bob trusting alice.
two_domains() {
	local n
	make_cert
	mkid alice alice@example.org
	mkid bob bob@example.net
	for n in alice bob; do
		cp -p "$n.key" "${n}0.key"
		cp -p "$n.pub" "${n}0.pub"
	done
	ORG=$(free_port)
	NET=$(free_port)
	export SMIMP_RESOLVE="example.org=127.0.0.1:$ORG,example.net=127.0.0.1:$NET"
	export SMIMP_CACERT="$PWD/cert.pem"
	printf 'resolve %s\ncacert %s\nretry-base 1\nretry-max 2\n' \
		"$SMIMP_RESOLVE" "$SMIMP_CACERT" >common.conf
	export ALICEHOME="$BATS_TEST_TMPDIR/alicehome" BOBHOME="$BATS_TEST_TMPDIR/bobhome"
	trust_as "$BOBHOME" alice.pub trusted
}

# alice_and_bob_domains: two_domains, with alice and bob each an
# account of its own domain's server (data in org/ and net/), and alice
# trusting bob too.
alice_and_bob_domains() {
	two_domains
	smimpd --data org --domain example.org adduser alice@example.org alice.pub
	smimpd --data net --domain example.net adduser bob@example.net bob.pub
	trust_as "$ALICEHOME" bob.pub trusted
}

# three_domains: two_domains, and carol@example.com with a free port
# $COM for her domain's server (start com example.com "$COM"), in the
# clients' resolve map and in common.conf, and her home $CAROLHOME.
three_domains() {
	two_domains
	mkid carol carol@example.com
	COM=$(free_port)
	export SMIMP_RESOLVE="$SMIMP_RESOLVE,example.com=127.0.0.1:$COM"
	printf 'resolve %s\ncacert %s\nretry-base 1\nretry-max 2\n' \
		"$SMIMP_RESOLVE" "$SMIMP_CACERT" >common.conf
	export CAROLHOME="$BATS_TEST_TMPDIR/carolhome"
}

# alice_bob_and_carol: three_domains, with alice, bob and carol each an
# account of its own domain's server (data in org/, net/ and com/), and
# alice trusting bob, as alice_and_bob_domains.
alice_bob_and_carol() {
	three_domains
	smimpd --data org --domain example.org adduser alice@example.org alice.pub
	smimpd --data net --domain example.net adduser bob@example.net bob.pub
	smimpd --data com --domain example.com adduser carol@example.com carol.pub
	trust_as "$ALICEHOME" bob.pub trusted
}

# stop_servers NAME...: stop the servers start started, for teardown.
stop_servers() {
	local n
	for n in "$@"; do
		[ -f "$BATS_TEST_TMPDIR/$n.pid" ] && kill -TERM "$(cat "$BATS_TEST_TMPDIR/$n.pid")" 2>/dev/null
	done
	sleep 0.3
	return 0
}

# signed_get KEY DOMAIN URL [CURL-ARGS...]: GET URL signed by KEY (a .key,
# or a .recovery that signs as recovery:ADDRESS) for the server of DOMAIN,
# as every directory lookup must be; curl's answer on stdout.
signed_get() {
	local h path="/${3#*://*/}"
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" "$1" GET "$2" "$path")
	curl -s --cacert cert.pem "${h[@]/#/-H}" "${@:4}" "$3"
}

# served ADDRESS: the log the directory of ADDRESS's domain (example.org
# on $ORG, example.net on $NET, data in org/ and net/) serves, to stdout,
# looked up signed by that server's own key (server:DOMAIN), so that
# whatever becomes of the users' keys the answer is the directory's.
served() {
	local port=$ORG dir=org h
	if [ "${1#*@}" = example.net ]; then port=$NET dir=net; fi
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" --server "$dir/server.key" "${1#*@}" \
		GET "${1#*@}" "/smimp/v1/users/$1/log")
	curl -s --cacert cert.pem "${h[@]/#/-H}" "https://127.0.0.1:$port/smimp/v1/users/$1/log"
}

# post_log KEY ADDRESS BODYFILE: POST the records in BODYFILE to the log
# of ADDRESS (example.org on $ORG, example.net on $NET) in a request
# signed by KEY; the answer and its status, on one line.
post_log() {
	local port=$ORG h
	if [ "${2#*@}" = example.net ]; then port=$NET; fi
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" "$1" POST "${2#*@}" \
		"/smimp/v1/users/$2/log" "$3")
	curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" \
		--data-binary @"$3" "https://127.0.0.1:$port/smimp/v1/users/$2/log" |
		tr -d '\n'
}

# enroll_device IDENTITY ADDRESS NAME SCOPE [FLAGS...]: NAME.key, a device
# of ADDRESS (whose identity key is IDENTITY) with that scope, enrolled by
# its code: smimp-keygen --device, then smimp-revoke --add-device with
# FLAGS (--no-publish: only IDENTITY's .pub changes).
enroll_device() {
	local code
	smimp-keygen --device "$3" -u "$2" -o "$3" --no-passphrase \
		>"$3.out" 2>&1 || return 1
	code=$(grep -ohE 'code: [A-Z2-7]{5}-[A-Z2-7]{5}' "$3.out" | cut -c7-)
	smimp-revoke -i "$1" --add-device "$3.request" --scope "$4" \
		--code "$code" "${@:5}" >/dev/null 2>&1
}

# wait_for FILE PATTERN: until the log says it (10 s at most).
wait_for() {
	for _ in $(seq 100); do grep -q "$2" "$1" && return 0; sleep 0.1; done
	cat "$1"
	return 1
}
