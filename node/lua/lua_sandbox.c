/* lua_sandbox: private globals, the _ENV[""] policy, and snapshotting coroutines.
 *
 * How a snapshot stays O(1). An environment ("env": the actor's globals G, or a coroutine's
 * private table E) keeps its live values raw, so ordinary global access costs nothing extra.
 * Each env has a metatable holding a chain of frozen layers: tables that are never written
 * again. Taking a snapshot of an env ("freezing" it) moves the values touched since the last
 * freeze into a new frozen layer and clears them from the raw table; a new coroutine then
 * shares that chain. Reads of a name absent from the raw table fall to __index, which looks
 * the chain up and copies the value back raw ("materializes" it), so the next read is raw.
 * Every name that enters the raw table after a freeze passes through __index or __newindex,
 * and is recorded in the env's "touched" set; the next freeze looks at those names only.
 * A touched name that is absent from the raw table was deleted, which blocks the chain.
 *
 * Policy names bypass all of this: in a coroutine env they are forwarded live to the
 * creator's env (and on up to G, where they live raw). Starred names are plain names until
 * the process-wide store exists (threads).
 *
 * A coroutine body f keeps its own closure: on each resume f's _ENV upvalue is joined to the
 * coroutine's env cell, and restored when the resume returns, so f called outside the
 * coroutine still sees its lexical environment. */
#include "lua_sandbox.h"
#include "lua_shared.h"

#include <lauxlib.h>
#include <string.h>

/* Registry keys: the addresses of these constants are unique light userdata. */
static const char K_STATE = 0;    /* sandbox userdata (resume depth) */
static const char K_POLICY = 0;   /* name -> 1 (plain) | 2 (starred) */
static const char K_PLIST = 0;    /* the names as given, in order */
static const char K_COINFO = 0;   /* weak map coroutine -> holder closure */
static const char K_SAVERS = 0;   /* saver closures, by resume depth */
static const char K_FACTORY = 0;  /* Lua function that makes holder closures */
static const char K_ENVPROTO = 0; /* metatable fields shared by every env */
static const char K_BASEENV = 0;  /* the env of code that is not in a coroutine */
static const char K_JOBMT = 0;    /* metatable of job envs: the sealed view of the globals */

/* Env metatable fields. */
static const char F_TOP = 0;     /* newest frozen layer, or absent */
static const char F_DEPTH = 0;   /* number of layers in the chain */
static const char F_CREATOR = 0; /* creator's env (coroutine envs only) */
static const char F_SHARED = 0;  /* set: this metatable is shared by sibling envs */
static const char F_CHILD = 0;   /* the shared metatable for this env's new coroutines */

/* Env raw key (the one internal key stored in an env itself, skipped by pairs). */
static const char F_TOUCHED = 0; /* names touched since the last freeze, or absent */

/* Frozen layers. */
static const char L_PARENT = 0; /* the next older layer */
static const char V_TOMB = 0;   /* value: deleted at this layer */

enum { MAX_CHAIN = 8, POLICY_PLAIN = 1, POLICY_STARRED = 2 };

typedef struct sandbox {
    int depth; /* nesting of sandboxed resumes, indexes the savers */
} sandbox;

/* ---- frozen chains ---------------------------------------------------------------------- */

/* Pushes the value of key (at index k) in the chain of the env metatable at mt; nil if none. */
static void push_chain_value(lua_State *L, int mt, int k)
{
    int t = lua_rawgetp(L, mt, &F_TOP);
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
    int t = lua_rawgetp(L, mt, &F_TOP);
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
    lua_rawsetp(L, mt, &F_TOP);
    lua_pushinteger(L, 1);
    lua_rawsetp(L, mt, &F_DEPTH);
}

static int is_policy_name(lua_State *L, int k)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_POLICY);
    lua_pushvalue(L, k);
    int found = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 2);
    return found;
}

/* Moves one raw entry of env x (key at k) into the new layer at nl when it differs from the
 * chain; counts what was added. Policy names of the base env stay raw: they live there. */
