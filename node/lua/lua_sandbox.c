/* lua_sandbox: what a global name means in a sandboxed state.
 *
 * A name is private unless the _ENV[""] policy lists it. Policy names bypass the snapshots:
 * in a coroutine env they are forwarded live to the creator's env (and on up to the globals,
 * where they live raw). Starred names live in the process-wide store once it exists (on a
 * node); before that they are plain names. Private names are stored by lua_env, whose
 * snapshots coroutines (lua_coroutine) and jobs start from.
 *
 * Scripts never see the env metatable: getmetatable, setmetatable, rawget, rawset, next and
 * their debug counterparts are wrapped so that on an env they act on the script's own
 * metatable and on the env's whole view, as standard Lua acts on a plain _G. _SANDBOX is a
 * separate view of an env, listed as STAGE lists it. */
#include "lua_sandbox.h"
#include "lua_chunks.h"
#include "lua_coroutine.h"
#include "lua_env.h"
#include "lua_guard.h"
#include "lua_host.h"
#include "lua_policy.h"
#include "lua_shared.h"
#include "sn_snapshot.h"

#include <lauxlib.h>
#include <string.h>

/* ---- the policy ------------------------------------------------------------------------- */

/* Registry keys: the addresses of these constants are unique light userdata. */
static const char K_SHARED = 0;      /* the base env's policy names -> values (not raw) */
static const char K_INDEX_PLAIN = 0; /* metatable of a policy name's table (stage.index) */
static const char K_INDEX_STAR = 0;  /* likewise for a starred name's */

/* Pushes the table of the base env's policy names. They are kept out of the env's raw
 * table so that every assignment reaches env_newindex and every read env_index. */
static void push_shared(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_SHARED) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_SHARED);
}

/* The hot paths' tables (policy set, policy values, starred cache): upvalues, or pushed. */
typedef struct names {
    int policy, shared, cache;
} names;

static names names_up(void)
{
    return (names){lua_upvalueindex(1), lua_upvalueindex(2), lua_upvalueindex(3)};
}

static names push_names(lua_State *L)
{
    sn_policy_push_set(L);
    push_shared(L);
    sn_starred_push_cache(L);
    return (names){lua_gettop(L) - 2, lua_gettop(L) - 1, lua_gettop(L)};
}

/* The SN_POLICY_* kind of the key at k. */
static int kind_of(lua_State *L, names n, int k)
{
    lua_pushvalue(L, k);
    int kind = lua_rawget(L, n.policy) == LUA_TNIL ? 0 : (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return kind;
}

/* Pushes what the name at k held in the base env at base before it joined the policy: its
 * shared value, else its raw or frozen one. */
static void push_base_value(lua_State *L, int base, int k)
{
    push_shared(L);
    lua_pushvalue(L, k);
    if (lua_rawget(L, -2) != LUA_TNIL) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 2);
    lua_pushvalue(L, k);
    if (lua_rawget(L, base) != LUA_TNIL)
        return;
    lua_pop(L, 1);
    sn_env_get(L, base, k);
}

/* Adds the names of the list at idx to the policy, after checking all of them. */
static void policy_add(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    sn_policy_check(L, idx);
    lua_Integer n = luaL_len(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        const char *entry = lua_tostring(L, -1);
        const char *name = entry + (entry[0] == '*');
        sn_env_push_base(L);
        int base = lua_gettop(L);
        lua_pushstring(L, name);
        int k = base + 1;
        push_base_value(L, base, k);
        int v = base + 2;
        int kind = sn_policy_add(L, entry);
        if (kind == SN_POLICY_NONE) {
            lua_pop(L, 4);
            continue;
        }
        push_shared(L);
        lua_pushvalue(L, k);
        if (kind == SN_POLICY_STARRED && sn_starred_enabled(L)) {
            /* The base env's value moves to the store, unless the store has one. */
            if (!lua_isnil(L, v))
                sn_starred_adopt(L, k, v);
            lua_pushnil(L);
        } else {
            lua_pushvalue(L, v);
        }
        lua_rawset(L, -3);
        lua_pop(L, 1);
        lua_pushnil(L);
        sn_env_set(L, base, k, lua_gettop(L)); /* out of the raw table, and of any layer */
        /* Coroutine envs may hold a private copy; from now on the name is live. */
        sn_coroutine_forget(L, name);
        lua_pop(L, 5);
    }
    lua_settop(L, idx);
}

