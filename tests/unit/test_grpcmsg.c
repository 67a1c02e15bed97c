/*
 * test_grpcmsg: gRPC message prefix (partial input, limits, compressed
 * flag), the method table, status code names and parsing, grpc-message
 * percent-encoding round trips.
 */
#include <stdlib.h>
#include <string.h>

#include "grpcmsg.h"
#include "unit.h"

int
main(void)
{
	Migrationd__V1__StartMigrationRequest s = MIGRATIOND__V1__START_MIGRATION_REQUEST__INIT;
	Migrationd__V1__StartMigrationRequest *d;
	const struct grpc_method *gm;
	const char *why = NULL;
	char enc[64], dec[64];
	uint8_t *buf, junk[32];
	uint32_t plen = 0;
	size_t len;

	s.vm = "vm1";
	s.destination = "192.0.2.2:7480";
	s.token = "abc";
	buf = grpcmsg_pack(&s.base, GRPC_MSG_MAX, &len);
	CHECK(buf != NULL);
	CHECK_EQ(buf[0], 0);
	for (size_t n = 0; n < len; n++)
		CHECK_EQ(grpcmsg_peek(buf, n, GRPC_MSG_MAX, &plen), 0);
	CHECK_EQ(grpcmsg_peek(buf, len, GRPC_MSG_MAX, &plen), 1);
	CHECK_EQ(plen, len - GRPC_PREFIX);
	gm = grpcmsg_method("/migrationd.v1.Migrationd/StartMigration");
	CHECK(gm != NULL && gm->id == GM_START_MIGRATION && !gm->server_stream);
	d = (void *)grpcmsg_decode(gm->req, buf + GRPC_PREFIX, plen, &why);
	CHECK(d != NULL);
	if (d != NULL) {
		CHECK(strcmp(d->destination, "192.0.2.2:7480") == 0);
		protobuf_c_message_free_unpacked(&d->base, NULL);
	}
	/* Too long for the limit; compressed flag set. */
	CHECK_EQ(grpcmsg_peek(buf, len, 3, &plen), -1);
	CHECK(grpcmsg_pack(&s.base, 3, &len) == NULL);
	buf[0] = 1;
	CHECK_EQ(grpcmsg_peek(buf, len, GRPC_MSG_MAX, &plen), -2);
	free(buf);
	/* An empty message is a valid 5-byte frame. */
	CHECK_EQ(grpcmsg_peek((const uint8_t *)"\0\0\0\0\0", 5, GRPC_MSG_MAX, &plen), 1);
	CHECK_EQ(plen, 0);

	/* Method table: every method, by path and by id; unknown paths. */
	for (int i = 0; i < GM_COUNT; i++) {
		const struct grpc_method *x = grpcmsg_method_by_id(i);

		CHECK(x != NULL && grpcmsg_method(x->path) == x);
	}
	CHECK(grpcmsg_method("/migrationd.v1.Migrationd/Nope") == NULL);
	CHECK(grpcmsg_method("") == NULL);
	CHECK(grpcmsg_method_by_id(GM_WATCH_MIGRATION)->server_stream);
	CHECK(!grpcmsg_method_by_id(GM_WATCH_MIGRATION)->client_stream);
	/* The standard services: health unary and server-streaming, reflection
	 * bidirectional under both package names. */
	gm = grpcmsg_method("/grpc.health.v1.Health/Check");
	CHECK(gm != NULL && gm->id == GM_HEALTH_CHECK && !gm->server_stream && !gm->client_stream);
	gm = grpcmsg_method("/grpc.health.v1.Health/Watch");
	CHECK(gm != NULL && gm->id == GM_HEALTH_WATCH && gm->server_stream && !gm->client_stream);
	for (int v = 0; v < 2; v++) {
		gm = grpcmsg_method(v ? "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo" :
		    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
		CHECK(gm != NULL && gm->server_stream && gm->client_stream &&
		    gm->id == (v ? GM_REFLECTION_V1ALPHA : GM_REFLECTION_V1));
	}
	gm = grpcmsg_method("/migrationd.v1.Migrationd/StartMigration");

	/* Garbage is not a request. */
	memset(junk, 0xff, sizeof(junk));
	why = NULL;
	CHECK(grpcmsg_decode(gm->req, junk, sizeof(junk), &why) == NULL && why != NULL);

	/* Status codes. */
	CHECK(strcmp(grpcmsg_code_name(GRPC_NOT_FOUND), "NOT_FOUND") == 0);
	CHECK(strcmp(grpcmsg_code_name(99), "UNKNOWN") == 0);
	CHECK_EQ(grpcmsg_parse_code("9", 1), GRPC_FAILED_PRECONDITION);
	CHECK_EQ(grpcmsg_parse_code("16", 2), 16);
	CHECK_EQ(grpcmsg_parse_code("17", 2), -1);
	CHECK_EQ(grpcmsg_parse_code("x", 1), -1);
	CHECK_EQ(grpcmsg_parse_code("", 0), -1);

	/* Percent-encoding: round trip, '%' and control bytes escaped, truncation. */
	grpcmsg_pct_encode("50% done\n\xc3\xa9", enc, sizeof(enc));
	CHECK(strcmp(enc, "50%25 done%0A%C3%A9") == 0);
	grpcmsg_pct_decode(enc, strlen(enc), dec, sizeof(dec));
	CHECK(strcmp(dec, "50% done\n\xc3\xa9") == 0);
	CHECK_EQ(grpcmsg_pct_encode("abcdef", enc, 4), 3);
	CHECK_EQ(grpcmsg_pct_encode("%%%", enc, 5), 3);
	CHECK_EQ(grpcmsg_pct_decode("%4", 2, dec, sizeof(dec)), 2);
	CHECK(strcmp(dec, "%4") == 0);
	CHECK_EQ(grpcmsg_pct_decode("%zz", 3, dec, sizeof(dec)), 3);
	return unit_done("test_grpcmsg");
}
