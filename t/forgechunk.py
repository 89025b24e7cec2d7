#!/usr/bin/env python3
"""forgechunk.py AGEKEY FD CHUNK TEXT: what any recipient of a sealed
message can do to its ciphertext, for t/1700-open-twice.bats.

AGEKEY holds the recipient's X25519 identity (AGE-SECRET-KEY-1..., as
smimp-keygen --export-age writes it); FD is a descriptor, open for
reading and writing, on the age file.  The file key is unwrapped from
the recipient's stanza and the payload key derived from it, as every
recipient does to read the message; once a line comes on standard
input, STREAM chunk number CHUNK is replaced in place by 64 KiB of TEXT,
encrypted under that key: a chunk that decrypts and authenticates, but
that the sender never signed.  Prints "forged" when it is written.
"""
import base64
import os
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey, X25519PublicKey)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
CHUNK = 65536
TAG = 16


def bech32_data(s):
    s = s.strip().lower()
    acc = bits = 0
    out = bytearray()
    for c in s[s.rfind("1") + 1:-6]:
        acc = (acc << 5) | CHARSET.index(c)
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    return bytes(out)


def hkdf(ikm, salt, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                info=info).derive(ikm)


def b64(s):
    return base64.b64decode(s + b"=" * (-len(s) % 4))


def main():
    with open(sys.argv[1]) as f:
        secret = X25519PrivateKey.from_private_bytes(bech32_data(f.read()))
    fd, n, text = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].encode()
    head = os.pread(fd, 1 << 20, 0)
    end = head.index(b"\n", head.index(b"\n--- ") + 1) + 1
    lines = head[:end].split(b"\n")
    mine = secret.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
    file_key = None
    for i, line in enumerate(lines):
        if not line.startswith(b"-> X25519 "):
            continue
        share = b64(line.split(b" ")[2])
        shared = secret.exchange(X25519PublicKey.from_public_bytes(share))
        wrap = hkdf(shared, share + mine, b"age-encryption.org/v1/X25519")
        try:
            file_key = ChaCha20Poly1305(wrap).decrypt(
                b"\0" * 12, b64(lines[i + 1]), None)
            break
        except Exception:
            continue
    if file_key is None:
        sys.exit("forgechunk: no stanza of this key")
    key = hkdf(file_key, head[end:end + 16], b"payload")
    sys.stdin.readline()
    plain = (text * CHUNK)[:CHUNK]
    sealed = ChaCha20Poly1305(key).encrypt(n.to_bytes(11, "big") + b"\0",
                                            plain, None)
    os.pwrite(fd, sealed, end + 16 + n * (CHUNK + TAG))
    print("forged", flush=True)


main()
