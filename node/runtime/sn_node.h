/* sn_node: one stage-node process: settings, the loop thread, the worker pool, the actors,
 * the jobs and the starred store. It runs actors through the sn_vm_ops and reaches other
 * nodes through the sn_node_remote hooks, both given by main. Everything a callback needs
 * is reached from the node, never from a global. */
#ifndef SN_NODE_H
#define SN_NODE_H

#include "sn_jobs.h"
#include "sn_limits.h"
#include "sn_locks.h"
#include "sn_log.h"
#include "sn_loop.h"
#include "sn_msg.h"
#include "sn_opts.h"
#include "sn_router.h"
#include "sn_shared.h"
#include "sn_stats.h"
#include "sn_vm.h"
#include "sn_wire.h"

#include <stddef.h>
#include <stdint.h>

struct ev_loop;

typedef struct sn_node sn_node;

/* sn_node_remote: how the node reaches other nodes (main wires the cluster in). Every hook
 * may be NULL: a standalone node. The loop hooks run on the loop thread; the others on any
 * thread. */
typedef struct sn_node_remote {
    void (*flush)(void *ud);          /* loop: send what other threads queued */
    void (*leave)(void *ud);          /* loop: SIGINT/SIGTERM: leave the cluster cleanly */
    void (*stages_changed)(void *ud); /* this node's stages changed: announce them */
    /* lock_home: 1 and the name of the lock's home when it is another node, else 0. */
    int (*lock_home)(void *ud, const char *lock, char *home, size_t cap);
    /* lock_send: the request for a lock whose home is another node: SN_OK or an error. */
    int (*lock_send)(void *ud, const char *home, sn_lock_op op, const char *lock,
                     uint64_t actor, const char *cb, const void *data, size_t len, double ms);
    /* lock_grant: at the home, the grant for a requester on another node. */
    void (*lock_grant)(void *ud, const char *node, uint64_t actor, const char *cb,
                       const void *data, size_t len);
    /* send: message m (its name, reply, src, src_stage and payload) to stage on node, mode
     * an sn_wire_mode. SN_OK, SN_ENOENT (node not alive), SN_EFULL, SN_ENOMEM. */
    int (*send)(void *ud, const char *node, int mode, const char *stage, const sn_msg *m,
                const void *payload, size_t len);
    /* status_self: this node's status view as JSON for peers (caller frees). */
    int (*status_self)(void *ud, char **json, size_t *len);
    void *ud;
} sn_node_remote;

/* sn_node_new: a node for the settings o (which must outlive it), logging to log, running
 * actors and jobs through vm (copied; vm->ud must outlive the node). Its workers start now.
 * NULL on failure (logged). */
sn_node *sn_node_new(const sn_opts *o, sn_log *log, const sn_vm_ops *vm);
/* sn_node_destroy: stops and frees everything; NULL is fine; nulls *np. Main thread, after
 * what main attached (remote, HTTP) stopped using the node. */
void sn_node_destroy(sn_node **np);

/* sn_node_loop: the node's libev loop, for what main attaches (the cluster's sockets). */
struct ev_loop *sn_node_loop(sn_node *n);
/* sn_node_cmdloop: the node's loop, for what main attaches that takes commands from workers
 * (sn_loop_send) and holds pending work (the curl driver). */
sn_loop *sn_node_cmdloop(sn_node *n);
/* sn_node_attach: the hooks to other nodes (copied); serve: keep running until SIGINT or
 * SIGTERM (a node with listeners). Main thread, before sn_node_run. */
void sn_node_attach(sn_node *n, const sn_node_remote *remote, int serve);

/* sn_node_run: starts the actors, runs the loop until nothing can happen any more (no
 * queued message, no job, no timer), stops the workers and returns the process exit status:
 * 0; 1 when the standalone script (or a preload file) failed at top level, or the actors
 * could not be made (out of memory); 2 when a start-up value proved bad (an --actor file or
 * the --preload folder cannot be read). Main thread. */
int sn_node_run(sn_node *n);
/* sn_node_stop: from now on new work is refused with SN_ECLOSED (posts, spawns, locks,
 * remote sends; jobs and timers are dropped); arms the shutdown guard (--set shutdown: past
 * it the process exits, logged); stops the watchdog and the workers (running tasks finish,
 * queued ones are dropped), then closes every actor's VM while the rest still stands.
 * After it no worker calls a hook. Idempotent. Main thread. */
void sn_node_stop(sn_node *n);
/* sn_node_exit: stage.exit: the node leaves its cluster (as on SIGTERM) and stops in order,
 * exit status 0 unless something failed before. SN_OK or SN_ENOMEM. Any thread. */
int sn_node_exit(sn_node *n);

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

/* sn_node_submit: runs job on the pool (serialized by its key); consumes job (destroyed
 * unrun once the node is stopping). */
void sn_node_submit(sn_node *n, sn_job *job);
/* sn_node_job_ended: a run of job ended. rerun_ms > 0 runs it again after that many ms;
 * otherwise the job is destroyed. Consumes job. */
