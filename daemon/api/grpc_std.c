/*
 * grpc_std: grpc.health.v1 and server reflection (see grpc_std.h).
 *
 * Health: "" and "migrationd.v1.Migrationd" are SERVING while the daemon
 * runs (it answers only while its loop serves); Check on another name is
 * NOT_FOUND, Watch on one sends SERVICE_UNKNOWN. When the daemon begins
 * to stop, every Watch gets NOT_SERVING and ends (OK), and Check answers
 * NOT_SERVING for the moment the loop still runs (std_health_stopping).
 *
 * Reflection: the build embeds the FileDescriptorSet of the served files
 * (proto/CMakeLists.txt). std_init cuts it into each file's serialized
 * FileDescriptorProto, the bytes reflection answers with as they are, and
 * reads each with proto/fdesc.proto's subset to know the symbols it
 * defines (messages, nested ones, enums, services, methods).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "fdesc.pb-c.h"
#include "grpc_std.h"
#include "grpcmsg.h"
#include "h2.h"
#include "log.h"

#define STD_FILES	8

extern const uint8_t mig_served_desc[];
extern const size_t mig_served_desc_len;

struct std_file {
	const uint8_t		*raw;	/* its FileDescriptorProto in mig_served_desc */
	size_t			 len;
	Migrationd__Fdesc__File	*f;
};

static struct std_file files[STD_FILES];
static size_t nfiles;

/* Streams in progress: health watchers and reflection streams. */
struct std_stream {
	LIST_ENTRY(std_stream)	 entry;
	struct h2stream		*s;
	int			 health; /* a health Watch (else reflection) */
};
static LIST_HEAD(, std_stream) streams = LIST_HEAD_INITIALIZER(streams);
static int stopping;

/* A base-128 varint at *p (< end); -1 if it runs off or is too long. */
static int
std_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

int
std_init(void)
{
	const uint8_t *p = mig_served_desc, *end = mig_served_desc + mig_served_desc_len;
	uint64_t len;

	/* FileDescriptorSet: field 1 (tag 0x0a), length-delimited, repeated. */
	while (p < end) {
		if (*p++ != 0x0a || std_varint(&p, end, &len) < 0 ||
		    len > (uint64_t)(end - p) || nfiles == STD_FILES)
			goto bad;
		files[nfiles].raw = p;
		files[nfiles].len = (size_t)len;
		files[nfiles].f = migrationd__fdesc__file__unpack(NULL, (size_t)len, p);
		if (files[nfiles].f == NULL || files[nfiles].f->name == NULL)
			goto bad;
		nfiles++;
		p += len;
	}
	return 0;
bad:
	log_warnx("%s: the embedded descriptor set does not parse", __func__);
	std_shutdown();
	return -1;
}

void
std_shutdown(void)
{
	for (size_t i = 0; i < nfiles; i++)
		migrationd__fdesc__file__free_unpacked(files[i].f, NULL);
	nfiles = 0;
	/* The streams went with their connections (h2_shutdown). */
}

static void
std_stream_closed(struct h2stream *s, void *arg)
{
	struct std_stream *x = arg;

	LIST_REMOVE(x, entry);
	free(x);
}

static struct std_stream *
std_stream_find(const struct h2stream *s)
{
	struct std_stream *x;

	LIST_FOREACH(x, &streams, entry)
		if (x->s == s)
			return x;
	return NULL;
}

/* Keeps `s` open; it is forgotten when it ends (h2 close callback). */
static struct std_stream *
std_stream_add(struct h2stream *s)
{
	struct std_stream *x = calloc(1, sizeof(*x));

	if (x == NULL) {
		h2_finish(s, GRPC_INTERNAL, "out of memory");
		return NULL;
	}
	x->s = s;
	LIST_INSERT_HEAD(&streams, x, entry);
	h2_set_close(s, std_stream_closed, x);
	return x;
}

static void
std_stream_end(struct std_stream *x, int code, const char *msg)
{
	struct h2stream *s = x->s;

	LIST_REMOVE(x, entry);
	free(x);
	h2_finish(s, code, msg);
}

/* ---- health ---- */

