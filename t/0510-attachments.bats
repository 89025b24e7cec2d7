#!/usr/bin/env bats
# Attachments (doc/PROTOCOL.md 4.5): smimp-seal --attach and
# --attach-type, smimp-open --extract and --json, and the library's API
# for them (t/unit/partstool.c).  Hostile messages are properly signed
# and encrypted (t/unit/hostile.c): only what they carry lies.  Whatever
# fails leaves nothing in the directory it would have written to.

load helper

setup() {
	common_setup
	mkdir out
	# The test through servers makes its identities with them.
	[[ "$BATS_TEST_DESCRIPTION" == "through two servers:"* ]] && return 0
	alice_and_bob
}

teardown() {
	stop_servers org net
	[ -z "${SHM:-}" ] || rm -rf "$SHM"
}

hostile() { "$SMIMP_BUILD/t/hostile" "$@"; }
partstool() { "$SMIMP_BUILD/t/partstool" "$@"; }
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
part() { printf '^part=%s' "$(hex "$1")"; }

# Nothing in out, not even a hidden file.
out_empty() { [ -z "$(ls -A out)" ]; }

# extract_refuses CODE MESSAGE: opening m.age with --extract fails with
# exit CODE and the one line MESSAGE, nothing on stdout, nothing in out.
extract_refuses() {
	run -"$1" --separate-stderr open_bob --extract out m.age
	[ "$stderr" = "$2" ]
	[ -z "$output" ]
	out_empty
}

