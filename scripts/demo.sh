#!/bin/sh
# The end-to-end demo: a throw-away CA, two servers on loopback
# (example.org and example.net, embedded store), alice and bob, and
# keygen, seal, send, relay, fetch and open, each step shown.
# Everything lives in a temporary directory removed on exit or interrupt.
set -eu
BIN=${1:?usage: demo.sh BINDIR}
PATH="$BIN:$PATH"
export PATH
work=$(mktemp -d "${TMPDIR:-/tmp}/smimp-demo.XXXXXX")
pids=
cleanup() {
	for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
	sleep 0.3
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
cd "$work"

step "a throw-away certificate authority and a certificate for loopback"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout ca.key -out ca.pem -days 1 -subj "/CN=smimp demo CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
	-out server.pem -days 1 -extfile ext 2>/dev/null
echo "ca.pem signs server.pem for 127.0.0.1"

ORG=$(free_port)
NET=$(free_port)
SMIMP_RESOLVE="example.org=127.0.0.1:$ORG,example.net=127.0.0.1:$NET"
SMIMP_CACERT="$work/ca.pem"
SMIMP_PASSPHRASE_FILE="$work/passphrase"
export SMIMP_RESOLVE SMIMP_CACERT SMIMP_PASSPHRASE_FILE
printf 'correct horse battery staple\n' >passphrase
chmod 600 passphrase
mkdir alice bob

step "alice@example.org and bob@example.net make their identities"
echo "(secret files encrypted with the passphrase in SMIMP_PASSPHRASE_FILE)"
SMIMP_HOME=$work/alice show smimp-keygen -u alice@example.org
SMIMP_HOME=$work/bob show smimp-keygen -u bob@example.net

step "two servers on loopback, each with its embedded store"
printf 'resolve %s\ncacert %s\n' "$SMIMP_RESOLVE" "$SMIMP_CACERT" >common.conf
show smimpd -f common.conf --data org --domain example.org adduser alice@example.org alice/identity.pub
show smimpd -f common.conf --data net --domain example.net adduser bob@example.net bob/identity.pub
for s in "org example.org $ORG" "net example.net $NET"; do
	set -- $s
	smimpd -d -f common.conf --data "$1" --domain "$2" \
		--listen "127.0.0.1:$3" --cert server.pem --key server.key \
		2>"$1.log" &
	pids="$pids $!"
done
for port in "$ORG" "$NET"; do
	for _ in $(seq 50); do
		curl -s --cacert ca.pem "https://127.0.0.1:$port/smimp/version" >/dev/null && break
		sleep 0.1
	done
done
echo "example.org on 127.0.0.1:$ORG, example.net on 127.0.0.1:$NET"

step "alice looks bob up in his domain's directory (a lookup she signs) and pins him"
SMIMP_HOME=$work/alice show smimp-trust fetch bob@example.net --tier trusted

step "alice seals a note to bob (signed, then encrypted) and sends it"
printf 'Hi Bob,\n\nthe build is green again.\n\n-- Alice\n' >note.md
SMIMP_HOME=$work/alice show smimp-seal -r bob@example.net -s "build 42 fixed" -o note.age note.md
SMIMP_HOME=$work/alice show smimp-send note.age

step "example.org relays it to example.net (signed request, delivery stamp)"
for _ in $(seq 100); do grep -q relayed org.log && break; sleep 0.1; done
grep -h 'relayed\|deliver' org.log net.log | sed 's/^/  /'

step "bob fetches his mailbox into a Maildir, filed by his trust store"
SMIMP_HOME=$work/bob show smimp-trust fetch alice@example.org --tier trusted
SMIMP_HOME=$work/bob show smimp-fetch
find bob/Maildir -type f | sed "s|$work/||"

step "bob opens it: decrypted, signature verified, sender trusted"
SMIMP_HOME=$work/bob show smimp-open --headers bob/Maildir/new/*

step "a tampered message is refused (exit 3)"
cp note.age bad.age
# Flip one bit of byte 300 (writing a fixed byte would change nothing
# when the byte already had that value).
b=$(od -An -tu1 -j300 -N1 bad.age | tr -d ' ')
printf "\\$(printf %03o $((b ^ 1)))" | dd of=bad.age bs=1 seek=300 conv=notrunc status=none
set +e
SMIMP_HOME=$work/bob smimp-open -i bob/identity.key bad.age
echo "exit status $?"
set -e

step "done: servers stopped, the demo directory removed"
