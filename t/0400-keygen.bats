#!/usr/bin/env bats
# smimp-keygen: identities, passphrases, fingerprints, age export.

load helper

setup() { common_setup; }

teardown() {
	mountpoint -q "$BATS_TEST_TMPDIR/small" && umount -l "$BATS_TEST_TMPDIR/small"
	return 0
}

@test "keygen writes key, pub and recovery with the right modes" {
	run -0 --separate-stderr smimp-keygen -u Alice@Example.ORG -o a --no-passphrase
	[[ "$output" =~ ^[A-Z2-7]{4}(-[A-Z2-7]{4}){7}$ ]]
	fp=$output
	[ "$(stat -c %a a.key)" = 600 ]
	[ "$(stat -c %a a.recovery)" = 600 ]
	[ "$(stat -c %a a.pub)" = 644 ]
	grep -qx 'address: alice@example.org' a.pub
	grep -qx 'type: genesis' a.pub
	run -0 smimp-keygen --fingerprint a.pub
	[ "$output" = "$fp" ]
	# Another identity has another fingerprint.
	run -0 --separate-stderr smimp-keygen -u alice@example.org -o b --no-passphrase
	[ "$output" != "$fp" ]
}

@test "keygen accepts local#domain and writes the default identity" {
	run -0 --separate-stderr smimp-keygen -u 'bob#example.net' --no-passphrase
	[ -f "$SMIMP_HOME/identity.key" ]
	[ "$(stat -c %a "$SMIMP_HOME")" = 700 ]
	grep -qx 'address: bob@example.net' "$SMIMP_HOME/identity.pub"
}

@test "keygen refuses bad addresses with exit 2 and writes nothing" {
	for a in 'no-at-sign' 'a@b@c' '@example.org' 'user@' 'us er@example.org' \
	    'ünï@example.org' 'user@exa_mple.org' 'user@-bad.org' \
	    "$(printf 'x%.0s' {1..65})@example.org"; do
		run -2 --separate-stderr smimp-keygen -u "$a" -o k --no-passphrase
		[[ "$stderr" == "smimp-keygen: invalid "* ]]
		[ ! -e k.key ]
		[ ! -e k.pub ]
	done
}

@test "keygen never overwrites an identity" {
	mkid a alice@example.org
	before=$(sum a.key)
	run -1 --separate-stderr smimp-keygen -u alice@example.org -o a --no-passphrase
	[ "$stderr" = "smimp-keygen: 'a.key' already exists: refusing to overwrite an identity" ]
	[ "$(sum a.key)" = "$before" ]
	# A dangling symbolic link is a name taken too, said so before the
	# work, and left as it is.
	ln -s nowhere/x b.pub
	run -1 --separate-stderr smimp-keygen -u bob@example.org -o b --no-passphrase
	[ "$stderr" = "smimp-keygen: 'b.pub' already exists: refusing to overwrite an identity" ]
	[ "$(readlink b.pub)" = nowhere/x ]
	[ ! -e b.key ]
}

@test "keygen -o refuses an empty prefix or a directory, which would make hidden files" {
	mkdir d
	run -2 --separate-stderr smimp-keygen -u alice@example.org -o '' --no-passphrase
	[ "$stderr" = "smimp-keygen: -o names the files' prefix, not an empty name or a directory: '' (see 'smimp-keygen --help')" ]
	run -2 --separate-stderr smimp-keygen -u alice@example.org -o d/ --no-passphrase
	[ "$stderr" = "smimp-keygen: -o names the files' prefix, not an empty name or a directory: 'd/' (see 'smimp-keygen --help')" ]
	run -2 --separate-stderr smimp-keygen --device laptop -u alice@example.org -o '' --no-passphrase
	[ -z "$(ls -A d)" ]
	[ -z "$(ls -A | grep '^\.')" ]
	[ ! -e "$SMIMP_HOME/config" ]
}

