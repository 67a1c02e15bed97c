/*
 * grpcmsg: the gRPC message layer shared by the daemon (control.c, h2.c) and
 * libmigctl: the 5-byte length prefix of gRPC messages, the table of methods
 * of the migrationd.v1.Migrationd service and of the standard gRPC services
 * the daemon serves (health, reflection) with their message types, status
 * codes and the percent-encoding of grpc-message. Pure code (no I/O, no
 * daemon state); unit-tested and fuzzed alone.
 */
#ifndef MIG_GRPCMSG_H
#define MIG_GRPCMSG_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

#define GRPC_PREFIX	5		/* compressed flag, 4-byte big-endian length */
#define GRPC_MSG_MAX	(4u << 20)	/* largest message either side accepts */
#define GRPC_SERVICE	"/migrationd.v1.Migrationd/"

/* gRPC status codes (grpc/doc/statuscodes.md). */
enum grpc_code {
	GRPC_OK = 0,
	GRPC_CANCELLED = 1,
	GRPC_UNKNOWN = 2,
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_ALREADY_EXISTS = 6,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_FAILED_PRECONDITION = 9,
	GRPC_ABORTED = 10,
	GRPC_OUT_OF_RANGE = 11,
	GRPC_UNIMPLEMENTED = 12,
	GRPC_INTERNAL = 13,
	GRPC_UNAVAILABLE = 14,
	GRPC_DATA_LOSS = 15,
	GRPC_UNAUTHENTICATED = 16,
};

enum grpc_method_id {
	GM_PREPARE_INCOMING,
	GM_START_MIGRATION,
	GM_GET_MIGRATION,
	GM_LIST_MIGRATIONS,
	GM_WATCH_MIGRATION,
	GM_PAUSE_MIGRATION,
	GM_RECOVER_MIGRATION,
	GM_CANCEL_MIGRATION,
	GM_GET_FAULT_LATENCY,
	GM_GET_HEALTH,
	/* The standard services (grpc.health.v1, grpc.reflection.v1/v1alpha). */
	GM_HEALTH_CHECK,
	GM_HEALTH_WATCH,
	GM_REFLECTION_V1,
	GM_REFLECTION_V1ALPHA,
	GM_START_POSTCOPY,
	GM_SET_MIGRATION,
	GM_COUNT
};

struct grpc_method {
	enum grpc_method_id			 id;
	const char				*path;	/* ":path", e.g. "/migrationd.v1.Migrationd/GetHealth" */
	const ProtobufCMessageDescriptor	*req;
	const ProtobufCMessageDescriptor	*resp;
	int					 server_stream;
	int					 client_stream;	/* one message per call, or many */
};

/* The method of a ":path"; NULL if the service has none of that name. */
const struct grpc_method *grpcmsg_method(const char *path);
const struct grpc_method *grpcmsg_method_by_id(enum grpc_method_id id);

/*
 * Looks at the start of a message stream. Returns 1 and the payload length
 * in *plen when a whole message is available, 0 when more bytes are needed,
 * -1 when it is longer than `max`, -2 when it is compressed (we announce no
 * compression, so a compressed message is a protocol error).
 */
int grpcmsg_peek(const uint8_t *buf, size_t avail, uint32_t max, uint32_t *plen);

/* Packs `m` behind its 5-byte prefix into a new buffer (caller frees) and
 * stores the total length in *len. NULL if longer than `max` or no memory. */
uint8_t *grpcmsg_pack(const ProtobufCMessage *m, uint32_t max, size_t *len);

/* Decodes one payload as `desc`; NULL (and *why) if it is not one. The
 * caller frees with protobuf_c_message_free_unpacked(). */
ProtobufCMessage *grpcmsg_decode(const ProtobufCMessageDescriptor *desc,
    const uint8_t *p, size_t len, const char **why);

/* "NOT_FOUND" for 5; "UNKNOWN" outside the table. */
const char *grpcmsg_code_name(int code);

/* Parses a grpc-status value ("0".."16"); -1 if it is not one. */
int grpcmsg_parse_code(const char *s, size_t len);

/*
 * grpc-message is percent-encoded (bytes outside 0x20..0x7e, and '%').
 * Both write a NUL-terminated string of at most outlen - 1 bytes into out
 * (truncating) and return its length. Decoding leaves a malformed escape as
 * it is.
 */
size_t grpcmsg_pct_encode(const char *in, char *out, size_t outlen);
size_t grpcmsg_pct_decode(const char *in, size_t inlen, char *out, size_t outlen);

#endif
