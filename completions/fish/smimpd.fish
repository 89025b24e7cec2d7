# smimpd's options come before the subcommand (smimpd stops at the first
# word that is none); after it, each subcommand's words and the flags
# that subcommand takes.
set -l subs adduser deluser updatelog users invite invites queue stats check backup
# __smimpd_sub [NAME...]: the subcommand on the line is printed; with
# NAMEs, true only if it is one of them.
function __smimpd_sub
	set -l words (commandline -opc)
	set -e words[1]
	set -l skip 0
	for w in $words
		if test $skip = 1
			set skip 0
			continue
		end
		switch $w
			case -f --config --domain --listen --data --store --cert --key --base-url --metrics
				set skip 1
			case '-*'
			case '*'
				echo $w
				test (count $argv) = 0; or contains -- $w $argv
				return
		end
	end
	return 1
end
complete -c smimpd -f -n 'not __smimpd_sub' -a "$subs"
complete -c smimpd -f -n '__smimpd_sub queue; and not __fish_seen_subcommand_from list show hold release retry delete' -a 'list show hold release retry delete'
complete -c smimpd -n 'not __smimpd_sub' -s d -d 'stay in the foreground'
complete -c smimpd -n 'not __smimpd_sub' -s n -d 'check the configuration and exit'
complete -c smimpd -n 'not __smimpd_sub' -s v -d 'verbose'
complete -c smimpd -n 'not __smimpd_sub' -s f -l config -r -F -d 'configuration file'
complete -c smimpd -n 'not __smimpd_sub' -l domain -r -d 'domain served'
complete -c smimpd -n 'not __smimpd_sub' -l listen -r -d 'address and port'
complete -c smimpd -n 'not __smimpd_sub' -l data -r -F -d 'data directory'
complete -c smimpd -n 'not __smimpd_sub' -l store -r -d 'store URI'
complete -c smimpd -n 'not __smimpd_sub' -l cert -r -F -d 'TLS certificate'
complete -c smimpd -n 'not __smimpd_sub' -l key -r -F -d 'TLS key'
complete -c smimpd -n 'not __smimpd_sub' -l plain-http -d 'serve plain HTTP behind a TLS proxy'
complete -c smimpd -n 'not __smimpd_sub' -l base-url -r -d 'public base URL'
complete -c smimpd -n 'not __smimpd_sub' -l metrics -r -d 'address and port of the metrics endpoint'
complete -c smimpd -n 'not __smimpd_sub' -s h -l help -d 'print the usage'
complete -c smimpd -n 'not __smimpd_sub' -l version -d 'print the version'
complete -c smimpd -n '__smimpd_sub queue stats check backup' -l json -d 'print JSON'
complete -c smimpd -n '__smimpd_sub queue; and __fish_seen_subcommand_from delete' -l no-bounce -d 'queue delete: send no bounce notice'
