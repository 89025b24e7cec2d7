#!/usr/bin/env bats
# smimp-seal and smimp-open: round trips, trust tiers, and bad input.
# Every failure must give one line on stderr, its exit code, nothing on
# stdout and no output file.

load helper

setup() {
	common_setup
	alice_and_bob
	mkid carol carol@example.com
}

# The file is unchanged, nothing leaked, no stray files.
assert_nothing_released() {
	[ -z "$output" ]
	[ ! -e out ]
	! ls | grep -q '\.tmp\.' || false
}

@test "round trip through pipes, binary and armored" {
	seal msg >m.age
	run -0 --separate-stderr open_bob m.age
	[ "$output" = "$(cat msg)" ]
	[[ "$stderr" =~ ^smimp-open:\ from\ alice@example.org,\ fingerprint\ [A-Z2-7-]{39},\ trusted$ ]]
	seal -a -s "build 42" <msg >m.asc
	head -1 m.asc | grep -qx -- '-----BEGIN AGE ENCRYPTED FILE-----'
	run -0 --separate-stderr open_bob <m.asc
	[ "$output" = "$(cat msg)" ]
	# A '/' of the armor spelt as a byte past ASCII, which libsodium
	# 1.0.18 would read as '/': refused, not a second spelling.
	python3 -c '
import sys
d = open("m.asc", "rb").read()
i = d.index(b"/", d.index(b"\n") + 1)
sys.stdout.buffer.write(d[:i] + b"\xff" + d[i + 1:])' >high.asc
	run -3 --separate-stderr open_bob <high.asc
	[[ "$stderr" == "smimp-open: "*"malformed armor: bad base64" ]]
	[ -z "$output" ]
}

@test "-o writes the output atomically with the full content" {
	head -c 300000 /dev/urandom >big
	seal -o m.age big
	[ -f m.age ]
	run -0 --separate-stderr open_bob -o out m.age
	cmp big out
}

@test "sizes around every chunk boundary round-trip: H || B ends there, the padding after it" {
	seal -s s </dev/null >probe.age
	smimp-keygen --export-age -i bob.key >bob.agekey
	command -v age >/dev/null || skip "age not installed"
	# The header's length (with its empty line): l is that of H || B.
	hlen=$(( $(age -d -i bob.agekey probe.age | grep -a -b -m1 -x '' | cut -d: -f1) + 1 ))
	for l in 1 63 64 65 65471 65472 65473 65535 65536 65537 131000 131071 131072 131073 196608; do
		n=$(( l - hlen ))
		[ "$n" -ge 0 ] || continue
		head -c "$n" /dev/urandom >body
		seal -s s body >m.age
		open_bob -o out m.age 2>/dev/null
		cmp body out
		rm -f out
	done
}

@test "headers and json show the verified metadata" {
	seal -s "build 42 failed" -t x-ci --content-type application/json msg >m.age
	run -0 --separate-stderr open_bob --headers m.age
	[ "${lines[0]}" = "type: x-ci" ]
	[ "${lines[1]}" = "from: alice@example.org" ]
	grep -q '^subject: build 42 failed$' <<<"$output"
	grep -q '^content-type: application/json$' <<<"$output"
	run -0 --separate-stderr open_bob --json m.age
	[[ "$output" == '{"from": "alice@example.org",'* ]] || [[ "$output" == '{"from":"alice@example.org",'* ]]
	grep -q '"subject":"build 42 failed"' <<<"$output"
	grep -q '"tier":"trusted"' <<<"$output"
	grep -q '"body":"Hello Bob,\\nthe build is green.\\n"' <<<"$output"
}

@test "several recipients each open the same message" {
	trust_as "$BATS_TEST_TMPDIR/carolhome" alice.pub known
	seal -r carol.pub msg >m.age
	run -0 --separate-stderr open_bob m.age
	SMIMP_HOME="$BATS_TEST_TMPDIR/carolhome" run -0 --separate-stderr smimp-open -i carol.key m.age
	[ "$output" = "$(cat msg)" ]
	[[ "$stderr" == *", known" ]]
}

@test "a recipient given twice is sealed to once, as to if either said to" {
	seal -r bob.pub --cc-file bob.pub -r carol.pub --cc-file carol.pub \
		--cc-file carol.pub msg >m.age
	run -0 --separate-stderr open_bob --headers m.age
	[ "$(grep -c '^to: bob@example.net ' <<<"$output")" = 1 ]
	[ "$(grep -c '^cc: carol@example.com ' <<<"$output")" = 0 ]
	[ "$(grep -c '^to: carol@example.com ' <<<"$output")" = 1 ]
	seal --cc-file carol.pub --cc-file carol.pub msg >m.age
	run -0 --separate-stderr open_bob --headers m.age
	[ "$(grep -c '^cc: carol@example.com ' <<<"$output")" = 1 ]
	[ "$(grep -c '^\(to\|cc\): ' <<<"$output")" = 2 ]
}

