/*
 * grpcmsg: gRPC length-prefixed messages, the Migrationd method table,
 * status codes and grpc-message percent-encoding. See grpcmsg.h.
 */
#include <stdlib.h>
#include <string.h>

#include "grpcmsg.h"

#define M(id, name, rq, rs, st) { id, GRPC_SERVICE name, \
	&migrationd__v1__##rq##__descriptor, &migrationd__v1__##rs##__descriptor, st, 0 }
#define HEALTH(id, name, st) { id, "/grpc.health.v1.Health/" name, \
	&grpc__health__v1__health_check_request__descriptor, \
	&grpc__health__v1__health_check_response__descriptor, st, 0 }
/* v1alpha's messages are v1's under another package: the same code serves both. */
#define REFLECTION(id, pkg) { id, "/grpc.reflection." pkg ".ServerReflection/ServerReflectionInfo", \
	&grpc__reflection__v1__server_reflection_request__descriptor, \
	&grpc__reflection__v1__server_reflection_response__descriptor, 1, 1 }
static const struct grpc_method methods[GM_COUNT] = {
	M(GM_PREPARE_INCOMING, "PrepareIncoming", prepare_incoming_request,
	    prepare_incoming_response, 0),
	M(GM_START_MIGRATION, "StartMigration", start_migration_request,
	    start_migration_response, 0),
	M(GM_GET_MIGRATION, "GetMigration", get_migration_request,
	    get_migration_response, 0),
	M(GM_LIST_MIGRATIONS, "ListMigrations", list_migrations_request,
	    list_migrations_response, 0),
	M(GM_WATCH_MIGRATION, "WatchMigration", watch_migration_request,
	    migration_event, 1),
	M(GM_PAUSE_MIGRATION, "PauseMigration", pause_migration_request,
	    pause_migration_response, 0),
	M(GM_RECOVER_MIGRATION, "RecoverMigration", recover_migration_request,
	    recover_migration_response, 0),
	M(GM_CANCEL_MIGRATION, "CancelMigration", cancel_migration_request,
	    cancel_migration_response, 0),
	M(GM_GET_FAULT_LATENCY, "GetFaultLatency", get_fault_latency_request,
	    get_fault_latency_response, 0),
	M(GM_GET_HEALTH, "GetHealth", get_health_request, get_health_response, 0),
	HEALTH(GM_HEALTH_CHECK, "Check", 0),
	HEALTH(GM_HEALTH_WATCH, "Watch", 1),
	REFLECTION(GM_REFLECTION_V1, "v1"),
	REFLECTION(GM_REFLECTION_V1ALPHA, "v1alpha"),
	M(GM_START_POSTCOPY, "StartPostcopy", start_postcopy_request,
	    start_postcopy_response, 0),
	M(GM_SET_MIGRATION, "SetMigration", set_migration_request,
	    set_migration_response, 0),
};
#undef M
#undef HEALTH
#undef REFLECTION

static const char *const code_names[] = {
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
	"INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
};

const struct grpc_method *
grpcmsg_method(const char *path)
{
	for (unsigned i = 0; i < GM_COUNT; i++)
		if (!strcmp(methods[i].path, path))
			return &methods[i];
	return NULL;
}

const struct grpc_method *
grpcmsg_method_by_id(enum grpc_method_id id)
{
	return (unsigned)id < GM_COUNT ? &methods[id] : NULL;
}

int
grpcmsg_peek(const uint8_t *buf, size_t avail, uint32_t max, uint32_t *plen)
{
	uint32_t n;

	if (avail < GRPC_PREFIX)
		return 0;
	if (buf[0] != 0)
		return -2;
	n = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | buf[4];
	if (n > max)
		return -1;
	if (avail - GRPC_PREFIX < n)
		return 0;
	*plen = n;
	return 1;
}

uint8_t *
grpcmsg_pack(const ProtobufCMessage *m, uint32_t max, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf;

	if (n > max || (buf = malloc(GRPC_PREFIX + n)) == NULL)
		return NULL;
	buf[0] = 0;
	buf[1] = (uint8_t)(n >> 24);
	buf[2] = (uint8_t)(n >> 16);
	buf[3] = (uint8_t)(n >> 8);
	buf[4] = (uint8_t)n;
	protobuf_c_message_pack(m, buf + GRPC_PREFIX);
	*len = GRPC_PREFIX + n;
	return buf;
}

ProtobufCMessage *
grpcmsg_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len,
    const char **why)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, p);

	if (m == NULL)
		*why = "request is not a valid protobuf message of the method's type";
	return m;
}

const char *
grpcmsg_code_name(int code)
{
	if (code < 0 || code >= (int)(sizeof(code_names) / sizeof(code_names[0])))
		return "UNKNOWN";
	return code_names[code];
}

int
grpcmsg_parse_code(const char *s, size_t len)
{
	int v = 0;

	if (len == 0 || len > 2)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= GRPC_UNAUTHENTICATED ? v : -1;
}

size_t
grpcmsg_pct_encode(const char *in, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (outlen == 0)
		return 0;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
			if (o + 1 >= outlen)
				break;
			out[o++] = (char)*p;
		} else {
			if (o + 3 >= outlen)
				break;
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
	return o;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t
grpcmsg_pct_decode(const char *in, size_t inlen, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen == 0)
		return 0;
	for (size_t i = 0; i < inlen && o + 1 < outlen; i++) {
		int hi, lo;

		if (in[i] == '%' && i + 2 < inlen && (hi = hexval(in[i + 1])) >= 0 &&
		    (lo = hexval(in[i + 2])) >= 0) {
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = in[i];
		}
	}
	out[o] = '\0';
	return o;
}
