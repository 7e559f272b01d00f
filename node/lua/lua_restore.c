/* lua_restore: jobs of every actor run in turn on a worker's one state, each in a fresh
 * environment (lua_env), but the library tables behind that environment are shared: a job
 * that replaced string.rep, or the string metatable's __index, changed them for every later
 * job. The tables are few and small (about 150 fields in all), so each is compared with
 * its saved copy and put back after every job; see docs/lua-api.md for what is covered. */
#include "lua_restore.h"
#include "lua_env.h"
#include "lua_state.h"

#include <lauxlib.h>
#include <string.h>

static const char K_SAVED = 0; /* array of {table, copy, metatable or false, mt copy} */

static const char *const LIBS[] = {"string", "table", "math",  "os",     "io",
                                   "coroutine", "utf8", "debug", "package", "stage",
                                   "thread", "process", "broker", NULL};

/* Pushes a shallow raw copy of the table at idx, with its number of fields under the
 * light userdata key &K_SAVED. */
static void push_copy(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_newtable(L);
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
        n++;
    }
    lua_pushinteger(L, n);
    lua_rawsetp(L, -2, &K_SAVED);
}

/* Appends {t, copy of t, mt or false, copy of mt or false} for the table at idx to the
 * list at list. */
static void save_one(lua_State *L, int list, int idx)
{
    idx = lua_absindex(L, idx);
    lua_createtable(L, 4, 0);
    lua_pushvalue(L, idx);
    lua_rawseti(L, -2, 1);
    if (lua_istable(L, idx)) {
        push_copy(L, idx);
        lua_rawseti(L, -2, 2);
    }
    if (lua_getmetatable(L, idx)) {
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, 3);
        push_copy(L, -1);
        lua_rawseti(L, -3, 4);
        lua_pop(L, 1);
    }
    lua_rawseti(L, list, (lua_Integer)lua_rawlen(L, list) + 1);
}

static int save(lua_State *L)
{
    sn_lua_lazy_open(L, NULL); /* the library as a job uses it: saved open, not as a stub */
    lua_newtable(L);
    int list = lua_gettop(L);
    for (int i = 0; LIBS[i]; i++) {
        if (lua_getglobal(L, LIBS[i]) == LUA_TTABLE) {
            save_one(L, list, -1);
            if (strcmp(LIBS[i], "package") == 0 && lua_getfield(L, -1, "loaded") == LUA_TTABLE)
                save_one(L, list, -1);
        }
        lua_settop(L, list);
    }
    lua_pushliteral(L, ""); /* the string metatable: {"", nil, mt, copy} */
    save_one(L, list, -1);
    lua_pop(L, 1);
    sn_env_job_begin(L); /* the metatable every job env shares (getmetatable(_G)) */
    lua_getmetatable(L, -1);
    save_one(L, list, -1);
    lua_pop(L, 2);
    sn_env_job_end(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_SAVED);
    return 0;
}

int sn_restore_save(lua_State *L)
{
    lua_pushcfunction(L, save);
    return lua_pcall(L, 0, 0, 0);
}

/* Makes the table at t equal, field by field, to the copy at c. One pass over t in the
 * usual case (nothing changed): the second, for removed fields, runs only when the first
 * found a difference or fewer fields than saved. */
static void restore_fields(lua_State *L, int t, int c)
{
    lua_Integer n = 0;
    int changed = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) { /* changed or added fields */
        n++;
        lua_pushvalue(L, -2);
        lua_rawget(L, c);
        if (!lua_rawequal(L, -1, -2)) {
            changed = 1;
            lua_pushvalue(L, -3);
            lua_insert(L, -2);
            lua_rawset(L, t); /* assigning an existing field (or nil) keeps next valid */
            lua_pop(L, 1);
        } else {
            lua_pop(L, 2);
        }
    }
    lua_rawgetp(L, c, &K_SAVED);
    int same = !changed && lua_tointeger(L, -1) == n;
    lua_pop(L, 1);
    if (same)
        return;
    lua_pushnil(L);
    while (lua_next(L, c)) { /* removed fields */
        if (lua_type(L, -2) == LUA_TLIGHTUSERDATA && lua_touserdata(L, -2) == &K_SAVED) {
            lua_pop(L, 1); /* the count, not a field */
            continue;
        }
        lua_pushvalue(L, -2);
        if (lua_rawget(L, t) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, t);
        } else {
            lua_pop(L, 2);
        }
    }
}

static int apply(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_SAVED) != LUA_TTABLE)
        return 0;
    int list = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, list, i);
        int e = lua_gettop(L);
        lua_rawgeti(L, e, 1); /* e+1: the table (or "" for the string metatable) */
        lua_rawgeti(L, e, 2); /* e+2: its copy */
        lua_rawgeti(L, e, 3); /* e+3: its metatable, or nil */
        lua_rawgeti(L, e, 4); /* e+4: the metatable's copy, or nil */
        if (lua_istable(L, e + 1))
            restore_fields(L, e + 1, e + 2);
        if (lua_getmetatable(L, e + 1)) {
            int same = lua_rawequal(L, -1, e + 3);
            lua_pop(L, 1);
            if (!same) {
                lua_pushvalue(L, e + 3);
                lua_setmetatable(L, e + 1);
            }
        } else if (!lua_isnil(L, e + 3)) {
            lua_pushvalue(L, e + 3);
            lua_setmetatable(L, e + 1);
        }
        if (lua_istable(L, e + 3))
            restore_fields(L, e + 3, e + 4);
        lua_settop(L, list);
    }
    lua_pop(L, 1);
    return 0;
}

int sn_restore_apply(lua_State *L)
{
    lua_pushcfunction(L, apply);
    return lua_pcall(L, 0, 0, 0);
}
