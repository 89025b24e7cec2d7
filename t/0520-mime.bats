#!/usr/bin/env bats
# Mail readers (doc/PROTOCOL.md 4.6): smimp-open --mime writes a verified
# message as RFC 5322 with MIME, which Python's email package reads back
# under its strict policy (t/mimeparse.py: a defect fails the test);
# hostile subjects, names, types and bodies (signed messages made by
# t/unit/hostile.c) never make a header, a line break or a boundary.
# smimp-fetch --mime files messages so through two servers, and mblaze
# and notmuch, as Debian ships them, read the Maildir; a bounce notice
# from one's own server is filed as a plain text message from it.

load helper

setup() {
	common_setup
	if [[ "$BATS_TEST_DESCRIPTION" == "through servers:"* ]]; then
		alice_and_bob_domains
		printf 'Hello Bob,\nthe build is green.\n' >msg
		mkid dave dave@example.org
		smimpd --data org --domain example.org adduser dave@example.org dave.pub
		# A full mailbox at bob's end: a message bounces at once.
		[[ "$BATS_TEST_DESCRIPTION" != *bounce* ]] || echo 'mailbox-quota 1000' >>common.conf
		start org example.org "$ORG"
		start net example.net "$NET"
	else
		alice_and_bob
	fi
	FP=$(open_bob -q --json <(seal msg) | jq -r .fingerprint)
}

teardown() {
	stop_servers org net
	[ -z "${TMUX_SOCK:-}" ] || tmux -S "$TMUX_SOCK" kill-server 2>/dev/null || true
	[ ! -f bad.pid ] || kill "$(cat bad.pid)" 2>/dev/null || true
}

hostile() { "$SMIMP_BUILD/t/hostile" "$@"; }
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
part() { printf '^part=%s' "$(hex "$1")"; }
mimeparse() { python3 "$REPO/t/mimeparse.py" "$@"; }
# The header names of a parsed message, in order, on one line.
names() { grep '^H ' "$1" | cut -d: -f1 | cut -c3- | tr '\n' ' '; }
# RFC 5322's form of the date of m.age, as its envelope says it.
mail_date() {
	date -u -d "$(open_bob -q --json "$1" | jq -r .date)" '+%a, %d %b %Y %H:%M:%S +0000'
}
fetch_bob() { SMIMP_HOME="$BOBHOME" smimp-fetch -i bob.key -d mail "$@"; }
# fetch_until N: fetch --mime until N messages came (the relay is quick).
fetch_until() {
	local got=0 n
	for _ in $(seq 50); do
		n=$(fetch_bob --mime --json | jq -r .fetched) || return 1
		got=$((got + n))
		[ "$got" -ge "$1" ] && return 0
		sleep 0.2
	done
	echo "only $got of $1 fetched"
	return 1
}
# serve_lies: t/badserver.py as example.net, serving the files under srv/.
serve_lies() {
	python3 "$REPO/t/badserver.py" port files "$PWD/srv" >requests.log 2>&1 &
	echo $! >bad.pid
	for _ in $(seq 50); do [ -s port ] && break; sleep 0.1; done
	export SMIMP_RESOLVE="example.net=127.0.0.1:$(cat port)" SMIMP_ALLOW_HTTP=example.net
}
# The three messages of the tests through servers: two from alice, one
# with attachments, and one from dave, whom bob does not know.
send_three() {
	printf 'the **build** is green\n' >build.md
	printf '%%PDF-1.4 not really\n' >report.pdf
	printf 'danke\n' >'Grüße.txt'
	smimp-seal -i alice.key -r bob@example.net -s "release 1.2 ready" -o m1.age build.md 2>/dev/null
	smimp-seal -i alice.key -r bob@example.net -s "Q3 — Zahlen" --attach report.pdf \
		--attach 'Grüße.txt' -o m2.age msg
	SMIMP_HOME="$BATS_TEST_TMPDIR/davehome" smimp-seal -i dave.key -r bob@example.net \
		-s "hello from a stranger" -o m3.age msg 2>/dev/null
	SMIMP_HOME="$ALICEHOME" smimp-send -i alice.key m1.age m2.age >/dev/null
	SMIMP_HOME="$BATS_TEST_TMPDIR/davehome" smimp-send -i dave.key m3.age >/dev/null
}
blake() { python3 -c 'import hashlib,sys; print(hashlib.blake2b(sys.argv[1].encode().replace(b"|", b"\0"), digest_size=16).hexdigest())' "$1"; }
# bounce_head DOMAIN USER ID DATE HASH ORIG: what fetch --mime writes of
# a bounce notice of DOMAIN's server to USER, up to its recipients: ID
# and DATE as the notice has them made plain, HASH of its Message-ID,
# ORIG the Message-ID of the message it answers.  bounce_tail DOMAIN:
# its end, after the reason.
bounce_head() {
	cat <<-EOF
	From: "$1 mail server" <postmaster@$1>
	To: $2
	Subject: Undelivered: $3
	Date: $(date -u -d "$4" '+%a, %d %b %Y %H:%M:%S +0000')
	Message-ID: <$5@$1>
	In-Reply-To: $6
	References: $6
	X-Smimp-Verified: yes
	X-Smimp-Sender: server:$1
	X-Smimp-Tier: server
	X-Smimp-Type: bounce
	MIME-Version: 1.0
	Content-Type: text/plain; charset=us-ascii
	Content-Transfer-Encoding: 7bit

	Your server could not deliver a message you sent to the recipients
	below, and gave up on it.

	Message: $3
	When: $4
	EOF
}
bounce_tail() {
	printf '\nThis notice is signed by the server of %s, and smimp-fetch checked\nthe signature.\n' "$1"
}

@test "--mime: a text body, its headers as Python's strict parser reads them, the same bytes every time" {
	seal -s "release 1.2 ready" -o m.age msg
	run -0 --separate-stderr open_bob --mime -o m.eml m.age
	[ "$stderr" = "smimp-open: from alice@example.org, fingerprint $FP, trusted" ]
	id=$(open_bob -q --json m.age | jq -r .message_id)
	mimeparse m.eml 1 body >parsed
	cat >want <<-EOF
	H From: alice@example.org
	H To: bob@example.net
	H Subject: release 1.2 ready
	H Date: $(mail_date m.age)
	H Message-ID: <$id>
	H X-Smimp-Verified: yes
	H X-Smimp-Sender: alice@example.org
	H X-Smimp-Fingerprint: $FP
	H X-Smimp-Tier: trusted
	H X-Smimp-Forward-Secrecy: no
	H X-Smimp-Type: email
	H X-Smimp-Content-Type: text/markdown; charset=utf-8
	H X-Smimp-Message-Id: $id
	H X-Smimp-Thread-Id: $id
	H MIME-Version: 1.0
	H Content-Type: text/plain; charset="utf-8"
	H Content-Transfer-Encoding: 8bit
	P 1 text/plain 8bit - - $(stat -c %s msg) $(sum msg)
	EOF
	diff want parsed
	cmp msg body
	# The body is 8bit, as it is: readable with grep.
	grep -qx 'the build is green.' m.eml
	# Standard output gets the same bytes, again and again.
	open_bob -q --mime m.age >again.eml
	cmp m.eml again.eml
	[ "$(stat -c %a m.eml)" = 600 ]
}