/* ---- stage.index: keys other than strings and numbers (STAGE's r890) -------------------- */

/* Pushes the key that the key at k stands for on the table at t of a policy name, as
 * STAGE's luaL_toindex: stage.index(k, where, t), or stage.index[where](k, where, t) when
 * stage.index is a table; a result other than a string or number as tostring gives it;
 * tostring(k) when there is no hook. Returns 0 (nothing pushed) when the hook returned nil:
 * nothing is read or stored. */
static int index_key(lua_State *L, int t, int k, const char *where)
{
    sn_coroutine_push_running_env(L);
    lua_getfield(L, -1, "stage");
    lua_remove(L, -2);
    int type = lua_type(L, -1);
    if (type == LUA_TTABLE || type == LUA_TUSERDATA) {
        lua_getfield(L, -1, "index");
        lua_remove(L, -2);
        if (lua_type(L, -1) == LUA_TTABLE) {
            lua_pushstring(L, where);
            lua_rawget(L, -2);
            lua_remove(L, -2);
        }
        if (lua_type(L, -1) == LUA_TFUNCTION) {
            lua_pushvalue(L, k);
            lua_pushstring(L, where);
            lua_pushvalue(L, t);
            lua_call(L, 3, 1);
            switch (lua_type(L, -1)) {
            case LUA_TNIL:
                lua_pop(L, 1);
                return 0;
            case LUA_TNUMBER:
            case LUA_TSTRING:
                return 1;
            default:
                luaL_tolstring(L, -1, NULL);
                lua_remove(L, -2);
                return 1;
            }
        }
    }
    lua_pop(L, 1);
    luaL_tolstring(L, k, NULL);
    return 1;
}

static int is_plain_key(lua_State *L, int k)
{
    int type = lua_type(L, k);
    return type == LUA_TSTRING || type == LUA_TNUMBER;
}

/* __index(t, k) of a policy name's table; upvalue 1: where. Only absent keys come here. */
static int index_get(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    if (is_plain_key(L, 2) || !index_key(L, 1, 2, lua_tostring(L, lua_upvalueindex(1))))
        return 0;
    lua_rawget(L, 1);
    return 1;
}

/* __newindex(t, k, v) of a policy name's table; upvalue 1: where. */
static int index_set(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 3);
    if (!is_plain_key(L, 2)) {
        if (!index_key(L, 1, 2, lua_tostring(L, lua_upvalueindex(1))))
            return 0;
        lua_replace(L, 2);
    }
    lua_rawset(L, 1);
    return 0;
}

static void make_index_mt(lua_State *L, const char *where, const void *key)
{
    lua_createtable(L, 0, 2);
    lua_pushstring(L, where);
    lua_pushcclosure(L, index_get, 1);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, where);
    lua_pushcclosure(L, index_set, 1);
    lua_setfield(L, -2, "__newindex");
    sn_snapshot_transparent(L, -1); /* the table travels as it is */
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

/* A policy name's value at the top, when a table without a metatable, gets the metatable
 * that sends its other keys through stage.index ("sandbox" for starred names as STAGE's
 * store calls it, "thread" for the others). */
