#!/usr/bin/env bats
# What a sender, a careless environment or a signal can do to the user's
# terminal and standard descriptors, and what smimp does about it.
# Terminal tests look at the screen of a real terminal emulator (tmux),
# as the user would.

load helper

setup() {
	common_setup
	mkid alice alice@example.org
	mkid bob bob@example.net
	mkid mallory mallory@example.com
	BOBHOME="$BATS_TEST_TMPDIR/bobhome"
	trust_as "$BOBHOME" alice.pub trusted
	trust_as "$BOBHOME" mallory.pub known
	printf 'Hello Bob,\nthe build is green.\n' >msg
}

teardown() {
	if [ -n "${TMUX_SOCK:-}" ]; then
		tmux -S "$TMUX_SOCK" kill-server 2>/dev/null || true
	fi
	if [ -n "${BLOCKED_PID:-}" ]; then
		kill "$BLOCKED_PID" 2>/dev/null || true
	fi
	if [ -n "${NOBODY_DIR:-}" ]; then
		rm -rf "$NOBODY_DIR"
	fi
	return 0
}

seal() { smimp-seal -i alice.key -r bob.pub "$@"; }
open_bob() { SMIMP_HOME="$BOBHOME" smimp-open -i bob.key "$@"; }

@test "the envelope parser refuses C1 controls and bidirectional overrides in header values" {
	# Subjects in hex: plain, U+0085 (NEL), U+009B (CSI), U+202A, U+202E,
	# U+2066, U+2069, then harmless ones: U+00A0, U+00E9, U+202F, an emoji.
	run -0 "$SMIMP_BUILD/t/envelope-values" "$REPO/t/vectors" 6869 \
		c285 c29b e280aa e280ae e281a6 e281a9 \
		c2a0 c3a9 e280af f09f9880
	[ "${#lines[@]}" -eq 11 ]
	[ "${lines[0]}" = accepted ]
	for i in 1 2 3 4 5 6; do
		[ "${lines[$i]}" = "refused: malformed envelope: bad subject" ]
	done
	for i in 7 8 9 10; do
		[ "${lines[$i]}" = accepted ]
	done
	# smimp-seal refuses to write one.
	run -2 --separate-stderr seal -s $'build \u202egreen' msg
	[ "$stderr" = "smimp-seal: invalid subject: at most 998 bytes of UTF-8 text on one line" ]
	[ -z "$output" ]
}

# term_start SCRIPT: a terminal of 150x30 (tmux, a private server) that
# runs `sh SCRIPT` in this directory, with this environment.
term_start() {
	command -v tmux >/dev/null || skip "tmux is not installed"
	TERM_N=$((${TERM_N:-0} + 1))
	TMUX_SOCK="$BATS_TEST_TMPDIR/tmux$TERM_N.sock"
	tmux -S "$TMUX_SOCK" -f /dev/null new-session -d -x 150 -y 30 \
		-c "$BATS_TEST_TMPDIR" "sh $1" 3>&-
}

# screen: what the terminal shows, blank lines left out.
screen() { tmux -S "$TMUX_SOCK" capture-pane -p | sed '/^$/d'; }

# term_wait REGEX: wait (10 s at most) until the screen shows a match.
term_wait() {
	for _ in $(seq 100); do
		screen | grep -q -- "$1" && return 0
		sleep 0.1
	done
	screen
	return 1
}

# term_open_bob ARGS: bob's smimp-open ARGS in a terminal (term_start),
# waited for until it exits and the shell says its status (rc=N).
term_open_bob() {
	cat >run.sh <<-EOF
	SMIMP_HOME="$BOBHOME" smimp-open -i bob.key $*
	echo "rc=\$?"
	sleep 60
	EOF
	term_start run.sh
	term_wait '^rc='
}

@test "a body on a terminal cannot drive it, and the sender line comes after it" {
	# Mallory, a known sender, tries to erase the body and the real
	# sender line and show a line that says alice sent it, trusted.
	fp=$(smimp-keygen --fingerprint alice.pub)
	printf 'Hi Bob,\nsee you.\n\033[2A\033[2K\rsmimp-open: from alice@example.org, fingerprint %s, trusted\n\342\200\256evil\033[2K' "$fp" >evil
	smimp-seal -i mallory.key -r bob.pub evil >evil.age
	term_open_bob evil.age
	mapfile -t lines < <(screen)
	printf '%s\n' "${lines[@]}"
	[ "${#lines[@]}" -eq 6 ]
	[ "${lines[0]}" = "Hi Bob," ]
	[ "${lines[1]}" = "see you." ]
	[ "${lines[2]}" = "\\x1B[2A\\x1B[2K\\rsmimp-open: from alice@example.org, fingerprint $fp, trusted" ]
	[ "${lines[3]}" = "\\u202Eevil\\x1B[2K" ]
	# The body did not end its line: the sender line starts its own.
	[[ "${lines[4]}" =~ ^smimp-open:\ from\ mallory@example.com,\ fingerprint\ [A-Z2-7-]{39},\ known$ ]]
	[ "${lines[5]}" = "rc=0" ]
}