static int
std_health_known(const char *service)
{
	return service[0] == '\0' || !strcmp(service, "migrationd.v1.Migrationd");
}

void
std_health_check(struct h2stream *s, const void *q)
{
	const Grpc__Health__V1__HealthCheckRequest *r = q;
	Grpc__Health__V1__HealthCheckResponse a = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	if (!std_health_known(r->service)) {
		h2_finish(s, GRPC_NOT_FOUND, "unknown service");
		return;
	}
	a.status = stopping ?
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING :
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	if (h2_send(s, &a.base) < 0)
		h2_finish(s, GRPC_INTERNAL, "cannot send the status");
	else
		h2_finish(s, GRPC_OK, NULL);
}

void
std_health_watch(struct h2stream *s, const void *q)
{
	const Grpc__Health__V1__HealthCheckRequest *r = q;
	Grpc__Health__V1__HealthCheckResponse a = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	struct std_stream *x;

	a.status = !std_health_known(r->service) ?
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN :
	    stopping ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING :
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	if ((x = std_stream_add(s)) == NULL)
		return;
	x->health = 1;
	if (h2_send(s, &a.base) < 0)
		std_stream_end(x, GRPC_INTERNAL, "cannot send the status");
	else if (stopping)
		std_stream_end(x, GRPC_OK, NULL);
}

int
std_health_stopping(void)
{
	Grpc__Health__V1__HealthCheckResponse a = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	struct std_stream *x, *next;
	int n = 0;

	stopping = 1;
	a.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	for (x = LIST_FIRST(&streams); x != NULL; x = next) {
		next = LIST_NEXT(x, entry);
		if (!x->health)
			continue;
		n++;
		if (h2_send(x->s, &a.base) < 0)
			std_stream_end(x, GRPC_UNAVAILABLE, "the daemon is stopping");
		else
			std_stream_end(x, GRPC_OK, NULL);
	}
	return n;
}

/* ---- reflection ---- */

static int
std_name_is(const char *prefix, const char *name, const char *sym)
{
	size_t n = strlen(prefix);

	return name != NULL && !strncmp(sym, prefix, n) && !strcmp(sym + n, name);
}

static int
std_enums_have(Migrationd__Fdesc__Enum **e, size_t n, const char *scope, const char *sym)
{
	for (size_t i = 0; i < n; i++)
		if (std_name_is(scope, e[i]->name, sym))
			return 1;
	return 0;
}

/* Messages under `scope` ("pkg." or "pkg.Outer."), nested ones too. */
static int
std_messages_have(Migrationd__Fdesc__Message **m, size_t n, const char *scope,
    const char *sym, int depth)
{
	char inner[512];

	for (size_t i = 0; i < n && depth < 16; i++) {
		if (m[i]->name == NULL)
			continue;
		if (std_name_is(scope, m[i]->name, sym))
			return 1;
		snprintf(inner, sizeof(inner), "%.300s%.200s.", scope, m[i]->name);
		if (std_enums_have(m[i]->enum_type, m[i]->n_enum_type, inner, sym) ||
		    std_messages_have(m[i]->nested_type, m[i]->n_nested_type, inner, sym,
		    depth + 1))
			return 1;
	}
	return 0;
}

static int
std_file_has(const Migrationd__Fdesc__File *f, const char *sym)
{
	char scope[512], svc[512];

	snprintf(scope, sizeof(scope), "%.300s%s", f->package ? f->package : "",
	    f->package && f->package[0] ? "." : "");
	for (size_t i = 0; i < f->n_service; i++) {
		Migrationd__Fdesc__Service *s = f->service[i];

		if (s->name == NULL)
			continue;
		if (std_name_is(scope, s->name, sym))
			return 1;
		snprintf(svc, sizeof(svc), "%.300s%.200s.", scope, s->name);
		for (size_t j = 0; j < s->n_method; j++)
			if (std_name_is(svc, s->method[j]->name, sym))
				return 1;
	}
	return std_enums_have(f->enum_type, f->n_enum_type, scope, sym) ||
	    std_messages_have(f->message_type, f->n_message_type, scope, sym, 0);
}