static void index_wrap(lua_State *L, int starred)
{
    if (lua_type(L, -1) != LUA_TTABLE)
        return;
    if (lua_getmetatable(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, starred ? &K_INDEX_STAR : &K_INDEX_PLAIN);
    lua_setmetatable(L, -2);
}

int sn_sandbox_policy_kind(lua_State *L, const char *name)
{
    return sn_policy_kind(L, name);
}

/* ---- env metamethods -------------------------------------------------------------------- */

static const char K_HOOKS = 0;   /* Lua function making __index/__newindex over a script's mt */
static const char K_PROXIES = 0; /* weak map env -> its _SANDBOX view */
static const char K_NEXT = 0;    /* the standard next, as it was before any script ran */
static const char K_TYPE = 0;    /* the standard type, likewise */

/* The env metamethods can be reached by a script (debug.getinfo's "f" of a frame below a
 * script's metamethod): each checks that it was given an env before touching it. */
static void check_env(lua_State *L, int idx)
{
    if (!sn_env_is_env(L, idx))
        luaL_error(L, "sandbox: bad argument #%d (the sandbox's globals expected)", idx);
}

/* With the creator env at the top: v == 0: replaces it by the live value of the policy name
 * at k (plain, not starred); else pops it after storing the value at v there. As
 * lua_gettable or lua_settable(creator, ...) would, walked up the creators in C instead of
 * one metamethod call per level; where a level may do more than its raw table and the
 * sandbox's metamethods (a script's metatable, or "_SANDBOX", which __index answers
 * itself), the walk defers to lua_gettable or lua_settable there. */
static void policy_walk(lua_State *L, names n, int k, int v)
{
    size_t len;
    const char *name = lua_tolstring(L, k, &len);
    int special = len == 8 && memcmp(name, "_SANDBOX", 8) == 0;
    for (;;) {
        int c = lua_gettop(L), user;
        lua_pushvalue(L, k);
        int raw = lua_rawget(L, c) != LUA_TNIL;
        if (raw && !v) {
            lua_remove(L, c);
            return;
        }
        lua_pop(L, 1);
        int up = sn_env_push_up(L, c, &user); /* c's creator */
        if (raw || user || special) {
            lua_pop(L, 1);
            lua_pushvalue(L, k);
            if (v) {
                lua_pushvalue(L, v);
                lua_settable(L, c);
                lua_pop(L, 1);
            } else {
                lua_gettable(L, c);
                lua_remove(L, c);
            }
            return;
        }
        if (up == LUA_TNIL) { /* c is the base env */
            lua_pop(L, 2);
            lua_pushvalue(L, k);
            if (v) {
                lua_pushvalue(L, v);
                lua_rawset(L, n.shared);
            } else {
                lua_rawget(L, n.shared);
            }
            return;
        }
        lua_remove(L, c);
    }
}

/* Pushes what name (any key, at index k) means in the env at env, the script's metatable
 * aside: a policy name's live value, a starred value, or the env's own (nil if none). */
static void sandbox_value(lua_State *L, names n, int env, int k)
{
    env = lua_absindex(L, env);
    k = lua_absindex(L, k);
    int kind = kind_of(L, n, k);
    int starred = kind == SN_POLICY_STARRED && sn_starred_enabled(L);
    if (starred) {
        sn_starred_get_in(L, n.cache, k);
    } else if (kind && sn_env_push_creator(L, env) != LUA_TNIL) { /* a coroutine's */
        policy_walk(L, n, k, 0); /* live, from the creator */
    } else if (kind) { /* the base env's */
        lua_pop(L, 1);
        lua_pushvalue(L, k);
        lua_rawget(L, n.shared);
    } else {
        lua_pushvalue(L, k);
        if (lua_rawget(L, env) != LUA_TNIL)
            return;
        lua_pop(L, 1);
        sn_env_get(L, env, k);
        return;
    }
    index_wrap(L, starred);
}

/* env[k] = value at v, the script's metatable aside. */
static void sandbox_store(lua_State *L, names n, int env, int k, int v)
{
    env = lua_absindex(L, env);
    k = lua_absindex(L, k);
    v = lua_absindex(L, v);
    if (lua_type(L, k) == LUA_TSTRING && lua_rawlen(L, k) == 0) {
        policy_add(L, v);
        return;
    }
    int kind = kind_of(L, n, k);
    if (kind == SN_POLICY_STARRED && sn_starred_enabled(L)) {
        sn_starred_set(L, k, v);
        return;
    }
    if (kind && sn_env_push_creator(L, env) != LUA_TNIL) { /* a coroutine's policy name */
        policy_walk(L, n, k, v);
        return;
    }
    if (kind) { /* the base env's: kept out of its raw table */
        lua_pop(L, 1);
        lua_pushvalue(L, k);
        lua_pushvalue(L, v);
        lua_rawset(L, n.shared);
        return;
    }
    sn_env_set(L, env, k, v);
}

static void push_proxy(lua_State *L, int env);

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
        push_proxy(L, 1);
        return 1;
    }
    return 0;
}

