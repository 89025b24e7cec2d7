#!/usr/bin/env bats
# The outbox (smimp-send --queue, --flush, --list-queue) and
# smimp-sendmail, against two real servers on loopback: alice of
# example.org writes to bob of example.net.

load helper

setup() {
	common_setup
	alice_and_bob_domains
	export SMIMP_HOME="$ALICEHOME"
	cp alice.key alice.pub "$ALICEHOME/"
	mv "$ALICEHOME/alice.key" "$ALICEHOME/identity.key"
	mv "$ALICEHOME/alice.pub" "$ALICEHOME/identity.pub"
	OUTBOX="$ALICEHOME/outbox"
}

teardown() {
	stop_servers org net
	[ -f "$BATS_TEST_TMPDIR/proxy.pid" ] && kill -KILL "$(cat "$BATS_TEST_TMPDIR/proxy.pid")" 2>/dev/null
	return 0
}

up() {
	start org example.org "$ORG"
	start net example.net "$NET"
}

# with_carol: both servers up, and carol@example.org too, she and alice
# trusting each other; carol_fetch: her mail, into carolmail.
with_carol() {
	up
	mkid carol carol@example.org
	smimpd --data org --domain example.org adduser carol@example.org carol.pub
	trust_as "$ALICEHOME" carol.pub trusted
	trust_as "$BATS_TEST_TMPDIR/carolhome" alice.pub trusted
}
carol_fetch() { SMIMP_HOME="$BATS_TEST_TMPDIR/carolhome" smimp-fetch -i carol.key -d carolmail -q; }

# queued N: the outbox holds N messages waiting.
queued() {
	[ "$(find "$OUTBOX" -maxdepth 1 -type f -name '[0-9]*' ! -name '*.tmp.*' | wc -l)" -eq "$1" ]
}

# letter TEXT: a message to bob sealed by alice, in TEXT.age.
letter() {
	echo "$1" | smimp-seal -i alice.key -r bob@example.net -s "$1" -o "$1.age"
}

# queue_letters PREFIX N: letters PREFIX1 to PREFIXN queued while
# example.org is down.
queue_letters() {
	local i
	for i in $(seq "$2"); do
		letter "$1$i"
		smimp-send -i alice.key --queue -q "$1$i.age" >/dev/null || return 1
	done
	queued "$2"
}

