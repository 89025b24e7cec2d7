#!/bin/sh
# Build the libFuzzer targets with clang and run each for $1 seconds.
# Seeds come from fuzz/corpus/<target>; new inputs and any crash stay in
# build-fuzz/.
set -eu
secs=${1:-30}
cd "$(dirname "$0")/.."
B=build-fuzz
CC=${FUZZ_CC:-clang}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
CFLAGS="-g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
-DSMIMP_VERSION=\"fuzz\" -Ilib $(pkg-config --cflags libsodium jansson)"
LIBS="$(pkg-config --libs libsodium jansson) -lpthread"
mkdir -p "$B/lib"
for src in lib/*.c; do
	obj="$B/lib/$(basename "$src" .c).o"
	# shellcheck disable=SC2086
	$CC $CFLAGS $SAN -fsanitize=fuzzer-no-link -c -o "$obj" "$src"
done
status=0
for target in fuzz/*.c; do
	name=$(basename "$target" .c)
	# shellcheck disable=SC2086
	$CC $CFLAGS $SAN -fsanitize=fuzzer -o "$B/$name" "$target" \
		"$B"/lib/*.o $LIBS
	mkdir -p "$B/corpus/$name"
	[ -d "fuzz/corpus/$name" ] && cp -n "fuzz/corpus/$name"/* "$B/corpus/$name/" 2>/dev/null || true
	echo "== $name: $secs s"
	if ! "$B/$name" -max_total_time="$secs" -max_len=200000 \
	    -artifact_prefix="$B/$name-" -print_final_stats=1 \
	    "$B/corpus/$name" 2>"$B/$name.log"; then
		echo "$name: crash, see $B/$name.log" >&2
		tail -30 "$B/$name.log" >&2
		status=1
	fi
	grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$B/$name.log" | tail -2
done
exit $status
