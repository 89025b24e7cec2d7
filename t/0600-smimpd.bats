#!/usr/bin/env bats
# smimpd: accounts, discovery and the identity directory over real HTTPS
# on a loopback port chosen at run time.

load helper

setup() {
	common_setup
	make_cert
	mkid alice alice@example.org
	mkid bob bob@example.net
}

teardown() {
	[ -f pid ] && kill -TERM "$(cat pid)" 2>/dev/null || true
	[ -f pid ] && wait_gone "$(cat pid)"
	return 0
}

wait_gone() {
	for _ in $(seq 150); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null || true
}

get() { curl -s --cacert cert.pem -w '\n%{http_code}' "https://127.0.0.1:$PORT$1" "${@:2}"; }
# The same signed by alice, as directory lookups must be.
aget() { signed_get alice.key example.org "https://127.0.0.1:$PORT$1" -w '\n%{http_code}' "${@:2}"; }

@test "accounts: adduser, users, deluser, and their errors" {
	run -0 --separate-stderr smimpd --data data --domain example.org adduser alice@example.org alice.pub
	run -0 smimpd --data data users
	[ "$output" = "alice@example.org $(smimp-keygen --fingerprint alice.pub)" ]
	[ "$(stat -c %a data)" = 700 ]
	run -1 --separate-stderr smimpd --data data --domain example.org adduser alice@example.org alice.pub
	[ "$stderr" = "smimpd: alice@example.org already has an account" ]
	run -1 --separate-stderr smimpd --data data --domain example.org adduser carol@example.org alice.pub
	[ "$stderr" = "smimpd: 'alice.pub' is the identity of alice@example.org, not carol@example.org" ]
	run -1 --separate-stderr smimpd --data data --domain example.org adduser bob@example.net bob.pub
	[ "$stderr" = "smimpd: bob@example.net is not an address of example.org" ]
	head -c 50 /dev/urandom >bad.pub
	run -3 --separate-stderr smimpd --data data adduser alice@example.org bad.pub
	run -0 smimpd --data data deluser ALICE@example.org
	run -1 --separate-stderr smimpd --data data deluser alice@example.org
	[ "$stderr" = "smimpd: alice@example.org has no account" ]
	run -2 --separate-stderr smimpd --data data adduser 'not an address' alice.pub
}

@test "a data directory that others may write is refused; root may use the server user's" {
	mkdir -m 777 data
	# Another user could swap the store, the server key or a body in it.
	run -1 --separate-stderr smimpd --data data --domain example.org adduser alice@example.org alice.pub
	[ "$stderr" = "smimpd: 'data' is writable by group or others (mode 777); run chmod go-w 'data'" ]
	run -1 --separate-stderr timeout 10 smimpd -d --data data --domain example.org \
		--listen "127.0.0.1:$(free_port)" --cert cert.pem --key key.pem
	[ "$stderr" = "smimpd: 'data' is writable by group or others (mode 777); run chmod go-w 'data'" ]
	[ -z "$(ls data)" ]
	chmod 1777 data
	run -1 --separate-stderr smimpd --data data --domain example.org adduser alice@example.org alice.pub
	chmod 700 data
	[ "$(id -u)" = 0 ] || skip "not root"
	chown nobody data
	run -0 smimpd --data data --domain example.org adduser alice@example.org alice.pub
}

@test "the commands, run by root on the server user's data directory, leave nothing of root's in it" {
	[ "$(id -u)" = 0 ] || skip "not root"
	mkdir -m 700 data
	chown nobody:nogroup data
	# A store that root made would be root's: the server, as its own
	# user, could not open it.
	run -0 smimpd --data data --domain example.org adduser alice@example.org alice.pub
	run -0 smimpd --data data --domain example.org invite bob@example.org
	run -0 smimpd --data data stats
	run -0 smimpd --data data deluser alice@example.org
	[ -e data/spool ] && [ -e data/smimpd.lock ]
	[ "${SMIMP_TEST_STORE:-sqlite}" != sqlite ] || { [ -e data/smimpd.db ] && [ -e data/bodies/ff ]; }
	[ -z "$(find data ! -user nobody -o ! -group nogroup)" ]
}

