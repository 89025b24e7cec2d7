#!/usr/bin/env bats
# smimp-send and smimp-fetch against a real smimpd over HTTPS on a
# loopback port chosen at run time.

load helper

setup() {
	common_setup
	make_cert
	local_users alice bob
	PORT=$(free_port)
	serve
	export SMIMP_RESOLVE="example.org=127.0.0.1:$PORT" SMIMP_CACERT="$PWD/cert.pem"
	export BOBHOME="$BATS_TEST_TMPDIR/bobhome"
	URL="https://127.0.0.1:$PORT/smimp"
}

# serve [FLAGS]: the server on $PORT, waited for.
serve() {
	smimpd -d --data data --domain example.org --listen "127.0.0.1:$PORT" \
		--cert cert.pem --key key.pem "$@" 2>server.log &
	echo $! >pid
	server_up "$PORT"
}

# stop_server: the server stopped, waited for.
stop_server() {
	kill -TERM "$(cat pid)"
	for _ in $(seq 150); do kill -0 "$(cat pid)" 2>/dev/null || break; sleep 0.1; done
}

# The same server again, without the per-sender rate limit.
serve_unlimited() {
	stop_server
	printf 'rate-sender 0\n' >norate.conf
	serve -f norate.conf
}

teardown() {
	kill -TERM "$(cat "$BATS_TEST_TMPDIR/pid")" 2>/dev/null || true
	for _ in $(seq 150); do kill -0 "$(cat "$BATS_TEST_TMPDIR/pid")" 2>/dev/null || break; sleep 0.1; done
	return 0
}

fetch_bob() { SMIMP_HOME="$BOBHOME" smimp-fetch -i bob.key -d mail "$@"; }

@test "seal | send, then fetch files by trust and acknowledges" {
	trust_as "$BOBHOME" alice.pub known
	run -0 --separate-stderr bash -c 'echo "build 42 failed" | smimp-seal -i alice.key -r bob.pub -t x-ci | smimp-send -i alice.key'
	[[ "$output" =~ ^[a-z2-7]{24}@example.org$ ]]
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	[ "$(ls mail/new | wc -l)" -eq 1 ]
	run -0 --separate-stderr bash -c 'SMIMP_HOME="$BOBHOME" smimp-open -i bob.key mail/new/*'
	[ "$output" = "build 42 failed" ]
	# Acknowledged: nothing comes a second time.
	run -0 --separate-stderr fetch_bob --json
	[ "$output" = "{\"fetched\":0,\"inbox\":0,\"other\":0,\"dropped\":0,\"again\":0,\"maildir\":\"mail\",\"introduced\":0,\"sent\":0}" ]
	! grep -q 'build 42' server.log || false
}

@test "the first example of smimp-fetch(1) and the README, run as written, opens every message fetched" {
	# Bob's default identity in the default home, ~/.config/smimp.
	export HOME="$BATS_TEST_TMPDIR/bob"
	unset SMIMP_HOME
	mkdir -p "$HOME/.config/smimp"
	chmod 700 "$HOME/.config" "$HOME/.config/smimp"
	cp bob.key "$HOME/.config/smimp/identity.key"
	cp bob.pub "$HOME/.config/smimp/identity.pub"
	smimp-trust add alice.pub --tier trusted >/dev/null
	for m in one two; do
		echo "$m" | smimp-seal -i alice.key -r bob.pub | smimp-send -i alice.key >/dev/null
	done
	example=$(mandoc -Tascii "$REPO/man/smimp-fetch.1" | col -b |
		sed -n '/^EXAMPLES/,/^SEE ALSO/s/^[[:space:]]*\$ \(smimp-fetch && .*\)/\1/p')
	[ -n "$example" ]
	grep -qF -- "$example" "$REPO/README.md"
	run -0 --separate-stderr bash -c "$example"
	[ "$(sort <<<"$output")" = "$(printf 'one\ntwo')" ]
}

@test "unknown senders go to Other, blocked ones are dropped" {
	echo one | smimp-seal -i alice.key -r bob.pub | smimp-send -i alice.key >/dev/null
	run -0 --separate-stderr fetch_bob
	[ "$(ls mail/.Other/new | wc -l)" -eq 1 ]
	SMIMP_HOME="$BOBHOME" smimp-trust set alice@example.org blocked >/dev/null
	echo two | smimp-seal -i alice.key -r bob.pub | smimp-send -i alice.key >/dev/null
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 1 fetched: 0 to the inbox, 0 to Other, 1 dropped" ]
	[ "$(find mail -type f | wc -l)" -eq 1 ]
}

