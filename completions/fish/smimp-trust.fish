set -l cmds add list show set remove verify fetch refresh
complete -c smimp-trust -f -n "not __fish_seen_subcommand_from $cmds" -a "$cmds"
complete -c smimp-trust -l tier -r -a 'trusted known blocked' -d 'trust tier'
complete -c smimp-trust -l replace -d 'replace the pinned identity'
complete -c smimp-trust -l from-message -r -F -d 'pin the sender of a sealed message'
complete -c smimp-trust -s i -l identity -r -F -d 'secret key that opens the message or signs lookups'
complete -c smimp-trust -l passphrase-file -r -F -d 'read the passphrase from a file'
complete -c smimp-trust -l json -n '__fish_seen_subcommand_from refresh' -d 'one JSON object per address'
complete -c smimp-trust -s h -l help -d 'print the usage'
complete -c smimp-trust -l version -d 'print the version'
complete -c smimp-trust -l resolve -r -d 'reach DOMAIN at HOST:PORT'
complete -c smimp-trust -l cacert -r -F -d 'CA bundle'
complete -c smimp-trust -l allow-http -r -d 'allow plain HTTP for a domain'