static void freeze_key(lua_State *L, int x, int mt, int nl, int k, int *added)
{
    int keep_raw = lua_rawgetp(L, mt, &F_CREATOR) == LUA_TNIL && is_policy_name(L, k);
    lua_pop(L, 1);
    if (keep_raw)
        return;
    lua_pushvalue(L, k);
    lua_rawget(L, x);            /* raw value */
    push_chain_value(L, mt, k);  /* frozen value */
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

/* Freezes the env at x: its current view becomes the top of its chain. */
static void env_freeze(lua_State *L, int x)
{
    x = lua_absindex(L, x);
    lua_getmetatable(L, x);
    int mt = lua_gettop(L);
    int first = lua_rawgetp(L, mt, &F_TOP) == LUA_TNIL;
    lua_pop(L, 1);
    if (lua_rawgetp(L, mt, &F_SHARED) != LUA_TNIL) { /* its chain may grow: go private */
        lua_createtable(L, 0, 8);
        lua_pushnil(L);
        while (lua_next(L, mt)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        }
        lua_pushnil(L);
        lua_rawsetp(L, -2, &F_SHARED);
        lua_pushnil(L);
        lua_rawsetp(L, -2, &F_CHILD);
        lua_pushvalue(L, -1);
        lua_setmetatable(L, x);
        lua_replace(L, mt);
    }
    lua_pop(L, 1);
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
        lua_rawgetp(L, mt, &F_TOP);
        lua_rawsetp(L, nl, &L_PARENT);
        lua_pushvalue(L, nl);
        lua_rawsetp(L, mt, &F_TOP);
        lua_rawgetp(L, mt, &F_DEPTH);
        lua_Integer depth = lua_tointeger(L, -1) + 1;
        lua_pop(L, 1);
        lua_pushinteger(L, depth);
        lua_rawsetp(L, mt, &F_DEPTH);
        if (depth > MAX_CHAIN)
            compact_chain(L, mt);
    }
    lua_settop(L, mt - 1);
}

/* ---- the policy ------------------------------------------------------------------------- */

static int push_policy_list(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_PLIST);
    lua_Integer n = luaL_len(L, -1);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -2, i);
        lua_rawseti(L, -2, i);
    }
    return 1;
}

static int valid_name(const char *s, size_t n)
{
    if (n == 0 || !(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

/* Checks every entry of the list at idx before changing anything; raises naming the bad one. */
static void policy_check(lua_State *L, int idx)
{
    if (!lua_istable(L, idx))
        luaL_error(L, "_ENV[\"\"] expects a list of names, got %s", luaL_typename(L, idx));
    lua_Integer n = luaL_len(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
        int t = lua_rawgeti(L, idx, i);
        if (t != LUA_TSTRING)
            luaL_error(L, "_ENV[\"\"] entry %d: expected a name (string), got %s", (int)i,
                       lua_typename(L, t));
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if (len == 0)
            luaL_error(L, "_ENV[\"\"] entry %d: empty name", (int)i);
        if (s[0] == '*' && len == 1)
            luaL_error(L, "_ENV[\"\"] entry %d: '*' must be followed by a name", (int)i);
        if (!valid_name(s + (s[0] == '*'), len - (s[0] == '*')))
            luaL_error(L, "_ENV[\"\"] entry %d: '%s' is not a valid global name", (int)i, s);
        lua_pop(L, 1);
    }
}

/* Adds the names of the list at idx to the policy. Adding never removes; "*X" upgrades "X". */
static void policy_add(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    policy_check(L, idx);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_POLICY);
    int pol = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_PLIST);
    int plist = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_COINFO);
    int coinfo = lua_gettop(L);
    lua_Integer n = luaL_len(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        const char *s = lua_tostring(L, -1);
        int kind = s[0] == '*' ? POLICY_STARRED : POLICY_PLAIN;
        const char *name = s + (kind == POLICY_STARRED);
        lua_pushstring(L, name);
        int old = lua_rawget(L, pol) == LUA_TNIL ? 0 : (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (old >= kind) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushstring(L, name);
        lua_pushinteger(L, kind);
        lua_rawset(L, pol);
        if (old) { /* upgrade: rewrite the listed entry */
            lua_Integer m = luaL_len(L, plist);
            for (lua_Integer j = 1; j <= m; j++) {
                lua_rawgeti(L, plist, j);
                if (strcmp(lua_tostring(L, -1), name) == 0) {
                    lua_pushvalue(L, -2);
                    lua_rawseti(L, plist, j);
                }
                lua_pop(L, 1);
            }
        } else {
            lua_pushvalue(L, -1);
            lua_rawseti(L, plist, luaL_len(L, plist) + 1);
        }
        if (kind == POLICY_STARRED && sn_starred_enabled(L)) {
            /* The base env's value moves to the store, unless the store has one. */
            lua_rawgetp(L, LUA_REGISTRYINDEX, &K_BASEENV);
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
        lua_pushnil(L);
        while (lua_next(L, coinfo)) {
            lua_getupvalue(L, -1, 1);
            if (lua_istable(L, -1)) {
                lua_pushstring(L, name);
                lua_pushnil(L);
                lua_rawset(L, -3);
            }
            lua_pop(L, 2);
        }
        lua_pop(L, 1);
    }
    lua_settop(L, idx);
}

int sn_sandbox_policy_kind(lua_State *L, const char *name)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_POLICY) != LUA_TTABLE) {
        lua_pop(L, 1);
        return 0;
    }
    int kind = lua_getfield(L, -1, name) == LUA_TNUMBER ? (int)lua_tointeger(L, -1) : 0;
    lua_pop(L, 2);
    return kind;
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
        return push_policy_list(L);
    if (n == 8 && memcmp(s, "_SANDBOX", 8) == 0) {
        lua_pushvalue(L, 1);
        return 1;
    }
    return 0;
}

