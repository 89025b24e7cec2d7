# Shared by the fault suites (t/13NN-fault-*.bats), after t/helper.bash:
# how many messages a round sends, a server setting that lets one
# sender submit them all at once, sealing and sending many messages
# concurrently, and checks of what a Maildir and a store hold.
#
# FAULT_SCALE messages a round (default 200; `make faults` runs 1000),
# FAULT_ROUNDS rounds of each fault (default 3), FAULT_CLIENTS clients
# sending at once (default 50; `make faults`: one a message).

FAULT_SCALE=${FAULT_SCALE:-200}
FAULT_ROUNDS=${FAULT_ROUNDS:-3}

# fault_conf: common.conf (two_domains) without the limits that would
# refuse one sender's many submissions at once: per-sender, lookup and
# per-domain rates, and connections from one address; and relay leases
# of 2 s, so that what a killed server was relaying is taken again
# within the suites' bounds (on a shared store a new process cannot
# know the leases of the one killed, and waits them out).
fault_conf() {
	printf 'rate-sender 0\nrate-lookup 0\nrate-lookup-domain 0\nrate-domain 0\nconnections-per-address 4096\nrelay-lease 2\n' \
		>>common.conf
}

# fault_setup: common_setup and two_domains (t/helper.bash), with
# carol@example.org's keys and her home $CAROLHOME, trusting alice, and
# fault_conf.
fault_setup() {
	common_setup
	two_domains
	mkid carol carol@example.org
	CAROLHOME="$BATS_TEST_TMPDIR/carolhome"
	trust_as "$CAROLHOME" alice.pub trusted
	fault_conf
}

# fault_accounts: alice and carol accounts at org (example.org), bob at
# net (example.net).
fault_accounts() {
	smimpd --data org --domain example.org adduser alice@example.org alice.pub &&
		smimpd --data org --domain example.org adduser carol@example.org carol.pub &&
		smimpd --data net --domain example.net adduser bob@example.net bob.pub
}

# seal_many NAME N PUB...: N messages from alice (alice.key) to the
# recipients PUB..., sealed into m/NAME.1.age .. m/NAME.N.age; every
# tenth one 100 kB, past what a server keeps inside its database, the
# others a line.  Each message is unique (its name and number inside).
# Sealed in one process (t/unit/sealmany): a smimp-seal for each took
# much of a round's time, on the sanitizer build most of all.
seal_many() {
	local name=$1 n=$2
	shift 2
	mkdir -p m
	"$SMIMP_BUILD/t/sealmany" -m "$name" alice.key alice.pub "$n" \
		"m/$name." "$@" || return 1
	[ "$(ls m/"$name".*.age | wc -l)" -eq "$n" ]
}

# send_many DIR FILE...: the FILEs submitted as alice by FAULT_CLIENTS
# smimp-sends at once (default 50; each its own connection, the FILEs
# dealt out among them in turn), in the background (wait_sent waits).
# Client K's FILEs, one a line, are in DIR/K.files, what it printed (the
# message id of each one accepted, in order) in DIR/K.out, its errors
# in DIR/K.err, its exit status in DIR/K.rc.
send_many() {
	local dir=$1 f k i=0 n
	shift
	n=${FAULT_CLIENTS:-50}
	mkdir -p "$dir"
	for f in "$@"; do
		echo "$f" >>"$dir/$((i % n)).files"
		i=$((i + 1))
	done
	SENDERS=()
	for k in $(seq 0 $((n - 1))); do
		[ -f "$dir/$k.files" ] || break
		(
			rc=0
			mapfile -t files <"$dir/$k.files"
			smimp-send -i alice.key "${files[@]}" >"$dir/$k.out" \
				2>"$dir/$k.err" || rc=$?
			echo "$rc" >"$dir/$k.rc"
		) &
		SENDERS+=($!)
	done
}

# wait_sent: until every smimp-send of the last send_many has ended.
wait_sent() {
	wait "${SENDERS[@]}"
}

