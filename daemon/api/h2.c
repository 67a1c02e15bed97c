/*
 * h2: HTTP/2 server sessions (nghttp2) carrying gRPC calls. Owns the
 * client connections of the control API and their streams. Request bodies
 * are gathered per stream until END_STREAM, then handed to the dispatcher
 * as one gRPC message; for a client-streaming method (reflection) each
 * message goes to the dispatcher as it completes, then END_STREAM as a
 * NULL body. Responses queue in the stream's `out` buffer, which
 * nghttp2 pulls through a data provider; trailers follow when it drains.
 * A protocol error, a bad preface or a client that stops reading closes
 * that client only. Loop thread only.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "h2.h"
#include "log.h"
#include "tls.h"
#include "util.h"

#define H2_OUT_HIWAT	(4u << 20)	/* queued to one client before we wait */
#define H2_MAX_STREAMS	64

struct h2stream {
	LIST_ENTRY(h2stream)	 entry;
	struct h2conn		*conn;
	int32_t			 id;
	char			 path[128];
	int			 path_bad;
	const struct grpc_method *gm;		/* resolved at the end of HEADERS */
	int			 streaming;	/* client-streaming: dispatch each message */
	int			 grpc_ct;	/* content-type application/grpc[+proto] */
	struct evbuffer		*in;
	struct evbuffer		*out;
	int			 too_big;
	int			 dispatched;
	int			 headers_sent;
	int			 finishing;	/* trailers after `out` drains */
	int			 finished;	/* h2_finish() called */
	int			 deferred;	/* data provider paused */
	int			 code;
	char			 msg[512];	/* percent-encoded */
	h2_close_fn		 close_fn;
	void			*close_arg;
	h2_finish_fn		 finish_fn;
	void			*finish_arg;
};

struct h2conn {
	LIST_ENTRY(h2conn)	 entry;
	struct bufferevent	*bev;
	nghttp2_session		*sess;
	void			*peer;
	void			(*peer_free)(void *);
	char			 who[128];
	h2_request_fn		 fn;
	LIST_HEAD(, h2stream)	 streams;
	struct event		*ev_flush;	/* deferred writes */
	struct event		*ev_kill;	/* deferred close */
	int			 in_recv;
	int			 dead;
};

static LIST_HEAD(, h2conn) conns = LIST_HEAD_INITIALIZER(conns);

static void h2_schedule(struct h2conn *c);

static void
h2_stream_free(struct h2stream *s, int notify)
{
	if (notify && s->close_fn != NULL && !s->finished)
		s->close_fn(s, s->close_arg);
	if (s->finish_fn != NULL && !s->finished)
		s->finish_fn(s, GRPC_CANCELLED, "the client went away", s->finish_arg);
	LIST_REMOVE(s, entry);
	if (s->in)
		evbuffer_free(s->in);
	if (s->out)
		evbuffer_free(s->out);
	free(s);
}

static void
h2_conn_free(struct h2conn *c)
{
	struct h2stream *s;

	while ((s = LIST_FIRST(&c->streams)) != NULL)
		h2_stream_free(s, 1);
	LIST_REMOVE(c, entry);
	nghttp2_session_del(c->sess);
	bufferevent_free(c->bev);
	event_free(c->ev_flush);
	event_free(c->ev_kill);
	if (c->peer_free != NULL)
		c->peer_free(c->peer);
	free(c);
}

static void
h2_kill(struct h2conn *c, const char *why)
{
	if (c->dead)
		return;
	if (why != NULL)
		log_warnx("control client %s: %s; closing it", c->who, why);
	c->dead = 1;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	event_active(c->ev_kill, 0, 0);
}

static void
h2_kill_cb(evutil_socket_t fd, short what, void *arg)
{
	h2_conn_free(arg);
}

/* Hands nghttp2's output to the socket, as far as the client keeps up. */
static void
h2_flush(struct h2conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (c->dead || c->in_recv)
		return;
	while (evbuffer_get_length(out) < H2_OUT_HIWAT) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(c->sess, &data);

		if (n < 0) {
			h2_kill(c, nghttp2_strerror((int)n));
			return;
		}
		if (n == 0)
			break;
		if (bufferevent_write(c->bev, data, (size_t)n) < 0) {
			h2_kill(c, "cannot queue output");
			return;
		}
	}
	if (!nghttp2_session_want_read(c->sess) && !nghttp2_session_want_write(c->sess) &&
	    evbuffer_get_length(out) == 0)
		h2_kill(c, NULL);
}

