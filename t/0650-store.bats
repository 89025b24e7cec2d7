#!/usr/bin/env bats
# The store: its unit cases (t/unit/store.c), the migration of a store
# written before schema versions, a store newer than smimpd, the store
# URI and the quotas as smimpd applies them.

load helper

# The schema version this smimpd writes: what every migration ends at
# (SQLite's, and PostgreSQL's).
SCHEMA=11
PG_SCHEMA=6

setup() { common_setup; }

teardown() {
	local p
	for p in pid pid2; do
		[ -f $p ] && kill -TERM "$(cat $p)" 2>/dev/null || true
		for _ in $(seq 150); do
			[ -f $p ] && kill -0 "$(cat $p)" 2>/dev/null || break
			sleep 0.1
		done
	done
	if [ -f own-cluster ]; then pg_stop "$(cat own-cluster)"; fi
	return 0
}

# unit CASE: a case of t/unit/store.c, on the store of the data
# directory s/ (SMIMP_TEST_STORE: SQLite's, or a database of its own).
unit() {
	local uri=()
	if [ "${SMIMP_TEST_STORE:-sqlite}" = postgresql ]; then
		uri=("$(pg_uri "$SMIMP_TEST_PGHOST" "$(pg_db_for "$SMIMP_TEST_PGHOST" s)")")
	fi
	run --separate-stderr "$SMIMP_BUILD/t/store" "$1" "$BATS_TEST_TMPDIR/s" "${uri[@]}"
	[ "$status" -ne 77 ] || skip "${output#skip }"
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[ "$output" = "ok $1" ]
}