# acked DIR: how many of send_many's submissions were acknowledged (the
# client got 201 and printed the id) so far.
acked() {
	cat "$1"/*.out 2>/dev/null | wc -l
}

# wait_acked DIR N: until N submissions are acknowledged (30 s at most).
wait_acked() {
	for _ in $(seq 300); do
		[ "$(acked "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# sent_results DIR: every client of send_many ended with all of its
# messages accepted (exit 0) or some refused as a temporary failure
# (exit 75); prints the ids accepted, one a line.  Anything else
# (another exit status, an id too many) is an error, shown.
sent_results() {
	local rc k bad=0 nf no
	for rc in "$1"/*.rc; do
		k=${rc%.rc}
		nf=$(wc -l <"$k.files")
		no=$(wc -l <"$k.out")
		case $(cat "$rc") in
		0) [ "$no" -eq "$nf" ] || bad=1 ;;
		75) [ "$no" -lt "$nf" ] || bad=1 ;;
		*) bad=1 ;;
		esac
		[ "$bad" -eq 0 ] || {
			echo "$k: exit $(cat "$rc"), $no of $nf accepted: $(cat "$k.err")" >&2
			return 1
		}
		cat "$k.out"
	done
}

# sent_map DIR: for a send_many whose every message was accepted, each
# message id with its file, "ID FILE" one a line.
sent_map() {
	local f
	for f in "$1"/*.files; do paste -d' ' "${f%.files}.out" "$f"; done
}

# names FILE...: the Maildir names of the messages FILE..., sorted.
names() {
	[ $# -eq 0 ] || b2sum -l 128 "$@" | sed 's/ .*/.smimp/' | sort
}

# fetch_counts HOME KEY DIR: smimp-fetch into DIR; prints "fetched
# again other" from its JSON summary; its exit status is fetch's.
fetch_counts() {
	local out rc
	out=$(SMIMP_HOME="$1" smimp-fetch -i "$2" -d "$3" --json 2>"$3.err")
	rc=$?
	printf '%s\n' "$out" | sed -n \
		's/.*"fetched":\([0-9]*\).*"other":\([0-9]*\).*"again":\([0-9]*\).*/\1 \3 \2/p'
	return $rc
}

# fetch_new ALL HOME KEY DIR: fetch into DIR; DIR.new gets the names
# that came (none filed before), each one in the file ALL, whole and
# verified.  Prints how many.
fetch_new() {
	local c got again other
	in_maildir "$4" >before
	c=$(fetch_counts "$2" "$3" "$4")
	read -r got again other <<<"$c"
	comm -13 before <(in_maildir "$4") >"$4.new"
	[ "$again" -eq 0 ] && [ "$other" -eq 0 ] &&
		[ "$(wc -l <"$4.new")" -eq "$got" ] || {
		echo "$4: fetched $c, $(wc -l <"$4.new") new" >&2
		return 1
	}
	[ -z "$(comm -23 "$4.new" "$1")" ] || {
		echo "$4: filed a message not sent" >&2
		return 1
	}
	complete_maildir "$4"
	echo "$got"
}

# reads_served PORT: what needs no write is answered as ever by the
# server at PORT: the version, discovery, the server's key.
reads_served() {
	local p
	for p in smimp/version .well-known/smimp.txt smimp/v1/meta; do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert cert.pem "https://127.0.0.1:$1/$p")" = 200 ] || {
			echo "$p not served" >&2
			return 1
		}
	done
}

# in_maildir DIR: the names in DIR/new and DIR/.Other/new, sorted.
in_maildir() {
	{
		ls "$1/new" 2>/dev/null
		ls "$1/.Other/new" 2>/dev/null
	} | sort
}

# complete_maildir DIR [any-tmp]: every message in the Maildir DIR is
# whole: its bytes hash to its name (smimp-fetch names a message by its
# bytes), so nothing half-written is filed; and tmp/ is empty, unless
# any-tmp (a fetch was killed: the next one clears what it left).
complete_maildir() {
	local f bad
	bad=$(for f in "$1"/new/* "$1"/.Other/new/*; do
		[ -e "$f" ] && echo "$f"
	done | xargs -r b2sum -l 128 | awk '{ n = $2; sub(".*/", "", n);
		if (n != $1 ".smimp") print $2 }')
	[ -z "$bad" ] || {
		echo "$bad: its bytes are not the message it names" >&2
		return 1
	}
	[ "${2:-}" = any-tmp ] || [ -z "$(ls -A "$1/tmp" 2>/dev/null)" ] || {
		echo "$1/tmp: not empty" >&2
		return 1
	}
}

# store_kind: the store the suites run on (sqlite unless
# SMIMP_TEST_STORE names another).
store_kind() { printf '%s\n' "${SMIMP_TEST_STORE:-sqlite}"; }

# needs_sqlite: skip a test of faults in the SQLite store's own files
# when the suite runs on another store, which keeps them elsewhere.
needs_sqlite() {
	[ "$(store_kind)" = sqlite ] || skip "faults in the SQLite store's files"
}

