/* lua_shared: each state caches, per starred name, the decoded value of the version it read
 * last, in a userdata cell (version) whose user value is the value. A read whose version is
 * unchanged is three table lookups and an atomic load. */
#include "lua_shared.h"
#include "lua_sandbox.h"
#include "lua_host.h"
#include "sn_error.h"
#include "sn_shared.h"
#include "sn_snapshot.h"

#include <lauxlib.h>
#include <stdint.h>

static const char K_CACHE = 0; /* name -> cell */

typedef struct cell {
    sn_shared_var *var;
    uint64_t version; /* of the cached value; UINT64_MAX: nothing cached */
} cell;

int sn_starred_enabled(lua_State *L)
{
    return sn_lua_host_of(L)->shared != NULL;
}

void sn_starred_push_cache(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_CACHE) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_CACHE);
}

/* Pushes the cell of the name at index name from the cache at index cache, creating it.
 * Raises on ENOMEM/ELIMIT. */
static cell *push_cell_in(lua_State *L, int cache, int name)
{
    name = lua_absindex(L, name);
    cache = lua_absindex(L, cache);
    lua_pushvalue(L, name);
    if (lua_rawget(L, cache) == LUA_TUSERDATA)
        return lua_touserdata(L, -1);
    lua_pop(L, 1);
    int err;
    sn_shared_var *var = sn_shared_var_of(sn_lua_host_of(L)->shared, lua_tostring(L, name), &err);
    if (!var)
        luaL_error(L, "starred name '%s': %s", lua_tostring(L, name), sn_strerror(err));
    cell *c = lua_newuserdata(L, sizeof *c);
    c->var = var;
    c->version = UINT64_MAX;
    lua_pushvalue(L, name);
    lua_pushvalue(L, -2);
    lua_rawset(L, cache);
    return c;
}

static cell *push_cell(lua_State *L, int name)
{
    name = lua_absindex(L, name);
    sn_starred_push_cache(L);
    cell *c = push_cell_in(L, -1, name);
    lua_remove(L, -2);
    return c;
}

int sn_starred_get(lua_State *L, int name)
{
    name = lua_absindex(L, name);
    sn_starred_push_cache(L);
    sn_starred_get_in(L, lua_gettop(L), name);
    lua_remove(L, -2);
    return 1;
}

int sn_starred_get_in(lua_State *L, int cache, int name)
{
    name = lua_absindex(L, name);
    cell *c = push_cell_in(L, cache, name);
    uint64_t now = sn_shared_version(c->var);
    if (now == c->version) {
        lua_getuservalue(L, -1);
        lua_remove(L, -2);
        return 1;
    }
    uint64_t version;
    sn_blob *b = sn_shared_read(c->var, &version);
    if (!b) {
        lua_pop(L, 1);
        lua_pushnil(L);
        return 1;
    }
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    o.trusted = 1; /* written by this process */
    sn_sandbox_push_base(L);
    o.env_index = lua_gettop(L);
    char err[256];
    int n = 0;
    int rc = sn_snapshot_decode(L, sn_blob_data(b), sn_blob_len(b), &o, &n, err, sizeof err);
    sn_blob_release(b);
    if (rc != SN_OK)
        return luaL_error(L, "starred name '%s': %s", lua_tostring(L, name), err);
    lua_settop(L, lua_gettop(L) - n + 1); /* exactly one value */
    lua_remove(L, -2);                    /* the env */
    lua_pushvalue(L, -1);
    lua_setuservalue(L, -3);
    c->version = version;
    lua_remove(L, -2); /* the cell */
    return 1;
}

/* Encodes the value at val and publishes it; returns SN_OK or raises-free error text. */
static int publish(lua_State *L, cell *c, int name, int val, int only_if_unset, char *err,
                   size_t errlen)
{
    if (only_if_unset && sn_shared_version(c->var) != 0)
        return SN_OK;
    if (lua_isnil(L, val))
        return sn_shared_publish(c->var, NULL, 0, NULL);
    sn_snapshot_opts o;
    sn_snapshot_opts_init(&o);
    sn_buf buf;
    sn_buf_init(&buf);
    char why[200];
    int rc = sn_snapshot_encode(L, val, 1, &o, &buf, why, sizeof why);
    if (rc == SN_OK)
        rc = sn_shared_publish(c->var, buf.data, buf.len, NULL);
    else
        snprintf(err, errlen, "cannot share '%s': %s", lua_tostring(L, name), why);
    if (rc == SN_ENOMEM)
        snprintf(err, errlen, "cannot share '%s': %s", lua_tostring(L, name), sn_strerror(rc));
    sn_buf_fini(&buf);
    c->version = UINT64_MAX; /* the writer re-reads the published copy, not its own object */
    return rc;
}