@test "discovery and the directory over HTTPS" {
	smimpd --data data --domain example.org adduser alice@example.org alice.pub
	start_server
	run -0 get /.well-known/smimp.txt
	[ "${lines[0]}" = "https://127.0.0.1:$PORT/smimp" ]
	[ "${lines[1]}" = 200 ]
	run -0 get /smimp/version
	[ "${lines[0]}" = '{"versions":["v1"],"software":"smimpd 0.1.0"}' ]
	run -0 get /smimp/v1/meta
	[[ "${lines[0]}" == '{"domain":"example.org","server_key":"'* ]]
	# The log served is the one registered, byte for byte, to a signed
	# request only.
	run -0 get /smimp/v1/users/alice@example.org/log
	[ "${lines[1]}" = 401 ]
	signed_get alice.key example.org "https://127.0.0.1:$PORT/smimp/v1/users/Alice@example.org/log" >served.pub
	cmp served.pub alice.pub
	smimp-trust add served.pub >/dev/null
	grep -q 'GET /smimp/v1/users/Alice@example.org/log 200' server.log
	! grep -qi 'secret' server.log || false
}

@test "bad requests get clear 4xx answers and the server keeps serving" {
	smimpd --data data --domain example.org adduser alice@example.org alice.pub
	start_server
	run -0 aget /smimp/v1/users/bob@example.org/log
	[ "${lines[1]}" = 404 ]
	[ "${lines[0]}" = '{"error":"unknown user"}' ]
	run -0 aget /smimp/v1/users/bob@example.net/log
	[ "${lines[1]}" = 404 ]
	run -0 aget '/smimp/v1/users/not%20valid/log'
	[ "${lines[1]}" = 400 ]
	run -0 get /smimp/nothing
	[ "${lines[1]}" = 404 ]
	run -0 get /smimp/version -X POST --data-binary @alice.pub
	[ "${lines[1]}" = 405 ]
	# A path of its own under users/ADDRESS/ with another method is
	# that path's 405, signed or not, not taken for a lookup.
	run -0 get /smimp/v1/users/alice@example.org/prekeys/claim
	[ "${lines[1]}" = 405 ]
	run -0 aget /smimp/v1/users/alice@example.org/prekeys/claim
	[ "${lines[1]}" = 405 ]
	[ "${lines[0]}" = '{"error":"method not allowed"}' ]
	run -0 get "/smimp/v1/users/$(head -c 3000 /dev/zero | tr '\0' a)@example.org/log"
	[ "${lines[1]}" = 414 ]
	# Garbage on the socket does not bring it down.
	head -c 5000 /dev/urandom | timeout 5 openssl s_client -quiet -connect "127.0.0.1:$PORT" >/dev/null 2>&1 || true
	run -0 get /smimp/version
	[ "${lines[-1]}" = 200 ]
	# Plain HTTP to the HTTPS port is refused, not served.
	run curl -s --max-time 5 "http://127.0.0.1:$PORT/smimp/version"
	[ "$status" -ne 0 ] || [[ "$output" != *versions* ]]
}

@test "SIGTERM stops the server cleanly" {
	start_server
	kill -TERM "$(cat pid)"
	wait_gone "$(cat pid)"
	! kill -0 "$(cat pid)" 2>/dev/null || false
	grep -q 'signal 15: finishing requests in flight' server.log
	grep -q 'stopped' server.log
	rm pid
}

@test "configuration: file errors are all reported with file and line" {
	printf 'domain example.org\nlisten nowhere\nbogus 1\nplain-http maybe\n' >bad.conf
	run -2 --separate-stderr smimpd -n -f bad.conf
	grep -qx 'smimpd: bad.conf:3: unknown setting .bogus.' <<<"$stderr"
	grep -qx 'smimpd: bad.conf:4: plain-http is yes or no' <<<"$stderr"
	[[ "$stderr" == *"smimpd: bad.conf: 2 errors" ]]
	printf '# a server\ndomain example.org\nlisten 127.0.0.1:8443\ncert cert.pem\nkey key.pem\n' >good.conf
	run -0 smimpd -n -f good.conf
	[ "$output" = "smimpd: configuration OK" ]
	run -2 --separate-stderr smimpd -n --domain example.org
	[ "$stderr" = "smimpd: HTTPS needs a certificate and a key (--cert, --key), or --plain-http behind a TLS proxy" ]
	run -2 --separate-stderr smimpd -n --domain example.org --plain-http --listen nowhere
	[ "$stderr" = "smimpd: listen 'nowhere': expected ADDRESS:PORT" ]
	# A setting given again replaces the one before; a flag, both.
	printf 'domain a.example\nplain-http yes\ndomain b.example\n' >twice.conf
	run -1 --separate-stderr smimpd -f twice.conf --data d check --json
	[ "$(jq -r .domain <<<"$output")" = b.example ]
	run -1 --separate-stderr smimpd -f twice.conf --data d --domain c.example check --json
	[ "$(jq -r .domain <<<"$output")" = c.example ]
}

