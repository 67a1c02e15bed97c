/*
 * libmigctl: blocking gRPC client of the control socket over nghttp2. Owns
 * one socket and one HTTP/2 client session per handle; one call (stream) at
 * a time. Requests and responses are framed by grpcmsg (daemon/grpcmsg.c),
 * the same code the daemon uses, so both ends agree on lengths and limits.
 */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "grpcmsg.h"
#include "libmigctl.h"

struct migctl {
	int		 fd;
	int		 timeout_ms;		/* longest silence of the daemon */
	nghttp2_session	*sess;
	char		 err[512];

	/* the call in progress */
	int32_t		 sid;
	int		 done;
	int		 http_status;
	int		 grpc_status;		/* -1 until the trailers */
	char		 grpc_msg[512];
	uint8_t		*in;			/* response bytes not yet decoded */
	size_t		 inlen, incap;
	const ProtobufCMessageDescriptor *resp_desc;
	ProtobufCMessage *resp;			/* unary: the one response */
	migctl_watch_fn	 fn;			/* stream: each response */
	void		*fn_arg;
	int		 stopped;		/* fn asked to stop */
	int		 bad;			/* protocol error in a response */
	const uint8_t	*req;
	size_t		 reqlen, reqoff;
};

static ssize_t
cl_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *arg)
{
	struct migctl *c = arg;
	ssize_t n;

	do
		n = send(c->fd, data, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : n;
}

static int
cl_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
    const uint8_t *value, size_t valuelen, uint8_t flags, void *arg)
{
	struct migctl *c = arg;

	if (f->hd.stream_id != c->sid)
		return 0;
	if (namelen == 7 && !memcmp(name, ":status", 7))
		c->http_status = atoi((const char *)value);
	else if (namelen == 11 && !memcmp(name, "grpc-status", 11))
		c->grpc_status = grpcmsg_parse_code((const char *)value, valuelen);
	else if (namelen == 12 && !memcmp(name, "grpc-message", 12))
		grpcmsg_pct_decode((const char *)value, valuelen, c->grpc_msg,
		    sizeof(c->grpc_msg));
	return 0;
}

/* Decodes every whole message gathered so far. */
static void
cl_messages(struct migctl *c)
{
	size_t off = 0;
	uint32_t plen;
	int rc;
	const char *why;

	while ((rc = grpcmsg_peek(c->in + off, c->inlen - off, GRPC_MSG_MAX, &plen)) == 1) {
		ProtobufCMessage *m = grpcmsg_decode(c->resp_desc, c->in + off + GRPC_PREFIX,
		    plen, &why);

		off += GRPC_PREFIX + plen;
		if (m == NULL) {
			c->bad = 1;
			break;
		}
		if (c->fn != NULL) {
			if (!c->stopped && c->fn((void *)m, c->fn_arg) != 0) {
				c->stopped = 1;
				nghttp2_submit_rst_stream(c->sess, NGHTTP2_FLAG_NONE, c->sid,
				    NGHTTP2_CANCEL);
			}
			protobuf_c_message_free_unpacked(m, NULL);
		} else if (c->resp != NULL) {
			protobuf_c_message_free_unpacked(m, NULL);
			c->bad = 1;	/* a unary call answered twice */
		} else {
			c->resp = m;
		}
	}
	if (rc < 0)
		c->bad = 1;
	memmove(c->in, c->in + off, c->inlen - off);
	c->inlen -= off;
}

static int
cl_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
    void *arg)
{
	struct migctl *c = arg;

	if (id != c->sid || c->bad)
		return 0;
	if (c->inlen + len > c->incap) {
		size_t cap = c->incap ? c->incap : 4096;
		uint8_t *p;

		while (cap < c->inlen + len)
			cap *= 2;
		if (cap > 2 * (GRPC_PREFIX + GRPC_MSG_MAX) || (p = realloc(c->in, cap)) == NULL) {
			c->bad = 1;
			return 0;
		}
		c->in = p;
		c->incap = cap;
	}
	memcpy(c->in + c->inlen, data, len);
	c->inlen += len;
	cl_messages(c);
	return 0;
}

static int
cl_close(nghttp2_session *s, int32_t id, uint32_t err, void *arg)
{
	struct migctl *c = arg;

	if (id == c->sid)
		c->done = 1;
	return 0;
}

