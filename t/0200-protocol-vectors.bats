#!/usr/bin/env bats
# The known-answer vectors of doc/PROTOCOL.md (t/vectors/).

load helper

setup() { common_setup; }

@test "the library reproduces every protocol vector" {
	run -0 "$SMIMP_BUILD/t/protocol-vectors" "$REPO/t/vectors"
	[ "${lines[-1]}" = "38 passed, 0 failed" ]
	! grep -q '^FAIL' <<<"$output"
}

@test "a changed vector file is caught" {
	cp -r "$REPO/t/vectors" v
	sed -i 's/^fingerprint: ./fingerprint: 2/' v/alice.txt
	sed -i '$ s/^signature: ./signature: f/' v/envelope0.txt
	run -1 "$SMIMP_BUILD/t/protocol-vectors" v
	grep -q '^FAIL alice.txt: fingerprint' <<<"$output"
	[ "${lines[-1]}" != "38 passed, 0 failed" ]
}

@test "the committed alice.pub is the one the identity file names" {
	run -0 smimp-keygen --fingerprint "$REPO/t/vectors/alice.pub"
	grep -qx "fingerprint: $output" "$REPO/t/vectors/alice.txt"
}

@test "bounce notices: signed under their own context; other servers' words quoted" {
	run -0 "$SMIMP_BUILD/t/bounce"
	[ "${lines[-1]}" = "9 passed, 0 failed" ]
}