@test "configuration: a file that another user may write, or with a NUL byte, is refused" {
	printf 'domain example.org\nplain-http yes\nlisten 127.0.0.1:8443\n' >smimpd.conf
	cp smimpd.conf before.conf
	chmod 666 smimpd.conf
	run -1 --separate-stderr smimpd -n -f smimpd.conf
	[ "$stderr" = "smimpd: 'smimpd.conf' is writable by group or others (mode 666); run chmod go-w 'smimpd.conf'" ]
	run -1 --separate-stderr smimpd -f smimpd.conf --data data users
	[ "$stderr" = "smimpd: 'smimpd.conf' is writable by group or others (mode 666); run chmod go-w 'smimpd.conf'" ]
	[ ! -e data ]
	chmod 644 smimpd.conf
	run -0 smimpd -n -f smimpd.conf
	cmp smimpd.conf before.conf
	# A pipe is its maker's alone: settings may still come from one.
	run -0 smimpd -n -f <(cat smimpd.conf)
	[ "$output" = "smimpd: configuration OK" ]
	# A NUL byte would end the file early, the lines after it unread.
	printf 'domain example.org\nplain-http yes\n\0bogus 1\nlisten nowhere\n' >nul.conf
	run -2 --separate-stderr smimpd -n -f nul.conf
	[ "$stderr" = "smimpd: nul.conf:3: a NUL byte in the line" ]
	printf 'domain example.org\nplain-http yes\nlisten 127.0.0.1:8443\0 junk\n' >nul.conf
	run -2 --separate-stderr smimpd -n -f nul.conf
	[ "$stderr" = "smimpd: nul.conf:3: a NUL byte in the line" ]
	[ "$(id -u)" = 0 ] || skip "not root: no file of another user to make"
	chown nobody smimpd.conf
	run -1 --separate-stderr smimpd -n -f smimpd.conf
	[ "$stderr" = "smimpd: 'smimpd.conf' belongs to uid $(id -u nobody), not to you: refusing to use it" ]
}

@test "configuration: a store password in a file every user may read is warned about, never printed" {
	printf 'domain example.org\nplain-http yes\nlisten 127.0.0.1:8443\n' >base.conf
	for store in 'postgresql://smimp:s3cret@db.example/smimp' \
		'postgres://db.example/smimp?sslmode=require&password=s3cret'; do
		{ cat base.conf; echo "store $store"; } >smimpd.conf
		chmod 644 smimpd.conf
		run -0 --separate-stderr smimpd -n -f smimpd.conf
		[ "$stderr" = "smimpd: warning: smimpd.conf holds the store's password, and every user may read it (mode 644): run chmod o-r 'smimpd.conf'" ]
		[ "$output" = "smimpd: configuration OK" ]
		chmod 640 smimpd.conf
		run -0 --separate-stderr smimpd -n -f smimpd.conf
		[ -z "$stderr" ]
	done
	# No password, no warning: a user name alone, a password file.
	for store in 'postgresql://smimp@db.example/smimp' \
		'postgresql://db.example/smimp?passfile=/etc/smimpd/pgpass' \
		'postgresql:///smimp?host=/run/postgresql&user=a:b'; do
		{ cat base.conf; echo "store $store"; } >smimpd.conf
		chmod 644 smimpd.conf
		run -0 --separate-stderr smimpd -n -f smimpd.conf
		[ -z "$stderr" ]
	done
}

