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
	fault_setup
	fault_accounts
}

teardown() { stop_servers org net; }

@test "SIGKILL of the server during concurrent submissions, again and again: each acknowledged message stored once, resending stores nothing twice" {
	start net example.net "$NET"
	start org example.org "$ORG"
	for r in $(seq "$FAULT_ROUNDS"); do
		crash_round "$r"
	done
	relayed_once
}
