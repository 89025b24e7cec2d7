#!/usr/bin/env bats
# The completions, run in their shells as an installation loads them
# (t/complete.bash): the front door, smimp, completes as the command it
# runs.  A shell that is not installed (or bash without
# bash-completion) is skipped.

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
