#!/usr/bin/env bats
# The age layer against the age binary, both ways, binary and armored.

load helper

setup() {
	common_setup
	command -v age >/dev/null || skip "age not installed"
	AGETOOL="$SMIMP_BUILD/t/agetool"
	age-keygen -o key 2>/dev/null
	R=$(age-keygen -y key)
}

sizes="0 1 65535 65536 65537 200000"

@test "age -r output decrypts with the project's age layer" {
	for n in $sizes; do
		head -c "$n" /dev/urandom >in
		age -e -r "$R" in >c
		"$AGETOOL" -d -i key <c >out
		cmp in out
		age -e -a -r "$R" in >c.asc
		"$AGETOOL" -d -i key <c.asc >out
		cmp in out
	done
}

@test "the project's age layer encrypts what age -d opens" {
	for n in $sizes; do
		head -c "$n" /dev/urandom >in
		"$AGETOOL" -e -r "$R" <in >c
		age -d -i key c >out
		cmp in out
		"$AGETOOL" -e -a -r "$R" <in >c.asc
		head -1 c.asc | grep -qx -- '-----BEGIN AGE ENCRYPTED FILE-----'
		age -d -i key c.asc >out
		cmp in out
	done
}

@test "scrypt: the project's passphrase files open with the same passphrase" {
	export AGETOOL_PASSPHRASE="correct horse"
	head -c 70000 /dev/urandom >in
	"$AGETOOL" -e -p <in >c
	grep -qa -- '-> scrypt ' c
	"$AGETOOL" -d -p <c >out
	cmp in out
	AGETOOL_PASSPHRASE=wrong run -3 --separate-stderr "$AGETOOL" -d -p <c
	[ "$stderr" = "agetool: no identity matches any recipient" ]
	[ -z "$output" ]
}

@test "a smimp key is an age X25519 identity: age encrypts to it" {
	mkid bob bob@example.net
	smimp-keygen --export-age -i bob.key >bob.agekey
	echo "from age" | age -e -r "$(smimp-keygen --export-age-recipient bob.pub)" >c
	run -0 "$AGETOOL" -d -i bob.agekey <c
	[ "$output" = "from age" ]
}

@test "bad input to the age layer: one-line error, no plaintext" {
	head -c 200000 /dev/urandom >in
	age -e -r "$R" in >c
	size=$(stat -c %s c)
	for cut in 0 30 $((size - 65552 - 1)) $((size - 1)) $((size - 17)); do
		head -c "$cut" c >t
		run -3 --separate-stderr "$AGETOOL" -d -i key <t
		[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
	done
	age-keygen -o other 2>/dev/null
	run -3 --separate-stderr "$AGETOOL" -d -i other <c
	[ "$stderr" = "agetool: no identity matches any recipient" ]
	[ -z "$output" ]
	{ echo age-encryption.org/v1; printf -- '-> X25519 '; head -c 100000 /dev/zero | tr '\0' A; echo; } >huge
	run -3 --separate-stderr "$AGETOOL" -d -i key <huge
	[ "$stderr" = "agetool: malformed header: line too long" ]
	# A first line past 16 KiB is too long too.
	head -c 20000 /dev/zero | tr '\0' A >huge
	run -3 --separate-stderr "$AGETOOL" -d -i key <huge
	[ "$stderr" = "agetool: malformed header: line too long" ]
	# A line of 16 KiB is read whole; one byte more is too long.
	for n in 16384 16385; do
		{ echo age-encryption.org/v1; printf -- '-> X25519 '
		  head -c $((n - 10)) /dev/zero | tr '\0' A; echo; } >edge
		run -3 --separate-stderr "$AGETOOL" -d -i key <edge
		echo "$n: $stderr"
		[ "$stderr" = "agetool: malformed header: $([ "$n" = 16384 ] &&
		    echo truncated || echo line too long)" ]
	done
}
