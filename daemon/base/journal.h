/*
 * journal.h: the in-flight run of a minor-mode destination (journal.c).
 * Self-contained: no daemon header, testable alone.
 */
#ifndef JOURNAL_H
#define JOURNAL_H

#include <stdint.h>

enum {
	JOURNAL_IDLE = 0,	/* nothing between write and map */
	JOURNAL_WRITING = 1,	/* run being written: may be torn */
	JOURNAL_WRITTEN = 2,	/* run complete in the page cache, maybe unmapped */
};

struct journal_run {
	int		state;
	uint64_t	idx, count;
};

struct journal;

/*
 * Opens (creating) the journal file at `path`; `*pending` gets the run a
 * previous daemon left in it (state JOURNAL_IDLE if none). NULL with errno
 * set on failure. Close with journal_close(); `remove` unlinks the file.
 */
struct journal *journal_open(const char *path, struct journal_run *pending);
void journal_writing(struct journal *j, uint64_t idx, uint64_t count);
void journal_written(struct journal *j);
void journal_idle(struct journal *j);
void journal_close(struct journal *j, int remove);

#endif
