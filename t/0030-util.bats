#!/usr/bin/env bats
# lib/util.c: dates made and read by arithmetic, without the C library's
# time zone machinery, and exactly as it made and read them; base64 of
# public data decoded by plain comparisons, exactly as libsodium's
# decoder does, but for bytes past ASCII, refused by both.

load helper

setup() { common_setup; }

@test "dates agree with gmtime_r, strftime and timegm: 600,025 cases, in range or not" {
	run -0 "$SMIMP_BUILD/t/timecheck"
	[ "$output" = "600025 passed, 0 failed" ]
}

@test "a command reads no time zone file" {
	command -v strace >/dev/null || skip "strace is not installed"
	alice_and_bob
	# LeakSanitizer cannot run under ptrace (the sanitizer build).
	export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"
	strace -f -e trace=openat,open -o seal.trace smimp-seal -i alice.key -r bob.pub msg >m.age
	run -0 strace -f -e trace=openat,open -o open.trace env SMIMP_HOME="$BOBHOME" smimp-open -q -i bob.key m.age
	[ "$output" = "$(cat msg)" ]
	grep -q 'alice.key' seal.trace
	grep -q 'bob.key' open.trace
	run -1 grep -E 'localtime|zoneinfo' seal.trace open.trace
}

@test "base64: the public decoder and libsodium's agree on 400,000 strings, whole, cut, lengthened, changed or random" {
	run -0 "$SMIMP_BUILD/t/b64check"
	[ "$output" = "400000 passed, 0 failed" ]
}
