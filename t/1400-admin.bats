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
	! grep -q "relayed $MID" org.log
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

@test "queue retry: an entry that waits for its next attempt goes out now" {
	slow_retries
	queued
	start net example.net "$NET"
	sleep 1
	! grep -q "relayed $MID" org.log
	run -0 admin queue show 1 --json
	[ "$(jq -r '(.next_attempt | fromdate) - now > 300' <<<"$output")" = true ]
	run -0 --separate-stderr admin queue retry 1
	[ "$output" = "1: due now" ]
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