@test "keygen stopped by a signal leaves the whole identity or none, and no temporary file" {
	(umask 077; echo 'secret words' >pass)
	# How long one takes here (scrypt and fsync), to stop the others
	# at points across it.
	start=$(date +%s%N)
	smimp-keygen -u t@example.org -o t --passphrase-file pass >/dev/null 2>&1
	took=$(( ($(date +%s%N) - start) / 1000 ))
	rm t.key t.pub t.recovery
	# stopped_after USECS CMD...: CMD, sent SIGTERM USECS microseconds
	# after it started, and waited for.
	stopped_after() {
		"${@:2}" >/dev/null 2>&1 &
		local pid=$!
		sleep "$(awk -v u="$1" 'BEGIN { printf "%.3f", u / 1e6 }')"
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" || true
	}
	for pct in 10 35 60 85; do
		stopped_after $((took * pct / 100)) \
			smimp-keygen -u a@example.org -o a --passphrase-file pass
		echo "$pct%: $(ls a.* 2>/dev/null | tr '\n' ' ')"
		! ls | grep -q '\.tmp\.' || false
		if [ -e a.key ] || [ -e a.pub ] || [ -e a.recovery ]; then
			[ -e a.key ] && [ -e a.pub ] && [ -e a.recovery ]
			smimp-keygen --export-age -i a.key --passphrase-file pass >/dev/null
			rm a.key a.pub a.recovery
		fi
		# A device's key and its enrollment request alike.
		stopped_after $((took * pct / 200)) smimp-keygen --device ci \
			-u a@example.org -o d --passphrase-file pass
		echo "$pct%: $(ls d.* 2>/dev/null | tr '\n' ' ')"
		! ls | grep -q '\.tmp\.' || false
		if [ -e d.key ]; then [ -e d.request ]; else [ ! -e d.request ]; fi
		rm -f d.key d.request
	done
}

@test "keygen needs a passphrase source when stdin is not a terminal" {
	run -1 --separate-stderr smimp-keygen -u a@example.org -o a </dev/null
	[[ "$stderr" == *"use --passphrase-file or SMIMP_PASSPHRASE_FILE" ]]
	[ ! -e a.key ]
}

@test "a passphrase-protected key is an age scrypt file and opens only with it" {
	(umask 077; echo 'secret words' >pass; echo 'wrong words' >bad)
	run -0 --separate-stderr smimp-keygen -u alice@example.org -o a --passphrase-file pass
	head -1 a.key | grep -qx -- '-----BEGIN AGE ENCRYPTED FILE-----'
	run -0 smimp-keygen --export-age -i a.key --passphrase-file pass
	[[ "$output" == AGE-SECRET-KEY-1* ]]
	run -1 --separate-stderr smimp-keygen --export-age -i a.key --passphrase-file bad
	[ "$stderr" = "smimp-keygen: 'a.key': wrong passphrase" ]
	[ -z "$output" ]
	SMIMP_PASSPHRASE_FILE=pass run -0 smimp-keygen --export-age -i a.key
}

@test "a passphrase file holds up to 1024 bytes before its line ending, LF or CR LF" {
	long=$(head -c 1024 /dev/zero | tr '\0' x)
	(umask 077; printf '%s\r\n' "$long" >crlf; printf '%s\n' "$long" >lf
	 printf '%sx\r\n' "$long" >over; printf '%s\r' "$long" >cr)
	run -0 --separate-stderr smimp-keygen -u alice@example.org -o a --passphrase-file crlf
	# The same passphrase, whichever way its line ends.
	run -0 smimp-keygen --export-age -i a.key --passphrase-file lf
	[[ "$output" == AGE-SECRET-KEY-1* ]]
	run -0 smimp-keygen --export-age -i a.key --passphrase-file cr
	[[ "$output" == AGE-SECRET-KEY-1* ]]
	run -1 --separate-stderr smimp-keygen --export-age -i a.key --passphrase-file over
	[ "$stderr" = "smimp-keygen: passphrase in 'over' is too long" ]
	[ -z "$output" ]
}

@test "a key file readable by others is refused" {
	mkid a alice@example.org
	chmod 644 a.key
	run -1 --separate-stderr smimp-keygen --export-age -i a.key
	[ "$stderr" = "smimp-keygen: 'a.key' is accessible by others (mode 644); run chmod 600 'a.key'" ]
	[ -z "$output" ]
}

@test "age export: identity and recipient agree with age-keygen" {
	command -v age-keygen >/dev/null || skip "age-keygen not installed"
	mkid a alice@example.org
	smimp-keygen --export-age -i a.key >a.agekey
	run -0 smimp-keygen --export-age-recipient -i a.key
	[ "$output" = "$(age-keygen -y a.agekey)" ]
	run -0 smimp-keygen --export-age-recipient a.pub
	[ "$output" = "$(age-keygen -y a.agekey)" ]
}

@test "a corrupted or garbage .pub is refused with exit 3" {
	mkid a alice@example.org
	sed 's/^seq: 0/seq: 1/' a.pub >bad.pub
	run -3 --separate-stderr smimp-keygen --fingerprint bad.pub
	[[ "$stderr" == "smimp-keygen: 'bad.pub': malformed identity record 0"* ]]
	# A flipped key byte breaks the self-signature.
	awk '/^encryption-key:/ { sub(/: ./, ": A") } { print }' a.pub >flip.pub
	if ! cmp -s a.pub flip.pub; then
		run -3 --separate-stderr smimp-keygen --fingerprint flip.pub
		[ "$stderr" = "smimp-keygen: 'flip.pub': identity record 0: bad signature" ]
	fi
	head -c 300 /dev/urandom >garbage.pub
	run -3 --separate-stderr smimp-keygen --fingerprint garbage.pub
	: >empty.pub
	run -3 --separate-stderr smimp-keygen --fingerprint empty.pub
	[ "$stderr" = "smimp-keygen: 'empty.pub': empty identity log" ]
}

