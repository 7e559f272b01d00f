/* sn_transport_zmq: the node's transport. One ROUTER bound to --listen receives every frame
 * addressed to this node and answers handshakes; one DEALER per connection sends. Sends never
 * block (ZMQ_SNDHWM = peer_queue, ZMQ_DONTWAIT); CurveZMQ when --curve-secret is set. */
#ifndef SN_TRANSPORT_ZMQ_H
#define SN_TRANSPORT_ZMQ_H

#include "sn_log.h"
#include "sn_opts.h"
#include "sn_transport.h"

struct ev_loop;

/* sn_transport_zmq_new: binds o->listen (if set); watches every socket on loop (a socket
 * with input makes the loop run its prepare watchers, which drain). Loop thread. NULL with
 * *err: SN_EIO (cannot bind), SN_EINVAL (bad CurveZMQ files), SN_ENOTSUP, SN_ENOMEM; logged. */
sn_transport *sn_transport_zmq_new(const sn_opts *o, struct ev_loop *loop, sn_log *log,
                                   int *err);

/* sn_transport_zmq_endpoint: the endpoint peers use to reach this node: --advertise, or
 * --listen with a wildcard host made concrete (the host name); "" without --listen. */
void sn_transport_zmq_endpoint(const sn_opts *o, char *out, size_t cap);

#endif
