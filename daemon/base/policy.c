/*
 * policy: parses the pre-copy policy (policy.h). Used by the configuration
 * ([peer] precopy) and the control API (StartMigrationRequest.precopy).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int
precopy_parse(const char *s, struct precopy_policy *p, char *why, size_t len)
{
	unsigned long long n, mul = 0;
	char *end;

	memset(p, 0, sizeof(*p));
	if (!strcmp(s, "off"))
		return 0;
	if (!strcmp(s, "auto")) {
		p->mode = PRECOPY_AUTO;
		return 0;
	}
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno == 0 && end != s && s[0] >= '0' && s[0] <= '9') {
		if (*end == '\0' && n >= 1 && n <= PRECOPY_MAX_ROUNDS) {
			p->mode = PRECOPY_ROUNDS;
			p->rounds = (unsigned)n;
			return 0;
		}
		mul = !strcmp(end, "ms") ? 1 : !strcmp(end, "s") ? 1000 :
		    !strcmp(end, "m") ? 60000 : 0;
		if (mul != 0 && n >= 1 && n <= PRECOPY_MAX_MS / mul) {
			p->mode = PRECOPY_TIME;
			p->ms = (unsigned)(n * mul);
			return 0;
		}
	}
	snprintf(why, len, "pre-copy policy '%.40s' is not off, auto, a number of "
	    "rounds (1-%d) or a duration (500ms, 30s, 5m; 1ms to 60m)", s,
	    PRECOPY_MAX_ROUNDS);
	return -1;
}

void
precopy_name(const struct precopy_policy *p, char *buf, size_t len)
{
	switch (p->mode) {
	case PRECOPY_AUTO:
		snprintf(buf, len, "auto");
		break;
	case PRECOPY_ROUNDS:
		snprintf(buf, len, "%u round%s", p->rounds, p->rounds == 1 ? "" : "s");
		break;
	case PRECOPY_TIME:
		if (p->ms % 1000 == 0)
			snprintf(buf, len, "%us", p->ms / 1000);
		else
			snprintf(buf, len, "%ums", p->ms);
		break;
	default:
		snprintf(buf, len, "off");
		break;
	}
}

int
compress_parse(const char *s, int *mode, char *why, size_t len)
{
	static const char *names[] = { "auto", "on", "off" };

	for (int i = 0; i < 3; i++)
		if (!strcmp(s, names[i])) {
			*mode = i;
			return 0;
		}
	snprintf(why, len, "compression \"%s\": must be auto, on or off", s);
	return -1;
}

const char *
compress_name(int mode)
{
	return mode == COMPRESS_ON ? "on" : mode == COMPRESS_OFF ? "off" : "auto";
}