@test "a message sent twice is stored once; several messages in one call" {
	echo a | smimp-seal -i alice.key -r bob.pub >a.age
	echo b | smimp-seal -i alice.key -r bob.pub >b.age
	run -0 --separate-stderr smimp-send -i alice.key a.age a.age b.age
	[ "${#lines[@]}" -eq 3 ]
	[ "${lines[0]}" = "${lines[1]}" ]
	trust_as "$BOBHOME" alice.pub known
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 2 fetched: 2 to the inbox, 0 to Other, 0 dropped" ]
}

@test "send failures: each reported, the others still sent" {
	mkid carol carol@example.org
	echo x | smimp-seal -i alice.key -r carol.pub >nobody.age
	echo y | smimp-seal -i alice.key -r bob.pub >ok.age
	echo z | smimp-seal -i bob.key -r alice.pub >notmine.age
	run -1 --separate-stderr smimp-send -i alice.key nobody.age ok.age missing.age
	[ "${#lines[@]}" -eq 1 ]
	grep -q "HTTP 404: unknown recipient" <<<"$stderr"
	grep -q "cannot open 'missing.age'" <<<"$stderr"
	run -3 --separate-stderr smimp-send -i alice.key notmine.age
	[ -z "$output" ]
}

@test "oversized messages get 413 and nothing is stored" {
	kill -TERM "$(cat pid)"; sleep 0.5
	smimpd -d --data data --domain example.org --listen "127.0.0.1:$PORT" \
		--cert cert.pem --key key.pem -f <(echo "max-message 2000") 2>>server.log &
	echo $! >pid
	for _ in $(seq 150); do curl -s --cacert cert.pem "$URL/version" >/dev/null && break; sleep 0.1; done
	head -c 5000 /dev/urandom | smimp-seal -i alice.key -r bob.pub >big.age
	run -1 --separate-stderr smimp-send -i alice.key big.age
	grep -q "HTTP 413: message too large" <<<"$stderr"
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 0 fetched: 0 to the inbox, 0 to Other, 0 dropped" ]
}

@test "unsigned, forged, replayed and foreign mailbox requests are refused" {
	echo secret | smimp-seal -i alice.key -r bob.pub | smimp-send -i alice.key >/dev/null
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "$URL/v1/mailbox"
	[ "${output//$'\n'/}" = '{"error":"missing or malformed request signature"} 401' ]
	# Alice signs, but the mailbox she lists is hers: bob's message is not there.
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key GET example.org /smimp/v1/mailbox)
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" "$URL/v1/mailbox"
	[ "${output//$'\n'/}" = '[] 200' ]
	# The same signed request again is a replay.
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" "$URL/v1/mailbox"
	[ "${output//$'\n'/}" = '{"error":"replayed request"} 401' ]
	# Bob's message by id, asked for by alice: not found.
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key GET example.org /smimp/v1/mailbox/1)
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" "$URL/v1/mailbox/1"
	[ "${output//$'\n'/}" = '{"error":"no such message"} 404' ]
	# A signature for another path does not open this one.
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key GET example.org /smimp/v1/mailbox/2)
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" "$URL/v1/mailbox/1"
	[ "${output//$'\n'/}" = '{"error":"bad signature"} 401' ]
	# A key that is not the signer's.
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key GET example.org /smimp/v1/mailbox | sed 's/alice@/bob@/')
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" "$URL/v1/mailbox"
	[ "${output//$'\n'/}" = '{"error":"bad signature"} 401' ]
	# Malformed bodies and headers: 4xx, and the server still answers.
	run -0 curl -s --cacert cert.pem -o /dev/null -w '%{http_code}' -X POST --data-binary @/dev/urandom --max-filesize 1 "$URL/v1/messages" -H 'Smimp-Signer: ??' --max-time 5 || true
	run -0 curl -s --cacert cert.pem -w '%{http_code}' -o /dev/null "$URL/version"
	[ "$output" = 200 ]
}

@test "a fetch that cannot file a message does not acknowledge it" {
	trust_as "$BOBHOME" alice.pub known
	echo keep | smimp-seal -i alice.key -r bob.pub >m.age
	smimp-send -i alice.key m.age >/dev/null
	# A directory stands where its file in tmp/ (named by its BLAKE2b)
	# goes: the message cannot be filed, so it stays on the server.
	name=$(b2sum -l 128 m.age | cut -c1-32).smimp
	mkdir -p "mail/tmp/$name/x" mail/new mail/cur
	run -1 --separate-stderr fetch_bob
	[ "${stderr##*$'\n'}" = "smimp-fetch: cannot create 'mail/tmp/$name': Is a directory" ]
	[ -z "$(ls mail/new)" ]
	rm -r "mail/tmp/$name"
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
}

