#!/usr/bin/env bats
# What a sender, a careless environment or a signal can do to the user's
# terminal and standard descriptors, and what smimp does about it.
# Terminal tests look at the screen of a real terminal emulator (tmux),
# as the user would.

load helper

setup() {
	common_setup
	mkid alice alice@example.org
	mkid bob bob@example.net
	mkid mallory mallory@example.com
	BOBHOME="$BATS_TEST_TMPDIR/bobhome"
	trust_as "$BOBHOME" alice.pub trusted
	trust_as "$BOBHOME" mallory.pub known
	printf 'Hello Bob,\nthe build is green.\n' >msg
}

seal() { smimp-seal -i alice.key -r bob.pub "$@"; }
open_bob() { SMIMP_HOME="$BOBHOME" smimp-open -i bob.key "$@"; }

@test "the envelope parser refuses C1 controls and bidirectional overrides in header values" {
	# Subjects in hex: plain, U+0085 (NEL), U+009B (CSI), U+202A, U+202E,
	# U+2066, U+2069, then harmless ones: U+00A0, U+00E9, U+202F, an emoji.
	run -0 "$SMIMP_BUILD/t/envelope-values" "$REPO/t/vectors" 6869 \
		c285 c29b e280aa e280ae e281a6 e281a9 \
		c2a0 c3a9 e280af f09f9880
	[ "${#lines[@]}" -eq 11 ]
	[ "${lines[0]}" = accepted ]
	for i in 1 2 3 4 5 6; do
		[ "${lines[$i]}" = "refused: malformed envelope: bad subject" ]
	done
	for i in 7 8 9 10; do
		[ "${lines[$i]}" = accepted ]
	done
	# smimp-seal refuses to write one.
	run -2 --separate-stderr seal -s $'build \u202egreen' msg
	[ "$stderr" = "smimp-seal: invalid subject: at most 998 bytes of UTF-8 text on one line" ]
	[ -z "$output" ]
}
