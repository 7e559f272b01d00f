/* sn_btls: TLS for the broker on OpenSSL (tls://, wss://, and tls:// joins): the contexts
 * (the listeners' certificate and key, the CAs a join verifies with) and one connection's
 * session's handshake and I/O, non-blocking: SSL_read/SSL_write answer WANT_READ/WANT_WRITE,
 * which become EAGAIN (the caller, sn_bconn.c, turns them into watchers on the node's loop).
 * Knows nothing of connections, so the broker's modules never include each other in a ring. */
#ifndef SN_BTLS_H
#define SN_BTLS_H

#include "sn_bwire.h"

#include <stddef.h>
#include <sys/types.h>

typedef struct sn_btls sn_btls;

/* sn_btls_new: the TLS side of a broker; cert, key (listeners) and ca (joins) are PEM file
 * paths, each may be NULL; nothing is read yet. NULL on out of memory. sn_btls_destroy: frees
 * all; NULL is fine; nulls *tp. */
sn_btls *sn_btls_new(const char *cert, const char *key, const char *ca);
void sn_btls_destroy(sn_btls **tp);

/* sn_btls_server_ready: loads the listeners' certificate and key the first time (any
 * thread). SN_OK, or SN_EINVAL with a one-line reason in err (no --broker-cert, a file that
 * cannot be read, a key that does not match). */
int sn_btls_server_ready(sn_btls *t, char *err, size_t errlen);

/* sn_btls_client_ctx: a context for a join to u: verification on unless u says verify=none,
 * against u's ca=FILE, else --broker-ca, else the system's CAs. Any thread. SN_OK with *ctx
 * (the caller owns it: sn_btls_ctx_free, or hand it to sn_btls_connect), or SN_EINVAL with
 * a reason in err. */
int sn_btls_client_ctx(sn_btls *t, const sn_buri *u, void **ctx, char *err, size_t errlen);
void sn_btls_ctx_free(void *ctx);

/* Sessions (loop thread): OpenSSL's SSL on a connection's descriptor, driven by its owner
 * (sn_bconn.c) on readiness. */
typedef struct ssl_st sn_btls_sess;
enum { SN_BTLS_DONE = 0, SN_BTLS_WANT_READ, SN_BTLS_WANT_WRITE, SN_BTLS_FAILED };
/* Flags sn_btls_recv / sn_btls_send set in *flags: the session wants the socket writable to
 * go on reading; the session is broken (no close_notify then). */
enum { SN_BTLS_F_WANT_WRITE = 1, SN_BTLS_F_BROKEN = 2 };

/* sn_btls_accept: a server session on fd (sn_btls_server_ready succeeded before). NULL on
 * out of memory. sn_btls_connect: a client session on fd for a join to host; consumes ctx
 * in every case; verify: the certificate must name host. NULL on out of memory. */
sn_btls_sess *sn_btls_accept(sn_btls *t, int fd);
sn_btls_sess *sn_btls_connect(sn_btls *t, int fd, void *ctx, const char *host, int verify);
/* sn_btls_handshake: one step: SN_BTLS_DONE, _WANT_READ, _WANT_WRITE, or _FAILED with the
 * reason in why (a certificate that does not verify says why). */
int sn_btls_handshake(sn_btls_sess *s, char *why, size_t cap);
/* sn_btls_recv / sn_btls_send: as recv/send: > 0 bytes, 0 at the peer's end (recv), -1 with
 * errno (EAGAIN: try again on readiness); *flags gets SN_BTLS_F_* bits. */
ssize_t sn_btls_recv(sn_btls_sess *s, void *buf, size_t len, int *flags);
ssize_t sn_btls_send(sn_btls_sess *s, const void *buf, size_t len, int *flags);
/* sn_btls_pending: 1 when decrypted bytes wait inside OpenSSL (no readiness will tell). */
int sn_btls_pending(const sn_btls_sess *s);
/* sn_btls_shutdown: sends close_notify once, without waiting (call on a healthy session
 * whose handshake is done). sn_btls_free: frees *sp; NULL is fine; nulls it. */
void sn_btls_shutdown(sn_btls_sess *s);
void sn_btls_free(sn_btls_sess **sp);
/* sn_btls_log_due: whether a failed handshake is to be logged now (at most one every 10 s);
 * 1 with *quiet the failures not logged since the last one, else 0 (counted). Loop thread. */
int sn_btls_log_due(sn_btls *t, unsigned long *quiet);

#endif