@test "to a pipe or a file the body is exact, and the sender line comes first" {
	printf 'a\033[2Jb\r\302\233c\342\200\256d\377\n' >odd
	seal odd >odd.age
	run -0 --separate-stderr open_bob odd.age
	open_bob odd.age 2>/dev/null | cmp - odd
	open_bob -o out odd.age 2>/dev/null
	cmp odd out
	# stderr a terminal, stdout not: the sender line is not held back.
	term_open_bob -o out2 odd.age
	[[ "$(screen | head -1)" == "smimp-open: from alice@example.org, "* ]]
	cmp odd out2
}

@test "error messages show control characters and overrides in names escaped" {
	run -1 --separate-stderr smimp-open -i bob.key $'\e]2;owned\a'
	[ "$stderr" = "smimp-open: cannot open '\\x1B]2;owned\\x07': No such file or directory" ]
	run -1 --separate-stderr smimp-seal -i alice.key -r bob.pub $'a\u202eb\nc'
	[ "$stderr" = "smimp-seal: cannot open 'a\\u202Eb\\nc': No such file or directory" ]
	run -2 --separate-stderr smimp-trust show $'\e[2Jx'
	[[ "$stderr" == *'\x1B[2Jx'* ]]
	[[ "$stderr" != *$'\e'* ]]
}

@test "line and paragraph separators and directional marks are escaped on a terminal and in errors" {
	# U+2028, U+2029, U+200E, U+200F, U+061C: invisible on a terminal,
	# a line end to some readers, or a reordering of what is around them.
	printf 'a\342\200\250b\342\200\251c\342\200\216d\342\200\217e\330\234f\n' >marks
	seal marks >marks.age
	term_open_bob marks.age
	[ "$(screen | head -1)" = 'a\u2028b\u2029c\u200Ed\u200Fe\u061Cf' ]
	# To a pipe the body stays exact.
	open_bob marks.age 2>/dev/null | cmp - marks
	run -1 --separate-stderr smimp-open -i bob.key $'x\342\200\250y\342\200\217z\330\234'
	[ "$stderr" = "smimp-open: cannot open 'x\\u2028y\\u200Fz\\u061C': No such file or directory" ]
}

@test "characters that show as nothing are escaped on a terminal; joiners stay" {
	# U+200B, U+2060, U+2064, U+206A, U+FEFF, U+FFF9, and the tags
	# U+E0041 U+E007F, which spell hidden ASCII; U+200D joins an emoji.
	printf 'a\342\200\213b\342\201\240c\342\201\244d\342\201\252e\357\273\277f\357\277\271g\363\240\201\201\363\240\201\277h\342\200\215i\n' >hidden
	seal hidden >hidden.age
	term_open_bob hidden.age
	# (tmux shows the joiner as nothing: the error line below has it.)
	[ "$(screen | head -1)" = 'a\u200Bb\u2060c\u2064d\u206Ae\uFEFFf\uFFF9g\U000E0041\U000E007Fhi' ]
	open_bob hidden.age 2>/dev/null | cmp - hidden
	run -1 --separate-stderr smimp-open -i bob.key $'x\342\200\213y\363\240\201\201z\342\200\215w'
	[ "$stderr" = "smimp-open: cannot open 'x\\u200By\\U000E0041z"$'\342\200\215'"w': No such file or directory" ]
}

@test "with standard error or output closed, no output file gets a message" {
	seal msg >m.age
	# The first file opened would be descriptor 2 (the message comes
	# on standard input): the sender line would land in the spool, and
	# so in out.
	open_bob -o out <m.age 2>&-
	cmp msg out
	rm out
	open_bob -o out m.age >&- 2>&-
	cmp msg out
	# Without -o the body goes to the closed standard output: nowhere.
	run -0 --separate-stderr timeout 20 bash -c \
		'SMIMP_HOME="$1" smimp-open -i bob.key m.age >&-' - "$BOBHOME"
	[[ "$stderr" == "smimp-open: from alice@example.org, "* ]]
}

