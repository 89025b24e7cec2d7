#!/usr/bin/env bats
# Faults: smimpd killed with SIGKILL while many clients submit at once,
# round after round (FAULT_SCALE messages a round, FAULT_ROUNDS rounds:
# t/faults/faults.bash).  Every submission a client saw acknowledged
# (201) is stored exactly once and relayed exactly once; what was not
# acknowledged is stored whole or not at all; sending everything again
# stores nothing twice.

load helper
load faults/faults

setup() {
	common_setup
	alice_and_bob_domains
	mkid carol carol@example.org
	smimpd --data org --domain example.org adduser carol@example.org carol.pub
	CAROLHOME="$BATS_TEST_TMPDIR/carolhome"
	trust_as "$CAROLHOME" alice.pub trusted
	fault_conf
}

teardown() { stop_servers org net; }

# fetch_new ALL HOME KEY DIR: fetch into DIR; DIR.new gets the names
# that came (none filed before), each one in the file ALL, whole and
# verified.  Prints how many.
fetch_new() {
	local c got again other
	in_maildir "$4" >before
	c=$(fetch_counts "$2" "$3" "$4")
	read -r got again other <<<"$c"
	comm -13 before <(in_maildir "$4") >"$4.new"
	[ "$again" -eq 0 ] && [ "$other" -eq 0 ] &&
		[ "$(wc -l <"$4.new")" -eq "$got" ] || {
		echo "$4: fetched $c, $(wc -l <"$4.new") new" >&2
		return 1
	}
	[ -z "$(comm -23 "$4.new" "$1")" ] || {
		echo "$4: filed a message not sent" >&2
		return 1
	}
	complete_maildir "$4"
	echo "$got"
}

@test "SIGKILL of the server during concurrent submissions, again and again: each acknowledged message stored once, resending stores nothing twice" {
	start net example.net "$NET"
	start org example.org "$ORG"
	for r in $(seq "$FAULT_ROUNDS"); do
		seal_many "$r" "$FAULT_SCALE" carol.pub bob.pub
		names m/"$r".*.age >"all$r"
		send_many "sent$r" m/"$r".*.age
		# Killed somewhere between an eighth and a half of the way.
		at=$((FAULT_SCALE / 8 + RANDOM % (FAULT_SCALE * 3 / 8)))
		wait_acked "sent$r" "$at"
		kill_server org
		wait_sent
		sent_results "sent$r" >"acked$r"
		echo "round $r: SIGKILL after $at, $(wc -l <"acked$r") acknowledged"
		store_check org
		store_clean example.org org
		start org example.org "$ORG"
		# What carol's mailbox holds, before anything is sent again.
		fetch_new "all$r" "$CAROLHOME" carol.key mail-carol >/dev/null
		mv mail-carol.new "first$r"
		# Everything sent again: each accepted, none stored twice.
		send_many "resent$r" m/"$r".*.age
		wait_sent
		[ "$(sent_results "resent$r" | wc -l)" -eq "$FAULT_SCALE" ]
		fetch_new "all$r" "$CAROLHOME" carol.key mail-carol >/dev/null
		sort "first$r" mail-carol.new | cmp - "all$r"
		# Each message acknowledged before the kill was there already.
		names $(sent_map "resent$r" | awk 'NR == FNR { a[$1]; next } $1 in a { print $2 }' "acked$r" -) >"acked$r.names"
		[ "$(wc -l <"acked$r.names")" -eq "$(wc -l <"acked$r")" ]
		[ -z "$(comm -23 "acked$r.names" "first$r")" ]
	done
	# The relay, killed as often in the middle of its work: bob gets
	# every message of every round once.
	names m/*.age >all
	want=$(wc -l <all)
	total=0
	for _ in $(seq 120); do
		got=$(fetch_new all "$BOBHOME" bob.key mail-bob)
		total=$((total + got))
		[ "$total" -lt "$want" ] || break
		sleep 0.5
	done
	[ "$total" -eq "$want" ]
	in_maildir mail-bob | cmp - all
	in_maildir mail-carol | cmp - all
}