# fixture_bodies DIR: the body files t/fixtures/store-v1.sql and
# store-v2.sql name.
fixture_bodies() {
	mkdir -p -m 700 "$1/bodies/57" "$1/bodies/a6" "$1/bodies/99"
	printf '\0\377one\n' >"$1/bodies/57/573e5e04b9b17d1cd9defadb249e54c8"
	printf 'two\n' >"$1/bodies/a6/a68f68fd4ffbdaeecd6b2581ec1c5f2f"
	printf 'three\0' >"$1/bodies/99/9994547d6ac3924cf53d30371190d042"
	chmod 600 "$1"/bodies/*/*
}

# users_served [FLAGS]: alice@example.org and bob@example.org, accounts
# of the server start_server starts on data/ with FLAGS.
users_served() {
	local_users alice bob
	make_cert
	start_server "$@"
}

# signed KEY METHOD PATH [CURL ARGS]: a request signed by KEY's owner.
signed() {
	local h
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" "$1" "$2" example.org "$3")
	curl -s --cacert cert.pem -X "$2" "${h[@]/#/-H}" "https://127.0.0.1:$PORT$3" "${@:4}"
}

@test "every unit case has a test here" {
	run -0 "$SMIMP_BUILD/t/store" list
	[ "${#lines[@]}" -ge 16 ]
	for c in "${lines[@]}"; do
		grep -q "^	unit $c\$" "$BATS_TEST_FILENAME" || { echo "no test for $c"; false; }
	done
}

@test "a message id is bound to its sender: two senders, one id, two messages" {
	unit id-binding
}

@test "a delivery claims its nonce in its own transaction: a replay stores nothing, a request with nothing to store still uses it up" {
	unit deliver-nonce
}

@test "an acknowledged message delivered again is not stored until the idempotency window ends" {
	unit tombstone
}

@test "mailbox ids are random, never consecutive; the listing keeps arrival order" {
	unit random-ids
}

@test "a full mailbox refuses copy by copy, and a submission whole" {
	unit mailbox-quota
}

@test "a sender's relay queue has a quota" {
	unit queue-quota
}

@test "bytes from a domain nobody here wrote to are capped per day" {
	unit stranger-quota
}

@test "workers claiming from threads at once never get the same entry" {
	unit claim-threads
}

@test "the same messages delivered from threads at once are stored once; devices acknowledging at once take each away once" {
	unit races
}

@test "a mailbox quota holds when deliveries race for its last room" {
	unit quota-race
}

@test "no more than domain_cap owners hold leases in one domain; claims keep to max_bytes" {
	unit domain-cap
}

@test "an expired lease is claimed by another owner; the first can no longer finish it" {
	unit lease-expiry
}

@test "a renewed lease holds past its first expiry, for its owner only" {
	unit lease-renewal
}

@test "a store opened by nobody else frees the leases of a process that died (PostgreSQL: they run out, other nodes may live)" {
	unit restart-leases
}

@test "done and retry by an owner that does not hold the entry do nothing" {
	unit not-owner
}

@test "a claim removes what its owner finished in the same transaction, only its own, also when nothing else is due" {
	unit claim-done
}

@test "a bounce removes the entry and delivers the notice together, only for the owner" {
	unit bounce
}

@test "the administrator holds, releases and retries a queue entry; the last attempt's reason is kept, escaped" {
	unit queue-admin
}

@test "the administrator takes one queue entry, held or not, unless a live lease holds it" {
	unit queue-take
}

@test "the store counts what it holds, and a sound store checks clean" {
	unit stats
}

@test "removing an account removes its mailbox, body files and tombstones" {
	unit user-del
}

@test "what comes for an address after its account went is not kept for the address's next owner" {
	unit account-gone
}

@test "opening the store removes orphan body files and the spool" {
	unit orphans
}

@test "every time-dependent operation uses the caller's now" {
	unit now
}

@test "a queued entry keeps the proofs of work and introductions of its own domain's recipients" {
	unit consent-headers
}

@test "each receiving device lists, opens and acknowledges on its own; one copy leaves once the last device acknowledged it" {
	unit device-states
}

@test "a log without a device drops its pending states at once, and messages pending for nobody leave; a name added again with new keys is a new device" {
	unit device-removed
}

@test "a device added later gets only the messages that arrive after it" {
	unit device-later
}

@test "a message leaves the retention period after its first acknowledgement, also when a device never fetched it" {
	unit retention
}

@test "a submission leaves a sent copy for the sender's other receiving devices, none for a sender without them, none over quota" {
	unit sent-copy
}

@test "more devices than a log may have, or a bad device name, are refused and change nothing" {
	unit device-limits
}

@test "what became of a sent message: queued, recorded at submission, delivered, bounced with the entry's removal; nobody else's; forgotten by age and with the account" {
	unit sent-states
}

@test "spooled bodies are linked, one name per row, all private" {
	unit bodies
}

@test "store URIs: sqlite:DIR, a bare path, unknown schemes named" {
	unit uri
}

@test "a small body given in memory stays in the database and reads back byte for byte; ack, done and user_del remove it" {
	unit inline
}

@test "a body in memory of STORE_INLINE_MAX bytes stays inline, one more goes to a file" {
	unit inline-max
}

@test "a store of schema version 1 is migrated: its file bodies stay and read back, new small ones go inline" {
	sqlite_only
	mkdir -m 700 s
	sqlite3 s/smimpd.db <"$REPO/t/fixtures/store-v1.sql" >/dev/null
	fixture_bodies s
	run -0 --separate-stderr "$SMIMP_BUILD/t/store" claim s queued.body
	[ "$output" = "example.net bob@example.org queued@example.org dave@example.net 2 6" ]
	printf 'three\0' | cmp - queued.body
	[ "$(sqlite3 s/smimpd.db 'PRAGMA user_version')" = "$SCHEMA" ]
	[ "$(sqlite3 s/smimpd.db "SELECT count(*) FROM pragma_table_info('mailbox') WHERE name = 'data'")" = 1 ]
	[ "$(sqlite3 s/smimpd.db 'SELECT bytes FROM mailbox_usage')" = 10 ]
	unit migrated-v1
}

@test "a store of schema version 2 is migrated: queued inline bodies move beside their rows and still go out, usage counters kept" {
	sqlite_only
	mkdir -m 700 s
	sqlite3 s/smimpd.db <"$REPO/t/fixtures/store-v2.sql" >/dev/null
	fixture_bodies s
	run -0 --separate-stderr "$SMIMP_BUILD/t/store" claim s queued.body
	[ "$(sqlite3 s/smimpd.db 'PRAGMA user_version')" = "$SCHEMA" ]
	[ "$(sqlite3 s/smimpd.db "SELECT count(*) FROM pragma_table_info('outbound') WHERE name = 'data'")" = 0 ]
	[ "$(sqlite3 s/smimpd.db 'SELECT id, hex(data) FROM outbound_data')" = "8|6669766500" ]
	[ "$(sqlite3 s/smimpd.db 'SELECT bytes FROM mailbox_usage')" = 15 ]
	[ "$(sqlite3 s/smimpd.db 'SELECT bytes FROM queue_usage')" = 11 ]
	unit migrated-v2
	# Done with, the inline entry took its body along.
	[ "$(sqlite3 s/smimpd.db 'SELECT count(*) FROM outbound_data')" = 0 ]
	[ "$(sqlite3 s/smimpd.db 'SELECT count(*) FROM queue_usage')" = 0 ]
}

@test "a store of schema version 5 is migrated: its messages are pending for the identity key only, its users wait for their devices" {
	sqlite_only
	mkdir -m 700 s
	sqlite3 s/smimpd.db <"$REPO/t/fixtures/store-v5.sql" >/dev/null
	unit migrated-v5
	[ "$(sqlite3 s/smimpd.db 'PRAGMA user_version')" = "$SCHEMA" ]
	[ "$(sqlite3 s/smimpd.db 'SELECT count(*) FROM mailbox WHERE identity_pending = 1 AND sent = 0 AND first_ack IS NULL')" = 3 ]
	[ "$(sqlite3 s/smimpd.db 'SELECT bytes FROM mailbox_usage')" = 7 ]
}

@test "a store from before schema versions is migrated in place: same bytes, same queue" {
	sqlite_only
	mkid bob bob@example.org
	mkdir -m 700 data
	sqlite3 data/smimpd.db <"$REPO/t/fixtures/store-v0.sql" >/dev/null
	sqlite3 data/smimpd.db "UPDATE users SET log = readfile('bob.pub')"
	run -0 --separate-stderr smimpd --data data users
	[ "$output" = "bob@example.org $(smimp-keygen --fingerprint bob.pub)" ]
	[ "$(sqlite3 data/smimpd.db 'PRAGMA user_version')" = "$SCHEMA" ]
	# The blobs moved out into one file per row (version 1), and stay
	# files through version 2.
	[ "$(sqlite3 data/smimpd.db "SELECT count(*) FROM mailbox WHERE data IS NOT NULL")" = 0 ]
	[ "$(find data/bodies -type f | wc -l)" -eq 3 ]
	# Opening it again changes nothing.
	run -0 smimpd --data data users
	[ "$(find data/bodies -type f | wc -l)" -eq 3 ]
	# The queued entry is there for a relay worker, with its body.
	run -0 --separate-stderr "$SMIMP_BUILD/t/store" claim data queued.body
	[ "$output" = "example.net bob@example.org queued@example.org dave@example.net 2 6" ]
	printf 'three\0' | cmp - queued.body
	# Bob lists both messages in their order and downloads the same bytes.
	# (The relay retries the queued entry against a closed port meanwhile.)
	printf 'resolve example.net=127.0.0.1:1\ngive-up 31536000\n' >relay.conf
	make_cert
	start_server -f relay.conf
	run -0 signed bob.key GET /smimp/v1/mailbox
	[ "$(grep -o '"message_id":"[^"]*"' <<<"$output" | tr '\n' ' ')" = '"message_id":"first@example.net" "message_id":"second@example.net" ' ]
	[[ "$output" == *'"from":"alice@example.net","message_id":"first@example.net","size":6,"received":"2026-11-18T'* ]]
	mapfile -t ids < <(grep -o '"id":[0-9]*' <<<"$output" | cut -d: -f2)
	[ "${#ids[@]}" -eq 2 ]
	# Ids are new and random, not the old row ids.
	[ "${ids[0]}" != 3 ]
	[ "${ids[1]}" != 5 ]
	signed bob.key GET "/smimp/v1/mailbox/${ids[0]}" -o first.out
	printf '\0\377one\n' | cmp - first.out
	signed bob.key GET "/smimp/v1/mailbox/${ids[1]}" -o second.out
	printf 'two\n' | cmp - second.out
}

@test "a store newer than this smimpd is refused and left as it is" {
	sqlite_only
	mkdir -m 700 data
	sqlite3 data/smimpd.db 'CREATE TABLE later (x); PRAGMA user_version = 99'
	before=$(sum data/smimpd.db)
	run -1 --separate-stderr smimpd --data data users
	[ "$stderr" = "smimpd: the store 'data/smimpd.db' has schema version 99; this smimpd knows versions up to $SCHEMA" ]
	[ "$(sum data/smimpd.db)" = "$before" ]
	[ ! -e data/bodies ]
	run -1 --separate-stderr smimpd -d --data data --domain example.org --plain-http --listen "127.0.0.1:$(free_port)"
	[ "$stderr" = "smimpd: the store 'data/smimpd.db' has schema version 99; this smimpd knows versions up to $SCHEMA" ]
}

@test "a PostgreSQL store newer than this smimpd is refused and left as it is" {
	pg_only
	run -0 smimpd --data data users
	store_sql data "UPDATE smimp_schema SET version = 99"
	run -1 --separate-stderr smimpd --data data users
	[ "$stderr" = "smimpd: the store has schema version 99; this smimpd knows versions up to $PG_SCHEMA" ]
	[ "$(store_sql data 'SELECT version FROM smimp_schema')" = 99 ]
}

@test "nodes that open one new PostgreSQL database at once make its schema once" {
	pg_only
	store_sql data 'SELECT 1' >/dev/null
	pids=()
	for i in $(seq 8); do
		smimpd --data data users >"out$i" 2>"err$i" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	[ -z "$(cat err*)" ]
	[ "$(store_sql data 'SELECT version FROM smimp_schema')" = "$PG_SCHEMA" ]
	[ "$(store_sql data "SELECT count(*) FROM information_schema.tables WHERE table_name = 'mailbox'")" = 1 ]
}

@test "PostgreSQL gone and back: requests get 503 meanwhile, then the server serves again without a restart" {
	pg_only
	# A cluster of the test's own to stop: suites run beside this one
	# on the run's.
	SMIMP_TEST_PGHOST=$(pg_start)
	echo "$SMIMP_TEST_PGHOST" >own-cluster
	users_served
	export SMIMP_RESOLVE="example.org=127.0.0.1:$PORT" SMIMP_CACERT="$PWD/cert.pem"
	run -0 signed bob.key GET /smimp/v1/mailbox -w ' %{http_code}'
	[ "${output//$'\n'/}" = '[] 200' ]
	pg_down "$SMIMP_TEST_PGHOST"
	run -0 signed bob.key GET /smimp/v1/mailbox -w ' %{http_code}'
	listed=${output//$'\n'/}
	echo hi | smimp-seal -i alice.key -r bob.pub >m.age
	run -75 --separate-stderr smimp-send -i alice.key m.age
	# Up again before anything can fail.
	pg_up "$SMIMP_TEST_PGHOST"
	[ "$listed" = '{"error":"store unavailable"} 503' ]
	[[ "$stderr" =~ ^smimp-send:\ [a-z0-9]+@example.org:\ HTTP\ 503:\ store\ unavailable$ ]]
	# Said once, with why, however many requests failed.
	[ "$(grep -c 'warning: store unavailable: store: .*; answering 503 until it is back$' server.log)" = 1 ]
	# Back: reads and writes go through, on connections made anew.
	run -0 --separate-stderr smimp-send -i alice.key m.age
	run -0 signed bob.key GET /smimp/v1/mailbox
	[ "$(grep -o '"id":' <<<"$output" | wc -l)" -eq 1 ]
	[ "$(grep -c 'smimpd: store available again after [0-9]* s$' server.log)" = 1 ]
}

@test "two nodes on one PostgreSQL database serve one domain: what one takes in, the other hands out" {
	pg_only
	users_served
	# The second node: a directory of its own, the first's key, the
	# same database.
	mkdir -m 700 data2
	cp -p data/server.key data2/
	PORT2=$(free_port)
	smimpd -d --data data2 --store "$(pg_uri "$SMIMP_TEST_PGHOST" "$(pg_db_name data)")" \
		--domain example.org --listen "127.0.0.1:$PORT2" --cert cert.pem --key key.pem 2>server2.log &
	echo $! >pid2
	server_up "$PORT2"
	export SMIMP_CACERT="$PWD/cert.pem"
	for i in 1 2 3; do echo "m$i" | smimp-seal -i alice.key -r bob.pub >"m$i.age"; done
	SMIMP_RESOLVE="example.org=127.0.0.1:$PORT" smimp-send -i alice.key m1.age m2.age >/dev/null
	SMIMP_RESOLVE="example.org=127.0.0.1:$PORT2" smimp-send -i alice.key m3.age m1.age >/dev/null
	trust_as "$BATS_TEST_TMPDIR/bobhome" alice.pub known
	run -0 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/bobhome" \
		SMIMP_RESOLVE="example.org=127.0.0.1:$PORT2" smimp-fetch -i bob.key -d mail
	[ "$stderr" = "smimp-fetch: 3 fetched: 3 to the inbox, 0 to Other, 0 dropped" ]
	run -0 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/bobhome" \
		SMIMP_RESOLVE="example.org=127.0.0.1:$PORT" smimp-fetch -i bob.key -d mail
	[ "$stderr" = "smimp-fetch: 0 fetched: 0 to the inbox, 0 to Other, 0 dropped" ]
	[ ! -e data2/smimpd.db ]
}

@test "the store setting: another directory, an unknown scheme refused by name, a database out of reach said so" {
	mkid bob bob@example.org
	printf 'store sqlite:%s/elsewhere\n' "$PWD" >s.conf
	run -0 smimpd -f s.conf --domain example.org adduser bob@example.org bob.pub
	[ -f elsewhere/smimpd.db ]
	[ ! -e data ]
	run -0 smimpd -f s.conf users
	[ "${output%% *}" = bob@example.org ]
	printf 'store mysql://smimp:s3cret@db.example/smimp\n' >my.conf
	chmod 600 my.conf
	run -2 --separate-stderr smimpd -f my.conf users
	# The rest of the URI may hold a password: not said.
	[ "$stderr" = "smimpd: unknown store scheme 'mysql' (known: sqlite, postgresql)" ]
	printf 'store postgresql://smimp@/smimp?host=%s/nowhere\n' "$PWD" >pg.conf
	run -75 --separate-stderr smimpd -f pg.conf users
	[[ "$stderr" == "smimpd: store: cannot connect to PostgreSQL: connection to server on socket \"$PWD/nowhere/.s.PGSQL.5432\" failed: No such file or directory "* ]]
	# libpq's other name for the scheme is taken as well.
	printf 'store postgres://smimp@/smimp?host=%s/nowhere\n' "$PWD" >pg.conf
	run -75 --separate-stderr smimpd -f pg.conf users
	[[ "$stderr" == "smimpd: store: cannot connect to PostgreSQL: connection to server on socket \"$PWD/nowhere/.s.PGSQL.5432\" failed: No such file or directory "* ]]
	[ "${#lines[@]}" = 0 ]
	printf 'store postgresql://smimp@/smimp?color=blue\n' >bad.conf
	run -2 --separate-stderr smimpd -f bad.conf users
	[ "$stderr" = "smimpd: store: bad PostgreSQL URI: invalid URI query parameter: \"color\"" ]
}

@test "a store URI's password is never quoted in an error: a bad URI, an unknown scheme" {
	# What libpq could not take, it quotes: here the password itself.
	run -2 --separate-stderr "$SMIMP_BUILD/bin/smimpd" --data data \
		--store 'postgresql://smimp:50%off@/smimp' users
	[ "$stderr" = 'smimpd: store: bad PostgreSQL URI: invalid percent-encoded token: "<password>"' ]
	run -2 --separate-stderr "$SMIMP_BUILD/bin/smimpd" --data data \
		--store 'postgresql://smimp@/smimp?host=/run/postgresql&password=50%off' users
	[ "$stderr" = 'smimpd: store: bad PostgreSQL URI: invalid percent-encoded token: "<password>"' ]
	[ ! -e data ]
}

@test "quota settings: a full mailbox answers 507 and stores nothing; bad values are file:line errors" {
	printf 'mailbox-quota lots\nqueue-quota -1\nstranger-quota 1.5\nrelay-domain-workers 0\n' >bad.conf
	run -2 --separate-stderr smimpd -n -f bad.conf
	grep -qx 'smimpd: bad.conf:1: mailbox-quota is a number of bytes, 0 for no limit' <<<"$stderr"
	grep -qx 'smimpd: bad.conf:2: queue-quota is a number of bytes, 0 for no limit' <<<"$stderr"
	grep -qx 'smimpd: bad.conf:3: stranger-quota is a number of bytes, 0 for no limit' <<<"$stderr"
	grep -qx 'smimpd: bad.conf:4: relay-domain-workers is a number from 1 to 64' <<<"$stderr"
	[[ "$stderr" == *"smimpd: bad.conf: 4 errors" ]]
	# Sealed, padded (doc/PROTOCOL.md 9): 10 bytes to 4394, 5000 to 6442.
	printf 'mailbox-quota 6000\n' >q.conf
	users_served -f q.conf
	export SMIMP_RESOLVE="example.org=127.0.0.1:$PORT" SMIMP_CACERT="$PWD/cert.pem"
	head -c 5000 /dev/urandom | smimp-seal -i alice.key -r bob.pub >big.age
	head -c 10 /dev/urandom | smimp-seal -i alice.key -r bob.pub >small.age
	[ "$(stat -c %s small.age)" -le 6000 ]
	[ "$(stat -c %s big.age)" -gt 6000 ]
	run -0 --separate-stderr smimp-send -i alice.key small.age
	run -75 --separate-stderr smimp-send -i alice.key big.age
	grep -q "HTTP 507: quota exceeded" <<<"$stderr"
	run -0 signed bob.key GET /smimp/v1/mailbox
	[ "$(grep -o '"id":' <<<"$output" | wc -l)" -eq 1 ]
	# Both were small: the one stored lives in the database, and the
	# refused one left no file behind.
	[ "$(find data/bodies data/spool -type f | wc -l)" -eq 0 ]
}