/* __index(env, key); upvalues: the policy set, the base env's policy values */
static int env_index(lua_State *L)
{
    check_env(L, 1);
    if (special_get(L))
        return 1;
    sandbox_value(L, names_up(), 1, 2);
    return 1;
}

/* __newindex(env, key, value); upvalues as env_index */
static int env_newindex(lua_State *L)
{
    check_env(L, 1);
    lua_settop(L, 3);
    sandbox_store(L, names_up(), 1, 2, 3);
    return 0;
}

/* Pushes env_index or env_newindex as a closure over what names_up reads. */
static void push_metamethod(lua_State *L, lua_CFunction f)
{
    push_names(L);
    lua_pushcclosure(L, f, 3);
}

/* Sets t[k] = view value of k for every starred name of the policy (when the store is on),
 * under the key "*NAME" when star is set. */
static void add_starred(lua_State *L, int t, int star)
{
    if (!sn_starred_enabled(L))
        return;
    t = lua_absindex(L, t);
    sn_policy_push_set(L);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        int kind = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (kind != SN_POLICY_STARRED || lua_type(L, -1) != LUA_TSTRING)
            continue;
        if (star)
            lua_pushfstring(L, "*%s", lua_tostring(L, -1));
        else
            lua_pushvalue(L, -1);
        sn_starred_get(L, lua_gettop(L) - 1);
        lua_rawset(L, t);
    }
    lua_pop(L, 1);
}

/* Pushes a new table: the env's whole view (raw, frozen, policy names live, starred names),
 * starred names keyed "*NAME" when star is set. */
static void push_whole_view(lua_State *L, int env, int star)
{
    env = lua_absindex(L, env);
    sn_env_push_view(L, env);
    int view = lua_gettop(L);
    if (sn_env_push_creator(L, env) != LUA_TTABLE) { /* the base env's policy names */
        push_shared(L);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, view);
        }
    } else { /* a coroutine's policy names, live */
        sn_policy_push_set(L);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_pushvalue(L, -1);
            lua_gettable(L, view + 1);
            lua_rawset(L, view);
        }
        lua_pop(L, 1);
    }
    lua_settop(L, view);
    if (star) { /* a starred name shows once, with its star */
        sn_policy_push_set(L);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            int kind = (int)lua_tointeger(L, -1);
            lua_pop(L, 1);
            if (kind == SN_POLICY_STARRED) {
                lua_pushvalue(L, -1);
                lua_pushnil(L);
                lua_rawset(L, view);
            }
        }
        lua_pop(L, 1);
    }
    add_starred(L, view, star);
}

/* __pairs(env): the script's __pairs if its metatable has one, else the whole view;
 * upvalue 1: the real next */
static int env_pairs(lua_State *L)
{
    check_env(L, 1);
    lua_settop(L, 1);
    if (sn_env_push_user(L, 1) == LUA_TTABLE) {
        lua_pushliteral(L, "__pairs");
        if (lua_rawget(L, -2) != LUA_TNIL) {
            lua_pushvalue(L, 1);
            lua_call(L, 1, 3);
            return 3;
        }
    }
    lua_settop(L, 1);
    push_whole_view(L, 1, 0);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 2);
    lua_pushnil(L);
    return 3;
}

