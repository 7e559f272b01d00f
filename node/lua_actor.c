/* lua_actor: one message at a time on the actor's state; every call into Lua is protected,
 * so a failing handler harms nothing but its own message. */
#include "lua_actor.h"
#include "lua_state.h"
#include "lua_thread.h"
#include "lua_timer.h"
#include "lua_waitfor.h"
#include "sn_actor.h"
#include "sn_error.h"
#include "sn_node.h"

#include "sn_snapshot.h"

#include <lua.h>

enum { BATCH = 64 }; /* messages per turn, so that no actor starves the others */

/* A spawned function as the actor's top level: fn(args...) from the snapshot. */
static int run_function(lua_State *L, const sn_msg *m)
{
    sn_lua_host *host = sn_lua_host_of(L);
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    o.trusted = 1;
    char err[256];
    int n = 0;
    if (sn_snapshot_decode(L, m->data, m->len, &o, &n, err, sizeof err) != SN_OK || n < 1) {
        sn_log_write(host->log, SN_LOG_ERROR, host->who, "cannot start: %s", err);
        return SN_EPROTO;
    }
    return sn_lua_pcall(L, n - 1, 0, "error in spawned function");
}

static void handle(sn_actor *a, lua_State *L, sn_msg *m)
{
    sn_lua_host *host = sn_lua_host_of(L);
    switch (m->kind) {
    case SN_MSG_START:
        if (sn_lua_run_file(L, m->data) != SN_OK)
            sn_node_actor_failed(host->node, sn_actor_id(a));
        break;
    case SN_MSG_START_FN:
        if (run_function(L, m) != SN_OK)
            sn_node_actor_failed(host->node, sn_actor_id(a));
        break;
    case SN_MSG_SIGNAL:
        sn_waitfor_dispatch(L, m);
        break;
    case SN_MSG_HANDLER:
        sn_waitfor_adopt(L, m);
        break;
    case SN_MSG_TIMER:
        sn_timer_fire(L, m->handle);
        break;
    case SN_MSG_THREAD:
    case SN_MSG_THREAD_END:
        sn_thread_deliver(L, m);
        break;
    default:
        sn_log_write(host->log, SN_LOG_DEBUG, host->who, "message of kind %d ignored",
                     (int)m->kind);
        break;
    }
    lua_settop(L, 0);
}

void sn_actor_run(sn_task *t, void *worker)
{
    (void)worker;
    sn_actor *a = sn_actor_of_task(t);
    lua_State *L = sn_actor_state(a);
    sn_node *n = sn_lua_host_of(L)->node;
    for (int i = 0; i < BATCH; i++) {
        sn_msg *m = sn_mailbox_pop(sn_actor_mailbox(a));
        if (!m)
            break;
        handle(a, L, m);
        sn_msg_destroy(&m);
        sn_node_msg_done(n);
    }
    if (sn_mailbox_yield(sn_actor_mailbox(a)))
        sn_node_reschedule(n, t);
    else
        sn_actor_release(&a); /* the run queue's reference */
}
