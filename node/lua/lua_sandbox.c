/* lua_sandbox: what a global name means in a sandboxed state.
 *
 * A name is private unless the _ENV[""] policy lists it. Policy names bypass the snapshots:
 * in a coroutine env they are forwarded live to the creator's env (and on up to the globals,
 * where they live raw). Starred names live in the process-wide store once it exists (on a
 * node); before that they are plain names. Private names are stored by lua_env, whose
 * snapshots coroutines (lua_coroutine) and jobs start from. */
#include "lua_sandbox.h"
#include "lua_coroutine.h"
#include "lua_env.h"
#include "lua_policy.h"
#include "lua_shared.h"

#include <lauxlib.h>
#include <string.h>

/* ---- the policy ------------------------------------------------------------------------- */

/* Adds the names of the list at idx to the policy, after checking all of them. */
static void policy_add(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    sn_policy_check(L, idx);
    lua_Integer n = luaL_len(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        const char *entry = lua_tostring(L, -1);
        int kind = sn_policy_add(L, entry);
        if (kind == SN_POLICY_NONE) {
            lua_pop(L, 1);
            continue;
        }
        const char *name = entry + (entry[0] == '*');
        if (kind == SN_POLICY_STARRED && sn_starred_enabled(L)) {
            /* The base env's value moves to the store, unless the store has one. */
            sn_env_push_base(L);
            lua_pushstring(L, name);
            if (lua_rawget(L, -2) != LUA_TNIL) {
                lua_pushstring(L, name);
                sn_starred_adopt(L, -1, -2);
                lua_pop(L, 2);
                lua_pushstring(L, name);
                lua_pushnil(L);
                lua_rawset(L, -3);
                lua_pop(L, 1);
            } else {
                lua_pop(L, 2);
            }
        }
        /* Coroutine envs may hold a private copy; from now on the name is live. */
        sn_coroutine_forget(L, name);
        lua_pop(L, 1);
    }
    lua_settop(L, idx);
}

int sn_sandbox_policy_kind(lua_State *L, const char *name)
{
    return sn_policy_kind(L, name);
}

/* ---- env metamethods -------------------------------------------------------------------- */

/* Handles the keys "" and "_SANDBOX"; returns 1 when it pushed a result. */
static int special_get(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING)
        return 0;
    size_t n;
    const char *s = lua_tolstring(L, 2, &n);
    if (n == 0)
        return sn_policy_push_list(L);
    if (n == 8 && memcmp(s, "_SANDBOX", 8) == 0) {
        lua_pushvalue(L, 1);
        return 1;
    }
    return 0;
}

/* __index(env, key); upvalue 1: the policy set */
static int env_index(lua_State *L)
{
    if (special_get(L))
        return 1;
    lua_settop(L, 2);
    lua_pushvalue(L, 2);
    int kind = lua_rawget(L, lua_upvalueindex(1)) == LUA_TNIL ? 0 : (int)lua_tointeger(L, 3);
    if (kind == SN_POLICY_STARRED && sn_starred_enabled(L))
        return sn_starred_get(L, 2);
    if (kind && sn_env_push_creator(L, 1) != LUA_TNIL) { /* 4: a coroutine's policy name */
        lua_pushvalue(L, 2);
        lua_gettable(L, 4); /* live, from the creator */
        return 1;
    }
    lua_settop(L, 2);
    sn_env_get(L, 1, 2);
    return 1;
}

/* __newindex(env, key, value); upvalue 1: the policy set */
static int env_newindex(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TSTRING && lua_rawlen(L, 2) == 0) {
        policy_add(L, 3);
        return 0;
    }
    lua_settop(L, 3);
    lua_pushvalue(L, 2);
    int kind = lua_rawget(L, lua_upvalueindex(1)) == LUA_TNIL ? 0 : (int)lua_tointeger(L, 4);
    lua_pop(L, 1);
    if (kind == SN_POLICY_STARRED && sn_starred_enabled(L)) {
        sn_starred_set(L, 2, 3);
        return 0;
    }
    if (kind && sn_env_push_creator(L, 1) != LUA_TNIL) { /* 4: a coroutine's policy name */
        lua_pushvalue(L, 2);
        lua_pushvalue(L, 3);
        lua_settable(L, 4);
        return 0;
    }
    lua_settop(L, 3);
    sn_env_set(L, 1, 2, 3);
    return 0;
}

/* __pairs(env): iterates the env's whole view (raw, frozen, and live policy names);
 * upvalue 1: the real next */
static int env_pairs(lua_State *L)
{
    lua_settop(L, 1);
    sn_env_push_view(L, 1);                        /* 2 */
    if (sn_env_push_creator(L, 1) == LUA_TTABLE) { /* 3: policy names, live */
        sn_policy_push_set(L);                     /* 4 */
        lua_pushnil(L);
        while (lua_next(L, 4)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_pushvalue(L, -1);
            lua_gettable(L, 3);
            lua_rawset(L, 2);
        }
    }
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 2);
    lua_pushnil(L);
    return 3;
}

/* ---- installation ----------------------------------------------------------------------- */

int sn_sandbox_open(lua_State *L)
{
    sn_policy_open(L);
    lua_createtable(L, 0, 3); /* the metamethods every env carries */
    sn_policy_push_set(L);
    lua_pushcclosure(L, env_index, 1);
    lua_setfield(L, -2, "__index");
    sn_policy_push_set(L);
    lua_pushcclosure(L, env_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_getglobal(L, "next");
    lua_pushcclosure(L, env_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    sn_env_open(L);
    sn_coroutine_open(L);
    return 0;
}

void sn_sandbox_push_base(lua_State *L)
{
    sn_env_push_base(L);
}

void sn_sandbox_push_starred(lua_State *L)
{
    sn_policy_push_starred(L);
}

/* ---- worker states: one fresh env per job ---------------------------------------------- */

void sn_sandbox_seal(lua_State *L)
{
    sn_env_seal(L);
}

void sn_sandbox_job_begin(lua_State *L, const char *names, size_t len)
{
    sn_policy_set_starred(L, names, len);
    sn_env_job_begin(L);
}

void sn_sandbox_job_end(lua_State *L)
{
    sn_policy_clear(L);
    sn_env_job_end(L);
}
