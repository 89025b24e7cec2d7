#!/usr/bin/env bats
# smimp-trust: pinning, tiers, fingerprints, and a store that concurrent
# commands never corrupt.

load helper

setup() {
	common_setup
	mkid alice alice@example.org
	mkid bob bob@example.net
	FP=$(smimp-keygen --fingerprint alice.pub)
}

@test "add, list, show" {
	run -0 --separate-stderr smimp-trust add alice.pub --tier trusted
	[ "$output" = "alice@example.org trusted $FP" ]
	run -0 --separate-stderr smimp-trust add bob.pub
	[ "$output" = "bob@example.net known $(smimp-keygen --fingerprint bob.pub)" ]
	run -0 smimp-trust list
	[ "${#lines[@]}" -eq 2 ]
	[[ "${lines[0]}" =~ ^alice@example.org\ +trusted\ +$FP$ ]]
	run -0 smimp-trust show ALICE@example.org
	[ "${lines[0]}" = "name: alice@example.org" ]
	[ "${lines[1]}" = "tier: trusted" ]
	grep -qx "fingerprint: $FP" <<<"$output"
	grep -qx "verified: no" <<<"$output"
	[ "$(stat -c %a "$SMIMP_HOME/trust")" = 600 ]
	head -1 "$SMIMP_HOME/trust" | grep -qx 'smimp-trust/1'
}

@test "adding a pinned identity again keeps its tier unless --tier is given; another identity put in place is known" {
	smimp-trust add alice.pub --tier trusted >/dev/null
	run -0 --separate-stderr smimp-trust add alice.pub
	[ "$output" = "alice@example.org trusted $FP" ]
	# A block stays: adding the sender's log again (the way smimp-open
	# points to for an unknown one) unblocked it.
	smimp-trust set alice@example.org blocked
	run -0 --separate-stderr smimp-trust add alice.pub
	[ "$output" = "alice@example.org blocked $FP" ]
	run -0 smimp-trust show alice@example.org
	[ "${lines[1]}" = "tier: blocked" ]
	run -0 --separate-stderr smimp-trust add alice.pub --tier known
	[ "$output" = "alice@example.org known $FP" ]
	# A tier set before any pin is kept too.
	smimp-trust set bob@example.net trusted
	run -0 --separate-stderr smimp-trust add bob.pub
	[ "$output" = "bob@example.net trusted $(smimp-keygen --fingerprint bob.pub)" ]
	# Another identity: nobody checked it, whatever the old one was.
	smimp-trust set alice@example.org trusted
	mkdir o
	smimp-keygen -u alice@example.org -o o/alice --no-passphrase >/dev/null 2>&1
	run -0 --separate-stderr smimp-trust add o/alice.pub --replace
	[ "$output" = "alice@example.org known $(smimp-keygen --fingerprint o/alice.pub)" ]
}

@test "set, domain tiers, remove" {
	smimp-trust add alice.pub >/dev/null
	run -0 smimp-trust set alice#example.org blocked
	run -0 smimp-trust show alice@example.org
	[ "${lines[1]}" = "tier: blocked" ]
	run -0 smimp-trust set @Example.NET blocked
	run -0 smimp-trust show @example.net
	[ "${lines[1]}" = "tier: blocked" ]
	run -0 smimp-trust remove @example.net
	run -1 --separate-stderr smimp-trust show @example.net
	[ "$stderr" = "smimp-trust: @example.net is not in the trust store" ]
	run -1 --separate-stderr smimp-trust remove nobody@example.net
	[ "$stderr" = "smimp-trust: nobody@example.net is not in the trust store" ]
}

