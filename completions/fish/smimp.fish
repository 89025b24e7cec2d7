# The front door: after a command's name, what smimp-COMMAND's own
# completion offers there.
set -l cmds keygen seal open trust send sendmail fetch revoke
function __smimp_command
	set -l words (commandline -opc)
	set -l cur (commandline -ct)
	set -e words[1]
	set words[1] smimp-$words[1]
	complete -C "$words $cur"
end
complete -c smimp -f -n '__fish_use_subcommand' -a "$cmds help"
complete -c smimp -f -n "__fish_seen_subcommand_from help; and not __fish_seen_subcommand_from $cmds" -a "$cmds"
complete -c smimp -f -n "not __fish_seen_subcommand_from help; and __fish_seen_subcommand_from $cmds" -a '(__smimp_command)'
complete -c smimp -n '__fish_use_subcommand' -s h -l help -d 'print the usage'
complete -c smimp -n '__fish_use_subcommand' -l version -d 'print the version'
