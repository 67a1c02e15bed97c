/*
 * util.h: the bottom of the daemon. The one loop (`D`: its event base and
 * the configuration), clocks, numeric host:port parsing and the loop
 * priorities every layer above schedules its events with. Includes nothing
 * of the daemon.
 */
#ifndef MIG_UTIL_H
#define MIG_UTIL_H

#include <event2/event.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"

/*
 * Loop priorities: the fault path (uffd, ring doorbell, urgent channel) is
 * served before anything else that is ready, bulk (background) last, so a
 * demand page never waits behind a background frame on this thread.
 */
#define MIG_PRI_FAULT		0
#define MIG_PRI_CONTROL		1
#define MIG_PRI_BULK		2
#define MIG_NPRI		3

/* The daemon's one loop. Every part runs on its thread. */
struct daemon {
	struct config		 conf;
	struct event_base	*base;
	int			 stopping;	/* loop ended: close, never flush */
};

extern struct daemon *D;

int64_t now_ms(void);	/* CLOCK_REALTIME, for records and the API */
int64_t now_ns(void);	/* CLOCK_MONOTONIC, the clock BPF uses */
/* "1.2.3.4:80", "[::1]:80" -> sockaddr. Numeric only: never blocks. */
int parse_hostport(const char *s, struct sockaddr_storage *ss, int *sslen);
/*
 * A peer's address as the operator gives it: NAME:PORT, IPV4:PORT or
 * [IPV6]:PORT. Writes the host (brackets removed) and port; -1 with the
 * reason in why for bad syntax (no port, port out of range, empty host).
 */
int split_hostport(const char *s, char *host, size_t hostlen, unsigned *port,
    char *why, size_t whylen);

#endif