@test "a byte past ASCII in a base64 value is refused, not read as '/' (libsodium 1.0.18 on x86): a signed record has one spelling" {
	for i in 1 2 3 4 5 6 7 8 9 10; do
		mkid "a$i" alice@example.org
		grep -q '^signature: .*/' "a$i.pub" && break
	done
	grep -q '^signature: .*/' "a$i.pub"
	# Its signature's first "/" as the byte 0xff: the record's hash
	# (its fingerprint) changes, the signature read would not.
	LC_ALL=C sed '/^signature: /s|/|\xff|' "a$i.pub" >high.pub
	run -1 cmp -s "a$i.pub" high.pub
	run -3 --separate-stderr smimp-keygen --fingerprint high.pub
	[ "$stderr" = "smimp-keygen: 'high.pub': malformed identity record 0: bad or missing signature" ]
}

@test "usage errors exit 2" {
	run -2 --separate-stderr smimp-keygen
	[ "$stderr" = "smimp-keygen: an address is needed: -u ADDRESS (see 'smimp-keygen --help')" ]
	run -2 --separate-stderr smimp-keygen -u a@b.org --no-passphrase --passphrase-file x
	run -2 --separate-stderr smimp-keygen --fingerprint a.pub --export-age
	# -i with what takes no key: refused, not ignored.
	mkid a alice@example.org
	run -2 --separate-stderr smimp-keygen -u b@example.org -i a.key -o b --no-passphrase
	[ "$stderr" = "smimp-keygen: -i names an existing key: no -u with it (see 'smimp-keygen --help')" ]
	[ ! -e b.key ]
	run -2 --separate-stderr smimp-keygen --fingerprint a.pub -i a.key
	[ "$stderr" = "smimp-keygen: --fingerprint reads FILE.pub: no -i with it (see 'smimp-keygen --help')" ]
	[ -z "$output" ]
}

@test "an identity made for a home elsewhere (-o) becomes its default, named in its config file, once" {
	run -0 --separate-stderr smimp-keygen -u alice@example.org -o keys-a --no-passphrase
	[ "$(tail -1 <<<"$stderr")" = "smimp-keygen: $PWD/keys-a.key is this home's default identity now (identity in its config file)" ]
	[ "$(cat "$SMIMP_HOME/config")" = "identity $PWD/keys-a.key" ]
	[ "$(stat -c %a "$SMIMP_HOME/config")" = 600 ]
	run -0 smimp-keygen --export-age-recipient
	[ "$output" = "$(smimp-keygen --export-age-recipient -i keys-a.key)" ]
	# A second one changes nothing: the home has its default.
	run -0 --separate-stderr smimp-keygen -u bob@example.net -o keys-b --no-passphrase
	[[ "$stderr" != *"default identity"* ]]
	[ "$(cat "$SMIMP_HOME/config")" = "identity $PWD/keys-a.key" ]
	# The home's own identity.key comes first, and is never recorded.
	rm -r "$SMIMP_HOME"
	run -0 --separate-stderr smimp-keygen -u carol@example.com --no-passphrase
	run -0 --separate-stderr smimp-keygen -u dave@example.com -o keys-d --no-passphrase
	[ ! -e "$SMIMP_HOME/config" ]
	run -0 smimp-keygen --export-age-recipient
	[ "$output" = "$(smimp-keygen --export-age-recipient -i "$SMIMP_HOME/identity.key")" ]
}

@test "a key path with a line break is never written into the config file, and is shown escaped" {
	run -0 --separate-stderr smimp-keygen -u alice@example.org --no-passphrase -o "$PWD/evil
resolve example.org=127.0.0.1:1
#"
	[ ! -e "$SMIMP_HOME/config" ]
	[ "$(tail -1 <<<"$stderr")" = "smimp-keygen: warning: a key path with a control character cannot be named in the config file" ]
	grep -qF "smimp-keygen: created alice@example.org: $PWD/evil\\nresolve example.org=127.0.0.1:1\\n#.key " <<<"$stderr"
	[ "$(wc -l <<<"$stderr")" -eq 3 ]
	run -0 smimp-keygen --fingerprint "$PWD/evil
resolve example.org=127.0.0.1:1
#.pub"
}

