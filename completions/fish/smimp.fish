complete -c smimp -f -n '__fish_use_subcommand' -a 'keygen seal open trust send sendmail fetch revoke help'
complete -c smimp -s h -l help -d 'print the usage'
complete -c smimp -l version -d 'print the version'
