#!/usr/bin/env bats
# Faults: write and fsync errors, injected with t/faults/failio.c
# (LD_PRELOAD) into smimpd and the clients while they run.  The server
# never answers 2xx for what is not on disk, serves what needs no write
# meanwhile, and takes everything again, without a restart, once the
# errors stop; smimp-fetch and smimp-seal -o fail cleanly, losing
# nothing.

load helper
load faults/faults

setup() {
	fault_setup
	fault_accounts
	failio_setup
	M=$((FAULT_SCALE / 10))
}

teardown() {
	failio_off
	stop_servers org
}

# fetch_carol: fetch_new for carol: her new messages into mail-carol,
# their names in mail-carol.new; prints how many.
fetch_carol() { fetch_new all "$CAROLHOME" carol.key mail-carol; }

# sealed NAME: M messages to carol, m/NAME.*.age, their names added to
# the file all.
sealed() {
	seal_many "$1" "$M" carol.pub
	names m/*.age >all
}

@test "fsync and write errors on the database: nothing acknowledged while they last, reads served, all taken again without a restart" {
	needs_sqlite
	start org example.org "$ORG"
	pid=$(cat org.pid)
	v=0
	for fault in "ops=fsync,fdatasync errno=EIO" "ops=write,pwrite errno=EIO" \
		"ops=write,pwrite errno=ENOSPC"; do
		v=$((v + 1))
		sealed "$v"
		: >failio.log
		failio_on "path=*/org/smimpd.db*" $fault
		send_many "sent$v" m/"$v".*.age
		wait_sent
		[ -z "$(sent_results "sent$v")" ]
		[ -s failio.log ]
		reads_served "$ORG"
		# A signed request needs its nonce stored: 503, and nothing lost.
		run -75 --separate-stderr env SMIMP_HOME="$CAROLHOME" smimp-fetch -i carol.key -d mail-carol
		[[ "$stderr" == *"HTTP 503: store unavailable"* ]]
		# The log says what failed, not what the rollback then said.
		grep -Eq 'store: [a-z]+: (disk I/O error|database or disk is full)' org.log
		! grep -Eq 'cannot rollback|not an error' org.log || false
		failio_off
		send_many "resent$v" m/"$v".*.age
		wait_sent
		[ "$(sent_results "resent$v" | wc -l)" -eq "$M" ]
		[ "$(fetch_carol)" -eq "$M" ]
		# The same server all along.
		[ "$(cat org.pid)" = "$pid" ]
		kill -0 "$pid"
	done
	crashed org example.org
	start org example.org "$ORG"
	[ "$(fetch_carol)" -eq 0 ]
	in_maildir mail-carol | cmp - all
}

@test "fsync errors on message files and the spool: large messages refused, small ones taken and fetched meanwhile, the rest taken once they stop" {
	start org example.org "$ORG"
	# Only the bodies kept in the database go in: every tenth message
	# is too large for it.
	big=$((M / 10))
	v=0
	# Every file and directory below the data directory (the spool's
	# fsync fails first), then only the body files (after the spool's).
	for files in "*/org/*/*:spool" "*/org/bodies/*:bodies"; do
		v=$((v + 1))
		sealed "$v"
		: >failio.log
		failio_on "path=${files%:*}"
		send_many "sent$v" m/"$v".*.age
		wait_sent
		[ "$(sent_results "sent$v" | wc -l)" -eq $((M - big)) ]
		grep -q "^fsync .*/org/${files#*:}/" failio.log
		reads_served "$ORG"
		[ "$(fetch_carol)" -eq $((M - big)) ]
		failio_off
		send_many "resent$v" m/"$v".*.age
		wait_sent
		[ "$(sent_results "resent$v" | wc -l)" -eq "$M" ]
		[ "$(fetch_carol)" -eq "$big" ]
		in_maildir mail-carol | cmp - all
	done
	crashed org example.org
}