static ssize_t
cl_req_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
    nghttp2_data_source *src, void *arg)
{
	struct migctl *c = arg;
	size_t n = c->reqlen - c->reqoff;

	if (n > len)
		n = len;
	memcpy(buf, c->req + c->reqoff, n);
	c->reqoff += n;
	if (c->reqoff == c->reqlen)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

struct migctl *
migctl_open(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	nghttp2_session_callbacks *cb;
	struct migctl *c;
	int e;

	if (path == NULL)
		path = MIGCTL_DEFAULT_SOCKET;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->timeout_ms = MIGCTL_TIMEOUT_MS;
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		goto fail;
	if (nghttp2_session_callbacks_new(&cb) != 0) {
		errno = ENOMEM;
		goto fail;
	}
	nghttp2_session_callbacks_set_send_callback(cb, cl_send);
	nghttp2_session_callbacks_set_on_header_callback(cb, cl_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, cl_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, cl_close);
	e = nghttp2_session_client_new(&c->sess, cb, c);
	nghttp2_session_callbacks_del(cb);
	if (e != 0) {
		c->sess = NULL;
		errno = ENOMEM;
		goto fail;
	}
	if (nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, NULL, 0) != 0) {
		errno = ENOMEM;
		goto fail;
	}
	return c;
fail:
	e = errno;
	if (c->sess != NULL)
		nghttp2_session_del(c->sess);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	errno = e;
	return NULL;
}

void
migctl_close(struct migctl *c)
{
	if (c == NULL)
		return;
	nghttp2_session_del(c->sess);
	close(c->fd);
	free(c->in);
	free(c);
}

void
migctl_set_timeout(struct migctl *c, int ms)
{
	c->timeout_ms = ms > 0 ? ms : -1;
}

const char *
migctl_error(const struct migctl *c)
{
	return c->err;
}

const char *
migctl_code_name(int code)
{
	return code < 0 ? "UNAVAILABLE" : grpcmsg_code_name(code);
}

void
migctl_free(void *r)
{
	if (r != NULL)
		protobuf_c_message_free_unpacked(r, NULL);
}

static int
cl_fail(struct migctl *c, int e, const char *what)
{
	snprintf(c->err, sizeof(c->err), "%s: %s", what, strerror(e));
	errno = e;
	return -1;
}

/*
 * Moves bytes both ways until the stream closes: 0, or -1 with c->err set
 * when writing, waiting or reading fails.
 */
static int
cl_exchange(struct migctl *c)
{
	uint8_t rbuf[16384];

	while (!c->done) {
		ssize_t n;

		if (nghttp2_session_send(c->sess) != 0)
			return cl_fail(c, errno ? errno : EPIPE, "cannot write to migrationd");
		if (c->done)
			break;
		if (!nghttp2_session_want_read(c->sess))
			return cl_fail(c, ECONNRESET, "migrationd closed the session");
		{
			struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
			int pr;

			do
				pr = poll(&pfd, 1, c->timeout_ms);
			while (pr < 0 && errno == EINTR);
			if (pr == 0)
				return cl_fail(c, ETIMEDOUT, "migrationd did not answer");
		}
		do
			n = read(c->fd, rbuf, sizeof(rbuf));
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			return cl_fail(c, n == 0 ? ECONNRESET : errno,
			    "connection to migrationd lost");
		if ((n = nghttp2_session_mem_recv(c->sess, rbuf, (size_t)n)) < 0) {
			snprintf(c->err, sizeof(c->err), "HTTP/2 error from migrationd: %s",
			    nghttp2_strerror((int)n));
			errno = EPROTO;
			return -1;
		}
	}
	return 0;
}

/* What a closed stream amounts to: 0, a gRPC status, or -1 (bad answer). */
static int
cl_outcome(struct migctl *c, migctl_watch_fn fn)
{
	if (c->stopped)
		return 0;
	if (c->bad || c->grpc_status < 0) {
		snprintf(c->err, sizeof(c->err), "bad answer from migrationd (HTTP %d%s)",
		    c->http_status, c->bad ? ", undecodable message" : ", no grpc-status");
		errno = EPROTO;
		return -1;
	}
	if (c->grpc_status != 0) {
		snprintf(c->err, sizeof(c->err), "%s", c->grpc_msg);
		return c->grpc_status;
	}
	if (fn == NULL && c->resp == NULL) {
		snprintf(c->err, sizeof(c->err), "migrationd sent no response message");
		errno = EPROTO;
		return -1;
	}
	return 0;
}

