#!/usr/bin/env bats
# The administrator's commands: smimpd queue (list, show, hold, release,
# retry, delete), smimpd stats, smimpd check (this server), smimpd check
# DOMAIN (another domain, as a peer sees it, against servers that are
# misconfigured on purpose).  example.org (org/) queues for example.net,
# which is down until a test starts it.

load helper

setup() {
	common_setup
	alice_and_bob_domains
}

teardown() { stop_servers org net bad; }

# admin ARGS...: smimpd on example.org's data and settings.
admin() { smimpd -f common.conf --data org --domain example.org "$@"; }

# slow_retries: the relay waits ten minutes between attempts, so that
# an entry stays put while a test looks at it.
slow_retries() {
	sed -i 's/^retry-base .*/retry-base 600/; s/^retry-max .*/retry-max 600/' common.conf
}

# queued: alice sends bob a message while example.net is down, and
# example.org has tried it once; its id in $MID, its size in $SIZE.
queued() {
	start org example.org "$ORG"
	echo "for bob" | smimp-seal -i alice.key -r bob.pub >m.age
	MID=$(SMIMP_HOME="$ALICEHOME" smimp-send -i alice.key m.age 2>/dev/null)
	SIZE=$(stat -c %s m.age)
	wait_for org.log "relay $MID to example.net: .*retrying"
}

fetch_bob() { SMIMP_HOME="$BOBHOME" smimp-fetch -i bob.key -d mail-bob; }
fetch_alice() { SMIMP_HOME="$ALICEHOME" smimp-fetch -i alice.key -d mail-alice; }

@test "queue list: one line an entry, its last error below; --json the same as JSON" {
	queued
	run -0 --separate-stderr admin queue list
	[ "${lines[0]}" = "ID       STATE       AGE TRIES     NEXT       SIZE  FROM -> DOMAIN" ]
	[[ "${lines[1]}" =~ ^1\ +(waiting|due|sending)\ +[0-9]+s\ +[1-9][0-9]*\ +(now|in\ [0-9]+s)\ +$SIZE\ \ alice@example.org\ -\>\ example.net$ ]]
	[ "${lines[2]}" = "         last error: https://127.0.0.1:$NET/.well-known/smimp.txt: Couldn't connect to server" ]
	[ "${#lines[@]}" -eq 3 ]
	[ -z "$stderr" ]
	run -0 admin queue list --json
	[ "$(jq -r 'length' <<<"$output")" = 1 ]
	[ "$(jq -r '.[0] | [.id, .held, .sender, .domain, .recipients[0], .message_id, .size] | @tsv' <<<"$output")" = \
		"$(printf '1\tfalse\talice@example.org\texample.net\tbob@example.net\t%s\t%s' "$MID" "$SIZE")" ]
	[ "$(jq -r '.[0].attempts >= 1 and .[0].age >= 0 and (.[0].queued | test("^20[0-9-]+T[0-9:]+Z$"))' <<<"$output")" = true ]
	[ "$(jq -r '.[0].last_error' <<<"$output")" = "https://127.0.0.1:$NET/.well-known/smimp.txt: Couldn't connect to server" ]
}

@test "queue show: all of one entry; an id that is no entry is said so" {
	queued
	run -0 --separate-stderr admin queue show 1
	[ "${lines[0]}" = "id: 1" ]
	[ "${lines[2]}" = "sender: alice@example.org" ]
	[ "${lines[3]}" = "domain: example.net" ]
	[ "${lines[4]}" = "recipients: bob@example.net" ]
	[ "${lines[5]}" = "message-id: $MID" ]
	[ "${lines[6]}" = "size: $SIZE" ]
	[[ "${lines[7]}" =~ ^queued:\ 20[0-9-]+T[0-9:]+Z\ \([0-9]+s\ ago\)$ ]]
	[ "$(grep -c '^last-error: https://127.0.0.1:' <<<"$output")" = 1 ]
	run -0 admin queue show 1 --json
	[ "$(jq -r .message_id <<<"$output")" = "$MID" ]
	run -1 --separate-stderr admin queue show 99
	[ "$stderr" = "smimpd: no queue entry 99" ]
	[ -z "$output" ]
	run -1 --separate-stderr admin queue hold 99
	[ "$stderr" = "smimpd: no queue entry 99" ]
}

@test "a held entry is not sent while smimpd runs, even once its domain is back; released, it goes out once" {
	queued
	run -0 --separate-stderr admin queue hold 1
	[ "$output" = "1: held" ]
	start net example.net "$NET"
	# Retries come every second or two here: none comes while held.
	sleep 4
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 0 fetched: 0 to the inbox, 0 to Other, 0 dropped" ]
	! grep -q "relayed $MID" org.log || false
	run -0 admin queue show 1 --json
	[ "$(jq -r '[.state, .held] | @tsv' <<<"$output")" = "$(printf 'held\ttrue')" ]
	run -0 admin queue list
	[[ "${lines[1]}" =~ ^1\ +held\ .*\ -\ + ]]
	run -0 --separate-stderr admin queue release 1 --json
	[ "$(jq -r .held <<<"$output")" = false ]
	wait_for org.log "relayed $MID to example.net"
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	run -0 admin queue list
	[ "$output" = "the queue is empty" ]
	run -0 admin queue list --json
	[ "$output" = "[]" ]
}

