/*
 * util: the loop's global (D), clocks and host:port parsing, shared by every
 * layer of the daemon. Loop thread only.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

struct daemon *D;

int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
split_hostport(const char *s, char *host, size_t hostlen, unsigned *port,
    char *why, size_t whylen)
{
	const char *colon, *h = s;
	size_t n;
	char *end;
	long p;

	if (s == NULL || (colon = strrchr(s, ':')) == NULL) {
		snprintf(why, whylen, "no port (want HOST:PORT, [IPV6]:PORT)");
		return -1;
	}
	n = (size_t)(colon - s);
	if (s[0] == '[') {
		/* [IPV6]:PORT: the bracket closes right before the colon. */
		if (n < 2 || s[n - 1] != ']') {
			snprintf(why, whylen, "an IPv6 address goes in brackets: [ADDR]:PORT");
			return -1;
		}
		h = s + 1;
		n -= 2;
	} else if (memchr(s, ':', n) != NULL) {
		snprintf(why, whylen, "an IPv6 address goes in brackets: [ADDR]:PORT");
		return -1;
	}
	if (n == 0) {
		snprintf(why, whylen, "empty host");
		return -1;
	}
	if (n >= hostlen || n > 253) {
		snprintf(why, whylen, "host name too long");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)h[i]) && strchr(".-_:%", h[i]) == NULL) {
			snprintf(why, whylen, "bad character in host");
			return -1;
		}
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || !isdigit((unsigned char)colon[1]) ||
	    p < 1 || p > 65535) {
		snprintf(why, whylen, "port must be 1-65535");
		return -1;
	}
	memcpy(host, h, n);
	host[n] = '\0';
	if (s[0] == '[') {
		struct in6_addr a6;

		if (inet_pton(AF_INET6, host, &a6) != 1) {
			snprintf(why, whylen, "[%s] is not an IPv6 address", host);
			return -1;
		}
	}
	*port = (unsigned)p;
	return 0;
}

int
parse_hostport(const char *s, struct sockaddr_storage *ss, int *sslen)
{
	char host[128], *colon, *end;
	long port;

	if (s == NULL || strlen(s) >= sizeof(host))
		return -1;
	snprintf(host, sizeof(host), "%s", s);
	if ((colon = strrchr(host, ':')) == NULL)
		return -1;
	*colon = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && colon > host + 1 && colon[-1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		colon[-1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return -1;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*s6);
		return 0;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*sslen = sizeof(*s4);
		return 0;
	}
}
