#!/usr/bin/env bats
# What doc/PROTOCOL.md says and a clean-room reader needed said: the
# exact syntax of key files (section 3), where a sealer finds its own
# log, which characters a header may hold (4.2), the recipient cap, and
# the low-order encryption key a sealer refuses (4.1).  A hostile
# sender signs whatever it likes, so the messages here are properly
# signed and encrypted (t/unit/hostile.c) and only their headers lie.

load helper

setup() {
	common_setup
	alice_and_bob
}

hostile() { "$SMIMP_BUILD/t/hostile" "$@"; }
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }

# key_is TEXT: write TEXT (printf format, so \r and \n show) as k.key.
key_is() {
	rm -f k.key
	# shellcheck disable=SC2059
	printf "$1" >k.key
	chmod 600 k.key
}

# The lines of a key file for alice, to build variants from; fixed
# secrets, so that their base64 holds both '/' and '+'.
key_lines() {
	MAGIC=smimp-secret-key/1
	ADDR='address: alice@example.org'
	IDS='identity-secret: yMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5uc='
	ENCB64=++++++++++++++++++++++++++++++++++++++++++8=
	ENC="encryption-secret: $ENCB64"
}

@test "key file: the exact form loads, every sloppy variant is refused" {
	key_lines
	key_is "$MAGIC\n$ADDR\n$IDS\n$ENC\n"
	run -0 smimp-keygen --export-age -i k.key
	want=$output
	[[ "$want" == AGE-SECRET-KEY-1* ]]
	# 64 retired secrets are the most a file holds; they need not differ.
	retired=$(for _ in $(seq 64); do printf 'retired-encryption-secret: %s\\n' "$ENCB64"; done)
	key_is "$MAGIC\n$ADDR\n$IDS\n$ENC\n$retired"
	run -0 smimp-keygen --export-age -i k.key
	[ "$output" = "$want" ]

	bad=(
		"$MAGIC\n$ADDR\r\n$IDS\r\n$ENC\r\n"		# CRLF
		"$MAGIC\n$ADDR\n$IDS\n$ENC\r\n"			# one CR
		"$MAGIC\n$ADDR\n$IDS\n$ENC"			# no final newline
		"$MAGIC\n$ADDR\n$IDS\n$ENC\n\n"			# empty line
		"$MAGIC\n$ADDR\n$IDS \n$ENC\n"			# trailing space
		"$MAGIC\n$ADDR\n${IDS/: /:  }\n$ENC\n"		# two spaces
		"$MAGIC\n$ADDR\n${IDS/: /:$'\t'}\n$ENC\n"		# a tab
		"$MAGIC\n$ADDR\n${IDS/: /:}\n$ENC\n"		# no space
		"$MAGIC\n$ADDR\n${IDS/=/}\n$ENC\n"		# unpadded
		"$MAGIC\n$ADDR\n${IDS/=/==}\n$ENC\n"		# padded twice
		"$MAGIC\n$ADDR\n${IDS%?=}d=\n$ENC\n"		# not canonical
		"$MAGIC\n$ADDR\n${IDS//\//_}\n$ENC\n"		# base64url
		"$MAGIC\n$ADDR\n$IDS\n${ENC//+/-}\n"		# base64url
		"$MAGIC\n$ADDR\n$ENC\n$IDS\n"			# out of order
		"$MAGIC\n$ADDR\n$IDS\n$IDS\n$ENC\n"		# duplicated
		"$MAGIC\n$ADDR\n$ADDR\n$IDS\n$ENC\n"		# duplicated
		"$MAGIC\n$ADDR\n$IDS\n"				# missing
		"$MAGIC\n$ADDR\n$IDS\n$ENC\ncomment: x\n"	# unknown
		"$MAGIC\n$ADDR\n$IDS\n$ENC\n$retired$ENC\n"	# 65 retired
		"$MAGIC\n$ADDR\n$IDS\n$ENC\n${retired%%\\n*}"	# its newline
		"$MAGIC\n$ADDR\n$IDS\n$ENC\n${ENC/encryption/retired-encryption}\n$ENC\n"
	)
	for k in "${bad[@]}"; do
		key_is "$k"
		echo "case: $k"	# shown when it fails
		run -3 --separate-stderr smimp-keygen --export-age -i k.key
		[ "$stderr" = "smimp-keygen: 'k.key': malformed secret key file" ]
		[ -z "$output" ]
	done
	for k in " $MAGIC\n$ADDR\n$IDS\n$ENC\n" "${MAGIC/1/2}\n$ADDR\n$IDS\n$ENC\n" \
	    "\n$MAGIC\n$ADDR\n$IDS\n$ENC\n" "$MAGIC\r\n$ADDR\r\n$IDS\r\n$ENC\r\n"; do
		key_is "$k"
		run -3 --separate-stderr smimp-keygen --export-age -i k.key
		[ "$stderr" = "smimp-keygen: 'k.key' is not a smimp secret key file" ]
	done
	# At most 8192 bytes.
	key_is "$MAGIC\n$ADDR\n$IDS\n$ENC\n"
	head -c 8192 /dev/zero | tr '\0' 'x' >>k.key
	run -3 --separate-stderr smimp-keygen --export-age -i k.key
	[ "$stderr" = "smimp-keygen: 'k.key' is too large (over 8192 bytes)" ]
}

