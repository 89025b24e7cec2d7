#!/usr/bin/env bats
# What doc/PROTOCOL.md says and a clean-room reader needed said: the
# exact syntax of key files (section 3) and where a sealer finds its
# own log.

load helper

setup() {
	common_setup
	alice_and_bob
}

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
