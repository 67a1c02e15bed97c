/*
 * h2: the gRPC server transport of the control API: HTTP/2 (nghttp2) on a
 * libevent bufferevent (Unix socket, or TLS from tls.c), one h2conn per
 * client, one h2stream per call. Calls complete with h2_finish(), which
 * sends grpc-status / grpc-message trailers. Loop thread only.
 *
 * Every write to the peer happens from a deferred event, never inside
 * h2_send() / h2_finish(): a caller may send from anywhere (a timer, a state
 * change deep in source.c) and a stream's close callback never runs inside
 * its caller's code.
 */
#ifndef MIG_H2_H
#define MIG_H2_H

#include <event2/bufferevent.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "grpcmsg.h"

struct h2conn;
struct h2stream;

/*
 * A whole request arrived on `s` for `m` (NULL: no such method) with its one
 * message `body` (valid during the call). The callee answers with h2_send()
 * and h2_finish(), now or later. For a client-streaming method
 * (m->client_stream) it is called once per message as each arrives, and
 * once more with body NULL when the client has sent its last.
 */
typedef void (*h2_request_fn)(struct h2stream *s, const struct grpc_method *m,
    const uint8_t *body, size_t len);

/* Called once when a stream ends before h2_finish() (client cancelled,
 * connection lost). The stream is gone afterwards. */
typedef void (*h2_close_fn)(struct h2stream *s, void *arg);
/* Called once when the call ends: from h2_finish() with its status, or with
 * CANCELLED when the stream goes first. `msg` is not encoded (may be NULL). */
typedef void (*h2_finish_fn)(struct h2stream *s, int code, const char *msg, void *arg);

/*
 * Takes ownership of `bev` (freed with the connection) and of `peer`, the
 * dispatcher's idea of the client (freed with peer_free, which may be
 * NULL); `who` names it in logs ("uid 0", "10.0.0.1:5000"). NULL on failure
 * (bev and peer freed).
 */
struct h2conn *h2_conn_new(struct bufferevent *bev, void *peer, void (*peer_free)(void *),
    const char *who, h2_request_fn fn);
/* Closes every connection (daemon shutdown). */
void h2_shutdown(void);

/* The connection's `peer` (h2_conn_new). */
void *h2_peer(const struct h2stream *s);

/* Queues one response message (response headers first if not yet sent). */
int h2_send(struct h2stream *s, const ProtobufCMessage *m);
/* Ends the call with a status; `s` must not be used afterwards. */
void h2_finish(struct h2stream *s, int code, const char *msg);
void h2_set_close(struct h2stream *s, h2_close_fn fn, void *arg);
void h2_set_finish(struct h2stream *s, h2_finish_fn fn, void *arg);
/* The finish callback's argument if `fn` is the one set, else NULL. */
void *h2_finish_arg(const struct h2stream *s, h2_finish_fn fn);

#endif