static void
h2_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	h2_flush(arg);
}

static void
h2_schedule(struct h2conn *c)
{
	if (!c->dead)
		event_active(c->ev_flush, 0, 0);
}

static ssize_t
h2_data_read(nghttp2_session *sess, int32_t id, uint8_t *buf, size_t len,
    uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	struct h2stream *s = src->ptr;
	int n = evbuffer_remove(s->out, buf, len);

	if (n < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (evbuffer_get_length(s->out) == 0 && s->finishing) {
		char code[16];
		nghttp2_nv nv[2] = {
			{ (uint8_t *)"grpc-status", (uint8_t *)code, 11, 0,
			    NGHTTP2_NV_FLAG_NONE },
			{ (uint8_t *)"grpc-message", (uint8_t *)s->msg, 12,
			    strlen(s->msg), NGHTTP2_NV_FLAG_NONE },
		};

		snprintf(code, sizeof(code), "%d", s->code);
		nv[0].valuelen = strlen(code);
		*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		s->finishing = 0;
		if (nghttp2_submit_trailer(sess, id, nv, s->msg[0] ? 2 : 1) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		return n;
	}
	if (n == 0) {
		s->deferred = 1;
		return NGHTTP2_ERR_DEFERRED;
	}
	return n;
}

#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), \
	NGHTTP2_NV_FLAG_NONE }

static int
h2_headers(struct h2stream *s)
{
	nghttp2_nv nv[] = { NV(":status", "200"), NV("content-type", "application/grpc") };
	nghttp2_data_provider prd = { .source.ptr = s, .read_callback = h2_data_read };

	if (s->headers_sent)
		return 0;
	s->headers_sent = 1;
	return nghttp2_submit_response(s->conn->sess, s->id, nv, 2, &prd) == 0 ? 0 : -1;
}

int
h2_send(struct h2stream *s, const ProtobufCMessage *m)
{
	uint8_t *buf;
	size_t len;

	if (s->finished)
		return -1;
	/* A client that stops reading a stream must not grow it without bound. */
	if (evbuffer_get_length(s->out) > H2_OUT_HIWAT) {
		log_warnx("control client %s: not reading its stream; ending it", s->conn->who);
		return -1;
	}
	if ((buf = grpcmsg_pack(m, GRPC_MSG_MAX, &len)) == NULL) {
		log_warnx("%s: response too large or no memory", __func__);
		return -1;
	}
	if (evbuffer_add(s->out, buf, len) < 0) {
		free(buf);
		return -1;
	}
	free(buf);
	if (h2_headers(s) < 0)
		return -1;
	if (s->deferred) {
		s->deferred = 0;
		nghttp2_session_resume_data(s->conn->sess, s->id);
	}
	h2_schedule(s->conn);
	return 0;
}

void
h2_finish(struct h2stream *s, int code, const char *msg)
{
	if (s->finished)
		return;
	s->finished = 1;
	s->close_fn = NULL;
	s->code = code;
	if (s->finish_fn != NULL)
		s->finish_fn(s, code, msg, s->finish_arg);
	s->finish_fn = NULL;
	grpcmsg_pct_encode(msg ? msg : "", s->msg, sizeof(s->msg));
	if (!s->headers_sent) {
		/* Trailers-only response: one HEADERS frame with END_STREAM.
		 * NV() takes strlen of its value: cs is written before. */
		char cs[16];

		snprintf(cs, sizeof(cs), "%d", code);
		nghttp2_nv nv[] = { NV(":status", "200"),
		    NV("content-type", "application/grpc"), NV("grpc-status", cs),
		    NV("grpc-message", s->msg) };

		s->headers_sent = 1;
		nghttp2_submit_response(s->conn->sess, s->id, nv, s->msg[0] ? 4 : 3, NULL);
	} else {
		s->finishing = 1;
		if (s->deferred) {
			s->deferred = 0;
			nghttp2_session_resume_data(s->conn->sess, s->id);
		}
	}
	h2_schedule(s->conn);
}

void
h2_set_close(struct h2stream *s, h2_close_fn fn, void *arg)
{
	s->close_fn = fn;
	s->close_arg = arg;
}

void
h2_set_finish(struct h2stream *s, h2_finish_fn fn, void *arg)
{
	s->finish_fn = fn;
	s->finish_arg = arg;
}

void *
h2_finish_arg(const struct h2stream *s, h2_finish_fn fn)
{
	return s->finish_fn == fn ? s->finish_arg : NULL;
}

void *
h2_peer(const struct h2stream *s)
{
	return s->conn->peer;
}

static int
on_begin_headers(nghttp2_session *sess, const nghttp2_frame *f, void *arg)
{
	struct h2conn *c = arg;
	struct h2stream *s;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->in = evbuffer_new()) == NULL || (s->out = evbuffer_new()) == NULL) {
		if (s != NULL && s->in != NULL)
			evbuffer_free(s->in);
		free(s);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	s->conn = c;
	s->id = f->hd.stream_id;
	LIST_INSERT_HEAD(&c->streams, s, entry);
	nghttp2_session_set_stream_user_data(sess, s->id, s);
	return 0;
}

