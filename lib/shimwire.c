/*
 * shimwire: SOCK_SEQPACKET framing of ShimMsg with SCM_RIGHTS, used by both
 * libmigshim and migrationd. Stateless; callers own their sockets and fds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shimwire.h"

int
shimwire_send(int sock, const Migrationd__Shim__V1__ShimMsg *m, const int *fds,
    int nfds)
{
	size_t len = migrationd__shim__v1__shim_msg__get_packed_size(m);
	union {
		char buf[CMSG_SPACE(sizeof(int) * SHIMWIRE_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct msghdr mh = { 0 };
	struct iovec iov;
	uint8_t *buf;
	ssize_t n;

	if (len > SHIMWIRE_MAX_MSG || nfds < 0 || nfds > SHIMWIRE_MAX_FDS) {
		errno = EMSGSIZE;
		return -1;
	}
	if ((buf = malloc(len ? len : 1)) == NULL)
		return -1;
	migrationd__shim__v1__shim_msg__pack(m, buf);
	iov.iov_base = buf;
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	free(buf);
	if (n < 0)
		return -1;
	if ((size_t)n != len) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

static void
close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int
shimwire_recv(int sock, Migrationd__Shim__V1__ShimMsg **out, int *fds, int *nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * SHIMWIRE_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct msghdr mh = { 0 };
	struct iovec iov;
	struct cmsghdr *c;
	uint8_t *buf;
	ssize_t n;
	int got = 0;

	*out = NULL;
	*nfds = 0;
	/* One byte more than the limit so an oversized packet shows as MSG_TRUNC. */
	if ((buf = malloc(SHIMWIRE_MAX_MSG + 1)) == NULL)
		return -1;
	iov.iov_base = buf;
	iov.iov_len = SHIMWIRE_MAX_MSG + 1;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		free(buf);
		return -1;
	}
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (got < SHIMWIRE_MAX_FDS)
				fds[got++] = fd;
			else
				close(fd);
		}
	}
	if (n == 0 && got == 0) {
		free(buf);
		return 0;
	}
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || n > SHIMWIRE_MAX_MSG ||
	    (*out = migrationd__shim__v1__shim_msg__unpack(NULL, (size_t)n, buf)) == NULL) {
		free(buf);
		close_all(fds, got);
		errno = EBADMSG;
		return -1;
	}
	free(buf);
	*nfds = got;
	return 1;
}