@test "verify: match marks verified, mismatch exits 5" {
	smimp-trust add alice.pub >/dev/null
	lower=$(tr 'A-Z' 'a-z' <<<"$FP" | tr -d -)
	run -0 smimp-trust verify alice@example.org "$lower"
	run -0 smimp-trust show alice@example.org
	grep -qx "verified: yes" <<<"$output"
	other=$(smimp-keygen --fingerprint bob.pub)
	run -5 --separate-stderr smimp-trust verify alice@example.org "$other"
	[ "$stderr" = "smimp-trust: fingerprint mismatch for alice@example.org: pinned $FP, given $other" ]
	run -1 --separate-stderr smimp-trust verify carol@example.org "$other"
	[ "$stderr" = "smimp-trust: no identity pinned for carol@example.org" ]
	run -2 --separate-stderr smimp-trust verify alice@example.org ABCD
	[ "$stderr" = "smimp-trust: invalid fingerprint 'ABCD': expected 32 base32 characters" ]
}

@test "a different key for a pinned address is refused (exit 5), store unchanged" {
	smimp-trust add alice.pub >/dev/null
	before=$(sum "$SMIMP_HOME/trust")
	mkdir o
	smimp-keygen -u alice@example.org -o o/alice --no-passphrase >/dev/null 2>&1
	run -5 --separate-stderr smimp-trust add o/alice.pub
	[[ "$stderr" == "smimp-trust: alice@example.org is pinned to fingerprint $FP, not "*" (use --replace after checking the new one)" ]]
	[ "$(sum "$SMIMP_HOME/trust")" = "$before" ]
	run -0 --separate-stderr smimp-trust add o/alice.pub --replace
	[ "$(smimp-trust show alice@example.org | grep fingerprint)" = "fingerprint: $(smimp-keygen --fingerprint o/alice.pub)" ]
}

@test "pin the sender of a sealed message" {
	echo hi | smimp-seal -i alice.key -r bob.pub >m.age
	run -0 --separate-stderr smimp-trust add --from-message m.age -i bob.key --tier trusted
	[ "$output" = "alice@example.org trusted $FP" ]
	run -0 --separate-stderr smimp-open -i bob.key m.age
	[ "$output" = hi ]
	# A message not for us cannot be used.
	mkid carol carol@example.com
	run -3 --separate-stderr smimp-trust add --from-message m.age -i carol.key
	[ "$stderr" = "smimp-trust: cannot decrypt: the message is not encrypted to carol@example.com" ]
}

@test "bad input: exit codes and messages, store untouched" {
	smimp-trust add alice.pub >/dev/null
	before=$(sum "$SMIMP_HOME/trust")
	run -2 --separate-stderr smimp-trust set alice@example.org friend
	[ "$stderr" = "smimp-trust: invalid tier 'friend': use trusted, known or blocked (see 'smimp-trust --help')" ]
	run -2 --separate-stderr smimp-trust set 'not an address' known
	[ "$stderr" = "smimp-trust: invalid address 'not an address': expected local@domain" ]
	run -2 --separate-stderr smimp-trust frobnicate
	[ "$stderr" = "smimp-trust: unknown subcommand 'frobnicate' (see 'smimp-trust --help')" ]
	run -2 --separate-stderr smimp-trust add
	run -1 --separate-stderr smimp-trust add missing.pub
	[ "$stderr" = "smimp-trust: cannot open 'missing.pub': No such file or directory" ]
	head -c 100 /dev/urandom >garbage.pub
	run -3 --separate-stderr smimp-trust add garbage.pub
	[[ "$stderr" == "smimp-trust: 'garbage.pub': malformed identity record 0: "* ]]
	[ "$(sum "$SMIMP_HOME/trust")" = "$before" ]
}

