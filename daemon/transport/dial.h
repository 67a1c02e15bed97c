/*
 * dial.h: reaching a destination given as NAME:PORT, IPV4:PORT or
 * [IPV6]:PORT (dial.c): resolution that never blocks the loop, every
 * address tried in order, failures in words. Its owner (peer.c) knows it
 * only through these calls and struct dial_ops.
 */
#ifndef MIG_DIAL_H
#define MIG_DIAL_H

#include <event2/bufferevent.h>
#include <openssl/ssl.h>

struct dial;

struct dial_ops {
	/* A try begins on `bev` (the first one dial_start was given, then a
	 * new one per address; the owner frees the one it replaces), to
	 * `addr` (IP:PORT). */
	void	(*attempt)(void *arg, struct bufferevent *bev, const char *addr);
	/* Every address failed, after dial_start returned: the owner gives
	 * up and frees the dial (dial_free). */
	void	(*lost)(void *arg, const char *why);
};

/*
 * Starts dialling `hostport` on `bev` (made by tls_bev_connect for the
 * host); `at`, if not NULL, is the IP:PORT to use instead of resolving the
 * name (the certificate is still checked against the name). NULL when it
 * fails at once (dial_last_error says why; no callback was made).
 */
struct dial *dial_start(const char *hostport, const char *at, SSL_CTX *tls,
    struct bufferevent *bev, const struct dial_ops *ops, void *arg);
/* The current try's bufferevent reported `what` (a failure) before it was
 * up: notes why, tries the next address. 1 if one is being tried; 0 if
 * given up (ops->lost has run: d is gone). */
int dial_failed(struct dial *d, short what);
void dial_free(struct dial *d);
const char *dial_last_error(void);
void dial_shutdown(void);

#endif
