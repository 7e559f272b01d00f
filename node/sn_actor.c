/* sn_actor: an actor owns its lua_State and the host record the state points back to. */
#include "sn_actor.h"
#include "lua_state.h"
#include "sn_error.h"

#include <lua.h>
#include <stdlib.h>
#include <string.h>

struct sn_actor {
    char *stage;
    char *name;
    char *node_name;
    sn_lua_host host;
    lua_State *L;
};

sn_actor *sn_actor_new(const sn_actor_conf *conf, int *err)
{
    sn_actor *a = calloc(1, sizeof *a);
    if (!a || !(a->stage = strdup(conf->stage)) || !(a->name = strdup(conf->name)) ||
        !(a->node_name = strdup(conf->node_name))) {
        sn_log_write(conf->log, SN_LOG_ERROR, conf->name, "cannot create actor: %s",
                     sn_strerror(SN_ENOMEM));
        sn_actor_destroy(&a);
        *err = SN_ENOMEM;
        return NULL;
    }
    a->host = (sn_lua_host){
        .log = conf->log,
        .who = a->name,
        .node_name = a->node_name,
        .start = conf->start,
        .args = conf->args,
        .nargs = conf->nargs,
        .script = conf->script,
    };
    a->L = sn_lua_new(&a->host);
    if (!a->L) {
        sn_actor_destroy(&a);
        *err = SN_ENOMEM;
        return NULL;
    }
    int rc = sn_lua_run_preload(a->L, conf->preload, conf->preload_required);
    if (rc != SN_OK) {
        sn_actor_destroy(&a);
        *err = rc;
        return NULL;
    }
    *err = SN_OK;
    return a;
}

void sn_actor_destroy(sn_actor **ap)
{
    if (!ap || !*ap)
        return;
    sn_actor *a = *ap;
    if (a->L)
        lua_close(a->L);
    free(a->stage);
    free(a->name);
    free(a->node_name);
    free(a);
    *ap = NULL;
}

int sn_actor_run_file(sn_actor *a, const char *path)
{
    return sn_lua_run_file(a->L, path);
}

const char *sn_actor_name(const sn_actor *a)
{
    return a->name;
}
