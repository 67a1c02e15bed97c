/* rate: parses a bandwidth (rate.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rate.h"

int
rate_parse(const char *s, uint64_t *bps, char *why, size_t len)
{
	double n, mul = 1;
	char *end;

	*bps = 0;
	if (!strcmp(s, "off") || !strcmp(s, "0"))
		return 0;
	errno = 0;
	n = strtod(s, &end);
	if (errno == 0 && end != s && s[0] >= '0' && s[0] <= '9') {
		if (!strcmp(end, "k") || !strcmp(end, "kbit"))
			mul = 1e3;
		else if (!strcmp(end, "M") || !strcmp(end, "Mbit"))
			mul = 1e6;
		else if (!strcmp(end, "G") || !strcmp(end, "Gbit"))
			mul = 1e9;
		else if (*end != '\0')
			mul = 0;
		n *= mul;
		if (mul != 0 && n >= (double)RATE_MIN_BPS && n <= (double)RATE_MAX_BPS) {
			*bps = (uint64_t)n;
			return 0;
		}
	}
	snprintf(why, len, "bandwidth '%.40s' is not off or a rate in bits per second "
	    "from 100k to 1000G (e.g. 200M, 1G, 1.5G)", s);
	return -1;
}