# store_check DIR: the store of data directory DIR is whole, its server
# stopped (killed, say), before any smimpd opens it again.  For the
# SQLite store: the database passes its integrity check, and each row's
# body is whole: a file of the row's size for a row that names one,
# else a blob of that size.  Other stores check themselves.
store_check() {
	local db=$1/smimpd.db bad=0 name size
	[ "$(store_kind)" = sqlite ] || return 0
	[ "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok ] || {
		echo "$db: integrity check failed" >&2
		return 1
	}
	while IFS='|' read -r name size; do
		[ "$(stat -c %s "$1/bodies/${name:0:2}/$name" 2>/dev/null)" = "$size" ] || {
			echo "$1: body $name missing or not $size bytes" >&2
			bad=1
		}
	done < <(sqlite3 "$db" "SELECT body, size FROM mailbox WHERE body IS NOT NULL UNION ALL SELECT body, size FROM outbound WHERE body IS NOT NULL")
	[ "$(sqlite3 "$db" "SELECT count(*) FROM mailbox WHERE body IS NULL AND length(data) <> size")" = 0 ] || {
		echo "$db: a mailbox blob of the wrong size" >&2
		bad=1
	}
	[ "$(sqlite3 "$db" "SELECT count(*) FROM outbound o WHERE body IS NULL AND size IS NOT (SELECT length(data) FROM outbound_data d WHERE d.id = o.id)")" = 0 ] || {
		echo "$db: a queued blob missing or of the wrong size" >&2
		bad=1
	}
	return $bad
}

# store_clean DOMAIN DIR: the store of data directory DIR (its server
# stopped) opened by smimpd, which finishes what a crash interrupted,
# and then clean: every file under bodies/ named by a row (or by the
# trash of deletions to finish), nothing left in spool/.
store_clean() {
	local db=$2/smimpd.db
	smimpd --data "$2" --domain "$1" users >/dev/null || return 1
	[ "$(store_kind)" = sqlite ] || return 0
	comm -23 <(find "$2/bodies" -type f -printf '%f\n' | sort) \
		<(sqlite3 "$db" "SELECT body FROM mailbox WHERE body IS NOT NULL UNION SELECT body FROM outbound WHERE body IS NOT NULL UNION SELECT name FROM trash" | sort) >orphans
	[ ! -s orphans ] || {
		echo "$2: body files no row names: $(cat orphans)" >&2
		return 1
	}
	[ -z "$(ls -A "$2/spool")" ] || {
		echo "$2/spool: not empty" >&2
		return 1
	}
}