@test "--mime with attachments: multipart/mixed, the body first, then each in base64 under its name, RFC 2231 for names not short ASCII or with a quote, types made safe, saved by mblaze as sent" {
	head -c 300000 /dev/urandom >photo.bin
	: >empty.txt
	printf 'x' >'Grüße – résumé.txt'
	printf 'q' >'say "hi".txt'
	printf 'w' >'=?UTF-8?B?ZXZpbC5leGU=?=.txt'
	long=$(printf 'n%.0s' $(seq 120)).txt
	printf 'l' >"$long"
	printf 'm' >inner.eml
	printf 't' >notes.txt
	seal -s files --attach photo.bin --attach empty.txt --attach 'Grüße – résumé.txt' \
		--attach 'say "hi".txt' --attach '=?UTF-8?B?ZXZpbC5leGU=?=.txt' --attach "$long" \
		--attach inner.eml --attach-type 'multipart/mixed;boundary=x' \
		--attach notes.txt --attach-type 'text/plain;charset=utf-8;name=evil.exe' \
		-o m.age msg
	run -0 --separate-stderr open_bob --mime -o m.eml m.age
	# Nothing said of attachments not written: they are in the message.
	[ "$stderr" = "smimp-open: from alice@example.org, fingerprint $FP, trusted" ]
	mimeparse m.eml 2 photo.out >parsed
	grep -q '^H Content-Type: multipart/mixed; boundary="=_smimp_[0-9a-f]\{32\}"$' parsed
	grep -qx ' boundary="=_smimp_[0-9a-f]\{32\}"' m.eml
	cat >want <<-EOF
	P 1 text/plain 8bit - - $(stat -c %s msg) $(sum msg)
	P 2 application/octet-stream base64 attachment photo.bin 300000 $(sum photo.bin)
	P 3 text/plain base64 attachment empty.txt 0 $(sum empty.txt)
	P 4 text/plain base64 attachment Grüße – résumé.txt 1 $(sum 'Grüße – résumé.txt')
	P 5 text/plain base64 attachment say "hi".txt 1 $(sum 'say "hi".txt')
	P 6 text/plain base64 attachment =?UTF-8?B?ZXZpbC5leGU=?=.txt 1 $(sum '=?UTF-8?B?ZXZpbC5leGU=?=.txt')
	P 7 text/plain base64 attachment $long 1 $(sum "$long")
	P 8 application/octet-stream base64 attachment inner.eml 1 $(sum inner.eml)
	P 9 text/plain base64 attachment notes.txt 1 $(sum notes.txt)
	EOF
	diff want <(grep '^P ' parsed)
	cmp photo.bin photo.out
	# What the part headers say: only a charset kept, long and encoded
	# names in RFC 2231 pieces of at most 60 characters.
	grep -qx 'Content-Type: text/plain; charset=utf-8; name="notes.txt"' m.eml
	! grep -q 'evil.exe\|boundary=x' m.eml || false
	grep -qx ' filename\*0\*=utf-8'"''"'%3D%3FUTF-8%3FB%3FZXZpbC5leGU%3D%3F%3D.txt' m.eml
	# A name with a '"' is no quoted-pair (mblaze ends it at the '"').
	grep -qx ' filename\*0\*=utf-8'"''"'say%20%22hi%22.txt' m.eml
	! grep -qF 'say \"hi' m.eml || false
	[ "$(awk '{ if (length($0) > 78) n++ } END { print n + 0 }' m.eml)" -eq 0 ]
	[ "$(grep -c '^--=_smimp_' m.eml)" -eq 10 ]
	# mblaze saves each attachment under its name, with its bytes.
	mkdir x
	(cd x && mshow -x ../m.eml >/dev/null 2>&1)
	for f in photo.bin empty.txt 'Grüße – résumé.txt' 'say "hi".txt' \
	    '=?UTF-8?B?ZXZpbC5leGU=?=.txt' "$long" inner.eml notes.txt; do
		cmp "$f" "x/$f"
	done
	[ "$(find x -type f | wc -l)" -eq 8 ]
}

@test "hostile subjects come back as they were sent, encoded when they must be, and never make a header" {
	long=$(printf 'a%.0s' $(seq 998))
	words=$(printf 'word %.0s' $(seq 198))end
	umlauts=$(printf 'Grüße %.0s' $(seq 124))
	emoji=$(printf '😀%.0s' $(seq 249))
	n=0
	for s in '=?UTF-8?B?SGk=?= plain' 'x =?utf-8?q?a=0D=0AX-Smimp-Tier:_trusted?=' \
	    'ok: To: mallory@example.com' "$long" "$words" "$umlauts" "$emoji" \
	    ' leading and trailing ' 'two  spaces' '-- =_smimp_ boundary?' ; do
		n=$((n + 1))
		hostile seal alice.key alice.pub bob.pub "subject=$(hex "$s")" <msg >"s$n.age"
		open_bob -q --mime -o "s$n.eml" "s$n.age"
		mimeparse "s$n.eml" >"s$n.parsed"
		got=$(grep '^H Subject: ' "s$n.parsed")
		[ "$got" = "H Subject: $s" ] || { echo "subject $n: $got"; false; }
		[ "$(names "s$n.parsed")" = "From To Subject Date Message-ID In-Reply-To References X-Smimp-Verified X-Smimp-Sender X-Smimp-Fingerprint X-Smimp-Tier X-Smimp-Forward-Secrecy X-Smimp-Type X-Smimp-Content-Type X-Smimp-Message-Id X-Smimp-Thread-Id MIME-Version Content-Type Content-Transfer-Encoding " ]
		grep -qx 'X-Smimp-Tier: trusted' "s$n.eml"
		[ "$(awk '{ if (length($0) > 78) n++ } END { print n + 0 }' "s$n.eml")" -eq 0 ]
	done
	# Short printable ASCII is written as it is; the others encoded.
	grep -qx 'Subject: ok: To: mallory@example.com' s3.eml
	grep -q '^Subject: =?UTF-8?B?' s1.eml
	# A CR, an LF or a NUL: malformed (3), nothing written.
	for h in 610d62 610a546f3a2078406578616d706c652e636f6d 610062; do
		hostile seal alice.key alice.pub bob.pub "subject=$h" <msg >bad.age
		run -3 --separate-stderr open_bob --mime -o bad.eml bad.age
		[[ "$stderr" == "smimp-open: malformed envelope: "* ]]
		[ ! -e bad.eml ]
		[ -z "$output" ]
	done
}

