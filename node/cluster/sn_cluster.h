/* sn_cluster: this node's place in the cluster, as a facade over its parts: the transport
 * (sn_transport), the members and their failure detector (sn_members), requests waiting for
 * replies (sn_sessions), queued frames and their order (sn_outbox), distributed locks
 * (sn_dlock) and the function cache's sender side (sn_codecache). It reaches the node only
 * through sn_cluster_hooks. Everything on the wire happens on the loop thread; other threads
 * queue frames. */
#ifndef SN_CLUSTER_H
#define SN_CLUSTER_H

#include "sn_cluster_hooks.h"
#include "sn_gate.h"
#include "sn_locks.h"
#include "sn_log.h"
#include "sn_members.h"
#include "sn_msg.h"
#include "sn_opts.h"
#include "sn_transport.h"
#include "sn_wire.h"

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
typedef struct sn_cluster sn_cluster;


/* sn_cluster_new: binds --listen (if any) over ZeroMQ and starts joining the --join seeds;
 * with loop, a timer ticks every heartbeat and a prepare watcher flushes and drains. Loop
 * thread. NULL with *err (SN_EIO: cannot bind, logged; SN_EINVAL: bad settings, logged). */
sn_cluster *sn_cluster_new(const sn_opts *o, struct ev_loop *loop, const char *name,
                           sn_log *log, const sn_cluster_hooks *hooks, int *err);
/* sn_cluster_new_on: the same over transport t (consumed, even on failure), advertising
 * endpoint; loop may be NULL (then the caller calls sn_cluster_tick and sn_cluster_poll). */
sn_cluster *sn_cluster_new_on(sn_transport *t, const char *endpoint, const sn_opts *o,
                              struct ev_loop *loop, const char *name, sn_log *log,
                              const sn_cluster_hooks *hooks, int *err);
/* sn_cluster_destroy: closes every connection (linger at most 1 s); NULL is fine. Loop
 * thread. */
void sn_cluster_destroy(sn_cluster **cp);

/* sn_cluster_leave: tells every peer this node leaves (a clean leave on SIGTERM). Loop
 * thread. */
void sn_cluster_leave(sn_cluster *c);
/* sn_cluster_flush: sends the frames other threads queued. Loop thread (the node's wake). */
void sn_cluster_flush(sn_cluster *c);
/* sn_cluster_poll: flushes, then handles every frame received. Loop thread. */
void sn_cluster_poll(sn_cluster *c);
/* sn_cluster_tick: one heartbeat period: heartbeats, failure detection, forgetting, seeds,
 * registry, timeouts. Loop thread. */
void sn_cluster_tick(sn_cluster *c);

/* sn_cluster_send: queues a message for node (mode and stage as the router chose), from
 * src_actor of src_stage; reply_rid non-NULL asks for a reply, which comes back to that
 * handler of src_actor (or nil and "node down" / "timeout"). Any thread. SN_OK, SN_ENOENT
 * (node unknown or not alive), SN_EFULL (its queue is full), SN_ENOMEM. */
int sn_cluster_send(sn_cluster *c, const char *node, int mode, const char *stage,
                    const char *msg, const char *reply_rid, uint64_t src_actor,
                    const char *src_stage, const void *payload, size_t len);
/* sn_cluster_reply: answers m (a message from another node that asked for a reply): the
 * snapshot payload, or status != 0 (an sn_wire_status) with text. Any thread. */
void sn_cluster_reply(sn_cluster *c, const sn_msg *m, uint64_t from_actor, const char *stage,
                      int status, const char *text, const void *payload, size_t len);

/* sn_cluster_knows / sn_cluster_sent_code: the sender side of the function cache: whether
 * node holds the bytecode of hash because we sent it before (to this incarnation), and the
 * record that we send it now. Any thread; never waits behind network I/O. */
int sn_cluster_knows(sn_cluster *c, const char *node, const unsigned char hash[16]);
void sn_cluster_sent_code(sn_cluster *c, const char *node, const unsigned char hash[16]);

/* Cluster-wide ordered locks. sn_cluster_lock_home: 1 and the name of the lock's home node
 * when it is another node (rendezvous hashing over the alive members), 0 when it is this
 * node. sn_cluster_lock_send: queues op for the home; an ACQUIRE ends in the grant, or in
 * (nil, why) for handler when the home refuses it or dies. sn_cluster_lock_grant: at the
 * home, the grant for a requester on another node. Any thread. */
int sn_cluster_lock_home(sn_cluster *c, const char *lock, char *home, size_t cap);
/* sn_cluster_settled: 1 when this node knows where every alive member stands: it has met a
 * member if it was given seeds, and holds the registry of each alive member; 0 while not
 * (a joining node; a member whose registry has not come yet). A built-in stage's home is
 * chosen by hashing the members only when settled (docs/stages.md). Any thread. */
int sn_cluster_settled(sn_cluster *c);
int sn_cluster_lock_send(sn_cluster *c, const char *home, sn_lock_op op, const char *lock,
                         uint64_t actor, const char *handler, const void *data, size_t len,
                         double ms);
void sn_cluster_lock_grant(sn_cluster *c, const char *node, uint64_t actor, const char *handler,
                           const void *data, size_t len);

/* sn_cluster_code_miss: a message from node referred to bytecode (by hash) that this node
 * no longer holds: tell node, which then sends that bytecode in full again. Any thread. */
void sn_cluster_code_miss(sn_cluster *c, const char *node, const unsigned char hash[16]);

/* sn_cluster_registry_changed: this node's stages changed: announce them. Any thread. */
void sn_cluster_registry_changed(sn_cluster *c);

/* For the status view. Any thread. */
uint64_t sn_cluster_incarnation(const sn_cluster *c);
const char *sn_cluster_cluster(const sn_cluster *c);
const char *sn_cluster_endpoint(const sn_cluster *c);

/* sn_cluster_members: a snapshot (sn_member_view: sn_members.h) of the other members in *out (caller frees it with
 * sn_cluster_members_free); how many. */
size_t sn_cluster_members(sn_cluster *c, sn_member_view **out);
void sn_cluster_members_free(sn_member_view *v, size_t n);
/* sn_cluster_peer_counts: how many peers are alive, suspect, down, left. */
void sn_cluster_peer_counts(sn_cluster *c, size_t counts[4]);

/* Wire counters. */
typedef struct sn_cluster_stats {
    uint64_t bytes_in, bytes_out, frames_in, frames_out, seq_gaps, seq_dups, refused;
    uint64_t refused_by[SN_GATE_REASONS]; /* by sn_gate_reason: stage_wire_refused_total */
} sn_cluster_stats;
void sn_cluster_stats_get(sn_cluster *c, sn_cluster_stats *s);

#endif