static struct std_file *
std_file_named(const char *name)
{
	for (size_t i = 0; i < nfiles; i++)
		if (!strcmp(files[i].f->name, name))
			return &files[i];
	return NULL;
}

/* f and what it imports, each once, into out (ProtobufCBinaryData[STD_FILES]). */
static void
std_file_with_deps(const struct std_file *f, ProtobufCBinaryData *out, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		if (out[i].data == f->raw)
			return;
	if (*n == STD_FILES)
		return;
	out[*n].data = (uint8_t *)(uintptr_t)f->raw;
	out[(*n)++].len = f->len;
	for (size_t i = 0; i < f->f->n_dependency; i++) {
		const struct std_file *d = std_file_named(f->f->dependency[i]);

		if (d != NULL)
			std_file_with_deps(d, out, n);
	}
}

/* Answers one ServerReflectionRequest on s. */
static int
std_reflect_one(struct h2stream *s, Grpc__Reflection__V1__ServerReflectionRequest *q)
{
	Grpc__Reflection__V1__ServerReflectionResponse a =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
	Grpc__Reflection__V1__FileDescriptorResponse fr =
	    GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
	Grpc__Reflection__V1__ListServiceResponse lr =
	    GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
	Grpc__Reflection__V1__ErrorResponse er = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
	Grpc__Reflection__V1__ServiceResponse sv[STD_FILES * 2], *svp[STD_FILES * 2];
	ProtobufCBinaryData fd[STD_FILES];
	const struct std_file *f = NULL;
	char names[STD_FILES * 2][256];
	size_t n = 0;

	a.valid_host = q->host;
	a.original_request = q;
	switch (q->message_request_case) {
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
		for (size_t i = 0; i < nfiles; i++) {
			const Migrationd__Fdesc__File *x = files[i].f;

			for (size_t j = 0; j < x->n_service && n < STD_FILES * 2; j++) {
				grpc__reflection__v1__service_response__init(&sv[n]);
				snprintf(names[n], sizeof(names[n]), "%s%s%s",
				    x->package ? x->package : "", x->package ? "." : "",
				    x->service[j]->name ? x->service[j]->name : "");
				sv[n].name = names[n];
				svp[n] = &sv[n];
				n++;
			}
		}
		lr.service = svp;
		lr.n_service = n;
		a.message_response_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
		a.list_services_response = &lr;
		return h2_send(s, &a.base);
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
		f = std_file_named(q->file_by_filename);
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
		for (size_t i = 0; i < nfiles && f == NULL; i++)
			if (std_file_has(files[i].f, q->file_containing_symbol))
				f = &files[i];
		break;
	default:
		break;
	}
	if (f != NULL) {
		std_file_with_deps(f, fd, &n);
		fr.file_descriptor_proto = fd;
		fr.n_file_descriptor_proto = n;
		a.message_response_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
		a.file_descriptor_response = &fr;
	} else {
		er.error_code = GRPC_NOT_FOUND;
		er.error_message = (char *)(uintptr_t)(q->message_request_case ==
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST__NOT_SET ?
		    "empty request" : "not found (this server has no extensions)");
		a.message_response_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
		a.error_response = &er;
	}
	return h2_send(s, &a.base);
}

int
std_reflection_started(const struct h2stream *s)
{
	return std_stream_find(s) != NULL;
}

void
std_reflection(struct h2stream *s, const uint8_t *body, size_t len)
{
	Grpc__Reflection__V1__ServerReflectionRequest *q;
	struct std_stream *x = std_stream_find(s);
	const char *why;

	if (x == NULL && (x = std_stream_add(s)) == NULL)
		return;
	if (body == NULL) {
		std_stream_end(x, GRPC_OK, NULL);
		return;
	}
	q = (Grpc__Reflection__V1__ServerReflectionRequest *)grpcmsg_decode(
	    &grpc__reflection__v1__server_reflection_request__descriptor, body, len, &why);
	if (q == NULL) {
		std_stream_end(x, GRPC_INVALID_ARGUMENT, why);
		return;
	}
	if (std_reflect_one(s, q) < 0)
		std_stream_end(x, GRPC_INTERNAL, "cannot send the answer");
	protobuf_c_message_free_unpacked(&q->base, NULL);
}