static void set(lua_State *L, int name, int val, int only_if_unset)
{
    name = lua_absindex(L, name);
    val = lua_absindex(L, val);
    cell *c = push_cell(L, name);
    char err[300];
    if (publish(L, c, name, val, only_if_unset, err, sizeof err) != SN_OK)
        luaL_error(L, "%s", err);
    lua_pop(L, 1);
}

void sn_starred_set(lua_State *L, int name, int val)
{
    set(L, name, val, 0);
}

void sn_starred_adopt(lua_State *L, int name, int val)
{
    set(L, name, val, 1);
}

void sn_starred_forget(lua_State *L)
{
    sn_starred_push_cache(L); /* emptied, not replaced: the env metamethods hold it */
    sn_lua_clear_table(L, -1);
    lua_pop(L, 1);
}

/* Under the lock: fn(current value). Args: name, fn. */
static int guarded_update(lua_State *L)
{
    sn_starred_get(L, 1);
    lua_call(L, 1, 1);
    return 1;
}

/* __(name, fn) / __.name = fn: fn(current) under the name's lock; a non-nil result is the
 * new value. An error in fn leaves the value unchanged and is raised again. */
static int update(lua_State *L, int name, int fn)
{
    const char *s = luaL_checkstring(L, name);
    luaL_checktype(L, fn, LUA_TFUNCTION);
    if (sn_sandbox_policy_kind(L, s) != 2)
        return luaL_error(L, "__: '%s' is not a starred name (add \"*%s\" to _ENV[\"\"])", s, s);
    if (!sn_starred_enabled(L))
        return luaL_error(L, "__: this state has no starred store");
    cell *c = push_cell(L, name);
    sn_shared_lock(c->var);
    lua_pushcfunction(L, guarded_update);
    lua_pushvalue(L, name);
    lua_pushvalue(L, fn);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        sn_shared_unlock(c->var);
        return lua_error(L);
    }
    char err[300];
    int rc = lua_isnil(L, -1) ? SN_OK : publish(L, c, name, lua_gettop(L), 0, err, sizeof err);
    sn_shared_unlock(c->var);
    if (rc != SN_OK)
        return luaL_error(L, "__: %s", err);
    return 1;
}

static int update_call(lua_State *L) /* __(name, fn) */
{
    return update(L, 2, 3);
}

/* Raises unless the name at index name is starred in L's policy and L has a store. */
static void check_starred(lua_State *L, int name)
{
    const char *s = luaL_checkstring(L, name);
    if (sn_sandbox_policy_kind(L, s) != 2)
        luaL_error(L, "__: '%s' is not a starred name (add \"*%s\" to _ENV[\"\"])", s, s);
    if (!sn_starred_enabled(L))
        luaL_error(L, "__: this state has no starred store");
}

/* __.name = fn runs fn under the lock (STAGE's seed); __.name = value publishes value, and
 * nil unsets, as an assignment to the starred global does. */
static int update_newindex(lua_State *L)
{
    if (lua_type(L, 3) == LUA_TFUNCTION) {
        update(L, 2, 3);
        return 0;
    }
    check_starred(L, 2);
    sn_starred_set(L, 2, 3);
    return 0;
}

static int update_index(lua_State *L) /* __.name: the starred value, as STAGE reads it */
{
    check_starred(L, 2);
    sn_starred_get(L, 2);
    return 1;
}

void sn_lua_shared_open(lua_State *L)
{
    lua_newtable(L);
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, update_call);
    lua_setfield(L, -2, "__call");
    lua_pushcfunction(L, update_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, update_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_setglobal(L, "__");
}
