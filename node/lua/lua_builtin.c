/* lua_builtin: the home is decided in the runtime (sn_builtin), the same for every sender;
 * here only the signal is pointed at it. */
#include "lua_builtin.h"
#include "lua_host.h"
#include "sn_builtin.h"
#include "sn_error.h"
#include "sn_opts.h"

#include <stdlib.h>
#include <string.h>

void sn_lua_builtin_route(lua_State *L, const sn_target *t, sn_send *s, char *home, size_t cap)
{
    sn_lua_host *host = sn_lua_host_of(L);
    if (!host->node || (t->mode != SN_TARGET_ONE && t->mode != SN_TARGET_ALL) ||
        !sn_builtin_is(t->stage))
        return;
    if (sn_builtin_home(host->node, t->stage, home, cap)) {
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
