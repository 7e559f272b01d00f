/* sn_transport: how the cluster moves frames, behind a small table of operations: one
 * listening socket that receives every frame addressed to this node (and answers on it),
 * and outgoing connections to peers. The ZeroMQ one (sn_transport_zmq) runs in the node;
 * the in-memory one (sn_transport_fake) runs the cluster in unit tests. Loop thread only. */
#ifndef SN_TRANSPORT_H
#define SN_TRANSPORT_H

#include <stddef.h>

typedef struct sn_conn sn_conn; /* one outgoing connection; opaque, owned by the transport */

/* One frame handed up by a drain: id/idlen is the sender's identity on the listening socket
 * (NULL when the frame came back on an outgoing connection); peer is the node name the
 * connection is authenticated as (CurveZMQ: the ZAP user id on the listening socket, the name
 * whose key was the server key on an outgoing connection), NULL when it is not authenticated.
 * Only an authenticated frame may carry code, and its claimed source must be peer.
 * data and peer live until fn returns. */
typedef void (*sn_transport_frame_fn)(void *ud, const void *data, size_t len, const void *id,
                                      size_t idlen, const char *peer);

typedef struct sn_transport sn_transport;
typedef struct sn_transport_ops {
    int (*connect)(sn_transport *t, const char *endpoint, const char *peer, sn_conn **out);
    void (*close)(sn_transport *t, sn_conn *conn, int gently);
    int (*send)(sn_transport *t, sn_conn *conn, const void *data, size_t len);
    int (*answer)(sn_transport *t, const void *id, size_t idlen, const void *data, size_t len);
    void (*drain)(sn_transport *t, sn_transport_frame_fn fn, void *ud);
    void (*destroy)(sn_transport *t);
    int (*admits)(sn_transport *t, const char *peer); /* NULL: every peer */
    int (*readable)(sn_transport *t, sn_conn *conn);  /* NULL: never */
} sn_transport_ops;

/* Every implementation starts with this record. */
struct sn_transport {
    const sn_transport_ops *ops;
};

/* sn_transport_connect: a connection to endpoint, where node peer is expected (NULL: unknown;
 * with CurveZMQ the peer's key comes from the allow list by this name, so every frame on the
 * connection comes from peer). Connecting goes on in the background; frames sent before it
 * is up wait in its bounded queue. SN_OK, SN_ENOMEM, SN_EIO (logged), SN_EUNTRUSTED (CurveZMQ
 * on and peer not in the allow list: logged). */
int sn_transport_connect(sn_transport *t, const char *endpoint, const char *peer, sn_conn **out);
/* sn_transport_close: lets go of *connp (NULL is fine) and nulls it. Unsent frames are
 * dropped. Safe from inside a drain's callback: the connection is freed after the drain. */
void sn_transport_close(sn_transport *t, sn_conn **connp);
/* sn_transport_close_gently: the same, but frames still queued on it go out first, for as
 * long as the transport lingers (ZeroMQ: 1 s; past it they are dropped). */
void sn_transport_close_gently(sn_transport *t, sn_conn **connp);
/* sn_transport_admits: 1 if a connection to node peer could be authenticated (no CurveZMQ:
 * always; with it: peer has a key in the allow list), else 0. */
int sn_transport_admits(sn_transport *t, const char *peer);
/* sn_transport_readable: 1 when conn holds received frames that a drain would read. For a
 * thread that sent on conn while the loop thread slept: ZeroMQ's notification may have been
 * taken by that send, so the caller wakes the loop itself. */
int sn_transport_readable(sn_transport *t, sn_conn *conn);
/* sn_transport_send: queues one frame, never blocks. SN_OK, or SN_EFULL when the
 * connection's queue is full (nothing was sent; try later). */
int sn_transport_send(sn_transport *t, sn_conn *conn, const void *data, size_t len);
/* sn_transport_answer: sends one frame back to the sender identity id on the listening
 * socket. SN_OK, SN_EFULL, SN_ENOENT (no such sender, or no listening socket). */
int sn_transport_answer(sn_transport *t, const void *id, size_t idlen, const void *data,
                        size_t len);
/* sn_transport_drain: hands every frame received so far to fn, from the listening socket
 * and from every connection. fn may send, connect and close. */
void sn_transport_drain(sn_transport *t, sn_transport_frame_fn fn, void *ud);
/* sn_transport_destroy: closes everything; NULL is fine; nulls *tp. */
void sn_transport_destroy(sn_transport **tp);

#endif