@test "a hostile content type comes back as it was sent, and no reader decodes it into header lines" {
	# An encoded word that decodes to a line break and forged fields.
	forged=$(printf 'text/plain\nX-Smimp-Sender: boss@example.com\nFrom: boss@example.com\n\033[2J' | base64 -w0)
	for ct in "=?UTF-8?B?$forged?=" 'x =?utf-8?q?a=0AFrom:_boss@example.com?=' 'text/plain;  a=b '; do
		seal --content-type "$ct" msg >ct.age
		open_bob -q --mime -o ct.eml ct.age
		mimeparse ct.eml >ct.parsed
		[ "$(grep '^H X-Smimp-Content-Type: ' ct.parsed)" = "H X-Smimp-Content-Type: $ct" ]
		[ "$(grep -c '^H ' ct.parsed)" -eq 16 ]
		# What mblaze shows, every header decoded.
		run -0 mshow -L ./ct.eml
		[ "$(grep -c '^From: ' <<<"$output")" -eq 1 ]
		[ "$(grep -c '^X-Smimp-Sender: ' <<<"$output")" -eq 1 ]
		[[ "$output" != *boss@* || "$output" == *"X-Smimp-Content-Type: $ct"* ]]
		[[ "$output" != *$'\e'* ]]
	done
	# An ordinary one is written as it is.
	seal --content-type 'text/markdown; charset=utf-8' msg >ct.age
	open_bob -q --mime -o ct.eml ct.age
	grep -qx 'X-Smimp-Content-Type: text/markdown; charset=utf-8' ct.eml
}

@test "hostile bodies: the boundary itself, long lines, CR, '=_', NUL and bytes not UTF-8 come back byte for byte in the parts they were, a body not text under a name no attachment has" {
	printf 'x' >a.txt
	id=fixed@example.org
	{ printf x; cat msg; } | hostile seal alice.key alice.pub bob.pub "message-id=$(hex $id)" \
		"$(part 'attachment 1 text/plain a.txt')" >m.age
	open_bob -q --mime -o m.eml m.age
	b=$(sed -n 's/^ boundary="\(.*\)"$/\1/p' m.eml)
	[ "$b" = "=_smimp_$(blake "smimp/1 mime-id|alice@example.org|$id")" ]
	# The sender knows the boundary: a body that tries to close the part.
	printf 'hi\n--%s\nContent-Type: text/html\n\n<b>evil</b>\n--%s--\n' "$b" "$b" >evil
	{ printf x; cat evil; } | hostile seal alice.key alice.pub bob.pub "message-id=$(hex $id)" \
		"$(part 'attachment 1 text/plain a.txt')" >e.age
	open_bob -q --mime -o e.eml e.age
	grep -qx " boundary=\"$b\"" e.eml
	mimeparse e.eml 1 body >parsed
	[ "$(grep -c '^P ' parsed)" -eq 2 ]
	grep -q '^P 1 text/plain quoted-printable - - ' parsed
	cmp evil body
	[ "$(grep -c -- "^--$b" e.eml)" -eq 3 ]
	# Lines past 998 bytes, CR, trailing white space: quoted-printable.
	{ head -c 5000 /dev/zero | tr '\0' a; printf '\r\nend \t\n=_\n'; head -c 998 /dev/zero | tr '\0' b; } >long
	hostile seal alice.key alice.pub bob.pub <long >l.age
	open_bob -q --mime -o l.eml l.age
	mimeparse l.eml 1 body >parsed
	grep -q '^P 1 text/plain quoted-printable - - ' parsed
	cmp long body
	[ "$(awk '{ if (length($0) > 76) n++ } END { print n + 0 }' l.eml)" -eq 0 ]
	# Exactly 998 bytes a line, no CR: still 8bit.
	{ head -c 998 /dev/zero | tr '\0' c; echo; } >edge
	hostile seal alice.key alice.pub bob.pub <edge >x.age
	open_bob -q --mime -o x.eml x.age
	grep -q '^Content-Transfer-Encoding: 8bit$' x.eml
	# A NUL, or bytes that are not UTF-8: an attachment named body.
	for f in nul bin; do
		if [ $f = nul ]; then printf 'a\0b\n' >$f; else printf 'caf\xe9\n' >$f; fi
		hostile seal alice.key alice.pub bob.pub <$f >$f.age
		open_bob -q --mime -o $f.eml $f.age
		mimeparse $f.eml 1 body >parsed
		grep -q '^P 1 application/octet-stream base64 attachment body ' parsed
		cmp $f body
	done
	# Beside attachments named body and body (1): body (2), and mshow
	# -x saves all three.
	printf 'first' >body
	printf 'second' >'body (1)'
	seal --attach body --attach 'body (1)' -o two.age bin
	open_bob -q --mime -o two.eml two.age
	grep -qx 'Content-Disposition: attachment; filename="body (2)"' two.eml
	mkdir x
	(cd x && mshow -x ../two.eml >/dev/null)
	cmp bin 'x/body (2)'
	cmp body x/body
	cmp 'body (1)' 'x/body (1)'
}

