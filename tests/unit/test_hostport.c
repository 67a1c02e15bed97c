/*
 * test_hostport: split_hostport (daemon/base/util.c), the syntax of a
 * destination as an operator gives it (NAME:PORT, IPV4:PORT, [IPV6]:PORT),
 * over a table of good and bad strings: the host and port it returns, or
 * the reason it refuses.
 */
#include <stdio.h>
#include <string.h>

#include "unit.h"
#include "util.h"

static const struct {
	const char	*in;
	const char	*host;	/* NULL: refused */
	unsigned	 port;
	const char	*why;	/* part of the reason, when refused */
} cases[] = {
	{ "hostb:7480", "hostb", 7480, NULL },
	{ "hostb.fleet.example:1", "hostb.fleet.example", 1, NULL },
	{ "192.0.2.2:65535", "192.0.2.2", 65535, NULL },
	{ "[::1]:7480", "::1", 7480, NULL },
	{ "[2001:db8::2]:7480", "2001:db8::2", 7480, NULL },
	{ "hostb", NULL, 0, "no port" },
	{ "hostb:", NULL, 0, "port must be 1-65535" },
	{ "hostb:0", NULL, 0, "port must be 1-65535" },
	{ "hostb:65536", NULL, 0, "port must be 1-65535" },
	{ "hostb:99999999999999999999", NULL, 0, "port must be 1-65535" },
	{ "hostb:+80", NULL, 0, "port must be 1-65535" },
	{ "hostb:80x", NULL, 0, "port must be 1-65535" },
	{ ":7480", NULL, 0, "empty host" },
	{ "[]:7480", NULL, 0, "empty host" },
	{ "::1:7480", NULL, 0, "brackets" },
	{ "[::1:7480", NULL, 0, "brackets" },
	{ "[hostb]:7480", NULL, 0, "not an IPv6 address" },
	{ "host b:7480", NULL, 0, "bad character" },
	{ "host/b:7480", NULL, 0, "bad character" },
};

int
main(void)
{
	char host[256], why[100], big[400];
	unsigned port;
	int rc;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		host[0] = why[0] = '\0';
		port = 0;
		rc = split_hostport(cases[i].in, host, sizeof(host), &port, why, sizeof(why));
		if (cases[i].host != NULL) {
			CHECK_EQ(rc, 0);
			CHECK(strcmp(host, cases[i].host) == 0);
			CHECK_EQ(port, cases[i].port);
		} else {
			CHECK_EQ(rc, -1);
			CHECK(strstr(why, cases[i].why) != NULL);
		}
		if ((rc == 0) != (cases[i].host != NULL) ||
		    (rc < 0 && strstr(why, cases[i].why) == NULL))
			fprintf(stderr, "  case \"%s\": rc %d, host \"%s\", why \"%s\"\n",
			    cases[i].in, rc, host, why);
	}
	/* A host longer than a DNS name can be. */
	memset(big, 'a', 300);
	snprintf(big + 300, sizeof(big) - 300, ":7480");
	CHECK_EQ(split_hostport(big, host, sizeof(host), &port, why, sizeof(why)), -1);
	CHECK(strstr(why, "too long") != NULL);
	return unit_done("test_hostport");
}