# crashed NAME DOMAIN [CMD...]: the server NAME killed with SIGKILL,
# CMD run, its store checked as the crash left it (store_check), then
# opened and checked again (store_clean).
crashed() {
	kill_server "$1" || return 1
	[ $# -le 2 ] || "${@:3}" || return 1
	store_check "$1" && store_clean "$2" "$1"
}

# crash_round R [CMD...]: round R of a crash under load (the servers
# org of example.org and net of example.net running; alice sending to
# carol@example.org, her home $CAROLHOME, and bob@example.net):
# FAULT_SCALE messages sent at once, org killed with SIGKILL somewhere
# between an eighth and a half of the way, CMD run (a power loss, say),
# its store checked, org started again.  Then every message that was
# acknowledged is in carol's mailbox, none twice; everything sent again
# is accepted, and stored once.
crash_round() {
	local r=$1 at
	shift
	seal_many "$r" "$FAULT_SCALE" carol.pub bob.pub
	names m/"$r".*.age >"all$r"
	send_many "sent$r" m/"$r".*.age
	at=$((FAULT_SCALE / 8 + RANDOM % (FAULT_SCALE * 3 / 8)))
	wait_acked "sent$r" "$at" || return 1
	crashed org example.org "$@" || return 1
	wait_sent
	sent_results "sent$r" >"acked$r" || return 1
	echo "round $r: SIGKILL after $at, $(wc -l <"acked$r") acknowledged"
	start org example.org "$ORG" || return 1
	# What carol's mailbox holds, before anything is sent again.
	fetch_new "all$r" "$CAROLHOME" carol.key mail-carol >/dev/null || return 1
	mv mail-carol.new "first$r"
	send_many "resent$r" m/"$r".*.age
	wait_sent
	[ "$(sent_results "resent$r" | wc -l)" -eq "$FAULT_SCALE" ] || return 1
	fetch_new "all$r" "$CAROLHOME" carol.key mail-carol >/dev/null || return 1
	sort "first$r" mail-carol.new | cmp - "all$r" || return 1
	acked_in "acked$r" "resent$r" "first$r"
}

# bob_fetches_all ALL: bob fetches into mail-bob until it holds every
# message named in the file ALL (60 s at most), each once, nothing else.
bob_fetches_all() {
	local want total=0 got
	want=$(wc -l <"$1")
	for _ in $(seq 120); do
		got=$(fetch_new "$1" "$BOBHOME" bob.key mail-bob) || return 1
		total=$((total + got))
		[ "$total" -lt "$want" ] || break
		sleep 0.5
	done
	[ "$total" -eq "$want" ] && in_maildir mail-bob | cmp - "$1"
}

# relayed_once: after crash_rounds, bob gets every message of every
# round once (60 s at most), and carol has each once too.
relayed_once() {
	names m/*.age >all
	bob_fetches_all all && in_maildir mail-carol | cmp - all
}

# acked_in IDS RESENT GOT: each message id in the file IDS (acknowledged
# before a fault), found through the complete send_many RESENT, has its
# Maildir name in the file GOT (fetched before anything was sent again).
acked_in() {
	names $(sent_map "$2" | awk 'NR == FNR { a[$1]; next } $1 in a { print $2 }' "$1" -) >"$1.names"
	[ "$(wc -l <"$1.names")" -eq "$(wc -l <"$1")" ] &&
		[ -z "$(comm -23 "$1.names" "$3")" ]
}

# kill_server NAME: SIGKILL to the server start started, waited for.
kill_server() {
	local pid
	pid=$(cat "$BATS_TEST_TMPDIR/$1.pid")
	kill -KILL "$pid" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
	return 1
}

# failio_setup: t/faults/failio.c preloaded into every command the test
# runs from now on (the servers it starts above all), off until
# failio_on.  A sanitizer build is told not to insist on coming first.
failio_setup() {
	[ -f "$SMIMP_BUILD/t/failio.so" ] || {
		echo "no $SMIMP_BUILD/t/failio.so: make it first" >&2
		return 1
	}
	export LD_PRELOAD=$SMIMP_BUILD/t/failio.so
	export FAILIO_CONTROL=$BATS_TEST_TMPDIR/failio.ctl
	export ASAN_OPTIONS=$ASAN_OPTIONS:verify_asan_link_order=0
}

# failio_on NAME=VALUE...: the faults these settings say (see
# t/faults/failio.c) from now on, counted afresh, each logged in
# failio.log; failio_off: none.
failio_on() {
	printf '%s\n' "log=$BATS_TEST_TMPDIR/failio.log" "$@" >"$FAILIO_CONTROL.tmp" &&
		mv "$FAILIO_CONTROL.tmp" "$FAILIO_CONTROL"
}
failio_off() { rm -f "$FAILIO_CONTROL"; }

# lazy_mount DIR: DIR a lazyfs (t/faults/lazyfs.c: a disk that loses
# what was not synced when power_loss says so) over DIR.disk, its pid in
# DIR.lazyfs.pid; the test is skipped when that cannot be (no lazyfs
# built, no /dev/fuse, no right to mount).
lazy_mount() {
	[ -x "$SMIMP_BUILD/t/lazyfs" ] || skip "no $SMIMP_BUILD/t/lazyfs (it needs libfuse3-dev)"
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	mkdir -p "$1" "$1.disk"
	"$SMIMP_BUILD/t/lazyfs" "$1.disk" "$1" >"$1.lazyfs.log" 2>&1 3>&- &
	echo $! >"$1.lazyfs.pid"
	for _ in $(seq 50); do
		mountpoint -q "$1" && return 0
		sleep 0.1
	done
	skip "cannot mount a FUSE file system: $(cat "$1.lazyfs.log")"
}

# power_loss DIR...: what was not synced on the lazyfs at each DIR is
# lost (its writers killed first, as a power cut would).
power_loss() {
	local d
	for d in "$@"; do echo drop >"$d/.lazyfs" || return 1; done
}

# lazy_umount DIR...: each lazyfs unmounted and stopped, for teardown.
lazy_umount() {
	local d
	for d in "$@"; do
		d=$BATS_TEST_TMPDIR/$d
		if mountpoint -q "$d"; then
			fusermount3 -u "$d" 2>/dev/null || umount -l "$d"
		fi
		[ -f "$d.lazyfs.pid" ] && kill "$(cat "$d.lazyfs.pid")" 2>/dev/null
	done
	return 0
}
