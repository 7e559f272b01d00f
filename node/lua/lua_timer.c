/* lua_timer: the loop thread only counts time; the task runs as a message in its actor, so it
 * never overlaps the actor's handlers. */
#include "lua_timer.h"
#include "lua_host.h"
#include "sn_error.h"
#include "sn_node.h"

#include <lauxlib.h>

static const char K_TASKS = 0; /* id -> {fn, args..., n} */

void sn_lua_timer_open(lua_State *L)
{
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_TASKS);
}

static lua_Integer task_id(lua_State *L, int idx)
{
    if (lua_istable(L, idx)) {
        lua_getfield(L, idx, "id");
        lua_Integer id = lua_tointeger(L, -1);
        lua_pop(L, 1);
        return id;
    }
    return luaL_checkinteger(L, idx);
}

int sn_lua_timer_lua(lua_State *L)
{
    sn_lua_host *host = sn_lua_host_of(L);
    if (!host->node || !host->actor || host->job)
        return luaL_error(L, "stage.addtask: only an actor can arm a timer");
    if (lua_gettop(L) >= 2 && lua_isnil(L, 2)) { /* cancel */
        lua_Integer id = task_id(L, 1);
        lua_rawgetp(L, LUA_REGISTRYINDEX, &K_TASKS);
        lua_pushinteger(L, id);
        if (lua_rawget(L, -2) == LUA_TNIL) /* not armed by this actor: not ours to cancel */
            return 0;
        lua_pushinteger(L, id);
        lua_pushnil(L);
        lua_rawset(L, -4);
        sn_node_timer_cancel(host->node, (uint64_t)id);
        return 0;
    }
    lua_Number ms = luaL_checknumber(L, 1);
    luaL_argcheck(L, ms >= 0, 1, "a delay in ms, not negative");
    luaL_checktype(L, 2, LUA_TFUNCTION);
    int top = lua_gettop(L);
    uint64_t id = sn_node_next_id(host->node);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_TASKS);
    lua_pushinteger(L, (lua_Integer)id);
    lua_createtable(L, top - 1, 1);
    for (int i = 2; i <= top; i++) {
        lua_pushvalue(L, i);
        lua_rawseti(L, -2, i - 1);
    }
    lua_pushinteger(L, top - 1);
    lua_setfield(L, -2, "n");
    lua_rawset(L, -3);
    sn_node_timer_arm(host->node, id, host->actor, ms);
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, (lua_Integer)id);
    lua_setfield(L, -2, "id");
    return 1;
}

void sn_lua_timer_fire(lua_State *L, uint64_t task)
{
    sn_lua_host *host = sn_lua_host_of(L);
    int base = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_TASKS);
    int tasks = base + 1;
    lua_pushinteger(L, (lua_Integer)task);
    if (lua_rawget(L, tasks) != LUA_TTABLE) { /* cancelled */
        lua_settop(L, base);
        return;
    }
    int entry = base + 2;
    lua_getfield(L, entry, "n");
    int n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_checkstack(L, n + 4, "timer arguments");
    for (int i = 1; i <= n; i++)
        lua_rawgeti(L, entry, i);
    double again = 0;
    if (sn_lua_pcall(L, n - 1, 1, "timer") == SN_OK && lua_type(L, -1) == LUA_TNUMBER)
        again = lua_tonumber(L, -1);
    lua_pushinteger(L, (lua_Integer)task);
    int alive = lua_rawget(L, tasks) == LUA_TTABLE; /* not cancelled by its own run */
    lua_pop(L, 1);
    if (again > 0 && alive) {
        sn_node_timer_arm(host->node, task, host->actor, again);
    } else {
        lua_pushinteger(L, (lua_Integer)task);
        lua_pushnil(L);
        lua_rawset(L, tasks);
    }
    lua_settop(L, base);
}