@test "plain HTTP and unknown certificates are refused unless allowed" {
	echo x | smimp-seal -i alice.key -r bob.pub >m.age
	SMIMP_CACERT= run -1 --separate-stderr smimp-send -i alice.key m.age
	grep -qi "certificate" <<<"$stderr"
	[ -z "$output" ]
	# Plain HTTP to the HTTPS port, allowed for the domain: no answer.
	run -75 --separate-stderr smimp-send --allow-http example.org -i alice.key m.age
	# A server whose discovery names a plain-HTTP base is refused.
	run -0 curl -s --cacert cert.pem "https://127.0.0.1:$PORT/.well-known/smimp.txt"
	[[ "$output" == https://* ]]
}

@test "submissions past the sender's rate limit get 429 with Retry-After" {
	kill -TERM "$(cat pid)"; sleep 0.5
	smimpd -d --data data --domain example.org --listen "127.0.0.1:$PORT" \
		--cert cert.pem --key key.pem -f <(echo "rate-sender 3") 2>>server.log &
	echo $! >pid
	for _ in $(seq 150); do curl -s --cacert cert.pem "$URL/version" >/dev/null && break; sleep 0.1; done
	for i in 1 2 3 4; do echo "$i" | smimp-seal -i alice.key -r bob.pub >m$i.age; done
	run -0 --separate-stderr smimp-send -i alice.key m1.age m2.age m3.age
	run -75 --separate-stderr smimp-send -i alice.key m4.age
	grep -q "HTTP 429: rate limit" <<<"$stderr"
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key POST example.org /smimp/v1/messages m4.age \
		'Smimp-To: bob@example.org' 'Smimp-Message-Id: x1')
	run -0 curl -s -D - -o /dev/null --cacert cert.pem "${h[@]/#/-H}" --data-binary @m4.age "$URL/v1/messages"
	grep -qi '^retry-after: [0-9]' <<<"$output"
	# Bob is not limited by alice's sending.
	echo hi | smimp-seal -i bob.key -r alice.pub | smimp-send -i bob.key
}

@test "an invitation registers the holder's own key, once, for its address only" {
	run -0 smimpd --data data --domain example.org invite carol@example.org
	tok=$output
	[[ "$tok" =~ ^[A-Za-z0-9_-]{32}$ ]]
	run -0 smimpd --data data invites
	[[ "$output" =~ ^carol@example.org\ expires\ 20 ]]
	run -1 --separate-stderr smimpd --data data --domain example.org invite carol@example.net
	[ "$stderr" = "smimpd: carol@example.net is not an address of example.org" ]
	# Someone else's key for the address cannot use the token.
	mkid mallory carol@example.org
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key POST example.org /smimp/v1/register mallory.pub \
		"Smimp-Invite: $tok")
	run -0 curl -s -o /dev/null -w '%{http_code}' --cacert cert.pem "${h[@]/#/-H}" \
		--data-binary @mallory.pub "$URL/v1/register"
	[ "$output" = 401 ]
	# A wrong token (its first character changed), or the token for
	# another address, is refused.
	local other=x
	[ "${tok:0:1}" != x ] || other=y
	run -1 --separate-stderr smimp-keygen -i mallory.key --redeem - <<<"$other${tok:1}"
	[ "$stderr" = "smimp-keygen: registering: HTTP 403: invalid or expired invitation" ]
	run -0 smimpd --data data --domain example.org invite dave@example.org
	run -1 --separate-stderr smimp-keygen -i mallory.key --redeem - <<<"$output"
	[ "$stderr" = "smimp-keygen: registering: HTTP 403: invalid or expired invitation" ]
	# The holder makes a key and registers it in one go, the token in a
	# file (never on the command line, where every user sees it).
	(umask 077; echo "$tok" >tok)
	run -0 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/carolhome" \
		smimp-keygen -u carol@example.org --no-passphrase --redeem-file tok
	[[ "$stderr" == *"registered carol@example.org with its server ($output)"* ]]
	run -0 signed_get alice.key example.org "$URL/v1/users/carol@example.org/log"
	[ "$output" = "$(cat carolhome/identity.pub)" ]
	# Used up.
	run -1 --separate-stderr smimp-keygen -i mallory.key --redeem - <<<"$tok"
	[ "$stderr" = "smimp-keygen: registering: HTTP 403: invalid or expired invitation" ]
	run -0 smimpd --data data invites
	[[ "$output" =~ ^dave@example.org ]]
	[ "${#lines[@]}" -eq 1 ]
	# An address that has an account keeps it; the invitation stays.
	run -2 --separate-stderr smimp-keygen -i mallory.key -u x@example.org --redeem - <<<"$tok"
	[ "$stderr" = "smimp-keygen: -i names an existing key: no -u with it (see 'smimp-keygen --help')" ]
	run -0 smimpd --data data --domain example.org invite bob@example.org
	btok=$(smimpd --data data --domain example.org invite bob@example.org)
	run -1 --separate-stderr smimp-keygen -i bob.key --redeem - <<<"$btok"
	[ "$stderr" = "smimp-keygen: registering: HTTP 409: the address has an account already" ]
	run -0 smimpd --data data invites
	[ "$(grep -c '^bob@example.org' <<<"$output")" -eq 2 ]
	run -0 signed_get alice.key example.org "$URL/v1/users/bob@example.org/log"
	[ "$output" = "$(cat bob.pub)" ]
}

