/* sn_btls: TLS for the broker on OpenSSL (tls://, wss://, and tls:// joins): the contexts
 * (the listeners' certificate and key, the CAs a join verifies with) and one connection's
 * handshake and I/O, non-blocking on the node's loop: SSL_read/SSL_write answer WANT_READ /
 * WANT_WRITE, which become EAGAIN and a watcher. Failed handshakes are counted (close reason
 * "tls") and logged at most every 10 s. */
#ifndef SN_BTLS_H
#define SN_BTLS_H

#include "sn_bconn.h"

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

/* Connections (loop thread). sn_btls_accept: server TLS on c's socket; the handshake
 * follows on readiness. sn_btls_connect: client TLS for a join to host (consumes ctx in
 * every case); verify: check the certificate names host. Both SN_OK or SN_ENOMEM. */
int sn_btls_accept(bconn *c);
int sn_btls_connect(bconn *c, void *ctx, const char *host, int verify);
/* sn_btls_handshake: drives the handshake (c->tls_hs); once done, the connection goes on
 * (sn_bconn_tls_up); a failure closes c (reason "tls"). */
void sn_btls_handshake(bconn *c);
/* sn_btls_recv / sn_btls_send: as recv/send: > 0 bytes, 0 at the peer's end (recv), -1 with
 * errno (EAGAIN: try again on readiness). */
ssize_t sn_btls_recv(bconn *c, void *buf, size_t len);
ssize_t sn_btls_send(bconn *c, const void *buf, size_t len);
/* sn_btls_pending: 1 when decrypted bytes wait inside OpenSSL (no readiness will tell). */
int sn_btls_pending(const bconn *c);
/* sn_btls_shutdown: sends close_notify once, without waiting (a healthy session only).
 * sn_btls_free: frees c's session. */
void sn_btls_shutdown(bconn *c);
void sn_btls_free(bconn *c);

#endif
