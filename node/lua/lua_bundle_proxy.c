/* lua_bundle_proxy: bundle.proxy(t, spec [, f]): a stand-in for t whose assignments run the
 * spec's handlers first: a function per key, or thresholds ("edges") that call a handler
 * with the edges a new value crossed since the old one (docs/lua-api.md).
 *
 * The proxy is a userdata; its user value is a table {o = t, name = ..., keyfn = ...,
 * kv = {KEY = {f = handler, edges = {...}, busy = bool}}}. A handler runs with its key
 * busy: an assignment to the same key from inside it is stored without a handler. */
#include "lua_bundle.h"

#include <string.h>

#define PROXY_MT "bundle.proxy"

/* Pushes field name of the proxy's user value (index p). */
static int pfield(lua_State *L, int p, const char *name)
{
    lua_getuservalue(L, p);
    int t = lua_getfield(L, -1, name);
    lua_remove(L, -2);
    return t;
}

/* Turns the key at index k through keyfn (a table or userdata key only), in place.
 * Returns 0 when keyfn said nil: the access is ignored. */
static int prepare_key(lua_State *L, int p, int k)
{
    int kt = lua_type(L, k);
    if (kt != LUA_TTABLE && kt != LUA_TUSERDATA) return 1;
    if (pfield(L, p, "keyfn") != LUA_TFUNCTION) {
        lua_pop(L, 1);
        return 1;
    }
    lua_pushvalue(L, k);
    pfield(L, p, "name");
    pfield(L, p, "o");
    lua_call(L, 3, 1);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    lua_replace(L, k);
    return 1;
}

static int p_index(lua_State *L)
{
    if (!prepare_key(L, 1, 2)) return 0;
    pfield(L, 1, "o");
    lua_pushvalue(L, 2);
    lua_gettable(L, -2);
    return 1;
}

/* Whether value v (index) reaches edge e (index): numbers: v >= e; strings and booleans:
 * v == e. Values of another type never do. */
static int reaches(lua_State *L, int v, int e)
{
    if (lua_type(L, v) != lua_type(L, e)) return 0;
    if (lua_type(L, e) == LUA_TNUMBER) return !lua_compare(L, v, e, LUA_OPLT);
    return lua_rawequal(L, v, e);
}

/* Calls handler (index f) as f(proxy, c, k, v); returns 1 when it returned false (the
 * assignment is cancelled). */
static int call_handler(lua_State *L, int f, int proxy, int c, int k, int v)
{
    lua_pushvalue(L, f);
    lua_pushvalue(L, proxy);
    lua_pushvalue(L, c);
    lua_pushvalue(L, k);
    lua_pushvalue(L, v);
    lua_call(L, 4, 1);
    int cancel = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
    lua_pop(L, 1);
    return cancel;
}

/* run_edges(proxy, spec, current, k, v) -> cancel. The edges are walked in order; the
 * thresholds between old and new value that the new one reaches are collected, and the
 * first function after them is called with them (STAGE's rule: a function first in the
 * list runs on every assignment; after a function the collection starts over). */
static int run_handler(lua_State *L)
{
    enum { PROXY = 1, SPEC, CUR, KEY, VAL };
    lua_settop(L, VAL);
    if (lua_getfield(L, SPEC, "f") == LUA_TFUNCTION) {
        lua_pushboolean(L, call_handler(L, 6, PROXY, CUR, KEY, VAL));
        return 1;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, SPEC, "edges") != LUA_TTABLE) return 0;
    int edges = lua_gettop(L);
    lua_newtable(L);
    int t = lua_gettop(L);
    int ctype = lua_type(L, CUR);
    lua_Integer got = ctype == LUA_TNIL ? 0 : -1; /* -1: the old value not placed yet */
    lua_Integer after = 0;                        /* the last edge collected; 0: none */
    lua_Integer n = (lua_Integer)lua_rawlen(L, edges);
    for (lua_Integer i = 1; i <= n; i++) {
        int et = lua_rawgeti(L, edges, i);
        if (et == LUA_TFUNCTION) {
            if (i == 1 || got > 0) {
                if (call_handler(L, lua_gettop(L), PROXY, t, KEY, VAL)) {
                    lua_pushboolean(L, 1);
                    return 1;
                }
                if (got > 0) {
                    lua_newtable(L);
                    lua_replace(L, t);
                    got = -1;
                }
            }
            after = 0;
        } else if (ctype == LUA_TNIL || et == ctype) {
            int e = lua_gettop(L);
            if (got < 0 && reaches(L, CUR, e)) {
                lua_pop(L, 1); /* the old value is past it already */
                continue;
            }
            if (got < 0) got = 0;
            if (reaches(L, VAL, e)) {
                lua_pushvalue(L, e);
                lua_rawseti(L, t, ++got);
                after = i;
            }
        }
        lua_pop(L, 1);
    }
    if (got > 0 && after > 0) {
        for (lua_Integer i = after + 1; i <= n; i++) {
            if (lua_rawgeti(L, edges, i) == LUA_TFUNCTION) {
                lua_pushboolean(L, call_handler(L, lua_gettop(L), PROXY, t, KEY, VAL));
                return 1;
            }
            lua_pop(L, 1);
        }
    }
    return 0;
}

