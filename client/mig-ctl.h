/*
 * mig-ctl.h: what mig-ctl's files share (not installed, not libmigctl's
 * API): the --json switch and the printers of mig-ctl-output.c.
 */
#ifndef MIG_CTL_H
#define MIG_CTL_H

#include "libmigctl.h"

extern int json;	/* --json: machine-readable output */

/* mig-ctl-output.c */
void	 json_str(const char *k, const char *v, int last);
void	 print_json(const Migrationd__V1__Migration *m);
void	 print_migration(const Migrationd__V1__Migration *m);
int	 terminal_state(Migrationd__V1__MigrationState s);
void	 progress_line(const Migrationd__V1__MigrationEvent *ev, int tty);
void	 print_event_json(const Migrationd__V1__MigrationEvent *ev);

#endif
