#!/usr/bin/env bats
# Padding (doc/PROTOCOL.md 9): a sealed message's size shows only a
# bucket (Padmé above a floor of 4 KiB, computed here outside the
# library), and its age header only a power of two of stanzas; the
# padding is signed, and a reader refuses padding that is not zero, a
# length that is not the bucket, a scheme it does not know; messages
# from before padding still open.

load helper

setup() {
	common_setup
	alice_and_bob
	smimp-keygen --export-age -i bob.key >bob.agekey
}

hostile() { "$SMIMP_BUILD/t/hostile" "$@"; }
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }

# padding_of M.AGE: the padding's length, as T (the 8 bytes before S)
# of bob's message M.AGE says.
padding_of() {
	age -d -i bob.agekey "$1" | tail -c 72 | head -c 8 | od -An -tu1 |
		awk '{ for (i = 1; i <= NF; i++) v = v * 256 + $i } END { print v }'
}

# is_bucket N: is N a padded length (Padme above 4096, or 4096)?
is_bucket() {
	python3 - "$1" <<-'EOF'
	import sys
	n = int(sys.argv[1])
	e = n.bit_length() - 1
	mask = (1 << (e - e.bit_length())) - 1
	sys.exit(0 if n == 4096 or (n > 4096 and n & mask == 0) else 1)
	EOF
}

