#!/usr/bin/env bats
# The known-answer vectors of doc/PROTOCOL.md (t/vectors/).

load helper

setup() { common_setup; }

@test "the library reproduces every protocol vector" {
	run -0 "$SMIMP_BUILD/t/protocol-vectors" "$REPO/t/vectors"
	[ "${lines[-1]}" = "116 passed, 0 failed" ]
	! grep -q '^FAIL' <<<"$output" || false
}

@test "a changed vector file is caught" {
	cp -r "$REPO/t/vectors" v
	sed -i 's/^fingerprint: ./fingerprint: 2/' v/alice.txt
	sed -i '$ s/^signature: ./signature: f/' v/envelope0.txt
	run -1 "$SMIMP_BUILD/t/protocol-vectors" v
	grep -q '^FAIL alice.txt: fingerprint' <<<"$output"
	[ "${lines[-1]}" != "116 passed, 0 failed" ]
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

@test "devices: the record grammar, who is live, what the log refuses, and a recovery that cuts devices back" {
	run -0 "$SMIMP_BUILD/t/protocol-vectors" "$REPO/t/vectors"
	grep -qx 'ok device-add record: the library writes the bytes built by hand from the grammar' <<<"$output"
	grep -qx 'ok alice-devices.pub: verifies; laptop and phone live, ci-runner removed' <<<"$output"
	grep -qx 'ok a recovery that keeps 3 records cuts back the devices added after: only the laptop is left' <<<"$output"
	grep -qx '# identity record 6: device .laptop. is in the log already' <<<"$output"
	grep -qx "# identity record 6: the keys of device 'ci-runner-2' were those of device 'ci-runner' before" <<<"$output"
	grep -qx "# identity record 6: no device 'ci-runner' to remove" <<<"$output"
	grep -qx '# identity record 6: bad signature' <<<"$output"
	grep -qx 'ok a removed name comes back with new keys' <<<"$output"
	# A device record changed by one byte no longer verifies.
	cp -r "$REPO/t/vectors" v
	sed -i 's/^scope: send$/scope: full/' v/alice-devices.pub
	run -1 "$SMIMP_BUILD/t/protocol-vectors" v
	grep -qx 'FAIL alice-devices.pub: verifies; laptop and phone live, ci-runner removed' <<<"$output"
}

@test "the enrollment request vector: written as the grammar says; its signature and code as PROTOCOL.md 3 computes them, outside the library" {
	run -0 "$SMIMP_BUILD/t/protocol-vectors" "$REPO/t/vectors"
	grep -qx 'ok enrollment request: the library writes the bytes built by hand from the grammar' <<<"$output"
	grep -qx 'ok laptop-request.txt: the request.s code' <<<"$output"
	run -0 python3 - "$REPO/t/vectors/laptop.request" <<-'EOF'
	import base64, hashlib, sys
	from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
	r = open(sys.argv[1], 'rb').read()
	body, sig = r[:r.index(b'signature: ')], r.split(b'signature: ')[1].strip()
	key = [l.split(b': ')[1] for l in r.split(b'\n') if l.startswith(b'device-signing-key: ')][0]
	Ed25519PublicKey.from_public_bytes(base64.b64decode(key)).verify(
	    base64.b64decode(sig), b'smimp/1 device-request\0' + body)
	h = hashlib.blake2b(b'smimp/1 device-code\0' + r, digest_size=32).digest()
	b = int.from_bytes(h[:7], 'big') >> 6
	c = ''.join('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[(b >> (5 * (9 - i))) & 31] for i in range(10))
	print('code: %s-%s' % (c[:5], c[5:]))
	EOF
	[ "$output" = "$(cat "$REPO/t/vectors/laptop-request.txt")" ]
}

@test "the device-sealed envelope: from-device right after from-log-head, signed by the laptop's key as PROTOCOL.md 4.2 computes it, outside the library" {
	run -0 "$SMIMP_BUILD/t/protocol-vectors" "$REPO/t/vectors"
	grep -qx 'ok envelope-device.txt: leaves, root and the laptop.s signature' <<<"$output"
	grep -qx 'ok envelope-device: from-device ci-runner is refused' <<<"$output"
	[ "$(sed -n 5,6p "$REPO/t/vectors/envelope-device.header" | cut -d: -f1 | tr '\n' ' ')" = "from-log-head from-device " ]
	run -0 python3 - "$REPO/t/vectors" <<-'EOF'
	import base64, hashlib, sys
	from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
	from cryptography.hazmat.primitives import serialization as s
	d = sys.argv[1]
	h = open(d + '/envelope-device.header', 'rb').read()
	hb = h + bytes(i % 251 for i in range(42))
	leaves = b''.join(hashlib.blake2b(hb[i:i + 65536], digest_size=32, person=b'smimp/1 leaf').digest()
	    for i in range(0, len(hb), 65536))
	root = hashlib.blake2b(leaves + len(hb).to_bytes(8, 'big'), digest_size=32, person=b'smimp/1 root').digest()
	k = Ed25519PrivateKey.from_private_bytes(bytes([0x21]) * 32)
	pub = k.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
	# The laptop's key is the one alice's log names for it.
	log = open(d + '/alice-devices.pub', 'rb').read().decode()
	rec = [r for r in log.split('smimp-identity/1\n') if 'device: laptop\n' in r][0]
	assert 'device-signing-key: ' + base64.b64encode(pub).decode() + '\n' in rec
	print('signature: ' + k.sign(b'smimp/1 envelope-signature\0' + root).hex())
	EOF
	[ "$output" = "$(grep '^signature: ' "$REPO/t/vectors/envelope-device.txt")" ]
}

@test "the envelope with parts: part lines before sender-log, their bytes before the body, signed as any bytes, as PROTOCOL.md 4.5 computes it, outside the library" {
	run -0 "$SMIMP_BUILD/t/protocol-vectors" "$REPO/t/vectors"
	grep -qx 'ok envelope-parts.txt: offsets, leaves, root and signature' <<<"$output"
	grep -qx 'ok envelope-parts: refuses ../x' <<<"$output"
	grep -qx '# malformed envelope: part 1 has a name that starts with a dot' <<<"$output"
	grep -qx '# malformed envelope: part 2 has the name of part 1' <<<"$output"
	grep -qx 'ok envelope-parts: refuses a 65th part' <<<"$output"
	run -0 python3 - "$REPO/t/vectors" <<-'EOF'
	import hashlib, re, sys
	from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
	d = sys.argv[1]
	h = open(d + '/envelope-parts.header', 'rb').read()
	lines = h.split(b'\n')
	# The part lines come right after content-type, before sender-log.
	i = [n for n, l in enumerate(lines) if l.startswith(b'content-type: ')][0]
	parts = []
	while lines[i + 1].startswith(b'part: '):
	    i += 1
	    kind, size = lines[i][6:].split(b' ')[:2]
	    assert re.fullmatch(rb'[a-z][a-z0-9-]{0,31}', kind)
	    assert re.fullmatch(rb'0|[1-9][0-9]*', size)
	    parts.append((kind, int(size), lines[i]))
	assert lines[i + 1].startswith(b'sender-log: ')
	b = b''.join(bytes(k % 251 for k in range(size)) for _, size, _ in parts)
	offsets, at = [], 0
	for _, size, _ in parts:
	    offsets.append(at)
	    at += size
	hb = h + b + bytes(k % 251 for k in range(42))
	leaves = b''.join(hashlib.blake2b(hb[i:i + 65536], digest_size=32, person=b'smimp/1 leaf').digest()
	    for i in range(0, len(hb), 65536))
	root = hashlib.blake2b(leaves + len(hb).to_bytes(8, 'big'), digest_size=32, person=b'smimp/1 root').digest()
	k = Ed25519PrivateKey.from_private_bytes(bytes([0x01]) * 32)
	print('kinds: ' + ' '.join(kind.decode() for kind, _, _ in parts))
	print('offsets: ' + ' '.join(map(str, offsets)) + ' body ' + str(at))
	print('signature: ' + k.sign(b'smimp/1 envelope-signature\0' + root).hex())
	EOF
	[ "${lines[0]}" = "kinds: attachment attachment x-later attachment" ]
	[ "${lines[1]}" = "offsets: 0 0 70000 70005 body 70008" ]
	[ "${lines[2]}" = "$(grep '^signature: ' "$REPO/t/vectors/envelope-parts.txt")" ]
}

@test "the padded envelope: a padding line before sender-log, P and T after the body, padded to Padme's bucket above 4096, signed over all of it, as PROTOCOL.md 9 computes it, outside the library" {
	run -0 "$SMIMP_BUILD/t/protocol-vectors" "$REPO/t/vectors"
	grep -qx 'ok envelope-padded.txt: padding, leaves, root and signature of each body' <<<"$output"
	grep -qx 'ok envelope-padded: refuses padding: semp' <<<"$output"
	grep -qx 'ok envelope-padded: refuses a padding line before a part' <<<"$output"
	run -0 python3 - "$REPO/t/vectors" <<-'EOF'
	import hashlib, sys
	from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
	d = sys.argv[1]
	h = open(d + '/envelope-padded.header', 'rb').read()
	lines = h.split(b'\n')
	i = lines.index(b'padding: padme')
	assert lines[i + 1].startswith(b'sender-log: ')
	def bucket(n):
	    if n <= 4096:
	        return 4096
	    e = n.bit_length() - 1
	    mask = (1 << (e - e.bit_length())) - 1
	    return (n + mask) & ~mask
	k = Ed25519PrivateKey.from_private_bytes(bytes([0x01]) * 32)
	print('header-length: %d' % len(h))
	for blen in (42, 70000):
	    want = len(h) + blen + 8 + 64
	    t = bucket(want)
	    z = t - want
	    hbpt = h + bytes(j % 251 for j in range(blen)) + bytes(z) + z.to_bytes(8, 'big')
	    leaves = b''.join(hashlib.blake2b(hbpt[j:j + 65536], digest_size=32, person=b'smimp/1 leaf').digest()
	        for j in range(0, len(hbpt), 65536))
	    root = hashlib.blake2b(leaves + len(hbpt).to_bytes(8, 'big'), digest_size=32, person=b'smimp/1 root').digest()
	    print('body-length: %d\npadding-length: %d\nplaintext-length: %d' % (blen, z, t))
	    for j in range(0, len(leaves), 32):
	        print('leaf: ' + leaves[j:j + 32].hex())
	    print('root: ' + root.hex())
	    print('signature: ' + k.sign(b'smimp/1 envelope-signature\0' + root).hex())
	EOF
	[ "$output" = "$(cat "$REPO/t/vectors/envelope-padded.txt")" ]
}

@test "the prekey batches: the library's bytes, each prekey signed by its owner's key over the lines PROTOCOL.md 10.2 names and its key from its secret, outside the library" {
	run -0 "$SMIMP_BUILD/t/prekeytool" vector "$REPO/t/vectors"
	[ "${lines[-1]}" = "21 passed, 0 failed" ]
	[ "$(grep -c "^FAIL" <<<"$output")" = 0 ]
	run -0 python3 - "$REPO/t/vectors" <<-'EOF'
	import base64, sys
	from cryptography.hazmat.primitives import serialization as s
	from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
	from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
	raw = lambda k: k.public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
	for name, seed, device in (('prekeys.batch', 1, None),
	                           ('prekeys-laptop.batch', 0x21, 'laptop')):
	    pub = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32).public_key()
	    lines = open(sys.argv[1] + '/' + name).read().split('\n')
	    assert lines[0] == 'smimp-prekeys/1' and lines[-1] == ''
	    head = dict(l.split(': ', 1) for l in lines[1:] if l and not l.startswith('prekey: '))
	    assert head.get('device') == device
	    for n, l in enumerate(x for x in lines if x.startswith('prekey: ')):
	        pid, key, sig = l[8:].split(' ')
	        secret = X25519PrivateKey.from_private_bytes(bytes([0x31 + n]) * 32)
	        assert base64.b64decode(key) == raw(secret.public_key())
	        text = 'address: %s\n' % head['address']
	        text += 'device: %s\n' % device if device else ''
	        text += 'date: %s\nid: %s\nkey: %s\n' % (head['date'], pid, key)
	        pub.verify(base64.b64decode(sig), b'smimp/1 prekey\0' + text.encode())
	        print(name, pid)
	EOF
	[ "$output" = "$(printf '%s\n' 'prekeys.batch 0123456789abcdef' \
	    'prekeys.batch fedcba9876543210' 'prekeys-laptop.batch 0123456789abcdef' \
	    'prekeys-laptop.batch fedcba9876543210')" ]
	# A changed batch is caught.
	cp -r "$REPO/t/vectors" v
	sed -i 's/^date: 2026-11-27T00:00:00Z/date: 2026-11-27T00:00:01Z/' v/prekeys.batch
	run -1 "$SMIMP_BUILD/t/prekeytool" vector v
	grep -qx 'FAIL prekeys.batch: the batch' <<<"$output"
}

@test "the committed alice.pub is the one the identity file names" {
	run -0 smimp-keygen --fingerprint "$REPO/t/vectors/alice.pub"
	grep -qx "fingerprint: $output" "$REPO/t/vectors/alice.txt"
}

@test "bounce notices: signed under their own context; other servers' words quoted; parsed, and written as MIME in printable lines" {
	run -0 "$SMIMP_BUILD/t/bounce"
	[ "${lines[-1]}" = "24 passed, 0 failed" ]
}