@test "a closed standard input or output fails as closed, not as /dev/null" {
	# Read as empty, a closed input was sealed as an empty message.
	run -1 --separate-stderr bash -c 'smimp-seal -i alice.key -r bob.pub -o m.age <&-'
	[ "$stderr" = "smimp-seal: cannot read the input: Bad file descriptor" ]
	[ ! -e m.age ]
	# Written into /dev/null, the sealed message was lost with exit 0.
	run -1 --separate-stderr bash -c 'smimp-seal -i alice.key -r bob.pub msg >&-'
	[ "$stderr" = "smimp-seal: cannot write standard output: Bad file descriptor" ]
	run -1 --separate-stderr bash -c 'smimp-keygen --fingerprint alice.pub >&-'
	[ "$stderr" = "smimp-keygen: cannot write to standard output: Bad file descriptor" ]
}

# blocked_as_nobody CMD...: CMD run as nobody in the background, its
# standard input a FIFO that nobody writes to; its pid in BLOCKED_PID
# once it runs CMD (no longer setpriv).
blocked_as_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$@" \
		<"$NOBODY_DIR/in" >/dev/null 2>&1 3>&- &
	BLOCKED_PID=$!
	for _ in $(seq 50); do
		[ "$(cat "/proc/$BLOCKED_PID/comm")" = "$(basename "$1")" ] && return 0
		sleep 0.1
	done
	return 1
}

# not_dumpable PID: its /proc/PID/ belongs to root, as it does for a
# process that is not dumpable (it runs as nobody), and its core file
# size limit is 0.
not_dumpable() {
	for _ in $(seq 50); do
		[ "$(stat -c %U "/proc/$1/status")" = root ] && break
		sleep 0.1
	done
	[ "$(stat -c %U "/proc/$1/status")" = root ]
	grep -Eq '^Max core file size +0 +0 ' "/proc/$1/limits"
}

@test "commands that hold secrets cannot dump core or be traced" {
	[ "$(id -u)" -eq 0 ] || skip "needs root, to run a command as nobody"
	command -v setpriv >/dev/null || skip "setpriv is not installed"
	NOBODY_DIR=$(mktemp -d /tmp/smimp-0930.XXXXXX)
	chmod 755 "$NOBODY_DIR"
	cp bob.key bob.pub "$NOBODY_DIR/"
	mkfifo "$NOBODY_DIR/in"
	chown -R nobody "$NOBODY_DIR"
	export SMIMP_HOME="$NOBODY_DIR/home"
	# Held open here, so that the commands block reading it.
	exec 7<>"$NOBODY_DIR/in"
	# Each blocked on its standard input, with the secret key loaded.
	blocked_as_nobody "$SMIMP_BUILD/bin/smimp-open" -i "$NOBODY_DIR/bob.key"
	not_dumpable "$BLOCKED_PID"
	kill "$BLOCKED_PID"
	blocked_as_nobody "$SMIMP_BUILD/bin/smimp-seal" -i "$NOBODY_DIR/bob.key" \
		-r "$NOBODY_DIR/bob.pub"
	not_dumpable "$BLOCKED_PID"
	kill "$BLOCKED_PID"
	exec 7>&-
}

# full CMD...: CMD with its standard output on /dev/full fails, exit 1.
full() {
	run -1 --separate-stderr bash -c '"$@" >/dev/full' - "$@"
	[[ "$stderr" == *": cannot write"*": No space left on device" ]]
}

@test "a standard output that cannot be written is a failure, in every command" {
	[ -w /dev/full ] || skip "no /dev/full"
	for c in smimp smimp-keygen smimp-seal smimp-open smimp-send smimp-sendmail \
	    smimp-fetch smimp-trust smimp-revoke smimpd; do
		full "$c" -h
		full "$c" --version
	done
	export SMIMP_HOME="$BOBHOME"
	full smimp-trust list
	full smimp-trust show alice@example.org
	full smimp-trust verify alice@example.org "$(smimp-keygen --fingerprint alice.pub)"
	full smimp-trust add bob.pub
	full smimp-keygen --fingerprint alice.pub
	full smimp-keygen --export-age -i alice.key
	full smimp-keygen --export-age-recipient alice.pub
	full smimp-keygen -u dave@example.org -o dave --no-passphrase
	full smimp-seal -i alice.key -r bob.pub msg
	[ "$stderr" = "smimp-seal: cannot write standard output: No space left on device" ]
	seal msg >m.age
	for how in --quiet --headers --json --mime; do
		full smimp-open -i bob.key $how m.age
		[ "${stderr##*$'\n'}" = "smimp-open: cannot write standard output: No space left on device" ]
	done
}

