#!/usr/bin/env bats
# The age v1 conformance vectors (C2SP CCTV) through the age layer.

load helper

setup() { common_setup; }

vectors() {
	local d=${SMIMP_VECTORS:-$REPO/../shared/vectors}
	[ -d "$d/age" ] || skip "no vectors at $d/age (set SMIMP_VECTORS)"
	echo "$d"
}

@test "every supported age vector passes; hybrid ones are skipped by name" {
	d=$(vectors)
	run -0 "$SMIMP_BUILD/t/age-vectors" "$d/age"
	echo "$output" | tail -3
	[ "${lines[-1]}" = "124 passed, 0 failed, 19 skipped" ]
	# Every skip is an ML-KEM hybrid vector, named.
	[ "$(grep -c '^skip .*ML-KEM-768+X25519' <<<"$output")" -eq 19 ]
	! grep -q '^FAIL' <<<"$output" || false
}

@test "the harness can fail: a vector with a wrong payload hash is reported" {
	d=$(vectors)
	mkdir v
	sed 's/^payload: .*/payload: 0000000000000000000000000000000000000000000000000000000000000000/' "$d/age/x25519" >v/x25519
	run -1 "$SMIMP_BUILD/t/age-vectors" v
	[[ "${lines[0]}" == "FAIL x25519: payload hash "* ]]
	[ "${lines[-1]}" = "0 passed, 1 failed, 0 skipped" ]
}
