#!/usr/bin/env bats
# The known-answer vectors of doc/PROTOCOL.md (t/vectors/).

load helper

setup() { common_setup; }

@test "the library reproduces every protocol vector" {
	run -0 "$SMIMP_BUILD/t/protocol-vectors" "$REPO/t/vectors"
	[ "${lines[-1]}" = "59 passed, 0 failed" ]
	! grep -q '^FAIL' <<<"$output"
}

@test "a changed vector file is caught" {
	cp -r "$REPO/t/vectors" v
	sed -i 's/^fingerprint: ./fingerprint: 2/' v/alice.txt
	sed -i '$ s/^signature: ./signature: f/' v/envelope0.txt
	run -1 "$SMIMP_BUILD/t/protocol-vectors" v
	grep -q '^FAIL alice.txt: fingerprint' <<<"$output"
	[ "${lines[-1]}" != "59 passed, 0 failed" ]
}

@test "identity histories: each record type written as the grammar says; a fork, a truncation and wrong signers refused" {
	run -0 "$SMIMP_BUILD/t/protocol-vectors" "$REPO/t/vectors"
	grep -qx 'ok alice-fork.pub: refused against the pinned history (forks at record 1)' <<<"$output"
	grep -qx 'ok alice-truncated.pub: refused against the pinned history (truncated)' <<<"$output"
	grep -qx 'ok alice-wrong-key.pub: refused (record 2 signed by the key it installs)' <<<"$output"
	grep -qx 'ok alice-recover.pub: verifies under the recovery key, and names the new keys' <<<"$output"
	grep -qx 'ok recover record: signed by the identity key, the library refuses to write it' <<<"$output"
	# A history served without its revocation is what a truncation
	# hides: given as the whole history, the vectors fail.
	cp -r "$REPO/t/vectors" v
	cp v/alice-truncated.pub v/alice-history.pub
	sed -i 's/^revoked: .*/revoked: no /' v/alice-history.txt
	run -1 "$SMIMP_BUILD/t/protocol-vectors" v
	grep -q '^FAIL alice-history.pub: the bytes the writer makes' <<<"$output"
	grep -q '^FAIL alice-history.txt' <<<"$output"
}

@test "the committed alice.pub is the one the identity file names" {
	run -0 smimp-keygen --fingerprint "$REPO/t/vectors/alice.pub"
	grep -qx "fingerprint: $output" "$REPO/t/vectors/alice.txt"
}

@test "bounce notices: signed under their own context; other servers' words quoted" {
	run -0 "$SMIMP_BUILD/t/bounce"
	[ "${lines[-1]}" = "9 passed, 0 failed" ]
}