@test "a corrupt store is reported with file and line and never rewritten" {
	smimp-trust add alice.pub >/dev/null
	sed -i 's/^tier: known/tier: best-friend/' "$SMIMP_HOME/trust"
	before=$(sum "$SMIMP_HOME/trust")
	run -1 --separate-stderr smimp-trust set @example.net blocked
	[ "$stderr" = "smimp-trust: $SMIMP_HOME/trust:5: bad or missing tier" ]
	run -1 --separate-stderr smimp-trust list
	[ "$(sum "$SMIMP_HOME/trust")" = "$before" ]
	# seal and open refuse to work on a store they cannot read.
	echo hi | SMIMP_HOME=other smimp-seal -i bob.key -r alice.pub >m.age
	run -1 --separate-stderr smimp-open -i alice.key m.age
	[ "$stderr" = "smimp-open: $SMIMP_HOME/trust:5: bad or missing tier" ]
	[ -z "$output" ]
}

@test "concurrent changes are all kept and the store stays valid" {
	for i in $(seq 1 20); do
		smimp-trust set "user$i@example.org" known &
	done
	smimp-trust add alice.pub --tier trusted &
	wait
	run -0 smimp-trust list
	[ "${#lines[@]}" -eq 21 ]
	for i in $(seq 1 20); do
		grep -q "^user$i@example.org " <<<"$output"
	done
	! ls "$SMIMP_HOME" | grep -q '\.tmp\.' || false
}

# big_store N: a store of N entries, addresses and some domains, without
# logs; entry i is lines 4i-2 (empty) to 4i+1.
big_store() {
	mkdir -p "$SMIMP_HOME"
	awk -v n="$1" 'BEGIN { print "smimp-trust/1"
		for (i = 1; i <= n; i++)
			printf "\nname: %s\ntier: known\nadded: 2026-11-24T22:00:00Z\n",
			    (i % 4 ? "user" i "@example.org" : "@d" i ".example") }' \
		>"$SMIMP_HOME/trust"
}

@test "a store of 65,000 entries loads in under 5 s, and duplicates in it are still refused" {
	# Near the most a store holds, in well under a second: a duplicate
	# check that scanned every entry before each one took 7 s here (and
	# 20 minutes under AddressSanitizer).
	big_store 65000
	run -0 --separate-stderr timeout 5 smimp-trust list
	[ "${#lines[@]}" -eq 65000 ]
	big_store 20000
	run -0 --separate-stderr smimp-trust list
	[ "${#lines[@]}" -eq 20000 ]
	run -0 --separate-stderr smimp-trust show @d20000.example
	[ "${lines[1]}" = "tier: known" ]
	# Changes work on it, and keep every entry.
	run -0 --separate-stderr smimp-trust add alice.pub
	run -0 --separate-stderr smimp-trust list
	[ "${#lines[@]}" -eq 20001 ]
	# A name that comes again, the first entry's or a domain's, far from
	# its first: reported at the line after the second, never rewritten.
	for dup in user1@example.org @d8.example user19999@example.org; do
		big_store 20000
		printf '\nname: %s\ntier: blocked\nadded: 2026-11-24T22:00:00Z\n' "$dup" \
			>>"$SMIMP_HOME/trust"
		before=$(sum "$SMIMP_HOME/trust")
		run -1 --separate-stderr smimp-trust set @example.net blocked
		[ "$stderr" = "smimp-trust: $SMIMP_HOME/trust:80006: duplicate entry" ]
		[ "$(sum "$SMIMP_HOME/trust")" = "$before" ]
	done
	# The first fault in the file is the one reported: a duplicate before
	# a malformed entry.
	printf '\nname: user5@example.org\ntier: none\nadded: 2026-11-24T22:00:00Z\n' \
		>>"$SMIMP_HOME/trust"
	run -1 --separate-stderr smimp-trust list
	[ "$stderr" = "smimp-trust: $SMIMP_HOME/trust:80006: duplicate entry" ]
	# Two entries of the same name next to each other.
	big_store 2
	printf '\nname: user1@example.org\ntier: known\nadded: 2026-11-24T22:00:00Z\n' \
		>>"$SMIMP_HOME/trust"
	run -1 --separate-stderr smimp-trust list
	[ "$stderr" = "smimp-trust: $SMIMP_HOME/trust:14: duplicate entry" ]
}
