#!/usr/bin/env bats
# The completions, run in their shells as an installation loads them
# (t/complete.bash): what each command's getopt_long table takes, as its
# source declares it, is what bash, zsh and fish offer, no more; after
# each subcommand of smimp-trust only the options it takes; smimpd's
# options before its subcommand, and after it only the flags that
# subcommand takes; the front door, smimp, completes as the command it
# runs; file arguments still complete.  A shell that is not installed
# (or bash without bash-completion) is skipped.

load helper
load complete

setup() {
	common_setup
	SHELLS=
	for sh in bash zsh fish; do
		have_shell "$sh" && SHELLS="$SHELLS $sh"
	done
	[ -n "$SHELLS" ] || skip "neither bash-completion, zsh nor fish is installed"
	touch alice.pub notes.txt
	mkdir outdir
}

# src_opts CMD: the options CMD's getopt_long takes, one a line, each
# followed by " =" when it takes an argument.
src_opts() {
	local src=$REPO/cmd/$1.c
	[ -f "$src" ] || src=$REPO/server/$1.c
	sed -n '/struct option longopts\[\] =/,/};/p' "$src" |
		sed 's/REMOTE_LONGOPTS/{ "resolve", required_argument }, { "cacert", required_argument }, { "allow-http", required_argument }/' |
		grep -o '{ "[a-z-]*", [a-z_]*' |
		sed -E 's/\{ "([a-z-]*)", required_argument/--\1 =/; s/\{ "([a-z-]*)", .*/--\1/'
	sed -n '/shortopts\[\] =/,/;/p' "$src" | grep -o '"[^"]*"' | tr -d '"+' |
		grep -o '[a-zA-Z]:*' | sed -E 's/^(.):+$/-\1 =/; s/^([a-zA-Z])$/-\1/'
}

# options: the options among the matches on stdin, sorted; sendmail's
# -oi and -bm are its -o and -b.
options() { grep '^-' | sed -E 's/^(-[^-]).+/\1/' | sort -u; }

@test "each command's options, as getopt_long takes them, are what every shell offers" {
	for c in smimp-keygen smimp-seal smimp-open smimp-send smimp-sendmail \
	    smimp-fetch smimp-revoke smimpd; do
		# smimp-sendmail's -q is taken only to be refused (no queue
		# runner): not offered.
		want=$(src_opts "$c" | cut -d' ' -f1 | sort -u)
		[ "$c" != smimp-sendmail ] || want=$(grep -vx -- -q <<<"$want")
		for sh in $SHELLS; do
			got=$(complete_"$sh" "$c -" | options)
			[ "$got" = "$want" ] || {
				echo "$sh $c: offered but not taken: $(comm -13 <(echo "$want") <(echo "$got") | tr '\n' ' ')"
				echo "$sh $c: taken but not offered: $(comm -23 <(echo "$want") <(echo "$got") | tr '\n' ' ')"
				false
			}
		done
	done
}

