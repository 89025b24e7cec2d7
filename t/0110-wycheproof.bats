#!/usr/bin/env bats
# Wycheproof vectors through the primitives as smimp calls them.

load helper

setup() { common_setup; }

vectors() {
	local d=${SMIMP_VECTORS:-$REPO/../shared/vectors}
	[ -d "$d/wycheproof" ] || skip "no vectors at $d/wycheproof (set SMIMP_VECTORS)"
	echo "$d/wycheproof"
}

@test "zero disagreements with Wycheproof" {
	d=$(vectors)
	run -0 "$SMIMP_BUILD/t/wycheproof" "$d"
	printf '%s\n' "${lines[@]}"
	[ "${lines[-1]}" = "1569 passed, 0 failed, 0 skipped" ]
	grep -q '^x25519_test.json: 518 passed, 0 failed; .* ZeroSharedSecret=31 ' <<<"$output"
	grep -q '^ed25519_test.json: 151 passed, 0 failed;' <<<"$output"
}

@test "the harness can fail: a corrupted expected value is a disagreement" {
	d=$(vectors)
	mkdir w
	cp "$d"/*.json w/
	# The first valid Ed25519 signature with one changed nibble.
	python3 - w/ed25519_test.json <<'PY' || skip "python3 not available"
import json, sys
p = sys.argv[1]
d = json.load(open(p))
t = d["testGroups"][0]["tests"][0]
t["sig"] = ("0" if t["sig"][0] != "0" else "1") + t["sig"][1:]
json.dump(d, open(p, "w"))
PY
	run -1 "$SMIMP_BUILD/t/wycheproof" w
	grep -q '^FAIL ed25519_test.json tcId 1 (valid)$' <<<"$output"
	[ "${lines[-1]}" = "1568 passed, 1 failed, 0 skipped" ]
}
