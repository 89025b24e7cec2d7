#!/bin/sh
# The end-to-end demo: two people, keys, a sealed message, opened.
# Runs in a throw-away directory that is removed on exit or interrupt.
set -eu
BIN=${1:?usage: demo.sh BINDIR}
PATH="$BIN:$PATH"
export PATH
work=$(mktemp -d "${TMPDIR:-/tmp}/smimp-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

export SMIMP_PASSPHRASE_FILE="$work/passphrase"
printf 'correct horse battery staple\n' >"$SMIMP_PASSPHRASE_FILE"
chmod 600 "$SMIMP_PASSPHRASE_FILE"
mkdir "$work/alice" "$work/bob"

step "alice@example.org and bob@example.net make their identities"
echo "(the secret files are encrypted with a passphrase from SMIMP_PASSPHRASE_FILE)"
SMIMP_HOME="$work/alice" show smimp-keygen -u alice@example.org
SMIMP_HOME="$work/bob" show smimp-keygen -u bob@example.net
ls -l "$work/alice" | sed 1d

step "each pins the other's public identity after comparing fingerprints"
SMIMP_HOME="$work/alice" show smimp-trust add "$work/bob/identity.pub" --tier trusted
SMIMP_HOME="$work/bob" show smimp-trust add "$work/alice/identity.pub" --tier trusted
SMIMP_HOME="$work/bob" show smimp-trust list

step "alice seals a message to bob: signed, then encrypted (age v1, armored)"
printf 'Hi Bob,\n\nthe build is green again.\n\n-- Alice\n' >"$work/note.md"
SMIMP_HOME="$work/alice" show smimp-seal -r bob@example.net \
	-s "build 42 fixed" -a -o "$work/note.age" "$work/note.md"
head -3 "$work/note.age"; echo "..."

step "bob opens it: decrypted, signature verified, sender trusted"
SMIMP_HOME="$work/bob" show smimp-open --headers "$work/note.age"

step "a stranger's message is held back (exit 4) until bob decides"
mkdir "$work/mallory"
SMIMP_HOME="$work/mallory" smimp-keygen -u mallory@example.com --no-passphrase >/dev/null 2>&1
echo "buy now" | SMIMP_HOME="$work/mallory" smimp-seal -r "$work/bob/identity.pub" >"$work/spam.age"
set +e
SMIMP_HOME="$work/bob" smimp-open "$work/spam.age"
rc=$?
set -e
echo "exit status $rc, nothing written"

step "a tampered message is refused (exit 3)"
cp "$work/note.age" "$work/bad.age"
sed -i '6s/./X/' "$work/bad.age"
set +e
SMIMP_HOME="$work/bob" smimp-open "$work/bad.age"
echo "exit status $?"
set -e

step "done: the demo directory is removed"