@test "deluser voids the address's pending invitations: a token kept from before cannot take the address back" {
	tok=$(smimpd --data data --domain example.org invite bob@example.org)
	run -0 smimpd --data data --domain example.org deluser bob@example.org
	run -0 smimpd --data data invites
	[ "$output" = "" ]
	run -1 --separate-stderr smimp-keygen -i bob.key --redeem - <<<"$tok"
	[ "$stderr" = "smimp-keygen: registering: HTTP 403: invalid or expired invitation" ]
	run -0 smimpd --data data users
	[ "$output" = "alice@example.org $(smimp-keygen --fingerprint alice.pub)" ]
	# An invitation made after the deletion registers as any other.
	tok=$(smimpd --data data --domain example.org invite bob@example.org)
	run -0 --separate-stderr smimp-keygen -i bob.key --redeem - <<<"$tok"
}

@test "the client config file supplies resolve and cacert; flags and environment win" {
	mkdir -p "$SMIMP_HOME"
	printf '# test servers\nresolve %s\n\ncacert %s\n' "$SMIMP_RESOLVE" "$SMIMP_CACERT" >"$SMIMP_HOME/config"
	unset SMIMP_RESOLVE SMIMP_CACERT
	echo hi | smimp-seal -i alice.key -r bob.pub >m.age
	run -0 --separate-stderr smimp-send -i alice.key m.age
	[[ "$output" =~ @example.org$ ]]
	# A flag overrides the file: this one points at a closed port.
	run -75 --separate-stderr smimp-send -i alice.key --resolve example.org=127.0.0.1:1 m.age
	# SMIMP_CONFIG names another file; its errors carry file and line.
	printf 'resolve example.org=127.0.0.1:1\nbogus yes\n' >other.conf
	run -2 --separate-stderr env SMIMP_CONFIG=other.conf smimp-send -i alice.key m.age
	[ "$stderr" = "smimp-send: other.conf:2: unknown setting 'bogus'" ]
	printf 'cacert\n' >other.conf
	run -2 --separate-stderr env SMIMP_CONFIG=other.conf smimp-fetch -i bob.key -d mail
	[ "$stderr" = "smimp-fetch: other.conf:1: cacert needs a value" ]
	[ ! -e mail ]
	# A NUL byte would hide the lines after it: refused, with its line.
	printf 'resolve example.org=127.0.0.1:1\ncacert /nonexistent\0\nbogus yes\n' >other.conf
	run -2 --separate-stderr env SMIMP_CONFIG=other.conf smimp-send -i alice.key m.age
	[ "$stderr" = "smimp-send: other.conf:2: a NUL byte in the line" ]
	# The same where only the identity is looked for in it.
	printf '\0\nidentity /nonexistent/x.key\n' >other.conf
	run -2 --separate-stderr env SMIMP_CONFIG=other.conf smimp-seal -r bob.pub m.age
	[ "$stderr" = "smimp-seal: other.conf:1: a NUL byte in the line" ]
}

@test "message ids that could break headers, JSON or file names are refused" {
	echo hi | smimp-seal -i alice.key -r bob.pub >m.age
	for mid in 'x","from":"ceo@example.org' 'a b' '../../etc' ''; do
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key POST example.org /smimp/v1/messages m.age \
			'Smimp-To: bob@example.org' "Smimp-Message-Id: $mid")
		run -0 curl -s -o body -w '%{http_code}' --cacert cert.pem "${h[@]/#/-H}" \
			--data-binary @m.age "$URL/v1/messages"
		[ "$output" = 400 ]
		grep -q 'needs Smimp-To, Smimp-Message-Id and a body' body
	done
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key GET example.org /smimp/v1/mailbox)
	run -0 curl -s --cacert cert.pem "${h[@]/#/-H}" "$URL/v1/mailbox"
	[ "$output" = "[]" ]
}

@test "a mailbox longer than one listing is fetched whole" {
	serve_unlimited
	# Sealed in one process: a smimp-seal for each took most of the time.
	"$SMIMP_BUILD/t/sealmany" alice.key alice.pub 1003 m bob.pub
	[ "$(ls m*.age | wc -l)" -eq 1003 ]
	run -0 --separate-stderr smimp-send -i alice.key m*.age
	[ "${#lines[@]}" -eq 1003 ]
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key GET example.org /smimp/v1/mailbox)
	run -0 curl -s --cacert cert.pem "${h[@]/#/-H}" "$URL/v1/mailbox"
	[ "$(grep -o '"id":' <<<"$output" | wc -l)" -eq 1000 ]
	trust_as "$BOBHOME" alice.pub known
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 1003 fetched: 1003 to the inbox, 0 to Other, 0 dropped" ]
	[ "$(ls mail/new | wc -l)" -eq 1003 ]
}

