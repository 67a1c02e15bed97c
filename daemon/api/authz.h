/*
 * authz: who may do what on the control API (authz.c). Every method needs a
 * role: the health services none, what shows state `read`, what changes
 * state `operate` (which implies read). A connection's caller gets its role
 * once: on the Unix socket from SO_PEERCRED (root, the daemon's user and
 * [control] group operate; other users get [control] others), on the TCP
 * listener from its client certificate against [control] operate / read.
 * Every state-changing call is written to the log once, when its outcome is
 * known, as one `audit:` line of key=value pairs. Loop thread.
 */
#ifndef MIG_AUTHZ_H
#define MIG_AUTHZ_H

#include <event2/bufferevent.h>
#include <sys/types.h>

#include "grpcmsg.h"
#include "migration.h"

struct h2stream;

enum authz_role {
	AUTHZ_NONE,		/* health only */
	AUTHZ_READ,
	AUTHZ_OPERATE,
};

/* A control client, one per connection (h2.c keeps it as its peer). */
struct authz_caller {
	int			 role;		/* enum authz_role */
	int			 tcp;
	int			 resolved;	/* TCP: role read off the certificate */
	struct bufferevent	*bev;		/* TCP: the TLS session */
	char			 addr[80];	/* TCP: remote IP:PORT */
	char			 who[400];	/* for people: "uid 1000 (pid 42, mig-ctl)" */
	char			 audit[600];	/* for the audit line: "transport=unix uid=..." */
};

/* [control] group's gid, or (gid_t)-1. */
void authz_set_group(gid_t gid);
/* A Unix socket client, from its credentials (NULL: cannot read them). */
struct authz_caller *authz_unix(int fd);
/* A TCP client on `bev`, from `addr`; its role is read at its first call. */
struct authz_caller *authz_tcp(struct bufferevent *bev, const struct sockaddr *sa,
    int salen);
void authz_free(void *caller);

/* The role method `gm` needs. */
enum authz_role authz_needs(const struct grpc_method *gm);
const char *authz_role_name(int role);

/*
 * Checks the caller of `s` against method `gm` (q: its decoded request, or
 * NULL). For a state-changing method it first arranges the audit line,
 * which h2 writes when the call ends. Returns 1 if the call may go on; 0
 * after ending it with PERMISSION_DENIED, naming caller and missing role.
 */
int authz_check(struct h2stream *s, const struct grpc_method *gm, const void *q);
/* The migration an audited call acted on (its id goes into the line). */
void authz_audit_migration(struct h2stream *s, const struct migration *m);

#endif
