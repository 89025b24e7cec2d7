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

@test "an unknown stanza is skipped whatever its number of arguments, as age skips it" {
	command -v python3 >/dev/null || skip "python3 not installed"
	echo "grease" >in
	# An age file to R with an unknown stanza of N arguments before its
	# X25519 one, and the header MAC to match: grease.py R N <in >out.
	cat >grease.py <<'PY'
import base64, hmac, os, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey, X25519PublicKey)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
acc = bits = 0
pk = bytearray()
for c in sys.argv[1][4:-6]:
    acc = (acc << 5) | CHARSET.index(c)
    bits += 5
    if bits >= 8:
        bits -= 8
        pk.append((acc >> bits) & 0xFF)
pk = bytes(pk)
def hkdf(ikm, salt, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                info=info).derive(ikm)
def b64(b):
    return base64.b64encode(b).rstrip(b"=")
fk = os.urandom(16)
e = X25519PrivateKey.generate()
epk = e.public_key().public_bytes(serialization.Encoding.Raw,
                                   serialization.PublicFormat.Raw)
wrap = hkdf(e.exchange(X25519PublicKey.from_public_bytes(pk)), epk + pk,
            b"age-encryption.org/v1/X25519")
h = b"age-encryption.org/v1\n-> grease"
h += b"".join(b" a%d" % i for i in range(int(sys.argv[2]))) + b"\n\n"
h += b"-> X25519 " + b64(epk) + b"\n"
h += b64(ChaCha20Poly1305(wrap).encrypt(bytes(12), fk, None)) + b"\n---"
h += b" " + b64(hmac.new(hkdf(fk, b"", b"header"), h, "sha256").digest())
nonce = os.urandom(16)
body = ChaCha20Poly1305(hkdf(fk, nonce, b"payload")).encrypt(
    bytes(11) + b"\x01", sys.stdin.buffer.read(), None)
sys.stdout.buffer.write(h + b"\n" + nonce + body)
PY
	for n in 1 8 9 40; do
		python3 grease.py "$R" "$n" <in >c
		age -d -i key c >out
		cmp in out
		run -0 --separate-stderr "$AGETOOL" -d -i key <c
		[ "$output" = grease ]
	done
}
