/* sn_zap: the ZAP handler (RFC 27) of a node: one thread in the node's ZeroMQ context, bound to
 * inproc://zeromq.zap.01, admitting a CURVE client only if its public key is allowed. */
#ifndef SN_ZAP_H
#define SN_ZAP_H

#include "sn_curve.h"
#include "sn_log.h"

#include <stdint.h>

typedef struct sn_zap sn_zap;

/* sn_zap_new: binds inproc://zeromq.zap.01 in zctx (before returning, so no handshake can race
 * it) and starts the handler thread. It replies 200 (user id = the node name the allow list gives the client's key) to a
 * CURVE request in domain SN_CURVE_ZAP_DOMAIN whose key is in allow, 400 to anything else,
 * and logs each refusal at warn (at most 10 a second; the rest are counted and summarised).
 * allow and log are borrowed: both must outlive the handler. Returns NULL and sets *err:
 * SN_EINVAL if another handler is bound in zctx, SN_ENOMEM, SN_EIO. Call from one thread. */
sn_zap *sn_zap_new(void *zctx, const sn_curve_allow *allow, sn_log *log, int *err);

/* sn_zap_destroy: stops the thread, closes its sockets (unbinding the endpoint, so later
 * handshakes on enforcing sockets fail: fail closed), frees *zp (NULL is fine), nulls it.
 * Call before zmq_ctx_term on zctx (after zmq_ctx_shutdown is fine). Same thread as _new. */
void sn_zap_destroy(sn_zap **zp);

/* sn_zap_admitted / sn_zap_refused: requests answered 200 / 400 so far. Any thread. */
uint64_t sn_zap_admitted(const sn_zap *z);
uint64_t sn_zap_refused(const sn_zap *z);

#endif
