/*
 * tls: every OpenSSL call of the daemon. Builds the server and client
 * contexts (TLS 1.3 only, mutual X.509 against the configured CA) and wraps
 * sockets in libevent bufferevents. With `tls = off` in the config (loopback
 * benchmarks only) the same functions hand out plain socket bufferevents, so
 * callers never know which they have. Runs on the loop thread.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent_ssl.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "tls.h"
#include "util.h"

static void
tls_log_errors(const char *fn, const char *what)
{
	unsigned long e;
	char buf[256];

	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		log_warnx("%s: %s: %s", fn, what, buf);
	}
}

SSL_CTX *
tls_ctx_new(const struct config *c, int server)
{
	SSL_CTX *ctx;

	if (!c->tls)
		return NULL;
	if ((ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method())) == NULL)
		goto fail;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION))
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1) {
		tls_log_errors(__func__, c->tls_cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_log_errors(__func__, c->tls_key);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, c->tls_ca, NULL) != 1) {
		tls_log_errors(__func__, c->tls_ca);
		goto fail;
	}
	/* Both sides must show a certificate signed by our CA. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
	    (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (server) {
		/* Session tickets would let a resumed session skip the client
		 * certificate check on a later connection. */
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx, 0);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	}
	return ctx;
fail:
	tls_log_errors(__func__, "context");
	log_warnx("%s: cannot set up TLS (%s)", __func__, server ? "server" : "client");
	SSL_CTX_free(ctx);
	return NULL;
}

struct bufferevent *
tls_bev_accept(SSL_CTX *ctx, int fd)
{
	SSL *ssl;
	struct bufferevent *bev;

	if (ctx == NULL)
		return bufferevent_socket_new(D->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if ((ssl = SSL_new(ctx)) == NULL) {
		tls_log_errors(__func__, "SSL_new");
		return NULL;
	}
	bev = bufferevent_openssl_socket_new(D->base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		SSL_free(ssl);
	return bev;
}

struct bufferevent *
tls_bev_connect(SSL_CTX *ctx, const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;
	SSL *ssl;
	struct bufferevent *bev;

	if (ctx == NULL)
		return bufferevent_socket_new(D->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if ((ssl = SSL_new(ctx)) == NULL) {
		tls_log_errors(__func__, "SSL_new");
		return NULL;
	}
	/* The destination's certificate must name the address we dial. */
	if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
	} else {
		SSL_set1_host(ssl, host);
		SSL_set_tlsext_host_name(ssl, host);
	}
	bev = bufferevent_openssl_socket_new(D->base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		SSL_free(ssl);
	return bev;
}

/* OpenSSL's reason for a failed read or write (error e) into why; the
 * thread's error queue is emptied. TLS_RD_ERROR. */
static ssize_t
tls_io_error(unsigned long e, char *why, size_t whylen)
{
	snprintf(why, whylen, "TLS: %s", e != 0 && ERR_reason_error_string(e) != NULL ?
	    ERR_reason_error_string(e) : "error");
	ERR_clear_error();
	return TLS_RD_ERROR;
}

ssize_t
tls_bev_read(struct bufferevent *bev, void *buf, size_t len, char *why, size_t whylen)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	unsigned long e;
	ssize_t n;
	int r;

	if (len > INT_MAX)
		len = INT_MAX;
	if (ssl == NULL) {
		n = recv(bufferevent_getfd(bev), buf, len, 0);
		if (n >= 0)
			return n;
		if (errno == EAGAIN || errno == EINTR)
			return TLS_RD_WANT_READ;
		snprintf(why, whylen, "%s", strerror(errno));
		return TLS_RD_ERROR;
	}
	ERR_clear_error();
	if ((r = SSL_read(ssl, buf, (int)len)) > 0)
		return r;
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return TLS_RD_WANT_READ;
	case SSL_ERROR_WANT_WRITE:	/* a key update's answer waits for the socket */
		return TLS_RD_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			if (errno == 0)
				return 0;	/* EOF without close_notify */
			snprintf(why, whylen, "%s", strerror(errno));
			return TLS_RD_ERROR;
		}
		/* FALLTHROUGH */
	default:
		e = ERR_get_error();
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
		if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			return 0;	/* closed without close_notify */
		}
#endif
		return tls_io_error(e, why, whylen);
	}
}

ssize_t
tls_bev_write(struct bufferevent *bev, const void *buf, size_t len, char *why, size_t whylen)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	int r;

	if (ssl == NULL || len == 0 || len > INT_MAX) {
		snprintf(why, whylen, "no TLS session to write %zu bytes to", len);
		return TLS_RD_ERROR;
	}
	ERR_clear_error();
	if ((r = SSL_write(ssl, buf, (int)len)) > 0)
		return r;
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_WRITE:
	case SSL_ERROR_WANT_READ:
		return TLS_WR_BLOCKED;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			snprintf(why, whylen, "%s", errno != 0 ? strerror(errno) : "closed");
			return TLS_RD_ERROR;
		}
		/* FALLTHROUGH */
	default:
		return tls_io_error(ERR_get_error(), why, whylen);
	}
}