@test "queue retry: an entry that waits for its next attempt goes out now, whatever its worker remembers of the domain's failures" {
	slow_retries
	# One worker: the one that saw example.net fail makes the attempt.
	echo "relay-workers 1" >>common.conf
	queued
	start net example.net "$NET"
	sleep 1
	! grep -q "relayed $MID" org.log || false
	run -0 admin queue show 1 --json
	[ "$(jq -r '(.next_attempt | fromdate) - now > 300' <<<"$output")" = true ]
	run -0 --separate-stderr admin queue retry 1
	[ "$output" = "1: due now" ]
	wait_for org.log "relay $MID to example.net: now, as the administrator asked"
	wait_for org.log "relayed $MID to example.net"
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
}

@test "queue delete: the entry goes and its sender gets a signed bounce notice saying why" {
	slow_retries
	queued
	run -0 --separate-stderr admin queue delete 1
	[ "$output" = "1: deleted; a bounce notice went to alice@example.org" ]
	run -0 admin queue list
	[ "$output" = "the queue is empty" ]
	run -1 --separate-stderr admin queue delete 1
	[ "$stderr" = "smimpd: no queue entry 1" ]
	run -0 --separate-stderr fetch_alice
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	grep -rq "^smimp-bounce/1$" mail-alice/new
	grep -rq "^message-id: $MID$" mail-alice/new
	grep -rq "^recipients: bob@example.net$" mail-alice/new
	grep -rq "^reason: deleted from the queue by the administrator$" mail-alice/new
	# Once example.net is back, nothing goes out.
	start net example.net "$NET"
	sleep 1
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 0 fetched: 0 to the inbox, 0 to Other, 0 dropped" ]
}

@test "queue delete --no-bounce: the entry goes without a word; --json says what went" {
	slow_retries
	queued
	run -0 --separate-stderr admin queue delete 1 --no-bounce --json
	[ "$output" = "{\"id\":1,\"deleted\":true,\"message_id\":\"$MID\",\"bounce\":null}" ]
	run -0 --separate-stderr fetch_alice
	[ "$stderr" = "smimp-fetch: 0 fetched: 0 to the inbox, 0 to Other, 0 dropped" ]
	[ "$(store_sql org 'SELECT count(*) FROM outbound')" = 0 ]
}

@test "deluser: what the account left in the relay queue goes with it; whoever gets the address next sees none of it" {
	slow_retries
	queued
	run -0 --separate-stderr admin deluser alice@example.org
	run -0 admin queue list
	[ "$output" = "the queue is empty" ]
	[ "$(store_sql org 'SELECT count(*) FROM outbound')" = 0 ]
	[ "$(store_sql org "SELECT coalesce(sum(bytes), 0) FROM queue_usage WHERE sender = 'alice@example.org'")" = 0 ]
	[ "$(store_bodies org)" = 0 ]
	# The address, given to someone else, gets no bounce of the old mail.
	mkid alice2 alice@example.org
	run -0 --separate-stderr admin adduser alice@example.org alice2.pub
	run -1 --separate-stderr admin queue delete 1
	[ "$stderr" = "smimpd: no queue entry 1" ]
	run -0 --separate-stderr env SMIMP_HOME="$ALICEHOME" smimp-fetch -i alice2.key -d mail-alice2
	[ "$stderr" = "smimp-fetch: 0 fetched: 0 to the inbox, 0 to Other, 0 dropped" ]
	# Nor does the old message go out once example.net is back.
	start net example.net "$NET"
	sleep 1
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 0 fetched: 0 to the inbox, 0 to Other, 0 dropped" ]
}

@test "an entry a relay worker holds is neither deleted nor retried under it, and says so with 75" {
	slow_retries
	queued
	# As a worker's claim: a live lease on the entry.
	store_sql org "UPDATE outbound SET lease_owner = 'other:0', lease_until = $(( $(date +%s) + 600 ))"
	run -75 --separate-stderr admin queue delete 1
	[ "$stderr" = "smimpd: queue entry 1 is being delivered right now: try again in a moment" ]
	run -75 --separate-stderr admin queue retry 1
	[ "$stderr" = "smimpd: queue entry 1 is being delivered right now: try again in a moment" ]
	run -0 admin queue list --json
	[ "$(jq -r '.[0].state' <<<"$output")" = sending ]
	# A hold takes: the attempt under way decides, and no other follows.
	run -0 admin queue hold 1
	[ "$(store_sql org 'SELECT count(*) FROM outbound')" = 1 ]
	run -0 --separate-stderr fetch_alice
	[ "$stderr" = "smimp-fetch: 0 fetched: 0 to the inbox, 0 to Other, 0 dropped" ]
}

