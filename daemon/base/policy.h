/*
 * policy.h: the pre-copy policy (policy.c), as `mig-ctl migrate --precopy`
 * and [peer] precopy give it. Pure parsing, no state.
 */
#ifndef MIG_POLICY_H
#define MIG_POLICY_H

#include <stddef.h>

enum precopy_mode {
	PRECOPY_OFF = 0,	/* post-copy only */
	PRECOPY_AUTO,		/* until the dirty set stops shrinking or is small */
	PRECOPY_ROUNDS,		/* this many rounds (round 1 sends everything) */
	PRECOPY_TIME,		/* for this long, then switch at once */
};

struct precopy_policy {
	enum precopy_mode mode;
	unsigned	  rounds;	/* PRECOPY_ROUNDS: 1..PRECOPY_MAX_ROUNDS */
	unsigned	  ms;		/* PRECOPY_TIME: 1 ms .. 1 h */
};

#define PRECOPY_MAX_ROUNDS	1000
#define PRECOPY_MAX_MS		3600000u

/* "off", "auto", "3" (rounds), "500ms" / "30s" / "5m" (duration). 0, or
 * -1 with `why` saying what is accepted. */
int precopy_parse(const char *s, struct precopy_policy *p, char *why, size_t len);
/* Compression of background pages (role/compress.c), as `mig-ctl migrate
 * --compression` and [peer] compression give it. */
enum compress_mode { COMPRESS_AUTO = 0, COMPRESS_ON, COMPRESS_OFF };
/* "auto", "on", "off": 0, or -1 with `why`. */
int compress_parse(const char *s, int *mode, char *why, size_t len);
const char *compress_name(int mode);
/* The policy as a user would write it ("off", "auto", "3 rounds", "30s"). */
void precopy_name(const struct precopy_policy *p, char *buf, size_t len);

#endif