@test "ids: a msg-id as it is, another domain's id the sender's own, anything else hashed; In-Reply-To and References from the thread" {
	seal -s first -o first.age msg
	first=$(open_bob -q --json first.age | jq -r .message_id)
	seal -s second --thread "$first" --in-reply-to "$first" -o second.age msg
	second=$(open_bob -q --json second.age | jq -r .message_id)
	seal -s third --thread "$first" --in-reply-to "$second" -o third.age msg
	open_bob -q --mime -o second.eml second.age
	open_bob -q --mime -o third.eml third.age
	grep -qx "In-Reply-To: <$first>" second.eml
	grep -qx "References: <$first>" second.eml
	grep -qx "In-Reply-To: <$second>" third.eml
	[ "$(sed -n '/^References:/,/^[^ R]/p' third.eml | head -2 | tr -d '\n')" = "References: <$first> <$second>" ]
	for id in plain a:b@example.org .dot@example.org x@evil.example; do
		hostile seal alice.key alice.pub bob.pub "message-id=$(hex "$id")" "in-reply-to=$(hex "$id")" <msg >h.age
		open_bob -q --mime -o h.eml h.age
		case $id in
		x@evil.example) want="<$(blake "smimp/1 mime-id|alice@example.org|$id")@example.org>" ;;
		*) want="<$(blake "smimp/1 mime-id|$id")@smimp.invalid>" ;;
		esac
		grep -qx "Message-ID: $want" h.eml
		grep -qx "X-Smimp-Message-Id: $id" h.eml
		# As a reference, only the id counts: a reply finds its parent.
		if [ "$id" = x@evil.example ]; then
			grep -qx "In-Reply-To: <$id>" h.eml
		else
			grep -qx "In-Reply-To: $want" h.eml
		fi
		mimeparse h.eml >/dev/null
	done
}

@test "--mime says what was checked: the device that sealed, one's own message" {
	enroll_device alice.key alice@example.org laptop full --no-publish
	cp alice.pub laptop.pub
	echo hi | SMIMP_HOME="$BATS_TEST_TMPDIR/alicehome" smimp-seal -i laptop.key -r bob.pub -s dev -o d.age
	open_bob -q --mime -o d.eml d.age
	mimeparse d.eml >parsed
	grep -qx 'H X-Smimp-Device: laptop' parsed
	grep -qx 'H X-Smimp-Sender: alice@example.org' parsed
	grep -qx 'H From: alice@example.org' parsed
	# Alice's own copy: trusted as her own, no trust store needed.
	SMIMP_HOME="$BATS_TEST_TMPDIR/alicehome" smimp-open -q -i alice.key --mime -o own.eml d.age
	grep -qx 'X-Smimp-Tier: trusted (own identity)' own.eml
	mimeparse own.eml >/dev/null
}

@test "--mime refuses what smimp-open refuses, with the same exit status, writing nothing" {
	seal -s x -o m.age msg
	# Tampered: 3.
	cp m.age bad.age
	flip bad.age 400
	run -3 --separate-stderr open_bob --mime -o out.eml bad.age
	[ -z "$output" ]
	[ ! -e out.eml ]
	# Unknown: 4, nothing; with --accept-unknown written, still 4.
	mkid carol carol@example.com
	smimp-seal -i carol.key -r bob.pub -o c.age msg
	run -4 --separate-stderr open_bob --mime -o out.eml c.age
	[ "${stderr_lines[1]}" = "smimp-open: carol@example.com is not in the trust store: nothing written (check the fingerprint, then smimp-trust add --from-message, or use --accept-unknown)" ]
	[ ! -e out.eml ]
	run -4 --separate-stderr open_bob -q --mime --accept-unknown -o out.eml c.age
	grep -qx 'X-Smimp-Tier: unknown' out.eml
	grep -qx 'X-Smimp-Sender: carol@example.com' out.eml
	# Blocked: 4, nothing, even with --accept-unknown.
	rm out.eml
	SMIMP_HOME="$BOBHOME" smimp-trust set carol@example.com blocked >/dev/null
	run -4 --separate-stderr open_bob --mime --accept-unknown -o out.eml c.age
	[ ! -e out.eml ]
	# Usage: --mime with --json, --headers or --extract.
	for o in --json --headers "--extract out"; do
		run -2 --separate-stderr open_bob --mime $o m.age
		[ "$stderr" = "smimp-open: --mime excludes --headers, --json and --extract: the attachments are in the MIME message (see 'smimp-open --help')" ]
	done
}

@test "--mime: a large sparse attachment in constant memory" {
	mib=${ATTACH_TEST_MIB:-128}
	[[ "$SMIMP_BUILD" != *-san ]] || mib=16
	truncate -s "${mib}M" big.bin
	seal --attach big.bin -o m.age msg
	SMIMP_HOME="$BOBHOME" /usr/bin/time -f '%M' -o open.rss \
		smimp-open -i bob.key -q --mime -o m.eml m.age
	echo "$mib MiB: open --mime max RSS $(cat open.rss) KiB"
	# The base64 between the attachment's header and the last boundary.
	awk '/^Content-Disposition: attachment; filename="big.bin"$/ { on = 1; getline; next }
	    on && /^--=_smimp_/ { exit } on && NF { print }' m.eml | base64 -d | cmp - big.bin
	[[ "$SMIMP_BUILD" != *-san ]] || skip "resident size means nothing under AddressSanitizer"
	[ "$(cat open.rss)" -lt 16384 ]
}

@test "smimp-open(1)'s examples for mutt (a Maildir of its own) and mblaze (the lone file) show the message" {
	command -v mutt >/dev/null || skip "mutt is not installed"
	command -v tmux >/dev/null || skip "tmux is not installed"
	seal -s "read in a mail reader" -o m.age msg
	cp bob.key "$BOBHOME/identity.key"
	cp bob.pub "$BOBHOME/identity.pub"
	# The example lines as the man page shows them, each after its '$ '.
	mandoc -Tascii "$REPO/man/smimp-open.1" | col -b |
		sed -n '/Read a message in mutt/,/Pin an unknown/s/^[[:space:]]*\$ //p' >examples
	grep -q mutt examples
	# mutt in a terminal: its index shows the one message.
	mkdir Mail
	{
		printf 'export HOME="%s" SMIMP_HOME="%s"\n' "$BATS_TEST_TMPDIR" "$BOBHOME"
		grep -v mshow examples
		echo 'echo "rc=$?"; sleep 60'
	} >mutt.sh
	TMUX_SOCK="$BATS_TEST_TMPDIR/tmux.sock"
	tmux -S "$TMUX_SOCK" -f /dev/null new-session -d -x 150 -y 30 \
		-c "$BATS_TEST_TMPDIR" "sh mutt.sh" 3>&-
	for _ in $(seq 100); do
		tmux -S "$TMUX_SOCK" capture-pane -p >screen
		grep -q 'Msgs:1' screen && break
		sleep 0.1
	done
	cat screen
	grep -q 'Msgs:1' screen
	grep -q 'read in a mail reader' screen
	! grep -q 'not a mailbox' screen || false
	# mblaze's mshow.
	run -0 env SMIMP_HOME="$BOBHOME" sh -c "$(grep mshow examples)"
	grep -qx 'Subject: read in a mail reader' <<<"$output"
	grep -qx 'the build is green.' <<<"$output"
}

