/* sn_node: one stage-node process: settings, the event loop (I/O and timers only), the
 * worker pool, the actors, the jobs and the starred store. Everything a callback needs is
 * reached from the node, never from a global. */
#ifndef SN_NODE_H
#define SN_NODE_H

#include "sn_jobs.h"
#include "sn_limits.h"
#include "sn_locks.h"
#include "sn_log.h"
#include "sn_msg.h"
#include "sn_opts.h"
#include "sn_router.h"
#include "sn_shared.h"
#include "sn_wire.h"

#include <stddef.h>
#include <stdint.h>

struct sn_cluster;
struct sn_fcache;

typedef struct sn_node sn_node;

/* sn_node_new: a node for the settings o (which must outlive it), logging to log.
 * NULL on failure (logged). */
sn_node *sn_node_new(const sn_opts *o, sn_log *log);
/* sn_node_destroy: stops and frees everything; NULL is fine; nulls *np. Main thread. */
void sn_node_destroy(sn_node **np);

/* sn_node_run: starts the actors, runs the loop until nothing can happen any more (no
 * queued message, no job, no timer), and returns the process exit status: 0, or 1 when the
 * standalone script failed at top level. Main thread. */
int sn_node_run(sn_node *n);

/* ---- for bindings and tasks; any thread ---- */

sn_log *sn_node_log(sn_node *n);
sn_shared *sn_node_shared(sn_node *n);
sn_router *sn_node_router(sn_node *n);
const char *sn_node_name(sn_node *n);
/* sn_node_package: the i-th folder of the package path (--package; default "scripts"), or
 * NULL past the last. */
const char *sn_node_package(sn_node *n, int i);
/* sn_node_next_id: a new number, unique in this node (handles, jobs). */
uint64_t sn_node_next_id(sn_node *n);

/* sn_node_submit: runs job on the pool (serialized by its key); consumes job. */
void sn_node_submit(sn_node *n, sn_job *job);
/* sn_node_job_ended: a run of job ended. rerun_ms > 0 runs it again after that many ms;
 * otherwise the job is destroyed. Consumes job. */
void sn_node_job_ended(sn_node *n, sn_job *job, double rerun_ms);

/* sn_node_post: queues m for actor id. SN_OK (m consumed), SN_ENOENT (no such actor),
 * SN_EFULL (mailbox full and not force), SN_ENOMEM: then the caller still owns m. */
int sn_node_post(sn_node *n, uint64_t actor, sn_msg *m, int force);
/* sn_node_msg_done: the worker running an actor finished one message. */
void sn_node_msg_done(sn_node *n);
/* sn_node_reschedule: the actor whose task is t still has mail after its batch. */
void sn_node_reschedule(sn_node *n, sn_task *t);
/* sn_node_actor_failed: actor (of stage) failed for good (logged already): it leaves the
 * router. Returns 1 when it was the standalone script: the node then stops, exit status 1. */
int sn_node_actor_failed(sn_node *n, uint64_t actor, const char *stage);
/* sn_node_mailbox: the length and peak length of actor's mailbox. SN_OK or SN_ENOENT. */
int sn_node_mailbox(sn_node *n, uint64_t actor, size_t *len, size_t *peak);
/* ---- the cluster's side ---- */

/* sn_node_fcache: the bytecode received from other nodes, by hash (the function cache). */
struct sn_fcache *sn_node_fcache(sn_node *n);
/* sn_node_cluster: the cluster, or NULL on a standalone node. */
struct sn_cluster *sn_node_cluster(sn_node *n);
/* sn_node_wake: makes the loop thread run its commands and flush the cluster's frames. */
void sn_node_wake(sn_node *n);
/* sn_node_deliver: a message from another node, to this node's actors of its stage as its
 * mode says; bytecode in it is loaded only when trusted. Returns an sn_wire_status. */
int sn_node_deliver(sn_node *n, const sn_wire_message *m, int trusted);
/* sn_node_local_stages: this node's stages and actor counts into v (names held in names),
 * at most cap; returns how many. */
size_t sn_node_local_stages(sn_node *n, char (*names)[256], sn_wire_stage *v, size_t cap);
/* sn_node_status_self: this node's own status view as JSON (caller frees). */
int sn_node_status_self(sn_node *n, char **json, size_t *len);

/* ---- counting (metrics) ---- */
typedef enum sn_count {
    SN_COUNT_IN,      /* a message handled; label: none */
    SN_COUNT_OUT,     /* a message sent */
    SN_COUNT_DROP,    /* a message dropped; label: the reason */
    SN_COUNT_ERROR,   /* an error; label: chunk|handler|timer|job|thread */
    SN_COUNT_KILL,    /* a budget or memory kill; label: budget|memory */
    SN_COUNT_RESTART, /* an actor restarted */
    SN_COUNT_FAIL     /* an actor failed for good */
} sn_count;
/* sn_node_count: one event of stage. Any thread. */
void sn_node_count(sn_node *n, sn_count what, const char *stage, const char *label);
/* sn_node_observe: a handler of stage took seconds. Any thread. */
void sn_node_observe(sn_node *n, const char *stage, double seconds);

/* sn_node_limits: the governor settings of stage. */
sn_limits sn_node_limits(sn_node *n, const char *stage);

/* sn_node_spawn: a new actor of stage on this node, running the file script, or (script
 * NULL) the snapshot payload[0..len) of a function and its arguments. Its state is made and
 * preloaded on the calling thread; its top level then runs on a worker. *id is its id.
 * SN_OK, or SN_ENOMEM / SN_ENOENT / SN_ELUA (logged). */
int sn_node_spawn(sn_node *n, const char *stage, const char *script, const void *payload,
                  size_t len, uint64_t *id);

/* sn_node_timer_arm: after ms, actor gets an SN_MSG_TIMER message with handle task.
 * sn_node_timer_cancel: the timer task will not fire (nothing when it already did). */
void sn_node_timer_arm(sn_node *n, uint64_t task, uint64_t actor, double ms);
void sn_node_timer_cancel(sn_node *n, uint64_t task);

/* sn_node_lock: the ordered locks, cluster-wide: each lock has a home node (rendezvous
 * hashing of its name over the alive members); a lock whose home is another node is asked
 * for over the wire. ACQUIRE queues (actor, cb, data) and delivers the grant as a message
 * for cb when it comes; EXTEND moves the lease end to ms from now; RELEASE lets go and
 * grants the next waiter. SN_OK (for another home: queued), SN_ENOENT (not the holder),
 * SN_EFULL, SN_ENOMEM. */
int sn_node_lock(sn_node *n, sn_lock_op op, const char *name, uint64_t actor, const char *cb,
                 const void *data, size_t len, double ms);

/* sn_node_lock_at_home: the same, for this node as the lock's home, from a requester on
 * node ("" = this node). The cluster calls it for requests from other nodes. */
int sn_node_lock_at_home(sn_node *n, sn_lock_op op, const char *name, const char *node,
                         uint64_t actor, const char *cb, const void *data, size_t len, double ms);

/* sn_node_once: stage.once's node-wide keys: 1 the first time key is seen, 0 after; with
 * forget, removes key and returns 0. */
int sn_node_once(sn_node *n, const char *key, int forget);

#endif
