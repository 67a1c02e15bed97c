/*
 * memguard: a copy into a mapping of memory that another process may take
 * away under it. The daemon writes minor-mode pages of hugetlbfs guest RAM
 * through its own MAP_SHARED mapping (hugetlbfs has no write()); the VMM
 * cannot shrink that file (sealed, F_SEAL_SHRINK), but it can punch a page
 * out of it, and with no huge page left to fill the hole, or with a
 * hardware-poisoned page, the kernel answers the daemon's access with
 * SIGBUS. Inside memguard_copy() such a SIGBUS fails the copy instead of
 * killing the process; anywhere else it keeps the action it had. One copy
 * at a time per thread; not async-signal-safe.
 */
#ifndef MEMGUARD_H
#define MEMGUARD_H

#include <stddef.h>

/* Copies len bytes from src (NULL: zeros) to dst. 0, or -1 with errno
 * EFAULT if dst raised SIGBUS (dst then holds part of the copy). */
int memguard_copy(void *dst, const void *src, size_t len);

#endif
