/*
 * control.h: the gRPC control API (control.c; h2.c carries it).
 */
#ifndef MIG_CONTROL_H
#define MIG_CONTROL_H

#include "control.pb-c.h"
#include "migration.h"

struct h2stream;

/* `fd` >= 0: a listening socket from systemd, else bind `path`; also the
 * TCP listener of [control] listen. Watches the model from now on. */
int ctl_listen(const char *path, int fd);
/*
 * The daemon begins to stop (a signal): health watchers hear NOT_SERVING.
 * Returns how many streams still need the loop a moment to send it.
 */
int ctl_stopping(void);
void ctl_shutdown(void);

/* control_latency.c: answers GetFaultLatency for m. */
void ctl_latency(struct h2stream *s, const struct migration *m);

#endif