@test "key file: the address is written normalized, or the file is refused" {
	key_lines
	for a in ALICE@example.org alice@EXAMPLE.org 'alice#example.org'; do
		key_is "$MAGIC\naddress: $a\n$IDS\n$ENC\n"
		run -3 --separate-stderr smimp-keygen --export-age -i k.key
		[ "$stderr" = "smimp-keygen: 'k.key': malformed secret key file" ]
	done
	sed 's/^address: alice/address: Alice/' alice.recovery >k.recovery
	chmod 600 k.recovery
	run -3 --separate-stderr smimp-keygen --export-age -i k.recovery
	[ "$stderr" = "smimp-keygen: 'k.recovery': malformed secret key file" ]
	run -1 --separate-stderr smimp-keygen --export-age -i alice.recovery
	[ "$stderr" = "smimp-keygen: 'alice.recovery' is a recovery key, not an identity key" ]
}

@test "key file: the encrypted form is age with one scrypt stanza, armored or not" {
	echo 'correct horse' >pass
	chmod 600 pass
	smimp-keygen -u dave@example.org -o dave --passphrase-file pass >/dev/null 2>&1
	head -1 dave.key | grep -qx -- '-----BEGIN AGE ENCRYPTED FILE-----'
	run -0 smimp-keygen --export-age -i dave.key --passphrase-file pass
	want=$output
	# The armor may end its lines with CR LF and be followed by blanks.
	sed 's/$/\r/' dave.key >crlf.key && printf '\n \n' >>crlf.key
	chmod 600 crlf.key
	run -0 smimp-keygen --export-age -i crlf.key --passphrase-file pass
	[ "$output" = "$want" ]
	# Nothing may come before the armor: then it is read as plain text.
	{ echo; cat dave.key; } >lead.key
	chmod 600 lead.key
	run -3 --separate-stderr smimp-keygen --export-age -i lead.key --passphrase-file pass
	[ "$stderr" = "smimp-keygen: 'lead.key' is not a smimp secret key file" ]
	# What is inside is read by the same rules as a plain file.
	key_lines
	for t in "$MAGIC\n$ADDR\n$IDS\n$ENC\n" "$MAGIC\naddress: ALICE@example.org\n$IDS\n$ENC\n" \
	    "$MAGIC\n$ADDR\n$IDS\n$ENC"; do
		# shellcheck disable=SC2059
		printf "$t" | AGETOOL_PASSPHRASE='correct horse' "$SMIMP_BUILD/t/agetool" -e -p -a >enc.key
		chmod 600 enc.key
		run --separate-stderr smimp-keygen --export-age -i enc.key --passphrase-file pass
		case $t in
		"$MAGIC\n$ADDR\n$IDS\n$ENC\n")
			[ "$status" -eq 0 ]
			[[ "$output" == AGE-SECRET-KEY-1* ]] ;;
		*)
			[ "$status" -eq 3 ]
			[ "$stderr" = "smimp-keygen: 'enc.key': malformed secret key file" ] ;;
		esac
	done
}

