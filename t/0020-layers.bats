#!/usr/bin/env bats
# lib/ is layered (scripts/layers.sh): no file includes a header of a
# higher layer or from outside lib/, libcurl stays in the network layer,
# and every module has its place.  The check itself is proved to fail
# on a copy of lib/ with each kind of fault added.

load helper

setup() {
	common_setup
	cp -R "$REPO/lib" lib
}

# add FILE LINE: LINE appended to lib/FILE; its line number in $at.
add() {
	printf '%s\n' "$2" >>"lib/$1"
	at=$(wc -l <"lib/$1" | tr -d ' ')
}

@test "lib/ includes only headers of its own layer and lower ones" {
	run -0 --separate-stderr sh "$REPO/scripts/layers.sh" "$REPO/lib"
	[ -z "$output" ]
	[ -z "$stderr" ]
}

@test "a lower layer that includes a higher one fails the check" {
	add util.c '#include "send.h"'
	run -1 --separate-stderr sh "$REPO/scripts/layers.sh" lib
	[ "$output" = "layers: lib/util.c:$at: layer base includes \"send.h\" of the higher layer mail" ]
	add trust.h '#include "message.h"'
	run -1 --separate-stderr sh "$REPO/scripts/layers.sh" lib
	[ "${lines[1]}" = "layers: lib/trust.h:$at: layer trust includes \"message.h\" of the higher layer messages" ]
}

@test "a header from outside lib/ and libcurl outside the network layer fail the check" {
	add age.c '#include "store.h"'
	run -1 --separate-stderr sh "$REPO/scripts/layers.sh" lib
	[ "$output" = "layers: lib/age.c:$at: includes \"store.h\", not a header of lib/" ]
	cp "$REPO/lib/age.c" lib/age.c
	add fetch.c '#include <curl/curl.h>'
	run -1 --separate-stderr sh "$REPO/scripts/layers.sh" lib
	[ "$output" = "layers: lib/fetch.c:$at: libcurl in layer mail, outside the network layer" ]
}

@test "a module with no layer, or a layer naming no module, fails the check" {
	touch lib/newthing.c
	run -1 --separate-stderr sh "$REPO/scripts/layers.sh" lib
	[ "$output" = "layers: lib/newthing.c: module newthing has no layer (add it to scripts/layers.sh)" ]
	rm lib/newthing.c lib/maildir.c lib/maildir.h
	run -1 --separate-stderr sh "$REPO/scripts/layers.sh" lib
	[ "$output" = "layers: module maildir is in a layer but not in lib/" ]
}