/* Runs one call to its end. `fn` NULL: unary, the response in *resp. */
static int
cl_call(struct migctl *c, const char *method, const ProtobufCMessage *req,
    ProtobufCMessage **resp, migctl_watch_fn fn, void *arg)
{
	char path[128];
	nghttp2_nv nv[] = {
#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), \
	NGHTTP2_NV_FLAG_NONE }
		NV(":method", "POST"), NV(":scheme", "http"), NV(":path", ""),
		NV(":authority", "localhost"), NV("content-type", "application/grpc"),
		NV("te", "trailers"), NV("user-agent", "libmigctl"),
#undef NV
	};
	nghttp2_data_provider prd = { .read_callback = cl_req_read };
	const struct grpc_method *gm;
	uint8_t *buf;
	size_t len;
	int rc;

	c->err[0] = '\0';
	if (resp != NULL)
		*resp = NULL;
	snprintf(path, sizeof(path), "%s%s", GRPC_SERVICE, method);
	nv[2].value = (uint8_t *)path;
	nv[2].valuelen = strlen(path);
	if ((gm = grpcmsg_method(path)) == NULL || gm->req != req->descriptor) {
		snprintf(c->err, sizeof(c->err), "%s: not a method of this API, or wrong "
		    "request type", method);
		errno = EINVAL;
		return -1;
	}
	if ((buf = grpcmsg_pack(req, GRPC_MSG_MAX, &len)) == NULL)
		return cl_fail(c, EMSGSIZE, "request");
	c->req = buf;
	c->reqlen = len;
	c->reqoff = 0;
	c->done = c->bad = c->stopped = 0;
	c->http_status = 0;
	c->grpc_status = -1;
	c->grpc_msg[0] = '\0';
	c->inlen = 0;
	c->resp = NULL;
	c->resp_desc = gm->resp;
	c->fn = fn;
	c->fn_arg = arg;
	c->sid = nghttp2_submit_request(c->sess, NULL, nv, sizeof(nv) / sizeof(nv[0]),
	    &prd, c);
	if (c->sid < 0) {
		free(buf);
		return cl_fail(c, ENOMEM, "request");
	}
	if ((rc = cl_exchange(c)) == 0) {
		nghttp2_session_send(c->sess);	/* WINDOW_UPDATE, RST_STREAM acks */
		rc = cl_outcome(c, fn);
	}
	if (rc == 0 && resp != NULL) {
		*resp = c->resp;
		c->resp = NULL;
	}
	if (c->resp != NULL)
		protobuf_c_message_free_unpacked(c->resp, NULL);
	c->resp = NULL;
	c->fn = NULL;
	free(buf);
	c->req = NULL;
	return rc;
}

int
migctl_call(struct migctl *c, const char *method, const ProtobufCMessage *req,
    ProtobufCMessage **resp)
{
	return cl_call(c, method, req, resp, NULL, NULL);
}

#define CALL(method, q, out) migctl_call(c, method, &(q).base, (ProtobufCMessage **)(out))
#define STR(s) ((char *)(uintptr_t)((s) ? (s) : ""))

int
migctl_prepare(struct migctl *c, const char *vm, Migrationd__V1__PrepareIncomingResponse **out)
{
	return migctl_prepare_from(c, vm, NULL, out);
}

int
migctl_prepare_from(struct migctl *c, const char *vm, const char *from,
    Migrationd__V1__PrepareIncomingResponse **out)
{
	Migrationd__V1__PrepareIncomingRequest q = MIGRATIOND__V1__PREPARE_INCOMING_REQUEST__INIT;

	q.vm = STR(vm);
	q.source_identity = STR(from);
	return CALL("PrepareIncoming", q, out);
}

int
migctl_start(struct migctl *c, const char *vm, const char *dest, const char *token,
    Migrationd__V1__StartMigrationResponse **out)
{
	return migctl_start_opts(c, vm, dest, token, NULL, 0, out);
}

int
migctl_start_opts(struct migctl *c, const char *vm, const char *dest,
    const char *token, const char *precopy, uint64_t max_bps,
    Migrationd__V1__StartMigrationResponse **out)
{
	return migctl_start_compress(c, vm, dest, token, precopy, max_bps, NULL, out);
}

int
migctl_start_compress(struct migctl *c, const char *vm, const char *dest,
    const char *token, const char *precopy, uint64_t max_bps, const char *compression,
    Migrationd__V1__StartMigrationResponse **out)
{
	return migctl_start_streams(c, vm, dest, token, precopy, max_bps, compression, 0, out);
}

int
migctl_start_streams(struct migctl *c, const char *vm, const char *dest,
    const char *token, const char *precopy, uint64_t max_bps, const char *compression,
    uint32_t streams, Migrationd__V1__StartMigrationResponse **out)
{
	Migrationd__V1__StartMigrationRequest q = MIGRATIOND__V1__START_MIGRATION_REQUEST__INIT;

	q.streams = streams;
	q.compression = STR(compression);
	q.vm = STR(vm);
	q.destination = STR(dest);
	q.token = STR(token);
	q.precopy = STR(precopy);
	q.max_bandwidth_bits_per_s = max_bps;
	return CALL("StartMigration", q, out);
}

