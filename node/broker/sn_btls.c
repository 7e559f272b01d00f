/* sn_btls: TLS for the broker's connections on OpenSSL. The contexts are made once (the
 * listeners') or per join (its CAs); sessions (bconn.ssl) speak through a small BIO of our
 * own, which sends with MSG_NOSIGNAL (a peer gone never raises SIGPIPE). */
#include "sn_btls.h"
#include "sn_clock.h"
#include "sn_error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct sn_btls {
    char *cert, *key, *ca;
    pthread_mutex_t mu;  /* the server context, made once */
    SSL_CTX *server;
    BIO_METHOD *bio;     /* our socket BIO */
    double logged;       /* loop thread: the last handshake failure logged */
    unsigned long quiet; /* failures not logged since */
};

/* ---- the BIO: recv / send(MSG_NOSIGNAL) on the connection's descriptor ------------------ */

static int bio_write(BIO *bio, const char *data, int len)
{
    int fd = (int)BIO_get_fd(bio, NULL);
    BIO_clear_retry_flags(bio);
    ssize_t n = send(fd, data, (size_t)len, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_write(bio);
    return (int)n;
}

static int bio_read(BIO *bio, char *buf, int len)
{
    int fd = (int)BIO_get_fd(bio, NULL);
    BIO_clear_retry_flags(bio);
    ssize_t n = recv(fd, buf, (size_t)len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_read(bio);
    return (int)n;
}

static int bio_puts(BIO *bio, const char *s)
{
    return bio_write(bio, s, (int)strlen(s));
}

static long bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    switch (cmd) {
    case BIO_C_SET_FD:
        BIO_set_data(bio, (void *)(intptr_t)*(int *)ptr);
        BIO_set_init(bio, 1);
        (void)num;
        return 1;
    case BIO_C_GET_FD:
        if (ptr)
            *(int *)ptr = (int)(intptr_t)BIO_get_data(bio);
        return (long)(intptr_t)BIO_get_data(bio);
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        return 0;
    }
}

static BIO_METHOD *bio_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "stage-node broker socket");
    if (!m)
        return NULL;
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_puts(m, bio_puts);
    BIO_meth_set_ctrl(m, bio_ctrl);
    return m;
}

/* ---- contexts -------------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

sn_btls *sn_btls_new(const char *cert, const char *key, const char *ca)
{
    sn_btls *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->cert = dup_or_null(cert);
    t->key = dup_or_null(key ? key : cert); /* one PEM file may hold both */
    t->ca = dup_or_null(ca);
    t->bio = bio_method();
    if ((cert && !t->cert) || ((key || cert) && !t->key) || (ca && *ca && !t->ca) || !t->bio) {
        sn_btls_destroy(&t);
        return NULL;
    }
    pthread_mutex_init(&t->mu, NULL);
    return t;
}

void sn_btls_destroy(sn_btls **tp)
{
    if (!tp || !*tp)
        return;
    sn_btls *t = *tp;
    *tp = NULL;
    if (t->bio)
        pthread_mutex_destroy(&t->mu);
    SSL_CTX_free(t->server);
    BIO_meth_free(t->bio);
    free(t->cert);
    free(t->key);
    free(t->ca);
    free(t);
}

/* The first error OpenSSL queued, as text (or fallback); clears the queue. */
static void ssl_reason(char *out, size_t cap, const char *fallback)
{
    unsigned long e = ERR_get_error();
    if (e) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        snprintf(out, cap, "%s", buf);
    } else {
        snprintf(out, cap, "%s", fallback);
    }
    ERR_clear_error();
}

static SSL_CTX *ctx_new(const SSL_METHOD *method)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* a peer that drops the connection without close_notify is a peer that closed */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    /* our writes resume from a buffer that may have moved (it grows) and may end part way */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

