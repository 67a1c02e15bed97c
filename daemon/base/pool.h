/*
 * pool.h: a fork-join pool of worker threads for pure CPU work the loop
 * thread would otherwise do alone (role/compress.c: the zstd runs of a
 * background batch; transport/peer_tx.c: several streams' TLS writes).
 * pool_run hands out njobs jobs, takes them itself as well, and returns
 * when every one is done: nothing of the daemon runs on a
 * worker outside pool_run, and fn must touch only what its job owns (its
 * input and output) and what belongs to its thread (index t: 0 is the
 * caller, 1..pool_threads-1 the workers). Called from the loop thread only.
 */
#ifndef MIG_POOL_H
#define MIG_POOL_H

#define POOL_MAX_WORKERS	7	/* [peer] compress_threads, at most */

struct pool;

typedef void pool_fn(void *arg, unsigned job, unsigned t);

/* A pool of `workers` threads beside the caller. NULL with errno if none
 * could be started (pool_run then needs no pool: NULL runs inline). */
struct pool *pool_new(unsigned workers);
/* Threads a pool_run may use, the caller counted: workers + 1 (1 for NULL). */
unsigned pool_threads(const struct pool *p);
void pool_run(struct pool *p, pool_fn *fn, void *arg, unsigned njobs);
void pool_free(struct pool *p);
/*
 * The daemon's pool, shared by whatever runs batches on the loop thread
 * (compression, the background streams' encryption): made at the first
 * call with `workers` threads and that size from then on; NULL when it has
 * none (0 workers, or none could start: logged once).
 */
struct pool *pool_shared(unsigned workers);

#endif