# bobs_bodies: bob's mailbox fetched, each message opened, sorted.
bobs_bodies() {
	local f
	SMIMP_HOME="$BOBHOME" smimp-fetch -i bob.key -d bobmail -q >/dev/null 2>&1 || return 1
	for f in bobmail/new/* bobmail/cur/*; do
		[ -f "$f" ] && SMIMP_HOME="$BOBHOME" smimp-open -q -i bob.key "$f"
	done | sort
}

# arrived TEXT...: bob gets exactly these bodies, each once (the relay
# given 15 s).
arrived() {
	printf '%s\n' "$@" | sort >want
	for _ in $(seq 30); do
		bobs_bodies >got && cmp -s want got && break
		sleep 0.5
	done
	sleep 1
	bobs_bodies >got
	diff want got
}

# proxy PLAN: flakyproxy in front of example.org's server for
# submissions, at $ORG (the server moves to $ORG_REAL), its output in
# proxy.out.
proxy() {
	ORG_REAL=$(free_port)
	printf '%s\n' "$@" >plan
	start org example.org "$ORG_REAL" --base-url "https://127.0.0.1:$ORG/smimp"
	python3 "$REPO/t/faults/flakyproxy.py" "$ORG" "$ORG_REAL" plan /v1/messages >proxy.out 2>&1 &
	echo $! >proxy.pid
	server_up "$ORG"
}

@test "--queue: the home server down, the message waits in the outbox (exit 0); --flush delivers it once" {
	start net example.net "$NET"
	letter one
	run -0 --separate-stderr smimp-send -i alice.key --queue one.age
	mid=$output
	[[ "$mid" =~ ^[a-z2-7]{24}@example.org$ ]]
	[[ "$stderr" == "smimp-send: $mid queued in the outbox (smimp-send --flush sends it): https://127.0.0.1:$ORG/.well-known/smimp.txt: "* ]]
	queued 1
	[ "$(stat -c %a "$OUTBOX")" = 700 ]
	[ "$(stat -c %a "$OUTBOX"/[0-9]*)" = 600 ]
	run -0 smimp-send --list-queue
	[[ "$output" == "outbox/"[0-9]*"-"*": $mid to bob@example.net, queued "*" with $PWD/alice.key: https://127.0.0.1:$ORG/"* ]]
	# Still down: it waits (75), said in one line; -q says nothing.
	run -75 --separate-stderr smimp-send --flush
	[[ "$stderr" == "smimp-send: 1 message waits in the outbox: https://127.0.0.1:$ORG/"* ]]
	run -75 --separate-stderr smimp-send --flush -q
	[ -z "$stderr" ]
	queued 1
	start org example.org "$ORG"
	# From another directory: the entry names its key by its full path.
	mkdir elsewhere
	cd elsewhere
	run -0 --separate-stderr smimp-send --flush -v
	[ "$output" = "$mid" ]
	[ "$stderr" = "smimp-send: outbox: 1 sent, 0 waiting, 0 refused" ]
	cd ..
	queued 0
	run -0 --separate-stderr smimp-send --flush
	[ -z "$output$stderr" ]
	run -0 smimp-send --list-queue
	[ -z "$output" ]
	arrived one
}

@test "--queue queues only what the server cannot take now: a refusal, a bad file, a bad key exit non-zero, nothing queued" {
	up
	mkid carol carol@example.org
	echo "to nobody" | smimp-seal -i alice.key -r carol.pub -o nobody.age
	run -1 --separate-stderr smimp-send -i alice.key --queue nobody.age
	[[ "$stderr" == "smimp-send: "*"@example.org: HTTP 404: "* ]]
	echo "not a message" >junk
	run -3 --separate-stderr smimp-send -i alice.key --queue junk
	[ -n "$stderr" ]
	letter two
	run -1 --separate-stderr smimp-send -i nosuch.key --queue two.age
	[[ "$stderr" == "smimp-send: cannot open 'nosuch.key'"* ]]
	# Sealed by bob: alice cannot send it.
	echo "bob's" | SMIMP_HOME="$BOBHOME" smimp-seal -i bob.key -r alice.pub -o bobs.age
	run -3 --separate-stderr smimp-send -i alice.key --queue bobs.age
	queued 0
	# The server up: --queue sends at once, nothing queued.
	run -0 --separate-stderr smimp-send -i alice.key --queue two.age
	[ -z "$stderr" ]
	queued 0
	arrived two
}

@test "--queue: a 503 from the home server queues the message; it goes once the server answers" {
	start net example.net "$NET"
	proxy 503 pass
	letter three
	run -0 --separate-stderr smimp-send -i alice.key --queue three.age
	[[ "$stderr" == *"queued in the outbox (smimp-send --flush sends it): "*"HTTP 503: flaky" ]] ||
		{ echo "$stderr"; cat proxy.out; false; }
	queued 1
	run -0 smimp-send --flush
	queued 0
	arrived three
}

@test "a flush killed with SIGKILL at any point delivers each message exactly once" {
	start net example.net "$NET"
	queue_letters m 12
	# Killed while the server holds the first message but has not
	# answered: sent, and still in the outbox.
	proxy hang-after $(yes pass | head -200)
	smimp-send --flush &
	pid=$!
	wait_for proxy.out "hang-after /smimp/v1/messages 201"
	kill -KILL "$pid"
	wait "$pid" || true
	queued 12
	# Killed at random points, again and again.
	for i in $(seq 15); do
		smimp-send --flush -q &
		pid=$!
		sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	run -0 smimp-send --flush
	queued 0
	arrived m1 m2 m3 m4 m5 m6 m7 m8 m9 m10 m11 m12
}

@test "two flushes at once: one delivers, the other says so and exits 0; each message once" {
	start net example.net "$NET"
	queue_letters c 8
	start org example.org "$ORG"
	# The lock held (as a flush holds it): a second flush does nothing.
	flock "$OUTBOX/.lock" sleep 3 &
	holder=$!
	sleep 0.5
	run -0 --separate-stderr smimp-send --flush
	[ "$stderr" = "smimp-send: another smimp-send --flush is running: it delivers the outbox" ]
	queued 8
	wait "$holder"
	# Two at once, for real.
	smimp-send --flush >a.out 2>&1 &
	a=$!
	smimp-send --flush >b.out 2>&1 &
	b=$!
	wait "$a"
	wait "$b"
	queued 0
	arrived c1 c2 c3 c4 c5 c6 c7 c8
}

@test "a message refused for good moves to outbox/failed/ with its reason, the flush exits 1, and it is never tried again" {
	start net example.net "$NET"
	mkid carol carol@example.org
	echo "to nobody" | smimp-seal -i alice.key -r carol.pub -o nobody.age
	letter four
	mid=$(smimp-send -i alice.key --queue -q nobody.age)
	smimp-send -i alice.key --queue -q four.age >/dev/null
	queued 2
	start org example.org "$ORG"
	run -1 --separate-stderr smimp-send --flush
	name=$(ls "$OUTBOX/failed" | grep -v reason)
	[[ "$stderr" == "smimp-send: $mid to carol@example.org: refused, moved to outbox/failed/$name: $mid: HTTP 404: "* ]]
	queued 0
	[ -f "$OUTBOX/failed/$name.reason" ]
	grep -q "HTTP 404" "$OUTBOX/failed/$name.reason"
	run -0 --separate-stderr smimp-send --flush
	[ -z "$stderr" ]
	run -0 smimp-send --list-queue
	[[ "$output" == "outbox/failed/$name: $mid to carol@example.org, queued "*": refused "*"HTTP 404"* ]]
	arrived four
	# Moved back, it is queued again (and refused again).
	mv "$OUTBOX/failed/$name" "$OUTBOX/"
	run -1 smimp-send --flush
	[ -f "$OUTBOX/failed/$name" ]
}

@test "entries whose key cannot be loaded wait, and the flush exits 1; a damaged entry is moved aside" {
	start net example.net "$NET"
	cp alice.key alice2.key
	cp alice.pub alice2.pub
	letter five
	smimp-send -i alice2.key --queue -q five.age >/dev/null
	mv alice2.key gone.key
	start org example.org "$ORG"
	run -1 --separate-stderr smimp-send --flush
	[[ "$stderr" == "smimp-send: 1 message cannot be sent and waits in the outbox: cannot open '$PWD/alice2.key'"* ]]
	queued 1
	mv gone.key alice2.key
	# A damaged entry next to it.
	printf 'smimp-outbox/1\nidentity: nonsense\n' >"$OUTBOX/00000000000000000001-000000000000"
	run -1 --separate-stderr smimp-send --flush
	[[ "$stderr" == "smimp-send: 00000000000000000001-000000000000 to ?: refused, moved to outbox/failed/00000000000000000001-000000000000: '$OUTBOX/00000000000000000001-000000000000' is no outbox entry (malformed or cut short)" ]]
	queued 0
	arrived five
}

@test "the outbox is the user's alone: writable by others or a symbolic link, it is refused" {
	letter six
	run -0 smimp-send -i alice.key --queue -q six.age
	chmod 0770 "$OUTBOX"
	letter seven
	run -1 --separate-stderr smimp-send -i alice.key --queue seven.age
	[[ "$stderr" == "smimp-send: cannot queue "*"@example.org: '$OUTBOX' is writable by group or others (mode 770); run chmod go-w '$OUTBOX' (and the home server cannot take it: "* ]]
	run -1 --separate-stderr smimp-send --flush
	[ "$stderr" = "smimp-send: '$OUTBOX' is writable by group or others (mode 770); run chmod go-w '$OUTBOX'" ]
	run -1 --separate-stderr smimp-send --list-queue
	[ "$stderr" = "smimp-send: '$OUTBOX' is writable by group or others (mode 770); run chmod go-w '$OUTBOX'" ]
	chmod 0700 "$OUTBOX"
	mv "$OUTBOX" elsewhere
	ln -s "$PWD/elsewhere" "$OUTBOX"
	run -1 --separate-stderr smimp-send -i alice.key --queue seven.age
	[[ "$stderr" == "smimp-send: cannot queue "*"@example.org: '$OUTBOX' is a symbolic link, not a directory: refusing to use it (and the home server cannot take it: "* ]]
	run -1 --separate-stderr smimp-send --flush
	[ "$stderr" = "smimp-send: '$OUTBOX' is a symbolic link, not a directory: refusing to use it" ]
	[ "$(ls elsewhere | wc -l)" -eq 1 ]
	# Neither sent nor queued is 1, as the page says (it said 75).
	text=$(mandoc -Tascii "$REPO/man/smimp-send.1" | col -b | sed -n '/^EXIT STATUS/,/^EXAMPLES/p' | tr -s ' \n\t' ' ')
	[[ "$text" == *" 2 Usage error."* ]]
	[[ "${text%% 2 Usage error.*}" == *"with --queue, a message that the home server cannot take now and that could not be queued either (an outbox refused, a full disk), said in one line." ]]
	[[ "${text#* 75 }" != *"--queue"* ]]
}

@test "--queue, --flush and --list-queue: usage errors" {
	run -2 --separate-stderr smimp-send --flush --queue
	[ "$stderr" = "smimp-send: --flush and --queue exclude each other (see 'smimp-send --help')" ]
	run -2 --separate-stderr smimp-send --flush m.age
	[ "$stderr" = "smimp-send: unexpected argument 'm.age': --flush takes no file (see 'smimp-send --help')" ]
	run -2 --separate-stderr smimp-send --flush -i alice.key
	[ "$stderr" = "smimp-send: --flush: each message goes with the key it was queued with, -i is not for it (see 'smimp-send --help')" ]
	run -2 --separate-stderr smimp-send -v m.age
	[ "$stderr" = "smimp-send: -v goes with --flush (see 'smimp-send --help')" ]
	run -2 --separate-stderr smimp-send --flush -v -q
	[ "$stderr" = "smimp-send: -q and -v exclude each other (see 'smimp-send --help')" ]
	run -2 --separate-stderr smimp-send --list-queue --flush
	[ "$stderr" = "smimp-send: --list-queue and --flush exclude each other (see 'smimp-send --help')" ]
}

# ---- smimp-sendmail: reading the message (t/unit/mailtool reads as it does) ----

mailtool() { "$SMIMP_BUILD/t/mailtool" "$@"; }

# refuses TEXT: mailtool -t refuses the message in m, saying TEXT.
refuses() {
	run -1 --separate-stderr mailtool -t <m
	[ "$stderr" = "mailtool: $1" ]
}

@test "headers: folded fields, encoded-word subjects (B and Q, adjacent words joined), Latin-1 and Windows-1252" {
	printf 'To: bob@example.net\nSubject: =?utf-8?q?caf=C3=A9?=\n =?UTF-8?B?IGF1IGxhaXQ=?= and\n\t(folded)\n\nx\n' >m
	run -0 mailtool -t <m
	[ "${lines[3]}" = "subject: café au lait and (folded)" ]
	# A UTF-8 character split over two words, a word in ISO-8859-1 and
	# one in Windows-1252 (the euro sign), raw Latin-1, and a word
	# that is malformed, kept as written.
	printf 'To: bob@example.net\nSubject: =?utf-8?B?ww==?= =?utf-8?B?qQ==?= =?iso-8859-1?q?=E9t=E9?= =?windows-1252?q?=80?= \xe9 =?utf-8?x?y?=\n\nx\n' >m
	run -0 mailtool -t <m
	[ "${lines[3]}" = "subject: éété€ é =?utf-8?x?y?=" ]
	# The body: quoted-printable in ISO-8859-1, CRLF lines.
	printf 'To: bob@example.net\r\nContent-Type: text/plain; charset="ISO-8859-1"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nd=E9j=E0 vu, a soft=\r\n break =3D ok  \r\nend\r\n' >m
	run -0 mailtool -t <m
	[ "${lines[5]}" = "déjà vu, a soft break = ok" ]
	[ "${lines[6]}" = "end" ]
	# base64, and text that names no charset and is not UTF-8.
	printf 'To: bob@example.net\nContent-Transfer-Encoding: base64\n\naMOpbGxv\nIHdvcmxk\n' | mailtool -t >out
	[ "$(tail -1 out)" = "héllo world" ]
	printf 'To: bob@example.net\n\nna\xefve\n' | mailtool -t >out
	[ "$(tail -1 out)" = "naïve" ]
}

@test "-t: recipients from To, Cc and Bcc with display names, comments, quoted commas and groups; without -t, the arguments" {
	cat >m <<'MSG'
To: "Bob, the builder" <Bob@Example.NET>, carol@example.com (Carol C.),
  team: Dave <dave@example.org>, <@route.example:eve@example.org>;
Cc: undisclosed-recipients:;, frank@example.org, bob@example.net
Bcc: grace@example.org, dave@example.org
Subject: hello

body
MSG
	run -0 mailtool -t heidi@example.org <m
	[ "${lines[0]}" = "to: bob@example.net, carol@example.com, dave@example.org, eve@example.org" ]
	[ "${lines[1]}" = "cc: frank@example.org" ]
	[ "${lines[2]}" = "bcc: grace@example.org, heidi@example.org" ]
	# Without -t: only the arguments, placed as the headers place them;
	# one that no header names is a blind copy (mutt's and mailx's Bcc).
	run -0 mailtool frank@example.org grace@example.org 'Ivan <ivan@example.org>' bob@example.net <m
	[ "${lines[0]}" = "to: bob@example.net" ]
	[ "${lines[1]}" = "cc: frank@example.org" ]
	[ "${lines[2]}" = "bcc: grace@example.org, ivan@example.org" ]
	# So also with a To that names a group of nobody; with no To, Cc
	# or Bcc at all, every argument is in to.
	printf 'To: undisclosed-recipients:;\n\nx\n' >m2
	run -0 mailtool bob@example.net ivan@example.org <m2
	[ "${lines[0]}" = "to:" ]
	[ "${lines[2]}" = "bcc: bob@example.net, ivan@example.org" ]
	printf 'Subject: none\n\nx\n' >m2
	run -0 mailtool bob@example.net ivan@example.org <m2
	[ "${lines[0]}" = "to: bob@example.net, ivan@example.org" ]
	[ "${lines[2]}" = "bcc:" ]
	# What is no address is said.
	printf 'To: root\n\nx\n' >m
	refuses "To: 'root' has no domain: messages go to addresses, user@domain"
	printf 'To: <bob@example.net\n\nx\n' >m
	refuses "To: not an address list: '<bob@example.net'"
	printf 'To: (nobody\n\nx\n' >m
	refuses "To: not an address list: '(nobody'"
	printf 'Subject: none\n\nx\n' >m
	refuses "no recipient: the message has no To, Cc or Bcc"
}

@test "a lone dot ends the message, unless -i (or -oi)" {
	printf 'To: bob@example.net\n\nbefore\n.\nafter\n' >m
	run -0 mailtool -t <m
	[ "${lines[-1]}" = "before" ]
	run -0 mailtool -t -i <m
	[ "${lines[-2]}" = "." ]
	[ "${lines[-1]}" = "after" ]
	# CRLF lines too; ".." is no lone dot.
	printf 'To: bob@example.net\r\n\r\na\r\n..\r\n.\r\nb\r\n' | mailtool -t >out
	[ "$(tail -1 out)" = ".." ]
}

@test "refused: a charset not read, text not valid in its charset, an unknown transfer encoding, bad base64, a header section or message too large" {
	printf 'To: bob@example.net\nSubject: =?koi8-r?q?abc?=\n\nx\n' >m
	refuses "Subject is in the charset 'koi8-r': smimp reads only UTF-8, US-ASCII, ISO-8859-1, Windows-1252"
	printf 'To: bob@example.net\nContent-Type: text/plain; charset=big5\n\nx\n' >m
	refuses "the body is in the charset 'big5': smimp reads only UTF-8, US-ASCII, ISO-8859-1, Windows-1252"
	printf 'To: bob@example.net\nContent-Type: text/plain; charset=utf-8\n\nab\xff\n' >m
	refuses "the body is not valid UTF-8 (byte 2)"
	printf 'To: bob@example.net\nContent-Transfer-Encoding: x-uuencode\n\nx\n' >m
	refuses "a part in the transfer encoding 'x-uuencode', which smimp does not read (7bit, 8bit, binary, base64, quoted-printable)"
	printf 'To: bob@example.net\nContent-Transfer-Encoding: base64\n\n!!!!\n' >m
	refuses "a part in base64 that does not decode"
	printf 'Subject: \x1b[2Jcleared\nTo: bob@example.net\n\nx\n' >m
	refuses "Subject holds a control character (U+001B)"
	{ printf 'To: bob@example.net\n'; for i in $(seq 1001); do printf 'X-N: %d\n' "$i"; done; printf '\nx\n'; } >m
	refuses "a header section of more than 1000 fields"
	{ printf 'To: bob@example.net\nX-Long: '; head -c 300000 /dev/zero | tr '\0' a; printf '\n\nx\n'; } >m
	refuses "a header section of more than 262144 bytes"
	# The message itself: 32 MiB at most, by smimp-sendmail as by mailtool.
	{ printf 'To: bob@example.net\n\n'; head -c $((32 * 1024 * 1024)) /dev/zero | tr '\0' a; } >big
	run -1 --separate-stderr mailtool -t <big
	[ "$stderr" = "mailtool: the message is larger than 33554432 bytes, the most taken" ]
	run -1 --separate-stderr smimp-sendmail -t <big
	[ "$stderr" = "smimp-sendmail: the message is larger than 33554432 bytes, the most taken" ]
	queued 0
}

@test "MIME: the first text/plain part is the body; HTML and every other part are attachments, decoded, with safe names, an unnamed one's extension its type's" {
	cat >m <<'MSG'
To: bob@example.net
Subject: report
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XYZ"

preamble, ignored
--XYZ
Content-Type: multipart/alternative; boundary=alt

--alt
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

the plain body
--alt
Content-Type: text/html; charset=UTF-8

<p>never rendered</p>
--alt--
--XYZ
Content-Type: application/pdf; name="r.pdf"
Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf
Content-Transfer-Encoding: base64

aGVsbG8gcGRm
--XYZ
Content-Type: text/plain
Content-Disposition: attachment; filename="../../etc/.passwd"

root:x
--XYZ
Content-Type: image/png
Content-Disposition: attachment; filename="=?utf-8?q?r=C3=A9sum=C3=A9.pdf?="

png
--XYZ--
epilogue, ignored
MSG
	mkdir parts
	run -0 mailtool -t -d parts <m
	[ "${lines[0]}" = "part: part-4.html text/html;charset=utf-8 21" ]
	[ "${lines[1]}" = "part: résumé.pdf application/pdf 9" ]
	[ "${lines[2]}" = "part: passwd text/plain 6" ]
	[ "${lines[3]}" = "part: résumé-2.pdf image/png 3" ]
	[ "${lines[-1]}" = "the plain body" ]
	[ "$(cat parts/résumé.pdf)" = "hello pdf" ]
	[ "$(cat parts/part-4.html)" = "<p>never rendered</p>" ]
	# smimp-sendmail seals them as the envelope's parts: bob gets the
	# body and, extracted, each attachment as it was, in order.
	up
	run -0 --separate-stderr smimp-sendmail -t <m
	queued 0
	arrived "the plain body"
	mkdir out
	run -0 --separate-stderr bash -c 'SMIMP_HOME="$BOBHOME" smimp-open -i bob.key --json --extract out bobmail/new/* >/dev/null; SMIMP_HOME="$BOBHOME" smimp-open -i bob.key --json bobmail/new/*'
	[ "$(jq -r '.parts | map(.name + " " + .type + " " + (.size | tostring)) | join("|")' <<<"$output")" = "part-4.html text/html;charset=utf-8 21|résumé.pdf application/pdf 9|passwd text/plain 6|résumé-2.pdf image/png 3" ]
	[ "$(cat out/résumé.pdf)" = "hello pdf" ]
	[ "$(cat out/part-4.html)" = "<p>never rendered</p>" ]
	[ "$(cat out/passwd)" = "root:x" ]
	[ "$(cat out/résumé-2.pdf)" = "png" ]
	# A part with no name: part-N with the extension of its type.
	printf 'To: bob@example.net\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nbody\n--b\n\nmore text\n--b\nContent-Type: image/jpeg\n\nj\n--b\nContent-Type: application/x-foo\n\nf\n--b--\n' >m
	run -0 mailtool -t <m
	[ "${lines[0]}" = "part: part-3.txt text/plain 9" ]
	[ "${lines[1]}" = "part: part-4.jpg image/jpeg 1" ]
	[ "${lines[2]}" = "part: part-5.x-foo application/x-foo 1" ]
	# Multiparts that do not parse, or nest too deep.
	printf 'To: bob@example.net\nContent-Type: multipart/mixed\n\nx\n' >m
	refuses "a multipart/mixed without a boundary"
	printf 'To: bob@example.net\nContent-Type: multipart/mixed; boundary=b\n\nx\n' >m
	refuses "a multipart/mixed whose boundary is nowhere in it"
	{ printf 'To: bob@example.net\n'; for i in $(seq 10); do printf 'Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n' "$i" "$i"; done; printf '\nx\n'; } >m
	refuses "multiparts nested more than 8 deep"
	{ printf 'To: bob@example.net\nContent-Type: multipart/mixed; boundary=b\n\n'; for i in $(seq 101); do printf -- '--b\n\npart %d\n' "$i"; done; } >m
	refuses "more than 100 MIME parts"
}

@test "MIME: names the envelope cannot carry are made so (a leading '-', past 200 bytes, doubled), a type it cannot carry is application/octet-stream; the message goes" {
	long=$(printf 'a%.0s' $(seq 230))
	twin=$(printf 'b%.0s' $(seq 196))
	{
		printf 'To: bob@example.net\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="B"\n\n'
		printf -- '--B\nContent-Type: text/plain\n\nthe body\n'
		printf -- '--B\nContent-Type: application/pdf\nContent-Disposition: attachment; filename="-rf .pdf"\n\n1\n'
		printf -- '--B\nContent-Type: text/plain\nContent-Disposition: attachment; filename="%s.txt"\n\n2\n' "$long"
		printf -- '--B\nContent-Type: text/plain\nContent-Disposition: attachment; filename="%s.txt"\n\n3\n' "$twin"
		printf -- '--B\nContent-Type: text/plain\nContent-Disposition: attachment; filename="%s.txt"\n\n4\n' "$twin"
		printf -- '--B\nContent-Type: application/x{y}\nContent-Disposition: attachment; filename="ok.bin"\n\n5\n'
		printf -- '--B--\n'
	} >m
	run -0 mailtool -t <m
	[ "${lines[0]}" = "part: rf .pdf application/pdf 1" ]
	[ "${lines[1]}" = "part: $(printf 'a%.0s' $(seq 188)).txt text/plain 1" ]
	[ "${lines[2]}" = "part: $(printf 'b%.0s' $(seq 188)).txt text/plain 1" ]
	[ "${lines[3]}" = "part: $(printf 'b%.0s' $(seq 188))-2.txt text/plain 1" ]
	[ "${lines[4]}" = "part: ok.bin application/octet-stream 1" ]
	# The home server down: sealed and queued (exit 0), not refused.
	run -0 --separate-stderr smimp-sendmail -t <m
	[[ "$stderr" == "smimp-sendmail: "*" queued in the outbox "* ]]
	queued 1
}

# ---- smimp-sendmail against the servers ----

@test "smimp-sendmail -t: each recipient gets it once with its subject; a blind copy's recipient is in no one else's message" {
	with_carol
	printf 'From: Cron Daemon <root@example.org>\nTo: Bob <bob@example.net>\nBcc: carol@example.org\nSubject: =?utf-8?q?backup_=E2=9C=93?=\n\nall good\n' >m
	run -0 --separate-stderr smimp-sendmail -t -FCronDaemon -oem -odi -i <m
	[ -z "$output$stderr" ]
	arrived "all good"
	run -0 --separate-stderr bash -c 'SMIMP_HOME="$BOBHOME" smimp-open -i bob.key --headers bobmail/new/*'
	grep -qx 'subject: backup ✓' <<<"$output"
	grep -qx 'to: bob@example.net .*' <<<"$output"
	! grep -q carol <<<"$output" || false
	# carol's own copy shows bob, and her as cc; nobody else got it.
	carol_fetch
	[ "$(ls carolmail/new | wc -l)" -eq 1 ]
	run -0 --separate-stderr bash -c 'SMIMP_HOME="$BATS_TEST_TMPDIR/carolhome" smimp-open -i carol.key --headers carolmail/new/*'
	grep -qx 'cc: carol@example.org .*' <<<"$output"
	grep -qx 'subject: backup ✓' <<<"$output"
	[ "$(bobs_bodies | wc -l)" -eq 1 ]
}

@test "smimp-sendmail: a message with Cc but no To goes, its Cc recipients in the envelope's to (which must name one), with -t and without" {
	with_carol
	printf 'Cc: Bob <bob@example.net>\nBcc: carol@example.org\nSubject: cc only\n\nnobody in To\n' >m
	run -0 --separate-stderr smimp-sendmail -t <m
	[ -z "$output$stderr" ]
	run -0 mailtool -t <m
	[ "${lines[0]}" = "to: bob@example.net" ]
	[ "${lines[1]}" = "cc:" ]
	[ "${lines[2]}" = "bcc: carol@example.org" ]
	# Without -t, the argument the Cc header names.
	printf 'Cc: bob@example.net\nSubject: placed\n\nin cc, then to\n' >m2
	run -0 --separate-stderr smimp-sendmail bob@example.net <m2
	[ -z "$output$stderr" ]
	queued 0
	arrived "in cc, then to" "nobody in To"
	run -0 --separate-stderr bash -c 'for f in bobmail/new/*; do SMIMP_HOME="$BOBHOME" smimp-open -q -i bob.key --headers "$f"; done'
	[ "$(grep -c '^to: bob@example.net ' <<<"$output")" = 2 ]
	! grep -q '^cc: ' <<<"$output" || false
	# carol's blind copy shows bob in to, and her in cc.
	carol_fetch
	run -0 --separate-stderr bash -c 'SMIMP_HOME="$BATS_TEST_TMPDIR/carolhome" smimp-open -q -i carol.key --headers carolmail/new/*'
	grep -qx 'to: bob@example.net .*' <<<"$output"
	grep -qx 'cc: carol@example.org .*' <<<"$output"
}

@test "smimp-sendmail without -t: a recipient given that no To, Cc or Bcc names is a blind copy, as mutt, mailx and git send-email pass a Bcc" {
	with_carol
	# What mutt hands sendmail for To: bob, Bcc: carol: no Bcc field,
	# both as arguments.
	printf 'From: alice@example.org\nTo: Bob <bob@example.net>\nSubject: minutes\n\nfrom mutt\n' >m
	run -0 --separate-stderr smimp-sendmail -oem -oi -- bob@example.net carol@example.org <m
	[ -z "$output$stderr" ]
	arrived "from mutt"
	run -0 --separate-stderr bash -c 'SMIMP_HOME="$BOBHOME" smimp-open -i bob.key --headers bobmail/new/*'
	grep -qx 'to: bob@example.net .*' <<<"$output"
	! grep -q carol <<<"$output" || false
	# carol's own copy shows bob, and her as cc.
	carol_fetch
	[ "$(ls carolmail/new | wc -l)" -eq 1 ]
	run -0 --separate-stderr bash -c 'SMIMP_HOME="$BATS_TEST_TMPDIR/carolhome" smimp-open -q -i carol.key --headers carolmail/new/*'
	grep -qx 'to: bob@example.net .*' <<<"$output"
	grep -qx 'cc: carol@example.org .*' <<<"$output"
}

@test "smimp-sendmail: a reply a mail reader writes (In-Reply-To, References) is sealed in the thread it answers, and threads for mblaze" {
	# The ids: In-Reply-To's first, else References' last; the thread
	# References' first, else the one answered; ids an envelope cannot
	# carry passed over.
	printf 'To: bob@example.net\nIn-Reply-To: <p@example.org>\nReferences: <r@example.org>\n <m@example.org> <p@example.org>\n\nx\n' >m
	run -0 mailtool -t <m
	[ "${lines[4]}" = "in-reply-to: p@example.org" ]
	[ "${lines[5]}" = "thread: r@example.org" ]
	printf 'To: bob@example.net\nIn-Reply-To: <a b@x> (c) <p@example.org>\n\nx\n' >m
	run -0 mailtool -t <m
	[ "${lines[4]}" = "in-reply-to: p@example.org" ]
	[ "${lines[5]}" = "thread: p@example.org" ]
	printf 'To: bob@example.net\nReferences: <x$y@z> <r@example.org> <p@example.org>\n\nx\n' >m
	run -0 mailtool -t <m
	[ "${lines[4]}" = "in-reply-to: p@example.org" ]
	[ "${lines[5]}" = "thread: r@example.org" ]
	printf 'To: bob@example.net\nIn-Reply-To: <x/y@z>\n\nx\n' >m
	run -0 mailtool -t <m
	[ "${lines[4]}" = "body:" ]
	# Through the servers: bob's mblaze threads the answer under the
	# message it answers, by the ids smimp-fetch --mime wrote.
	up
	# mime N: bob's mailbox fetched --mime into bobmime until it holds N.
	mime() {
		for _ in $(seq 30); do
			SMIMP_HOME="$BOBHOME" smimp-fetch -q -i bob.key --mime -d bobmime
			[ "$(mlist bobmime | wc -l)" -ge "$1" ] && return 0
			sleep 0.5
		done
		return 1
	}
	printf 'To: bob@example.net\nSubject: minutes\n\nthe first\n' | smimp-sendmail -t
	mime 1
	first=$(mlist bobmime | head -1)
	mid=$(mhdr -h message-id "$first")
	[[ "$mid" == "<"*"@example.org>" ]]
	printf 'To: bob@example.net\nSubject: Re: minutes\nIn-Reply-To: %s\nReferences: %s\n\nthe answer\n' "$mid" "$mid" >m
	run -0 --separate-stderr smimp-sendmail -t <m
	[ -z "$output$stderr" ]
	mime 2
	answer=$(grep -l '^Subject: Re: minutes$' bobmime/new/*)
	[ "$(mhdr -h in-reply-to "./$answer")" = "$mid" ]
	[ "$(mhdr -h references "./$answer")" = "$mid" ]
	[ "<$(mhdr -h x-smimp-thread-id "./$answer")>" = "$mid" ]
	run -0 bash -c 'mlist bobmime | mthread | mscan -f "%i%s|"'
	[ "$output" = "$(printf 'minutes|\n Re: minutes|')" ]
}

@test "smimp-sendmail takes the flags mail readers and cron pass (DSN, verbose, submission) and ignores them; -X writes no file" {
	up
	printf 'Subject: dsn\n\nwith flags\n' >m
	run -0 --separate-stderr smimp-sendmail -oi -oem -v -N success,failure -R hdrs -V envid-1 -U -G -n -m -L app -X xlog -B 8BITMIME -- bob@example.net <m
	[ -z "$output$stderr" ]
	[ ! -e xlog ]
	arrived "with flags"
}

@test "smimp-sendmail with the home server down queues and exits 0; smimp-send --flush delivers once" {
	start net example.net "$NET"
	printf 'Subject: nightly\n\nexit status 2\n' >m
	run -0 --separate-stderr smimp-sendmail bob@example.net <m
	[[ "$stderr" == "smimp-sendmail: "*"@example.org queued in the outbox (smimp-send --flush sends it): https://127.0.0.1:$ORG/"* ]]
	queued 1
	start org example.org "$ORG"
	run -0 smimp-send --flush
	run -0 smimp-send --flush
	queued 0
	arrived "exit status 2"
}

@test "smimp-sendmail: every other failure exits non-zero with one line, and queues nothing" {
	up
	mkid carol carol@example.org
	# An unknown recipient: refused by the home server (404).
	trust_as "$ALICEHOME" carol.pub trusted
	printf 'x\n' >m
	run -1 --separate-stderr smimp-sendmail carol@example.org <m
	[[ "$stderr" == "smimp-sendmail: "*"@example.org: HTTP 404: "* ]]
	# No blind copy goes when the others' copy was refused.
	printf 'To: carol@example.org\nBcc: bob@example.net\n\nx\n' >m2
	run -1 --separate-stderr smimp-sendmail -t <m2
	[[ "${stderr_lines[0]}" == "smimp-sendmail: "*"@example.org: HTTP 404: "* ]]
	[ "${stderr_lines[1]}" = "smimp-sendmail: the blind copy for bob@example.net was not sent either" ]
	# A recipient never pinned whose server cannot be reached: 75.
	stop_servers net
	run -75 --separate-stderr smimp-sendmail dave@example.net <m
	[ "$stderr" = "smimp-sendmail: no identity pinned for dave@example.net, and the lookup failed: https://127.0.0.1:$NET/.well-known/smimp.txt: Couldn't connect to server" ]
	[ "${#lines[@]}" -eq 0 ]
	# No key.
	run -1 --separate-stderr smimp-sendmail --identity nosuch.key bob@example.net <m
	[[ "$stderr" == "smimp-sendmail: cannot open 'nosuch.key'"* ]]
	queued 0
	# -f that is not the key's address: said, and the key's goes.
	start net example.net "$NET"
	run -0 --separate-stderr smimp-sendmail -f mallory@example.org bob@example.net <m
	[ "$stderr" = "smimp-sendmail: warning: -f mallory@example.org ignored: the message goes from alice@example.org, whose key signs it" ]
	run -0 --separate-stderr smimp-sendmail -f alice@example.org bob@example.net <m
	[ -z "$stderr" ]
	arrived x x
}

@test "smimp-sendmail: usage errors" {
	# sendmail's -h N (a hop count): refused, never the usage and 0.
	printf 'To: bob@example.net\n\nx\n' >m
	run -2 --separate-stderr smimp-sendmail -h 20 -t <m
	[ "$stderr" = "smimp-sendmail: -h (--help) goes alone; sendmail's hop count (-h N) is not taken (see 'smimp-sendmail --help')" ]
	[ -z "$output" ]
	run -0 --separate-stderr smimp-sendmail -h
	[[ "${lines[0]}" == "usage: smimp-sendmail "* ]]
	run -2 --separate-stderr smimp-sendmail </dev/null
	[ "$stderr" = "smimp-sendmail: no recipient: name them, or take them from the message with -t (see 'smimp-sendmail --help')" ]
	run -2 --separate-stderr smimp-sendmail -bp
	[ "$stderr" = "smimp-sendmail: -bp: smimp-sendmail only delivers a message (-bm); the outbox is smimp-send's (--flush, --list-queue) (see 'smimp-sendmail --help')" ]
	run -2 --separate-stderr smimp-sendmail -q1h
	[ "$stderr" = "smimp-sendmail: -q1h: smimp-sendmail runs no queue; the outbox is smimp-send's (--flush, --list-queue) (see 'smimp-sendmail --help')" ]
	run -2 --separate-stderr smimp-sendmail root
	[ "$stderr" = "smimp-sendmail: recipient: 'root' has no domain: messages go to addresses, user@domain (see 'smimp-sendmail --help')" ]
	run -2 --separate-stderr smimp-sendmail --max-work 0 bob@example.net
	[ "$stderr" = "smimp-sendmail: --max-work takes 1 to 240 seconds, not '0' (see 'smimp-sendmail --help')" ]
}