int sn_btls_server_ready(sn_btls *t, char *err, size_t errlen)
{
    pthread_mutex_lock(&t->mu);
    if (t->server) {
        pthread_mutex_unlock(&t->mu);
        return SN_OK;
    }
    int rc = SN_EINVAL;
    char why[256];
    SSL_CTX *ctx = NULL;
    if (!t->cert) {
        snprintf(err, errlen, "tls:// and wss:// listeners need a certificate and key "
                 "(--broker-cert FILE --broker-key FILE)");
        goto out;
    }
    ERR_clear_error();
    if (!(ctx = ctx_new(TLS_server_method()))) {
        ssl_reason(why, sizeof why, "out of memory");
        snprintf(err, errlen, "TLS: %s", why);
        goto out;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
        ssl_reason(why, sizeof why, "unreadable");
        snprintf(err, errlen, "--broker-cert '%s': %s", t->cert, why);
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1) {
        ssl_reason(why, sizeof why, "unreadable");
        snprintf(err, errlen, "--broker-key '%s': %s", t->key, why);
        goto out;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_reason(why, sizeof why, "does not match");
        snprintf(err, errlen, "--broker-key '%s' does not match --broker-cert '%s': %s", t->key,
                 t->cert, why);
        goto out;
    }
    t->server = ctx;
    ctx = NULL;
    rc = SN_OK;
out:
    SSL_CTX_free(ctx);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int sn_btls_client_ctx(sn_btls *t, const sn_buri *u, void **out, char *err, size_t errlen)
{
    char why[256];
    ERR_clear_error();
    SSL_CTX *ctx = ctx_new(TLS_client_method());
    if (!ctx) {
        ssl_reason(why, sizeof why, "out of memory");
        snprintf(err, errlen, "TLS: %s", why);
        return SN_EINVAL;
    }
    if (!u->noverify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        const char *ca = u->ca[0] ? u->ca : t->ca;
        if (ca ? SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1
               : SSL_CTX_set_default_verify_paths(ctx) != 1) {
            ssl_reason(why, sizeof why, "unreadable");
            snprintf(err, errlen, "TLS CAs %s%s%s: %s", ca ? "'" : "", ca ? ca : "(the system's)",
                     ca ? "'" : "", why);
            SSL_CTX_free(ctx);
            return SN_EINVAL;
        }
    }
    *out = ctx;
    return SN_OK;
}

void sn_btls_ctx_free(void *ctx)
{
    SSL_CTX_free(ctx);
}

/* ---- sessions -------------------------------------------------------------------------- */

static SSL *session(sn_btls *t, SSL_CTX *ctx, int fd)
{
    SSL *ssl = SSL_new(ctx);
    BIO *bio = ssl ? BIO_new(t->bio) : NULL;
    if (!bio) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_fd(bio, fd, BIO_NOCLOSE);
    SSL_set_bio(ssl, bio, bio);
    return ssl;
}

sn_btls_sess *sn_btls_accept(sn_btls *t, int fd)
{
    SSL *ssl = session(t, t->server, fd);
    if (ssl)
        SSL_set_accept_state(ssl);
    return ssl;
}

sn_btls_sess *sn_btls_connect(sn_btls *t, int fd, void *ctx, const char *host, int verify)
{
    SSL *ssl = session(t, ctx, fd);
    SSL_CTX_free(ctx); /* the session holds its own reference */
    if (!ssl)
        return NULL;
    SSL_set_connect_state(ssl);
    unsigned char ip[16];
    int literal = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    if (*host && !literal)
        SSL_set_tlsext_host_name(ssl, host); /* SNI names hosts, never addresses */
    if (verify && *host) {
        int ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
                         : SSL_set1_host(ssl, host);
        if (ok != 1) {
            ERR_clear_error();
            SSL_free(ssl);
            return NULL;
        }
    }
    return ssl;
}

int sn_btls_log_due(sn_btls *t, unsigned long *quiet)
{
    double now = sn_clock_mono();
    if (t->logged && now - t->logged < 10) {
        t->quiet++;
        return 0;
    }
    *quiet = t->quiet;
    t->logged = now;
    t->quiet = 0;
    return 1;
}

int sn_btls_handshake(sn_btls_sess *s, char *why, size_t cap)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(s);
    if (r == 1)
        return SN_BTLS_DONE;
    int e = SSL_get_error(s, r);
    if (e == SSL_ERROR_WANT_READ)
        return SN_BTLS_WANT_READ;
    if (e == SSL_ERROR_WANT_WRITE)
        return SN_BTLS_WANT_WRITE;
    long v = SSL_get_verify_result(s);
    if (v != X509_V_OK) {
        snprintf(why, cap, "certificate verify failed: %s", X509_verify_cert_error_string(v));
        ERR_clear_error();
    } else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) {
        int en = errno;
        ssl_reason(why, cap, en ? strerror(en) : "the peer closed during the handshake");
    } else {
        ssl_reason(why, cap, "protocol error");
    }
    return SN_BTLS_FAILED;
}

ssize_t sn_btls_recv(sn_btls_sess *s, void *buf, size_t len, int *flags)
{
    ERR_clear_error();
    errno = 0;
    int n = SSL_read(s, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (n > 0)
        return n;
    switch (SSL_get_error(s, n)) {
    case SSL_ERROR_WANT_READ:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE: /* a read that must write first: retried when writable */
        *flags |= SN_BTLS_F_WANT_WRITE;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        *flags |= SN_BTLS_F_BROKEN;
        ERR_clear_error();
        return errno ? -1 : 0;
    default:
        *flags |= SN_BTLS_F_BROKEN;
        ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
}

ssize_t sn_btls_send(sn_btls_sess *s, const void *buf, size_t len, int *flags)
{
    if (!len)
        return 0;
    ERR_clear_error();
    errno = 0;
    int n = SSL_write(s, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (n > 0)
        return n;
    switch (SSL_get_error(s, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_SYSCALL:
        *flags |= SN_BTLS_F_BROKEN;
        ERR_clear_error();
        if (!errno)
            errno = EPIPE;
        return -1;
    default:
        *flags |= SN_BTLS_F_BROKEN;
        ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
}

int sn_btls_pending(const sn_btls_sess *s)
{
    return s && SSL_pending(s) > 0;
}

void sn_btls_shutdown(sn_btls_sess *s)
{
    if (!s || !SSL_is_init_finished(s) || (SSL_get_shutdown(s) & SSL_SENT_SHUTDOWN))
        return;
    ERR_clear_error();
    SSL_shutdown(s); /* once, non-blocking: what does not fit is lost */
    ERR_clear_error();
}

void sn_btls_free(sn_btls_sess **sp)
{
    if (!sp || !*sp)
        return;
    SSL_free(*sp);
    *sp = NULL;
}