@test "queue: bad words, ids and flags are usage errors that change nothing" {
	slow_retries
	queued
	for words in "" "frob 1" "list 1" "hold" "show 1 2"; do
		# shellcheck disable=SC2086
		run -2 --separate-stderr admin queue $words
		[ "$stderr" = "smimpd: usage: smimpd queue list | show ID | hold ID | release ID | retry ID | delete ID (see 'smimpd --help')" ]
	done
	for id in x 0 -1 01 1x 99999999999999999999; do
		run -2 --separate-stderr admin queue delete "$id"
		[[ "$stderr" == "smimpd: queue: "* ]]
	done
	run -2 --separate-stderr admin queue delete x
	[ "$stderr" = "smimpd: queue: 'x' is not an entry id (see 'smimpd --help')" ]
	run -2 --separate-stderr admin queue list --frob
	[ "$stderr" = "smimpd: queue: unknown option '--frob' (see 'smimpd --help')" ]
	run -2 --separate-stderr admin queue hold 1 --no-bounce
	[ "$stderr" = "smimpd: queue: --no-bounce is for delete (see 'smimpd --help')" ]
	run -2 --separate-stderr smimpd -f common.conf --data org queue delete 1
	[ "$stderr" = "smimpd: queue delete signs its bounce notice as the server of its domain: give --domain or the config file (see 'smimpd --help')" ]
	run -0 admin queue show 1 --json
	[ "$(jq -r .held <<<"$output")" = false ]
}

@test "stats: accounts, mailboxes, the queue and the store's size; --json the same" {
	slow_retries
	queued
	run -0 admin queue hold 1
	run -0 --separate-stderr admin stats
	[ "${lines[0]}" = "users: 1" ]
	[ "${lines[1]}" = "mailbox: 0 messages, 0 bytes" ]
	[ "${lines[2]}" = "queue: 1 entries, $SIZE bytes, 1 held, 1 retrying, 1 domains" ]
	[[ "${lines[3]}" =~ ^queue\ oldest:\ [0-9]+s\ old$ ]]
	[[ "${lines[4]}" =~ ^store:\ [1-9][0-9]*\ bytes$ ]]
	run -0 admin stats --json
	[ "$(jq -r '[.users, .mailbox.messages, .mailbox.bytes, .queue.entries, .queue.bytes, .queue.held, .queue.retrying, .queue.domains] | @tsv' <<<"$output")" = \
		"$(printf '1\t0\t0\t1\t%s\t1\t1\t1' "$SIZE")" ]
	[ "$(jq -r '.store_bytes > 0 and .queue.oldest_age >= 0' <<<"$output")" = true ]
	# The bounce of a delete lands in a mailbox: counted there.
	run -0 admin queue delete 1
	run -0 admin stats --json
	[ "$(jq -r '[.mailbox.messages, .queue.entries, .queue.oldest] | @tsv' <<<"$output")" = "$(printf '1\t0\t')" ]
	run -2 --separate-stderr admin stats extra
	[ "$stderr" = "smimpd: stats: too many arguments (see 'smimpd --help')" ]
}

# ca: a certificate authority of the test's own (ca.pem, ca.key), which
# the clients and smimpd check trust from here on.
ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout ca.key -out ca.pem -days 30 -subj /CN=smimp-test-ca 2>/dev/null
	mkdir -p cadb
	: >cadb/index
	echo 01 >cadb/serial
	printf '[ca]\ndefault_ca = c\n[c]\ndatabase = cadb/index\nnew_certs_dir = cadb\nserial = cadb/serial\ndefault_md = sha256\npolicy = p\ncopy_extensions = copy\nunique_subject = no\n[p]\ncommonName = supplied\n' >ca.cnf
	export SMIMP_CACERT="$PWD/ca.pem"
}

# when DAYS: a certificate date DAYS days from now (negative: ago).
when() { date -u -d "$1 days" +%Y%m%d%H%M%SZ; }

# leaf NAME ALTNAME FROM UNTIL: NAME.pem and NAME.key, a certificate for
# ALTNAME (IP:127.0.0.1, DNS:host) issued by ca.pem, valid FROM UNTIL.
leaf() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$1.key" -out "$1.csr" -subj "/CN=$1" \
		-addext "subjectAltName=$2" 2>/dev/null &&
	openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key \
		-in "$1.csr" -out "$1.pem" -startdate "$3" -enddate "$4" -notext \
		>/dev/null 2>&1
}

