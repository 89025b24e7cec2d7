#!/usr/bin/env bats
# Faults: the relay against a peer that drops connections, answers 5xx,
# takes a message and never answers, or is killed in the middle of a
# request (t/faults/flakyproxy.py in front of a real smimpd, and the
# real one killed with SIGKILL): every message is delivered exactly
# once in the end, and nothing bounces.

load helper
load faults/faults

setup() {
	common_setup
	alice_and_bob_domains
	fault_conf
	N=$((FAULT_SCALE / 4))
}

teardown() {
	if [ -f "$BATS_TEST_TMPDIR/proxy.pid" ]; then
		touch "$BATS_TEST_TMPDIR/proxy.stop"
		kill "$(cat "$BATS_TEST_TMPDIR/proxy.pid")" 2>/dev/null
		kill "$(cat "$BATS_TEST_TMPDIR/plan.pid")" 2>/dev/null
	fi
	stop_servers org net
}

# via_proxy: example.net reached at $PROXY, by the servers and the
# clients alike; its server names the proxy as its base URL.
via_proxy() {
	PROXY=$(free_port)
	export SMIMP_RESOLVE="example.org=127.0.0.1:$ORG,example.net=127.0.0.1:$PROXY"
	printf 'resolve %s\ncacert %s\nretry-base 1\nretry-max 2\n' \
		"$SMIMP_RESOLVE" "$SMIMP_CACERT" >common.conf
	fault_conf
}

# proxy_loop: the proxy, started again whenever it dies, until
# proxy.stop exists.
proxy_loop() {
	while [ ! -e proxy.stop ]; do
		python3 "$REPO/t/faults/flakyproxy.py" "$PROXY" "$NET" plan \
			>>proxy.out 2>>proxy.err || true
	done
}

# start_proxy: proxy_loop in the background, waited for.
start_proxy() {
	proxy_loop >/dev/null 2>&1 3>&- &
	echo $! >proxy.pid
	server_up "$PROXY"
}


# relayed_count: how many distinct messages org's log says it relayed.
relayed_count() {
	grep -o 'relayed [^ ]* to example.net' org.log | sort -u | wc -l
}

# relayed N: until org's log says N distinct messages were relayed (60 s
# at most); none bounced.
relayed() {
	for _ in $(seq 600); do
		[ "$(relayed_count)" -ge "$1" ] && break
		sleep 0.1
	done
	! grep -q bounced org.log || false
	[ "$(relayed_count)" -eq "$1" ]
}

# bob_has_each_once: bob fetches every message in m/ exactly once, and
# alice's mailbox holds no bounce.
bob_has_each_once() {
	local c
	names m/*.age >all
	c=$(fetch_counts "$BOBHOME" bob.key mail-bob)
	[ "$c" = "$N 0 0" ] || {
		echo "bob fetched $c, not $N" >&2
		return 1
	}
	in_maildir mail-bob | cmp - all
	complete_maildir mail-bob
	c=$(fetch_counts "$ALICEHOME" alice.key mail-alice)
	[ "$c" = "0 0 0" ]
}

# send_all: N messages (every tenth one 100 kB) from alice to bob,
# each accepted.
send_all() {
	seal_many r "$N" bob.pub
	send_many sent m/r.*.age
	wait_sent
	[ "$(sent_results sent | wc -l)" -eq "$N" ]
}

@test "a peer that drops connections, answers 5xx, cuts bodies, takes a message without answering or is killed mid-request: each message delivered once" {
	via_proxy
	# The first eight deliveries misbehave, each its own way, then six
	# go well, and round again.  A delivery that fails is tried again:
	# there is always a next one, and every misdeed is done.  Those
	# that pass the delivery on come twice: the peer may answer one
	# of them 503 (it could not yet reach example.org, on a loaded
	# machine), and then what they test did not happen.
	printf '%s\n' drop 503 drop-after 500-after cut kill drop-after kill \
		pass pass pass pass pass pass >plan
	start net example.net "$NET" --base-url "https://127.0.0.1:$PROXY/smimp"
	start_proxy
	start org example.org "$ORG"
	send_all
	relayed "$N"
	# Every misdeed was done at least once, on a delivery.
	for a in drop pass 503 drop-after 500-after cut kill; do
		grep -q "^$a /smimp/v1/deliver" proxy.out || {
			cat proxy.out
			return 1
		}
	done
	# Taken but not answered: the retry found it delivered already.
	grep -q '^drop-after /smimp/v1/deliver[^ ]* 20[01]$' proxy.out &&
		grep -q '^kill /smimp/v1/deliver[^ ]* 20[01]$' proxy.out || {
		cat proxy.out
		return 1
	}
	server_up "$PROXY"
	bob_has_each_once
}

@test "the peer killed with SIGKILL in the middle of deliveries, again and again: each message delivered once" {
	via_proxy
	# Every delivery's body trickles in over two seconds, so that the
	# peer is killed while it reads one, however late a loaded
	# machine lets this loop see it begin.
	echo slow >plan
	export FLAKYPROXY_SLOW=2
	start net example.net "$NET" --base-url "https://127.0.0.1:$PROXY/smimp"
	start org example.org "$ORG"
	# All of them queued first (example.net not reachable yet), so
	# that the deliveries, not the submissions, are what the kills
	# fall on.
	send_all
	start_proxy
	seen=0 kills=0
	while [ "$kills" -lt 5 ]; do
		# A delivery begins (one that failed at the last kill, tried
		# again); it takes two seconds; the peer dies in it.
		for _ in $(seq 300); do
			[ "$(grep -c '^begin ' proxy.out)" -gt "$seen" ] && break
			[ "$(relayed_count)" -ge "$N" ] && break
			sleep 0.1
		done
		[ "$(grep -c '^begin ' proxy.out)" -gt "$seen" ] || break
		sleep "0.$((2 + RANDOM % 5))"
		seen=$(grep -c '^begin ' proxy.out)
		kill_server net
		store_check net
		start net example.net "$NET" --base-url "https://127.0.0.1:$PROXY/smimp"
		kills=$((kills + 1))
	done
	# The kills fell on deliveries: each cut at least one short.
	[ "$kills" -ge 3 ]
	[ "$(grep -c '^slow .* -$' proxy.out)" -ge 3 ]
	relayed "$N"
	bob_has_each_once
}