/* __index(env, key) */
static int env_index(lua_State *L)
{
    if (special_get(L))
        return 1;
    lua_settop(L, 2);
    lua_pushvalue(L, 2);
    int kind = lua_rawget(L, lua_upvalueindex(1)) == LUA_TNIL ? 0 : (int)lua_tointeger(L, 3);
    if (kind == POLICY_STARRED && sn_starred_enabled(L))
        return sn_starred_get(L, 2);
    lua_getmetatable(L, 1); /* 4 */
    if (kind && lua_rawgetp(L, 4, &F_CREATOR) != LUA_TNIL) { /* a coroutine's policy name */
        lua_pushvalue(L, 2);
        lua_gettable(L, 5); /* live, from the creator */
        return 1;
    }
    lua_settop(L, 4);
    lua_remove(L, 3); /* 3: mt */
    if (lua_rawgetp(L, 1, &F_TOUCHED) == LUA_TTABLE) { /* 4 */
        lua_pushvalue(L, 2);
        if (lua_rawget(L, 4) != LUA_TNIL) { /* touched and absent: deleted */
            lua_pushnil(L);
            return 1;
        }
    }
    lua_settop(L, 3);
    push_chain_value(L, 3, 2); /* 4 */
    if (!lua_isnil(L, 4)) {
        lua_pushvalue(L, 2);
        lua_pushvalue(L, 4);
        lua_rawset(L, 1);
        touch(L, 1, 2);
    }
    return 1;
}

/* __newindex(env, key, value) */
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
    if (kind == POLICY_STARRED && sn_starred_enabled(L)) {
        sn_starred_set(L, 2, 3);
        return 0;
    }
    lua_getmetatable(L, 1); /* 4 */
    if (kind && lua_rawgetp(L, 4, &F_CREATOR) != LUA_TNIL) { /* 5 */
        lua_pushvalue(L, 2);
        lua_pushvalue(L, 3);
        lua_settable(L, 5);
        return 0;
    }
    lua_settop(L, 4);
    if (lua_rawgetp(L, 4, &F_TOP) != LUA_TNIL) /* a chain exists: remember the name */
        touch(L, 1, 2);
    lua_settop(L, 3);
    if (!lua_isnil(L, 3))
        lua_rawset(L, 1);
    return 0;
}

