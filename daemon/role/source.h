/*
 * source.h: the source role, the page server (source.c).
 */
#ifndef MIG_SOURCE_H
#define MIG_SOURCE_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "migration.h"
#include "policy.h"
#include "precopy.h"
#include "source_state.h"

struct pconn;
struct vm;

/* Starts migrating `v` to `dest`. -1 with err when refused; 0 with *out
 * set otherwise (the migration may already have failed: see its state). */
int src_start(struct vm *v, const char *dest, const char *token,
    const struct precopy_policy *pc, uint64_t bps, struct migration **out, char *err,
    size_t errlen);
/* A new cap on the background stream (bits/s, 0: none), at once. */
int src_set_bandwidth(struct migration *m, uint64_t bps, char *err, size_t errlen);
int src_recover(struct migration *m, const char *dest, char *err, size_t errlen);
int src_pause(struct migration *m, char *err, size_t errlen);
int src_cancel(struct migration *m, char *err, size_t errlen);
/* A record of a source migration read back after a restart. */
void src_revive(struct migration *m);

#endif