# layout M.AGE BODYLEN: the age plaintext of M.AGE (bob's) checked as
# doc/PROTOCOL.md 9 lays it out, by a reader of its own: prints
# "T Z", the plaintext's length and the padding's.
layout() {
	age -d -i bob.agekey "$1" >plain
	python3 - "$1" plain "$2" <<-'EOF'
	import sys
	sealed, plain, body = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read(), int(sys.argv[3])
	def padme(n):
	    e = n.bit_length() - 1
	    s = e.bit_length()
	    mask = (1 << (e - s)) - 1
	    return (n + mask) & ~mask
	def bucket(n):
	    return 4096 if n <= 4096 else padme(n)
	t = len(plain)
	hlen = plain.index(b'\n\n') + 2
	assert b'\npadding: padme\nsender-log: ' in plain[:hlen], 'no padding line'
	z = int.from_bytes(plain[t - 72:t - 64], 'big')
	assert plain[t - 72 - z:t - 72] == bytes(z), 'padding not zero'
	assert hlen + body + z + 72 == t, 'lengths do not add up'
	assert t == bucket(t - z), 'not its bucket'
	# The age file: its header, the nonce, T in 64 KiB chunks of 16 more.
	head = sealed.index(b'\n--- ') + 1
	head = sealed.index(b'\n', head) + 1
	assert len(sealed) == head + 16 + t + 16 * -(-t // 65536), 'sealed size'
	print(t, z)
	EOF
}

@test "sealed sizes take only bucket values; every message up to 3000 bytes seals to one size" {
	command -v age >/dev/null || skip "age not installed"
	sizes=
	for n in 0 1 100 1000 2000 3000 4000 5000 9000 20000 65000 65536 70000 131072 150000 300000 1048577; do
		head -c "$n" /dev/urandom >body
		seal -o m.age body
		run -0 layout m.age "$n"
		sizes="$sizes $(stat -c %s m.age)"
		open_bob -q -o out m.age
		cmp body out
		rm out
	done
	echo "sealed:$sizes"
	[ "$(echo $sizes | cut -d' ' -f1-6 | tr ' ' '\n' | sort -u | wc -l)" -eq 1 ]
	# Above the floor Padme keeps a few top bits: 65000 and 65536 too
	# seal to one size.
	[ "$(echo $sizes | tr ' ' '\n' | sort -u | wc -l)" -eq 11 ]
	# The same body from a pipe of unknown length seals to the same size.
	head -c 70000 /dev/urandom >body
	seal -o file.age body
	cat body | seal >pipe.age
	[ "$(stat -c %s file.age)" = "$(stat -c %s pipe.age)" ]
	# Parts are padded with the rest: the padding follows the body.
	head -c 5000 /dev/urandom >a.bin
	seal --attach a.bin -o m.age msg
	run -0 layout m.age $(( 5000 + $(stat -c %s msg) ))
	mkdir x
	run -0 --separate-stderr open_bob -q --extract x m.age
	cmp a.bin x/a.bin
	[ "$output" = "$(cat msg)" ]
}

@test "the stanza count is a power of two: stanzas of no one, like the real ones; every real key opens it, with smimp-open and with age" {
	command -v age >/dev/null || skip "age not installed"
	for i in 1 2 3 4 5 6 7 8; do
		mkid "r$i" "r$i@example.net"
		smimp-keygen --export-age -i "r$i.key" >"r$i.agekey"
		trust_as "$BATS_TEST_TMPDIR/home-r$i" alice.pub trusted
	done
	echo hello >body
	rcpts=()
	for n in 1 2 3 4 5 6 7 8; do
		rcpts+=(-r "r$n.pub")
		smimp-seal -i alice.key "${rcpts[@]}" -o m.age body
		# n recipients and the sender: the next power of two.
		want=1
		while [ "$want" -lt $((n + 1)) ]; do want=$((want * 2)); done
		[ "$(grep -ac '^-> X25519 ' m.age)" -eq "$want" ]
		# Every stanza as age writes one: a share and a wrap, 43
		# characters of unpadded base64 each; no share twice.
		sed -n '2,/^--- /p' m.age | sed '$d' >stanzas
		[ "$(wc -l <stanzas)" -eq $((2 * want)) ]
		[ "$(grep -Ecvx -e '-> X25519 [A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]' -e '[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]' stanzas)" -eq 0 ]
		[ "$(grep -a '^-> ' stanzas | sort -u | wc -l)" -eq "$want" ]
		for k in $(seq "$n"); do
			run -0 age -d -i "r$k.agekey" m.age
			[ "${lines[0]}" = "smimp-envelope/1" ]
			# (run sets i: the loop's variable is k.)
			run -0 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/home-r$k" \
				smimp-open -i "r$k.key" m.age
			[ "$output" = hello ]
		done
	done
	# To oneself: one key, one stanza (a power of two already).
	smimp-seal -i alice.key -r alice.pub -o self.age body
	[ "$(grep -ac '^-> X25519 ' self.age)" -eq 1 ]
	# The sender opens its own copy whatever stanza its key's is in.
	for _ in 1 2 3 4 5; do
		smimp-seal -i alice.key "${rcpts[@]}" -o m.age body
		run -0 --separate-stderr smimp-open -i alice.key m.age
		[ "$output" = hello ]
	done
}

@test "the padding is signed: flipped after signing, a bad signature; a byte of it changed in the ciphertext, cannot decrypt" {
	hostile seal alice.key alice.pub bob.pub <msg >m.age
	run -0 --separate-stderr open_bob m.age
	[ "$output" = "$(cat msg)" ]
	# The first byte of the padding, and the last of T.
	hostile seal alice.key alice.pub bob.pub "!$(stat -c %s msg)" <msg >m.age
	run -3 --separate-stderr open_bob -o out m.age
	[ "$stderr" = "smimp-open: bad signature: the message from alice@example.org was altered or forged" ]
	[ ! -e out ]
	seal -o m.age msg
	size=$(stat -c %s m.age)
	# 100 bytes before the end: in P (the tag, S and T are 88).
	flip m.age $((size - 100))
	run -3 --separate-stderr open_bob -o out m.age
	[ "$stderr" = "smimp-open: cannot decrypt: the message is corrupted or truncated" ]
	[ ! -e out ]
}

@test "signed, but padded wrong: a padding byte not zero, more or less padding than the bucket needs, a T past the message, a scheme not known, or a padding line with no padding: refused (exit 3), nothing out" {
	refuses() { # MESSAGE EDIT...: sealed so, open_bob refuses with MESSAGE
		local want=$1
		shift
		hostile seal alice.key alice.pub bob.pub "$@" <msg >m.age
		run -3 --separate-stderr open_bob -o out m.age
		[ "$stderr" = "smimp-open: $want" ]
		[ -z "$output" ]
		[ ! -e out ]
	}
	command -v age >/dev/null || skip "age not installed"
	hostile seal alice.key alice.pub bob.pub <msg >m.age
	z=$(padding_of m.age)
	[ "$z" -gt 100 ]
	refuses "malformed envelope: a padding byte is not zero" %byte=0
	refuses "malformed envelope: a padding byte is not zero" %byte=100
	refuses "malformed envelope: a padding byte is not zero" %byte=$((z - 1))
	# T counts the body's last byte (a newline) as padding.
	refuses "malformed envelope: a padding byte is not zero" %len=$((z + 1))
	# T counts the whole body and more.
	refuses "malformed envelope: the padding is longer than the message" %len=$((z + $(stat -c %s msg) + 1))
	refuses "malformed envelope: the padding is longer than the message" %len=18446744073709551615
	refuses "malformed envelope: padded to $((4096 + 768)) bytes, not to its bucket" %extra=768
	refuses "malformed envelope: bad padding" "padding=$(hex semp)"
	refuses "malformed envelope: bad padding" "padding=$(hex 'padme ')"
	refuses "malformed envelope: bad padding" "padding="
	refuses "malformed envelope: missing sender-log" "^padding=$(hex padme)"
	# Unpadded, but the header says padded: its last 8 bytes before S
	# are the body's, no length of any padding.
	refuses "malformed envelope: the padding is longer than the message" %none "^padding=$(hex padme)"
	# A message that says it is larger than its bucket, by padding to
	# the next one: refused too (one padded form for each content).
	refuses "malformed envelope: padded to 8192 bytes, not to its bucket" %extra=4096
}

@test "T says where the body ends: zero bytes at the body's end are the body's, the padding only what T counts" {
	for body in 'ends with zeros\0\0\0' '\0' '\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0'; do
		# shellcheck disable=SC2059
		printf "$body" >zb
		seal -o m.age zb
		open_bob -q -o out m.age
		cmp zb out
		rm out
		run -0 --separate-stderr open_bob --json m.age
		[ "$(jq .body_length <<<"$output")" -eq "$(stat -c %s zb)" ]
	done
	# A sender whose T says one byte less than the zeros it wrote sent
	# one zero byte more of body: that is what it signed.
	command -v age >/dev/null || skip "age not installed"
	printf 'abc' >b3
	hostile seal alice.key alice.pub bob.pub <b3 >m.age
	z=$(padding_of m.age)
	hostile seal alice.key alice.pub bob.pub "%len=$((z - 1))" <b3 >m.age
	run -0 --separate-stderr open_bob --json m.age
	[ "$(jq -r .body_length <<<"$output")" = 4 ]
	[ "$(jq -c .body <<<"$output")" = '"abc\u0000"' ]
}

@test "a message from before padding still opens, at every chunk boundary, the signature straddling two chunks too" {
	command -v age >/dev/null || skip "age not installed"
	hostile seal alice.key alice.pub bob.pub %none </dev/null >probe.age
	run -0 age -d -i bob.agekey probe.age
	! grep -q '^padding: ' <<<"$output" || false
	hlen=$(( $(age -d -i bob.agekey probe.age | wc -c) - 64 ))
	for l in 65471 65472 65473 65535 65536 65537 131062 131072; do
		head -c $(( l - hlen )) /dev/urandom >body
		hostile seal alice.key alice.pub bob.pub %none <body >m.age
		# H || B || S, nothing else.
		[ "$(age -d -i bob.agekey m.age | wc -c)" -eq $(( l + 64 )) ]
		open_bob -q -o out m.age
		cmp body out
		rm out
	done
	# With parts.
	{ head -c 3 /dev/urandom; cat msg; } >pb
	hostile seal alice.key alice.pub bob.pub %none \
		"^part=$(hex 'attachment 3 application/octet-stream a.bin')" <pb >m.age
	mkdir x
	run -0 --separate-stderr open_bob -q --extract x m.age
	[ "$output" = "$(cat msg)" ]
	[ "$(stat -c %s x/a.bin)" -eq 3 ]
}

@test "headers and json: the padding line is not shown, the body's length is the body's" {
	seal -s padded -o m.age msg
	run -0 --separate-stderr open_bob --headers m.age
	! grep -q '^padding' <<<"$output" || false
	# The header, an empty line, the body.
	[ "$(sed -n '/^$/{x;p;q};h' <<<"$output")" = "content-type: text/markdown; charset=utf-8" ]
	[ "$(sed '1,/^$/d' <<<"$output")" = "$(cat msg)" ]
	run -0 --separate-stderr open_bob --json m.age
	[ "$(jq .body_length <<<"$output")" -eq "$(stat -c %s msg)" ]
}

@test "a body from a pipe is padded at its end in constant memory, and opened so, zeros and all" {
	[ -x /usr/bin/time ] || skip "/usr/bin/time is not installed"
	mib=${PAD_TEST_MIB:-64}
	[[ "$SMIMP_BUILD" != *-san ]] || mib=16
	# Zeros: the opener counts them rather than holding them; the
	# padding after them is found by T alone.
	head -c "${mib}M" /dev/zero | /usr/bin/time -f '%M' -o seal.rss \
		smimp-seal -i alice.key -r bob.pub >m.age
	SMIMP_HOME="$BOBHOME" /usr/bin/time -f '%M' -o open.rss \
		smimp-open -i bob.key -q -o out m.age
	echo "$mib MiB of zeros: sealed $(stat -c %s m.age) bytes; seal max RSS $(cat seal.rss) KiB, open $(cat open.rss) KiB"
	[ "$(stat -c %s out)" -eq $((mib * 1048576)) ]
	[ -z "$(tr -d '\0' <out | head -c 1)" ]
	# The plaintext, from the file's size: a bucket.
	head=$(( $(grep -abo -m1 -- '^--- ' m.age | cut -d: -f1) + 48 ))
	x=$(( $(stat -c %s m.age) - head - 16 ))
	t=$(( x - 16 * ((x + 65551) / 65552) ))
	is_bucket "$t"
	! is_bucket $((t - 1)) || false
	[ "$(cat seal.rss)" -lt 32768 ]
	[ "$(cat open.rss)" -lt 32768 ]
}
