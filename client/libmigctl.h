/*
 * libmigctl: C client of migrationd's control API (proto/control.proto).
 * Speaks the daemon's control socket: length-prefixed CtlRequest /
 * CtlResponse messages. Synchronous; one connection per struct migctl, used
 * by one thread at a time.
 */
#ifndef LIBMIGCTL_H
#define LIBMIGCTL_H

#include "control.pb-c.h"

struct migctl;

/* Default control socket of a host's migrationd. */
#define MIGCTL_DEFAULT_SOCKET "/run/migrationd/control.sock"

/* Connects to the daemon at `path` (NULL: the default). NULL + errno on
 * failure. Free with migctl_close(). */
struct migctl *migctl_open(const char *path);
void migctl_close(struct migctl *c);

/*
 * Sends `req` (its id is set by the library) and waits for the answer.
 * Returns the response (the caller frees it with migctl_response_free()), or
 * NULL with errno set if the daemon could not be reached or answered
 * garbage. A response may carry an error: check resp->code (0 = OK) and
 * resp->message.
 */
Migrationd__V1__CtlResponse *migctl_call(struct migctl *c,
    Migrationd__V1__CtlRequest *req);
void migctl_response_free(Migrationd__V1__CtlResponse *r);

/* Convenience wrappers around migctl_call(); same ownership rules. */
Migrationd__V1__CtlResponse *migctl_prepare(struct migctl *c, const char *vm);
Migrationd__V1__CtlResponse *migctl_start(struct migctl *c, const char *vm,
    const char *dest, const char *token);
Migrationd__V1__CtlResponse *migctl_get(struct migctl *c, const char *id_or_vm);
Migrationd__V1__CtlResponse *migctl_list(struct migctl *c);
/* `dest` NULL or "": reconnect to the same destination. */
Migrationd__V1__CtlResponse *migctl_recover(struct migctl *c, const char *id_or_vm,
    const char *dest);

/* Name of a state ("POSTCOPY"), of a role ("SOURCE"), of a code. */
const char *migctl_state_name(Migrationd__V1__MigrationState s);
const char *migctl_role_name(Migrationd__V1__Role r);
const char *migctl_code_name(Migrationd__V1__Code c);

#endif
