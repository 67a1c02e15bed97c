/*
 * migctl-example: the smallest orchestrator on libmigctl. Prints the
 * daemon's health; with a VM name, prepares an incoming migration (on a
 * destination) or, with a destination and token, migrates the VM and
 * follows it with a watch callback until it ends.
 *
 *   migctl-example SOCKET                         health
 *   migctl-example SOCKET prepare VM              token on stdout
 *   migctl-example SOCKET migrate VM IP:PORT TOKEN
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "libmigctl.h"

static int
on_event(const Migrationd__V1__MigrationEvent *ev, void *arg)
{
	const Migrationd__V1__Migration *m = ev->migration;

	printf("%s %5.1f%% %.0f pages/s eta %.1fs\n", migctl_state_name(m->state),
	    ev->progress * 100, ev->pages_per_s, ev->eta_s);
	return 0;	/* keep watching until the migration ends */
}

int
main(int argc, char **argv)
{
	struct migctl *c;
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: migctl-example SOCKET [prepare VM | migrate VM "
		    "IP:PORT TOKEN]\n");
		return 2;
	}
	if ((c = migctl_open(argv[1])) == NULL) {
		fprintf(stderr, "cannot connect to %s: %s\n", argv[1], strerror(errno));
		return 3;
	}
	if (argc == 2) {
		Migrationd__V1__GetHealthResponse *h;

		if ((rc = migctl_health(c, &h)) == MIGCTL_OK) {
			printf("migrationd %s, up %.0f s, latency: %s\n", h->version, h->uptime_s,
			    h->latency_source);
			migctl_free(h);
		}
	} else if (argc == 4 && !strcmp(argv[2], "prepare")) {
		Migrationd__V1__PrepareIncomingResponse *p;

		if ((rc = migctl_prepare(c, argv[3], &p)) == MIGCTL_OK) {
			printf("%s\n", p->token);
			migctl_free(p);
		}
	} else if (argc == 6 && !strcmp(argv[2], "migrate")) {
		Migrationd__V1__StartMigrationResponse *s;
		Migrationd__V1__GetMigrationResponse *g;
		char id[64];

		if ((rc = migctl_start(c, argv[3], argv[4], argv[5], &s)) == MIGCTL_OK) {
			snprintf(id, sizeof(id), "%s", s->migration->id);
			migctl_free(s);
			if ((rc = migctl_watch(c, id, 200, on_event, NULL)) == MIGCTL_OK &&
			    (rc = migctl_get(c, id, &g)) == MIGCTL_OK) {
				printf("final: %s\n", migctl_state_name(g->migration->state));
				if (g->migration->state != MIGRATIOND__V1__MIGRATION_STATE__COMPLETED)
					rc = 5;
				migctl_free(g);
			}
		}
	} else {
		fprintf(stderr, "migctl-example: bad arguments\n");
		migctl_close(c);
		return 2;
	}
	if (rc != MIGCTL_OK && rc != 5)
		fprintf(stderr, "migctl-example: %s: %s\n", migctl_code_name(rc), migctl_error(c));
	migctl_close(c);
	return rc == MIGCTL_OK ? 0 : rc < 0 ? 3 : rc == 5 ? 5 : 4;
}
