/*
 * ctlmsg: length-prefixed protobuf framing and checked decoding of the
 * peer messages. Decoding rejects what protobuf-c would accept
 * but the daemon cannot use (no oneof member set).
 */
#include <stdlib.h>
#include <string.h>

#include "ctlmsg.h"

uint8_t *
ctlmsg_pack(const ProtobufCMessage *m, uint32_t max, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf;

	if (n > max)
		return NULL;
	if ((buf = malloc(CTLMSG_PREFIX + n)) == NULL)
		return NULL;
	buf[0] = (uint8_t)(n >> 24);
	buf[1] = (uint8_t)(n >> 16);
	buf[2] = (uint8_t)(n >> 8);
	buf[3] = (uint8_t)n;
	protobuf_c_message_pack(m, buf + CTLMSG_PREFIX);
	*len = CTLMSG_PREFIX + n;
	return buf;
}

uint32_t
ctlmsg_prefix_len(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int
ctlmsg_peek(const uint8_t *buf, size_t avail, uint32_t max, uint32_t *plen)
{
	uint32_t n;

	if (avail < CTLMSG_PREFIX)
		return 0;
	n = ctlmsg_prefix_len(buf);
	if (n == 0 || n > max)
		return -1;
	if (avail - CTLMSG_PREFIX < n)
		return 0;
	*plen = n;
	return 1;
}

Migrationd__Peer__V1__PeerMsg *
ctlmsg_decode_peer(const uint8_t *p, size_t len, const char **why)
{
	Migrationd__Peer__V1__PeerMsg *m;

	if ((m = migrationd__peer__v1__peer_msg__unpack(NULL, len, p)) == NULL) {
		*why = "not a PeerMsg";
		return NULL;
	}
	if (m->msg_case == MIGRATIOND__PEER__V1__PEER_MSG__MSG__NOT_SET) {
		*why = "peer message of unknown type";
		migrationd__peer__v1__peer_msg__free_unpacked(m, NULL);
		return NULL;
	}
	return m;
}
