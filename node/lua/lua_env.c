/* lua_env: how a snapshot stays O(1).
 *
 * An environment ("env": the actor's globals G, or a coroutine's private table E) keeps its
 * live values raw, so ordinary global access costs nothing extra. Each env has a metatable
 * holding a chain of frozen layers: tables that are never written again. Taking a snapshot
 * of an env ("freezing" it) moves the values touched since the last freeze into a new
 * frozen layer and clears them from the raw table; a new coroutine then shares that chain.
 * Reads of a name absent from the raw table fall to __index, which looks the chain up and
 * copies the value back raw ("materializes" it), so the next read is raw. Every name that
 * enters the raw table after a freeze passes through __index or __newindex, and is recorded
 * in the env's "touched" set; the next freeze looks at those names only. A touched name
 * that is absent from the raw table was deleted, which blocks the chain.
 *
 * What a name means (policy names, starred names) is decided above, in lua_sandbox; this
 * module only stores and snapshots. */
#include "lua_env.h"
#include "lua_policy.h"

#include <lauxlib.h>
#include <string.h>

/* Registry keys: the addresses of these constants are unique light userdata. */
static const char K_ENVPROTO = 0; /* metatable fields shared by every env */
static const char K_BASEENV = 0;  /* the env of code that is not in a coroutine */
static const char K_JOBMT = 0;    /* metatable of job envs: the sealed view of the globals */

/* Env metatable fields: array slots, so the lookups on every global access that misses
 * the raw table are array reads, not hash lookups (scripts never see this metatable). */
enum {
    F_TOP = 1,     /* newest frozen layer, or absent */
    F_DEPTH,       /* number of layers in the chain */
    F_CREATOR,     /* creator's env (coroutine envs only) */
    F_SHARED,      /* set: this metatable is shared by sibling envs */
    F_CHILD,       /* the shared metatable for this env's new coroutines */
    F_ENV,         /* marks an env metatable (set in the shared fields) */
    F_USER,        /* the metatable a script set on this env, or absent */
    MT_SLOTS = F_USER
};

/* Env raw keys (the internal keys stored in an env itself, skipped by pairs and next). */
static const char F_TOUCHED = 0; /* names touched since the last freeze, or absent */
static const char F_WHOLE = 0;   /* set: the whole view is raw (thawed) until the next freeze */

/* Frozen layers. */
static const char L_PARENT = 0; /* the next older layer */
static const char V_TOMB = 0;   /* value: deleted at this layer */

enum { MAX_CHAIN = 8 };

/* ---- frozen chains ---------------------------------------------------------------------- */

/* Pushes the value of key (at index k) in the chain of the env metatable at mt; nil if none. */
static void push_chain_value(lua_State *L, int mt, int k)
{
    int t = lua_rawgeti(L, mt, F_TOP);
    while (t == LUA_TTABLE) {
        lua_pushvalue(L, k);
        if (lua_rawget(L, -2) != LUA_TNIL) {
            lua_remove(L, -2);
            if (lua_touserdata(L, -1) == (void *)&V_TOMB) {
                lua_pop(L, 1);
                lua_pushnil(L);
            }
            return;
        }
        lua_pop(L, 1);
        t = lua_rawgetp(L, -1, &L_PARENT);
        lua_remove(L, -2);
    }
}

/* Records key k as touched in the env at index env. */
static void touch(lua_State *L, int env, int k)
{
    if (lua_rawgetp(L, env, &F_TOUCHED) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 4);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, env, &F_TOUCHED);
    }
    lua_pushvalue(L, k);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

/* Merges the chain of mt into one layer, so lookups stay short. */
static void compact_chain(lua_State *L, int mt)
{
    lua_newtable(L); /* merged */
    int merged = lua_gettop(L);
    int t = lua_rawgeti(L, mt, F_TOP);
    while (t == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_touserdata(L, -2) == (void *)&L_PARENT) {
                lua_pop(L, 1);
                continue;
            }
            lua_pushvalue(L, -2);
            if (lua_rawget(L, merged) == LUA_TNIL) { /* newer layers win */
                lua_pop(L, 1);
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, merged);
            } else {
                lua_pop(L, 2);
            }
        }
        t = lua_rawgetp(L, -1, &L_PARENT);
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, merged)) { /* a tomb at the bottom hides nothing */
        if (lua_touserdata(L, -1) == (void *)&V_TOMB) {
            lua_pushvalue(L, -2);
            lua_pushnil(L);
            lua_rawset(L, merged);
        }
        lua_pop(L, 1);
    }
    lua_rawseti(L, mt, F_TOP);
    lua_pushinteger(L, 1);
    lua_rawseti(L, mt, F_DEPTH);
}

