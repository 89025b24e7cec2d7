#!/usr/bin/env bats
# Faults: a full disk.  smimpd's data directory is a small tmpfs of its
# own (mount(8): as root only; skipped otherwise), nearly filled, then
# filled to the last byte.  Never a 2xx for what is not stored; what
# needs no write (or, on a nearly full disk, only a small one) is
# served; once space returns, by a file deleted or the file system
# grown, the same server takes everything.  A peer's deliveries to a
# full disk get 503 (never 507, which would bounce them) and arrive
# once space returns.

load helper
load faults/faults

setup() {
	[ "$(id -u)" -eq 0 ] || skip "mounting a tmpfs needs root"
	fault_setup
	M=$((FAULT_SCALE / 10))
}

teardown() {
	local d
	stop_servers org net
	for d in org net; do
		[ -f "$BATS_TEST_TMPDIR/$d.pid" ] && kill_server "$d"
		mountpoint -q "$BATS_TEST_TMPDIR/$d" && umount -l "$BATS_TEST_TMPDIR/$d"
	done
	return 0
}

# small_disk DIR: the data directory DIR a tmpfs of 48 MB of its own.
small_disk() {
	mkdir "$1"
	mount -t tmpfs -o size=48m,mode=0700 smimp-test "$1" 2>mount.err ||
		skip "cannot mount a tmpfs: $(cat mount.err)"
}

# leave DIR BYTES: DIR filled (by files filler.N) until BYTES are free;
# 0 fills it to the last byte.
leave() {
	local avail n
	n=$(ls "$1"/filler.* 2>/dev/null | wc -l)
	avail=$(df --output=avail -B1 "$1" | tail -1)
	if [ "$2" -eq 0 ]; then
		cat /dev/zero >"$1/filler.$n" 2>/dev/null || true
	else
		head -c $((avail - $2)) /dev/zero >"$1/filler.$n"
	fi
}

# fetch_carol: fetch_new for carol: her new messages into mail-carol,
# their names in mail-carol.new; prints how many.
fetch_carol() { fetch_new all "$CAROLHOME" carol.key mail-carol; }

# sealed NAME: M messages to carol, m/NAME.N.age, and M more,
# m/NAMEf.N.age (every tenth one 100 kB, a file of the store's), and
# two larger than the room a nearly full disk has left,
# m/NAME.large1.age and m/NAME.large2.age; all of their names added to
# the file all.
sealed() {
	local i
	seal_many "$1" "$M" carol.pub
	seal_many "$1f" "$M" carol.pub
	for i in 1 2; do
		{
			echo "large $1.$i"
			head -c 12000000 /dev/urandom | base64
		} | smimp-seal -i alice.key -r carol.pub -o "m/$1.large$i.age"
	done
	names m/*.age >all
}

@test "a nearly full disk, then a full one: large messages refused, never a 2xx for what is not stored, reads served, all taken once space returns" {
	small_disk org
	fault_accounts
	start org example.org "$ORG"
	pid=$(cat org.pid)
	for r in 1 2; do
		sealed "$r"
		# Room for the database to grow (its log up to a checkpoint's
		# 4 MB), none for a large message.
		leave org 12000000
		send_many "small$r" m/"$r".[0-9]*.age
		wait_sent
		[ "$(sent_results "small$r" | wc -l)" -eq "$M" ]
		send_many "large$r" m/"$r".large*.age
		wait_sent
		[ -z "$(sent_results "large$r")" ]
		cat "large$r"/*.err >large.err
		[ "$(grep -c "HTTP 503: cannot spool the message" large.err)" -eq 2 ]
		reads_served "$ORG"
		[ "$(fetch_carol)" -eq "$M" ]
		# Not a byte left: whatever is acknowledged is stored.
		leave org 0
		send_many "full$r" m/"$r"f.*.age m/"$r".large*.age
		wait_sent
		sent_results "full$r" >"fullacked$r"
		echo "round $r: $(wc -l <"fullacked$r") acknowledged on a full disk"
		reads_served "$ORG"
		# A signed read needs its nonce stored: served while the
		# database's log has room left, else 503; nothing lost.
		in_maildir mail-carol >before
		run --separate-stderr env SMIMP_HOME="$CAROLHOME" smimp-fetch -i carol.key -d mail-carol
		[ "$status" -eq 0 ] || [[ "$status $stderr" == "75 "*"HTTP 503: store unavailable" ]]
		complete_maildir mail-carol
		comm -13 before <(in_maildir mail-carol) >"fullgot$r"
		# Space returns: fillers deleted, or the file system grown.
		if [ "$r" -eq 1 ]; then
			rm org/filler.*
		else
			mount -o remount,size=128m org
		fi
		# What was acknowledged on the full disk is there.
		fetch_carol >/dev/null
		sort -o "fullgot$r" "fullgot$r" mail-carol.new
		send_many "resent$r" m/"$r"f.*.age m/"$r".large*.age
		wait_sent
		[ "$(sent_results "resent$r" | wc -l)" -eq $((M + 2)) ]
		fetch_carol >/dev/null
		in_maildir mail-carol | cmp - all
		acked_in "fullacked$r" "resent$r" "fullgot$r"
		[ "$(cat org.pid)" = "$pid" ]
		kill -0 "$pid"
	done
	crashed org example.org
}

@test "deliveries to a full disk: 503, retried, each delivered once when space returns, none bounced" {
	small_disk net
	fault_accounts
	start org example.org "$ORG"
	start net example.net "$NET"
	seal_many r "$M" bob.pub
	names m/*.age >all
	leave net 0
	send_many sent m/r.*.age
	wait_sent
	[ "$(sent_results sent | wc -l)" -eq "$M" ]
	wait_for org.log "example.net answered HTTP 503"
	rm net/filler.*
	for _ in $(seq 300); do
		[ "$(grep -c "relayed .* to example.net" org.log)" -ge "$M" ] && break
		sleep 0.1
	done
	[ "$(grep -o 'relayed [^ ]* to example.net' org.log | sort -u | wc -l)" -eq "$M" ]
	! grep -q bounced org.log || false
	[ "$(fetch_counts "$BOBHOME" bob.key mail-bob)" = "$M 0 0" ]
	in_maildir mail-bob | cmp - all
	complete_maildir mail-bob
	[ "$(fetch_counts "$ALICEHOME" alice.key mail-alice)" = "0 0 0" ]
}
