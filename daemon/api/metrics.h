/*
 * metrics.h: the Prometheus text endpoint (metrics.c).
 */
#ifndef MIG_METRICS_H
#define MIG_METRICS_H

int metrics_listen(const char *hostport);
void metrics_stop(void);

#endif