/* __pairs(env): iterates the env's whole view (raw, frozen, and live policy names). */
static int env_pairs(lua_State *L)
{
    lua_settop(L, 1);
    lua_getmetatable(L, 1); /* 2 */
    lua_newtable(L);        /* 3: the view */
    int t = lua_rawgetp(L, 2, &F_TOP);
    while (t == LUA_TTABLE) { /* newest layer first; older values do not overwrite */
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_touserdata(L, -2) == (void *)&L_PARENT) {
                lua_pop(L, 1);
                continue;
            }
            lua_pushvalue(L, -2);
            if (lua_rawget(L, 3) == LUA_TNIL) {
                lua_pop(L, 1);
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, 3);
            } else {
                lua_pop(L, 2);
            }
        }
        t = lua_rawgetp(L, -1, &L_PARENT);
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
    if (lua_rawgetp(L, 1, &F_TOUCHED) == LUA_TTABLE) { /* touched and absent: deleted */
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, 3);
        }
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, 3)) { /* drop tombs */
        if (lua_touserdata(L, -1) == (void *)&V_TOMB) {
            lua_pushvalue(L, -2);
            lua_pushnil(L);
            lua_rawset(L, 3);
        }
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    while (lua_next(L, 1)) { /* raw values are current */
        if (lua_touserdata(L, -2) == (void *)&F_TOUCHED) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, 3);
    }
    if (lua_rawgetp(L, 2, &F_CREATOR) == LUA_TTABLE) { /* policy names, live */
        int creator = lua_gettop(L);
        lua_rawgetp(L, LUA_REGISTRYINDEX, &K_POLICY);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_pushvalue(L, -1);
            lua_gettable(L, creator);
            lua_rawset(L, 3);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the real next */
    lua_pushvalue(L, 3);
    lua_pushnil(L);
    return 3;
}

/* Pushes a new env metatable: the shared metamethods, nothing else. */
static void push_new_mt(lua_State *L)
{
    lua_createtable(L, 0, 8);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_ENVPROTO);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -5);
    }
    lua_pop(L, 1);
}

/* Pushes the metatable for a new coroutine env of the (just frozen) creator env at index c.
 * Siblings snapshotted at the same point share one: it only names the chain and the creator. */
static void push_child_mt(lua_State *L, int c)
{
    c = lua_absindex(L, c);
    lua_getmetatable(L, c);
    int cm = lua_gettop(L);
    if (lua_rawgetp(L, cm, &F_CHILD) == LUA_TTABLE) {
        lua_rawgetp(L, -1, &F_TOP);
        lua_rawgetp(L, cm, &F_TOP);
        int fresh = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (fresh) {
            lua_remove(L, cm);
            return;
        }
    }
    lua_pop(L, 1);
    push_new_mt(L);
    lua_rawgetp(L, cm, &F_TOP);
    lua_rawsetp(L, -2, &F_TOP);
    lua_rawgetp(L, cm, &F_DEPTH);
    lua_rawsetp(L, -2, &F_DEPTH);
    lua_pushvalue(L, c);
    lua_rawsetp(L, -2, &F_CREATOR);
    lua_pushboolean(L, 1);
    lua_rawsetp(L, -2, &F_SHARED);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, cm, &F_CHILD);
    lua_remove(L, cm);
}

/* ---- coroutines ------------------------------------------------------------------------- */

static sandbox *get_sandbox(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_STATE);
    sandbox *sb = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return sb;
}

/* Pushes the env of the code running on L: its coroutine's env, or the base env. */
static void push_running_env(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_COINFO);
    lua_pushthread(L);
    if (lua_rawget(L, -2) == LUA_TFUNCTION) { /* our coroutine: its env, once started */
        lua_getupvalue(L, -1, 1);
        if (!lua_isnil(L, -1)) {
            lua_replace(L, -3);
            lua_pop(L, 1);
            return;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_BASEENV);
}

/* The index of f's _ENV upvalue, or 0. */
static int env_upvalue(lua_State *L, int f)
{
    if (lua_iscfunction(L, f))
        return 0;
    const char *name;
    for (int i = 1; (name = lua_getupvalue(L, f, i)) != NULL; i++) {
        lua_pop(L, 1);
        if (strcmp(name, "_ENV") == 0)
            return i;
    }
    return 0;
}