void sn_node_job_ended(sn_node *n, sn_job *job, double rerun_ms);

/* sn_node_post: queues m for actor id. SN_OK (m consumed), SN_ENOENT (no such actor),
 * SN_EFULL (mailbox full and not force), SN_ECLOSED (the node is stopping), SN_ENOMEM: then
 * the caller still owns m. */
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
/* sn_node_cmd_loop: the loop thread's command queue and pending work (sn_loop), for parts
 * main attaches that own watchers (the broker). */
struct sn_loop *sn_node_cmd_loop(sn_node *n);
/* sn_node_actor_alive: 1 when actor exists and has not failed for good, else 0. */
int sn_node_actor_alive(sn_node *n, uint64_t actor);
/* sn_node_inbox: frames from other nodes addressed to stage go to fn(ud, payload, len) on the
 * receiving thread instead of to actors (an internal stage, e.g. the broker's). One inbox;
 * set before the node runs. fn returns SN_OK or an error code. */
void sn_node_inbox(sn_node *n, const char *stage, int (*fn)(void *ud, const void *p, size_t len),
                   void *ud);

/* ---- the cluster's side ---- */

/* sn_node_wake: makes the loop thread run its commands and flush the remote frames. */
void sn_node_wake(sn_node *n);
/* sn_node_remote_send: the remote send hook (SN_ENOENT when there is none). */
int sn_node_remote_send(sn_node *n, const char *node, int mode, const char *stage,
                        const sn_msg *m, const void *payload, size_t len);
/* sn_node_deliver: a message from another node, to this node's actors of its stage as its
 * mode says (sn_send_route, scope local); bytecode in it is loaded only when trusted.
 * SN_OK, SN_EFULL (every mailbox tried was full), SN_ENOENT (no such stage here),
 * SN_ENOMEM. */
int sn_node_deliver(sn_node *n, const sn_wire_message *m, int trusted);
/* sn_node_local_stages: this node's stages and actor counts into v (names held in names),
 * at most cap; returns how many. */
size_t sn_node_local_stages(sn_node *n, char (*names)[256], sn_wire_stage *v, size_t cap);
/* sn_node_status_self: this node's own status view as JSON (caller frees); SN_ENOTSUP when
 * main attached no status_self hook. */
int sn_node_status_self(sn_node *n, char **json, size_t *len);

/* ---- for the views (node/ops/sn_views.c); any thread ---- */

/* Per stage: actors (not failed), queued messages, and memory (VM heap + queued message
 * bytes, what the memory cap bounds), summed over the actors. */
typedef struct sn_node_stage_sum {
    char stage[256];
    uint64_t actors, depth, memory;
} sn_node_stage_sum;
/* sn_node_stage_sums: one entry per stage into *v (caller frees); returns how many (0 with
 * *v NULL on out of memory). */
size_t sn_node_stage_sums(sn_node *n, sn_node_stage_sum **v);

/* sn_node_stats: the node's counting (counters, metrics, last errors). sn_node_workers: its
 * worker threads. sn_node_uptime: seconds since it started. sn_node_opts: its settings. */
sn_stats *sn_node_stats(sn_node *n);
int sn_node_workers(sn_node *n);
double sn_node_uptime(sn_node *n);
const sn_opts *sn_node_opts(sn_node *n);

/* sn_node_limits: the governor settings of stage. */
sn_limits sn_node_limits(sn_node *n, const char *stage);

/* sn_node_spawn: a new actor of stage on this node, running the file script, or (script
 * NULL) the snapshot payload[0..len) of a function and its arguments. Its state is made and
 * preloaded on the calling thread; its top level then runs on a worker. *id is its id.
 * SN_OK, or SN_ENOMEM / SN_ENOENT / SN_ELUA (logged), SN_ECLOSED (the node is stopping). */
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

/* sn_node_home: 1 with home filled when the rendezvous home of key over the alive members
 * is another node, 0 when it is this node or there is no cluster (the locks' rule). */
int sn_node_home(sn_node *n, const char *key, char *home, size_t cap);
/* sn_node_lock_at_home: the same, for this node as the lock's home, from a requester on
 * node ("" = this node). The cluster calls it for requests from other nodes. */
int sn_node_lock_at_home(sn_node *n, sn_lock_op op, const char *name, const char *node,
                         uint64_t actor, const char *cb, const void *data, size_t len, double ms);

/* sn_node_once: stage.once's node-wide keys: SN_OK with *first 1 the first time key is seen,
 * 0 after; SN_ELIMIT when the node holds once_keys keys already (logged, rate-limited), or
 * SN_ENOMEM. With forget, removes key (SN_OK, *first 0). Any thread. */
int sn_node_once(sn_node *n, const char *key, int forget, int *first);
/* sn_node_once_keys: the once_keys limit (--set once_keys=N), for error messages. */
size_t sn_node_once_keys(sn_node *n);

#endif