@test "fsync errors from the Nth call on, in the middle of concurrent submissions: each acknowledged message stored, the others whole or not at all" {
	needs_sqlite
	start org example.org "$ORG"
	for r in $(seq "$FAULT_ROUNDS"); do
		seal_many "$r" "$FAULT_SCALE" carol.pub
		names m/"$r".*.age >"all$r"
		names m/*.age >all
		from=$((5 + RANDOM % 40))
		failio_on "path=*/org/*" "from=$from"
		send_many "sent$r" m/"$r".*.age
		wait_sent
		failio_off
		sent_results "sent$r" >"acked$r"
		echo "round $r: failing from fsync $from, $(wc -l <"acked$r") acknowledged"
		[ "$(wc -l <"acked$r")" -lt "$FAULT_SCALE" ]
		# What was acknowledged is in the store, also after a crash.
		crashed org example.org
		start org example.org "$ORG"
		got=$(fetch_carol)
		mv mail-carol.new "first$r"
		send_many "resent$r" m/"$r".*.age
		wait_sent
		[ "$(sent_results "resent$r" | wc -l)" -eq "$FAULT_SCALE" ]
		more=$(fetch_carol)
		[ $((got + more)) -eq "$FAULT_SCALE" ]
		sort "first$r" mail-carol.new | cmp - "all$r"
		acked_in "acked$r" "resent$r" "first$r"
	done
}

@test "smimp-fetch under fsync and write errors in its Maildir: exit 1 naming the file, nothing acknowledged that is not filed, nothing lost or filed twice" {
	start org example.org "$ORG"
	sealed 1
	send_many sent m/1.*.age
	wait_sent
	[ "$(sent_results sent | wc -l)" -eq "$M" ]
	for fault in "ops=fsync,fdatasync" "ops=write" "ops=fsync,fdatasync from=7" \
		"ops=write from=3"; do
		: >failio.log
		failio_on "path=*/mail-carol/*" $fault
		run -1 --separate-stderr env SMIMP_HOME="$CAROLHOME" smimp-fetch -i carol.key -d mail-carol
		failio_off
		[ -s failio.log ]
		[[ "$stderr" =~ smimp-fetch:\ cannot\ (write|sync)\ \'mail-carol/[^\']*\':\ Input/output\ error ]]
		complete_maildir mail-carol
	done
	# What was filed before a failure was filed once; the rest comes now.
	c=$(fetch_counts "$CAROLHOME" carol.key mail-carol)
	read -r got again other <<<"$c"
	[ "$other" -eq 0 ]
	in_maildir mail-carol | cmp - all
	complete_maildir mail-carol
	[ "$(fetch_counts "$CAROLHOME" carol.key mail-carol)" = "0 0 0" ]
}

@test "smimp-fetch failing to record a message it filed: a reader that moves it to cur/ meanwhile never gets it twice" {
	start org example.org "$ORG"
	for fault in "ops=write from=2" "ops=write" "ops=fsync,fdatasync"; do
		for i in 1 2 3; do
			echo "letter $i" | smimp-seal -i alice.key -r carol.pub -o "l$i.age"
			smimp-send -i alice.key "l$i.age" >/dev/null
		done
		rm -rf mail-carol
		# What is in new/ when recording a name fails...
		failio_on "path=*/mail-carol/.smimp-pending" $fault
		run -1 --separate-stderr env SMIMP_HOME="$CAROLHOME" smimp-fetch -i carol.key -d mail-carol
		failio_off
		[[ "$(tail -1 <<<"$stderr")" =~ ^smimp-fetch:\ cannot\ (write|sync)\ \'mail-carol/.smimp-pending\':\ Input/output\ error$ ]]
		# ...a mail reader sees, and moves to cur/.
		for f in mail-carol/new/*; do
			[ -e "$f" ] && mv "$f" "mail-carol/cur/${f##*/}:2,S"
		done
		run -0 --separate-stderr env SMIMP_HOME="$CAROLHOME" smimp-fetch -i carol.key -d mail-carol
		ls mail-carol/new mail-carol/cur | grep smimp | sed 's/:2,S$//' | sort >names
		[ "$(wc -l <names)" -eq 3 ]
		[ "$(uniq names | wc -l)" -eq 3 ]
		complete_maildir mail-carol
		[ "$(fetch_counts "$CAROLHOME" carol.key mail-carol)" = "0 0 0" ]
	done
}

@test "smimp-open -o under write errors: exit 1 naming OUT, no file made, none replaced" {
	mkdir out
	echo old >out/old.txt
	echo "a letter" | smimp-seal -i alice.key -r carol.pub -o m.age
	failio_on "path=*/out/*" "ops=write"
	for how in "" --headers --mime --json; do
		for f in new.txt old.txt; do
			run -1 --separate-stderr env SMIMP_HOME="$CAROLHOME" smimp-open -q $how -i carol.key -o "out/$f" m.age
			[ "$stderr" = "smimp-open: cannot write 'out/$f': Input/output error" ]
		done
	done
	failio_off
	[ "$(ls -A out)" = old.txt ]
	[ "$(cat out/old.txt)" = old ]
}

@test "smimp-seal -o and smimp-keygen under fsync and write errors: exit 1, no file made, none replaced" {
	mkdir out
	echo old | smimp-seal -i alice.key -r carol.pub -o out/old.age
	old=$(sum out/old.age)
	for fault in "ops=fsync,fdatasync" "ops=write"; do
		failio_on "path=*/out/*" "$fault"
		run -1 --separate-stderr bash -c 'echo new | smimp-seal -i alice.key -r carol.pub -o out/new.age'
		[[ "$stderr" =~ ^smimp-seal:\ cannot\ write.*:\ Input/output\ error$ ]]
		run -1 --separate-stderr bash -c 'echo new | smimp-seal -i alice.key -r carol.pub -o out/old.age'
		[[ "$stderr" =~ ^smimp-seal:\ cannot\ write.*:\ Input/output\ error$ ]]
		run -1 --separate-stderr smimp-keygen -u dave@example.org -o out/dave --no-passphrase
		[[ "$stderr" =~ ^smimp-keygen:\ cannot\ (write|sync)\ \'out/dave.*\':\ Input/output\ error$ ]]
		failio_off
		[ "$(ls -A out)" = old.age ]
		[ "$(sum out/old.age)" = "$old" ]
	done
	echo new | smimp-seal -i alice.key -r carol.pub -o out/old.age
	[ "$(sum out/old.age)" != "$old" ]
}
