/* sn_btls: TLS for the broker's connections on OpenSSL. The contexts are made once (the
 * listeners') or per join (its CAs); sessions live in bconn.ssl and speak through a small BIO
 * of our own, which sends with MSG_NOSIGNAL (a peer gone never raises SIGPIPE). */
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

static int session(bconn *c, SSL_CTX *ctx)
{
    SSL *ssl = SSL_new(ctx);
    BIO *bio = ssl ? BIO_new(c->b->tls->bio) : NULL;
    if (!bio) {
        SSL_free(ssl);
        ERR_clear_error();
        return SN_ENOMEM;
    }
    BIO_set_fd(bio, c->fd, BIO_NOCLOSE);
    SSL_set_bio(ssl, bio, bio);
    c->ssl = ssl;
    c->tls_hs = 1;
    return SN_OK;
}

int sn_btls_accept(bconn *c)
{
    if (session(c, c->b->tls->server) != SN_OK)
        return SN_ENOMEM;
    SSL_set_accept_state(c->ssl);
    return SN_OK;
}

int sn_btls_connect(bconn *c, void *ctx, const char *host, int verify)
{
    int rc = session(c, ctx);
    SSL_CTX_free(ctx); /* the session holds its own reference */
    if (rc != SN_OK)
        return rc;
    SSL_set_connect_state(c->ssl);
    unsigned char ip[16];
    int literal = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    if (*host && !literal)
        SSL_set_tlsext_host_name(c->ssl, host); /* SNI names hosts, never addresses */
    if (verify && *host) {
        int ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host)
                         : SSL_set1_host(c->ssl, host);
        if (ok != 1) {
            ERR_clear_error();
            return SN_ENOMEM;
        }
    }
    return SN_OK;
}

/* A failed handshake: counted as "tls" (sn_bconn_close does not log it), logged here at
 * most every 10 s with the number left unlogged. */
static void failed(bconn *c, const char *why)
{
    sn_btls *t = c->b->tls;
    double now = sn_clock_mono();
    if (!t->logged || now - t->logged >= 10) {
        sn_log_write(c->b->log, SN_LOG_WARN, "broker", "socket %llu: TLS handshake failed: %s "
                     "(%lu more not logged in the last 10 s)", (unsigned long long)c->id, why,
                     t->quiet);
        t->logged = now;
        t->quiet = 0;
    } else {
        t->quiet++;
    }
    c->tls_broken = 1;
    sn_bconn_close(c, SN_BCLOSE_TLS, EPROTO, "TLS handshake failed: %s", why);
}

void sn_btls_handshake(bconn *c)
{
    if (c->dead || !c->ssl)
        return;
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->tls_hs = 0;
        ev_io_stop(c->b->ev, &c->wio);
        sn_bconn_tls_up(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        ev_io_stop(c->b->ev, &c->wio);
        if (!c->paused)
            ev_io_start(c->b->ev, &c->rio);
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        sn_bconn_want_write(c);
        return;
    }
    char why[256];
    long v = SSL_get_verify_result(c->ssl);
    if (v != X509_V_OK) {
        snprintf(why, sizeof why, "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
        ERR_clear_error();
    } else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) {
        int en = errno;
        ssl_reason(why, sizeof why, en ? strerror(en) : "the peer closed during the handshake");
    } else {
        ssl_reason(why, sizeof why, "protocol error");
    }
    failed(c, why);
}

ssize_t sn_btls_recv(bconn *c, void *buf, size_t len)
{
    ERR_clear_error();
    errno = 0;
    int n = SSL_read(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (n > 0)
        return n;
    switch (SSL_get_error(c->ssl, n)) {
    case SSL_ERROR_WANT_READ:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE: /* a read that must write first: retried when writable */
        c->tls_rw = 1;
        sn_bconn_want_write(c);
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        c->tls_broken = 1;
        ERR_clear_error();
        if (!errno)
            return 0;
        return -1;
    default:
        c->tls_broken = 1;
        ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
}

ssize_t sn_btls_send(bconn *c, const void *buf, size_t len)
{
    if (!len)
        return 0;
    ERR_clear_error();
    errno = 0;
    int n = SSL_write(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (n > 0)
        return n;
    switch (SSL_get_error(c->ssl, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_SYSCALL:
        c->tls_broken = 1;
        ERR_clear_error();
        if (!errno)
            errno = EPIPE;
        return -1;
    default:
        c->tls_broken = 1;
        ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
}

int sn_btls_pending(const bconn *c)
{
    return c->ssl && SSL_pending(c->ssl) > 0;
}

void sn_btls_shutdown(bconn *c)
{
    if (!c->ssl || c->tls_hs || c->tls_broken || (SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN))
        return;
    ERR_clear_error();
    SSL_shutdown(c->ssl); /* once, non-blocking: what does not fit is lost */
    ERR_clear_error();
}

void sn_btls_free(bconn *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
}