/* ---- _SANDBOX: the env as STAGE lists it ------------------------------------------------ */

/* Pushes the env of the _SANDBOX view at proxy (field 1 of the view's metatable, which
 * scripts cannot get) and returns its index. */
static int proxy_env(lua_State *L, int proxy)
{
    if (lua_type(L, proxy) == LUA_TTABLE && lua_getmetatable(L, proxy)) {
        lua_rawgeti(L, -1, 1);
        lua_remove(L, -2);
    } else {
        lua_pushnil(L);
    }
    check_env(L, -1);
    return lua_gettop(L);
}

/* Reads "*NAME" as NAME: STAGE's pairs(_SANDBOX) lists starred names so. */
static void unstar_key(lua_State *L, int k)
{
    size_t n;
    const char *s = lua_type(L, k) == LUA_TSTRING ? lua_tolstring(L, k, &n) : NULL;
    if (s && n > 1 && s[0] == '*') {
        lua_pushlstring(L, s + 1, n - 1);
        lua_replace(L, k);
    }
}

static int proxy_index(lua_State *L) /* _SANDBOX[k] */
{
    lua_settop(L, 2);
    unstar_key(L, 2);
    int env = proxy_env(L, 1);
    lua_pushvalue(L, 2);
    lua_gettable(L, env);
    return 1;
}

static int proxy_newindex(lua_State *L) /* _SANDBOX[k] = v */
{
    lua_settop(L, 3);
    unstar_key(L, 2);
    int env = proxy_env(L, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_settable(L, env);
    return 0;
}

static int proxy_pairs(lua_State *L) /* upvalue 1: the real next */
{
    int env = proxy_env(L, 1);
    push_whole_view(L, env, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, -2);
    lua_pushnil(L);
    return 3;
}

static int proxy_tostring(lua_State *L)
{
    int env = proxy_env(L, 1);
    lua_pushfstring(L, "sandbox: %p", lua_topointer(L, env));
    return 1;
}

/* Pushes the _SANDBOX view of the env at env: one per env, so it compares equal to itself. */
static void push_proxy(lua_State *L, int env)
{
    env = lua_absindex(L, env);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_PROXIES);
    lua_pushvalue(L, env);
    if (lua_rawget(L, -2) == LUA_TTABLE) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 1, 6);
    lua_pushvalue(L, env);
    lua_rawseti(L, -2, 1);
    lua_pushcfunction(L, proxy_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, proxy_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_NEXT);
    lua_pushcclosure(L, proxy_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushcfunction(L, proxy_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "sandbox");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, env);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
    lua_remove(L, -2);
}

/* ---- what scripts see of an env's metatable --------------------------------------------- */

/* An env's real metatable is the sandbox's: scripts see, get and set the metatable they gave
 * (nil at first), as in standard Lua, and the sandbox serves it: its __index and __newindex
 * are asked for names the env does not hold, its __pairs replaces the view, its other events
 * are lent to the env. */

/* __index and __newindex of an env with a script's metatable, in Lua so that the script's
 * handler is a tail call: level 2 of debug.getinfo in it is the code that indexed, as in
 * standard Lua (strict.lua checks it). One pair per env, so no env reaches another's. */
static const char hooks_src[] =
    "local get, set, user, type = ...\n"
    "local function index(t, k)\n"
    "  local v = get(t, k)\n"
    "  if v ~= nil then return v end\n"
    "  local h = user(t, '__index')\n"
    "  if h == nil then return nil end\n"
    "  if type(h) == 'function' then return h(t, k) end\n"
    "  return h[k]\n"
    "end\n"
    "local function newindex(t, k, v)\n"
    "  local h = k ~= '' and get(t, k) == nil and user(t, '__newindex')\n"
    "  if not h then return set(t, k, v) end\n"
    "  if type(h) == 'function' then return h(t, k, v) end\n"
    "  h[k] = v\n"
    "end\n"
    "return index, newindex\n";

