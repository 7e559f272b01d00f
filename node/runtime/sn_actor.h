/* sn_actor: one actor: an id, a stage id, a name, a bounded mailbox and its own VM.
 * It runs on one worker at a time (its mailbox's scheduled flag sees to that). Shared by
 * reference: the node's table holds one, every lookup takes one. */
#ifndef SN_ACTOR_H
#define SN_ACTOR_H

#include "sn_limits.h"
#include "sn_log.h"
#include "sn_mailbox.h"
#include "sn_sched.h"
#include "sn_vm.h"

#include <stdint.h>

typedef struct sn_actor sn_actor;
struct sn_node;

/* What an actor needs from its node; strings are copied. */
typedef struct sn_actor_conf {
    struct sn_node *node;
    uint64_t id;           /* unique in the node, never 0 */
    const char *stage;     /* stage id, e.g. "main" */
    const char *name;      /* actor name, e.g. "main" */
    const char *node_name; /* process.name */
    const char *preload;   /* folder of preload files */
    int preload_required;  /* 1 when the user named the folder: it must exist */
    const char *script;    /* process.args[0] */
    char *const *args;     /* process.args[1..] (by reference: argv lives long) */
    int nargs;
    double start;          /* node start, monotonic seconds */
    sn_limits limits;      /* the governor's settings for this actor */
    sn_log *log;
    const sn_vm_ops *vm;   /* makes, runs and closes its VM; outlives the actor */
    struct sn_stats *stats; /* where its stage's series live; NULL: none */
} sn_actor_conf;

/* sn_actor_new: creates the actor's VM and runs the preload files, on the calling
 * thread. Returns it with one reference, or NULL with *err (SN_ENOMEM, SN_ENOENT, SN_ELUA;
 * already logged). */
sn_actor *sn_actor_new(const sn_actor_conf *conf, int *err);
/* sn_actor_grab / sn_actor_release: take / drop a reference; the last release closes the
 * state and frees the actor. release takes NULL and nulls *ap. */
void sn_actor_grab(sn_actor *a);
void sn_actor_release(sn_actor **ap);

uint64_t sn_actor_id(const sn_actor *a);
const char *sn_actor_name(const sn_actor *a);
const char *sn_actor_stage(const sn_actor *a);
sn_mailbox *sn_actor_mailbox(sn_actor *a);
/* sn_actor_vm: the actor's VM (of vm->actor_open), or NULL after a failed reset; only for
 * the worker running the actor. */
void *sn_actor_vm(sn_actor *a);
const sn_limits *sn_actor_limits(const sn_actor *a);
struct sn_node *sn_actor_node(const sn_actor *a);

/* sn_actor_keep_start: keeps a copy of the actor's first message (its script or function),
 * to run again on restart. SN_OK or SN_ENOMEM. */
int sn_actor_keep_start(sn_actor *a, const sn_msg *start);
/* sn_actor_start_msg: that copy, or NULL. */
const sn_msg *sn_actor_start_msg(const sn_actor *a);

/* sn_actor_may_restart: after a failure at time now (monotonic s): 1 when the restart
 * policy allows one more restart (and records it), 0 when the actor must stay failed. */
int sn_actor_may_restart(sn_actor *a, double now, int *count);
/* sn_actor_reset: replaces the actor's VM by a fresh one (preload run again), on the
 * worker running the actor. SN_OK, or an error (logged; the old state is gone). */
int sn_actor_reset(sn_actor *a);

/* sn_actor_close: closes the actor's VM now (its finalizers run on the calling thread);
 * the actor stays, with no VM, until its last release. Idempotent. Only when no worker can
 * run the actor any more (the node stopping). */
void sn_actor_close(sn_actor *a);

/* sn_actor_counts: the actor's stage series (sn_stats.h), resolved when it was made; NULL
 * for an actor of no node. Any thread. */
const struct sn_stats_stage *sn_actor_counts(const sn_actor *a);
/* sn_actor_memory: bytes the actor's VM holds (vm->actor_memory). Any thread. */
size_t sn_actor_memory(const sn_actor *a);

/* sn_actor_fail / sn_actor_failed: marks the actor failed for good / tells. Any thread. */
void sn_actor_fail(sn_actor *a);
int sn_actor_failed(const sn_actor *a);
/* sn_actor_task: the run-queue entry of the actor. sn_actor_of_task: the reverse. */
sn_task *sn_actor_task(sn_actor *a);
sn_actor *sn_actor_of_task(sn_task *t);

#endif
