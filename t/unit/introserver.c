/*
 * introserver - the server's check of an introduction
 * (server/introductions.c), run against a real server's data and the
 * real servers of other domains, as a delivery would run it:
 *
 *	introserver CONF DATA DOMAIN SENDER RECIPIENT FILE [NOW]
 *
 * CONF, DATA and DOMAIN as smimpd's -f, --data and --domain; FILE holds
 * the value of a Smimp-Introduction header; NOW a date (default: now).
 * Prints the introducer and exits 0, prints "none" and exits 1, or says
 * why on stderr and exits 2 (the store failed, or bad arguments).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fileio.h"
#include "introductions.h"
#include "server.h"
#include "banned.h"

/*
 * What peers.c reaches other servers with: smimpd.c's, less its
 * memory of failed discoveries, which one check does not need.
 */
struct remote *
server_remote(const struct server *srv, struct smimp_err *err)
{
	struct remote_opts o;

	memset(&o, 0, sizeof(o));
	if (srv->cfg.resolve[0] != '\0')
		o.resolve = srv->cfg.resolve;
	if (srv->cfg.cacert[0] != '\0')
		o.cacert = srv->cfg.cacert;
	return remote_new(&o, err);
}

static int
setup(struct server *srv, char **argv, struct smimp_err *err)
{
	struct store_limits lim;

	config_defaults(&srv->cfg);
	if (config_read(&srv->cfg, argv[1], err) != 0 ||
	    config_set(&srv->cfg, "data", argv[2], err) != 0 ||
	    config_set(&srv->cfg, "domain", argv[3], err) != 0 ||
	    config_finish(&srv->cfg, 0, err) != 0)
		return -1;
	config_store_limits(&srv->cfg, &lim);
	srv->store = store_open(srv->cfg.store, srv->cfg.datadir, &lim,
	    err);
	if (srv->store == NULL || serverkey_load(srv, err) != 0)
		return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	char introducer[ADDRESS_MAX + 1];
	unsigned char *value = NULL;
	struct smimp_err err;
	struct server srv;
	int64_t now;
	size_t len;
	int r = -1;

	if (sodium_init() < 0)
		return 2;
	if (argc < 7 || argc > 8) {
		fprintf(stderr, "usage: introserver CONF DATA DOMAIN SENDER "
		    "RECIPIENT FILE [NOW]\n");
		return 2;
	}
	smimp_err_clear(&err);
	memset(&srv, 0, sizeof(srv));
	now = time_now();
	if (argc == 8 && time_parse(argv[7], strlen(argv[7]), &now) != 0) {
		fprintf(stderr, "introserver: bad date '%s'\n", argv[7]);
		return 2;
	}
	if (setup(&srv, argv, &err) == 0 &&
	    file_read_all(argv[6], 65536, &value, &len, &err) == 0) {
		/* As a server sees a header: without the blanks around it. */
		while (len > 0 && (value[len - 1] == '\n' ||
		    value[len - 1] == ' '))
			value[--len] = '\0';
		r = introduction_verify_header(&srv, (char *)value, argv[4],
		    argv[5], now, introducer);
	}
	if (r < 0)
		fprintf(stderr, "introserver: %s\n", err.msg[0] != '\0' ?
		    err.msg : "the store failed");
	else
		printf("%s\n", r == 1 ? introducer : "none");
	free(value);
	if (srv.store != NULL)
		store_close(srv.store);
	serverkey_release();
	return r < 0 ? 2 : r == 1 ? 0 : 1;
}
