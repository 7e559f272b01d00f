/* lua_builtin: the function stage.builtin[name] travels as a snapshot into a new actor of
 * stage name, exactly the path of stage.spawn(name, fn). */
#include "lua_builtin.h"
#include "lua_host.h"
#include "sn_error.h"
#include "sn_log.h"
#include "sn_node.h"
#include "sn_router.h"
#include "sn_snapshot.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int is_builtin(const char *stage)
{
    return strcmp(stage, "index") == 0 || strcmp(stage, "route") == 0 ||
           strcmp(stage, "ticket") == 0;
}

int sn_builtin_ensure(lua_State *L, const char *stage)
{
    sn_lua_host *host = sn_lua_host_of(L);
    if (!host->node || !stage || !is_builtin(stage))
        return 0;
    sn_router *r = sn_node_router(host->node);
    char nodes[1][SN_ROUTER_NODE_MAX];
    if (sn_router_count(r, stage) || sn_router_nodes(r, stage, nodes, NULL, 1))
        return 0;
    /* Two actors may both find none: the node-wide once key picks one to spawn; the other
     * waits (bounded) until the spawn shows in the router, so its message finds it. */
    char key[64];
    snprintf(key, sizeof key, "stage-node:builtin:%s", stage);
    int first = 0;
    if (sn_node_once(host->node, key, 0, &first) != SN_OK)
        return -1;
    if (!first) {
        for (int i = 0; i < 1000 && !sn_router_count(r, stage); i++)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
        return 0;
    }
    int top = lua_gettop(L);
    if (lua_getglobal(L, "stage") != LUA_TTABLE || lua_getfield(L, -1, "builtin") != LUA_TTABLE ||
        lua_getfield(L, -1, stage) != LUA_TFUNCTION) {
        lua_settop(L, top);
        sn_node_once(host->node, key, 1, &first);
        return 0;
    }
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    sn_buf buf;
    sn_buf_init(&buf);
    char err[256];
    int rc = sn_snapshot_encode(L, lua_gettop(L), 1, &o, &buf, err, sizeof err);
    lua_settop(L, top);
    uint64_t id = 0;
    if (rc == SN_OK)
        rc = sn_node_spawn(host->node, stage, NULL, buf.data, buf.len, &id);
    else
        sn_log_write(host->log, SN_LOG_ERROR, host->who, "built-in stage '%s': %s", stage, err);
    sn_buf_fini(&buf);
    if (rc != SN_OK) {
        sn_node_once(host->node, key, 1, &first); /* the next use tries again */
        sn_log_write(host->log, SN_LOG_ERROR, host->who, "built-in stage '%s' not started: %s",
                     stage, sn_strerror(rc));
        return -1;
    }
    sn_log_write(host->log, SN_LOG_INFO, host->who, "built-in stage '%s' started on this node "
                 "(actor %llu)", stage, (unsigned long long)id);
    return 1;
}