@test "a damaged encrypted key file is named in the error, not taken for a damaged message" {
	echo 'correct horse' >pass
	chmod 600 pass
	smimp-keygen -u dave@example.org -o dave --passphrase-file pass >/dev/null 2>&1
	seal -r dave.pub msg >m.age
	# Data after the armor, no end line, a header line spoilt, a binary
	# form cut short.
	{ cat dave.key; echo junk; } >d1.key
	grep -v -- '-----END' dave.key >d2.key
	sed '2s/^./!/' dave.key >d3.key
	AGETOOL_PASSPHRASE="correct horse" "$SMIMP_BUILD/t/agetool" -e -p <alice.key >bin.age
	head -c 200 bin.age >d4.key
	chmod 600 d?.key
	for k in d1 d2 d3 d4; do
		cp dave.pub $k.pub
		run -3 --separate-stderr smimp-open -i $k.key --passphrase-file pass m.age
		echo "$k: $stderr"
		case $k in
		d1) want="malformed armor: data after the end line" ;;
		d2) want="malformed armor: no end line" ;;
		d3) want="malformed armor: bad base64" ;;
		d4) want="payload is corrupted or truncated" ;;
		esac
		[ "$stderr" = "smimp-open: '$k.key': $want" ]
		[ -z "$output" ]
	done
}

@test "a sealer reads its own log beside its key, and seals nothing without it" {
	cp alice.key alice.sec
	cp alice.pub alice.sec.pub
	run -0 --separate-stderr smimp-seal -i alice.sec -r bob.pub -o m.age msg
	run -0 --separate-stderr open_bob m.age
	[ "$output" = "$(cat msg)" ]
	rm alice.sec.pub
	run -1 --separate-stderr smimp-seal -i alice.sec -r bob.pub -o m2.age msg
	[ "$stderr" = "smimp-seal: no identity log for the key 'alice.sec': 'alice.sec.pub' does not exist (the log is read beside the key, as smimp-keygen wrote it)" ]
	[ ! -e m2.age ]
	mv alice.pub elsewhere.pub
	run -1 --separate-stderr smimp-seal -i alice.key -r bob.pub -o m2.age msg
	[ "$stderr" = "smimp-seal: no identity log for the key 'alice.key': 'alice.pub' does not exist (the log is read beside the key, as smimp-keygen wrote it)" ]
	[ ! -e m2.age ]
	cp bob.pub alice.pub
	run -1 --separate-stderr smimp-seal -i alice.key -r bob.pub -o m2.age msg
	[ "$stderr" = "smimp-seal: 'alice.pub' does not belong to the key 'alice.key'" ]
	[ ! -e m2.age ]
}

# open_refuses EDIT...: a signed message with EDIT is malformed (3), and
# nothing of it is released.
open_refuses() {
	hostile seal alice.key alice.pub bob.pub "$@" <msg >m.age
	run -3 --separate-stderr open_bob -o out m.age
	[[ "$stderr" == "smimp-open: malformed envelope: "* ]]
	[ "${#lines[@]}" -eq 0 ]
	[ "$(wc -l <<<"$stderr")" -eq 1 ]
	[ ! -e out ]
}

@test "open refuses a signed message whose ids are not 1 to 200 of A-Z a-z 0-9 ._@+=:-" {
	long=$(head -c 201 /dev/zero | tr '\0' a)
	for id in '' 'a b' 'a<b>' 'a/../b' 'a,b' "a'b" 'a"b' 'a;b' 'é@x.org' \
	    $'a\xe2\x80\xaeb' "$long"; do
		open_refuses "message-id=$(hex "$id")"
		[ "$stderr" = "smimp-open: malformed envelope: bad message-id" ]
		open_refuses "thread-id=$(hex "$id")"
		[ "$stderr" = "smimp-open: malformed envelope: bad thread-id" ]
		open_refuses "in-reply-to=$(hex "$id")"
		[ "$stderr" = "smimp-open: malformed envelope: bad in-reply-to" ]
	done
	# A control character breaks the line before the id is looked at.
	for id in $'a\tb' $'\x1b[2Ja' $'a\rb'; do
		open_refuses "message-id=$(hex "$id")"
		[ "$stderr" = 'smimp-open: malformed envelope: a line that is not "name: value" text (a control character, or no ": ")' ]
	done
	# The helper's message opens as it is; 200 characters of the
	# alphabet, each of its signs included, are the most.
	hostile seal alice.key alice.pub bob.pub <msg >m.age
	run -0 --separate-stderr open_bob m.age
	[ "$output" = "$(cat msg)" ]
	hostile seal alice.key alice.pub bob.pub "message-id=$(hex "${long%a}")" <msg >m.age
	run -0 --separate-stderr open_bob m.age
	hostile seal alice.key alice.pub bob.pub "message-id=$(hex 'A-Za-z0-9._@+=:-')" \
		"thread-id=$(hex 'a@b')" "in-reply-to=$(hex 'c=d')" <msg >m.age
	run -0 --separate-stderr open_bob --headers m.age
	grep -qx 'message-id: A-Za-z0-9._@+=:-' <<<"$output"
}