size_t
tls_bev_pending(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	if (ssl == NULL)
		return 0;
	if (SSL_pending(ssl) > 0)
		return (size_t)SSL_pending(ssl);
	/* Records read ahead, not decrypted yet: at most one record's worth. */
	return SSL_has_pending(ssl) ? 16384 : 0;
}

void
tls_bev_read_ahead(struct bufferevent *bev, int on)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	if (ssl == NULL)
		return;
	SSL_set_read_ahead(ssl, on);
	if (on) {
		SSL_set_default_read_buffer_len(ssl, TLS_READ_AHEAD);
		SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	} else {
		SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	}
}

/*
 * Why a TLS channel failed, in words: the certificate check's result (a
 * name or address the certificate does not carry, an unknown CA, ...) or
 * OpenSSL's reason text, without its error codes; "" when OpenSSL saw no
 * error of its own (the socket failed: the caller says how).
 */
const char *
tls_bev_error(struct bufferevent *bev, char *buf, size_t len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	X509_VERIFY_PARAM *vp;
	const char *r;
	unsigned long e;
	char *ip;
	long rc;

	buf[0] = '\0';
	if (ssl == NULL)
		return buf;
	while ((e = bufferevent_get_openssl_error(bev)) != 0) {
		/* lib 0 / SYS: the socket's errno, which the caller reports. */
		if (buf[0] != '\0' || ERR_GET_LIB(e) == 0 || ERR_GET_LIB(e) == ERR_LIB_SYS)
			continue;
		r = ERR_reason_error_string(e);
		snprintf(buf, len, "%s", r != NULL ? r : "TLS error");
	}
	vp = SSL_get0_param(ssl);
	switch ((rc = SSL_get_verify_result(ssl))) {
	case X509_V_OK:
		break;
	case X509_V_ERR_HOSTNAME_MISMATCH:
		snprintf(buf, len, "certificate does not match the name %s",
		    X509_VERIFY_PARAM_get0_host(vp, 0) ? X509_VERIFY_PARAM_get0_host(vp, 0) : "?");
		break;
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		ip = X509_VERIFY_PARAM_get1_ip_asc(vp);
		snprintf(buf, len, "certificate does not match the address %s", ip ? ip : "?");
		OPENSSL_free(ip);
		break;
	default:
		snprintf(buf, len, "certificate verification failed: %s",
		    X509_verify_cert_error_string(rc));
	}
	return buf;
}

const char *
tls_bev_own_identity(struct bufferevent *bev, char *buf, size_t len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	buf[0] = '\0';
	return ssl != NULL ? tls_cert_identity(SSL_get_certificate(ssl), buf, len) : buf;
}

const char *
tls_bev_verify_error(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	long rc = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;

	return rc == X509_V_OK ? NULL : X509_verify_cert_error_string(rc);
}

const char *
tls_cert_identity(X509 *x, char *buf, size_t len)
{
	BIO *b;
	int n;

	buf[0] = '\0';
	if (x == NULL || len == 0 || (b = BIO_new(BIO_s_mem())) == NULL)
		return buf;
	if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0 &&
	    (n = BIO_read(b, buf, (int)len - 1)) > 0)
		buf[n] = '\0';
	BIO_free(b);
	return buf;
}

/* The subject's CN equals id. */
static int
tls_cn_is(X509 *x, const char *id)
{
	X509_NAME *name = X509_get_subject_name(x);
	int i = -1;

	while ((i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) >= 0) {
		ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));

		if ((size_t)ASN1_STRING_length(v) == strlen(id) &&
		    !memcmp(ASN1_STRING_get0_data(v), id, strlen(id)))
			return 1;
	}
	return 0;
}

/* A URI subjectAltName equals id (SPIFFE IDs and the like). */
static int
tls_uri_is(X509 *x, const char *id)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int found = 0;

	for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans) && !found; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);

		if (g->type == GEN_URI &&
		    (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier) == strlen(id) &&
		    !memcmp(ASN1_STRING_get0_data(g->d.uniformResourceIdentifier), id, strlen(id)))
			found = 1;
	}
	GENERAL_NAMES_free(sans);
	return found;
}

int
tls_cert_matches(X509 *x, const char *id)
{
	char subj[512];
	const unsigned flags = X509_CHECK_FLAG_NO_WILDCARDS |
	    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT;

	if (x == NULL || id == NULL || id[0] == '\0')
		return 0;
	if (!strcmp(tls_cert_identity(x, subj, sizeof(subj)), id) || tls_cn_is(x, id))
		return 1;
	if (strchr(id, '@') != NULL)
		return X509_check_email(x, id, 0, 0) == 1;
	if (strchr(id, ':') != NULL)
		return tls_uri_is(x, id);
	return X509_check_host(x, id, 0, flags, NULL) == 1;
}

