#!/usr/bin/env bats
# Faults: power loss.  The SQLite store, smimp-fetch's Maildir and the
# client's own files on t/faults/lazyfs.c, a FUSE file system that keeps
# what was written but not fsynced in memory and drops it on command (as
# LazyFS does for Jepsen).  After a drop, everything acknowledged is
# there, and nothing is half-written.  Skipped without libfuse3 or
# /dev/fuse.

load helper
load faults/faults

setup() {
	fault_setup
	M=$((FAULT_SCALE / 4))
}

teardown() {
	stop_servers org net
	lazy_umount org mail lazy
}

@test "the lazy file system drops what was not synced, and keeps what was" {
	lazy_mount lazy
	echo unsynced >lazy/unsynced
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600)
os.write(fd, b"synced\n"); os.fsync(fd); os.write(fd, b"not synced\n")' lazy/synced
	[ "$(cat lazy/unsynced)" = unsynced ]
	[ "$(cat lazy/synced)" = "$(printf 'synced\nnot synced')" ]
	power_loss lazy
	[ -e lazy/unsynced ]
	[ ! -s lazy/unsynced ]
	[ "$(cat lazy/synced)" = synced ]
}

@test "power lost with the server's store during concurrent submissions, again and again: each acknowledged message there once, nothing half-written" {
	needs_sqlite
	lazy_mount org
	fault_accounts
	power_loss org
	start net example.net "$NET"
	start org example.org "$ORG"
	for r in $(seq "$FAULT_ROUNDS"); do
		crash_round "$r" power_loss org
	done
	relayed_once
}

# send_round R: round R's M messages from alice to carol, sealed and
# sent; the file all names every message sent so far.
send_round() {
	seal_many "$1" "$M" carol.pub
	names m/*.age >all
	send_many "sent$1" m/"$1".*.age
	wait_sent
	[ "$(sent_results "sent$1" | wc -l)" -eq "$M" ]
}

# fetch_killed R DIR [FLAGS...]: carol's smimp-fetch into mail/carol,
# killed with SIGKILL once DIR holds a quarter of round R's messages
# beyond the earlier rounds' (or after 4 s).
fetch_killed() {
	local pid
	SMIMP_HOME="$CAROLHOME" smimp-fetch -q "${@:3}" -i carol.key -d mail/carol &
	pid=$!
	for _ in $(seq 200); do
		[ "$(ls "$2" 2>/dev/null | wc -l)" -ge $((($1 - 1) * M + M / 4)) ] && break
		sleep 0.02
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" || true
}

@test "power lost under smimp-fetch's Maildir, killed or done: every message filed whole, none lost or filed twice" {
	fault_accounts
	lazy_mount mail
	start org example.org "$ORG"
	for r in $(seq "$FAULT_ROUNDS"); do
		send_round "$r"
		# Killed in the middle of its work, then the power goes.
		fetch_killed "$r" mail/carol/new
		power_loss mail
		complete_maildir mail/carol any-tmp
		# Done, then the power goes: each message it acknowledged is
		# there, whole.
		run -0 --separate-stderr env SMIMP_HOME="$CAROLHOME" smimp-fetch -q -i carol.key -d mail/carol
		power_loss mail
		complete_maildir mail/carol
		in_maildir mail/carol | cmp - all
		[ "$(fetch_counts "$CAROLHOME" carol.key mail/carol)" = "0 0 0" ]
	done
}

# mime_maildir DIR: the names of the originals in carol's DIR/.sealed,
# sorted, once each is whole (its bytes hash to its name) and has its
# MIME form, whole (byte for byte what smimp-open --mime writes of it),
# in new/ of the inbox or .Other, and no MIME form is without its
# original; tmp/ is empty.
mime_maildir() {
	local f n bad=
	for f in "$1"/.sealed/*; do
		[ -e "$f" ] || continue
		n=$(basename "$f" .smimp)
		[ "$(b2sum -l 128 "$f" | cut -c1-32)" = "$n" ] || bad="$bad $f"
		[ "$(ls "$1/new/$n.eml" "$1/.Other/new/$n.eml" 2>/dev/null | wc -l)" -eq 1 ] ||
			bad="$bad $n.eml"
	done
	for f in "$1"/new/*.eml "$1"/.Other/new/*.eml; do
		[ -e "$f" ] || continue
		[ -e "$1/.sealed/$(basename "$f" .eml).smimp" ] || bad="$bad $f"
		# Whole: what smimp-open --mime writes of the original.
		SMIMP_HOME="$CAROLHOME" smimp-open -q -i carol.key --mime \
			"$1/.sealed/$(basename "$f" .eml).smimp" | cmp -s - "$f" ||
			bad="$bad $f"
	done
	[ -z "$bad" ] && [ -z "$(ls -A "$1/tmp")" ] || {
		echo "$1: not whole or not paired:$bad" >&2
		return 1
	}
	ls "$1/.sealed" | sort
}

@test "power lost under smimp-fetch --mime's Maildir, killed or done: every message filed once as MIME, whole, its original beside it" {
	fault_accounts
	lazy_mount mail
	start org example.org "$ORG"
	for r in $(seq "$FAULT_ROUNDS"); do
		send_round "$r"
		fetch_killed "$r" mail/carol/.sealed --mime
		power_loss mail
		run -0 --separate-stderr env SMIMP_HOME="$CAROLHOME" smimp-fetch -q --mime -i carol.key -d mail/carol
		power_loss mail
		mime_maildir mail/carol | cmp - all
		[ "$(fetch_counts "$CAROLHOME" carol.key mail/carol)" = "0 0 0" ]
	done
}

@test "power lost under the client's files: keys, the trust store and a sealed message written whole" {
	fault_accounts
	lazy_mount lazy
	smimp-keygen -u dave@example.org -o lazy/dave --no-passphrase 2>/dev/null
	SMIMP_HOME=lazy/home smimp-trust add carol.pub --tier trusted
	echo "for carol" | smimp-seal -i lazy/dave.key -r carol.pub -o lazy/m.age
	echo unsynced >lazy/control
	power_loss lazy
	# The drop bit: what was never synced is gone.
	[ ! -s lazy/control ]
	run -0 --separate-stderr env SMIMP_HOME=lazy/home smimp-trust list
	[[ "$output" == *carol@example.org* ]]
	trust_as "$CAROLHOME" lazy/dave.pub trusted
	run -0 --separate-stderr env SMIMP_HOME="$CAROLHOME" smimp-open -q -i carol.key lazy/m.age
	[ "$output" = "for carol" ]
	echo again | smimp-seal -i lazy/dave.key -r carol.pub >m2.age
	run -0 --separate-stderr env SMIMP_HOME="$CAROLHOME" smimp-open -q -i carol.key m2.age
	[ "$output" = again ]
}