@test "the config file's identity: kept apart from its other lines, never written when SMIMP_CONFIG names it, refused unless absolute and a .key" {
	mkdir -p "$SMIMP_HOME"
	printf 'refresh-interval 1h' >"$SMIMP_HOME/config"	# no newline
	run -0 --separate-stderr smimp-keygen -u alice@example.org -o a --no-passphrase
	[ "$(cat "$SMIMP_HOME/config")" = "$(printf 'refresh-interval 1h\nidentity %s/a.key' "$PWD")" ]
	run -0 smimp-trust list	# the client config still reads
	rm "$SMIMP_HOME/config"
	printf 'refresh-interval 1h\n' >named.conf
	SMIMP_CONFIG=$PWD/named.conf run -0 --separate-stderr smimp-keygen -u bob@example.net -o b --no-passphrase
	[ "$(cat named.conf)" = "refresh-interval 1h" ]
	[ ! -e "$SMIMP_HOME/config" ]
	for bad in a.key "$PWD/a.pub" "~/a.key"; do
		printf 'identity %s\n' "$bad" >"$SMIMP_HOME/config"
		run -2 --separate-stderr smimp-keygen --export-age-recipient
		[ "$stderr" = "smimp-keygen: $SMIMP_HOME/config: identity must name a key file by its absolute path, ending in .key" ]
	done
}

@test "a full disk leaves the config file as it was, never with half an identity line that every command would refuse" {
	[ "$(id -u)" -eq 0 ] || skip "mounting a tmpfs needs root"
	mkdir small
	mount -t tmpfs -o size=64k,mode=0700 smimp-test small 2>mount.err ||
		skip "cannot mount a tmpfs: $(cat mount.err)"
	export SMIMP_HOME=$PWD/small/home
	mkdir -m 700 "$SMIMP_HOME"
	# 4089 bytes: the identity line would end in a page of its own.
	{ printf '#'; head -c 4087 /dev/zero | tr '\0' x; echo; } >"$SMIMP_HOME/config"
	chmod 640 "$SMIMP_HOME/config"
	cp -p "$SMIMP_HOME/config" config.before
	dd if=/dev/zero of=small/fill bs=4096 2>/dev/null || true
	run -0 --separate-stderr smimp-keygen -u alice@example.org -o "$PWD/a" --no-passphrase
	[[ "$(tail -1 <<<"$stderr")" == "smimp-keygen: warning: cannot write '$SMIMP_HOME/config.tmp."*"': No space left on device" ]]
	cmp config.before "$SMIMP_HOME/config"
	[ "$(ls -A "$SMIMP_HOME")" = config ]
	# Every command still reads it: no default identity, as before.
	run -1 --separate-stderr smimp-keygen --export-age-recipient
	[[ "$stderr" != *config* ]]
	# Room again: the line is added whole, the file keeping its mode.
	rm small/fill
	run -0 --separate-stderr smimp-keygen -u bob@example.net -o "$PWD/b" --no-passphrase
	[ "$(cat "$SMIMP_HOME/config")" = "$(cat config.before; echo "identity $PWD/b.key")" ]
	[ "$(stat -c %a "$SMIMP_HOME/config")" = 640 ]
	[ "$(ls -A "$SMIMP_HOME")" = config ]
	run -0 smimp-keygen --export-age-recipient
	[ "$output" = "$(smimp-keygen --export-age-recipient -i b.key)" ]
}

@test "a config file line that names no setting, or none with a value, is refused also where only its identity is read" {
	mkid a alice@example.org
	mkdir -p "$SMIMP_HOME"
	msg=$(smimp-seal -i a.key -R a.pub </dev/null | base64 -w0)
	for bad in "resolv example.org=127.0.0.1:1" "cacert" "identity"; do
		printf '# mine\nidentity %s/a.key\n\n  %s\n' "$PWD" "$bad" >"$SMIMP_HOME/config"
		name=${bad%% *}
		if [ "$bad" = "$name" ]; then
			want="$SMIMP_HOME/config:4: $name needs a value"
		else
			want="$SMIMP_HOME/config:4: unknown setting '$name'"
		fi
		run -2 --separate-stderr smimp-keygen --export-age-recipient
		[ "$stderr" = "smimp-keygen: $want" ]
		run -2 --separate-stderr bash -c 'base64 -d <<<"$1" | smimp-open' - "$msg"
		[ "$stderr" = "smimp-open: $want" ]
		[ -z "$output" ]
	done
	printf '# mine\nidentity %s/a.key\n\trefresh-interval 1h \r\n' "$PWD" >"$SMIMP_HOME/config"
	run -0 smimp-keygen --export-age-recipient
	[ "$output" = "$(smimp-keygen --export-age-recipient -i a.key)" ]
}
