/*
 * test_ctlmsg: length-prefixed messages and peer messages: round trips,
 * partial input, bad lengths, garbage payloads, messages without a type.
 */
#include <stdlib.h>
#include <string.h>

#include "ctlmsg.h"
#include "unit.h"

int
main(void)
{
	Migrationd__Peer__V1__PeerMsg q = MIGRATIOND__PEER__V1__PEER_MSG__INIT, *d;
	Migrationd__Peer__V1__Hello s = MIGRATIOND__PEER__V1__HELLO__INIT;
	Migrationd__Peer__V1__PeerMsg pm = MIGRATIOND__PEER__V1__PEER_MSG__INIT, *pd;
	Migrationd__Peer__V1__Hello h = MIGRATIOND__PEER__V1__HELLO__INIT;
	const char *why = NULL;
	uint8_t *buf, junk[64];
	uint32_t plen;
	size_t len;

	s.version = 1;
	s.token = "abc";
	s.vm = "vm1";
	q.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_HELLO;
	q.hello = &s;
	buf = ctlmsg_pack(&q.base, CTLMSG_MAX, &len);
	CHECK(buf != NULL);
	CHECK_EQ(ctlmsg_prefix_len(buf), len - CTLMSG_PREFIX);
	/* Every prefix of a frame asks for more; the whole frame is ready. */
	for (size_t n = 0; n < len; n++)
		CHECK_EQ(ctlmsg_peek(buf, n, CTLMSG_MAX, &plen), 0);
	CHECK_EQ(ctlmsg_peek(buf, len, CTLMSG_MAX, &plen), 1);
	CHECK_EQ(plen, len - CTLMSG_PREFIX);
	d = ctlmsg_decode_peer(buf + CTLMSG_PREFIX, plen, &why);
	CHECK(d != NULL);
	if (d != NULL) {
		CHECK_EQ(d->msg_case, MIGRATIOND__PEER__V1__PEER_MSG__MSG_HELLO);
		CHECK(strcmp(d->hello->token, "abc") == 0);
		migrationd__peer__v1__peer_msg__free_unpacked(d, NULL);
	}
	/* A limit below the message refuses it, at packing and at peeking. */
	CHECK(ctlmsg_pack(&q.base, 4, &len) == NULL);
	CHECK_EQ(ctlmsg_peek(buf, len, 4, &plen), -1);
	free(buf);

	/* Zero length and absurd length are fatal for the stream. */
	CHECK_EQ(ctlmsg_peek((const uint8_t *)"\0\0\0\0", 4, CTLMSG_MAX, &plen), -1);
	CHECK_EQ(ctlmsg_peek((const uint8_t *)"\xff\xff\xff\xff", 4, CTLMSG_MAX, &plen), -1);

	/* Garbage is not a message (invalid wire types / truncated varints). */
	memset(junk, 0xff, sizeof(junk));
	why = NULL;
	CHECK(ctlmsg_decode_peer(junk, sizeof(junk), &why) == NULL && why != NULL);

	/* Peer messages: a Hello round-trips; an empty PeerMsg is refused. */
	h.version = 1;
	h.channel = MIGRATIOND__PEER__V1__CHANNEL__URGENT;
	h.token = "tok";
	h.ram_bytes = 1 << 20;
	pm.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_HELLO;
	pm.hello = &h;
	len = migrationd__peer__v1__peer_msg__get_packed_size(&pm);
	buf = malloc(len);
	migrationd__peer__v1__peer_msg__pack(&pm, buf);
	pd = ctlmsg_decode_peer(buf, len, &why);
	CHECK(pd != NULL);
	if (pd != NULL) {
		CHECK_EQ(pd->msg_case, MIGRATIOND__PEER__V1__PEER_MSG__MSG_HELLO);
		CHECK(strcmp(pd->hello->token, "tok") == 0);
		CHECK_EQ(pd->hello->ram_bytes, 1 << 20);
		migrationd__peer__v1__peer_msg__free_unpacked(pd, NULL);
	}
	/* Cut anywhere inside, it is refused or decodes without the cut fields. */
	for (size_t n = 1; n < len; n++) {
		pd = ctlmsg_decode_peer(buf, n, &why);
		if (pd != NULL) {
			CHECK(pd->msg_case == MIGRATIOND__PEER__V1__PEER_MSG__MSG_HELLO);
			migrationd__peer__v1__peer_msg__free_unpacked(pd, NULL);
		}
	}
	free(buf);
	pm.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG__NOT_SET;
	len = migrationd__peer__v1__peer_msg__get_packed_size(&pm);
	why = NULL;
	/* An empty message packs to zero bytes: decodes to "no type". */
	CHECK(ctlmsg_decode_peer((const uint8_t *)"", 0, &why) == NULL && why != NULL);
	return unit_done("test_ctlmsg");
}