@test "through servers: fetch --mime files MIME by tier and keeps the sealed originals in .sealed; mblaze lists and shows them" {
	send_three
	fetch_until 3
	[ "$(ls mail/new)" = "$(ls mail/new | grep '^[0-9a-f]\{32\}\.eml$')" ]
	[ "$(ls mail/new | wc -l)" -eq 2 ]
	[ "$(ls mail/.Other/new | grep -c '\.eml$')" -eq 1 ]
	[ "$(ls mail/.sealed | grep -c '^[0-9a-f]\{32\}\.smimp$')" -eq 3 ]
	[ -z "$(ls mail/tmp)" ]
	[ ! -e mail/.smimp-pending ]
	[ "$(stat -c %a mail/.sealed)" = 700 ]
	# Each MIME file beside its original, which still opens.
	for f in mail/new/*.eml mail/.Other/new/*.eml; do
		n=$(basename "$f" .eml)
		SMIMP_HOME="$BOBHOME" smimp-open -q --accept-unknown -i bob.key mail/.sealed/$n.smimp >/dev/null || [ $? -eq 4 ]
		mimeparse "$f" >/dev/null
	done
	grep -qx 'X-Smimp-Tier: unknown' mail/.Other/new/*.eml
	grep -qx 'X-Smimp-Sender: dave@example.org' mail/.Other/new/*.eml
	# mblaze (its sequence and profile here): the folders (never
	# .sealed), the listing, each message.
	export MBLAZE="$PWD/mblaze"
	mkdir "$MBLAZE"
	: >"$MBLAZE/seq"
	[ "$(mdirs mail | sort | tr '\n' ' ')" = "$PWD/mail $PWD/mail/.Other $PWD/mail/.Sent " ]
	run -0 bash -c 'mlist mail | mscan -f "%f|%S"'
	[ "$(sort <<<"$output" | tr '\n' '#')" = "alice@example.org|Q3 — Zahlen#alice@example.org|release 1.2 ready#" ]
	run -0 bash -c 'mlist mail/.Other | mscan -f "%f|%S"'
	[ "$output" = "dave@example.org|hello from a stranger" ]
	shown=$(mlist mail | mpick -t 'subject =~ "release"' | mshow 2>&1)
	grep -q '^From: alice@example.org$' <<<"$shown"
	grep -q '^Subject: release 1.2 ready$' <<<"$shown"
	grep -qx 'the \*\*build\*\* is green' <<<"$shown"
	parts=$(mlist mail | mpick -t 'subject =~ "Q3"' | mshow -t 2>&1)
	grep -q 'text/plain size=.*' <<<"$parts"
	grep -q 'application/pdf size=20 name="report.pdf"' <<<"$parts"
	grep -q 'text/plain size=6 name="Grüße.txt"' <<<"$parts"
	# mshow -x extracts an attachment as it was sent.
	mkdir x
	q3=$(mlist mail | mpick -t 'subject =~ "Q3"')
	(cd x && mshow -x "../$q3" report.pdf 'Grüße.txt' >/dev/null)
	cmp 'Grüße.txt' 'x/Grüße.txt'
	cmp report.pdf x/report.pdf
	# Fetched again: nothing new, nothing twice.
	run -0 --separate-stderr fetch_bob --mime
	[ "$stderr" = "smimp-fetch: 0 fetched: 0 to the inbox, 0 to Other, 0 dropped" ]
}

@test "through servers: notmuch indexes the MIME messages, finds subject and sender, and indexes no sealed original" {
	send_three
	fetch_until 3
	printf '[database]\npath=%s\n[new]\ntags=new\n[search]\nexclude_tags=\n' "$PWD/mail" >nm.conf
	export NOTMUCH_CONFIG="$PWD/nm.conf"
	run -0 --separate-stderr notmuch new
	[ "$(grep -c 'Ignoring non-mail file: .*/\.sealed/' <<<"$stderr")" -eq 3 ]
	[ "$(notmuch count '*')" -eq 3 ]
	[ "$(notmuch count --output=files '*')" -eq 3 ]
	[ "$(notmuch count --output=files 'path:.sealed/**')" -eq 0 ]
	[ "$(notmuch search --output=files subject:release)" = "$(ls -d "$PWD"/mail/new/*.eml | xargs grep -l '^Subject: release')" ]
	[ "$(notmuch count from:alice@example.org)" -eq 2 ]
	[ "$(notmuch count from:dave@example.org)" -eq 1 ]
	[ "$(notmuch count 'subject:"Q3 — Zahlen"')" -eq 1 ]
	[ "$(notmuch count attachment:report.pdf)" -eq 1 ]
	notmuch search --format=json 'from:dave@example.org' | jq -e '.[0].subject == "hello from a stranger"'
	# The same message written again is the same message to notmuch.
	n=$(ls mail/new | head -1)
	SMIMP_HOME="$BOBHOME" smimp-open -q -i bob.key --mime "mail/.sealed/${n%.eml}.smimp" >mail/cur/again.eml
	notmuch new >/dev/null 2>&1
	[ "$(notmuch count '*')" -eq 3 ]
	[ "$(notmuch count --output=files '*')" -eq 4 ]
	# With .sealed ignored as its manual says, not even a note.
	printf '[new]\nignore=.sealed\n' >>nm.conf
	run -0 --separate-stderr notmuch new
	! grep -q Ignoring <<<"$stderr" || false
}