@test "recipients by address from the trust store" {
	SMIMP_HOME="$BATS_TEST_TMPDIR/alicehome" smimp-trust add bob.pub >/dev/null 2>&1
	SMIMP_HOME="$BATS_TEST_TMPDIR/alicehome" smimp-seal -i alice.key -r BOB@example.net msg >m.age
	run -0 --separate-stderr open_bob m.age
	SMIMP_RESOLVE=example.net=127.0.0.1:9 SMIMP_HOME="$BATS_TEST_TMPDIR/alicehome" run -75 --separate-stderr smimp-seal -i alice.key -r dave@example.net msg
	[[ "$stderr" == "smimp-seal: no identity pinned for dave@example.net, and the lookup failed: "* ]]
	[ -z "$output" ]
}

@test "unknown sender: exit 4 and no body unless --accept-unknown" {
	echo hi | smimp-seal -i carol.key -r bob.pub >m.age
	run -4 --separate-stderr open_bob -o out m.age
	[[ "$stderr" == *"carol@example.com is not in the trust store: nothing written"* ]]
	assert_nothing_released
	run -4 --separate-stderr open_bob --accept-unknown m.age
	[ "$output" = hi ]
	[[ "$stderr" == *", unknown" ]]
}

@test "blocked sender or domain: exit 4 even with --accept-unknown" {
	SMIMP_HOME="$BOBHOME" smimp-trust set @example.com blocked >/dev/null 2>&1
	echo hi | smimp-seal -i carol.key -r bob.pub >m.age
	run -4 --separate-stderr open_bob --accept-unknown m.age
	[ "${lines[*]}" = "" ]
	[[ "$stderr" == *"carol@example.com is blocked: nothing written" ]]
}

@test "a sender whose key differs from the pinned one: exit 5" {
	mkdir other
	smimp-keygen -u alice@example.org -o other/alice --no-passphrase >/dev/null 2>&1
	echo forged | smimp-seal -i other/alice.key -r bob.pub >m.age
	run -5 --separate-stderr open_bob -o out m.age
	[[ "$stderr" == "smimp-open: alice@example.org is pinned to fingerprint "*" but the message is signed by "* ]]
	assert_nothing_released
}

@test "wrong recipient: exit 3" {
	seal msg >m.age
	run -3 --separate-stderr smimp-open -i carol.key -o out m.age
	[ "$stderr" = "smimp-open: cannot decrypt: the message is not encrypted to carol@example.com" ]
	assert_nothing_released
}

@test "surreptitious forwarding is detected" {
	command -v age >/dev/null || skip "age not installed"
	seal msg >m.age
	smimp-keygen --export-age -i bob.key >bob.agekey
	# Bob strips the outer layer and re-encrypts the signed envelope to Carol.
	age -d -i bob.agekey m.age >envelope
	head -1 envelope | grep -qx 'smimp-envelope/1'
	age -e -r "$(smimp-keygen --export-age-recipient carol.pub)" envelope >fwd.age
	trust_as "$BATS_TEST_TMPDIR/carolhome" alice.pub trusted
	SMIMP_HOME="$BATS_TEST_TMPDIR/carolhome" run -3 --separate-stderr smimp-open -i carol.key -o out fwd.age
	[ "$stderr" = "smimp-open: the message from alice@example.org was not addressed to carol@example.com: it was forwarded by someone else" ]
	assert_nothing_released
}

@test "the outer layer opens with the age binary; age files are not smimp messages" {
	command -v age >/dev/null || skip "age not installed"
	seal msg >m.age
	smimp-keygen --export-age -i bob.key >bob.agekey
	run -0 age -d -i bob.agekey m.age
	[ "${lines[0]}" = "smimp-envelope/1" ]
	echo "plain age" | age -e -r "$(smimp-keygen --export-age-recipient bob.pub)" >plain.age
	run -3 --separate-stderr open_bob -o out plain.age
	[ "$stderr" = "smimp-open: not a smimp message: the payload is not a smimp envelope" ]
	assert_nothing_released
}