int
migctl_set_bandwidth(struct migctl *c, const char *id_or_vm, uint64_t max_bps,
    Migrationd__V1__SetMigrationResponse **out)
{
	Migrationd__V1__SetMigrationRequest q = MIGRATIOND__V1__SET_MIGRATION_REQUEST__INIT;

	q.id_or_vm = STR(id_or_vm);
	q.max_bandwidth_bits_per_s = max_bps;
	return CALL("SetMigration", q, out);
}

int
migctl_postcopy(struct migctl *c, const char *id_or_vm,
    Migrationd__V1__StartPostcopyResponse **out)
{
	Migrationd__V1__StartPostcopyRequest q = MIGRATIOND__V1__START_POSTCOPY_REQUEST__INIT;

	q.id_or_vm = STR(id_or_vm);
	return CALL("StartPostcopy", q, out);
}

int
migctl_get(struct migctl *c, const char *id_or_vm, Migrationd__V1__GetMigrationResponse **out)
{
	Migrationd__V1__GetMigrationRequest q = MIGRATIOND__V1__GET_MIGRATION_REQUEST__INIT;

	q.id_or_vm = STR(id_or_vm);
	return CALL("GetMigration", q, out);
}

int
migctl_list(struct migctl *c, Migrationd__V1__MigrationState state, Migrationd__V1__Role role,
    const char *vm, Migrationd__V1__ListMigrationsResponse **out)
{
	Migrationd__V1__ListMigrationsRequest q = MIGRATIOND__V1__LIST_MIGRATIONS_REQUEST__INIT;

	q.state = state;
	q.role = role;
	q.vm = STR(vm);
	return CALL("ListMigrations", q, out);
}

int
migctl_pause(struct migctl *c, const char *id_or_vm, Migrationd__V1__PauseMigrationResponse **out)
{
	Migrationd__V1__PauseMigrationRequest q = MIGRATIOND__V1__PAUSE_MIGRATION_REQUEST__INIT;

	q.id_or_vm = STR(id_or_vm);
	return CALL("PauseMigration", q, out);
}

int
migctl_recover(struct migctl *c, const char *id_or_vm, const char *dest,
    Migrationd__V1__RecoverMigrationResponse **out)
{
	Migrationd__V1__RecoverMigrationRequest q = MIGRATIOND__V1__RECOVER_MIGRATION_REQUEST__INIT;

	q.id_or_vm = STR(id_or_vm);
	q.destination = STR(dest);
	return CALL("RecoverMigration", q, out);
}

int
migctl_cancel(struct migctl *c, const char *id_or_vm, Migrationd__V1__CancelMigrationResponse **out)
{
	Migrationd__V1__CancelMigrationRequest q = MIGRATIOND__V1__CANCEL_MIGRATION_REQUEST__INIT;

	q.id_or_vm = STR(id_or_vm);
	return CALL("CancelMigration", q, out);
}

int
migctl_latency(struct migctl *c, const char *id_or_vm,
    Migrationd__V1__GetFaultLatencyResponse **out)
{
	Migrationd__V1__GetFaultLatencyRequest q = MIGRATIOND__V1__GET_FAULT_LATENCY_REQUEST__INIT;

	q.id_or_vm = STR(id_or_vm);
	return CALL("GetFaultLatency", q, out);
}

int
migctl_health(struct migctl *c, Migrationd__V1__GetHealthResponse **out)
{
	Migrationd__V1__GetHealthRequest q = MIGRATIOND__V1__GET_HEALTH_REQUEST__INIT;

	return CALL("GetHealth", q, out);
}

int
migctl_watch(struct migctl *c, const char *id_or_vm, unsigned interval_ms,
    migctl_watch_fn fn, void *arg)
{
	Migrationd__V1__WatchMigrationRequest q = MIGRATIOND__V1__WATCH_MIGRATION_REQUEST__INIT;

	q.id_or_vm = STR(id_or_vm);
	q.interval_ms = interval_ms;
	return cl_call(c, "WatchMigration", &q.base, NULL, fn, arg);
}

static const char *
enum_name(const ProtobufCEnumDescriptor *d, int v)
{
	const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value(d, v);

	return e ? e->name : "UNKNOWN";
}

const char *
migctl_state_name(Migrationd__V1__MigrationState s)
{
	return enum_name(&migrationd__v1__migration_state__descriptor, (int)s);
}

const char *
migctl_role_name(Migrationd__V1__Role r)
{
	return enum_name(&migrationd__v1__role__descriptor, (int)r);
}
