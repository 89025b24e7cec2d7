# What each shell's completion offers for a command line, the cursor at
# its end, from the completion files in completions/, loaded as an
# installation loads them: bash through bash-completion (the files in a
# data directory of XDG_DATA_DIRS, each loaded when its command is first
# completed), zsh through compinit (fpath), fish through
# fish_complete_path.  Each prints the matches one a line, sorted, and
# without fish's descriptions.  have_shell NAME says whether the shell
# (and for bash, bash-completion) is installed.

BASH_COMPLETION_SCRIPT=${BASH_COMPLETION_SCRIPT:-/usr/share/bash-completion/bash_completion}

have_shell() {
	case $1 in
	bash) [ -f "$BASH_COMPLETION_SCRIPT" ] ;;
	*) command -v "$1" >/dev/null ;;
	esac
}

complete_bash() {
	local share=$BATS_TEST_TMPDIR/complete-share
	mkdir -p "$share/bash-completion"
	ln -sfn "$REPO/completions/bash" "$share/bash-completion/completions"
	# shellcheck disable=SC2016
	XDG_DATA_DIRS=$share:/usr/share bash -c '
		. "$1" || exit 2
		line=$2
		COMP_LINE=$line
		COMP_POINT=${#line}
		read -ra COMP_WORDS <<<"$line"
		[[ $line == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		cmd=${COMP_WORDS[0]}
		complete -p "$cmd" >/dev/null 2>&1 || __load_completion "$cmd"
		fn=$(complete -p "$cmd" | sed -n "s/.* -F \([^ ]*\) .*/\1/p")
		[ -n "$fn" ] || exit 2
		COMPREPLY=()
		"$fn" "$cmd" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
		printf "%s\n" "${COMPREPLY[@]}"
	' - "$BASH_COMPLETION_SCRIPT" "$1" | sed '/^$/d' | sort -u
}

complete_zsh() {
	zsh -f "$REPO/t/complete.zsh" "$REPO/completions/zsh" "$1" |
		sed '/^$/d' | sort -u
}

complete_fish() {
	# shellcheck disable=SC2016
	fish --no-config -c 'set -p fish_complete_path $argv[1]
		complete -C"$argv[2]"' "$REPO/completions/fish" "$1" |
		cut -f1 | sed '/^$/d' | sort -u
}
