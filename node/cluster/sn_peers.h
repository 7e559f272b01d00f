/* sn_peers: the connections to each member, made on first use, the control ones closed when
 * idle, so that a node holds connections to the members it talks to (its probe targets, its
 * traffic), not to every member. Loop thread, or a thread holding the link (sn_link_lock). */
#ifndef SN_PEERS_H
#define SN_PEERS_H

#include "sn_link.h"
#include "sn_members.h"
#include "sn_wire.h"

#include <stddef.h>

/* sn_peers_is_data: 1 for the frames that travel on the data connection (MESSAGE, REPLY and
 * the LOCK frames), 0 for the control ones (everything else). */
int sn_peers_is_data(sn_wire_kind kind);
/* sn_peers_conn: m's data (data != 0) or control connection, made now if it has none (logged
 * at debug); a control connection is marked used, so that the idle close leaves it this
 * period. NULL when it cannot be
 * made (the transport logged why); sending on NULL is SN_ENOENT. */
sn_conn *sn_peers_conn(sn_link *l, sn_member *m, int data);
/* sn_peers_send: encodes f and sends it to m on the connection its kind takes. */
int sn_peers_send(sn_link *l, sn_member *m, const sn_wire_frame *f);
/* sn_peers_reply: f in answer to a frame from m: back on the listening socket to the sender
 * identity id when there is one (it came in on m's connection to us, which stays open while
 * m uses it: no connection of ours is made), else, or when that fails, on m's connection. */
int sn_peers_reply(sn_link *l, sn_member *m, const void *id, size_t idlen,
                   const sn_wire_frame *f);
/* sn_peers_close: closes both of m's connections now (a restart, a forgotten member); the
 * frames still queued on them are dropped (they were meant for the old process). */
void sn_peers_close(sn_link *l, sn_member *m);

enum { SN_PEERS_TRIM_EVERY = 10 /* s: at most this often, memory goes back to the OS */ };

/* sn_peers_idle: at now, closes every control connection nothing was sent on for idle seconds
 * (0: never). Data connections stay (made at their first frame, closed with the member): a
 * stalled connection's bytes may still sit in the kernel after a close and arrive after
 * those of a new connection, out of order (a partition that heals); control frames carry
 * versions and tolerate that, MESSAGE and REPLY sequence numbers do not. Each close is logged
 * at debug and goes through the transport's deferred close, with linger: a frame still
 * queued goes out first (sn_transport_zmq). When it closed one and *trimmed_at is
 * SN_PEERS_TRIM_EVERY s old, the heap's free memory goes back to the OS (glibc keeps the
 * buffers of closed connections otherwise: RSS would stay at the peak of a join). Loop
 * thread, link held. */
void sn_peers_idle(sn_link *l, sn_members *ms, double now, double idle, double *trimmed_at);

#endif