/* Moves one raw entry of env x (key at k) into the new layer at nl when it differs from the
 * chain; counts what was added. Policy names of the base env stay raw: they live there. */
static void freeze_key(lua_State *L, int x, int mt, int nl, int k, int *added)
{
    int keep_raw = lua_rawgeti(L, mt, F_CREATOR) == LUA_TNIL && sn_policy_kind_at(L, k);
    lua_pop(L, 1);
    if (keep_raw)
        return;
    lua_pushvalue(L, k);
    lua_rawget(L, x);           /* raw value */
    push_chain_value(L, mt, k); /* frozen value */
    if (!lua_rawequal(L, -1, -2)) {
        lua_pushvalue(L, k);
        if (lua_isnil(L, -3))
            lua_pushlightuserdata(L, (void *)&V_TOMB);
        else
            lua_pushvalue(L, -3);
        lua_rawset(L, nl);
        (*added)++;
    }
    lua_pop(L, 2);
    lua_pushvalue(L, k);
    lua_pushnil(L);
    lua_rawset(L, x);
}

void sn_env_push_own_mt(lua_State *L, int env)
{
    env = lua_absindex(L, env);
    lua_getmetatable(L, env);
    int mt = lua_gettop(L);
    if (lua_rawgeti(L, mt, F_SHARED) == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    lua_createtable(L, MT_SLOTS, 4);
    lua_pushnil(L);
    while (lua_next(L, mt)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    lua_pushnil(L);
    lua_rawseti(L, -2, F_SHARED);
    lua_pushnil(L);
    lua_rawseti(L, -2, F_CHILD);
    lua_pushvalue(L, -1);
    lua_setmetatable(L, env);
    lua_remove(L, mt);
}

/* Freezes the env at x: its current view becomes the top of its chain. */
void sn_env_freeze(lua_State *L, int x)
{
    x = lua_absindex(L, x);
    sn_env_push_own_mt(L, x); /* its chain may grow: it must be its own */
    int mt = lua_gettop(L);
    int first = lua_rawgeti(L, mt, F_TOP) == LUA_TNIL;
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_rawsetp(L, x, &F_WHOLE);
    int touched = lua_rawgetp(L, x, &F_TOUCHED) == LUA_TTABLE ? lua_gettop(L) : 0;
    if (!first && !touched) {
        lua_settop(L, mt - 1);
        return;
    }
    lua_newtable(L);
    int nl = lua_gettop(L);
    int added = 0;
    if (first) { /* everything raw is new; nothing was ever touched */
        lua_pushnil(L);
        while (lua_next(L, x)) {
            lua_pop(L, 1);
            freeze_key(L, x, mt, nl, lua_gettop(L), &added);
        }
    } else {
        lua_pushnil(L);
        while (lua_next(L, touched)) {
            lua_pop(L, 1);
            freeze_key(L, x, mt, nl, lua_gettop(L), &added);
        }
        lua_pushnil(L);
        lua_rawsetp(L, x, &F_TOUCHED);
    }
    if (added || first) {
        lua_rawgeti(L, mt, F_TOP);
        lua_rawsetp(L, nl, &L_PARENT);
        lua_pushvalue(L, nl);
        lua_rawseti(L, mt, F_TOP);
        lua_rawgeti(L, mt, F_DEPTH);
        lua_Integer depth = lua_tointeger(L, -1) + 1;
        lua_pop(L, 1);
        lua_pushinteger(L, depth);
        lua_rawseti(L, mt, F_DEPTH);
        if (depth > MAX_CHAIN)
            compact_chain(L, mt);
    }
    lua_settop(L, mt - 1);
}

/* ---- metatables ------------------------------------------------------------------------ */

void sn_env_push_new_mt(lua_State *L)
{
    lua_createtable(L, MT_SLOTS, 4);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_ENVPROTO);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -5);
    }
    lua_pop(L, 1);
}

/* Copies what a script set (its metatable and the metamethods taken from it) from the env
 * metatable at from to the one at to: a coroutine's globals carry the creator's. */
static void copy_user(lua_State *L, int from, int to)
{
    if (lua_rawgeti(L, from, F_USER) == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    lua_rawseti(L, to, F_USER);
    lua_pushnil(L);
    while (lua_next(L, from)) { /* string keys: the metamethods in use */
        if (lua_type(L, -2) == LUA_TSTRING) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, to);
        } else {
            lua_pop(L, 1);
        }
    }
}