@test "a Maildir named through a symbolic link is filed into, and locked, where the link points" {
	trust_as "$BOBHOME" alice.pub known
	echo hi | smimp-seal -i alice.key -r bob.pub | smimp-send -i alice.key >/dev/null
	mkdir -p real
	ln -s real mail
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	[ -L mail ]
	[ "$(ls real/new | wc -l)" -eq 1 ]
	# The lock is the directory's, whichever name it was reached by.
	flock real sleep 3 &
	holder=$!
	sleep 0.5
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: another smimp-fetch is filing into 'mail': it fetches the mailbox" ]
	wait "$holder"
}

@test "two fetches into one Maildir at once: one files, the other says so and exits 0; each message once" {
	serve_unlimited
	trust_as "$BOBHOME" alice.pub known
	"$SMIMP_BUILD/t/sealmany" alice.key alice.pub 40 m bob.pub
	smimp-send -i alice.key m*.age >/dev/null
	mkdir -p mail
	# The lock held (as a fetch holds it): a second fetch does nothing.
	flock mail sleep 3 &
	holder=$!
	sleep 0.5
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: another smimp-fetch is filing into 'mail': it fetches the mailbox" ]
	run -0 --separate-stderr fetch_bob --json
	[ "$output" = '{"busy":true,"maildir":"mail"}' ]
	[ -z "$(ls mail/new)" ]
	wait "$holder"
	# Two at once, for real: each message filed once, all acknowledged.
	fetch_bob >a.out 2>&1 &
	a=$!
	fetch_bob >b.out 2>&1 &
	b=$!
	wait "$a"
	wait "$b"
	fetch_bob -q
	[ "$(ls mail/new | wc -l)" -eq 40 ]
	[ "$(SMIMP_HOME="$BOBHOME" smimp-open -q -i bob.key mail/new/* | sort | uniq -d | wc -l)" -eq 0 ]
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key GET example.org /smimp/v1/mailbox)
	run -0 curl -s --cacert cert.pem "${h[@]/#/-H}" "$URL/v1/mailbox"
	[ "$output" = "[]" ]
}

