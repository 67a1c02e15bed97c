/*
 * view.h: the one place the migration model meets protobuf (view.c): the
 * public Migration message of the control API, which is also the body of a
 * migration record, and the state and role enums at that edge.
 */
#ifndef MIG_VIEW_H
#define MIG_VIEW_H

#include "control.pb-c.h"
#include "migration.h"

/* Fills `out` from m (strings point into m: valid while m is). */
void view_fill(const struct migration *m, Migrationd__V1__Migration *out);
/* The figures and identity a record keeps, back into m (the inverse). */
void view_restore(struct migration *m, const Migrationd__V1__Migration *in);
Migrationd__V1__MigrationState view_state(enum mig_state st);
/* 0 for MIGRATION_STATE_UNSPECIFIED or an unknown value. */
enum mig_state view_state_from(Migrationd__V1__MigrationState st);
Migrationd__V1__Role view_role(enum mig_role role);

#endif
