/*
 * journal: the one run of pages a destination in minor mode is writing into
 * guest RAM's page cache, kept in a small file under the state directory and
 * mapped MAP_SHARED, so it outlives a daemon killed at any instruction.
 *
 * Minor mode installs a page in two steps: write it into the memfd's page
 * cache (not yet visible to the guest: its access faults and waits), then
 * UFFDIO_CONTINUE maps it. A daemon killed between the two leaves pages the
 * guest never saw; killed during the write, pages that are half written.
 * The journal says which: WRITING (punch the run out of the page cache, it
 * is fetched again), WRITTEN (complete: map it). A page outside the journal
 * that is in the page cache is complete and mapped, so a restarted daemon
 * never writes into a page the guest already owns and never maps a torn one.
 *
 * The stores are plain memory writes into the shared mapping: the kernel
 * keeps them when the process dies; each is ordered before the system call
 * it guards (pwrite, UFFDIO_CONTINUE). Loop thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "journal.h"

#define JOURNAL_MAGIC	0x6d69676a	/* "migj" */
#define JOURNAL_VERSION	1

struct journal_file {
	uint32_t	magic;
	uint32_t	version;
	uint64_t	state;		/* JOURNAL_IDLE, _WRITING, _WRITTEN */
	uint64_t	idx;		/* first page of the run */
	uint64_t	count;		/* pages in the run */
};

struct journal {
	struct journal_file	*f;
	char			 path[600];
};

struct journal *
journal_open(const char *path, struct journal_run *pending)
{
	struct journal *j;
	int fd, fresh;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	snprintf(j->path, sizeof(j->path), "%s", path);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		goto fail;
	fresh = lseek(fd, 0, SEEK_END) < (off_t)sizeof(struct journal_file);
	if (fresh && ftruncate(fd, 4096) < 0) {
		close(fd);
		goto fail;
	}
	j->f = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (j->f == MAP_FAILED)
		goto fail;
	memset(pending, 0, sizeof(*pending));
	if (!fresh && j->f->magic == JOURNAL_MAGIC && j->f->version == JOURNAL_VERSION &&
	    (j->f->state == JOURNAL_WRITING || j->f->state == JOURNAL_WRITTEN)) {
		pending->state = (int)j->f->state;
		pending->idx = j->f->idx;
		pending->count = j->f->count;
	} else if (!fresh && j->f->magic != 0 && j->f->magic != JOURNAL_MAGIC) {
		munmap(j->f, 4096);
		errno = EINVAL;	/* not ours: leave it alone */
		goto fail;
	}
	j->f->magic = JOURNAL_MAGIC;
	j->f->version = JOURNAL_VERSION;
	return j;
fail:
	free(j);
	return NULL;
}

static void
journal_store(struct journal *j, uint64_t state, uint64_t idx, uint64_t count)
{
	/* Invalidate first, then the run, then the state that makes it count. */
	__atomic_store_n(&j->f->state, JOURNAL_IDLE, __ATOMIC_SEQ_CST);
	j->f->idx = idx;
	j->f->count = count;
	__atomic_store_n(&j->f->state, state, __ATOMIC_SEQ_CST);
}

void
journal_writing(struct journal *j, uint64_t idx, uint64_t count)
{
	journal_store(j, JOURNAL_WRITING, idx, count);
}

void
journal_written(struct journal *j)
{
	__atomic_store_n(&j->f->state, JOURNAL_WRITTEN, __ATOMIC_SEQ_CST);
}

void
journal_idle(struct journal *j)
{
	__atomic_store_n(&j->f->state, JOURNAL_IDLE, __ATOMIC_SEQ_CST);
}

void
journal_close(struct journal *j, int remove)
{
	if (j == NULL)
		return;
	munmap(j->f, 4096);
	if (remove)
		unlink(j->path);
	free(j);
}
