/*
 * crl_publish.c - the CRL publisher of the CertificateService
 * (docs/identity.md, "Revocation reaches the TLS layer"): a timer that
 * keeps every CA's CRL fresh (a new one when the kept one is
 * certs.crl_interval_s old, signed in the HSM by revoke.c's path) and, with
 * ca_crl_dir set, keeps ca_crl_dir/KEY.crl.pem equal to the kept CRL. The
 * daemon's tls_crl names that directory, so a revocation reaches the TLS
 * layer at once: the file is replaced (bs_file_replace: never seen half
 * written) and the daemon reloads its TLS material and re-checks the open
 * connections (svc_ctx.trust_changed).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/fileio.h"
#include "common/log.h"
#include "daemon/bs_config.h"
#include "keys/catalog.h"
#include "services/certs/certs_int.h"
#include "services/services.h"
#include "types/types.h"

#define TICK_MAX_S 60     /* the publisher looks at least this often */
#define CRL_FILE_MAX (256 * 1024)

/* One pass: every CA key of the catalog, unless the last pass is still running. */
static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct certs_state *st = arg;
	struct catalog *cat = st->svc->catalog;

	(void)fd;
	(void)what;
	if (st->inflight > 0 || st->svc->shutting_down || cat == NULL)
		return;
	for (size_t i = 0; i < catalog_count(cat); i++) {
		const struct catalog_key *k = catalog_at(cat, i);

		if (k->purpose == BS_PURPOSE_CA && k->state == BS_KEY_ENABLED)
			certs_crl_refresh(st, k->name);
	}
}

int
certs_publisher_start(struct certs_state *st, char *err, size_t errlen)
{
	struct timeval tv = { st->crl_interval_s < TICK_MAX_S ? st->crl_interval_s : TICK_MAX_S,
		0 };

	if (st->svc->base == NULL || st->svc->store == NULL || st->svc->keys == NULL)
		return 0;               /* no loop or no store (unit tests): no publisher */
	st->timer = event_new(st->svc->base, -1, EV_PERSIST, tick, st);
	if (st->timer == NULL || event_add(st->timer, &tv) != 0) {
		snprintf(err, errlen, "cannot arm the CRL publisher's timer");
		return BS_ERR_NOMEM;
	}
	/* a first pass as soon as the loop runs: CRLs and files current from the start */
	event_active(st->timer, EV_TIMEOUT, 0);
	return 0;
}

void
certs_publisher_stop(struct certs_state *st)
{
	if (st->timer != NULL)
		event_free(st->timer);
	st->timer = NULL;
}

/* 1 if path holds exactly pem (len bytes). */
static int
same_content(const char *path, const char *pem, size_t len)
{
	char *have = NULL;
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), same;

	if (fd < 0)
		return 0;
	same = bs_read_fd_capped(fd, CRL_FILE_MAX, &have, &n) == 0 && n == len &&
	    memcmp(have, pem, len) == 0;
	close(fd);
	free(have);
	return same;
}

int
certs_crl_file_sync(const struct svc_ctx *svc, const char *key, const char *pem, size_t len,
    int *wrote, char *err, size_t errlen)
{
	const char *dir = svc->cfg != NULL ? svc->cfg->ca_crl_dir : NULL;
	char name[CATALOG_NAME_MAX + sizeof(CERTS_CRL_FILE_SUFFIX)], path[4200];

	*wrote = 0;
	if (dir == NULL)
		return 0;
	snprintf(name, sizeof(name), "%s%s", key, CERTS_CRL_FILE_SUFFIX);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (same_content(path, pem, len))
		return 0;
	if (bs_file_replace(dir, name, pem, len, 0644) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		return BS_ERR_IO;
	}
	*wrote = 1;
	return 0;
}

void
certs_crl_file_written(struct svc_ctx *svc, const char *key)
{
	bs_log(BS_LOG_INFO, "CRL written for the TLS layer", "ca_key", key, NULL);
	if (svc->trust_changed != NULL)
		svc->trust_changed(svc->trust_arg, "a CRL of a boltseal CA was written");
}
