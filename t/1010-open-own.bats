#!/usr/bin/env bats
# smimp-open and the reader's own identity: a sender opens its own sent
# copies; the fingerprint beside the reader's address must be its own;
# a tier speaks only for a pinned identity.

load helper

setup() {
	common_setup
	alice_and_bob
	ALICEHOME="$BATS_TEST_TMPDIR/alicehome"
}

@test "a sender opens its own sent message: trusted, own identity" {
	seal msg >m.age
	SMIMP_HOME="$ALICEHOME" run -0 --separate-stderr smimp-open -i alice.key -o out m.age
	cmp out msg
	[[ "$stderr" =~ ^smimp-open:\ from\ alice@example.org,\ fingerprint\ [A-Z2-7-]{39},\ trusted\ \(own\ identity\)$ ]]
	SMIMP_HOME="$ALICEHOME" run -0 --separate-stderr smimp-open -i alice.key --json m.age
	[[ "$output" == *'"tier": "trusted"'* ]] || [[ "$output" == *'"tier":"trusted"'* ]]
}

@test "a message claiming the reader's address under another identity: exit 5" {
	mkdir thief
	smimp-keygen -u alice@example.org -o thief/alice --no-passphrase >/dev/null 2>&1
	smimp-seal -i thief/alice.key -r bob.pub -r alice.pub msg >m.age
	SMIMP_HOME="$ALICEHOME" run -5 --separate-stderr smimp-open -i alice.key -o out m.age
	[[ "$stderr" == "smimp-open: the message claims to be from alice@example.org (this identity, fingerprint "*") but is signed by "* ]]
	[ -z "$output" ]
	[ ! -e out ]
}

@test "the reader's address beside another fingerprint in to or cc: exit 5" {
	mkdir other
	smimp-keygen -u bob@example.net -o other/bob --no-passphrase >/dev/null 2>&1
	smimp-seal -i alice.key -r other/bob.pub -r bob.pub msg >m.age
	run -5 --separate-stderr open_bob -o out m.age
	[[ "$stderr" =~ ^smimp-open:\ the\ message\ from\ alice@example.org\ lists\ bob@example.net\ with\ fingerprint\ [A-Z2-7-]{39},\ not\ this\ identity\'s\ [A-Z2-7-]{39}$ ]]
	[ -z "$output" ]
	[ ! -e out ]
	# The same message, opened by the right fingerprint only, is fine.
	seal msg >ok.age
	run -0 --separate-stderr open_bob ok.age
}

@test "a domain tier does not trust a self-made identity: exit 4" {
	mkdir mallory
	smimp-keygen -u carol@example.com -o mallory/carol --no-passphrase >/dev/null 2>&1
	SMIMP_HOME="$BOBHOME" smimp-trust set @example.com trusted >/dev/null 2>&1
	smimp-seal -i mallory/carol.key -r bob.pub msg >m.age
	run -4 --separate-stderr open_bob -o out m.age
	[[ "$stderr" == *"carol@example.com is not in the trust store: nothing written"* ]]
	[[ "$stderr" == *", unknown"* ]]
	[ ! -e out ]
}

@test "an address tier without a pinned identity does not trust it: exit 4" {
	mkdir mallory
	smimp-keygen -u carol@example.com -o mallory/carol --no-passphrase >/dev/null 2>&1
	SMIMP_HOME="$BOBHOME" smimp-trust set carol@example.com trusted >/dev/null 2>&1
	smimp-seal -i mallory/carol.key -r bob.pub msg >m.age
	run -4 --separate-stderr open_bob -o out m.age
	[[ "$stderr" == *", unknown"* ]]
	[ ! -e out ]
	# Once pinned, the tier applies.
	SMIMP_HOME="$BOBHOME" smimp-trust add mallory/carol.pub --tier trusted >/dev/null 2>&1
	run -0 --separate-stderr open_bob -o out m.age
	cmp out msg
}

@test "a blocked domain still blocks an unpinned sender" {
	mkid carol carol@example.com
	SMIMP_HOME="$BOBHOME" smimp-trust set @example.com blocked >/dev/null 2>&1
	smimp-seal -i carol.key -r bob.pub msg >m.age
	run -4 --separate-stderr open_bob --accept-unknown m.age
	[[ "$stderr" == *"carol@example.com is blocked: nothing written" ]]
}