@test "open refuses a signed subject with a control character, bad UTF-8, a bidi override, or too long" {
	for v in 1b5b324a 0d 09 7f 00 61c29b62 c285 e280ae e281a6 e281a9 \
	    ff c0af e08080 eda080 f4908080 e282; do
		open_refuses "subject=$v"
	done
	open_refuses "subject=$(hex "$(head -c 999 /dev/zero | tr '\0' s)")"
	[ "$stderr" = "smimp-open: malformed envelope: bad subject" ]
	hostile seal alice.key alice.pub bob.pub "subject=$(hex "$(head -c 998 /dev/zero | tr '\0' s)")" <msg >m.age
	run -0 --separate-stderr open_bob m.age
	# Text that is not ASCII, every printable ASCII byte, or nothing.
	hostile seal alice.key alice.pub bob.pub "subject=$(hex 'Grüße, 你好 👋 ~!"#$%&()*+,-./:;<=>?@[\]^_`{|}')" <msg >m.age
	run -0 --separate-stderr open_bob --headers m.age
	grep -qx 'subject: Grüße, 你好 👋 ~!"#$%&()\*+,-./:;<=>?@\[\\\]^_`{|}' <<<"$output"
	hostile seal alice.key alice.pub bob.pub "subject=" <msg >m.age
	run -0 --separate-stderr open_bob --headers m.age
	grep -qx 'subject: ' <<<"$output"
	# A newline in a value makes another line: here a forged from.
	open_refuses "subject=$(hex $'hi\nfrom: boss@example.org')"
}

@test "open refuses a signed line separator, a content type not ASCII, a fingerprint not as written" {
	open_refuses "subject=$(hex $'line one\xe2\x80\xa8from: boss@example.org')"
	[ "$stderr" = "smimp-open: malformed envelope: bad subject" ]
	open_refuses "subject=$(hex $'a\xe2\x80\xa9b')"
	open_refuses "content-type=$(hex 'text/plain; charset=ütf-8')"
	[ "$stderr" = "smimp-open: malformed envelope: bad content-type" ]
	open_refuses "content-type="
	open_refuses "content-type=$(hex "text/plain; x=$(head -c 187 /dev/zero | tr '\0' x)")"
	hostile seal alice.key alice.pub bob.pub "content-type=$(hex "text/plain; x=$(head -c 186 /dev/zero | tr '\0' x)")" <msg >m.age
	run -0 --separate-stderr open_bob m.age
	bobfp=$(smimp-keygen --fingerprint bob.pub)
	alicefp=$(smimp-keygen --fingerprint alice.pub)
	for fp in "${bobfp,,}" "${bobfp//-/}" "${bobfp//-/ }"; do
		open_refuses "to=$(hex "bob@example.net $fp")"
		[ "$stderr" = "smimp-open: malformed envelope: bad recipient" ]
	done
	open_refuses "from-fingerprint=$(hex "${alicefp,,}")"
	[ "$stderr" = "smimp-open: malformed envelope: bad from-fingerprint" ]
}

