#!/usr/bin/env bats
# Devices end to end, with the real commands on both sides: a removed
# device's stamps refused by the other domain even for what it queued
# before, two devices each fetching every message once while one of
# them is killed mid-fetch, and the steps of doc/CI.md as written: by
# hand, and its GitHub Actions and GitLab CI jobs through smimp-sendmail.

load helper

setup() {
	common_setup
	alice_and_bob_domains
	SMIMP_HOME="$BOBHOME" smimp-trust add alice.pub --tier trusted >/dev/null 2>&1
}

teardown() { stop_servers org net; }

as_alice() { SMIMP_HOME="$ALICEHOME" "$@"; }
as_bob() { SMIMP_HOME="$BOBHOME" "$@"; }
# enroll NAME SCOPE: a device of bob's, its log beside its key.
enroll() {
	enroll_device bob.key bob@example.net "$1" "$2" &&
		as_bob smimp-fetch -i "$1.key" --log-only -q
}
# inbox DIR KEY HOME: the bodies of the messages in DIR, opened, sorted.
inbox() {
	local f
	for f in "$1"/new/* "$1"/cur/*; do
		[ -f "$f" ] && SMIMP_HOME="$3" smimp-open -q -i "$2" "$f"
	done | sort
}

@test "what a device queued before it was removed is refused by the recipients' domain, and bounces to bob" {
	start net example.net "$NET"
	enroll ci send
	echo "sent while example.org is down" | as_bob smimp-seal -i ci.key -r alice@example.org -o m.age
	mid=$(as_bob smimp-send -i ci.key m.age)
	run -0 smimp-revoke -i bob.key --remove-device ci
	start org example.org "$ORG"
	wait_for net.log "bounced $mid to bob@example.net"
	run -0 --separate-stderr as_alice smimp-fetch -i alice.key -d mail-alice
	[[ "$stderr" == "smimp-fetch: 0 fetched"* ]]
	run -0 --separate-stderr as_bob smimp-fetch -i bob.key -d mail-bob
	grep -rqx "message-id: $mid" mail-bob/new
	grep -rq "delivery stamp does not verify" mail-bob/new
}

@test "two devices and the identity key each get all 20 messages exactly once, while the phone is killed mid-fetch again and again" {
	start org example.org "$ORG"
	start net example.net "$NET"
	enroll phone full
	as_alice smimp-trust refresh -i alice.key bob@example.net >/dev/null
	for i in $(seq 20); do
		printf 'message %02d\n' "$i" | as_alice smimp-seal -i alice.key -r bob@example.net |
			as_alice smimp-send -i alice.key >/dev/null
	done
	seq -f 'message %02g' 20 >want
	# The phone: killed at random points until one run finishes.
	for i in $(seq 30); do
		as_bob smimp-fetch -i phone.key -d mail-phone -q &
		pid=$!
		sleep "0.0$((RANDOM % 9))"
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	run -0 as_bob smimp-fetch -i phone.key -d mail-phone -q
	inbox mail-phone phone.key "$BOBHOME" >got-phone
	cmp want got-phone
	# Nothing left for the phone; everything still there for bob's key.
	run -0 --separate-stderr as_bob smimp-fetch -i phone.key -d mail-phone
	[[ "$stderr" == "smimp-fetch: 0 fetched"* ]]
	run -0 as_bob smimp-fetch -i bob.key -d mail-bob -q
	inbox mail-bob bob.key "$BOBHOME" >got-bob
	cmp want got-bob
}

@test "doc/CI.md as written: a send device enrolled by code, given its log, sending; then removed" {
	start org example.org "$ORG"
	start net example.net "$NET"
	# 1. On the runner.
	run -0 --separate-stderr smimp-keygen --device ci-runner -u bob@example.net -o ci-runner --no-passphrase
	code=$(sed -n 's/^code: \([A-Z2-7-]*\) (until .*)$/\1/p' <<<"$output")
	# 2. Where bob's identity key is.
	run -0 smimp-revoke -i bob.key --add-device ci-runner.request --scope send --code "$code"
	[[ "$output" == "bob@example.net: device ci-runner added, scope send ("*"), published to example.net" ]]
	# 3. The job's log.
	export SMIMP_HOME="$BATS_TEST_TMPDIR/cihome"
	run -0 smimp-fetch -i ci-runner.key --log-only
	# 4. Sending.
	echo "build 42 failed" | smimp-seal -i ci-runner.key -r alice@example.org -s "CI: build failed" -o msg
	run -0 smimp-send -i ci-runner.key msg
	run -1 --separate-stderr smimp-fetch -i ci-runner.key -d mail
	[ "$stderr" = "smimp-fetch: 'ci-runner.key' is the key of the device ci-runner of bob@example.net, whose scope is send: it cannot fetch" ]
	run -0 as_alice smimp-fetch -i alice.key -d mail-alice -q
	run -0 --separate-stderr as_alice smimp-open -i alice.key mail-alice/new/*
	[ "$output" = "build 42 failed" ]
	[[ "$stderr" == *"bob@example.net, device ci-runner"* ]]
	# 6. Removed: the server refuses the job at once.
	run -0 smimp-revoke -i bob.key --remove-device ci-runner
	run -1 --separate-stderr smimp-send -i ci-runner.key msg
	[[ "$stderr" == "smimp-send: "*"@example.net: HTTP 401: unknown signer" ]]
	# The job's own client learns it from the log, which a removed
	# device may still read.
	run -5 --separate-stderr smimp-fetch -i ci-runner.key --log-only
	[[ "$stderr" == *"the device ci-runner of bob@example.net was removed on "* ]]
}

# ci_job github|gitlab: the shell that doc/CI.md's job of that CI system
# runs to tell ops, as written there.
ci_job() {
	awk -v want="$1" '
		/^```yaml$/ { block = 1; first = 1; next }
		/^```$/ { block = 0; next }
		!block { next }
		first { first = 0; kind = /github/ ? "github" : "gitlab" }
		kind != want { next }
		kind == "github" && /^        run: \|$/ { on = 1; next }
		kind == "github" && on { if (!/^          /) { on = 0; next }
			print substr($0, 11); next }
		kind == "gitlab" && /^notify-failure:/ { job = 1; next }
		kind == "gitlab" && job && /^  script:/ { on = 1; next }
		kind == "gitlab" && on && /^    - \|$/ { next }
		kind == "gitlab" && on && /^    - / { print substr($0, 7); next }
		kind == "gitlab" && on && /^      / { print substr($0, 7); next }
		kind == "gitlab" && on { on = 0 }
	' "$REPO/doc/CI.md"
}

@test "doc/CI.md's GitHub Actions and GitLab CI jobs, as written, tell ops through smimp-sendmail, from a send device" {
	start org example.org "$ORG"
	start net example.net "$NET"
	mkid ops ops@example.net
	smimpd --data net --domain example.net adduser ops@example.net ops.pub
	OPSHOME="$BATS_TEST_TMPDIR/opshome"
	trust_as "$OPSHOME" alice.pub trusted
	enroll_device alice.key alice@example.org ci-runner send
	as_alice smimp-fetch -i ci-runner.key --log-only -q
	ci_job github >github.sh
	ci_job gitlab >gitlab.sh
	grep -q 'smimp-sendmail -t$' github.sh
	grep -q 'smimp-sendmail -t$' gitlab.sh
	# GitHub: the secrets' contents in the environment; bash -e.
	run -0 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/gh" \
		CI_KEY="$(cat ci-runner.key)" CI_PUB="$(cat ci-runner.pub)" \
		GITHUB_REPOSITORY=acme/app GITHUB_RUN_NUMBER=42 GITHUB_RUN_ID=7 \
		GITHUB_SERVER_URL=https://github.example bash -e github.sh
	[[ "$stderr" == "smimp-sendmail: pinned ops@example.net, fingerprint "*" (first use: check it with its owner)" ]]
	# GitLab: File variables, each the path of a file; each line on its own.
	run -0 --separate-stderr env SMIMP_HOME="$BATS_TEST_TMPDIR/gl/.smimp" \
		SMIMP_CI_KEY="$PWD/ci-runner.key" SMIMP_CI_PUB="$PWD/ci-runner.pub" \
		CI_PROJECT_PATH=acme/app CI_PIPELINE_ID=99 \
		CI_PIPELINE_URL=https://gitlab.example/acme/app/-/pipelines/99 bash -e gitlab.sh
	[[ "$stderr" == "smimp-sendmail: pinned ops@example.net, fingerprint "*" (first use: check it with its owner)" ]]
	[ "$(stat -c %a "$BATS_TEST_TMPDIR/gh/identity.key")" = 600 ]
	SMIMP_HOME="$OPSHOME" smimp-fetch -i ops.key -d mail-ops -q
	[ "$(ls mail-ops/new | wc -l)" -eq 2 ]
	for f in mail-ops/new/*; do
		SMIMP_HOME="$OPSHOME" smimp-open -i ops.key --headers "$f" 2>/dev/null
		SMIMP_HOME="$OPSHOME" smimp-open -i ops.key "$f" 2>>who
	done >got
	grep -qx 'subject: acme/app: build 42 failed' got
	grep -qx 'https://github.example/acme/app/actions/runs/7' got
	grep -qx 'subject: acme/app: pipeline 99 failed' got
	grep -qx 'https://gitlab.example/acme/app/-/pipelines/99' got
	[ "$(grep -c 'alice@example.org, device ci-runner' who)" -eq 2 ]
}
