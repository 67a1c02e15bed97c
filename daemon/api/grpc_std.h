/*
 * grpc_std: the standard gRPC services on the control listeners
 * (grpc_std.c): grpc.health.v1.Health (Check, Watch) and server reflection
 * (grpc.reflection.v1 and v1alpha ServerReflectionInfo, answered from the
 * descriptor set of the served .proto files embedded at build time).
 * control.c dispatches to them after authz.c's check. Loop thread.
 */
#ifndef MIG_GRPC_STD_H
#define MIG_GRPC_STD_H

#include <stddef.h>
#include <stdint.h>

struct h2stream;

/* Indexes the embedded descriptors; -1 if they do not parse. */
int std_init(void);
void std_shutdown(void);

/* q: the decoded grpc.health.v1.HealthCheckRequest. */
void std_health_check(struct h2stream *s, const void *q);
void std_health_watch(struct h2stream *s, const void *q);
/*
 * The daemon begins to stop: every health Watch gets NOT_SERVING and ends,
 * Check answers NOT_SERVING from now on. Returns the Watches ended (their
 * last frames still need the loop to run a moment).
 */
int std_health_stopping(void);

/* A reflection stream already authorised (it has had a request). */
int std_reflection_started(const struct h2stream *s);
/* One request of a reflection stream (body NULL: the client is done). */
void std_reflection(struct h2stream *s, const uint8_t *body, size_t len);

#endif