/* user(env, event): the event of the script's metatable of env, raw, or nil */
static int user_event(lua_State *L)
{
    check_env(L, 1);
    if (sn_env_push_user(L, 1) != LUA_TTABLE)
        return 1;
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

/* Makes the table or nil at umt the script's metatable of the env at env. */
static void set_user_mt(lua_State *L, int env, int umt)
{
    sn_env_set_user(L, env, umt); /* pushes the env metatable */
    if (lua_isnil(L, umt)) {
        lua_pop(L, 1);
        return;
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_HOOKS);
    push_metamethod(L, env_index);
    push_metamethod(L, env_newindex);
    lua_pushcfunction(L, user_event);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_TYPE);
    lua_call(L, 4, 2);
    sn_lua_guard_seal(L, -1); /* their upvalues are the sandbox's functions */
    sn_lua_guard_seal(L, -2);
    lua_setfield(L, -3, "__newindex");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

/* Pushes the script's metatable of the env at 1, or its __metatable field when protect. */
static int push_user_mt(lua_State *L, int protect)
{
    if (sn_env_push_user(L, 1) == LUA_TTABLE && protect) {
        lua_pushliteral(L, "__metatable");
        if (lua_rawget(L, -2) != LUA_TNIL)
            return 1;
        lua_pop(L, 1);
    }
    return 1;
}

/* Calls upvalue 1 (the function this one wraps) with the arguments; returns its results. */
static int call_original(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* getmetatable(v); on other values exactly lbaselib's */
static int sb_getmetatable(lua_State *L)
{
    luaL_checkany(L, 1);
    if (sn_env_is_env(L, 1))
        return push_user_mt(L, 1);
    if (!lua_getmetatable(L, 1)) {
        lua_pushnil(L);
        return 1;
    }
    luaL_getmetafield(L, 1, "__metatable");
    return 1;
}

static int debug_getmetatable(lua_State *L) /* debug.getmetatable(v) */
{
    if (!sn_env_is_env(L, 1))
        return call_original(L);
    return push_user_mt(L, 0);
}

/* setmetatable(t, mt) and debug.setmetatable(t, mt) on an env; protect: honour __metatable */
static int set_env_mt(lua_State *L, int protect)
{
    int t = lua_type(L, 2);
    luaL_argcheck(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table expected");
    if (t == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: " SN_GUARD_GC);
        lua_pop(L, 1);
    }
    if (protect && sn_env_push_user(L, 1) == LUA_TTABLE) {
        lua_pushliteral(L, "__metatable");
        if (lua_rawget(L, -2) != LUA_TNIL)
            return luaL_error(L, "cannot change a protected metatable");
    }
    lua_settop(L, 2);
    set_user_mt(L, 1, 2);
    lua_settop(L, 1);
    return 1;
}

static int sb_setmetatable(lua_State *L) /* setmetatable(t, mt) */
{
    if (!sn_env_is_env(L, 1))
        return call_original(L);
    lua_settop(L, 2);
    return set_env_mt(L, 1);
}

static int debug_setmetatable(lua_State *L) /* debug.setmetatable(v, mt) */
{
    if (!sn_env_is_env(L, 1))
        return call_original(L);
    lua_settop(L, 2);
    return set_env_mt(L, 0);
}

/* rawget(t, k): an env's value of k, whether raw or still in a snapshot layer */
static int sb_rawget(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    lua_settop(L, 2);
    if (sn_env_is_env(L, 1))
        sandbox_value(L, push_names(L), 1, 2);
    else
        lua_rawget(L, 1);
    return 1;
}

/* rawset(t, k, v): on an env, stored as an assignment without the script's __newindex */
static int sb_rawset(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);
    lua_settop(L, 3);
    if (!sn_env_is_env(L, 1)) {
        lua_rawset(L, 1);
        return 1;
    }
    lua_Number key = lua_tonumber(L, 2);
    if (lua_isnil(L, 2) || (lua_type(L, 2) == LUA_TNUMBER && key != key)) {
        lua_pushstring(L, lua_isnil(L, 2) ? "table index is nil" : "table index is NaN");
        return lua_error(L); /* what rawset says of any table */
    }
    sandbox_store(L, push_names(L), 1, 2, 3);
    lua_settop(L, 1);
    return 1;
}

/* next(t, k): on an env, over the whole env (its snapshot layers thawed first), without the
 * sandbox's own keys; policy names forwarded live and starred names are for pairs. */
static int sb_next(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    if (sn_env_is_env(L, 1))
        sn_env_thaw(L, 1);
    for (;;) {
        if (!lua_next(L, 1)) {
            lua_pushnil(L);
            return 1;
        }
        if (!sn_env_internal_key(L, -2))
            return 2;
        lua_pop(L, 1);
    }
}

/* Replaces t[name] (t at index t) by f, with the old value as f's upvalue. */
static void wrap(lua_State *L, int t, const char *name, lua_CFunction f)
{
    lua_getfield(L, t, name);
    lua_pushcclosure(L, f, 1);
    lua_setfield(L, t, name);
}

/* ---- installation ----------------------------------------------------------------------- */

static int push_running(lua_State *L) /* for lua_guard: the globals of loaded chunks */
{
    sn_coroutine_push_running_env(L);
    return 1;
}

int sn_sandbox_open(lua_State *L)
{
    sn_policy_open(L);
    sn_lua_guard_env_source(L, push_running);
    if (sn_lua_chunks_loadbuffer(L, hooks_src, sizeof hooks_src - 1, "=sandbox") != LUA_OK)
        return lua_error(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_HOOKS);
    lua_newtable(L); /* weak-keyed: a view dies with its env */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_PROXIES);
    make_index_mt(L, "thread", &K_INDEX_PLAIN);
    make_index_mt(L, "sandbox", &K_INDEX_STAR);

    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    lua_getfield(L, g, "type");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_TYPE);
    lua_getfield(L, g, "next"); /* the real one, for __pairs */
    int next = lua_gettop(L);
    lua_pushvalue(L, next);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_NEXT);
    wrap(L, g, "getmetatable", sb_getmetatable);
    wrap(L, g, "setmetatable", sb_setmetatable);
    wrap(L, g, "rawget", sb_rawget);
    wrap(L, g, "rawset", sb_rawset);
    wrap(L, g, "next", sb_next);
    if (lua_getfield(L, g, "debug") == LUA_TTABLE) {
        wrap(L, lua_gettop(L), "getmetatable", debug_getmetatable);
        wrap(L, lua_gettop(L), "setmetatable", debug_setmetatable);
    }
    lua_pop(L, 1);

    lua_createtable(L, 0, 3); /* the metamethods every env carries */
    push_metamethod(L, env_index);
    lua_setfield(L, -2, "__index");
    push_metamethod(L, env_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, next);
    lua_pushcclosure(L, env_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_replace(L, g);
    lua_settop(L, g);
    sn_env_open(L);
    sn_coroutine_open(L);
    return 0;
}

void sn_sandbox_push_base(lua_State *L)
{
    sn_env_push_base(L);
}

void sn_sandbox_push_running(lua_State *L)
{
    sn_coroutine_push_running_env(L);
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

void sn_sandbox_job_begin(lua_State *L, const char *starred, size_t len)
{
    sn_policy_set_starred(L, starred, len);
    sn_env_job_begin(L);
}

void sn_sandbox_job_end(lua_State *L)
{
    sn_policy_clear(L);
    push_shared(L); /* a job's policy names end with it (the table stays: upvalues hold it) */
    sn_lua_clear_table(L, -1);
    lua_pop(L, 1);
    sn_env_job_end(L);
}
