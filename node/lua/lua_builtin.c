/* lua_builtin: the home is decided in the runtime (sn_builtin), the same for every sender;
 * here only the signal is pointed at it. */
#include "lua_builtin.h"
#include "lua_host.h"
#include "sn_builtin.h"
#include "sn_cluster.h"
#include "sn_error.h"
#include "sn_log.h"
#include "sn_opts.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { SETTLE_WAIT_MS = 5000 }; /* a joining node's wait for the members' registries
                                   (--set builtin.settle_ms) */

void sn_lua_builtin_route(lua_State *L, const sn_target *t, sn_send *s, char *home, size_t cap)
{
    sn_lua_host *host = sn_lua_host_of(L);
    if (!host->node || (t->mode != SN_TARGET_ONE && t->mode != SN_TARGET_ALL) ||
        !sn_builtin_is(t->stage))
        return;
    int hashed = 0;
    int there = sn_builtin_home(host->node, t->stage, home, cap, &hashed);
    sn_cluster *c = host->ctx ? host->ctx->cluster : NULL;
    if (hashed && c && !sn_cluster_settled(c)) {
        /* No running home known, and this node is joining or lacks a member's registry: a
         * guess could start a second, empty home. This worker waits (bounded) until the
         * members' registries are in, then chooses; past the bound the send fails as to a
         * home that is gone, "node down" (no member is named ""). */
        long wait = sn_builtin_setting(host->node, "builtin.settle_ms", SETTLE_WAIT_MS);
        for (long i = 0; i < wait && !sn_cluster_settled(c); i++)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
        if (!sn_cluster_settled(c)) {
            sn_log_write(host->log, SN_LOG_WARN, host->who, "signal to built-in stage '%s': "
                         "this node does not know yet whether another node runs it (joining, "
                         "or a member's registry missing after %ld ms, --set "
                         "builtin.settle_ms): node down", t->stage, wait);
            home[0] = '\0';
            s->node = home;
            return;
        }
        there = sn_builtin_home(host->node, t->stage, home, cap, &hashed);
    }
    if (there) {
        s->node = home;
        return;
    }
    if (sn_builtin_start(host->node, t->stage) == SN_OK)
        s->scope = SN_SCOPE_LOCAL;
}

int sn_lua_builtin_setting(lua_State *L, const char *key)
{
    sn_lua_host *host = sn_lua_host_of(L);
    const sn_opts *o = host->node ? sn_node_opts(host->node) : NULL;
    size_t len = strlen(key);
    for (int i = o ? o->builtin.n - 1 : -1; i >= 0; i--) { /* the last one given wins */
        const char *v = o->builtin.item[i];
        if (strncmp(v, key, len) == 0 && v[len] == '=') {
            lua_pushinteger(L, (lua_Integer)strtoll(v + len + 1, NULL, 10));
            return 1;
        }
    }
    lua_pushnil(L);
    return 1;
}
