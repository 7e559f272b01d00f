/* sn_transport_fake: an in-memory network for unit tests of the cluster. Every transport on
 * one sn_fake_net can reach the others by endpoint name; frames arrive at the next drain, in
 * order per connection. Tests cut endpoints off (a crash or a partition) and bound queues. */
#ifndef SN_TRANSPORT_FAKE_H
#define SN_TRANSPORT_FAKE_H

#include "sn_transport.h"

#include <stddef.h>

typedef struct sn_fake_net sn_fake_net;

/* sn_fake_net_new: an empty network; NULL on out of memory. One thread. */
sn_fake_net *sn_fake_net_new(void);
/* sn_fake_net_destroy: frees the network; every transport on it must be destroyed first. */
void sn_fake_net_destroy(sn_fake_net **np);
/* sn_fake_net_cut: while cut, every frame to or from endpoint is lost. */
void sn_fake_net_cut(sn_fake_net *n, const char *endpoint, int cut);
/* sn_fake_net_cut_link: while cut, every frame from endpoint from to endpoint to is lost
 * (one direction: a half-broken link). */
void sn_fake_net_cut_link(sn_fake_net *n, const char *from, const char *to, int cut);
/* sn_fake_net_queue: at most cap frames wait on one connection (0: no cap, the default);
 * past it, send is SN_EFULL. */
void sn_fake_net_queue(sn_fake_net *n, size_t cap);
/* sn_fake_net_open_from: how many connections the transport listening on endpoint holds open
 * now (closed ones not counted). */
size_t sn_fake_net_open_from(sn_fake_net *n, const char *endpoint);
/* sn_fake_net_connects: how many connections were ever opened to endpoint. */
size_t sn_fake_net_connects(sn_fake_net *n, const char *endpoint);

/* sn_transport_fake_new: a transport listening on endpoint (NULL: none), not authenticated
 * (frames it receives carry no peer name). NULL on out of memory, or when the endpoint is taken. */
sn_transport *sn_transport_fake_new(sn_fake_net *n, const char *endpoint);
/* sn_transport_fake_new_as: the same, authenticated as node identity, as with CurveZMQ:
 * between two such transports every frame carries its sender's identity as peer, and a
 * connection made for another peer name than the listener's identity carries nothing. */
sn_transport *sn_transport_fake_new_as(sn_fake_net *n, const char *endpoint, const char *identity);

#endif