@test "truncation at every chunk boundary and elsewhere: exit 3, nothing out" {
	head -c 200000 /dev/urandom >big
	seal big >m.age
	size=$(stat -c %s m.age)
	hdr=$(grep -abo -- '^--- ' m.age | head -1 | cut -d: -f1)
	hend=$(( hdr + $(tail -c +$((hdr + 1)) m.age | head -1 | wc -c) ))
	for cut in 0 10 $hdr $hend $((hend + 16)) $((hend + 16 + 65552)) \
	    $((hend + 16 + 2 * 65552)) $((hend + 16 + 3 * 65552)) \
	    $((hend + 17)) $((size - 1)) $((size - 17)); do
		head -c "$cut" m.age >t.age
		run -3 --separate-stderr open_bob -o out t.age
		[ "${#lines[@]}" -eq 0 ]
		[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
		assert_nothing_released
	done
	# A whole extra chunk appended, and trailing garbage.
	{ cat m.age; head -c 100 /dev/urandom; } >t.age
	run -3 --separate-stderr open_bob -o out t.age
	assert_nothing_released
}

@test "a single flipped bit anywhere: exit 3, nothing out" {
	seal msg >m.age
	# Every seventh byte flipped, each in a copy of its own (made in one
	# process: six for each copy took most of the test's time).
	mkdir flipped
	python3 -c '
import sys
d = open("m.age", "rb").read()
for pos in range(0, len(d), 7):
    b = bytearray(d)
    b[pos] ^= 4
    open("flipped/%d" % pos, "wb").write(b)'
	[ "$(ls flipped | wc -l)" -eq $(( ($(stat -c %s m.age) + 6) / 7 )) ]
	for t in flipped/*; do
		s=0
		open_bob -o out "$t" >stdout 2>stderr || s=$?
		[ "$s" -eq 3 ] || { echo "pos ${t#*/}: status $s: $(cat stderr)"; false; }
		[ ! -s stdout ]
		[ ! -e out ]
		for f in *.tmp.*; do [ ! -e "$f" ]; done
	done
}

@test "garbage, empty input, unknown version, huge header lines: exit 3" {
	: >empty
	run -3 --separate-stderr open_bob -o out empty
	assert_nothing_released
	head -c 5000 /dev/urandom >garbage
	run -3 --separate-stderr open_bob -o out garbage
	assert_nothing_released
	seal msg >m.age
	sed '1s/v1/v2/' m.age >v2.age
	run -3 --separate-stderr open_bob -o out v2.age
	assert_nothing_released
	{ echo age-encryption.org/v1; printf -- '-> X25519 '; head -c 3000000 /dev/zero | tr '\0' A; echo; } >huge.age
	run -3 --separate-stderr open_bob -o out huge.age
	[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
	assert_nothing_released
}

@test "the version line is judged without reading past its end" {
	# Under the sanitizer build, a byte read past a line is a crash.
	run -0 "$SMIMP_BUILD/t/age-version"
	[ "$output" = "9 passed, 0 failed" ]
	seal msg >m.age
	for v in age-encryptio age-encryption.org age-encryption.org/ age-encryption.org/v2; do
		{ echo "$v"; tail -n +2 m.age; } >v.age
		run -3 --separate-stderr open_bob -o out v.age
		why="not an age file"
		[ "$v" = age-encryption.org/v2 ] && why="unsupported age version"
		[ "$stderr" = "smimp-open: cannot decrypt: $why" ]
		assert_nothing_released
	done
}

@test "open refuses a loose key file and a wrong passphrase" {
	(umask 077; echo 'pass phrase' >pass; echo 'not it' >wrong)
	smimp-keygen -u dave@example.org -o dave --passphrase-file pass >/dev/null 2>&1
	echo hi | smimp-seal -i alice.key -r dave.pub >m.age
	run -1 --separate-stderr smimp-open -i dave.key --passphrase-file wrong -o out m.age
	[ "$stderr" = "smimp-open: 'dave.key': wrong passphrase" ]
	assert_nothing_released
	chmod 640 dave.key
	run -1 --separate-stderr smimp-open -i dave.key --passphrase-file pass -o out m.age
	[ "$stderr" = "smimp-open: 'dave.key' is accessible by others (mode 640); run chmod 600 'dave.key'" ]
	assert_nothing_released
}

@test "seal: bad input is refused and leaves no output" {
	run -2 --separate-stderr smimp-seal -i alice.key msg
	run -2 --separate-stderr smimp-seal -i alice.key -r bob.pub -t html -o out msg
	[ "$stderr" = "smimp-seal: invalid message type 'html': use email, short-message or x-<name>" ]
	assert_nothing_released
	run -1 --separate-stderr smimp-seal -i alice.key -r nosuch.pub -o out msg
	[ "$stderr" = "smimp-seal: cannot open 'nosuch.pub': No such file or directory" ]
	assert_nothing_released
	run -1 --separate-stderr smimp-seal -i alice.key -r bob.pub -o out nosuchfile
	[ "$stderr" = "smimp-seal: cannot open 'nosuchfile': No such file or directory" ]
	assert_nothing_released
	run -2 --separate-stderr smimp-seal -i alice.key -r 'bad address' msg
	[ "$stderr" = "smimp-seal: invalid address 'bad address': expected local@domain" ]
	run -2 --separate-stderr smimp-seal -i alice.key -r 'bad user@example.org' msg
	[ "$stderr" = "smimp-seal: invalid address 'bad user@example.org': character ' ' not allowed in the local part" ]
}