# serve NAME DOMAIN PORT CERT KEY: smimpd for DOMAIN on data NAME/ with
# that certificate, its pid in NAME.pid; waits until it answers.
serve() {
	smimpd -d -f common.conf --data "$1" --domain "$2" --listen "127.0.0.1:$3" \
		--cert "$4" --key "$5" 2>>"$1.log" &
	echo $! >"$1.pid"
	for _ in $(seq 150); do
		curl -sk "https://127.0.0.1:$3/smimp/version" >/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# check_org [FLAGS] check [ARGS]: smimpd check as example.org's server,
# with good.pem unless FLAGS say otherwise.
check_org() {
	local flags=()
	while [ $# -gt 0 ] && [ "$1" != check ]; do
		flags+=("$1")
		shift
	done
	smimpd -f common.conf --data org --domain example.org \
		--listen "127.0.0.1:$ORG" --cert good.pem --key good.key \
		"${flags[@]}" "$@"
}

# A number of milliseconds, at the end of a timed line.
MS=' \([0-9]+ ms\)$'

@test "check: a server fit to serve passes every check, one line each; --json the same" {
	ca
	leaf good IP:127.0.0.1 "$(when -1)" "$(when 60)"
	serve org example.org "$ORG" good.pem good.key
	run -0 --separate-stderr check_org check
	[ "${#lines[@]}" -eq 5 ]
	[ "${lines[0]}" = "ok   config: domain example.org, listening on 127.0.0.1:$ORG, base URL https://127.0.0.1:$ORG/smimp" ]
	[[ "${lines[1]}" =~ ^ok\ \ \ store:\ (sqlite:org|PostgreSQL),\ schema\ version\ [0-9]+,\ integrity\ checked$MS ]]
	# A PostgreSQL store records the key of the domain's nodes.
	rec=
	[ "${SMIMP_TEST_STORE:-sqlite}" = sqlite ] || rec=", the one the store records"
	[[ "${lines[2]}" =~ ^ok\ \ \ server-key:\ org/server.key,\ public\ key\ [A-Za-z0-9+/]{43}=$rec$ ]]
	[[ "${lines[3]}" =~ ^ok\ \ \ certificate:\ \'good.pem\'\ for\ 127.0.0.1,\ 1\ certificate,\ key\ matches,\ valid\ until\ 20[0-9-]+T[0-9:]+Z\ \((59|60)\ days\)$ ]]
	[[ "${lines[4]}" =~ ^ok\ \ \ discovery:\ example.org\ leads\ to\ https://127.0.0.1:$ORG/smimp,\ which\ publishes\ this\ server\'s\ key$MS ]]
	[ -z "$stderr" ]
	run -0 check_org check --json
	[ "$(jq -r '[.domain, .ok, ([.checks[].name] | join(",")), ([.checks[].status] | unique | join(","))] | @tsv' <<<"$output")" = \
		"$(printf 'example.org\ttrue\tconfig,store,server-key,certificate,discovery\tok')" ]
	[ "$(jq -r '.checks[3].chain[0] | [.subject, .issuer, .names] | @tsv' <<<"$output")" = "$(printf 'CN=good\tCN=smimp-test-ca\t127.0.0.1')" ]
	[ "$(jq -r '.checks[4].base_url' <<<"$output")" = "https://127.0.0.1:$ORG/smimp" ]
}

@test "check: a certificate near its end warns; expired, not yet valid, another key, another host, out of order, missing all fail" {
	ca
	leaf good IP:127.0.0.1 "$(when -1)" "$(when 60)"
	leaf soon IP:127.0.0.1 "$(when -60)" "$(when 5)"
	leaf old IP:127.0.0.1 20200101000000Z 20200201000000Z
	leaf later IP:127.0.0.1 "$(when 2)" "$(when 60)"
	leaf other DNS:other.example "$(when -1)" "$(when 60)"
	cat ca.pem good.pem >backwards.pem
	serve org example.org "$ORG" soon.pem soon.key
	run -0 --separate-stderr check_org --cert soon.pem --key soon.key check
	[[ "${lines[3]}" =~ ^warn\ certificate:\ \'soon.pem\':\ the\ certificate\ expires\ in\ [45]\ days,\ on\ 20[0-9-]+T[0-9:]+Z:\ renew\ it$ ]]
	[ -z "$stderr" ]
	# The discovery check still passes: only the certificate line fails.
	for c in "old.pem old.key" "later.pem later.key" "good.pem other.key" \
	    "other.pem other.key" "backwards.pem good.key" "nope.pem good.key"; do
		set -- $c
		run -1 --separate-stderr check_org --cert "$1" --key "$2" check
		[ "$stderr" = "smimpd: 1 of 5 checks failed" ]
		echo "${lines[3]}" >>found
	done
	run -0 cat found
	[ "${lines[0]}" = "FAIL certificate: 'old.pem': the certificate (CN=old) expired on 2020-02-01T00:00:00Z" ]
	[[ "${lines[1]}" =~ ^FAIL\ certificate:\ \'later.pem\':\ the\ certificate\ \(CN=later\)\ is\ not\ valid\ before\ 20[0-9-]+T[0-9:]+Z\ \(is\ this\ machine\'s\ clock\ right\?\)$ ]]
	[ "${lines[2]}" = "FAIL certificate: the key 'other.key' is not the key of the certificate 'good.pem' (for 127.0.0.1)" ]
	[ "${lines[3]}" = "FAIL certificate: 'other.pem' is for other.example, not for 127.0.0.1, the host of the base URL" ]
	[ "${lines[4]}" = "FAIL certificate: 'backwards.pem': its certificates are out of order: each must be issued by the one after it, the server's own first" ]
	[ "${lines[5]}" = "FAIL certificate: cannot read the certificate 'nope.pem': No such file or directory" ]
}

@test "check: discovery that leads to another server, to another base URL, or nowhere fails, saying which" {
	ca
	leaf good IP:127.0.0.1 "$(when -1)" "$(when 60)"
	serve org example.org "$ORG" good.pem good.key
	# Another data directory, with a server key of its own.
	mkdir -m 700 other
	printf 'smimp-server-key/1\nsecret: %s\n' "$(head -c 32 /dev/urandom | base64)" >other/server.key
	chmod 600 other/server.key
	run -1 --separate-stderr smimpd -f common.conf --data other --domain example.org \
		--listen "127.0.0.1:$ORG" --cert good.pem --key good.key check
	[[ "${lines[4]}" =~ ^FAIL\ discovery:\ example.org\ leads\ to\ https://127.0.0.1:$ORG/smimp,\ whose\ server\ key\ is\ not\ the\ one\ in\ other:\ another\ server\ answers\ there$MS ]]
	[ "$stderr" = "smimpd: 1 of 5 checks failed" ]
	run -1 --separate-stderr check_org --base-url "https://127.0.0.1:$ORG/elsewhere" check
	[[ "${lines[4]}" =~ ^FAIL\ discovery:\ example.org\ names\ https://127.0.0.1:$ORG/smimp,\ not\ this\ server\'s\ base\ URL\ https://127.0.0.1:$ORG/elsewhere$MS ]]
	stop_servers org
	run -1 --separate-stderr check_org check
	[[ "${lines[4]}" =~ ^FAIL\ discovery:\ cannot\ discover\ example.org:\ https://127.0.0.1:$ORG/.well-known/smimp.txt:\ Couldn\'t\ connect\ to\ server$MS ]]
}

@test "check: settings that cannot serve fail; what needs them is skipped; no server key yet is a warning" {
	run -1 --separate-stderr smimpd --data fresh check
	[ "${lines[0]}" = "FAIL config: no domain: set 'domain' or --domain" ]
	if [ "${SMIMP_TEST_STORE:-sqlite}" = sqlite ]; then
		[ "${lines[1]}" = "warn store: none in fresh yet: smimpd makes it when it first starts" ]
		# A mistyped --data is not made into a store by looking.
		[ ! -e fresh ]
	else
		[[ "${lines[1]}" =~ ^ok\ \ \ store: ]]
	fi
	[ "${lines[2]}" = "warn server-key: none in fresh yet: smimpd makes it when it first starts" ]
	[ "${lines[3]}" = "skip certificate: the configuration is not complete" ]
	[ "${lines[4]}" = "skip discovery: the configuration is not complete" ]
	[ "$stderr" = "smimpd: 1 of 5 checks failed" ]
	run -2 --separate-stderr smimpd --data fresh check a b
	[ "$stderr" = "smimpd: check: too many arguments (see 'smimpd --help')" ]
	run -2 --separate-stderr smimpd --data fresh check --frob
	[ "$stderr" = "smimpd: check: unknown option '--frob' (see 'smimpd --help')" ]
	run -2 --separate-stderr smimpd --data fresh check 'no domain'
	[[ "$stderr" == "smimpd: check: "*" (see 'smimpd --help')" ]]
}

@test "check: a store whose rows name bodies that are gone fails the store check" {
	ca
	leaf good IP:127.0.0.1 "$(when -1)" "$(when 60)"
	serve org example.org "$ORG" good.pem good.key
	# Too large to be kept inside the row: a body of its own.
	head -c 100000 /dev/urandom | base64 | smimp-seal -i alice.key -r bob.pub >m.age
	SMIMP_HOME="$ALICEHOME" smimp-send -i alice.key m.age >/dev/null 2>&1
	stop_servers org
	run -1 --separate-stderr check_org check --json
	[ "$(jq -r '.checks[1].status' <<<"$output")" = ok ]
	if [ "${SMIMP_TEST_STORE:-sqlite}" = postgresql ]; then
		store_sql org "DELETE FROM body_chunks; DELETE FROM bodies"
		want="1 message rows name a body that is not stored"
	else
		body=$(store_sql org "SELECT body FROM outbound")
		rm "org/bodies/${body:0:2}/$body"
		want="1 body file missing, as bodies/${body:0:2}/$body"
	fi
	run -1 --separate-stderr check_org check
	[[ "${lines[1]}" =~ ^FAIL\ store:\ (sqlite:org|PostgreSQL),\ schema\ version\ [0-9]+:\ $want$MS ]]
}

# bad MODE [ARG]: t/badserver.py as example.net (plain HTTP, or HTTPS
# with cert.pem when BADSERVER_TLS says), the resolve map sending
# example.net there.
bad() {
	rm -f port
	python3 "$REPO/t/badserver.py" port "$@" >bad.log 2>&1 &
	echo $! >bad.pid
	for _ in $(seq 50); do [ -s port ] && break; sleep 0.1; done
	export SMIMP_RESOLVE="example.org=127.0.0.1:$ORG,example.net=127.0.0.1:$(cat port)"
}

# check_net [ARGS]: smimpd check example.net, as example.org's server.
check_net() { smimpd -f common.conf --data org --domain example.org check "$@" example.net; }

# peer_files VERSION META: what the lying peer serves at /smimp/version
# and /smimp/v1/meta (under peer/), its meta's server key a valid one.
KEY=WGZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=
peer_files() {
	mkdir -p peer/smimp/v1
	printf '%s' "$1" >peer/smimp/version
	printf '%s' "$2" >peer/smimp/v1/meta
}

@test "check DOMAIN: a sound peer passes each step, each timed; --json the same" {
	ca
	leaf good IP:127.0.0.1 "$(when -1)" "$(when 60)"
	serve net example.net "$NET" good.pem good.key
	run -0 --separate-stderr check_net
	[ "${#lines[@]}" -eq 5 ]
	[[ "${lines[0]}" =~ ^ok\ \ \ tls:\ TLS1\.[23],\ 1\ certificate\ for\ 127.0.0.1,\ valid\ until\ 20[0-9-]+T[0-9:]+Z\ \((59|60)\ days\)$MS ]]
	[[ "${lines[1]}" =~ ^ok\ \ \ discovery:\ base\ URL\ https://127.0.0.1:$NET/smimp$MS ]]
	[[ "${lines[2]}" =~ ^ok\ \ \ versions:\ v1,\ software\ smimpd\ [0-9.]+$MS ]]
	[[ "${lines[3]}" =~ ^ok\ \ \ meta:\ server\ key\ [A-Za-z0-9+/]{43}=,\ messages\ up\ to\ 67108864\ bytes$MS ]]
	[[ "${lines[4]}" =~ ^ok\ \ \ clock:\ its\ clock\ is\ [01]\ s\ (ahead\ of|behind)\ ours$ ]]
	[ -z "$stderr" ]
	run -0 --separate-stderr check_net --json
	[ "$(jq -r '[.domain, .ok, ([.checks[].name] | join(",")), ([.checks[].status] | unique | join(","))] | @tsv' <<<"$output")" = \
		"$(printf 'example.net\ttrue\ttls,discovery,versions,meta,clock\tok')" ]
	[ "$(jq -r '[.checks[1].base_url, .checks[3].server_key == (.checks[3].message | split(" ")[2] | rtrimstr(",")), (.checks[4].skew | fabs <= 1), (.checks[0:4] | all(.ms >= 0))] | @tsv' <<<"$output")" = \
		"$(printf 'https://127.0.0.1:%s/smimp\ttrue\ttrue\ttrue' "$NET")" ]
	[ "$(jq -r '.checks[0].chain[0].issuer, .checks[0].version' <<<"$output" | head -1)" = CN=smimp-test-ca ]
}

@test "check DOMAIN: a certificate for another name, expired, near its end or from an unknown issuer is said plainly" {
	ca
	leaf other DNS:other.example "$(when -1)" "$(when 60)"
	leaf old IP:127.0.0.1 20200101000000Z 20200201000000Z
	leaf soon IP:127.0.0.1 "$(when -60)" "$(when 5)"
	serve net example.net "$NET" other.pem other.key
	run -1 --separate-stderr check_net
	[[ "${lines[0]}" =~ ^FAIL\ tls:\ 127.0.0.1\ does\ not\ verify:\ the\ certificate\ is\ for\ other.example,\ not\ for\ 127.0.0.1$MS ]]
	[[ "${lines[1]}" == "FAIL discovery: https://127.0.0.1:$NET/.well-known/smimp.txt: SSL"* ]]
	[ "${lines[2]}" = "skip versions: no base URL" ]
	[ "$stderr" = "smimpd: 2 of 5 checks failed" ]
	stop_servers net
	serve net example.net "$NET" old.pem old.key
	run -1 --separate-stderr check_net
	[[ "${lines[0]}" =~ ^FAIL\ tls:\ 127.0.0.1\ does\ not\ verify:\ the\ certificate\ \(or\ one\ of\ its\ chain\)\ has\ expired:\ it\ ends\ 2020-02-01T00:00:00Z$MS ]]
	stop_servers net
	# cert.pem is its own issuer, which ca.pem does not include.
	serve net example.net "$NET" cert.pem key.pem
	run -1 --separate-stderr check_net
	[[ "${lines[0]}" =~ ^FAIL\ tls:\ 127.0.0.1\ does\ not\ verify:\ its\ issuer\ \(CN=localhost\)\ is\ not\ among\ the\ trusted\ authorities\ \($PWD/ca.pem\):\ a\ self-signed\ certificate,\ or\ a\ chain\ that\ lacks\ its\ intermediate$MS ]]
	stop_servers net
	serve net example.net "$NET" soon.pem soon.key
	run -0 --separate-stderr check_net
	[[ "${lines[0]}" =~ ^warn\ tls:\ 127.0.0.1:\ the\ certificate\ expires\ in\ [45]\ days,\ on\ 20[0-9-]+T[0-9:]+Z:\ renew\ it$MS ]]
	[[ "${lines[1]}" =~ ^ok\ \ \ discovery: ]]
}

@test "check DOMAIN: a domain without discovery fails there, and the steps after it are skipped" {
	export SMIMP_ALLOW_HTTP=example.net
	bad dead
	run -1 --separate-stderr check_net
	[ "${lines[0]}" = "skip tls: plain HTTP, allowed for example.net here" ]
	[[ "${lines[1]}" =~ ^FAIL\ discovery:\ example.net:\ no\ smimp\ service\ \(HTTP\ 404\)$MS ]]
	[ "${lines[2]}" = "skip versions: no base URL" ]
	[ "${lines[3]}" = "skip meta: no base URL" ]
	[ "${lines[4]}" = "skip clock: no base URL" ]
	[ "$stderr" = "smimpd: 1 of 5 checks failed" ]
	run -1 --separate-stderr check_net --json
	[ "$(jq -r '[.ok, ([.checks[].status] | join(","))] | @tsv' <<<"$output")" = "$(printf 'false\tskip,FAIL,skip,skip,skip')" ]
}

@test "check DOMAIN: versions without v1, metadata for another domain, bad or missing server keys" {
	export SMIMP_ALLOW_HTTP=example.net
	bad files "$BATS_TEST_TMPDIR/peer"
	base="http://127.0.0.1:$(cat port)/smimp"
	peer_files '{"versions":["v2"],"software":"other 9"}' \
		"{\"domain\":\"example.com\",\"server_key\":\"$KEY\",\"versions\":[\"v1\"],\"limits\":{\"max_message_bytes\":1000}}"
	run -1 --separate-stderr check_net
	[[ "${lines[1]}" =~ ^ok\ \ \ discovery:\ base\ URL\ $base$MS ]]
	[[ "${lines[2]}" =~ ^FAIL\ versions:\ it\ speaks\ v2,\ not\ v1,\ the\ only\ version\ this\ server\ speaks$MS ]]
	[[ "${lines[3]}" =~ ^FAIL\ meta:\ $base/v1/meta\ is\ for\ the\ domain\ \'example.com\',\ not\ example.net:\ the\ base\ URL\ serves\ another\ domain$MS ]]
	[ "$stderr" = "smimpd: 2 of 5 checks failed" ]
	for key in AAAA //////////////////////////////////////////8= -; do
		if [ "$key" = - ]; then field=; else field="\"server_key\":\"$key\","; fi
		peer_files '{"versions":["v1"]}' \
			"{\"domain\":\"example.net\",$field\"versions\":[\"v1\"],\"limits\":{\"max_message_bytes\":1000}}"
		run -1 --separate-stderr check_net
		[[ "${lines[2]}" =~ ^ok\ \ \ versions:\ v1$MS ]]
		echo "${lines[3]}" >>found
	done
	run -0 cat found
	[[ "${lines[0]}" =~ ^FAIL\ meta:\ example.net\ publishes\ a\ server\ key\ that\ is\ not\ 32\ bytes\ of\ base64$MS ]]
	[[ "${lines[1]}" =~ ^FAIL\ meta:\ example.net\ publishes\ a\ server\ key\ that\ is\ no\ Ed25519\ public\ key$MS ]]
	[[ "${lines[2]}" =~ ^FAIL\ meta:\ example.net\ publishes\ no\ server\ key:\ its\ deliveries\ and\ bounce\ notices\ cannot\ be\ verified$MS ]]
	rm peer/smimp/version
	run -1 --separate-stderr check_net
	[[ "${lines[2]}" =~ ^FAIL\ versions:\ GET\ $base/version\ answered\ HTTP\ 404:\ no\ such\ thing$MS ]]
	run -2 --separate-stderr check_net extra
	[ "$stderr" = "smimpd: check: too many arguments (see 'smimpd --help')" ]
}

@test "check DOMAIN: a peer whose clock is an hour ahead fails the clock step; a minute behind is a warning" {
	peer_files '{"versions":["v1"]}' \
		"{\"domain\":\"example.net\",\"server_key\":\"$KEY\",\"versions\":[\"v1\"],\"limits\":{\"max_message_bytes\":1000}}"
	BADSERVER_TLS=1.3 BADSERVER_SKEW=3600 bad files "$BATS_TEST_TMPDIR/peer"
	run -1 --separate-stderr check_net
	[[ "${lines[0]}" =~ ^(ok|warn)\ \ ?\ ?tls:\  ]]
	[[ "${lines[3]}" =~ ^ok\ \ \ meta:\ server\ key\ $KEY,\ messages\ up\ to\ 1000\ bytes$MS ]]
	[[ "${lines[4]}" =~ ^FAIL\ clock:\ its\ clock\ is\ (3599|3600|3601)\ s\ ahead\ of\ ours:\ past\ the\ 300\ s\ that\ signed\ requests\ and\ delivery\ stamps\ allow,\ what\ either\ server\ signs\ the\ other\ refuses$ ]]
	[ "$stderr" = "smimpd: 1 of 5 checks failed" ]
	run -1 --separate-stderr check_net --json
	[ "$(jq -r '.checks[4].skew | . >= 3599 and . <= 3601' <<<"$output")" = true ]
	stop_servers bad
	BADSERVER_TLS=1.3 BADSERVER_SKEW=-60 bad files "$BATS_TEST_TMPDIR/peer"
	run -0 --separate-stderr check_net
	[[ "${lines[4]}" =~ ^warn\ clock:\ its\ clock\ is\ (59|60|61)\ s\ behind\ ours:\ close\ to\ the\ 300\ s\ that\ signed\ requests\ allow$ ]]
}

@test "a --data with no store in it (a typo) is an error to the commands that read the store, and stays empty" {
	sqlite_only
	for sub in users invites stats deluser updatelog "queue list" "queue show 1"; do
		case $sub in
		deluser) set -- deluser alice@example.org ;;
		updatelog) set -- updatelog alice@example.org alice.pub ;;
		*) set -- $sub ;;
		esac
		run -1 --separate-stderr smimpd --data typo --domain example.org "$@"
		[ "$stderr" = "smimpd: no store in 'typo' (a server makes it when it first starts, or adduser or invite does)" ]
		[ -z "$output" ]
		[ ! -e typo ]
	done
	run -1 --separate-stderr smimpd --store sqlite:typo --domain example.org users
	[ "$stderr" = "smimpd: no store in 'typo' (a server makes it when it first starts, or adduser or invite does)" ]
	[ ! -e typo ]
	# An empty directory is no store either.
	mkdir typo
	run -1 --separate-stderr smimpd --data typo users
	[ -z "$(ls -A typo)" ]
	# adduser and invite make one; then the others read it.
	run -0 smimpd --data typo --domain example.org adduser alice@example.org alice.pub
	run -0 --separate-stderr smimpd --data typo users
	[ "$output" = "alice@example.org $(smimp-keygen --fingerprint alice.pub)" ]
}

@test "backup: taken while serving, it serves as it is: every message there, the same key; a DEST that exists is refused" {
	sqlite_only
	start net example.net "$NET"
	# Small bodies go inline, large ones to files: both kinds.
	echo "small" | smimp-seal -i alice.key -r bob.pub >s.age
	head -c 200000 /dev/urandom | base64 >big
	smimp-seal -i alice.key -r bob.pub big >b.age
	start org example.org "$ORG"
	SMIMP_HOME="$ALICEHOME" smimp-send -i alice.key s.age b.age >/dev/null
	for _ in $(seq 100); do
		[ "$(smimpd -f common.conf --data net stats --json | jq .mailbox.messages)" = 2 ] && break
		sleep 0.1
	done
	run -0 --separate-stderr smimpd -f common.conf --data net backup bk
	[ "$output" = "backup in bk: the store, 1 message body, the server key" ]
	[ "$(stat -c %a bk)" = 700 ]
	cmp net/server.key bk/server.key
	[ "$(stat -c %a bk/server.key)" = 600 ]
	! ls net | grep -q '^backup\.' || false
	# Again into the same place: refused, and what is there stays.
	sum bk/smimpd.db >before
	run -1 --separate-stderr smimpd -f common.conf --data net backup bk
	[ "$stderr" = "smimpd: cannot make 'bk' (a backup goes to a new directory): File exists" ]
	[ "$(sum bk/smimpd.db)" = "$(cat before)" ]
	run -2 --separate-stderr smimpd -f common.conf --data net backup
	[[ "$stderr" == "smimpd: backup: which directory? (smimpd backup DEST)"* ]]
	# The original goes away; the backup serves in its place.
	stop_servers net org
	rm -rf net
	mv bk net
	# (Its discovery fails: no server runs yet.)
	run -1 --separate-stderr smimpd -f common.conf --data net \
		--domain example.net --cert cert.pem --key key.pem \
		--listen "127.0.0.1:$NET" check
	[[ "${lines[1]}" == "ok   store: sqlite:net, schema version "*", integrity checked ("* ]]
	start net example.net "$NET"
	run -0 --separate-stderr fetch_bob
	[ "$(ls mail-bob/new | wc -l)" = 2 ]
	for m in mail-bob/new/*; do SMIMP_HOME="$BOBHOME" smimp-open -i bob.key "$m" >>opened 2>/dev/null; done
	grep -qx small opened
	grep -qF "$(head -1 big)" opened
}

@test "backup: bodies acknowledged while it runs live on in it; every backup is whole" {
	sqlite_only
	start org example.org "$ORG"
	start net example.net "$NET"
	for i in $(seq 40); do
		head -c 70000 /dev/urandom | base64 | smimp-seal -i alice.key -r bob.pub >"m$i.age"
	done
	# Alice sends while bob fetches (each fetch acknowledges, and so
	# unlinks bodies) and backups are taken.
	SMIMP_HOME="$ALICEHOME" smimp-send -i alice.key m*.age >/dev/null &
	sender=$!
	for k in 1 2 3 4; do
		fetch_bob >/dev/null 2>&1 || true
		run -0 --separate-stderr smimpd -f common.conf --data net backup "bk$k"
	done
	wait "$sender"
	for k in 1 2 3 4; do
		run --separate-stderr smimpd -f common.conf --data "bk$k" \
			--domain example.net --cert cert.pem --key key.pem \
			--listen "127.0.0.1:$NET" check
		[[ "${lines[1]}" == "ok   store: sqlite:bk$k, schema version "*", integrity checked ("* ]]
	done
	! ls net | grep -q '^backup\.' || false
}

@test "backup: a PostgreSQL store is pg_dump's to back up" {
	pg_only
	run -2 --separate-stderr smimpd -f common.conf --data net backup bk
	[ "$stderr" = "smimpd: a PostgreSQL store is backed up with pg_dump (its message bodies are in the database); copy server.key beside the dump" ]
	[ ! -e bk ]
}