/* Creates a coroutine for the function at index 1 and registers its holder. Pushes it. */
static lua_State *new_coroutine(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L); /* 2 */
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    int envidx = env_upvalue(L, 1);
    if (envidx) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, &K_COINFO);
        lua_pushvalue(L, 2);
        lua_rawgetp(L, LUA_REGISTRYINDEX, &K_FACTORY);
        lua_pushnil(L); /* the env, made at first resume */
        lua_pushvalue(L, 1);
        push_running_env(L);
        lua_call(L, 3, 1);
        lua_rawset(L, -3);
        lua_pop(L, 1);
    }
    return co;
}

/* Resumes co with narg arguments from L's top, like lcorolib's auxresume: returns the number
 * of results moved to L, or -1 with the error message on L's top. */
static int plain_resume(lua_State *L, lua_State *co, int narg)
{
    if (!lua_checkstack(co, narg)) {
        lua_pushliteral(L, "too many arguments to resume");
        return -1;
    }
    if (lua_status(co) == LUA_OK && lua_gettop(co) == 0) {
        lua_pushliteral(L, "cannot resume dead coroutine");
        return -1;
    }
    lua_xmove(L, co, narg);
    int status = lua_resume(co, L, narg);
    if (status == LUA_OK || status == LUA_YIELD) {
        int nres = lua_gettop(co);
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushliteral(L, "too many results to resume");
            return -1;
        }
        lua_xmove(co, L, nres);
        return nres;
    }
    lua_xmove(co, L, 1);
    return -1;
}

/* Resumes co (any coroutine); sandboxed ones run with their env joined into their body. */
static int sandboxed_resume(lua_State *L, lua_State *co, int narg)
{
    int base = lua_gettop(L) - narg; /* args are above base */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_COINFO);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    if (lua_rawget(L, -2) != LUA_TFUNCTION) {
        lua_pop(L, 2);
        return plain_resume(L, co, narg);
    }
    lua_remove(L, -2);
    int holder = lua_gettop(L);
    lua_getupvalue(L, holder, 2); /* f */
    int f = holder + 1;
    int envidx = env_upvalue(L, f);
    if (lua_getupvalue(L, holder, 1) == NULL || lua_isnil(L, -1)) {
        /* first resume: snapshot the creator */
        lua_pop(L, 1);
        if (lua_status(co) == LUA_OK && lua_gettop(co) > 0) {
            lua_getupvalue(L, holder, 3); /* creator env */
            env_freeze(L, -1);
            lua_createtable(L, 0, 4);
            push_child_mt(L, -2);
            lua_setmetatable(L, -2);
            lua_setupvalue(L, holder, 1);
            lua_pushnil(L); /* the shared metatable keeps the creator */
            lua_setupvalue(L, holder, 3);
            lua_pop(L, 1);
        }
    } else {
        lua_pop(L, 1);
    }
    sandbox *sb = get_sandbox(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_SAVERS);
    if (lua_rawgeti(L, -1, sb->depth + 1) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        lua_rawgetp(L, LUA_REGISTRYINDEX, &K_FACTORY);
        lua_call(L, 0, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, sb->depth + 1);
    }
    lua_remove(L, -2);
    int saver = lua_gettop(L);
    lua_upvaluejoin(L, saver, 1, f, envidx);  /* remember f's own cell */
    lua_upvaluejoin(L, f, envidx, holder, 1); /* f sees the coroutine's env */
    lua_rotate(L, base + 1, 3);               /* holder, f, saver below the args */
    sb->depth++;
    int n = plain_resume(L, co, narg);
    sb->depth--;
    lua_upvaluejoin(L, base + 2, envidx, base + 3, 1); /* restore f */
    lua_rotate(L, base + 1, -3);
    lua_pop(L, 3);
    return n;
}

/* coroutine.create(f) */
static int co_create(lua_State *L)
{
    new_coroutine(L);
    return 1;
}

/* coroutine.resume(co, ...) */
static int co_resume(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argcheck(L, co, 1, "coroutine expected");
    int n = sandboxed_resume(L, co, lua_gettop(L) - 1);
    if (n < 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -(n + 1));
    return n + 1;
}

static int co_wrapped(lua_State *L)
{
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int n = sandboxed_resume(L, co, lua_gettop(L));
    if (n < 0) {
        if (lua_type(L, -1) == LUA_TSTRING) { /* add position, as Lua's wrap does */
            luaL_where(L, 1);
            lua_insert(L, -2);
            lua_concat(L, 2);
        }
        return lua_error(L);
    }
    return n;
}

