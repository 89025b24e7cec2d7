#!/bin/sh
# mandoc -Tlint over every man page; any warning fails the check.
set -eu
[ $# -eq 0 ] && exit 0
mandoc -Tlint -Wwarning "$@"