@test "fetch --mime through a lying server: what does not verify, or comes from a changed key, is kept as it came in .sealed, and in .Other only as smimp's notice that says so" {
	mkid alt alice@example.org
	seal -s good -o good.age msg
	cp good.age tampered.age
	flip tampered.age 400
	smimp-seal -i alt.key -r bob.pub -s "a changed key" -o alt.age msg
	p=srv/smimp/v1/mailbox
	mkdir -p $p
	cp good.age $p/1
	cp tampered.age $p/2
	cp alt.age $p/3
	printf 'not a message\n' >$p/4
	printf '[%s]' "$(for i in 1 2 3 4; do printf '{"id":%d,"from":"alice@example.org","message_id":"m%d@example.org","size":1,"received":"2026-11-24T22:00:00Z"}' $i $i; [ $i = 4 ] || printf ,; done)" >$p/.list
	serve_lies
	run -0 --separate-stderr fetch_bob --mime
	[ "$stderr" = "smimp-fetch: 4 fetched: 1 to the inbox, 3 to Other, 0 dropped" ]
	[ "$(ls mail/new)" = "$(b2sum -l 128 good.age | cut -c1-32).eml" ]
	[ "$(ls mail/.sealed | wc -l)" -eq 4 ]
	grep -qx 'Subject: good' mail/new/*.eml
	grep -qx 'X-Smimp-Verified: yes' mail/new/*.eml
	[ "$(ls mail/.Other/new | grep -c '\.smimp$')" -eq 0 ]
	[ "$(ls mail/.Other/new | grep -c '\.eml$')" -eq 3 ]
	for f in tampered.age alt.age; do
		n=$(b2sum -l 128 "$f" | cut -c1-32)
		cmp "$f" "mail/.sealed/$n.smimp"
		grep -qx 'X-Smimp-Verified: no' "mail/.Other/new/$n.eml"
		! grep -q 'X-Smimp-Sender' "mail/.Other/new/$n.eml" || false
		mimeparse "mail/.Other/new/$n.eml" 2 part >/dev/null
		cmp "$f" part
	done
}

@test "fetch --mime: bytes that do not verify never read as a mail header: a notice written by smimp, X-Smimp-Verified: no, with the bytes attached and kept in .sealed" {
	# What any sender can have relayed: an age header, which is all a
	# server checks, then bytes of its choosing that mail readers take
	# for header fields: a trusted boss, verified.
	seal -s good -o good.age msg
	sed -n '1,/^--- /p' good.age >forged.age
	printf 'X-Pad: 0123456789\nFrom: boss@example.org\nSubject: wire the money\nX-Smimp-Verified: yes\nX-Smimp-Sender: boss@example.org\nX-Smimp-Tier: trusted\n\nPlease wire it today.\n' >>forged.age
	p=srv/smimp/v1/mailbox
	mkdir -p $p
	cp forged.age $p/1
	printf '[{"id":1,"from":"mallory@example.org","message_id":"m1@example.org","size":1,"received":"2026-11-24T22:00:00Z"}]' >$p/.list
	serve_lies
	run -0 --separate-stderr fetch_bob --mime
	[ "$stderr" = "smimp-fetch: 1 fetched: 0 to the inbox, 1 to Other, 0 dropped" ]
	# mblaze lists the folder: no boss, nothing said verified.
	export MBLAZE="$PWD/mblaze"
	mkdir "$MBLAZE"
	: >"$MBLAZE/seq"
	run -0 bash -c 'mlist mail/.Other | mscan -f "%f|%S"'
	[ "$output" = "not verified|Not verified: a message that did not check out" ]
	f=$(mlist mail/.Other)
	[ "$(mhdr -h x-smimp-verified "$f")" = no ]
	[ -z "$(mhdr -h x-smimp-sender "$f")" ]
	[ -z "$(mhdr -h x-smimp-tier "$f")" ]
	n=$(b2sum -l 128 forged.age | cut -c1-32)
	[ "$f" = "mail/.Other/new/$n.eml" ]
	[ "$(ls mail/.Other/new)" = "$n.eml" ]
	cmp forged.age mail/.sealed/$n.smimp
	# Every header smimp's; mblaze and Python read the same ones.
	mimeparse "$f" 2 part >parsed
	[ "$(names parsed)" = "From To Subject Date Message-ID X-Smimp-Verified MIME-Version Content-Type " ]
	grep -qx 'H From: not verified <unverified@smimp.invalid>' parsed
	grep -qx 'From: "not verified" <unverified@smimp.invalid>' "$f"
	grep -qx 'H To: bob@example.net' parsed
	grep -qx 'H Subject: Not verified: a message that did not check out' parsed
	grep -qx "H Message-ID: <$n@smimp.invalid>" parsed
	grep -qx 'H X-Smimp-Verified: no' parsed
	grep -qx "P 2 application/octet-stream base64 attachment $n.smimp $(stat -c %s forged.age) .*" parsed
	cmp forged.age part
	# Fetched again: filed once.
	run -0 --separate-stderr fetch_bob --mime
	[ "$stderr" = "smimp-fetch: 1 fetched: 0 to the inbox, 0 to Other, 0 dropped, 1 filed before" ]
	[ "$(ls mail/.Other/new)" = "$n.eml" ]
}

# The recipients, subject, thread and reply id of a sealed message, as
# its reader RDR (alice or bob) sees them: "to|cc|subject|thread|reply".
said() {
	SMIMP_HOME="$BATS_TEST_TMPDIR/${1}home" smimp-open -q -i "$1.key" --json "$2" |
		jq -r '[(.to | map(.address) | join(",")), (.cc | map(.address) | join(",")), .subject, .thread_id, .in_reply_to] | join("|")'
}

@test "fetch --mime through a lying server of one's own: its signed bounce notice with control bytes in every field is written as printable lines, one header each" {
	p=srv/smimp/v1
	mkdir -p $p/mailbox
	printf '{"domain":"example.net","server_key":"%s"}' "$("$SMIMP_BUILD/t/bounce" key)" >$p/meta
	mid=$'m9@example.net\r=?x?='
	rcpts=$'bob\e]0;x\a@example.org,carol@example.org'
	reason=$'evil said: \e[2J\rX-Injected: yes\x7f'" $(printf 'word%.0s ' $(seq 20))end"
	printf 'smimp-bounce/1\nserver: example.net\nmessage-id: %s\nrecipients: %s\ndate: 2026-11-27T09:00:00Z\nreason: %s\n' \
		"$mid" "$rcpts" "$reason" | "$SMIMP_BUILD/t/bounce" sign >$p/mailbox/1
	printf '[{"id":1,"from":"server:example.net","message_id":"bounce:1","size":1,"received":"2026-11-27T09:00:00Z"}]' >$p/mailbox/.list
	serve_lies
	run -0 --separate-stderr fetch_bob --mime
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	eml=$(ls mail/new)
	cmp "mail/.sealed/${eml%.eml}.smimp" $p/mailbox/1
	id=$(blake "smimp/1 mime-bounce-id|example.net|$mid|$rcpts|2026-11-27T09:00:00Z|$reason|")
	orig=$(blake "smimp/1 mime-id|$mid")
	{
		bounce_head example.net bob@example.net 'm9@example.net?=_x?=' 2026-11-27T09:00:00Z "$id" "<$orig@smimp.invalid>"
		printf 'Not delivered to: %s\n' 'bob?]0;x?@example.org' carol@example.org
		echo 'Reason: evil said: ?[2J?X-Injected: yes? word word word word word word word'
		echo '  word word word word word word word word word word word word word end'
		bounce_tail example.net
	} >want
	diff want "mail/new/$eml"
	! LC_ALL=C grep -q '[^ -~]' "mail/new/$eml" || false
	mimeparse "mail/new/$eml" >/dev/null
	# Not in a notice's form (a field missing), though signed: as it came.
	printf 'smimp-bounce/1\nserver: example.net\nmessage-id: m8@example.net\ndate: 2026-11-27T09:00:00Z\nreason: x\n' |
		"$SMIMP_BUILD/t/bounce" sign >$p/mailbox/2
	printf '[{"id":2,"from":"server:example.net","message_id":"bounce:2","size":1,"received":"2026-11-27T09:00:00Z"}]' >$p/mailbox/.list
	run -0 --separate-stderr fetch_bob --mime
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	[ "$(ls mail/new | wc -l)" -eq 2 ]
	cmp "mail/new/$(ls mail/new | grep -v '\.eml$')" $p/mailbox/2
}

@test "--reply to a MIME file or a sealed message: the sender, Re: once, the thread; --reply-all; one's own message; -r and -s beside it" {
	mkid carol carol@example.com
	trust_as "$BOBHOME" carol.pub known
	ALICEHOME="$BATS_TEST_TMPDIR/alicehome"
	trust_as "$ALICEHOME" bob.pub known
	trust_as "$ALICEHOME" carol.pub known
	SMIMP_HOME="$ALICEHOME" smimp-seal -i alice.key -r bob.pub -c carol.pub -s plans -o m.age msg
	id=$(open_bob -q --json m.age | jq -r .message_id)
	open_bob -q --mime -o m.eml m.age
	reply() { echo thanks | SMIMP_HOME="$BOBHOME" smimp-seal -i bob.key "$@"; }
	for f in m.eml m.age; do
		reply --reply "$f" -o r.age
		[ "$(said alice r.age)" = "alice@example.org||Re: plans|$id|$id" ]
		reply --reply "$f" --reply-all -o r.age
		[ "$(said alice r.age)" = "alice@example.org|carol@example.com|Re: plans|$id|$id" ]
	done
	# Re: once; -s wins; -r adds, each once.
	reply --reply m.eml -o r.age
	SMIMP_HOME="$ALICEHOME" smimp-open -q -i alice.key --mime -o r.eml r.age
	rid=$(grep '^X-Smimp-Message-Id: ' r.eml | cut -d' ' -f2)
	echo again | SMIMP_HOME="$ALICEHOME" smimp-seal -i alice.key --reply r.eml -o rr.age
	[ "$(said bob rr.age)" = "bob@example.net||Re: plans|$id|$rid" ]
	reply --reply m.eml -s "other words" -r alice@example.org -r carol@example.com -o r.age
	[ "$(said alice r.age)" = "alice@example.org,carol@example.com||other words|$id|$id" ]
	# Alice answering her own message writes to its recipients.
	echo more | SMIMP_HOME="$ALICEHOME" smimp-seal -i alice.key --reply m.age --reply-all -o own.age
	[ "$(said bob own.age)" = "bob@example.net|carol@example.com|Re: plans|$id|$id" ]
}

@test "--reply: a hostile subject comes back as it was, cut to 998 bytes; what is no message, or does not verify, is refused (3); usage errors (2)" {
	for s in '=?UTF-8?B?SGk=?= x' "$(printf 'ü%.0s' $(seq 499))"; do
		hostile seal alice.key alice.pub bob.pub "subject=$(hex "$s")" <msg >h.age
		open_bob -q --mime -o h.eml h.age
		for f in h.eml h.age; do
			echo ok | SMIMP_HOME="$BOBHOME" smimp-seal -i bob.key --reply $f -o r.age
			got=$(SMIMP_HOME="$BATS_TEST_TMPDIR/home" smimp-open -q --accept-unknown -i alice.key --json r.age | jq -r .subject) || true
			want="Re: $s"
			[ ${#s} -lt 400 ] || want="Re: $(printf 'ü%.0s' $(seq 497))"
			[ "$got" = "$want" ] || { echo "$f: $got"; false; }
		done
	done
	printf 'From: alice@example.org\nSubject: hi\n\nbody\n' >plain.eml
	run -3 --separate-stderr smimp-seal -i bob.key --reply plain.eml msg
	[ "$stderr" = "smimp-seal: not a message that smimp-open --mime wrote: no X-Smimp-Verified, -Sender, -Message-Id or -Thread-Id" ]
	sed 's/^X-Smimp-Verified: yes$/X-Smimp-Verified: no/' h.eml >no.eml
	run -3 --separate-stderr smimp-seal -i bob.key --reply no.eml msg
	[ "$stderr" = "smimp-seal: not a message that smimp-open --mime wrote: X-Smimp-Verified is not yes" ]
	sed 's/^X-Smimp-Sender: .*/X-Smimp-Sender: not an address/' h.eml >bad.eml
	run -3 --separate-stderr smimp-seal -i bob.key --reply bad.eml msg
	[ "$stderr" = "smimp-seal: not a message that smimp-open --mime wrote: a bad X-Smimp-Sender" ]
	cp h.age t.age
	flip t.age 400
	run -3 --separate-stderr smimp-seal -i bob.key --reply t.age -o out.age msg
	[[ "$stderr" == "smimp-seal: "* ]]
	[ ! -e out.age ]
	run -2 --separate-stderr smimp-seal -i bob.key --reply-all msg
	[ "$stderr" = "smimp-seal: --reply-all needs --reply FILE (see 'smimp-seal --help')" ]
	run -2 --separate-stderr smimp-seal -i bob.key --reply h.eml --thread x msg
	[ "$stderr" = "smimp-seal: --reply takes the thread from the message answered: no --thread or --in-reply-to with it (see 'smimp-seal --help')" ]
}