static int
on_header(nghttp2_session *sess, const nghttp2_frame *f, const uint8_t *name,
    size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *arg)
{
	struct h2stream *s;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST ||
	    (s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id)) == NULL)
		return 0;
	if (namelen == 5 && !memcmp(name, ":path", 5)) {
		if (valuelen >= sizeof(s->path))
			s->path_bad = 1;
		else
			memcpy(s->path, value, valuelen + 1);
	} else if (namelen == 12 && !memcmp(name, "content-type", 12)) {
		s->grpc_ct = valuelen >= 16 && !memcmp(value, "application/grpc", 16) &&
		    (valuelen == 16 || value[16] == '+' || value[16] == ';');
	}
	return 0;
}

static int
on_data_chunk(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data,
    size_t len, void *arg)
{
	struct h2stream *s = nghttp2_session_get_stream_user_data(sess, id);

	if (s == NULL || s->too_big)
		return 0;
	if (evbuffer_get_length(s->in) + len > GRPC_PREFIX + GRPC_MSG_MAX) {
		s->too_big = 1;
		return 0;
	}
	evbuffer_add(s->in, data, len);
	return 0;
}

static void
h2_dispatch(struct h2conn *c, struct h2stream *s)
{
	size_t avail = evbuffer_get_length(s->in);
	uint8_t *p = evbuffer_pullup(s->in, -1);
	uint32_t plen = 0;
	int rc;

	s->dispatched = 1;
	if (!s->grpc_ct) {
		h2_finish(s, GRPC_INVALID_ARGUMENT, "content-type must be application/grpc");
		return;
	}
	if (s->too_big) {
		h2_finish(s, GRPC_RESOURCE_EXHAUSTED, "request too large");
		return;
	}
	rc = grpcmsg_peek(p, avail, GRPC_MSG_MAX, &plen);
	if (rc != 1 || avail != GRPC_PREFIX + plen) {
		h2_finish(s, rc == -2 ? GRPC_UNIMPLEMENTED : GRPC_INVALID_ARGUMENT,
		    rc == -2 ? "compressed messages are not supported" :
		    "the request must carry exactly one message");
		return;
	}
	c->fn(s, s->gm, p + GRPC_PREFIX, plen);
}

/* A client-streaming call: every whole message to the dispatcher, in order. */
static void
h2_pump(struct h2conn *c, struct h2stream *s)
{
	uint32_t plen = 0;
	int rc;

	while (!s->finished) {
		size_t avail = evbuffer_get_length(s->in);
		uint8_t *p = evbuffer_pullup(s->in, -1);

		rc = s->too_big ? -1 : grpcmsg_peek(p, avail, GRPC_MSG_MAX, &plen);
		if (rc == -1) {
			h2_finish(s, GRPC_RESOURCE_EXHAUSTED, "request too large");
			return;
		}
		if (rc == -2) {
			h2_finish(s, GRPC_UNIMPLEMENTED, "compressed messages are not supported");
			return;
		}
		if (rc == 0)
			return;
		c->fn(s, s->gm, p + GRPC_PREFIX, plen);
		evbuffer_drain(s->in, GRPC_PREFIX + plen);
	}
}