@test "a message that comes again after it was filed is filed once" {
	trust_as "$BOBHOME" alice.pub known
	echo once | smimp-seal -i alice.key -r bob.pub >m.age
	smimp-send -i alice.key m.age >/dev/null
	# The server's state before the fetch, to bring back as if the
	# acknowledgement had never reached its disk.
	snapshot() { stop_server; store_copy data data.before; serve; }
	lose_ack() { stop_server; store_copy data.before data; serve; }
	snapshot
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	# Sent again after the acknowledgement: the server stores nothing.
	smimp-send -i alice.key m.age >/dev/null
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 0 fetched: 0 to the inbox, 0 to Other, 0 dropped" ]
	# The acknowledgement lost: the server has it again.
	lose_ack
	run -0 --separate-stderr fetch_bob --json
	[ "$output" = "{\"fetched\":1,\"inbox\":0,\"other\":0,\"dropped\":0,\"again\":1,\"maildir\":\"mail\",\"introduced\":0,\"sent\":0}" ]
	[ "$(ls mail/new | wc -l)" -eq 1 ]
	# Even once the reader has moved it out of new/, if the fetch that
	# filed it was cut short before acknowledging.
	mv mail/new/* mail/cur/
	name=$(ls mail/cur)
	echo "$name" >mail/.smimp-pending
	lose_ack
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 1 fetched: 0 to the inbox, 0 to Other, 0 dropped, 1 filed before" ]
	[ "$(find mail -name '*.smimp' | wc -l)" -eq 1 ]
	[ ! -e mail/.smimp-pending ]
}

@test "smimp-fetch killed with SIGKILL at any moment loses and duplicates nothing" {
	serve_unlimited
	trust_as "$BOBHOME" alice.pub known
	for i in $(seq 60); do echo "kill $i" | smimp-seal -i alice.key -r bob.pub >"k$i.age"; done
	smimp-send -i alice.key k*.age >/dev/null
	for round in $(seq 40); do
		SMIMP_HOME="$BOBHOME" smimp-fetch -q -i bob.key -d mail 2>/dev/null &
		sleep "0.0$((RANDOM % 10))"
		kill -KILL $! 2>/dev/null || true
		wait $! 2>/dev/null || true
	done
	run -0 --separate-stderr fetch_bob
	[ "$(ls mail/new | wc -l)" -eq 60 ]
	for f in mail/new/*; do SMIMP_HOME="$BOBHOME" smimp-open -i bob.key "$f"; done | sort >got
	seq 60 | sed 's/^/kill /' | sort >want
	diff got want
	[ -z "$(ls mail/tmp)" ]
}

@test "smimp-fetch --mime killed with SIGKILL at any moment loses and duplicates nothing: each message once as MIME, its original once in .sealed" {
	serve_unlimited
	trust_as "$BOBHOME" alice.pub known
	for i in $(seq 60); do echo "kill $i" | smimp-seal -i alice.key -r bob.pub -s "k $i" >"k$i.age"; done
	smimp-send -i alice.key k*.age >/dev/null
	for round in $(seq 40); do
		SMIMP_HOME="$BOBHOME" smimp-fetch -q --mime -i bob.key -d mail 2>/dev/null &
		sleep "0.0$((RANDOM % 10))"
		kill -KILL $! 2>/dev/null || true
		wait $! 2>/dev/null || true
	done
	run -0 --separate-stderr fetch_bob --mime
	[ "$(ls mail/new | grep -c '\.eml$')" -eq 60 ]
	[ "$(ls mail/new | wc -l)" -eq 60 ]
	[ "$(ls mail/.sealed | wc -l)" -eq 60 ]
	for f in mail/new/*.eml; do
		[ -f "mail/.sealed/$(basename "$f" .eml).smimp" ]
		sed -n 's/^Subject: k //p' "$f"
	done | sort >got
	seq 60 | sort >want
	diff got want
	[ -z "$(ls mail/tmp)" ]
	[ ! -e mail/.smimp-pending ]
}

@test "fetch --mime: a message that comes again is filed once, also when a fetch was cut short between its two files and a reader moved the first" {
	trust_as "$BOBHOME" alice.pub known
	echo once | smimp-seal -i alice.key -r bob.pub -s once >m.age
	smimp-send -i alice.key m.age >/dev/null
	snapshot() { stop_server; store_copy data data.before; serve; }
	lose_ack() { stop_server; store_copy data.before data; serve; }
	snapshot
	run -0 --separate-stderr fetch_bob --mime
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	eml=$(ls mail/new)
	name=${eml%.eml}.smimp
	[ -f "mail/.sealed/$name" ]
	# The acknowledgement lost: its original says it was filed.
	lose_ack
	run -0 --separate-stderr fetch_bob --mime
	[ "$stderr" = "smimp-fetch: 1 fetched: 0 to the inbox, 0 to Other, 0 dropped, 1 filed before" ]
	# Cut short after the MIME form was filed, before the original was
	# kept; a reader moved it to cur/ meanwhile: filed once, the
	# original kept now.
	rm "mail/.sealed/$name"
	mv "mail/new/$eml" "mail/cur/$eml:2,S"
	echo "$eml" >mail/.smimp-pending
	lose_ack
	run -0 --separate-stderr fetch_bob --mime
	[ "$stderr" = "smimp-fetch: 1 fetched: 1 to the inbox, 0 to Other, 0 dropped" ]
	[ -z "$(ls mail/new)" ]
	[ "$(ls mail/cur)" = "$eml:2,S" ]
	[ -f "mail/.sealed/$name" ]
	# Cut short before the MIME form was renamed into place: filed now.
	rm "mail/.sealed/$name" "mail/cur/$eml:2,S"
	echo "$eml" >mail/.smimp-pending
	echo partial >"mail/tmp/$eml"
	lose_ack
	run -0 --separate-stderr fetch_bob --mime
	[ "$(ls mail/new)" = "$eml" ]
	grep -qx 'Subject: once' "mail/new/$eml"
	[ -f "mail/.sealed/$name" ]
	[ -z "$(ls mail/tmp)" ]
}

@test "batch acknowledgements: only the owner's go, malformed JSON gets 400" {
	echo a | smimp-seal -i alice.key -r bob.pub | smimp-send -i alice.key >/dev/null
	ack() {	# ack KEY BODY
		printf '%s' "$2" >ackbody
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" "$1" POST example.org /smimp/v1/mailbox/ack ackbody)
		curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" \
			--data-binary @ackbody "$URL/v1/mailbox/ack"
	}
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key GET example.org /smimp/v1/mailbox)
	id=$(curl -s --cacert cert.pem "${h[@]/#/-H}" "$URL/v1/mailbox" |
		sed -n 's/.*"id":\([0-9]*\).*/\1/p')
	[ -n "$id" ]
	run -0 ack alice.key "[$id]"
	[ "$output" = '{"acknowledged":0}
 200' ]
	for bad in 'not json' '[1.5]' '{"id":1}' '[-1]' '["1"]' "[$(seq -s, 1001)]" ''; do
		run -0 ack bob.key "$bad"
		[ "${output: -3}" = 400 ]
	done
	run -0 ack bob.key "[$id,999999]"
	[ "$output" = '{"acknowledged":1}
 200' ]
	run -0 --separate-stderr fetch_bob --json
	[[ "$output" == '{"fetched":0,'* ]]
}

@test "smimpd killed with SIGKILL under load: every acknowledged message is kept, none twice" {
	serve_unlimited
	trust_as "$BOBHOME" alice.pub known
	for i in $(seq 300); do echo "load $i" | smimp-seal -i alice.key -r bob.pub >"l$i.age"; done
	# Three senders at once; the server dies under them.
	for part in 1 2 3; do
		smimp-send -i alice.key $(seq -f "l%g.age" "$part" 3 300) >"acked$part" 2>/dev/null &
	done
	until [ "$(cat acked1 acked2 acked3 | wc -l)" -ge 30 ]; do sleep 0.01; done
	kill -KILL "$(cat pid)"
	wait || true
	cat acked1 acked2 acked3 | sort >acked
	[ "$(wc -l <acked)" -lt 300 ]
	serve -f norate.conf
	# Every message acknowledged before the kill is there, once.
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" bob.key GET example.org /smimp/v1/mailbox)
	curl -s --cacert cert.pem "${h[@]/#/-H}" "$URL/v1/mailbox" |
		grep -o '"message_id":"[^"]*"' | cut -d'"' -f4 | sort >stored
	[ -z "$(comm -23 acked stored)" ]
	[ -z "$(uniq -d stored)" ]
	# Sending everything again stores each message once.
	run -0 --separate-stderr smimp-send -i alice.key l*.age
	[ "${#lines[@]}" -eq 300 ]
	run -0 --separate-stderr fetch_bob
	[ "$stderr" = "smimp-fetch: 300 fetched: 300 to the inbox, 0 to Other, 0 dropped" ]
	for f in mail/new/*; do SMIMP_HOME="$BOBHOME" smimp-open -i bob.key "$f"; done | sort >got
	seq 300 | sed 's/^/load /' | sort >want
	diff got want
}

@test "a 201 says what was stored: the message id and recipients, the address and fingerprint" {
	echo hi | smimp-seal -i alice.key -r bob.pub >m.age
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key POST example.org /smimp/v1/messages m.age \
		'Smimp-To: bob@example.org' 'Smimp-Message-Id: m201')
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @m.age "$URL/v1/messages"
	[ "${output//$'\n'/}" = '{"message_id":"m201","recipients":1} 201' ]
	tok=$(smimpd --data data --domain example.org invite carol@example.org)
	mkid carol carol@example.org
	mapfile -t h < <("$SMIMP_BUILD/t/signreq" carol.key POST example.org /smimp/v1/register carol.pub \
		"Smimp-Invite: $tok")
	run -0 curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @carol.pub "$URL/v1/register"
	[ "${output//$'\n'/}" = "{\"address\":\"carol@example.org\",\"fingerprint\":\"$(smimp-keygen --fingerprint carol.pub)\"} 201" ]
}

@test "a submission for another domain needs a stamp dated within 300 s of the server's clock" {
	mkid dave dave@example.invalid
	echo hi | smimp-seal -i alice.key -r dave.pub >m.age
	# submit DATE MID: m.age to dave, stamped by alice at DATE
	submit() {
		local s h
		s=$("$SMIMP_BUILD/t/peertool" stamp alice.key alice@example.org dave@example.invalid "$2" m.age "$1")
		mapfile -t h < <("$SMIMP_BUILD/t/signreq" alice.key POST example.org /smimp/v1/messages m.age \
			'Smimp-To: dave@example.invalid' "Smimp-Message-Id: $2" "Smimp-Stamps: example.invalid=$s" "Smimp-Stamp-Date: $1")
		curl -s --cacert cert.pem -w ' %{http_code}' "${h[@]/#/-H}" --data-binary @m.age "$URL/v1/messages"
	}
	run -0 submit "$(date -u -d '-400 seconds' +%Y-%m-%dT%H:%M:%SZ)" old1
	[ "${output//$'\n'/}" = '{"error":"delivery stamp does not verify"} 400' ]
	run -0 submit "$(date -u -d '+400 seconds' +%Y-%m-%dT%H:%M:%SZ)" ahead1
	[ "${output//$'\n'/}" = '{"error":"delivery stamp does not verify"} 400' ]
	run -0 submit "$(date -u -d '-200 seconds' +%Y-%m-%dT%H:%M:%SZ)" recent1
	[ "${output//$'\n'/}" = '{"message_id":"recent1","recipients":1} 201' ]
}

@test "an account removed and given to a new owner starts with an empty mailbox" {
	# One small (kept in its row), one large (a body file, or chunks).
	echo "for the old bob" | smimp-seal -i alice.key -r bob.pub | smimp-send -i alice.key >/dev/null
	head -c 100000 /dev/urandom | smimp-seal -i alice.key -r bob.pub | smimp-send -i alice.key >/dev/null
	[ "$(store_bodies data)" -gt 0 ]
	smimpd --data data deluser bob@example.org
	mkdir new
	smimp-keygen -u bob@example.org -o new/bob --no-passphrase >/dev/null 2>&1
	smimpd --data data --domain example.org adduser bob@example.org new/bob.pub
	run -0 --separate-stderr env SMIMP_HOME="$BOBHOME" smimp-fetch -i new/bob.key -d mail
	[ "$stderr" = "smimp-fetch: 0 fetched: 0 to the inbox, 0 to Other, 0 dropped" ]
	[ "$(store_bodies data)" = 0 ]
}

@test "a standard output that cannot be written fails send and fetch --json" {
	[ -w /dev/full ] || skip "no /dev/full"
	trust_as "$BOBHOME" alice.pub known
	echo hello | smimp-seal -i alice.key -r bob.pub >m.age
	# Sent, but its id never got out: a failure, said so.
	run -1 --separate-stderr bash -c 'smimp-send -i alice.key m.age >/dev/full'
	[ "$stderr" = "smimp-send: cannot write to standard output: No space left on device" ]
	run -1 --separate-stderr bash -c 'SMIMP_HOME="$BOBHOME" smimp-fetch -i bob.key -d mail --json >/dev/full'
	[ "$stderr" = "smimp-fetch: cannot write to standard output: No space left on device" ]
	# What was fetched is safe all the same.
	[ "$(ls mail/new | wc -l)" -eq 1 ]
	run -1 --separate-stderr bash -c 'smimp-trust fetch -i alice.key bob@example.org >/dev/full'
	[ "$stderr" = "smimp-trust: cannot write to standard output: No space left on device" ]
}

@test "a body file replaced by a FIFO or a directory: 503 at once, the server still stops" {
	sqlite_only
	trust_as "$BOBHOME" alice.pub known
	head -c 100000 /dev/urandom | smimp-seal -i alice.key -r bob.pub | smimp-send -i alice.key >/dev/null
	body=$(find data/bodies -type f)
	[ -n "$body" ]
	rm "$body"
	mkfifo -m 600 "$body"
	# Opening the FIFO for reading would wait for a writer for ever.
	run -75 --separate-stderr timeout 20 env SMIMP_HOME="$BOBHOME" smimp-fetch -i bob.key -d mail
	[[ "$stderr" == *"HTTP 503"* ]]
	grep -q "'data/bodies/.*' is not a file" server.log
	rm "$body"
	mkdir "$body"
	run -75 --separate-stderr timeout 20 env SMIMP_HOME="$BOBHOME" smimp-fetch -i bob.key -d mail
	[[ "$stderr" == *"HTTP 503"* ]]
	stop_server
	! kill -0 "$(cat pid)" 2>/dev/null || false
}

@test "a listed message whose body the server lost is skipped, said, and holds back none after it" {
	sqlite_only
	trust_as "$BOBHOME" alice.pub known
	echo one | smimp-seal -i alice.key -r bob.pub | smimp-send -i alice.key >/dev/null
	head -c 100000 /dev/urandom | smimp-seal -i alice.key -r bob.pub | smimp-send -i alice.key >/dev/null
	echo three | smimp-seal -i alice.key -r bob.pub | smimp-send -i alice.key >/dev/null
	body=$(find data/bodies -type f)
	[ -n "$body" ]
	rm "$body"
	run -1 --separate-stderr fetch_bob
	[ "${stderr_lines[0]}" = "smimp-fetch: 2 fetched: 2 to the inbox, 0 to Other, 0 dropped" ]
	[ "${stderr_lines[1]}" = "smimp-fetch: 1 listed message could not be downloaded (HTTP 404): skipped; the server may have lost it" ]
	[ "${#stderr_lines[@]}" -eq 2 ]
	[ "$(ls mail/new | wc -l)" -eq 2 ]
	# What comes later is not held back by it, and --json counts it.
	echo four | smimp-seal -i alice.key -r bob.pub | smimp-send -i alice.key >/dev/null
	run -1 --separate-stderr fetch_bob --json
	[ "$output" = '{"fetched":1,"inbox":1,"other":0,"dropped":0,"again":0,"maildir":"mail","introduced":0,"sent":0,"missing":1}' ]
	[ "$(ls mail/new | wc -l)" -eq 3 ]
	run -1 smimpd --data data check
	[[ "$output" == *"missing"* ]]
}