@test "smimp-trust: the subcommands, and after each only the options it takes" {
	local -A nargs
	# The subcommands and the arguments each needs, from its table;
	# each option offered after one is run with it, to prove that
	# smimp-trust takes it there.
	while read -r sub n; do
		nargs[$sub]=$n
	done < <(sed -n '/subs\[\] = {/,/};/p' "$REPO/cmd/smimp-trust.c" |
		grep -o '{ "[a-z]*", [0-9]' | sed -E 's/\{ "([a-z]*)", ([0-9])/\1 \2/')
	# refresh, which takes any number of addresses, is parsed apart.
	grep -q 'strcmp(o->sub, "refresh")' "$REPO/cmd/smimp-trust.c" && nargs[refresh]=0
	[ "${#nargs[@]}" -ge 10 ]
	want=$(printf '%s\n' "${!nargs[@]}" | sort)
	all=$(src_opts smimp-trust | cut -d' ' -f1 | sort -u)
	for sh in $SHELLS; do
		got=$(complete_"$sh" "smimp-trust " | grep -v '^-')
		[ "$got" = "$want" ] || { echo "$sh: [$got]"; false; }
		got=$(complete_"$sh" "smimp-trust -i key " | grep -v '^-')
		[ "$got" = "$want" ] || { echo "$sh, after -i: [$got]"; false; }
		# Those before a subcommand, and those after each.
		union=$(complete_"$sh" "smimp-trust -" | options)
		for sub in "${!nargs[@]}"; do
			args=(x@example.org trusted)
			[ "$sub" = add ] && args=(alice.pub)
			offered=$(complete_"$sh" "smimp-trust $sub -" | options)
			union="$union $offered"
			for opt in $offered; do
				val=()
				src_opts smimp-trust | grep -qx -- "$opt =" && val=(x)
				run --separate-stderr timeout 20 smimp-trust "$sub" "$opt" "${val[@]}" \
					"${args[@]:0:${nargs[$sub]}}" </dev/null
				[ "$status" -ne 124 ]
				[ "$status" -ne 99 ]
				! grep -qE 'go(es)? with|unknown option' <<<"$stderr" ||
					{ echo "$sh offers $opt after $sub: $stderr"; false; }
			done
		done
		got=$(printf '%s\n' $union | sort -u)
		[ "$got" = "$all" ] || { echo "$sh: [$got] [$all]"; false; }
		[ "$(complete_"$sh" "smimp-trust set a@example.org ")" = "blocked
known
trusted" ]
		complete_"$sh" "smimp-trust add " | grep -qx alice.pub
	done
}

@test "smimpd: its options before a subcommand, after it the subcommand's flags" {
	# The subcommands and the queue's, from the man page's SYNOPSIS.
	page=$REPO/man/smimpd.8
	subs=$(sed -n '/^\.Sh SYNOPSIS/,/^\.Sh DESCRIPTION/p' "$page" |
		sed -n 's/^\.Cm \([a-z]*\)$/\1/p' | sort -u)
	qsubs=$(sed -n 's/^\.Cm list | \(.*\)/list | \1/p' "$page" |
		sed 's/ Ar ID//g' | tr -d ' ' | tr '|' '\n' | sort)
	[ "$(wc -l <<<"$subs")" -ge 10 ]
	[ "$(wc -l <<<"$qsubs")" -eq 6 ]
	mkdir -m 700 data
	for sh in $SHELLS; do
		[ "$(complete_"$sh" "smimpd ")" = "$subs" ]
		[ "$(complete_"$sh" "smimpd -f smimpd.conf ")" = "$subs" ]
		[ "$(complete_"$sh" "smimpd queue ")" = "$qsubs" ]
		[ "$(complete_"$sh" "smimpd --data data queue ")" = "$qsubs" ]
		# After a subcommand, smimpd's options are its words: none
		# offered.  Each flag offered is one the subcommand takes.
		for line in "stats" "check" "backup" "queue list" "queue show 1" \
		    "queue delete 1" "users" "adduser a@example.org"; do
			offered=$(complete_"$sh" "smimpd $line -" | options)
			case $line in
			"queue delete 1") want="--json
--no-bounce" ;;
			stats|check|backup|queue*) want=--json ;;
			*) want= ;;
			esac
			[ "$offered" = "$want" ] || { echo "$sh smimpd $line: [$offered]"; false; }
			for f in $offered; do
				# Words enough to be refused for their number, not
				# for the flag, where a flag may be left alone.
				more=()
				[[ $line == queue* ]] || more=(a b)
				run --separate-stderr smimpd --data data $line "$f" "${more[@]}"
				[ "$status" -ne 99 ]
				! grep -qE 'unknown option|is for' <<<"$stderr" ||
					{ echo "$sh: smimpd $line $f: $stderr"; false; }
			done
		done
		# Files where a file goes.
		complete_"$sh" "smimpd adduser a@example.org " | grep -qx alice.pub
		complete_"$sh" "smimpd backup " | grep -q '^outdir/\?$'
		! complete_"$sh" "smimpd backup " | grep -qx list || false
	done
}

@test "each command's file arguments complete as files" {
	# The words of the usages that are files, given after what comes
	# before them there.
	for line in "smimp-seal -r a@example.org " "smimp-open " "smimp-send " \
	    "smimp-keygen --export-age-recipient " "smimp-trust add "; do
		for sh in $SHELLS; do
			complete_"$sh" "$line" | grep -qx alice.pub ||
				{ echo "$sh [$line]: $(complete_"$sh" "$line" | tr '\n' ' ')"; false; }
		done
	done
}

@test "the front door completes as the command it runs" {
	cmds=$(smimp --help | sed -n 's/^commands: //p' | tr ' ' '\n' | sort)
	[ -n "$cmds" ]
	for sh in $SHELLS; do
		got=$(complete_"$sh" "smimp " | grep -v '^-')
		[ "$got" = "$(printf '%s\nhelp\n' "$cmds" | sort)" ] || { echo "$sh: [$got]"; false; }
		[ "$(complete_"$sh" "smimp help ")" = "$cmds" ]
		for c in $cmds; do
			got=$(complete_"$sh" "smimp $c -")
			want=$(complete_"$sh" "smimp-$c -")
			[ -n "$want" ]
			[ "$got" = "$want" ] || { echo "$sh smimp $c: [$got] [$want]"; false; }
		done
		complete_"$sh" "smimp open " | grep -q '^notes.txt$'
		complete_"$sh" "smimp seal --attach " | grep -q '^notes.txt$'
	done
}