/* coroutine.wrap(f) */
static int co_wrap(lua_State *L)
{
    new_coroutine(L);
    lua_pushcclosure(L, co_wrapped, 1);
    return 1;
}

/* ---- installation ----------------------------------------------------------------------- */

static const char factory_src[] =
    "local e, f, c = ... return function() return e, f, c end";

int sn_sandbox_open(lua_State *L)
{
    sandbox *sb = lua_newuserdata(L, sizeof *sb);
    sb->depth = 0;
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_STATE);

    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_POLICY);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_PLIST);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_SAVERS);
    lua_newtable(L); /* weak-keyed: a coroutine's entry dies with it */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_COINFO);
    if (luaL_loadbuffer(L, factory_src, sizeof factory_src - 1, "=sandbox") != LUA_OK)
        return lua_error(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_FACTORY);

    lua_createtable(L, 0, 3); /* the shared metamethods, each with the policy as upvalue */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_POLICY);
    lua_pushcclosure(L, env_index, 1);
    lua_setfield(L, -2, "__index");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_POLICY);
    lua_pushcclosure(L, env_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_getglobal(L, "next");
    lua_pushcclosure(L, env_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_ENVPROTO);

    lua_pushglobaltable(L);
    push_new_mt(L);
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_BASEENV);

    lua_getglobal(L, "coroutine");
    lua_pushcfunction(L, co_create);
    lua_setfield(L, -2, "create");
    lua_pushcfunction(L, co_resume);
    lua_setfield(L, -2, "resume");
    lua_pushcfunction(L, co_wrap);
    lua_setfield(L, -2, "wrap");
    lua_pop(L, 1);
    return 0;
}

/* ---- worker states: one fresh env per job ---------------------------------------------- */

void sn_sandbox_push_base(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_BASEENV);
}

void sn_sandbox_seal(lua_State *L)
{
    lua_pushglobaltable(L);
    env_freeze(L, -1);
    lua_getmetatable(L, -1);
    push_new_mt(L);
    lua_rawgetp(L, -2, &F_TOP);
    lua_rawsetp(L, -2, &F_TOP);
    lua_rawgetp(L, -2, &F_DEPTH);
    lua_rawsetp(L, -2, &F_DEPTH);
    lua_pushboolean(L, 1);
    lua_rawsetp(L, -2, &F_SHARED);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_JOBMT);
    lua_pop(L, 2);
}

/* Empties the policy (both the set and the list), keeping the table objects. */
static void policy_clear(lua_State *L)
{
    for (int i = 0; i < 2; i++) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, i == 0 ? &K_POLICY : &K_PLIST);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, -4);
        }
        lua_pop(L, 1);
    }
}

void sn_sandbox_job_begin(lua_State *L, const char *names, size_t len)
{
    policy_clear(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_POLICY);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_PLIST);
    for (size_t at = 0; at < len;) {
        size_t n = strlen(names + at);
        lua_pushlstring(L, names + at, n);
        lua_pushinteger(L, POLICY_STARRED);
        lua_rawset(L, -4);
        lua_pushfstring(L, "*%s", names + at);
        lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
        at += n + 1;
    }
    lua_pop(L, 2);
    lua_createtable(L, 0, 4);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_JOBMT);
    lua_setmetatable(L, -2);
    lua_pushliteral(L, "_G");
    lua_pushvalue(L, -2);
    lua_rawset(L, -3);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_BASEENV);
}

void sn_sandbox_job_end(lua_State *L)
{
    policy_clear(L);
    lua_pushglobaltable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_BASEENV);
}

void sn_sandbox_push_starred(lua_State *L)
{
    lua_pushliteral(L, "");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_POLICY);
    lua_pushnil(L);
    while (lua_next(L, -2)) { /* acc, policy, name, kind */
        if (lua_tointeger(L, -1) == POLICY_STARRED) {
            size_t n;
            const char *name = lua_tolstring(L, -2, &n);
            lua_pushvalue(L, -4);
            lua_pushlstring(L, name, n + 1); /* with its NUL */
            lua_concat(L, 2);
            lua_replace(L, -5);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}
