#!/bin/sh
# layers.sh [LIBDIR] - lib/ is built in layers, so that a module can be
# understood, tested and changed with only the ones below it in mind.
# A file of lib/ may include the headers of its own layer and of lower
# ones, never of a higher one, and none from outside lib/ (server/ and
# cmd/ are above all of lib/).  libcurl belongs to the network layer.
#
# Every module (a .c and its .h) has its layer below, lowest first; a
# new module must be placed before the check passes.  Prints one line
# for each include that breaks the order and exits 1; else exits 0.
set -eu
lib=${1:-lib}

layers='
base      banned err exitcode util options fileio outfile address signer proc vis jsontext
formats   proxyheader armor age padding bech32 hkdf keys idlog enroll stamp reqsig bounce batch maildir introduction policy work part mimecode rfc5322 mimewalk mailmsg receipt prekey prekeystore
trust     trust
messages  envelope message msgjson parts mime reply
identity  identity
network   clientconf remote
mail      send fetch lookup notice revoke publish outbox status prekeys
'
# Why this order: the formats know no store; the trust store keeps
# pinned identity logs and knows nothing of messages; opening a message
# asks the store whether a sender's log was verified when it was
# pinned; an identity (one's own key, or a recipient) joins keys,
# messages and the store; the network layer talks HTTP and knows no
# user; the mail layer is the commands' work, built on all the rest.

cd "$lib"
for f in *.c *.h; do
	printf '%s\n' "$f"
done | awk -v layers="$layers" -v lib="$lib" '
function fail(msg) { print "layers: " msg; bad = 1 }
BEGIN {
	n = split(layers, rows, "\n")
	for (i = 1; i <= n; i++) {
		if (split(rows[i], w, " ") < 2)
			continue
		rank++
		for (j = 2; j in w; j++) {
			level[w[j]] = rank
			layer[w[j]] = w[1]
		}
		delete w
	}
}
{
	file = $0
	mod = file
	sub(/\.[ch]$/, "", mod)
	seen[mod] = 1
	if (!(mod in level)) {
		fail(lib "/" file ": module " mod " has no layer " \
		    "(add it to scripts/layers.sh)")
		next
	}
	lineno = 0
	while ((getline line < file) > 0) {
		lineno++
		if (line ~ /^[ \t]*#[ \t]*include[ \t]*<curl\// &&
		    layer[mod] != "network")
			fail(lib "/" file ":" lineno ": libcurl in layer " \
			    layer[mod] ", outside the network layer")
		if (line !~ /^[ \t]*#[ \t]*include[ \t]*"/)
			continue
		hdr = line
		sub(/^[^"]*"/, "", hdr)
		sub(/".*$/, "", hdr)
		dep = hdr
		sub(/\.h$/, "", dep)
		if (dep ~ /\// || !(dep in level))
			fail(lib "/" file ":" lineno ": includes \"" hdr \
			    "\", not a header of lib/")
		else if (level[dep] > level[mod])
			fail(lib "/" file ":" lineno ": layer " layer[mod] \
			    " includes \"" hdr "\" of the higher layer " \
			    layer[dep])
	}
	close(file)
}
END {
	for (mod in level)
		if (!(mod in seen))
			fail("module " mod " is in a layer but not in " lib "/")
	exit bad
}'
