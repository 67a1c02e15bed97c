/*
 * tls.h: the only part of the daemon that speaks OpenSSL (tls.c). Contexts
 * for the peer channels and the TCP control listener, and bufferevents that
 * are TLS or plain sockets alike to their users.
 */
#ifndef MIG_TLS_H
#define MIG_TLS_H

#include <event2/bufferevent.h>
#include <openssl/ssl.h>
#include <sys/types.h>
#include <stddef.h>

#include "config.h"

/* Peer contexts (server: accepts, client: dials); NULL with TLS off. */
SSL_CTX *tls_ctx_new(const struct config *c, int server);
/* The TCP control listener's context (ALPN h2, [control] ca/cert/key). */
SSL_CTX *tls_ctx_new_h2(const struct config *c);
struct bufferevent *tls_bev_accept(SSL_CTX *ctx, int fd);
struct bufferevent *tls_bev_connect(SSL_CTX *ctx, const char *host);
/*
 * Reads up to len bytes of application data from `bev`'s connection straight
 * into buf (SSL_read on its TLS session, recv on a plain socket), leaving
 * the bufferevent's own input alone: for a caller that disabled its reading.
 * >0 bytes; TLS_RD_WANT_READ / TLS_RD_WANT_WRITE when it must wait for the
 * socket; 0 at the peer's close; TLS_RD_ERROR with why in buf.
 */
enum { TLS_RD_ERROR = -1, TLS_RD_WANT_READ = -2, TLS_RD_WANT_WRITE = -3 };
ssize_t tls_bev_read(struct bufferevent *bev, void *buf, size_t len, char *why,
    size_t whylen);
/*
 * Writes len bytes of application data to `bev`'s TLS session straight from
 * buf (SSL_write, whole or not at all: OpenSSL keeps what it sent of it),
 * leaving the bufferevent's output alone: for a caller that queued nothing
 * there. Safe on any thread while no other touches this session. len, or
 * TLS_WR_BLOCKED when the socket is full: the same len bytes must then be
 * written again from the start (the bufferevent's writer does it, given
 * them as its output's first chunk); TLS_RD_ERROR with why in buf. Not for
 * a plain socket (NULL session): TLS_RD_ERROR.
 */
enum { TLS_WR_BLOCKED = -4 };
ssize_t tls_bev_write(struct bufferevent *bev, const void *buf, size_t len, char *why,
    size_t whylen);
/* Bytes the TLS session holds and the socket no longer shows (decrypted, or
 * read ahead: then at most a record's worth at a time), 0 if none. */
size_t tls_bev_pending(struct bufferevent *bev);
/*
 * While a caller reads with tls_bev_read alone: on, OpenSSL reads up to
 * TLS_READ_AHEAD bytes of records per read(2), into a buffer it keeps; off
 * (the bufferevent reads again, and knows only SSL_pending): one record at
 * a time, its buffer released when empty. Drain tls_bev_pending before off.
 */
#define TLS_READ_AHEAD	(256u << 10)
void tls_bev_read_ahead(struct bufferevent *bev, int on);
/* Why a TLS bufferevent failed, in words without OpenSSL's codes: the
 * certificate check ("certificate does not match the name hostb") or the
 * handshake's reason; "" if OpenSSL saw none (the socket's errno tells). */
const char *tls_bev_error(struct bufferevent *bev, char *buf, size_t len);
/* Why the peer's certificate failed verification; NULL if it did not. */
const char *tls_bev_verify_error(struct bufferevent *bev);
int tls_random(void *buf, size_t len);

/*
 * Certificate identities. A peer's identity, as logged, recorded and shown,
 * is its certificate's subject in RFC 2253 form ("CN=hosta,O=fleet").
 * tls_bev_identity writes it to buf ("" without TLS or certificate) and
 * returns buf. tls_bev_matches says whether the peer's certificate carries
 * the identity `id`: the whole subject, its CN, a DNS or URI
 * subjectAltName, or an e-mail address (exact, no wildcards); 0 without a
 * certificate.
 */
const char *tls_bev_identity(struct bufferevent *bev, char *buf, size_t len);
int tls_bev_matches(struct bufferevent *bev, const char *id);
/* This end's own certificate subject on the channel ("" without TLS). */
const char *tls_bev_own_identity(struct bufferevent *bev, char *buf, size_t len);
const char *tls_cert_identity(X509 *x, char *buf, size_t len);
int tls_cert_matches(X509 *x, const char *id);

/*
 * The configuration check (confcheck.c). tls_check_ca: path holds at least
 * one CA certificate valid now; 0, or -1 with the reason in why.
 * tls_check_pair: the certificate chain file and key as the contexts load
 * them: readable, parsed, the key the certificate's, and the certificate
 * verifying (chain, purpose, validity) against the CA files `cas`
 * (NULL-terminated; `sys`: the system's CAs too) for each of `uses`. Each
 * problem goes to report(arg, TLS_FILE_*, why); returns their number.
 */
#define TLS_USE_SERVER	0x1
#define TLS_USE_CLIENT	0x2
enum { TLS_FILE_CERT, TLS_FILE_KEY };
typedef void tls_check_fn(void *arg, int which, const char *why);
int tls_check_ca(const char *path, char *why, size_t len);
int tls_check_pair(const char *cert, const char *key, const char *const *cas, int sys,
    int uses, tls_check_fn *report, void *arg);

#endif