static int
on_frame_recv(nghttp2_session *sess, const nghttp2_frame *f, void *arg)
{
	struct h2stream *s;
	int end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	if ((s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id)) == NULL ||
	    s->dispatched)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
		s->gm = s->path_bad ? NULL : grpcmsg_method(s->path);
		s->streaming = s->gm != NULL && s->gm->client_stream && s->grpc_ct;
	}
	if (!s->streaming) {
		if (end)
			h2_dispatch(arg, s);
		return 0;
	}
	h2_pump(arg, s);
	if (end && !s->finished) {
		s->dispatched = 1;
		((struct h2conn *)arg)->fn(s, s->gm, NULL, 0);
	}
	return 0;
}

static int
on_stream_close(nghttp2_session *sess, int32_t id, uint32_t err, void *arg)
{
	struct h2stream *s = nghttp2_session_get_stream_user_data(sess, id);

	if (s != NULL) {
		nghttp2_session_set_stream_user_data(sess, id, NULL);
		h2_stream_free(s, 1);
	}
	return 0;
}

static void
h2_read_cb(struct bufferevent *bev, void *arg)
{
	struct h2conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);
	ssize_t n;

	if (c->dead)
		return;
	c->in_recv = 1;
	n = nghttp2_session_mem_recv(c->sess, evbuffer_pullup(in, -1), len);
	c->in_recv = 0;
	if (n < 0) {
		h2_kill(c, nghttp2_strerror((int)n));
		return;
	}
	evbuffer_drain(in, (size_t)n);
	h2_flush(c);
}

static void
h2_write_cb(struct bufferevent *bev, void *arg)
{
	h2_flush(arg);
}

static void
h2_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct h2conn *c = arg;

	const char *verr;
	char why[300];

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if ((verr = tls_bev_verify_error(bev)) != NULL) {
		/* Refused in the TLS handshake: a certificate the control CA
		 * did not sign, say. */
		snprintf(why, sizeof(why), "client certificate refused: %s", verr);
		h2_kill(c, why);
	} else {
		h2_kill(c, (what & BEV_EVENT_ERROR) ? "connection error" : NULL);
	}
}

struct h2conn *
h2_conn_new(struct bufferevent *bev, void *peer, void (*peer_free)(void *),
    const char *who, h2_request_fn fn)
{
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_STREAMS },
	};
	struct h2conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	c->bev = bev;
	c->peer = peer;
	c->peer_free = peer_free;
	c->fn = fn;
	snprintf(c->who, sizeof(c->who), "%s", who);
	LIST_INIT(&c->streams);
	if (nghttp2_session_callbacks_new(&cb) != 0)
		goto fail;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	if (nghttp2_session_server_new(&c->sess, cb, c) != 0) {
		c->sess = NULL;
		goto fail;
	}
	nghttp2_session_callbacks_del(cb);
	cb = NULL;
	c->ev_flush = event_new(D->base, -1, 0, h2_flush_cb, c);
	c->ev_kill = event_new(D->base, -1, 0, h2_kill_cb, c);
	if (c->ev_flush == NULL || c->ev_kill == NULL)
		goto fail;
	event_priority_set(c->ev_flush, MIG_PRI_CONTROL);
	event_priority_set(c->ev_kill, MIG_PRI_CONTROL);
	if (nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, iv, 1) != 0)
		goto fail;
	LIST_INSERT_HEAD(&conns, c, entry);
	bufferevent_priority_set(bev, MIG_PRI_CONTROL);
	bufferevent_setcb(bev, h2_read_cb, h2_write_cb, h2_event_cb, c);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	h2_flush(c);
	return c;
fail:
	log_warnx("%s: cannot set up a session for %s", __func__, who);
	if (cb != NULL)
		nghttp2_session_callbacks_del(cb);
	if (c != NULL) {
		if (c->sess != NULL)
			nghttp2_session_del(c->sess);
		if (c->ev_flush != NULL)
			event_free(c->ev_flush);
		if (c->ev_kill != NULL)
			event_free(c->ev_kill);
		free(c);
	}
	if (peer_free != NULL)
		peer_free(peer);
	bufferevent_free(bev);
	return NULL;
}

void
h2_shutdown(void)
{
	struct h2conn *c;

	while ((c = LIST_FIRST(&conns)) != NULL)
		h2_conn_free(c);
}
