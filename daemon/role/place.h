/*
 * place.h: where a background frame's payload lands as it is read
 * (place.c), and the memfd primitives the installer shares with it.
 */
#ifndef MIG_PLACE_H
#define MIG_PLACE_H

#include <stdint.h>

#include "frame.h"
#include "migration.h"

/* m->ops->rx_begin / rx_where / rx_end of a destination. */
int place_begin(struct pconn *c, const struct frame_hdr *h, uint8_t **staging);
uint8_t *place_where(struct pconn *c, uint32_t off, uint32_t *len);
void place_end(struct pconn *c);
/*
 * Minor mode, for inst_ioctl: the pages from idx on that the frame being
 * delivered read straight into the page cache (journaled WRITTEN from now
 * on), to be mapped; 0 if [idx, idx+n) is not that run.
 */
uint64_t place_claim(struct migration *m, uint64_t idx, uint64_t n);
/*
 * Minor mode, before any other page-cache write: a run read (or being read)
 * into the page cache moves to the staging buffer, where the rest of its
 * frame goes too, and out of the page cache; the journal is free. 0, or -1
 * (errno) if its bytes could not be read back (the run stays).
 */
int place_evacuate(struct migration *m);
void place_free(struct migration *m);

/* Guest RAM on hugetlbfs: SEEK_DATA cannot tell what is installed there. */
int place_hugetlb(const struct migration *m);
/* Drops pages [idx, idx+n) from the memfd's page cache. 0 or -1 (logged). */
int place_punch(struct migration *m, uint64_t idx, uint64_t n);
/* Minor mode: [idx, idx+n) was written and not mapped: dropped, or kept in
 * the journal (m->dst->unsettled) if it cannot be. */
void place_settle(struct migration *m, uint64_t idx, uint64_t n);
/* Minor mode, shmem: how many pages from idx on are holes (n: all). */
uint64_t place_holes(struct migration *m, uint64_t idx, uint64_t n);

#endif
