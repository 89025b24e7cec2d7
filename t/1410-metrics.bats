#!/usr/bin/env bats
# The metrics endpoint (metrics-listen, --metrics): the Prometheus text
# format, read by a strict parser (t/promtext.py) and by promtool when
# it is installed; values that move as requests are made, messages are
# queued and relayed; labels that stay few; and hostile requests to the
# metrics port.

load helper

setup() {
	common_setup
	two_domains
	smimpd --data org --domain example.org adduser alice@example.org alice.pub
	smimpd --data net --domain example.net adduser bob@example.net bob.pub
	MET=$(free_port)
}

teardown() { stop_servers org net; }

# scrape: the metrics, checked, as "series value" lines in samples.
scrape() {
	curl -s -f --max-time 5 "http://127.0.0.1:$MET/metrics" >scrape.txt &&
		python3 "$REPO/t/promtext.py" scrape.txt >samples
}

# metric SERIES: its value in the last scrape, 0 when it is absent.
metric() {
	local v
	v=$(awk -v s="$1" 'substr($0, 1, length(s) + 1) == s " " {
		print substr($0, length(s) + 2) }' samples)
	echo "${v:-0}"
}

# mget PATH [CURL-ARGS...]: the status the metrics port answers.
mget() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${@:2}" "http://127.0.0.1:$MET$1"; }
get() { curl -s -o /dev/null -w '%{http_code}' --cacert cert.pem "${@:2}" "https://127.0.0.1:$ORG$1"; }

@test "requests by endpoint and status, latency per endpoint, in the strict format" {
	start org example.org "$ORG" --metrics "127.0.0.1:$MET"
	run -0 scrape
	v=$(metric 'smimpd_requests_total{endpoint="version",status="200"}')
	for _ in 1 2 3; do [ "$(get /smimp/version)" = 200 ]; done
	[ "$(get /smimp/no-such-thing-x7)" = 404 ]
	[ "$(get /smimp/version -X POST)" = 405 ]
	run -0 scrape
	[ "$(metric 'smimpd_requests_total{endpoint="version",status="200"}')" -eq $((v + 3)) ]
	# No route: one label, never the path asked for.
	[ "$(metric 'smimpd_requests_total{endpoint="none",status="404"}')" -eq 1 ]
	[ "$(metric 'smimpd_requests_total{endpoint="none",status="405"}')" -eq 1 ]
	! grep -q no-such-thing scrape.txt || false
	# Every request in the histogram of its endpoint.
	[ "$(metric 'smimpd_request_duration_seconds_count{endpoint="version"}')" -eq $((v + 3)) ]
	[ "$(metric 'smimpd_request_duration_seconds_bucket{endpoint="version",le="+Inf"}')" -eq $((v + 3)) ]
	for f in 'smimpd_requests_total counter' 'smimpd_request_duration_seconds histogram' \
	    'smimpd_relay_queue_entries gauge' 'smimpd_relay_queue_oldest_seconds gauge' \
	    'smimpd_relay_attempts_total counter' 'smimpd_store_commit_duration_seconds histogram' \
	    'smimpd_config_reloads_total counter' 'smimpd_build_info gauge'; do
		grep -qx "# TYPE $f" scrape.txt || { echo "no TYPE $f"; false; }
	done
	[ "$(metric 'smimpd_build_info{version="0.1.0"}')" = 1 ]
	started=$(metric smimpd_start_time_seconds)
	[ "$started" -le "$(date +%s)" ]
	[ "$started" -gt $(($(date +%s) - 60)) ]
	# The endpoint names come from the route table, each once.
	run -0 bash -c "grep -o 'endpoint=\"[a-z_]*\"' samples | sort -u | wc -l"
	[ "$output" -le 16 ]
}

@test "the relay queue's depth and age, outcomes by domain, store commits" {
	start org example.org "$ORG" --metrics "127.0.0.1:$MET"
	run -0 scrape
	[ "$(metric smimpd_relay_queue_entries)" = 0 ]
	[ "$(metric smimpd_relay_queue_oldest_seconds)" = 0 ]
	commits=$(metric smimpd_store_commit_duration_seconds_count)
	# example.net is down: the message waits.
	echo "to a domain that is down" | smimp-seal -i alice.key -r bob.pub >m.age
	mid=$(smimp-send -i alice.key m.age)
	wait_for org.log "relay $mid to example.net: .*retrying"
	sleep 1.2
	run -0 scrape
	[ "$(metric smimpd_relay_queue_entries)" = 1 ]
	[ "$(metric smimpd_relay_queue_oldest_seconds)" -ge 1 ]
	[ "$(metric 'smimpd_relay_attempts_total{domain="example.net",outcome="deferred"}')" -ge 1 ]
	[ "$(metric 'smimpd_relay_attempts_total{domain="example.net",outcome="delivered"}')" = 0 ]
	[ "$(metric smimpd_store_commit_duration_seconds_count)" -gt "$commits" ]
	# It comes up: delivered, the queue empty again.
	start net example.net "$NET"
	wait_for org.log "relayed $mid to example.net"
	sleep 1.2
	run -0 scrape
	[ "$(metric 'smimpd_relay_attempts_total{domain="example.net",outcome="delivered"}')" = 1 ]
	[ "$(metric smimpd_relay_queue_entries)" = 0 ]
	[ "$(metric smimpd_relay_queue_oldest_seconds)" = 0 ]
	[ "$(metric 'smimpd_requests_total{endpoint="submit",status="201"}')" = 1 ]
}

