/*
 * libmigctl: C client of migrationd's control API, the gRPC service
 * migrationd.v1.Migrationd (proto/control.proto), spoken over HTTP/2
 * (nghttp2) on the daemon's Unix control socket. Synchronous calls plus a
 * callback-driven watch. One connection per struct migctl, used by one
 * thread at a time; calls on one handle run one after another.
 *
 * Return values of the calls: 0 (MIGCTL_OK) on success; a gRPC status code
 * (1..16, e.g. MIGCTL_NOT_FOUND) when the daemon refused the call, with its
 * message in migctl_error(); -1 when the daemon could not be reached or
 * broke the protocol (errno set, migctl_error() says what).
 *
 * Responses are protobuf-c structs (control.pb-c.h) owned by the caller:
 * free each with migctl_free().
 */
#ifndef LIBMIGCTL_H
#define LIBMIGCTL_H

#include "control.pb-c.h"

struct migctl;

/* Default control socket of a host's migrationd. */
#define MIGCTL_DEFAULT_SOCKET "/run/migrationd/control.sock"

/* gRPC status codes the daemon uses. */
#define MIGCTL_OK			0
#define MIGCTL_CANCELLED		1
#define MIGCTL_INVALID_ARGUMENT		3
#define MIGCTL_NOT_FOUND		5
#define MIGCTL_PERMISSION_DENIED	7
#define MIGCTL_RESOURCE_EXHAUSTED	8
#define MIGCTL_FAILED_PRECONDITION	9
#define MIGCTL_UNIMPLEMENTED		12
#define MIGCTL_INTERNAL			13
#define MIGCTL_UNAVAILABLE		14

/*
 * Connects to the daemon at `path` (NULL: MIGCTL_DEFAULT_SOCKET) and opens
 * the HTTP/2 session. NULL + errno on failure. Free with migctl_close(),
 * which also closes the socket.
 */
struct migctl *migctl_open(const char *path);
void migctl_close(struct migctl *c);

/*
 * A call fails with -1 / ETIMEDOUT when the daemon stays silent this long
 * (default MIGCTL_TIMEOUT_MS; a watch hears from it every interval). <= 0:
 * wait forever.
 */
#define MIGCTL_TIMEOUT_MS 60000
void migctl_set_timeout(struct migctl *c, int ms);

/* Message of the last failed call on `c` ("no such migration"); "" if none.
 * Valid until the next call on `c`. */
const char *migctl_error(const struct migctl *c);
/* "NOT_FOUND" for 5; "OK" for 0; "UNAVAILABLE" for -1. */
const char *migctl_code_name(int code);

/* Frees any response of this library (NULL is fine). */
void migctl_free(void *response);

/*
 * Generic unary call: `method` is the method name ("GetHealth"), `req` a
 * request message of its type. On 0, *resp is the response (caller frees).
 */
int migctl_call(struct migctl *c, const char *method, const ProtobufCMessage *req,
    ProtobufCMessage **resp);

/* Destination: expect VM; (*out)->token is the one-time token. */
int migctl_prepare(struct migctl *c, const char *vm,
    Migrationd__V1__PrepareIncomingResponse **out);
/*
 * The same, but only a source whose peer certificate carries identity
 * `from` (its subject, CN, a DNS or URI subjectAltName, an e-mail address)
 * may spend the token; NULL or "" is migctl_prepare. Needs peer TLS.
 */
int migctl_prepare_from(struct migctl *c, const char *vm, const char *from,
    Migrationd__V1__PrepareIncomingResponse **out);
/* Source: migrate VM to `dest`, the destination's peer listener: NAME:PORT,
 * IPV4:PORT or [IPV6]:PORT. */
int migctl_start(struct migctl *c, const char *vm, const char *dest, const char *token,
    Migrationd__V1__StartMigrationResponse **out);
/* The same with a pre-copy policy ("off", "auto", "3", "30s"; NULL or "":
 * the source daemon's default, [peer] precopy) and a cap on the background
 * stream in bits/s (0: none). */
int migctl_start_opts(struct migctl *c, const char *vm, const char *dest,
    const char *token, const char *precopy, uint64_t max_bps,
    Migrationd__V1__StartMigrationResponse **out);
/* The same with compression of background pages: "auto", "on", "off"
 * (NULL or "": the source daemon's [peer] compression). */
int migctl_start_compress(struct migctl *c, const char *vm, const char *dest,
    const char *token, const char *precopy, uint64_t max_bps, const char *compression,
    Migrationd__V1__StartMigrationResponse **out);
/* The same asking for `streams` background streams (1..8; 0: the source
 * daemon's [peer] streams); the destination may take fewer. */
int migctl_start_streams(struct migctl *c, const char *vm, const char *dest,
    const char *token, const char *precopy, uint64_t max_bps, const char *compression,
    uint32_t streams, Migrationd__V1__StartMigrationResponse **out);
/* Source: a new cap on a running migration's background stream (0: none). */
int migctl_set_bandwidth(struct migctl *c, const char *id_or_vm, uint64_t max_bps,
    Migrationd__V1__SetMigrationResponse **out);
/* Source in PRECOPY: switch over to post-copy now. */
int migctl_postcopy(struct migctl *c, const char *id_or_vm,
    Migrationd__V1__StartPostcopyResponse **out);
int migctl_get(struct migctl *c, const char *id_or_vm,
    Migrationd__V1__GetMigrationResponse **out);
/* Filters: state 0 (any), role 0 (any), vm NULL or "" (any). */
int migctl_list(struct migctl *c, Migrationd__V1__MigrationState state,
    Migrationd__V1__Role role, const char *vm, Migrationd__V1__ListMigrationsResponse **out);
int migctl_pause(struct migctl *c, const char *id_or_vm,
    Migrationd__V1__PauseMigrationResponse **out);
/* `dest` NULL or "": reconnect to the same destination. */
int migctl_recover(struct migctl *c, const char *id_or_vm, const char *dest,
    Migrationd__V1__RecoverMigrationResponse **out);
int migctl_cancel(struct migctl *c, const char *id_or_vm,
    Migrationd__V1__CancelMigrationResponse **out);
int migctl_latency(struct migctl *c, const char *id_or_vm,
    Migrationd__V1__GetFaultLatencyResponse **out);
int migctl_health(struct migctl *c, Migrationd__V1__GetHealthResponse **out);

/*
 * Called for each event of a watch. `ev` is valid during the call only.
 * Return 0 to go on, non-zero to stop watching (the stream is cancelled and
 * migctl_watch() returns 0).
 */
typedef int (*migctl_watch_fn)(const Migrationd__V1__MigrationEvent *ev, void *arg);

/*
 * Streams events of one migration (interval_ms 0: the daemon's default,
 * 500 ms) until it ends (returns 0), `fn` stops it (0), or an error.
 */
int migctl_watch(struct migctl *c, const char *id_or_vm, unsigned interval_ms,
    migctl_watch_fn fn, void *arg);

/* Name of a state ("POSTCOPY"), of a role ("SOURCE"). */
const char *migctl_state_name(Migrationd__V1__MigrationState s);
const char *migctl_role_name(Migrationd__V1__Role r);

#endif
