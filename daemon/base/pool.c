/*
 * pool: fork-join worker threads (pool.h). One mutex guards the batch: a
 * worker sleeps until the generation changes, then claims jobs under the
 * mutex until none is left; pool_run claims them the same way and then
 * waits until no job is pending and no worker is still inside the batch,
 * so that a worker never sees a batch once pool_run has returned. Jobs are
 * tens of microseconds to milliseconds long (a zstd run), so one mutex
 * costs nothing measurable; a worker that wakes late finds the jobs taken.
 * Workers block every signal: the loop thread takes them.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "log.h"
#include "pool.h"

struct pool {
	pthread_mutex_t	 mu;
	pthread_cond_t	 work, done;
	pthread_t	 tid[POOL_MAX_WORKERS];
	unsigned	 nworkers;
	/* the batch: under mu */
	unsigned long	 gen;
	pool_fn		*fn;
	void		*arg;
	unsigned	 njobs, next, pending, active;
	int		 stop;
};

struct pool_start {
	struct pool	*p;
	unsigned	 t;
};

/* Claims and runs jobs of the current batch as thread t; mu held. */
static void
pool_take(struct pool *p, unsigned t)
{
	while (p->next < p->njobs) {
		unsigned j = p->next++;

		pthread_mutex_unlock(&p->mu);
		p->fn(p->arg, j, t);
		pthread_mutex_lock(&p->mu);
		p->pending--;
	}
}

static void *
pool_worker(void *arg)
{
	struct pool_start *s = arg;
	struct pool *p = s->p;
	unsigned t = s->t;
	unsigned long seen;

	free(s);
	pthread_mutex_lock(&p->mu);
	seen = p->gen;
	for (;;) {
		while (p->gen == seen && !p->stop)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->stop)
			break;
		seen = p->gen;
		p->active++;
		pool_take(p, t);
		if (--p->active == 0 && p->pending == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct pool *
pool_new(unsigned workers)
{
	struct pool *p;
	sigset_t all, old;
	int err = 0;

	if (workers > POOL_MAX_WORKERS)
		workers = POOL_MAX_WORKERS;
	if (workers == 0 || (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned t = 0; t < workers; t++) {
		struct pool_start *s = malloc(sizeof(*s));

		if (s == NULL) {
			err = ENOMEM;
			break;
		}
		s->p = p;
		s->t = t + 1;
		if ((err = pthread_create(&p->tid[t], NULL, pool_worker, s)) != 0) {
			free(s);
			break;
		}
		p->nworkers++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (p->nworkers == 0) {
		pool_free(p);
		errno = err;
		return NULL;
	}
	if (err != 0)
		log_warnx("only %u of %u worker threads started", p->nworkers, workers);
	return p;
}

unsigned
pool_threads(const struct pool *p)
{
	return p == NULL ? 1 : p->nworkers + 1;
}

void
pool_run(struct pool *p, pool_fn *fn, void *arg, unsigned njobs)
{
	if (p == NULL || njobs < 2) {
		for (unsigned j = 0; j < njobs; j++)
			fn(arg, j, 0);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->arg = arg;
	p->njobs = njobs;
	p->next = 0;
	p->pending = njobs;
	p->gen++;
	pthread_cond_broadcast(&p->work);
	pool_take(p, 0);
	while (p->pending > 0 || p->active > 0)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (unsigned t = 0; t < p->nworkers; t++)
		pthread_join(p->tid[t], NULL);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

struct pool *
pool_shared(unsigned workers)
{
	static struct pool *shared;
	static int tried;

	if (!tried) {
		tried = 1;
		if (workers > 0 && (shared = pool_new(workers)) == NULL)
			log_warn("cannot start %u worker threads; the loop thread works alone",
			    workers);
		else if (shared != NULL)
			log_info("worker threads: %u beside the loop thread", shared->nworkers);
	}
	return shared;
}