@test "the first 32 relay domains get a label, every later one counts as other" {
	local i rs=() resolve=$SMIMP_RESOLVE
	# 34 domains whose servers refuse connections (port 1).
	for i in $(seq 34); do
		mkid "r$i" "r$i@d$i.test"
		rs+=(-r "r$i.pub")
		resolve+=",d$i.test=127.0.0.1:1"
	done
	printf 'resolve %s\ncacert %s\nretry-base 60\n' "$resolve" "$PWD/cert.pem" >common.conf
	start org example.org "$ORG" --metrics "127.0.0.1:$MET"
	echo "to many domains" | smimp-seal -i alice.key "${rs[@]}" >m.age
	run -0 --separate-stderr smimp-send -i alice.key m.age
	for _ in $(seq 100); do
		[ "$(grep -c 'retrying' org.log)" -ge 34 ] && break
		sleep 0.1
	done
	run -0 scrape
	run -0 bash -c "grep '^smimpd_relay_attempts_total{domain=\"d[0-9]*.test\",outcome=\"deferred\"} 1$' samples | wc -l"
	[ "$output" -eq 32 ]
	[ "$(metric 'smimpd_relay_attempts_total{domain="other",outcome="deferred"}')" -eq 2 ]
	[ "$(grep -c '^smimpd_relay_attempts_total{' samples)" -eq $((33 * 3)) ]
}

@test "promtool reads the exposition too" {
	command -v promtool >/dev/null || skip "promtool (Debian package prometheus) is not installed"
	start org example.org "$ORG" --metrics "127.0.0.1:$MET"
	[ "$(get /smimp/version)" = 200 ]
	run -0 scrape
	run -0 promtool check metrics <scrape.txt
}

@test "hostile requests to the metrics port get 404 or are cut, and cost the server nothing" {
	printf 'header-timeout 2\n' >>common.conf
	start org example.org "$ORG" --metrics "127.0.0.1:$MET"
	[ "$(mget /metrics -X POST --data-binary 'x=1')" = 404 ]
	[ "$(mget /metrics -I)" = 404 ]
	[ "$(mget /metrics/)" = 404 ]
	[ "$(mget /Metrics)" = 404 ]
	[ "$(mget /smimp/version)" = 404 ]
	[ "$(mget /x/../metrics --path-as-is)" = 404 ]
	[ "$(mget '/metrics?x=1')" = 200 ]
	# Headers past the connection's memory, a target far too long.
	[ "$(mget /metrics -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' a)")" = 431 ]
	[ "$(mget "/$(head -c 100000 /dev/zero | tr '\0' a)")" = 414 ]
	# Bytes that are no HTTP at all, and connections that send nothing:
	# each is closed (the idle ones after header-timeout, 2 s), while
	# the server answers at once.
	python3 "$REPO/t/stalled.py" "$MET" 5 001b5b324a2047415242414745200d0a0d0a \
		$(for _ in $(seq 20); do echo -; done) >closed &
	py=$!
	sleep 0.5
	[ "$(get /smimp/version --max-time 2)" = 200 ]
	wait "$py"
	[ "$(cat closed)" = 21 ]
	run -0 scrape
	# The metrics port counts nothing of its own among the requests.
	run -0 bash -c "grep -o 'endpoint=\"[a-z_]*\",status=\"[0-9]*\"' samples | sort -u"
	[ "$output" = 'endpoint="version",status="200"' ]
	! grep -q $'\x1b' org.log || false
}

@test "metrics-listen: off by default, from the file or --metrics, checked" {
	start org example.org "$ORG"
	run -7 curl -s "http://127.0.0.1:$MET/metrics"
	stop_servers org
	run -2 --separate-stderr smimpd -n --domain example.org --plain-http --metrics nonsense
	[ "$stderr" = "smimpd: metrics-listen 'nonsense': expected ADDRESS:PORT" ]
	run -2 --separate-stderr smimpd -n --domain example.org --plain-http --metrics 0.0.0.0:0
	[ "$stderr" = "smimpd: metrics-listen '0.0.0.0:0': expected ADDRESS:PORT" ]
	run -2 --separate-stderr smimpd -n --domain example.org --plain-http --metrics localhost:9090
	[ "$stderr" = "smimpd: metrics-listen 'localhost:9090': not an IPv4 address" ]
	run -2 --separate-stderr smimpd -n --domain example.org --plain-http \
		--listen "127.0.0.1:$ORG" --metrics "127.0.0.1:$ORG"
	[ "$stderr" = "smimpd: metrics-listen '127.0.0.1:$ORG': the port of listen; it needs a port of its own" ]
	printf 'metrics-listen 127.0.0.1:%s\n' "$MET" >m.conf
	run -0 smimpd -n -f m.conf --domain example.org --plain-http
	# A port taken: smimpd does not start.  Held until smimpd is
	# done, however long its start takes.
	python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); open("held", "w").close(); time.sleep(120)' "$MET" &
	holder=$!
	for _ in $(seq 100); do [ -e held ] && break; sleep 0.1; done
	run -1 --separate-stderr smimpd -d -f m.conf --data org \
		--domain example.org --listen "127.0.0.1:$ORG" --plain-http
	kill "$holder"
	[ "$stderr" = "smimpd: cannot listen on 127.0.0.1:$MET: Address already in use" ]
}

@test "a scraper hammering the metrics port holds up no request" {
	start org example.org "$ORG" --metrics "127.0.0.1:$MET"
	(for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$MET/metrics"; done) &
	hammer=$!
	for _ in $(seq 10); do
		[ "$(get /smimp/version --max-time 2)" = 200 ]
	done
	wait "$hammer"
	run -0 scrape
	[ "$(metric 'smimpd_requests_total{endpoint="version",status="200"}')" -ge 10 ]
}
