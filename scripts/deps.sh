#!/bin/sh
# Install the Debian packages smimp needs to build, test and demo,
# when any is missing, and those named as arguments (postgresql-15 for
# make check-postgresql).  As root it uses apt-get; otherwise it names
# them.
set -eu
PKGS="build-essential pkg-config clang libclang-rt-14-dev libsodium-dev
libjansson-dev libcurl4-openssl-dev libmicrohttpd-dev libsqlite3-dev
libpq-dev libgnutls28-dev libpsl-dev publicsuffix zlib1g-dev sqlite3 bats mandoc age minisign gnupg python3 python3-cryptography time openssl curl
libfuse3-dev fuse3 mblaze notmuch mutt tmux $*"
missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "smimp: missing Debian packages:$missing" >&2
	echo "smimp: run as root: apt-get install$missing" >&2
	exit 1
fi
echo "smimp: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