/* A shared child metatable only names the chain and the creator, so siblings snapshotted at
 * the same point can share one. */
void sn_env_push_child_mt(lua_State *L, int c)
{
    c = lua_absindex(L, c);
    lua_getmetatable(L, c);
    int cm = lua_gettop(L);
    if (lua_rawgeti(L, cm, F_CHILD) == LUA_TTABLE) {
        lua_rawgeti(L, -1, F_TOP);
        lua_rawgeti(L, cm, F_TOP);
        int fresh = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        lua_rawgeti(L, -1, F_USER);
        lua_rawgeti(L, cm, F_USER);
        fresh = fresh && lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (fresh) {
            lua_remove(L, cm);
            return;
        }
    }
    lua_pop(L, 1);
    sn_env_push_new_mt(L);
    copy_user(L, cm, lua_gettop(L));
    lua_rawgeti(L, cm, F_TOP);
    lua_rawseti(L, -2, F_TOP);
    lua_rawgeti(L, cm, F_DEPTH);
    lua_rawseti(L, -2, F_DEPTH);
    lua_pushvalue(L, c);
    lua_rawseti(L, -2, F_CREATOR);
    lua_pushboolean(L, 1);
    lua_rawseti(L, -2, F_SHARED);
    lua_pushvalue(L, -1);
    lua_rawseti(L, cm, F_CHILD);
    lua_remove(L, cm);
}

int sn_env_push_creator(lua_State *L, int env)
{
    if (!lua_getmetatable(L, env)) {
        lua_pushnil(L);
        return LUA_TNIL;
    }
    int t = lua_rawgeti(L, -1, F_CREATOR);
    lua_remove(L, -2);
    return t;
}

int sn_env_push_up(lua_State *L, int env, int *user)
{
    if (!lua_getmetatable(L, env)) {
        *user = 0;
        lua_pushnil(L);
        return LUA_TNIL;
    }
    *user = lua_rawgeti(L, -1, F_USER) != LUA_TNIL;
    lua_pop(L, 1);
    int t = lua_rawgeti(L, -1, F_CREATOR);
    lua_remove(L, -2);
    return t;
}

int sn_env_is_env(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
        return 0;
    int is = lua_rawgeti(L, -1, F_ENV) != LUA_TNIL;
    lua_pop(L, 2);
    return is;
}

int sn_env_push_user(lua_State *L, int env)
{
    if (!lua_getmetatable(L, env)) {
        lua_pushnil(L);
        return LUA_TNIL;
    }
    int t = lua_rawgeti(L, -1, F_USER);
    lua_remove(L, -2);
    return t;
}

/* Events a script's metatable cannot lend the env: the sandbox's own three (served through
 * the script's metatable, see lua_sandbox), __metatable (answered by getmetatable), __gc
 * (refused) and __mode (frozen layers hold their values strongly anyway). */
static int kept_event(const char *k)
{
    static const char *const kept[] = {"__index", "__newindex", "__pairs", "__metatable",
                                       "__gc", "__mode", NULL};
    for (int i = 0; kept[i]; i++)
        if (strcmp(k, kept[i]) == 0)
            return 1;
    return 0;
}

void sn_env_set_user(lua_State *L, int env, int umt)
{
    env = lua_absindex(L, env);
    umt = lua_absindex(L, umt);
    sn_env_push_own_mt(L, env);
    int mt = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, mt)) { /* drop what the previous metatable lent */
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, mt);
        }
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_ENVPROTO);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, mt);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    lua_pushvalue(L, umt);
    lua_rawseti(L, mt, F_USER);
    if (lua_istable(L, umt)) {
        lua_pushnil(L);
        while (lua_next(L, umt)) {
            if (lua_type(L, -2) == LUA_TSTRING && !kept_event(lua_tostring(L, -2))) {
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, mt);
            } else {
                lua_pop(L, 1);
            }
        }
    }
}

void sn_env_thaw(lua_State *L, int env)
{
    env = lua_absindex(L, env);
    if (lua_rawgetp(L, env, &F_WHOLE) != LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    lua_getmetatable(L, env);
    int chain = lua_rawgeti(L, -1, F_TOP) != LUA_TNIL;
    lua_pop(L, 2);
    if (!chain) /* everything is raw already */
        return;
    sn_env_push_view(L, env);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pushvalue(L, -2);
        if (lua_rawget(L, env) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, env);
            touch(L, env, lua_gettop(L));
        } else {
            lua_pop(L, 2);
        }
    }
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
    lua_rawsetp(L, env, &F_WHOLE);
}

