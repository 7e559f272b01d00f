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

static sn_lua_host *timer_host(lua_State *L)
{
    sn_lua_host *host = sn_lua_host_of(L);
    if (!host->node || !host->actor || host->job)
        luaL_error(L, "stage.addtask: only an actor can arm a timer");
    return host;
}

/* Arms fn (at index fn, its arguments after it up to the top) after ms; pushes the handle. */
static void arm_new(lua_State *L, sn_lua_host *host, double ms, int fn)
{
    int top = lua_gettop(L);
    uint64_t id = sn_node_next_id(host->node);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_TASKS);
    lua_pushinteger(L, (lua_Integer)id);
    lua_createtable(L, top - fn + 1, 1);
    for (int i = fn; i <= top; i++) {
        lua_pushvalue(L, i);
        lua_rawseti(L, -2, i - fn + 1);
    }
    lua_pushinteger(L, top - fn + 1);
    lua_setfield(L, -2, "n");
    lua_rawset(L, -3);
    lua_pop(L, 1);
    sn_node_timer_arm(host->node, id, host->actor, ms);
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, (lua_Integer)id);
    lua_setfield(L, -2, "id");
}

/* stage.addtask(task, nil | ms [, fn] | fn): cancels, re-arms after ms (a new timer id,
 * written back into a table handle, so that a run already queued under the old id is
 * dropped), and/or replaces the function (its arguments stay). True when the task was
 * armed by this actor and still pending, else false. */
static int change_task(lua_State *L, sn_lua_host *host)
{
    lua_Integer id = task_id(L, 1);
    int has_second = !lua_isnone(L, 2);
    lua_settop(L, 3);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_TASKS);
    int tasks = lua_gettop(L);
    lua_pushinteger(L, id);
    if (lua_rawget(L, tasks) != LUA_TTABLE) { /* not armed by this actor, or over */
        lua_pushboolean(L, 0);
        return 1;
    }
    int entry = lua_gettop(L);
    int fn = 0;
    if (!has_second) { /* only asks whether it is pending */
        lua_pushboolean(L, 1);
        return 1;
    }
    if (lua_isnil(L, 2)) {
        lua_pushinteger(L, id);
        lua_pushnil(L);
        lua_rawset(L, tasks);
        sn_node_timer_cancel(host->node, (uint64_t)id);
        lua_pushboolean(L, 1);
        return 1;
    }
    if (lua_type(L, 2) == LUA_TNUMBER) {
        lua_Number ms = lua_tonumber(L, 2);
        luaL_argcheck(L, ms >= 0, 2, "a delay in ms, not negative");
        if (!lua_isnoneornil(L, 3)) {
            luaL_checktype(L, 3, LUA_TFUNCTION);
            fn = 3;
        }
        uint64_t nid = sn_node_next_id(host->node);
        sn_node_timer_cancel(host->node, (uint64_t)id);
        lua_pushinteger(L, id);
        lua_pushnil(L);
        lua_rawset(L, tasks);
        lua_pushinteger(L, (lua_Integer)nid);
        lua_pushvalue(L, entry);
        lua_rawset(L, tasks);
        if (lua_istable(L, 1)) {
            lua_pushinteger(L, (lua_Integer)nid);
            lua_setfield(L, 1, "id");
        }
        sn_node_timer_arm(host->node, nid, host->actor, ms);
    } else {
        luaL_argcheck(L, lua_isfunction(L, 2), 2, "nil, a delay in ms, or a function");
        fn = 2;
    }
    if (fn) {
        lua_pushvalue(L, fn);
        lua_rawseti(L, entry, 1);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* stage.addtask(ms, fn, ...), stage.addtask(fn, ...) (ms = 0), stage.addtask(task, ...). */
int sn_lua_timer_lua(lua_State *L)
{
    sn_lua_host *host = timer_host(L);
    if (lua_istable(L, 1) || (lua_gettop(L) >= 2 && lua_isinteger(L, 1) && !lua_isfunction(L, 2)))
        return change_task(L, host);
    if (lua_isfunction(L, 1)) {
        arm_new(L, host, 0, 1);
        return 1;
    }
    lua_Number ms = luaL_checknumber(L, 1);
    luaL_argcheck(L, ms >= 0, 1, "a delay in ms, not negative");
    luaL_checktype(L, 2, LUA_TFUNCTION);
    arm_new(L, host, ms, 2);
    return 1;
}

int sn_lua_timer_idle(lua_State *L, int fn)
{
    sn_lua_host *host = sn_lua_host_of(L);
    if (!host->node || !host->actor || host->job)
        return 0;
    lua_pushvalue(L, fn);
    arm_new(L, host, 0, lua_gettop(L));
    lua_pop(L, 2);
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
