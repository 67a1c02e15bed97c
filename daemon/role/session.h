/*
 * session.h: what both roles do with a migration's peer channels
 * (session.c): the end of a running migration, a lost channel with each
 * role's policy, and the error tails of their frame handlers.
 */
#ifndef MIG_SESSION_H
#define MIG_SESSION_H

#include "migration.h"
#include "peer.h"

/* How a role takes a lost channel. */
struct session_policy {
	/* 1 while nothing ran at the destination: losing a channel ends it. */
	int	(*early)(const struct migration *m);
	/* Ends the migration with `why`. */
	void	(*fail)(struct migration *m, const char *why);
	/* How the early loss reads, naming the peer: into buf. */
	void	(*early_what)(const struct migration *m, char *buf, size_t len);
	const char *dir;	/* "to" / "from" the peer */
	const char *then;	/* what happens next, for the reason */
	/* After the migration was paused by the loss (NULL: nothing). */
	void	(*paused)(struct migration *m, const char *why, int was_paused);
};

/*
 * `c` of migration c->mig failed or ended. Early: c is detached and the
 * migration fails. Later: it is PAUSED, its other channel closes (both start
 * over together; vCPUs wait, nothing is lost), and p->paused follows. The
 * caller frees `c`.
 */
void session_lost(struct pconn *c, const char *why, const struct session_policy *p);
/* A frame handler's error tail: log, the role's conn_lost, close c. -1. */
int session_error(struct pconn *c, const char *why);
/* The same for a peer message this state does not expect. -1. */
int session_unexpected(struct pconn *c, int msg_case);
/*
 * Frees what only a running migration needs (its channels, heartbeat, the
 * role's state through ops->release, its eBPF slot, its VM); the record
 * stays, with its final figures saved.
 */
void session_finish(struct migration *m);
/* Destination: accepts the source's urgent channel (key, what we decode). */
void session_welcome(struct pconn *c, struct migration *m);
/* The two certificate subjects of m's channel c (the peer's and ours),
 * recorded with the migration as its source and destination identities. */
void session_identities(struct pconn *c, struct migration *m);

#endif