const char *
tls_bev_identity(struct bufferevent *bev, char *buf, size_t len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	X509 *x = ssl != NULL ? SSL_get1_peer_certificate(ssl) : NULL;

	tls_cert_identity(x, buf, len);
	X509_free(x);
	return buf;
}

int
tls_bev_matches(struct bufferevent *bev, const char *id)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	X509 *x = ssl != NULL ? SSL_get1_peer_certificate(ssl) : NULL;
	int rc = tls_cert_matches(x, id);

	X509_free(x);
	return rc;
}

int
tls_random(void *buf, size_t len)
{
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

/* ALPN for the control API over TLS: HTTP/2 only. */
static int
tls_alpn_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char h2[] = "\x02h2";
	unsigned char *sel;

	if (SSL_select_next_proto(&sel, outlen, h2, sizeof(h2) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/*
 * Server context of the control API's TCP listener: TLS 1.3, a client
 * certificate signed by [control] ca (the operators' CA, not the peers') is
 * required, ALPN "h2"; served with [control] cert and key, or the host's
 * [tls] ones. Independent of [tls] enabled, which is about peers.
 */
SSL_CTX *
tls_ctx_new_h2(const struct config *c)
{
	struct config cc = *c;
	SSL_CTX *ctx;

	cc.tls = 1;
	snprintf(cc.tls_ca, sizeof(cc.tls_ca), "%s", c->control_ca);
	if (c->control_cert[0])
		snprintf(cc.tls_cert, sizeof(cc.tls_cert), "%s", c->control_cert);
	if (c->control_key[0])
		snprintf(cc.tls_key, sizeof(cc.tls_key), "%s", c->control_key);
	if ((ctx = tls_ctx_new(&cc, 1)) == NULL)
		return NULL;
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_h2, NULL);
	return ctx;
}

/*
 * The configuration check (confcheck.c): the certificate files as the
 * contexts above load them, judged before anything starts, each problem
 * said in words (not OpenSSL's error queue).
 */

/* Opens a file the daemon must read (never waiting on a FIFO); NULL with
 * the reason in why. */
static FILE *
tls_open(const char *path, char *why, size_t len)
{
	struct stat st;
	FILE *f = NULL;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
		snprintf(why, len, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		snprintf(why, len, "%s is not a regular file", path);
	else if ((f = fdopen(fd, "r")) == NULL)
		snprintf(why, len, "cannot read %s: %s", path, strerror(errno));
	if (f == NULL)
		close(fd);
	return f;
}

/* Every PEM certificate in path; NULL with the reason in why. */
static STACK_OF(X509) *
tls_read_certs(const char *path, char *why, size_t len)
{
	STACK_OF(X509) *sk;
	X509 *x;
	FILE *f;

	if ((f = tls_open(path, why, len)) == NULL)
		return NULL;
	if ((sk = sk_X509_new_null()) == NULL) {
		fclose(f);
		snprintf(why, len, "out of memory");
		return NULL;
	}
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(sk, x))
			X509_free(x);
	ERR_clear_error();	/* the end of the file reads as an error */
	fclose(f);
	if (sk_X509_num(sk) == 0) {
		snprintf(why, len, "%s holds no PEM certificate", path);
		sk_X509_free(sk);
		return NULL;
	}
	return sk;
}

static const char *
tls_time(const ASN1_TIME *t, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n = 0;

	buf[0] = '\0';
	if (b != NULL && ASN1_TIME_print(b, t) == 1 && (n = BIO_read(b, buf, (int)len - 1)) > 0)
		buf[n] = '\0';
	BIO_free(b);
	return buf;
}

/* "the certificate CN=x is valid from A to B, not now" */
static void
tls_why_time(X509 *x, const char *what, char *why, size_t len)
{
	char name[256], from[40], to[40];

	snprintf(why, len, "the %s %s is valid from %s to %s, not now", what,
	    tls_cert_identity(x, name, sizeof(name)),
	    tls_time(X509_get0_notBefore(x), from, sizeof(from)),
	    tls_time(X509_get0_notAfter(x), to, sizeof(to)));
}

int
tls_check_ca(const char *path, char *why, size_t len)
{
	STACK_OF(X509) *sk;
	int cas = 0, valid = 0;

	if ((sk = tls_read_certs(path, why, len)) == NULL)
		return -1;
	for (int i = 0; i < sk_X509_num(sk); i++) {
		X509 *x = sk_X509_value(sk, i);

		if (X509_check_ca(x) < 1)
			continue;
		if (X509_cmp_current_time(X509_get0_notBefore(x)) < 0 &&
		    X509_cmp_current_time(X509_get0_notAfter(x)) > 0)
			valid++;
		else if (cas - valid == 0)
			tls_why_time(x, "CA certificate", why, len);
		cas++;
	}
	if (cas == 0)
		snprintf(why, len, "%s holds %d certificate%s but no CA certificate "
		    "(basicConstraints CA:TRUE)", path, sk_X509_num(sk),
		    sk_X509_num(sk) == 1 ? "" : "s");
	sk_X509_pop_free(sk, X509_free);
	return valid > 0 ? 0 : -1;
}

/* Never asks for a passphrase: the daemon starts unattended. */
static int
tls_no_pass(char *buf, int size, int rwflag, void *u)
{
	*(int *)u = 1;
	return -1;
}

/* Verifies leaf (with the rest of its file as intermediates) against the CA
 * files for one use, as a peer would; 0, or -1 with the reason in why. */
static int
tls_verify_use(X509 *leaf, STACK_OF(X509) *chain, const char *const *cas, int sys,
    int purpose, char *why, size_t len)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	char name[256], files[600] = "";
	int rc = -1, err;
	X509 *bad;

	if (st == NULL || ctx == NULL)
		goto out;
	for (int i = 0; cas != NULL && cas[i] != NULL; i++) {
		if (X509_STORE_load_file(st, cas[i]) != 1) {
			rc = 0;		/* the CA's own check says why */
			goto out;
		}
		snprintf(files + strlen(files), sizeof(files) - strlen(files), "%s%s",
		    i ? " or " : "", cas[i]);
	}
	if (sys && X509_STORE_set_default_paths(st) == 1)
		snprintf(files + strlen(files), sizeof(files) - strlen(files), "%s",
		    files[0] ? " or the system's CAs" : "the system's CAs");
	if (X509_STORE_CTX_init(ctx, st, leaf, chain) != 1 ||
	    X509_STORE_CTX_set_purpose(ctx, purpose) != 1)
		goto out;
	if (X509_verify_cert(ctx) == 1) {
		rc = 0;
		goto out;
	}
	err = X509_STORE_CTX_get_error(ctx);
	if ((bad = X509_STORE_CTX_get_current_cert(ctx)) == NULL)
		bad = leaf;
	if (err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID)
		tls_why_time(bad, "certificate", why, len);
	else
		snprintf(why, len, "the certificate %s does not verify against %s as a "
		    "TLS %s: %s", tls_cert_identity(bad, name, sizeof(name)), files,
		    purpose == X509_PURPOSE_SSL_SERVER ? "server" : "client",
		    X509_verify_cert_error_string(err));
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return rc;
}

int
tls_check_pair(const char *cert, const char *key, const char *const *cas, int sys,
    int uses, tls_check_fn *report, void *arg)
{
	STACK_OF(X509) *sk;
	EVP_PKEY *pk = NULL;
	X509 *leaf = NULL;
	char why[768];
	int n = 0, asked = 0;
	FILE *f;

	/* As SSL_CTX_use_certificate_chain_file: the first certificate is
	 * ours, the rest its chain. */
	if ((sk = tls_read_certs(cert, why, sizeof(why))) == NULL)
		report(arg, TLS_FILE_CERT, why), n++;
	else
		leaf = sk_X509_shift(sk);
	for (int u = TLS_USE_SERVER; leaf != NULL && u <= TLS_USE_CLIENT; u <<= 1) {
		if ((uses & u) && tls_verify_use(leaf, sk, cas, sys, u == TLS_USE_SERVER ?
		    X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT, why,
		    sizeof(why)) < 0) {
			report(arg, TLS_FILE_CERT, why), n++;
			break;	/* the other use would mostly say the same */
		}
	}
	if ((f = tls_open(key, why, sizeof(why))) == NULL) {
		report(arg, TLS_FILE_KEY, why), n++;
	} else {
		if ((pk = PEM_read_PrivateKey(f, NULL, tls_no_pass, &asked)) == NULL) {
			snprintf(why, sizeof(why), asked ? "%s is encrypted: the daemon "
			    "needs a key without a passphrase" : "%s holds no PEM private "
			    "key", key);
			report(arg, TLS_FILE_KEY, why), n++;
		}
		fclose(f);
	}
	if (pk != NULL && leaf != NULL && X509_check_private_key(leaf, pk) != 1) {
		snprintf(why, sizeof(why), "%s is not the key of the certificate in %s",
		    key, cert);
		report(arg, TLS_FILE_KEY, why), n++;
	}
	ERR_clear_error();
	X509_free(leaf);
	sk_X509_pop_free(sk, X509_free);
	EVP_PKEY_free(pk);
	return n;
}
