/*
 * test_pool: the fork-join pool (daemon/base/pool.c). Every job of every
 * batch runs exactly once, on a thread index in range, and pool_run returns
 * only when all of them are done (each job writes its own slot after a
 * short spin; the caller reads them all right after). Many small batches
 * back to back check the generation hand-off: a worker that wakes late
 * must never run a job of a batch twice or after pool_run returned.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "unit.h"

#define JOBS	64

struct batch {
	unsigned	 round;
	unsigned	 seen[JOBS];	/* round+1 once run */
	atomic_uint	 runs[JOBS];
	atomic_uint	 bad_thread;
	unsigned	 nthreads;
	atomic_uint	 by_worker;
};

static void
job(void *arg, unsigned j, unsigned t)
{
	struct batch *b = arg;
	volatile unsigned spin = 0;

	for (unsigned k = 0; k < (j % 7) * 200; k++)
		spin += k;
	if (t >= b->nthreads)
		atomic_fetch_add(&b->bad_thread, 1);
	if (t != 0)
		atomic_fetch_add(&b->by_worker, 1);
	atomic_fetch_add(&b->runs[j], 1);
	b->seen[j] = b->round + 1;
}

static void
rounds(struct pool *p, unsigned n, unsigned njobs)
{
	struct batch *b = calloc(1, sizeof(*b));
	unsigned missing = 0, twice = 0;

	b->nthreads = pool_threads(p);
	for (unsigned r = 0; r < n; r++) {
		b->round = r;
		for (unsigned j = 0; j < JOBS; j++)
			atomic_store(&b->runs[j], 0);
		pool_run(p, job, b, njobs);
		for (unsigned j = 0; j < njobs; j++) {
			missing += b->seen[j] != r + 1;
			twice += atomic_load(&b->runs[j]) != 1;
		}
		for (unsigned j = njobs; j < JOBS; j++)
			twice += atomic_load(&b->runs[j]) != 0;
	}
	CHECK_EQ(missing, 0);
	CHECK_EQ(twice, 0);
	CHECK_EQ(atomic_load(&b->bad_thread), 0);
	if (p != NULL && njobs > 1)
		CHECK(atomic_load(&b->by_worker) > 0);	/* the workers took part */
	if (p == NULL)
		CHECK_EQ(atomic_load(&b->by_worker), 0);
	free(b);
}

int
main(void)
{
	struct pool *p;

	CHECK(pool_new(0) == NULL);
	CHECK_EQ(pool_threads(NULL), 1);
	rounds(NULL, 10, 5);			/* no pool: inline */
	p = pool_new(3);
	CHECK(p != NULL);
	CHECK_EQ(pool_threads(p), 4);
	rounds(p, 20000, 2);			/* tiny batches: the hand-off */
	rounds(p, 2000, JOBS);
	rounds(p, 100, 1);
	rounds(p, 100, 0);
	pool_free(p);
	p = pool_new(POOL_MAX_WORKERS + 5);	/* capped */
	CHECK_EQ(pool_threads(p), POOL_MAX_WORKERS + 1);
	rounds(p, 500, 9);
	pool_free(p);
	return unit_done("pool");
}
