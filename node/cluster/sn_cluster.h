/* sn_cluster: this node's place in the cluster: ZeroMQ sockets driven by the libev loop,
 * the handshake, heartbeats and failure detection, membership gossip, the registry of which
 * stages run where, and the frames that carry messages and replies between nodes.
 * Everything on the sockets happens on the loop thread; other threads queue frames. */
#ifndef SN_CLUSTER_H
#define SN_CLUSTER_H

#include "sn_log.h"
#include "sn_msg.h"
#include "sn_opts.h"
#include "sn_status.h"

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct sn_node;
typedef struct sn_cluster sn_cluster;

/* sn_cluster_new: binds --listen (if any) and starts joining the --join seeds. Loop thread.
 * NULL with *err (SN_EIO: cannot bind, logged; SN_EINVAL: bad settings, logged). */
sn_cluster *sn_cluster_new(struct sn_node *node, const sn_opts *o, struct ev_loop *loop,
                           const char *name, sn_log *log, int *err);
/* sn_cluster_destroy: closes every socket (linger at most 1 s); NULL is fine. Loop thread. */
void sn_cluster_destroy(sn_cluster **cp);

/* sn_cluster_leave: tells every peer this node leaves (a clean leave on SIGTERM). Loop
 * thread. */
void sn_cluster_leave(sn_cluster *c);
/* sn_cluster_flush: sends the frames other threads queued. Loop thread (the node's wake). */
void sn_cluster_flush(sn_cluster *c);

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
 * record that we send it now. Any thread. */
int sn_cluster_knows(sn_cluster *c, const char *node, const unsigned char hash[16]);
void sn_cluster_sent_code(sn_cluster *c, const char *node, const unsigned char hash[16]);

/* Cluster-wide ordered locks. sn_cluster_lock_home: 1 and the name of the lock's home node
 * when it is another node (rendezvous hashing over the alive members), 0 when it is this
 * node. sn_cluster_lock_send: queues the request (op: an sn_lock_op) for the home.
 * sn_cluster_lock_grant: at the home, the grant for a requester on another node. Any thread. */
int sn_cluster_lock_home(sn_cluster *c, const char *lock, char *home, size_t cap);
int sn_cluster_lock_send(sn_cluster *c, const char *home, int op, const char *lock,
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
/* sn_cluster_members: a snapshot of the other members (caller frees it with
 * sn_cluster_members_free), and of the status views they last sent. */
size_t sn_cluster_members(sn_cluster *c, sn_status_member **members, sn_status_peer **peers);
void sn_cluster_members_free(sn_status_member *members, sn_status_peer *peers, size_t n);
/* sn_cluster_peer_counts: how many peers are alive, suspect, down, left. */
void sn_cluster_peer_counts(sn_cluster *c, size_t counts[4]);

/* Wire counters. */
typedef struct sn_cluster_stats {
    uint64_t bytes_in, bytes_out, frames_in, frames_out, seq_gaps, seq_dups, refused;
} sn_cluster_stats;
void sn_cluster_stats_get(sn_cluster *c, sn_cluster_stats *s);

#endif
