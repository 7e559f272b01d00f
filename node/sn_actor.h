/* sn_actor: one actor: an id, a stage id, a name, a bounded mailbox and its own lua_State.
 * It runs on one worker at a time (its mailbox's scheduled flag sees to that). Shared by
 * reference: the node's table holds one, every lookup takes one. */
#ifndef SN_ACTOR_H
#define SN_ACTOR_H

#include "sn_log.h"
#include "sn_mailbox.h"
#include "sn_sched.h"

#include <stdint.h>

typedef struct sn_actor sn_actor;
struct sn_node;
struct lua_State;

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
    size_t mailbox_cap;
    sn_log *log;
    void (*run)(sn_task *t, void *worker); /* runs a batch of the actor's mail */
} sn_actor_conf;

/* sn_actor_new: creates the actor's state and runs the preload files, on the calling
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
/* sn_actor_state: the actor's lua_State; only for the worker running the actor. */
struct lua_State *sn_actor_state(sn_actor *a);
/* sn_actor_task: the run-queue entry of the actor. sn_actor_of_task: the reverse. */
sn_task *sn_actor_task(sn_actor *a);
sn_actor *sn_actor_of_task(sn_task *t);

#endif