@test "round trip: binary, empty and text parts beside the body, extracted as sealed, 0600" {
	head -c 300000 /dev/urandom >photo.bin
	: >empty.txt
	printf 'a,b\n1,2\n' >table.csv
	mkdir sub
	head -c 65536 /dev/urandom >sub/chunk.dat
	seal -s files --attach photo.bin --attach empty.txt --attach table.csv \
		--attach sub/chunk.dat -o m.age msg
	run -0 --separate-stderr open_bob --extract out m.age
	[ "$output" = "$(cat msg)" ]
	[ "${#stderr_lines[@]}" -eq 5 ]
	[[ "${stderr_lines[0]}" == "smimp-open: from alice@example.org, fingerprint "*", trusted" ]]
	[ "${stderr_lines[1]}" = "smimp-open: wrote 'out/photo.bin' (application/octet-stream, 300000 bytes)" ]
	[ "${stderr_lines[2]}" = "smimp-open: wrote 'out/empty.txt' (text/plain, 0 bytes)" ]
	[ "${stderr_lines[3]}" = "smimp-open: wrote 'out/table.csv' (text/csv, 8 bytes)" ]
	[ "${stderr_lines[4]}" = "smimp-open: wrote 'out/chunk.dat' (application/octet-stream, 65536 bytes)" ]
	cmp photo.bin out/photo.bin
	cmp empty.txt out/empty.txt
	cmp table.csv out/table.csv
	cmp sub/chunk.dat out/chunk.dat
	[ "$(ls out | wc -l)" -eq 4 ]
	[ "$(stat -c %a out/photo.bin out/empty.txt out/table.csv out/chunk.dat | sort -u)" = 600 ]
	# Under a umask that would take the owner's write bit too.
	rm out/*
	(umask 0277 && open_bob -q --extract out m.age >/dev/null)
	[ "$(stat -c %a out/* | sort -u)" = 600 ]
	# With -o, the body goes to OUT as it always did.
	rm out/*
	run -0 --separate-stderr open_bob -q -o body --extract out m.age
	cmp msg body
	cmp photo.bin out/photo.bin
	[ -z "$stderr" ]
}

@test "--json lists the parts, with where --extract wrote each; without --extract, no path and a line says what was not written" {
	printf 'x' >a.txt
	seal --attach a.txt --attach msg --attach-type 'text/plain;charset=utf-8' -o m.age msg
	run -0 --separate-stderr open_bob -q --json --extract out m.age
	[ -z "$stderr" ]
	[ "$(jq -c .parts <<<"$output")" = '[{"kind":"attachment","name":"a.txt","type":"text/plain","size":1,"path":"out/a.txt"},{"kind":"attachment","name":"msg","type":"text/plain;charset=utf-8","size":'"$(stat -c %s msg)"',"path":"out/msg"}]' ]
	[ "$(jq -r .body <<<"$output")" = "$(cat msg)" ]
	run -0 --separate-stderr open_bob -q --json m.age
	[ "$(jq -c '[.parts[] | has("path")]' <<<"$output")" = '[false,false]' ]
	run -0 --separate-stderr open_bob m.age
	[ "$output" = "$(cat msg)" ]
	[ "${stderr_lines[1]}" = "smimp-open: 2 attachments not written: --extract DIR writes them" ]
	run -0 --separate-stderr open_bob -q m.age
	[ -z "$stderr" ]
	# With --json, the sender line only: the parts say where they went,
	# as the page says.
	mkdir out2
	run -0 --separate-stderr open_bob --json --extract out2 m.age
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ "${stderr_lines[0]}" == "smimp-open: from alice@example.org, "* ]]
	text=$(mandoc -Tascii "$REPO/man/smimp-open.1" | col -b | tr -s ' \n\t' ' ')
	[[ "$text" == *"With --json these lines are not written: the object's \`parts' say the same."* ]]
	# A message without parts: no "parts" at all, the body as before.
	seal -o plain.age msg
	run -0 --separate-stderr open_bob -q --json --extract out plain.age
	[ "$(jq -c 'has("parts")' <<<"$output")" = false ]
	[ "$(ls out | wc -l)" -eq 2 ]
}

@test "--headers shows a part line for each attachment; the header of a message without parts is as it was" {
	printf 'x' >a.txt
	seal --attach a.txt --attach-type text/x-note -o m.age msg
	run -0 --separate-stderr open_bob --headers m.age
	grep -qx 'part: attachment 1 text/x-note a.txt' <<<"$output"
	[ "$(grep -n '^part: \|^content-type: ' <<<"$output" | cut -d: -f2 | tr '\n' ' ')" = "content-type part " ]
	seal -o plain.age msg
	run -0 --separate-stderr open_bob --headers plain.age
	! grep -q '^part:' <<<"$output" || false
}

@test "types: --attach-type for the --attach before it, else the table by extension, else application/octet-stream" {
	for f in a.PDF b.md c.png d.tar.gz e f.weird g.JSON; do printf '%s' "$f" >"$f"; done
	seal -o m.age --attach a.PDF --attach b.md --attach c.png --attach-type image/x-raw \
		--attach d.tar.gz --attach e --attach f.weird --attach g.JSON msg
	run -0 --separate-stderr open_bob -q --json m.age
	[ "$(jq -r '.parts[] | .name + " " + .type' <<<"$output" | tr '\n' '|')" = \
		"a.PDF application/pdf|b.md text/markdown|c.png image/x-raw|d.tar.gz application/gzip|e application/octet-stream|f.weird application/octet-stream|g.JSON application/json|" ]
}

@test "seal refuses unsafe names, bad types, a type with no --attach before it, twins, a 65th attachment and what is no regular file, writing nothing" {
	printf x >a.txt
	mkdir d1 d2
	printf x >d1/same.txt
	printf y >d2/same.txt
	printf x >.bashrc
	printf x >-rf
	printf x >' lead'
	printf x >$'bell\a'
	printf x >$'rtl\xe2\x80\xaetxt.exe'
	long=$(head -c 201 /dev/zero | tr '\0' n)
	printf x >"$long"
	run -2 --separate-stderr seal -o m.age --attach-type text/plain --attach a.txt msg
	[ "$stderr" = "smimp-seal: --attach-type 'text/plain' follows no --attach: it gives the type of the --attach before it (see 'smimp-seal --help')" ]
	run -2 --separate-stderr seal -o m.age --attach a.txt --attach-type text/plain --attach-type text/csv msg
	[ "$stderr" = "smimp-seal: two --attach-type for 'a.txt' (see 'smimp-seal --help')" ]
	for t in Text/Plain 'text/plain; charset=utf-8' text text/ /plain 'text/plain;charset=' 'text/plain;=x' "$(head -c 190 /dev/zero | tr '\0' a)/bbbbbbbbbbb"; do
		run -2 --separate-stderr seal -o m.age --attach a.txt --attach-type "$t" msg
		[ "$stderr" = "smimp-seal: invalid attachment type '$t': type/subtype in lower case, then ;name=value parameters, no space (see 'smimp-seal --help')" ]
	done
	run -2 --separate-stderr seal -o m.age --attach ./.bashrc msg
	[ "$stderr" = "smimp-seal: cannot attach './.bashrc': its name starts with a dot (see 'smimp-seal --help')" ]
	run -2 --separate-stderr seal -o m.age --attach ./-rf msg
	[ "$stderr" = "smimp-seal: cannot attach './-rf': its name starts with '-' (see 'smimp-seal --help')" ]
	run -2 --separate-stderr seal -o m.age --attach ' lead' msg
	[ "$stderr" = "smimp-seal: cannot attach ' lead': its name starts or ends with a space (see 'smimp-seal --help')" ]
	run -2 --separate-stderr seal -o m.age --attach $'bell\a' msg
	[ "$stderr" = "smimp-seal: cannot attach 'bell\\x07': its name holds a control or bidirectional character, or is not UTF-8 (see 'smimp-seal --help')" ]
	run -2 --separate-stderr seal -o m.age --attach $'rtl\xe2\x80\xaetxt.exe' msg
	[[ "$stderr" == "smimp-seal: cannot attach 'rtl"*"txt.exe': its name holds a control or bidirectional character, or is not UTF-8 (see 'smimp-seal --help')" ]]
	run -2 --separate-stderr seal -o m.age --attach "$long" msg
	[ "$stderr" = "smimp-seal: cannot attach '$long': its name is longer than 200 bytes (see 'smimp-seal --help')" ]
	run -2 --separate-stderr seal -o m.age --attach d1/ msg
	[ "$stderr" = "smimp-seal: cannot attach 'd1/': its name is empty (see 'smimp-seal --help')" ]
	run -2 --separate-stderr seal -o m.age --attach d1/same.txt --attach d2/same.txt msg
	[ "$stderr" = "smimp-seal: two attachments named 'same.txt' (see 'smimp-seal --help')" ]
	args=()
	for i in $(seq 65); do printf x >"f$i"; args+=(--attach "f$i"); done
	run -2 --separate-stderr seal -o m.age "${args[@]}" msg
	[ "$stderr" = "smimp-seal: too many attachments (at most 64) (see 'smimp-seal --help')" ]
	run -1 --separate-stderr seal -o m.age --attach d1 msg
	[ "$stderr" = "smimp-seal: 'd1' is a directory, not a regular file: refusing to use it" ]
	mkfifo fifo
	run -1 --separate-stderr seal -o m.age --attach fifo msg
	[ "$stderr" = "smimp-seal: 'fifo' is a FIFO, not a regular file: refusing to use it" ]
	run -1 --separate-stderr seal -o m.age --attach nosuch msg
	[ "$stderr" = "smimp-seal: cannot open 'nosuch': No such file or directory" ]
	# A sparse file of 2^50 + 1 bytes, where a file system holds one.
	SHM=$(mktemp -d /dev/shm/smimp-0510.XXXXXX)
	if truncate -s 1125899906842625 "$SHM/huge.bin" 2>/dev/null; then
		run -1 --separate-stderr seal -o m.age --attach "$SHM/huge.bin" msg
		[ "$stderr" = "smimp-seal: the attachment 'huge.bin' is larger than 2^50 bytes" ]
	fi
	[ ! -e m.age ]
	! ls | grep -q '\.tmp\.' || false
	# 64 are the most, and each opens.
	seal -o m.age "${args[@]:0:128}" msg
	run -0 --separate-stderr open_bob -q --extract out m.age
	[ "$(ls out | wc -l)" -eq 64 ]
}

@test "hostile names in a signed message are refused (exit 3), nothing in DIR: paths, dot files, options, control and bidi characters, long names, twins" {
	long=$(head -c 201 /dev/zero | tr '\0' n)
	for name in ../x x/y 'a\b' .bashrc . .. -rf ' x' 'x ' $'a\x85b' $'a\xc2\x85b' \
	    $'evil\xe2\x80\xaefdp.exe' $'a\xe2\x80\xa8b' $'a\xe2\x81\xa6b' "$long"; do
		{ printf x; cat msg; } | hostile seal alice.key alice.pub bob.pub \
			"$(part "attachment 1 text/plain $name")" >m.age
		run -3 --separate-stderr open_bob --extract out m.age
		[[ "$stderr" == "smimp-open: malformed envelope: part 1 has a name that "* ]] ||
			[ "$stderr" = 'smimp-open: malformed envelope: part 1 has a bad type' ]
		[ -z "$output" ]
		out_empty
	done
	# The exact reasons, for a few.
	{ printf x; cat msg; } | hostile seal alice.key alice.pub bob.pub "$(part 'attachment 1 text/plain ../x')" >m.age
	extract_refuses 3 "smimp-open: malformed envelope: part 1 has a name that holds a '/' or '\\'"
	{ printf x; cat msg; } | hostile seal alice.key alice.pub bob.pub "$(part 'attachment 1 text/plain .bashrc')" >m.age
	extract_refuses 3 "smimp-open: malformed envelope: part 1 has a name that starts with a dot"
	{ printf x; cat msg; } | hostile seal alice.key alice.pub bob.pub "$(part "attachment 1 text/plain $long")" >m.age
	extract_refuses 3 "smimp-open: malformed envelope: part 1 has a name that is longer than 200 bytes"
	{ printf x; cat msg; } | hostile seal alice.key alice.pub bob.pub "$(part $'attachment 1 text/plain a\xc2\x85b')" >m.age
	extract_refuses 3 "smimp-open: malformed envelope: part 1 has a name that holds a control or bidirectional character, or is not UTF-8"
	# A C0 control breaks the header line itself.
	{ printf x; cat msg; } | hostile seal alice.key alice.pub bob.pub "$(part $'attachment 1 text/plain a\x1b[2Jb')" >m.age
	extract_refuses 3 'smimp-open: malformed envelope: a line that is not "name: value" text (a control character, or no ": ")'
	{ printf xy; cat msg; } | hostile seal alice.key alice.pub bob.pub "$(part 'attachment 1 text/plain a.txt')" \
		"$(part 'attachment 1 text/plain a.txt')" >m.age
	extract_refuses 3 "smimp-open: malformed envelope: part 2 has the name of part 1"
	# 200 bytes of name are the most, and are written as they are.
	{ printf x; cat msg; } | hostile seal alice.key alice.pub bob.pub "$(part "attachment 1 text/plain ${long%n}")" >m.age
	run -0 --separate-stderr open_bob -q --extract out m.age
	[ "$(cat "out/${long%n}")" = x ]
}

@test "DIR is never replaced or followed: an existing file, a directory, symbolic links and a taken numbered name each get the next free number" {
	printf 'pdf' >report.pdf
	printf 'notes' >notes.txt
	printf 'data' >data.bin
	printf 'make' >Makefile
	printf 'tgz' >a.tar.gz
	seal --attach report.pdf --attach notes.txt --attach data.bin --attach Makefile \
		--attach a.tar.gz -o m.age msg
	printf 'mine' >out/report.pdf
	printf 'mine too' >'out/report (1).pdf'
	ln -s ../victim out/notes.txt
	printf 'secret' >secret
	ln -s ../secret out/data.bin
	mkdir out/Makefile
	ln -s /nonexistent/dir 'out/a.tar (1).gz'
	printf 'tar' >out/a.tar.gz
	run -0 --separate-stderr open_bob --extract out m.age
	[ "${stderr_lines[1]}" = "smimp-open: wrote 'out/report (2).pdf' (application/pdf, 3 bytes)" ]
	[ "${stderr_lines[2]}" = "smimp-open: wrote 'out/notes (1).txt' (text/plain, 5 bytes)" ]
	[ "${stderr_lines[3]}" = "smimp-open: wrote 'out/data (1).bin' (application/octet-stream, 4 bytes)" ]
	[ "${stderr_lines[4]}" = "smimp-open: wrote 'out/Makefile (1)' (application/octet-stream, 4 bytes)" ]
	[ "${stderr_lines[5]}" = "smimp-open: wrote 'out/a.tar (2).gz' (application/gzip, 3 bytes)" ]
	[ "$(cat out/report.pdf)" = mine ]
	[ "$(cat 'out/report (1).pdf')" = 'mine too' ]
	[ "$(cat 'out/report (2).pdf')" = pdf ]
	[ ! -e victim ]
	[ "$(readlink out/notes.txt)" = ../victim ]
	[ "$(cat secret)" = secret ]
	[ "$(cat 'out/data (1).bin')" = data ]
	[ -d out/Makefile ]
	[ "$(cat 'out/a.tar.gz')" = tar ]
	# Opened again: each gets the next number, nothing is replaced.
	run -0 --separate-stderr open_bob -q --json --extract out m.age
	[ "$(jq -r '.parts[].path' <<<"$output" | tr '\n' '|')" = "out/report (3).pdf|out/notes (2).txt|out/data (2).bin|out/Makefile (2)|out/a.tar (3).gz|" ]
	[ "$(cat 'out/report (2).pdf')" = pdf ]
}

@test "--extract DIR is checked before anything: missing, not a directory, not writable" {
	seal -o m.age msg
	run -1 --separate-stderr open_bob --extract nosuch m.age
	[ "$stderr" = "smimp-open: cannot open 'nosuch': No such file or directory" ]
	run -1 --separate-stderr open_bob --extract msg m.age
	[ "$stderr" = "smimp-open: cannot open 'msg': Not a directory" ]
	[ "$(id -u)" -eq 0 ] && skip "root writes anywhere"
	chmod 500 out
	run -1 --separate-stderr open_bob --extract out m.age
	[ "$stderr" = "smimp-open: cannot write in 'out': Permission denied" ]
}

@test "a tampered part, a corrupted or truncated message, parts past the end: refused (exit 3), nothing in DIR" {
	head -c 200000 /dev/urandom >big.bin
	# Signed, then one bit of the part changed, as a recipient could.
	{ cat big.bin; cat msg; } | hostile seal alice.key alice.pub bob.pub \
		"$(part 'attachment 200000 application/octet-stream big.bin')" '!150000' >m.age
	extract_refuses 3 "smimp-open: bad signature: the message from alice@example.org was altered or forged"
	# Untouched, the same message opens.
	{ cat big.bin; cat msg; } | hostile seal alice.key alice.pub bob.pub \
		"$(part 'attachment 200000 application/octet-stream big.bin')" >m.age
	run -0 --separate-stderr open_bob -q --extract out m.age
	cmp big.bin out/big.bin
	rm out/big.bin
	# A byte of the ciphertext changed, or its end cut off.
	seal --attach big.bin -o m.age msg
	size=$(stat -c %s m.age)
	cp m.age bad.age
	flip bad.age $((size / 2))
	run -3 --separate-stderr open_bob --extract out bad.age
	[ "$stderr" = "smimp-open: cannot decrypt: the message is corrupted or truncated" ]
	out_empty
	head -c $((size - 100)) m.age >cut.age
	run -3 --separate-stderr open_bob --extract out cut.age
	[[ "$stderr" == "smimp-open: cannot decrypt: "* ]]
	out_empty
	# Parts that say they are longer than what follows the header.
	{ printf 'short'; } | hostile seal alice.key alice.pub bob.pub \
		"$(part 'attachment 1000 text/plain a.txt')" >m.age
	extract_refuses 3 "smimp-open: malformed envelope: the parts run past the end of the message"
	# A signed size of 2^50 + 1, and a 65th part.
	hostile seal alice.key alice.pub bob.pub "$(part 'attachment 1125899906842625 text/plain a.txt')" <msg >m.age
	extract_refuses 3 "smimp-open: malformed envelope: part 1 has a bad size"
	args=()
	for i in $(seq 65); do args+=("$(part "attachment 0 text/plain f$i")"); done
	hostile seal alice.key alice.pub bob.pub "${args[@]}" <msg >m.age
	extract_refuses 3 "smimp-open: malformed envelope: more than 64 parts"
}

@test "an unknown sender: nothing extracted (exit 4) but with --accept-unknown; a blocked one never" {
	mkid carol carol@example.com
	printf x >a.txt
	smimp-seal -i carol.key -r bob.pub --attach a.txt -o m.age msg
	run -4 --separate-stderr open_bob --extract out m.age
	[[ "$stderr" == *"carol@example.com is not in the trust store: nothing written"* ]]
	out_empty
	run -4 --separate-stderr open_bob --accept-unknown --extract out m.age
	[ "$output" = "$(cat msg)" ]
	[ "$(cat out/a.txt)" = x ]
	rm out/a.txt
	SMIMP_HOME="$BOBHOME" smimp-trust set carol@example.com blocked >/dev/null 2>&1
	run -4 --separate-stderr open_bob --accept-unknown --extract out m.age
	[[ "$stderr" == *"carol@example.com is blocked: nothing written" ]]
	out_empty
}

@test "a part of a kind this version does not know is verified and left out; its bytes changed, the message is refused" {
	printf x >a.txt
	{ printf 'later'; printf x; cat msg; } | hostile seal alice.key alice.pub bob.pub \
		"$(part 'x-later 5 fields of a kind to come')" "$(part 'attachment 1 text/plain a.txt')" >m.age
	run -0 --separate-stderr open_bob --extract out m.age
	[ "$output" = "$(cat msg)" ]
	[ "${stderr_lines[1]}" = "smimp-open: part 1 is of a kind this version does not know ('x-later', 5 bytes): verified, and left out" ]
	[ "${stderr_lines[2]}" = "smimp-open: wrote 'out/a.txt' (text/plain, 1 bytes)" ]
	[ "$(ls out)" = a.txt ]
	rm out/a.txt
	run -0 --separate-stderr open_bob -q --json --extract out m.age
	[ "$(jq -c '.parts[0]' <<<"$output")" = '{"kind":"x-later","size":5}' ]
	{ printf 'later'; printf x; cat msg; } | hostile seal alice.key alice.pub bob.pub \
		"$(part 'x-later 5')" "$(part 'attachment 1 text/plain a.txt')" '!2' >m.age
	rm out/a.txt
	extract_refuses 3 "smimp-open: bad signature: the message from alice@example.org was altered or forged"
}

@test "killed while it extracts: nothing in DIR" {
	head -c $((4 * 1024 * 1024)) /dev/urandom >big.bin
	seal --attach big.bin -o m.age msg
	mkfifo in.fifo
	SMIMP_HOME="$BOBHOME" smimp-open -i bob.key -q --extract out in.fifo >/dev/null 2>&1 &
	pid=$!
	# Held open, so that smimp-open waits for the rest (fd 3 is bats').
	exec 5>in.fifo
	head -c $((3 * 1024 * 1024)) m.age >&5
	# The part is being written into out, with no name yet.
	for _ in $(seq 100); do
		ls -l "/proc/$pid/fd" 2>/dev/null | grep -q "$BATS_TEST_TMPDIR/out/#.* (deleted)" && break
		sleep 0.1
	done
	ls -l "/proc/$pid/fd" | grep -q "$BATS_TEST_TMPDIR/out/#.* (deleted)"
	out_empty
	kill -9 "$pid"
	wait "$pid" || true
	exec 5>&-
	out_empty
}

@test "the age binary decrypts the outer layer: part lines in the header, their bytes before the body" {
	command -v age >/dev/null || skip "age not installed"
	printf 'AB' >two.bin
	printf 'C' >one.bin
	seal --attach two.bin --attach one.bin -o m.age msg
	smimp-keygen --export-age -i bob.key >bob.agekey
	age -d -i bob.agekey -o plain m.age
	grep -a -qx 'part: attachment 2 application/octet-stream two.bin' plain
	grep -a -qx 'part: attachment 1 application/octet-stream one.bin' plain
	hlen=$(grep -a -b -m1 -x '' plain | cut -d: -f1)
	[ "$(tail -c +$((hlen + 2)) plain | head -c 3)" = ABC ]
	[ "$(tail -c +$((hlen + 5)) plain | head -c "$(stat -c %s msg)")" = "$(cat msg)" ]
	# Then the padding: as many zero bytes as T, the 8 bytes before S, say.
	size=$(stat -c %s plain)
	z=$(tail -c 72 plain | head -c 8 | od -An -tu1 | awk '{ for (i = 1; i <= NF; i++) v = v * 256 + $i } END { print v }')
	[ $(( size - hlen - 1 - 3 - $(stat -c %s msg) - z - 8 )) -eq 64 ]
	[ -z "$(tail -c $(( z + 72 )) plain | head -c "$z" | tr -d '\0')" ]
}

@test "a large sparse attachment seals and opens in constant memory" {
	mib=${ATTACH_TEST_MIB:-256}
	[[ "$SMIMP_BUILD" != *-san ]] || mib=32
	truncate -s "${mib}M" big.bin
	/usr/bin/time -f '%M' -o seal.rss smimp-seal -i alice.key -r bob.pub --attach big.bin -o m.age msg
	SMIMP_HOME="$BOBHOME" /usr/bin/time -f '%M' -o open.rss \
		smimp-open -i bob.key -q --extract out -o body m.age
	echo "$mib MiB: seal max RSS $(cat seal.rss) KiB, open $(cat open.rss) KiB"
	cmp big.bin out/big.bin
	cmp msg body
	[[ "$SMIMP_BUILD" != *-san ]] || skip "resident size means nothing under AddressSanitizer"
	[ "$(cat seal.rss)" -lt 16384 ]
	[ "$(cat open.rss)" -lt 16384 ]
}

@test "the library: parts from descriptors (a pipe is spooled first), verified parts handed to callbacks in chunks" {
	head -c 150000 /dev/urandom >photo.bin
	printf 'piped text\n' >piped.txt
	# A process substitution is a pipe: no size until it is read.
	partstool seal alice.key alice.pub bob.pub photo.bin=photo.bin \
		notes.txt=<(cat piped.txt)=text/x-note <msg >m.age
	run -0 --separate-stderr partstool open bob.key <m.age
	[ "${lines[0]}" = "type text/markdown; charset=utf-8" ]
	[ "${lines[1]}" = "body $(stat -c %s msg) $(sum msg)" ]
	[ "${lines[2]}" = "part photo.bin application/octet-stream 150000 $(sum photo.bin)" ]
	[ "${lines[3]}" = "part notes.txt text/x-note 11 $(sum piped.txt)" ]
	[ "${lines[4]}" = "largest chunk 65536" ]
	# What smimp-open extracts from it is the same.
	run -0 --separate-stderr open_bob -q --extract out m.age
	cmp photo.bin out/photo.bin
	cmp piped.txt out/notes.txt
	# A file whose size changes between the header and its bytes.
	run -1 --separate-stderr partstool seal alice.key alice.pub bob.pub photo.bin=photo.bin +photo.bin <msg
	[ "$stderr" = "partstool: cannot seal: the attachment 'photo.bin' grew while it was sealed" ]
	run -1 --separate-stderr partstool seal alice.key alice.pub bob.pub photo.bin=photo.bin ~photo.bin ~photo.bin <msg
	[ "$stderr" = "partstool: cannot seal: the attachment 'photo.bin' shrank while it was sealed" ]
	# Nothing reaches the callbacks of a message that fails.
	{ printf x; cat msg; } | hostile seal alice.key alice.pub bob.pub \
		"$(part 'attachment 1 text/plain a.txt')" '!0' >bad.age
	run -3 --separate-stderr partstool open bob.key <bad.age
	[ -z "$output" ]
	[ "$stderr" = "partstool: cannot open: bad signature: the message from alice@example.org was altered or forged" ]
}

@test "through two servers: sealed with attachments, sent, relayed, fetched into the Maildir, then extracted" {
	alice_and_bob_domains
	printf 'Hello Bob,\nthe report is attached.\n' >msg
	head -c 300000 /dev/urandom >report.pdf
	printf 'a,b\n' >table.csv
	start org example.org "$ORG"
	start net example.net "$NET"
	smimp-seal -i alice.key -r bob.pub -s "Q3" --attach report.pdf --attach table.csv -o m.age msg
	run -0 --separate-stderr smimp-send -i alice.key m.age
	wait_for org.log "relayed $output to example.net"
	SMIMP_HOME="$BOBHOME" run -0 --separate-stderr smimp-fetch -i bob.key -d mail
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	SMIMP_HOME="$BOBHOME" run -0 --separate-stderr smimp-open -i bob.key --extract out mail/new/*
	[ "$output" = "$(cat msg)" ]
	[ "${stderr_lines[1]}" = "smimp-open: wrote 'out/report.pdf' (application/pdf, 300000 bytes)" ]
	[ "${stderr_lines[2]}" = "smimp-open: wrote 'out/table.csv' (text/csv, 4 bytes)" ]
	cmp report.pdf out/report.pdf
	cmp table.csv out/table.csv
}