@test "through servers: bob answers a fetched message with --reply, alice answers back; mblaze and notmuch thread them" {
	smimp-seal -i alice.key -r bob@example.net -s "release 1.2 ready" -o m1.age msg 2>/dev/null
	SMIMP_HOME="$ALICEHOME" smimp-send -i alice.key m1.age >/dev/null
	fetch_until 1
	echo "congratulations" | SMIMP_HOME="$BOBHOME" smimp-seal -i bob.key --reply mail/new/*.eml |
		SMIMP_HOME="$BOBHOME" smimp-send -i bob.key >/dev/null
	# Alice's Maildir: her own copy of the first in .Sent, the answer.
	mkdir -p amail/.Sent/cur
	for _ in $(seq 50); do
		SMIMP_HOME="$ALICEHOME" smimp-fetch -q --mime -i alice.key -d amail
		[ -z "$(ls amail/new)" ] || break
		sleep 0.2
	done
	SMIMP_HOME="$ALICEHOME" smimp-open -q -i alice.key --mime m1.age >amail/.Sent/cur/m1.eml
	grep -qx 'Subject: Re: release 1.2 ready' amail/new/*.eml
	grep -qx 'X-Smimp-Tier: trusted' amail/new/*.eml
	echo "thanks" | SMIMP_HOME="$ALICEHOME" smimp-seal -i alice.key --reply amail/new/*.eml |
		SMIMP_HOME="$ALICEHOME" smimp-send -i alice.key >/dev/null
	fetch_until 1
	export MBLAZE="$PWD/mblaze"
	mkdir "$MBLAZE"
	: >"$MBLAZE/seq"
	# mthread: the answer under the first, one level down.
	run -0 bash -c 'mlist amail amail/.Sent | mthread | mscan -f "%i%s|%f"'
	[ "$output" = "$(printf 'release 1.2 ready|alice@example.org\n Re: release 1.2 ready|bob@example.net')" ]
	run -0 bash -c 'mlist mail | mthread | mscan -f "%i%s|%f"'
	[ "$output" = "$(printf 'release 1.2 ready|alice@example.org\n Re: release 1.2 ready|alice@example.org')" ]
	# notmuch: one thread of two messages on each side.
	for d in amail mail; do
		printf '[database]\npath=%s\n[new]\ntags=new\nignore=.sealed\n' "$PWD/$d" >nm-$d.conf
		NOTMUCH_CONFIG="$PWD/nm-$d.conf" notmuch new >/dev/null 2>&1
		[ "$(NOTMUCH_CONFIG="$PWD/nm-$d.conf" notmuch count '*')" -eq 2 ]
		[ "$(NOTMUCH_CONFIG="$PWD/nm-$d.conf" notmuch count --output=threads '*')" -eq 1 ]
	done
}

# restart_org CMD...: example.org's server stopped, CMD run, started again.
restart_org() {
	kill -TERM "$(cat org.pid)"
	for _ in $(seq 150); do kill -0 "$(cat org.pid)" 2>/dev/null || break; sleep 0.1; done
	"$@"
	start org example.org "$ORG"
}

@test "through servers: a bounce under fetch --mime is a plain text message from alice's server, threaded under what she sent, filed once" {
	head -c 3000 /dev/urandom | smimp-seal -i alice.key -r bob@example.net -s "too big" -o m.age 2>/dev/null
	mid=$(SMIMP_HOME="$ALICEHOME" smimp-send -i alice.key m.age)
	wait_for org.log "bounced $mid to alice@example.org"
	afetch() { SMIMP_HOME="$ALICEHOME" smimp-fetch -i alice.key "$@"; }
	restart_org store_copy org org.before
	run -0 --separate-stderr afetch -d amail --mime
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	eml=$(ls amail/new)
	[[ "$eml" =~ ^[0-9a-f]{32}\.eml$ ]]
	# The notice as it came is kept where sealed originals are.
	notice=amail/.sealed/${eml%.eml}.smimp
	[ "$(head -1 "$notice")" = smimp-bounce/1 ]
	[ -z "$(ls amail/tmp)" ]
	[ ! -e amail/.smimp-pending ]
	d=$(sed -n 's/^date: //p' "$notice")
	reason='example.net answered HTTP 507; example.net said: quota exceeded'
	grep -qx "reason: $reason" "$notice"
	grep -qx "recipients: bob@example.net" "$notice"
	id=$(blake "smimp/1 mime-bounce-id|example.org|$mid|bob@example.net|$d|$reason|")
	{
		bounce_head example.org alice@example.org "$mid" "$d" "$id" "<$mid>"
		printf 'Not delivered to: bob@example.net\nReason: %s\n' "$reason"
		bounce_tail example.org
	} >want
	diff want "amail/new/$eml"
	mimeparse "amail/new/$eml" >/dev/null
	# mblaze shows it, and threads it under the message alice sent.
	mkdir -p amail/.Sent/cur
	SMIMP_HOME="$ALICEHOME" smimp-open -q -i alice.key --mime m.age >amail/.Sent/cur/m.eml
	export MBLAZE="$PWD/mblaze"
	mkdir "$MBLAZE"
	: >"$MBLAZE/seq"
	run -0 bash -c 'mlist amail amail/.Sent | mthread | mscan -f "%i%s|%f"'
	[ "$output" = "$(printf 'too big|alice@example.org\n Undelivered: %s|example.org mail server' "$mid")" ]
	shown=$(mlist amail | mshow 2>&1)
	grep -qx "Reason: $reason" <<<"$shown"
	grep -qx 'From: "example.org mail server" <postmaster@example.org>' <<<"$shown"
	# Nothing to answer: no smimp sender.
	run -3 --separate-stderr smimp-seal -i alice.key --reply "amail/new/$eml" </dev/null
	[ "$stderr" = "smimp-seal: not a message that smimp-open --mime wrote: a bad X-Smimp-Sender" ]
	# Fetched again: nothing new.
	run -0 --separate-stderr afetch -d amail --mime
	[ "$stderr" = "smimp-fetch: 0 fetched: 0 to the inbox, 0 to Other, 0 dropped" ]
	# The acknowledgement lost: the notice kept says it was filed.
	restart_org store_copy org.before org
	run -0 --separate-stderr afetch -d amail --mime
	[ "$stderr" = "smimp-fetch: 1 fetched: 0 to the inbox, 0 to Other, 0 dropped, 1 filed before" ]
	[ "$(ls amail/new)" = "$eml" ]
	# Cut short after the MIME form was filed, before the notice was
	# kept; a reader moved it to cur/: filed once, the notice kept now.
	rm "$notice"
	mv "amail/new/$eml" "amail/cur/$eml:2,S"
	echo "$eml" >amail/.smimp-pending
	restart_org store_copy org.before org
	run -0 --separate-stderr afetch -d amail --mime
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	[ -z "$(ls amail/new)" ]
	[ "$(ls amail/cur)" = "$eml:2,S" ]
	[ "$(head -1 "$notice")" = smimp-bounce/1 ]
	# Without --mime, the notice is filed as it came, as before.
	restart_org store_copy org.before org
	run -0 --separate-stderr afetch -d raw
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	cmp raw/new/* "$notice"
	[ ! -e raw/.sealed ] || [ -z "$(ls raw/.sealed)" ]
}