@test "seal refuses header values outside the rules, and writes nothing" {
	long=$(head -c 999 /dev/zero | tr '\0' s)
	for args in "-s|a"$'\n'"b" "-s|"$'\e[2J' "-s|a"$'\xe2\x80\xa8'"b" "-s|a"$'\xe2\x80\xae'"b" \
	    "-s|"$'\xff' "-s|$long" "--thread|a b" "--thread|é" "--thread|<a@b>" \
	    "--in-reply-to|a/b" "--in-reply-to|" "--content-type|text/plain; charset=ü" \
	    "--content-type|" "-t|x-Ü"; do
		run -2 --separate-stderr smimp-seal -i alice.key -r bob.pub -o out.age "${args%%|*}" "${args#*|}" msg
		[[ "$stderr" == smimp-seal:\ invalid\ * ]]
		[ "$(wc -l <<<"$stderr")" -eq 1 ]
		[ ! -e out.age ]
		[ -z "$output" ]
	done
	run -0 --separate-stderr smimp-seal -i alice.key -r bob.pub -o out.age -s 'Grüße 👋' \
		--thread 'A-Za-z0-9._@+=:-' --in-reply-to 'x@example.org' msg
	run -0 --separate-stderr open_bob --headers out.age
	grep -qx 'subject: Grüße 👋' <<<"$output"
	grep -qx 'thread-id: A-Za-z0-9._@+=:-' <<<"$output"
}

@test "a message id stays within 200 bytes for a sender of a long domain" {
	d=$(printf 'a%.0s' $(seq 60)).$(printf 'b%.0s' $(seq 60)).$(printf 'c%.0s' $(seq 60)).example
	mkid long "x@$d"
	trust_as "$BOBHOME" long.pub trusted
	smimp-seal -i long.key -r bob.pub -o m.age msg
	run -0 --separate-stderr open_bob --headers m.age
	grep -Eqx 'message-id: [a-z2-7]{24}' <<<"$output"
	smimp-seal -i alice.key -r bob.pub -o m.age msg
	run -0 --separate-stderr open_bob --headers m.age
	grep -Eqx 'message-id: [a-z2-7]{24}@example.org' <<<"$output"
}

@test "at most 256 recipients: seal refuses a 257th" {
	args=()
	for _ in $(seq 256); do args+=(-r bob.pub); done
	run -0 --separate-stderr smimp-seal -i alice.key "${args[@]}" -o m.age msg
	run -0 --separate-stderr open_bob m.age
	[ "$output" = "$(cat msg)" ]
	run -2 --separate-stderr smimp-seal -i alice.key "${args[@]}" -c bob.pub -o m2.age msg
	[ "$stderr" = "smimp-seal: too many recipients (at most 256) (see 'smimp-seal --help')" ]
	[ ! -e m2.age ]
}

@test "at most 256 recipients: open refuses a signed message with more" {
	hostile seal alice.key alice.pub bob.pub 'cc*255' <msg >m.age
	run -0 --separate-stderr open_bob --headers m.age
	[ "$(grep -c '^cc: ' <<<"$output")" -eq 255 ]
	open_refuses 'cc*256'
	[ "$stderr" = "smimp-open: malformed envelope: more than 256 recipients" ]
}

@test "seal refuses a recipient whose encryption key is of low order, writing nothing" {
	# The all-zero key, 1, the points of order 8, and the encodings
	# past the field prime that reduce to low-order points.
	for k in 0000000000000000000000000000000000000000000000000000000000000000 \
	    0100000000000000000000000000000000000000000000000000000000000000 \
	    e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800 \
	    5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157 \
	    ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f \
	    edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f \
	    eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f; do
		rm -f evil.pub
		hostile pub evil@example.net "$k" evil.pub
		run -3 --separate-stderr smimp-seal -i alice.key -r bob.pub -R evil.pub -o m.age msg
		[ "$stderr" = "smimp-seal: the encryption key of evil@example.net is of low order (anyone could open what is sealed to it): refusing it" ]
		[ ! -e m.age ]
		run -3 --separate-stderr smimp-seal -i alice.key -R evil.pub msg
		[ -z "$output" ]
	done
	# The base point is an ordinary key: sealed to, as any other.
	rm -f evil.pub
	hostile pub evil@example.net 0900000000000000000000000000000000000000000000000000000000000000 evil.pub
	run -0 --separate-stderr smimp-seal -i alice.key -r bob.pub -R evil.pub -o m.age msg
	[ -s m.age ]
}