@test "smimpd: -n and the administration commands fail when their answer cannot be written, and an invitation's lost token is said" {
	[ -w /dev/full ] || skip "no /dev/full"
	smimpd --data data --domain example.org adduser alice@example.org alice.pub
	full smimpd --data data users
	[ "$stderr" = "smimpd: cannot write to standard output: No space left on device" ]
	smimpd --data data --domain example.org invite bob@example.org >/dev/null
	full smimpd --data data invites
	full smimpd --data data stats
	full smimpd --data data --domain example.org --plain-http -n
	[ "$stderr" = "smimpd: cannot write to standard output: No space left on device" ]
	full smimpd --data data --domain example.org invite carol@example.org
	[ "$stderr" = "smimpd: cannot write the token to standard output (the invitation for carol@example.org is of no use: make another): No space left on device" ]
	# Written, the same commands succeed.
	run -0 --separate-stderr smimpd --data data users
	[ "$output" = "alice@example.org $(smimp-keygen --fingerprint alice.pub)" ]
	run -0 --separate-stderr smimpd --data data --domain example.org invite carol@example.org
	[[ "$output" =~ ^[A-Za-z0-9_-]{32}$ ]]
	[ -z "$stderr" ]
}

@test "Ctrl-C or SIGTERM at the passphrase prompt gives the terminal its echo back" {
	cat >run.sh <<-'EOF'
	trap : INT
	sh -c 'echo $$ >kpid; exec smimp-keygen -u dave@example.org -o dave'
	echo "rc=$?"
	stty -a | tr ' ;' '\n\n' | grep -x -- '-\{0,1\}echo' | sed 's/^/stty: /'
	sleep 60
	EOF
	term_start run.sh
	term_wait 'Passphrase for the new key:'
	# Waiting for the passphrase: no core dump either.
	grep -Eq '^Max core file size +0 +0 ' "/proc/$(cat kpid)/limits"
	tmux -S "$TMUX_SOCK" send-keys 'half a passphrase' C-c
	term_wait '^stty:'
	screen
	[ "$(screen | grep -o 'rc=[0-9]*')" = "rc=130" ]
	[ "$(screen | grep '^stty:')" = "stty: echo" ]
	[ ! -e dave.key ]
	tmux -S "$TMUX_SOCK" kill-server
	rm kpid
	# Another terminal: SIGTERM from elsewhere.

	term_start run.sh
	term_wait 'Passphrase for the new key:'
	tmux -S "$TMUX_SOCK" send-keys 'half'
	kill -TERM "$(cat kpid)"
	term_wait '^stty:'
	[ "$(screen | grep -o 'rc=[0-9]*')" = "rc=143" ]
	[ "$(screen | grep '^stty:')" = "stty: echo" ]
	[ ! -e dave.key ]
}

@test "--json is ASCII with every control escaped, and the body round-trips" {
	printf 'x\033[2J\177\302\205\342\200\256\360\237\230\200"\\\n\t\001' >odd
	seal odd >odd.age
	run -0 --separate-stderr open_bob --json odd.age
	[ -z "$(LC_ALL=C tr -d ' -~' <<<"$output")" ]
	grep -q '"body":"x\\u001B\[2J\\u007F\\u0085\\u202E\\uD83D\\uDE00\\"\\\\\\n\\t\\u0001","body_encoding":"utf-8"}' <<<"$output"
	python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); sys.exit(d["body"].encode() != open("odd","rb").read())' <<<"$output"
}

@test "--json streams a 64 MiB body in constant memory, as valid JSON that round-trips" {
	[ -x /usr/bin/time ] || skip "/usr/bin/time is not installed"
	# Text with controls (escaped, 6 bytes each), then bytes (base64).
	head -c 48M /dev/urandom | base64 -w 100 | tr 'A' '\001' | head -c 64M >text
	head -c 64M /dev/urandom >bytes
	for f in text bytes; do
		seal "$f" >"$f.age"
		SMIMP_HOME="$BOBHOME" /usr/bin/time -f '%M' -o rss \
			smimp-open -i bob.key -q --json "$f.age" >"$f.json"
		echo "$f: max RSS $(cat rss) KiB"
		[ "$(cat rss)" -lt 32768 ]
		python3 - "$f" <<-'PY'
		import base64, json, sys
		f = sys.argv[1]
		d = json.load(open(f + ".json"))
		enc = d["body_encoding"]
		body = d["body"].encode() if enc == "utf-8" else base64.b64decode(d["body"])
		want = open(f, "rb").read()
		assert enc == ("utf-8" if f == "text" else "base64"), enc
		assert d["body_length"] == len(want) == 64 * 1024 * 1024
		assert body == want
		PY
		rm -f "$f.json" "$f.age"
	done
}
