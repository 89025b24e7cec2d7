#!/usr/bin/zsh -f
# complete.zsh DIR LINE: the matches zsh's completion system offers for
# LINE, the cursor at its end, with the completion functions of DIR
# first in fpath; one a line.  An interactive zsh on a pseudo-terminal
# (zsh/zpty) does the completing, with compadd wrapped to say what it
# adds.
zmodload zsh/zpty || exit 2
dir=$1
shift
init=$(mktemp) || exit 2
cat >"$init" <<INIT
PROMPT=
PS2=
fpath=(${(q)dir} \$fpath)
autoload -Uz compinit
compinit -u -D
bindkey '^I' complete-word
mark() { echo -E - \$'\0' }
compprefuncs=(mark)
comppostfuncs=(mark exit)
zstyle ':completion:*' list-grouped false
zstyle ':completion:*' insert-tab false
compadd() {
	if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
		builtin compadd "\$@"
		return
	fi
	local -a hits
	builtin compadd -A hits "\$@"
	local h
	for h in \$hits; do echo -E - "MATCH:\$h"; done
	builtin compadd "\$@"
}
echo ready
INIT
zpty z zsh -f -i
zpty -w z "source ${(q)init}"
ok=0
repeat 20; do
	zpty -r z line || break
	[[ $line == ready* ]] && { ok=1; break }
done
(( ok )) || { rm -f "$init"; exit 2 }
zpty -w z "$*"$'\t'
integer seen=0
while zpty -r z line; do
	if [[ $line == *$'\0'* ]]; then
		(( seen++ )) && break
		continue
	fi
	(( seen )) && [[ $line == MATCH:* ]] && print -r -- "${${line#MATCH:}//$'\r'/}"
done
zpty -d z
rm -f "$init"
