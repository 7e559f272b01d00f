/* sn_actor: the actor record; its state is made by lua_state, its mail run by lua_actor. */
#include "sn_actor.h"
#include "lua_state.h"
#include "sn_error.h"
#include "sn_node.h"

#include <lua.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct sn_actor {
    sn_task task; /* first: the run queue links actors through it */
    atomic_int refs;
    uint64_t id;
    char *stage;
    char *name;
    char *node_name;
    sn_mailbox *mailbox;
    sn_lua_host host;
    lua_State *L;
};

sn_actor *sn_actor_new(const sn_actor_conf *conf, int *err)
{
    sn_actor *a = calloc(1, sizeof *a);
    if (!a || !(a->stage = strdup(conf->stage)) || !(a->name = strdup(conf->name)) ||
        !(a->node_name = strdup(conf->node_name)) ||
        !(a->mailbox = sn_mailbox_new(conf->mailbox_cap))) {
        sn_log_write(conf->log, SN_LOG_ERROR, conf->name, "cannot create actor: %s",
                     sn_strerror(SN_ENOMEM));
        if (a)
            atomic_init(&a->refs, 1);
        sn_actor_release(&a);
        *err = SN_ENOMEM;
        return NULL;
    }
    atomic_init(&a->refs, 1);
    a->id = conf->id;
    a->task.run = conf->run;
    a->host = (sn_lua_host){
        .log = conf->log,
        .who = a->name,
        .stage = a->stage,
        .node_name = a->node_name,
        .start = conf->start,
        .args = conf->args,
        .nargs = conf->nargs,
        .script = conf->script,
        .node = conf->node,
        .shared = conf->node ? sn_node_shared(conf->node) : NULL,
        .actor = a->id,
    };
    a->L = sn_lua_new(&a->host);
    if (!a->L) {
        sn_actor_release(&a);
        *err = SN_ENOMEM;
        return NULL;
    }
    int rc = sn_lua_run_preload(a->L, conf->preload, conf->preload_required);
    if (rc != SN_OK) {
        sn_actor_release(&a);
        *err = rc;
        return NULL;
    }
    *err = SN_OK;
    return a;
}

void sn_actor_grab(sn_actor *a)
{
    atomic_fetch_add(&a->refs, 1);
}

void sn_actor_release(sn_actor **ap)
{
    if (!ap || !*ap)
        return;
    sn_actor *a = *ap;
    *ap = NULL;
    if (atomic_fetch_sub(&a->refs, 1) != 1)
        return;
    if (a->L)
        lua_close(a->L);
    sn_mailbox_destroy(&a->mailbox);
    free(a->stage);
    free(a->name);
    free(a->node_name);
    free(a);
}

uint64_t sn_actor_id(const sn_actor *a)
{
    return a->id;
}

const char *sn_actor_name(const sn_actor *a)
{
    return a->name;
}

const char *sn_actor_stage(const sn_actor *a)
{
    return a->stage;
}

sn_mailbox *sn_actor_mailbox(sn_actor *a)
{
    return a->mailbox;
}

lua_State *sn_actor_state(sn_actor *a)
{
    return a->L;
}

sn_task *sn_actor_task(sn_actor *a)
{
    return &a->task;
}

sn_actor *sn_actor_of_task(sn_task *t)
{
    return (sn_actor *)((char *)t - offsetof(sn_actor, task));
}
