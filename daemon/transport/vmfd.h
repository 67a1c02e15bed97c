/*
 * vmfd.h: checks of the fds a VMM hands over at Attach (vmfd.c), by what
 * the kernel says each is. Each returns NULL if the fd is acceptable, else
 * `why` filled with the reason.
 */
#ifndef MIG_VMFD_H
#define MIG_VMFD_H

#include <stddef.h>
#include <stdint.h>

/* A userfaultfd, set up (UFFDIO_API), in SIGBUS mode iff `sigbus` (ring). */
const char *vmfd_check_uffd(int fd, int sigbus, char *why, size_t len);
/* An eventfd, not in semaphore mode. */
const char *vmfd_check_eventfd(int fd, char *why, size_t len);

/* What shared memory must be: guest RAM or the fault ring. */
struct vmfd_shm {
	const char	*what;		/* "guest RAM", "fault ring" */
	int		 huge;		/* on hugetlbfs (else shmem: a memfd) */
	int		 writable;	/* the daemon writes it: no write seals */
	uint64_t	 min, max;	/* its size, in bytes */
};
/* A regular file on shmem or hugetlbfs, sealed F_SEAL_SHRINK, of its size. */
const char *vmfd_check_shm(int fd, const struct vmfd_shm *want, char *why, size_t len);

#endif
