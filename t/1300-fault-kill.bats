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
		crashed org example.org
		wait_sent
		sent_results "sent$r" >"acked$r"
		echo "round $r: SIGKILL after $at, $(wc -l <"acked$r") acknowledged"
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
		acked_in "acked$r" "resent$r" "first$r"
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