/* Pushes the spec for key k (index): numbers use "#", strings their own or "*", and any
 * key falls back to "". Returns 0 (nothing pushed) when there is none. */
static int find_spec(lua_State *L, int p, int k)
{
    pfield(L, p, "kv");
    int kv = lua_gettop(L);
    int found = LUA_TNIL;
    if (lua_type(L, k) == LUA_TNUMBER) {
        found = lua_getfield(L, kv, "#");
    } else if (lua_type(L, k) == LUA_TSTRING) {
        lua_pushvalue(L, k);
        found = lua_rawget(L, kv);
        if (found == LUA_TNIL) {
            lua_pop(L, 1);
            found = lua_getfield(L, kv, "*");
        }
    }
    if (found == LUA_TNIL) {
        if (lua_type(L, k) == LUA_TNUMBER || lua_type(L, k) == LUA_TSTRING) lua_pop(L, 1);
        found = lua_getfield(L, kv, "");
    }
    lua_remove(L, kv);
    if (found != LUA_TTABLE) {
        lua_pop(L, 1);
        return 0;
    }
    return 1;
}

static int p_newindex(lua_State *L)
{
    lua_settop(L, 3);
    if (!prepare_key(L, 1, 2)) return 0;
    pfield(L, 1, "o");        /* 4 */
    if (find_spec(L, 1, 2)) { /* 5 */
        lua_getfield(L, 5, "busy");
        int busy = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (!busy) {
            lua_pushboolean(L, 1);
            lua_setfield(L, 5, "busy");
            lua_pushcfunction(L, run_handler);
            lua_pushvalue(L, 1);
            lua_pushvalue(L, 5);
            lua_pushvalue(L, 2);
            lua_gettable(L, 4); /* the current value */
            lua_pushvalue(L, 2);
            lua_pushvalue(L, 3);
            int status = lua_pcall(L, 5, 1, 0);
            lua_pushnil(L);
            lua_setfield(L, 5, "busy");
            if (status != LUA_OK) return lua_error(L);
            if (lua_toboolean(L, -1))
                return 0; /* the handler said false: the value is not stored */
        }
    }
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_settable(L, 4);
    return 0;
}

static int p_pairs(lua_State *L)
{
    pfield(L, 1, "o");
    if (luaL_getmetafield(L, -1, "__pairs") != LUA_TNIL) {
        lua_insert(L, -2);
        lua_call(L, 1, 3);
        return 3;
    }
    lua_getglobal(L, "next");
    lua_insert(L, -2);
    lua_pushnil(L);
    return 3;
}

static int p_len(lua_State *L)
{
    pfield(L, 1, "o");
    lua_len(L, -1);
    return 1;
}

/* proxy() -> t; proxy(f) calls f(proxy) first. */
static int p_call(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TFUNCTION) {
        lua_pushvalue(L, 2);
        lua_pushvalue(L, 1);
        lua_call(L, 1, 0);
    } else if (!lua_isnoneornil(L, 2)) {
        return luaL_argerror(L, 2, "expected a function or nothing");
    }
    pfield(L, 1, "o");
    return 1;
}

static int p_tostring(lua_State *L) /* as STAGE's: the name up to its first ':' */
{
    pfield(L, 1, "name");
    pfield(L, 1, "o");
    luaL_tolstring(L, -1, NULL);
    const char *name = lua_tostring(L, -3);
    if (!name)
        name = "proxy";
    const char *colon = strchr(name, ':'); /* "index:{10,10}" prints as "index:[...]" */
    lua_pushlstring(L, name, colon ? (size_t)(colon - name) : strlen(name));
    lua_pushfstring(L, "%s:[%s]", lua_tostring(L, -1), lua_tostring(L, -2));
    return 1;
}

