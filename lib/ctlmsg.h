/*
 * ctlmsg: length-prefixed protobuf messages on byte streams. A frame is a
 * 4-byte big-endian length and that many bytes of one protobuf message.
 * Also decodes the PeerMsg carried in FRAME_MSG frames. (The control API
 * itself is gRPC now: grpcmsg.h.) Pure code; unit-tested alone.
 */
#ifndef MIG_CTLMSG_H
#define MIG_CTLMSG_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "peer.pb-c.h"

#define CTLMSG_PREFIX	4
#define CTLMSG_MAX	(1u << 20)

/*
 * Packs `m` behind its length prefix into a new buffer (caller frees) and
 * stores the total length in *len. Returns NULL if it exceeds `max`.
 */
uint8_t *ctlmsg_pack(const ProtobufCMessage *m, uint32_t max, size_t *len);

/*
 * Looks at the first bytes of a stream. Returns 1 and the payload length in
 * *plen when a whole frame is available, 0 when more bytes are needed, -1 when
 * the announced length is 0 or above `max` (the stream is unusable).
 */
int ctlmsg_peek(const uint8_t *buf, size_t avail, uint32_t max, uint32_t *plen);

/* The payload length announced by a 4-byte prefix (not checked). */
uint32_t ctlmsg_prefix_len(const uint8_t *p);

/* Decodes a FRAME_MSG payload; NULL (and *why) unless a known message. */
Migrationd__Peer__V1__PeerMsg *ctlmsg_decode_peer(const uint8_t *p, size_t len,
    const char **why);

#endif