@test "listen: an IPv6 address in brackets, [::] serving IPv4 clients too; malformed ones refused" {
	for l in '::1:8443' '[::1:8443' '[zz]:8443' '[::1]' '[::1]:0' '[::1]:65536'; do
		run -2 --separate-stderr smimpd -n --domain example.org --plain-http --listen "$l"
		case $l in
		'::1:8443'|'[::1:8443') want="an IPv6 address goes in brackets: [ADDRESS]:PORT" ;;
		'[zz]:8443') want="not an IPv6 address" ;;
		*) want="expected ADDRESS:PORT" ;;
		esac
		[ "$stderr" = "smimpd: listen '$l': $want" ]
	done
	run -0 smimpd -n --domain example.org --plain-http --listen '[::]:8443'
	python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null ||
		skip "no IPv6 on this machine"
	PORT=$(free_port)
	smimpd -d -v --data data --domain example.org --listen "[::]:$PORT" --cert cert.pem \
		--key key.pem 2>server.log &
	echo $! >pid
	server_up "$PORT"
	grep -q "serving example.org on \[::\]:$PORT (HTTPS)" server.log
	run -0 curl -s --cacert cert.pem --resolve "localhost:$PORT:[::1]" "https://localhost:$PORT/smimp/version"
	[[ "$output" == '{"versions":["v1"]'* ]]
	# An IPv4 client is logged as such, not as ::ffff:127.0.0.1.
	run -0 curl -s -o /dev/null -w '%{http_code}' --cacert cert.pem "https://127.0.0.1:$PORT/smimp/v1/mailbox"
	[ "$output" = 401 ]
	kill -TERM "$(cat pid)"
	wait_gone "$(cat pid)"
	rm pid
	grep -q 'GET /smimp/v1/mailbox 401 from 127.0.0.1 signer -' server.log
	grep -q 'GET /smimp/version 200 from ::1 signer -' server.log
}

@test "stalled clients are cut off after the timeout and never block others" {
	printf 'timeout 1\n' >t.conf
	start_server -f t.conf
	# Thirty connections that never finish a TLS handshake or a request.
	python3 "$REPO/t/stalled.py" "$PORT" 4 \
		$(for i in $(seq 30); do [ $((i % 2)) = 1 ] && echo 160301 || echo -; done) >closed &
	py=$!
	sleep 0.5
	# Meanwhile others are served at once.
	run -0 get /smimp/version --max-time 2
	[ "${lines[-1]}" = 200 ]
	wait "$py"
	[ "$(cat closed)" = 30 ]
}

@test "every route smimpd serves is in smimpd(8) and in PROTOCOL.md 8.4" {
	run -0 python3 - "$REPO" <<'EOF'
import re, sys
repo = sys.argv[1]
table_c = open(repo + "/server/routes.c").read()
routes = re.findall(r'\{\s*"[a-z_]+",\s*"([A-Z]+)",\s*"([^"]+)",\s*([^,]+),',
                    table_c)
# Each route's name (the metrics' endpoint label) is its own.
labels = re.findall(r'\{\s*"([a-z_]+)",\s*"[A-Z]+",', table_c)
if len(labels) != len(routes) or len(set(labels)) != len(labels):
    print("route names: %s" % labels)
# smimpd(8): ".It Li GET {base}/v1/mailbox , GET|DELETE {base}/v1/mailbox/ID"
man = set()
for line in open(repo + "/man/smimpd.8").read().splitlines():
    if line.startswith(".It Li "):
        for part in line[7:].split(" , "):
            m = re.match(r"([A-Z|]+) (\S+)$", part.strip())
            if m:
                man.update((meth, m.group(2)) for meth in m.group(1).split("|"))
proto = open(repo + "/doc/PROTOCOL.md").read()
sec = proto[proto.index("### 8.4"):proto.index("### 8.5")]
table = set(re.findall(r"`([A-Z]+) (\S+)`", sec))

def names(docs, meth, path, flags):
    want = path if "ROUTE_ROOT" in flags else "{base}" + path
    for m, p in docs:
        if m != meth:
            continue
        if "*" in want:
            # One segment written as a placeholder: .../ADDRESS/...
            pre, post = want.split("*")
            mid = p[len(pre):len(p) - len(post)]
            if p.startswith(pre) and p.endswith(post) and mid.isupper():
                return True
        elif "ROUTE_PREFIX" in flags:
            # A prefix route is written with a placeholder: .../ID
            if p.startswith(want) and p[len(want):][:1].isupper():
                return True
        elif p == want:
            return True
    return False

for meth, path, flags in routes:
    for doc, docs in (("smimpd.8", man), ("PROTOCOL.md 8.4", table)):
        if not names(docs, meth, path, flags):
            print("%s does not name %s %s" % (doc, meth, path))
print(len(routes), "routes")
EOF
	# Nothing missing, and the table was read (12 routes today).
	[[ "$output" =~ ^([0-9]+)\ routes$ ]]
	[ "${BASH_REMATCH[1]}" -ge 12 ]
}