int sn_env_internal_key(lua_State *L, int k)
{
    void *p = lua_touserdata(L, k);
    return lua_type(L, k) == LUA_TLIGHTUSERDATA &&
           (p == (void *)&F_TOUCHED || p == (void *)&F_WHOLE);
}

/* ---- reading and writing ---------------------------------------------------------------- */

void sn_env_get(lua_State *L, int env, int k)
{
    env = lua_absindex(L, env);
    k = lua_absindex(L, k);
    if (lua_rawgetp(L, env, &F_TOUCHED) == LUA_TTABLE) {
        lua_pushvalue(L, k);
        if (lua_rawget(L, -2) != LUA_TNIL) { /* touched and absent: deleted */
            lua_pop(L, 2);
            lua_pushnil(L);
            return;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_getmetatable(L, env);
    push_chain_value(L, lua_gettop(L), k);
    lua_remove(L, -2);
    if (!lua_isnil(L, -1)) {
        lua_pushvalue(L, k);
        lua_pushvalue(L, -2);
        lua_rawset(L, env);
        touch(L, env, k);
    }
}

void sn_env_set(lua_State *L, int env, int k, int v)
{
    env = lua_absindex(L, env);
    k = lua_absindex(L, k);
    v = lua_absindex(L, v);
    lua_getmetatable(L, env);
    int chain = lua_rawgeti(L, -1, F_TOP) != LUA_TNIL;
    lua_pop(L, 2);
    if (chain) /* a chain exists: remember the name */
        touch(L, env, k);
    lua_pushvalue(L, k); /* nil too: rawset may reach a name held raw */
    lua_pushvalue(L, v);
    lua_rawset(L, env);
}

void sn_env_push_view(lua_State *L, int env)
{
    env = lua_absindex(L, env);
    lua_getmetatable(L, env);
    int mt = lua_gettop(L);
    lua_newtable(L); /* the view */
    int view = lua_gettop(L);
    int t = lua_rawgeti(L, mt, F_TOP);
    while (t == LUA_TTABLE) { /* newest layer first; older values do not overwrite */
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_touserdata(L, -2) == (void *)&L_PARENT) {
                lua_pop(L, 1);
                continue;
            }
            lua_pushvalue(L, -2);
            if (lua_rawget(L, view) == LUA_TNIL) {
                lua_pop(L, 1);
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, view);
            } else {
                lua_pop(L, 2);
            }
        }
        t = lua_rawgetp(L, -1, &L_PARENT);
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
    if (lua_rawgetp(L, env, &F_TOUCHED) == LUA_TTABLE) { /* touched and absent: deleted */
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, view);
        }
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, view)) { /* drop tombs */
        if (lua_touserdata(L, -1) == (void *)&V_TOMB) {
            lua_pushvalue(L, -2);
            lua_pushnil(L);
            lua_rawset(L, view);
        }
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    while (lua_next(L, env)) { /* raw values are current */
        if (sn_env_internal_key(L, -2)) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, view);
    }
    lua_remove(L, mt);
}

/* ---- the base env and job envs ---------------------------------------------------------- */

void sn_env_open(lua_State *L)
{
    lua_pushboolean(L, 1);
    lua_rawseti(L, -2, F_ENV);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_ENVPROTO);
    lua_pushglobaltable(L);
    sn_env_push_new_mt(L);
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_BASEENV);
}

void sn_env_push_base(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_BASEENV);
}

void sn_env_seal(lua_State *L)
{
    lua_pushglobaltable(L);
    sn_env_freeze(L, -1);
    lua_getmetatable(L, -1);
    sn_env_push_new_mt(L);
    lua_rawgeti(L, -2, F_TOP);
    lua_rawseti(L, -2, F_TOP);
    lua_rawgeti(L, -2, F_DEPTH);
    lua_rawseti(L, -2, F_DEPTH);
    copy_user(L, lua_gettop(L) - 1, lua_gettop(L));
    lua_pushboolean(L, 1);
    lua_rawseti(L, -2, F_SHARED);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_JOBMT);
    lua_pop(L, 2);
}

void sn_env_job_begin(lua_State *L)
{
    lua_createtable(L, 0, 4);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_JOBMT);
    lua_setmetatable(L, -2);
    lua_pushliteral(L, "_G");
    lua_pushvalue(L, -2);
    lua_rawset(L, -3);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_BASEENV);
}

void sn_env_job_end(lua_State *L)
{
    lua_pushglobaltable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_BASEENV);
}
