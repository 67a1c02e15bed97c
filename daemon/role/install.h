/*
 * install.h: the destination's installer (install.c): pages into guest RAM
 * by ioctl on the VM's userfaultfd, each page exactly once. Knows nothing of
 * waiters or channels.
 */
#ifndef MIG_INSTALL_H
#define MIG_INSTALL_H

#include <stdint.h>

#include "migration.h"

enum inst_result {
	INST_OK,	/* *done pages (>= 1) went in */
	INST_EEXIST,	/* the first page was present already (counted); *done = 1 */
	INST_ERROR,	/* a hard error (counted, logged) */
};

/* One install ioctl for pages [idx, idx+n), none of them installed yet. */
enum inst_result inst_ioctl(struct migration *m, uint64_t idx, uint64_t n, int enc,
    const uint8_t *src, uint64_t *done);
/* Minor mode: maps an installed page whose mapping is gone. 0 or -1. */
int inst_remap(struct migration *m, uint64_t idx);
/* The installed set of a new destination (empty, in a file under the state
 * directory). -1 (logged). */
int inst_init(struct migration *m);
/* Minor mode: the journal of a new migration. 0 or -1 (errno). */
int inst_journal_new(struct migration *m);
/* Its file goes: the run in flight is of pages dropped anyway. */
void inst_journal_discard(const struct migration *m);
/*
 * After a restart: the installed set from its file, the minor-mode journal
 * settled, joined with what the page cache holds. Pages present, or -1.
 */
int64_t inst_rebuild(struct migration *m);
/* Before completion: installed pages the page cache does not hold, unmarked
 * (to be fetched again); how many. */
uint64_t inst_missing(struct migration *m);
/*
 * Pre-copy's switch-over: installed pages of [first, first+n) (not poison)
 * are dropped from guest RAM and unmarked, so that the next access faults
 * and fetches them again. How many, or UINT64_MAX if a drop failed.
 */
uint64_t inst_invalidate(struct migration *m, uint64_t first, uint64_t n);
/* The same for a list of (first, count) runs from the source, ascending and
 * disjoint: 0 with *dropped, or -1 with why (a malformed list, or a failed
 * drop). */
int inst_invalidate_list(struct migration *m, const uint64_t *runs, size_t nruns,
    uint64_t *dropped, const char **why);
/* A new incoming migration: guest RAM holds nothing (left from an earlier
 * attempt that never ran here). 0 or -1. */
int inst_clear(struct migration *m);
void inst_release(struct migration *m);

#endif
