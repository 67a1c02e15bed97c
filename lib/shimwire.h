/*
 * shimwire: one ShimMsg (proto/shim.proto) per SOCK_SEQPACKET packet, with
 * optional fds in SCM_RIGHTS. Shared by libmigshim and migrationd so both
 * ends frame and check messages the same way. No global state.
 */
#ifndef SHIMWIRE_H
#define SHIMWIRE_H

#include <stddef.h>
#include "shim.pb-c.h"

#define SHIMWIRE_MAX_MSG (4u << 20)	/* largest packet, state blob included */
#define SHIMWIRE_MAX_FDS 4

/* Packs and sends `m` with `nfds` fds (ownership stays with the caller).
 * Returns 0, or -1 with errno set. */
int shimwire_send(int sock, const Migrationd__Shim__V1__ShimMsg *m,
    const int *fds, int nfds);

/*
 * Receives one packet and unpacks it into *out (free with
 * migrationd__shim__v1__shim_msg__free_unpacked). Received fds go to fds[],
 * their count to *nfds; the caller owns them. Returns 1 for a message, 0 on
 * EOF, -1 with errno (EAGAIN when nothing is queued, EBADMSG for a packet that
 * is truncated, too large or not a ShimMsg; any fds that came with a bad
 * packet are closed).
 */
int shimwire_recv(int sock, Migrationd__Shim__V1__ShimMsg **out, int *fds,
    int *nfds);

#endif
