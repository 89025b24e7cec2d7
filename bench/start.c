/*
 * smimp-start - a command that does nothing: the start and the end
 * every smimp command goes through (cmd_start: descriptors checked, no
 * core dumps, libsodium ready; cmd_exit), linked as they are linked.
 * bench/small.sh times it as the floor under a 1 KiB seal or open.
 */
#include "../cmd/cmd.h"

int
main(void)
{
	return cmd_exit(cmd_start("smimp-start") != 0 ? SMIMP_EXIT_FAIL :
	    SMIMP_EXIT_OK);
}