/* kv[key], made when missing, left on the stack. */
static void spec_of(lua_State *L, int kv, const char *key)
{
    if (lua_getfield(L, kv, key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, kv, key);
    }
}

/* The spec table's entry at the top (key below it), into P (index p) and kv (index kv). */
static void read_entry(lua_State *L, int p, int kv, int nested)
{
    int kt = lua_type(L, -2), vt = lua_type(L, -1);
    if (kt == LUA_TNUMBER) {
        if (vt == LUA_TFUNCTION) {
            lua_getfield(L, p, "keyfn");
            int have = !lua_isnil(L, -1);
            lua_pop(L, 1);
            if (!have || !nested) {
                lua_pushvalue(L, -1);
                lua_setfield(L, p, "keyfn");
            }
        } else if (vt == LUA_TSTRING) {
            lua_pushvalue(L, -1);
            lua_setfield(L, p, "name");
        }
        return;
    }
    if (kt != LUA_TSTRING) return;
    const char *k = lua_tostring(L, -2);
    if (k[0] == '\0' && !nested) {
        if (vt == LUA_TTABLE) {
            int inner = lua_gettop(L);
            lua_pushnil(L);
            while (lua_next(L, inner)) {
                read_entry(L, p, kv, 1);
                lua_pop(L, 1);
            }
        } else if (vt == LUA_TFUNCTION) {
            spec_of(L, kv, "");
            lua_pushvalue(L, -2);
            lua_setfield(L, -2, "f");
            lua_pop(L, 1);
        } else if (vt == LUA_TSTRING) {
            lua_pushvalue(L, -1);
            lua_setfield(L, p, "name");
        }
        return;
    }
    if (vt == LUA_TFUNCTION) {
        spec_of(L, kv, k);
        lua_pushvalue(L, -2);
        lua_setfield(L, -2, "f");
        lua_pop(L, 1);
    } else if (vt == LUA_TTABLE && !nested) {
        /* the edges, in list order: numbers, strings, booleans and functions */
        int src = lua_gettop(L);
        spec_of(L, kv, k);
        lua_newtable(L);
        lua_Integer n = 0, len = (lua_Integer)lua_rawlen(L, src);
        for (lua_Integer i = 1; i <= len; i++) {
            int t = lua_rawgeti(L, src, i);
            if (t == LUA_TNUMBER || t == LUA_TSTRING || t == LUA_TBOOLEAN || t == LUA_TFUNCTION)
                lua_rawseti(L, -2, ++n);
            else
                lua_pop(L, 1);
        }
        lua_setfield(L, -2, "edges");
        lua_pop(L, 1);
    }
}

int sn_bundle_proxy(lua_State *L)
{
    int ot = lua_type(L, 1);
    luaL_argcheck(L, ot == LUA_TTABLE || ot == LUA_TUSERDATA, 1,
                  "bundle.proxy: expected the table (or userdata) to watch");
    lua_settop(L, 3);
    lua_newuserdata(L, 1); /* 4: the proxy */
    static const luaL_Reg fns[] = {
        {"__index", p_index}, {"__newindex", p_newindex}, {"__pairs", p_pairs}, {"__len", p_len},
        {"__call", p_call},   {"__tostring", p_tostring}, {NULL, NULL},
    };
    sn_bundle_metatable(L, PROXY_MT, fns);
    lua_setmetatable(L, 4);
    lua_newtable(L); /* 5: P */
    lua_pushvalue(L, 1);
    lua_setfield(L, 5, "o");
    lua_pushliteral(L, "proxy");
    lua_setfield(L, 5, "name");
    lua_newtable(L); /* 6: kv */
    lua_pushvalue(L, 6);
    lua_setfield(L, 5, "kv");
    switch (lua_type(L, 2)) {
    case LUA_TTABLE:
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            read_entry(L, 5, 6, 0);
            lua_pop(L, 1);
        }
        break;
    case LUA_TFUNCTION:
        spec_of(L, 6, "");
        lua_pushvalue(L, 2);
        lua_setfield(L, -2, "f");
        lua_pop(L, 1);
        break;
    case LUA_TSTRING:
        lua_pushvalue(L, 2);
        lua_setfield(L, 5, "name");
        break;
    case LUA_TNIL:
        break;
    default:
        return luaL_argerror(L, 2, "expected a table of handlers, a function or a name");
    }
    lua_settop(L, 5);
    lua_setuservalue(L, 4);
    if (lua_type(L, 3) == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        lua_pushvalue(L, 4);
        lua_call(L, 1, 0);
    }
    return 1;
}
